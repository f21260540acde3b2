"""generate(): reproducibility, the manifest, chunking, re-runs and bad arguments."""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest

from keepwell.demo import generator, saas_output, writers
from keepwell.demo.generator import generate
from keepwell.errors import InvalidInput

from .conftest import END

SMALL = {"customers": 300, "months": 12, "end": END}


def _digests(directory: Path) -> dict[str, str]:
    return {
        str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


@pytest.mark.parametrize("business", ["saas", "shop"])
def test_same_seed_gives_identical_bytes_and_another_seed_differs(
    tmp_path: Path, business: str
) -> None:
    first = generate(tmp_path / "a", business=business, seed=11, **SMALL)
    second = generate(tmp_path / "b", business=business, seed=11, **SMALL)
    other = generate(tmp_path / "c", business=business, seed=12, **SMALL)

    a, b, c = _digests(first.out_dir), _digests(second.out_dir), _digests(other.out_dir)
    assert a == b
    assert a.keys() == c.keys()
    assert all(a[name] != c[name] for name in a), "every file should change with the seed"


def test_manifest_lists_every_file_with_its_row_count(tmp_path: Path) -> None:
    manifest = generate(tmp_path, **SMALL)

    assert set(manifest.files) == {
        "customers",
        "subscriptions",
        "invoices",
        "surveys",
        "tickets",
        "events",
    }
    for kind, path in manifest.files.items():
        if kind == "events":
            assert path == tmp_path / "events"
            rows = sum(pq.read_metadata(p).num_rows for p in manifest.event_parts)
        else:
            rows = pa_csv.read_csv(path).num_rows
        assert rows == manifest.rows[kind], kind
    assert manifest.truth == tmp_path / "truth.csv"
    assert pa_csv.read_csv(manifest.truth).num_rows == manifest.rows["truth"] == 300
    assert manifest.event_parts == tuple(sorted((tmp_path / "events").glob("*.parquet")))
    assert manifest.end == datetime(2026, 6, 1, tzinfo=UTC)
    assert manifest.start == datetime(2025, 6, 1, tzinfo=UTC)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "customers.csv",
        "events",
        "invoices.csv",
        "subscriptions.csv",
        "surveys.csv",
        "tickets.csv",
        "truth.csv",
    ]


def test_shop_manifest(tmp_path: Path) -> None:
    generate(tmp_path, **SMALL)
    manifest = generate(tmp_path, business="shop", **SMALL)

    assert set(manifest.files) == {"customers", "orders", "surveys", "events"}
    assert not (tmp_path / "subscriptions.csv").exists()
    assert manifest.rows["orders"] >= 300  # every customer ordered at sign-up


