"""Health configuration: component weights, scoring curves and band thresholds.

A health score is a weighted mean of component scores, each 0-100:

    health = sum(w_c * s_c for c present) / sum(w_c for c present)

where a component is *present* for a customer when its input exists (a customer who never
answered an NPS survey has no ``nps`` component; without stored churn-risk scores there is no
``risk`` component). Missing components are left out and the remaining weights re-normalised,
so a missing signal neither rewards nor punishes. Bands: ``red`` below ``red_below``,
``green`` from ``green_from`` up, ``yellow`` between.

Each component maps one input to 0-100 with a piecewise-linear curve through ``points``
(x, score), flat beyond the first and last point. Defaults (``docs/health.md`` explains them):

=========  =========================================================  =======================
component  input (as of the snapshot, data strictly before it)         default curve
=========  =========================================================  =======================
usage      active days in the last 28 days                            0->0, 1->20, 4->55,
                                                                      8->80, 16->100
trend      % change of active days vs the 28 days before              -100->0, -50->30,
                                                                      -20->65, 0->85, 20->100
breadth    distinct feature event types used in the last 28 days      0->0, 1->30, 2->50,
           (``login`` not counted)                                    4->80, 6->100
payments   invoices of the last 90 days not paid within a day of      0->100, 1->40, 2->15,
           their due date (failed, overdue or late)                   3->0
nps        latest NPS answer (0-10) of the last 365 days              0->0, 6->40, 7->65,
                                                                      8->80, 9->100
csat       latest CSAT answer (1-5) of the last 365 days              1->0, 2->25, 3->50,
                                                                      4->80, 5->100
support    support tickets opened in the last 28 days                 0->100, 1->75, 2->50,
                                                                      4->20, 6->0
risk       churn probability of the latest stored risk score          0->100, 0.05->85,
                                                                      0.15->55, 0.3->25,
                                                                      0.5->0
=========  =========================================================  =======================
"""

from __future__ import annotations

import itertools
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from keepwell.errors import InvalidInput

__all__ = [
    "COMPONENTS",
    "DEFAULT_CURVES",
    "DEFAULT_WEIGHTS",
    "Bands",
    "Curve",
    "HealthConfig",
    "load_config",
]

COMPONENTS: tuple[str, ...] = (
    "usage",
    "trend",
    "breadth",
    "payments",
    "nps",
    "csat",
    "support",
    "risk",
)
"""Every component a configuration may weigh, in display order."""

DEFAULT_WEIGHTS: dict[str, float] = {
    "usage": 25.0,
    "trend": 15.0,
    "breadth": 15.0,
    "payments": 15.0,
    "nps": 8.0,
    "csat": 4.0,
    "support": 8.0,
    "risk": 10.0,
}

DEFAULT_CURVES: dict[str, list[tuple[float, float]]] = {
    "usage": [(0, 0), (1, 20), (4, 55), (8, 80), (16, 100)],
    "trend": [(-100, 0), (-50, 30), (-20, 65), (0, 85), (20, 100)],
    "breadth": [(0, 0), (1, 30), (2, 50), (4, 80), (6, 100)],
    "payments": [(0, 100), (1, 40), (2, 15), (3, 0)],
    "nps": [(0, 0), (6, 40), (7, 65), (8, 80), (9, 100)],
    "csat": [(1, 0), (2, 25), (3, 50), (4, 80), (5, 100)],
    "support": [(0, 100), (1, 75), (2, 50), (4, 20), (6, 0)],
    "risk": [(0, 100), (0.05, 85), (0.15, 55), (0.3, 25), (0.5, 0)],
}


def _invalid(field: str, message: str, expected: str | None = None) -> InvalidInput:
    return InvalidInput(message, field=field, expected=expected)


