"""Health configuration: defaults, validation errors naming the field, TOML loading."""

from __future__ import annotations

import numpy as np
import pytest

from keepwell.errors import InvalidInput
from keepwell.health.config import COMPONENTS, DEFAULT_WEIGHTS, Curve, HealthConfig, load_config


def test_defaults_cover_every_component() -> None:
    cfg = HealthConfig()
    assert cfg.active == list(COMPONENTS)
    assert cfg.weights == DEFAULT_WEIGHTS
    assert (cfg.bands.red_below, cfg.bands.green_from) == (40.0, 70.0)
    for name in COMPONENTS:
        cfg.curve(name).check(name)  # every default curve is valid


@pytest.mark.parametrize(
    ("data", "field", "words"),
    [
        ({"weights": {"usage": -1}}, "weights.usage", "negative"),
        ({"weights": {"usage": 0, "nps": 0}}, "weights", "all weights are zero"),
        ({"weights": {}}, "weights", "all weights are zero"),
        ({"weights": {"happiness": 3}}, "weights.happiness", "unknown component"),
        ({"weights": {"usage": "lots"}}, "weights.usage", "valid number"),
        ({"curves": {"mood": {"points": [[0, 0], [1, 100]]}}}, "curves.mood", "unknown"),
        ({"curves": {"usage": {"points": [[0, 0]]}}}, "curves.usage", "at least 2 points"),
        ({"curves": {"usage": {"points": [[5, 0], [1, 100]]}}}, "curves.usage", "increasing"),
        ({"curves": {"usage": {"points": [[0, 0], [1, 120]]}}}, "curves.usage", "out of range"),
        ({"bands": {"red_below": 80, "green_from": 60}}, "bands", "above green_from"),
        ({"bands": {"red_below": -5}}, "bands.red_below", "outside 0-100"),
        ({"bands": {"green_from": 101}}, "bands.green_from", "outside 0-100"),
        ({"colour": "blue"}, "colour", "unknown setting"),
        ({"window_days": 0}, "window_days", "greater than or equal to 1"),
    ],
)
def test_bad_configs_name_the_field(data, field, words) -> None:
    with pytest.raises(InvalidInput) as info:
        HealthConfig.from_mapping(data)
    assert info.value.field == field
    assert words in str(info.value)
    assert f"field {field!r}" in info.value.message


def test_weights_given_replace_the_defaults() -> None:
    cfg = HealthConfig(weights={"usage": 2, "payments": 1})
    assert cfg.active == ["usage", "payments"]


def test_curve_interpolates_and_keeps_missing() -> None:
    curve = Curve(points=[(0, 100), (1, 40), (3, 0)])
    got = curve.score(np.array([0.0, 0.5, 2.0, 10.0, np.nan]))
    assert got[:4].tolist() == [100.0, 70.0, 20.0, 0.0]
    assert np.isnan(got[4])


def test_band_edges() -> None:
    bands = HealthConfig().bands
    assert [bands.band(s) for s in (0, 39.9, 40, 69.9, 70, 100)] == [
        "red",
        "red",
        "yellow",
        "yellow",
        "green",
        "green",
    ]


def test_load_toml(tmp_path) -> None:
    path = tmp_path / "health.toml"
    path.write_text(
        'name = "usage-heavy"\n'
        "[weights]\nusage = 50\ntrend = 25\npayments = 25\n"
        "[curves.usage]\npoints = [[0, 0], [10, 100]]\n"
        "[bands]\nred_below = 30\ngreen_from = 60\n",
        encoding="utf-8",
    )
    cfg = load_config(path)
    assert cfg.name == "usage-heavy"
    assert cfg.active == ["usage", "trend", "payments"]
    assert cfg.curve("usage").score(np.array([5.0])).tolist() == [50.0]
    assert cfg.bands.band(59) == "yellow"


def test_load_toml_errors(tmp_path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[weights\nusage = 1\n", encoding="utf-8")
    with pytest.raises(InvalidInput, match="not valid TOML"):
        load_config(bad)
    neg = tmp_path / "neg.toml"
    neg.write_text("[weights]\nusage = -3\n", encoding="utf-8")
    with pytest.raises(InvalidInput, match=r"'weights\.usage'"):
        load_config(neg)
    with pytest.raises(FileNotFoundError):
        load_config(tmp_path / "missing.toml")