def test_output_does_not_depend_on_chunk_and_batch_sizes_being_one_chunk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Many small chunks, event batches and parts still give one consistent dataset."""
    monkeypatch.setattr(generator, "CHUNK_CUSTOMERS", 70)
    monkeypatch.setattr(writers, "EVENT_BATCH", 2_000)
    monkeypatch.setattr(writers, "PART_ROWS", 5_000)
    manifest = generate(tmp_path, **SMALL)

    customers = pa_csv.read_csv(manifest.files["customers"]).column("external_id").to_pylist()
    assert customers == [f"C{i:07d}" for i in range(1, 301)]
    assert len(manifest.event_parts) > 2
    events = pq.ParquetDataset(manifest.files["events"]).read().to_pandas()
    assert len(events) == manifest.rows["events"]
    ordered = events.groupby("customer_id", sort=False).occurred_at.apply(
        lambda s: s.is_monotonic_increasing
    )
    assert ordered.all()
    assert list(dict.fromkeys(events.customer_id)) == sorted(set(events.customer_id))


def test_worker_processes_give_the_same_bytes_as_one_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(generator, "CHUNK_CUSTOMERS", 100)
    monkeypatch.setattr(generator, "MAX_WORKERS", 1)
    alone = generate(tmp_path / "alone", **SMALL)
    monkeypatch.setattr(generator, "MAX_WORKERS", 2)
    pooled = generate(tmp_path / "pooled", **SMALL)

    assert _digests(alone.out_dir) == _digests(pooled.out_dir)
    assert len(alone.event_parts) == 3  # one part per chunk at this size


def test_a_rerun_replaces_the_previous_files(tmp_path: Path) -> None:
    generate(tmp_path, customers=400, months=12, end=END, events_per_customer_day=30.0)
    (tmp_path / "notes.txt").write_text("mine")
    big_parts = len(list((tmp_path / "events").glob("*.parquet")))
    manifest = generate(tmp_path, customers=20, months=3, end=END)

    assert big_parts >= 1
    assert list((tmp_path / "events").glob("*.parquet")) == list(manifest.event_parts)
    assert pa_csv.read_csv(tmp_path / "customers.csv").num_rows == 20
    assert (tmp_path / "notes.txt").read_text() == "mine"  # other files are left alone
    assert not list(tmp_path.glob(".generating*"))


def test_progress_reports_customers_done(tmp_path: Path) -> None:
    calls: list[tuple[str, int, int]] = []
    generate(tmp_path, customers=50, months=6, end=END, progress=lambda *a: calls.append(a))

    assert calls[0] == ("customers", 0, 50)
    assert calls[-1] == ("customers", 50, 50)


def test_public_names() -> None:
    assert generator.__all__ == [
        "CHUNK_CUSTOMERS",
        "MAX_WORKERS",
        "DemoManifest",
        "generate",
        "worker_count",
    ]
    assert all(hasattr(generator, name) for name in generator.__all__)
    assert generator.worker_count(1) == 1
    assert generator.worker_count(generator.CHUNK_CUSTOMERS + 1) in {1, 2}


def test_end_defaults_to_today_utc(tmp_path: Path) -> None:
    before = datetime.now(UTC).date()
    manifest = generate(tmp_path, customers=5, months=1)
    after = datetime.now(UTC).date()

    assert manifest.end.date() in {before, after}
    assert manifest.end.time() == datetime.min.time()


def test_volume_scales_with_events_per_customer_day(tmp_path: Path) -> None:
    low = generate(tmp_path / "low", events_per_customer_day=0.5, **SMALL)
    high = generate(tmp_path / "high", events_per_customer_day=4.0, **SMALL)
    none = generate(tmp_path / "none", events_per_customer_day=0.0, **SMALL)

    assert 5 < high.rows["events"] / low.rows["events"] < 11
    assert none.rows["events"] == 0
    assert len(none.event_parts) == 1  # an empty, valid Parquet part
    assert pq.read_schema(none.event_parts[0]).equals(writers.EVENT_SCHEMA)


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({"customers": 0}, "customers"),
        ({"customers": 2.5}, "customers"),
        ({"months": 0}, "months"),
        ({"months": 241}, "months"),
        ({"business": "bakery"}, "business"),
        ({"events_per_customer_day": -1.0}, "events_per_customer_day"),
        ({"events_per_customer_day": float("nan")}, "events_per_customer_day"),
    ],
)
def test_bad_arguments_are_refused_and_nothing_is_written(
    tmp_path: Path, arguments: dict, field: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        generate(tmp_path / "out", **arguments)

    assert caught.value.field == field
    assert not (tmp_path / "out").exists()


def test_a_failure_midway_leaves_the_previous_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    generate(tmp_path, customers=30, months=3, end=END)
    before = _digests(tmp_path)

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(saas_output, "simulate", broken)
    with pytest.raises(RuntimeError):
        generate(tmp_path, customers=30, months=3, end=END + timedelta(days=1))

    assert _digests(tmp_path) == before


def test_history_may_end_on_any_day(tmp_path: Path) -> None:
    manifest = generate(tmp_path, customers=200, months=14, end=date(2028, 3, 31))

    assert manifest.start == datetime(2027, 1, 31, tzinfo=UTC)
    assert manifest.rows["invoices"] > 0