class Curve(BaseModel):
    """A piecewise-linear map from an input value to a 0-100 score.

    ``points`` are (x, score) pairs with strictly increasing x; below the first x the first
    score applies, above the last x the last score (no extrapolation).

    >>> Curve(points=[(0, 0), (10, 100)]).score(np.array([-1.0, 5.0, 20.0])).tolist()
    [0.0, 50.0, 100.0]
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    points: list[tuple[float, float]]

    def check(self, field: str) -> None:
        """Raise :class:`InvalidInput` naming ``field`` if the points are unusable."""
        if len(self.points) < 2:
            raise _invalid(field, "a curve needs at least 2 points", "[[x, score], ...]")
        xs = [x for x, _ in self.points]
        if any(b <= a for a, b in itertools.pairwise(xs)):
            raise _invalid(field, f"x values {xs} are not strictly increasing", "increasing x")
        for x, s in self.points:
            if not np.isfinite(x) or not np.isfinite(s) or not 0 <= s <= 100:
                raise _invalid(field, f"point ({x}, {s}) is out of range", "finite x, score 0-100")

    def score(self, values: np.ndarray) -> np.ndarray:
        """Scores for ``values`` (NaN stays NaN)."""
        xs = np.array([x for x, _ in self.points], dtype="float64")
        ys = np.array([s for _, s in self.points], dtype="float64")
        values = np.asarray(values, dtype="float64")
        out = np.interp(values, xs, ys)
        return np.where(np.isnan(values), np.nan, out)


class Bands(BaseModel):
    """Band thresholds: red below ``red_below``, green from ``green_from``, yellow between."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    red_below: float = 40.0
    green_from: float = 70.0

    def band(self, score: float) -> str:
        """'red', 'yellow' or 'green' for a 0-100 score."""
        if score < self.red_below:
            return "red"
        return "green" if score >= self.green_from else "yellow"


class HealthConfig(BaseModel):
    """Weights, curves and bands of a health score (see the module docstring).

    Build it directly, from a mapping (:meth:`from_mapping`) or from a TOML file
    (:func:`load_config`). Every rule violation raises :class:`InvalidInput` naming the field:
    unknown component, negative or non-finite weight, all weights zero, a curve with fewer
    than 2 points or unsorted x, thresholds out of order or outside 0-100.

    ``weights`` given replace the defaults as a whole (a component left out weighs 0);
    ``curves`` given replace the default curve of those components only.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(default="default", min_length=1, max_length=64)
    weights: dict[str, float] = Field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    curves: dict[str, Curve] = Field(default_factory=dict)
    bands: Bands = Field(default_factory=Bands)
    window_days: int = Field(default=28, ge=1, le=365)
    ignore_events: list[str] = Field(default_factory=lambda: ["login"])

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise _from_validation_error(exc) from None
        self._check()

    @field_validator("name")
    @classmethod
    def _strip(cls, value: str) -> str:
        return value.strip()

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> HealthConfig:
        """A configuration from a parsed TOML/JSON mapping (same keys as the fields)."""
        if not isinstance(data, Mapping):
            raise InvalidInput("a health configuration must be a table", expected="key = value")
        return cls(**dict(data))

    def _check(self) -> None:
        for name, weight in self.weights.items():
            if name not in COMPONENTS:
                raise _invalid(f"weights.{name}", "unknown component", ", ".join(COMPONENTS))
            if not np.isfinite(weight) or weight < 0:
                raise _invalid(f"weights.{name}", f"weight {weight} is negative", "a weight >= 0")
        if not any(w > 0 for w in self.weights.values()):
            raise _invalid("weights", "all weights are zero", "at least one positive weight")
        for name, curve in self.curves.items():
            if name not in COMPONENTS:
                raise _invalid(f"curves.{name}", "unknown component", ", ".join(COMPONENTS))
            curve.check(f"curves.{name}")
        b = self.bands
        for field, value in (("red_below", b.red_below), ("green_from", b.green_from)):
            if not 0 <= value <= 100:
                raise _invalid(f"bands.{field}", f"threshold {value} is outside 0-100", "0-100")
        if b.red_below > b.green_from:
            raise _invalid(
                "bands",
                f"red_below ({b.red_below}) is above green_from ({b.green_from})",
                "red_below <= green_from",
            )

    def curve(self, component: str) -> Curve:
        """The curve of ``component`` (configured or default)."""
        return self.curves.get(component) or Curve(points=DEFAULT_CURVES[component])

    @property
    def active(self) -> list[str]:
        """Components with a positive weight, in display order."""
        return [c for c in COMPONENTS if self.weights.get(c, 0.0) > 0]


def _from_validation_error(exc: ValidationError) -> InvalidInput:
    err = exc.errors()[0]
    field = ".".join(str(part) for part in err["loc"]) or None
    if err["type"] == "extra_forbidden":
        return InvalidInput("unknown setting", field=field)
    return InvalidInput(err["msg"], field=field)


def load_config(path: Path) -> HealthConfig:
    """A :class:`HealthConfig` from a TOML file (see ``docs/health.md`` for an example).

    Raises :class:`InvalidInput` for unreadable TOML (naming the line) and for rule violations.
    """
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise InvalidInput(f"{path} is not valid TOML: {exc}", expected="a TOML file") from None
    return HealthConfig.from_mapping(data)
