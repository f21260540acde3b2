"""import_events: good files of every shape, bad rows, bad files, mapping, idempotency."""

from __future__ import annotations

import csv
import gzip
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from keepwell.errors import ImportFileError, InvalidInput
from keepwell.events.importer import MAX_REJECTS_IN_MEMORY, import_events
from keepwell.events.store import EventStore
from keepwell.imports.mapping import ColumnMapping
from tests.events.conftest import make_events, read_all

HEADER = "customer_id,event,occurred_at,user_id,value,properties"
GOOD = [
    'c1,login,2026-03-01T09:30:00Z,u1,1.5,"{""plan"": ""pro""}"',
    "c2,export,2026-03-01T10:00:00+02:00,,,",
    "c1,report_created,2026-03-01 12:00:00,u2,-3,",
    "c3,login,2026-03-02,,1e3,{}",
]
KNOWN = ["c1", "c2", "c3"]


def write_csv(path: Path, lines: list[str], *, encoding: str = "utf-8") -> Path:
    path.write_bytes(("\n".join(lines) + "\n").encode(encoding))
    return path


def read_rejects(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture
def run(store: EventStore, tmp_path: Path):
    """Import a file into the test's store with the known customers c1-c3 (overridable)."""

    def run_import(path: Path, **options):
        options.setdefault("known_customer_ids", KNOWN)
        options.setdefault("rejects_dir", tmp_path / "rejects")
        summary = import_events(path, store=store, **options)
        summary.check()
        return summary

    return run_import


def test_good_csv_lands_in_utc_with_nulls(run, store: EventStore, tmp_path: Path) -> None:
    summary = run(write_csv(tmp_path / "e.csv", [HEADER, *GOOD]))
    assert (summary.rows, summary.inserted, summary.rejected) == (4, 4, 0)
    assert summary.rejects_path is None and not summary.skipped_file
    assert summary.kind == "events"
    assert read_all(store) == [
        ("c1", "login", datetime(2026, 3, 1, 9, 30, tzinfo=UTC), "u1", 1.5, '{"plan": "pro"}'),
        ("c1", "report_created", datetime(2026, 3, 1, 12, tzinfo=UTC), "u2", -3.0, None),
        ("c2", "export", datetime(2026, 3, 1, 8, tzinfo=UTC), None, None, None),
        ("c3", "login", datetime(2026, 3, 2, tzinfo=UTC), None, 1000.0, "{}"),
    ]
    assert store.version() == 1  # one commit


def test_naive_timestamps_are_read_in_the_given_zone(
    run, store: EventStore, tmp_path: Path
) -> None:
    lines = [
        HEADER,
        "c1,a,2026-01-15 09:00:00,,,",  # winter: Berlin is UTC+1
        "c1,b,2026-07-15T09:00:00,,,",  # summer: UTC+2
        "c1,c,2026-07-15T09:00:00Z,,,",  # an explicit offset wins
    ]
    run(write_csv(tmp_path / "e.csv", lines), timezone="Europe/Berlin")
    assert [r[2] for r in read_all(store)] == [
        datetime(2026, 1, 15, 8, tzinfo=UTC),
        datetime(2026, 7, 15, 7, tzinfo=UTC),
        datetime(2026, 7, 15, 9, tzinfo=UTC),
    ]


def test_csv_dialect_semicolons_quotes_bom_crlf_gzip(
    run, store: EventStore, tmp_path: Path
) -> None:
    text = (
        "\ufeffcustomer_id;event;occurred_at;properties\r\n"
        'c1;"multi\nline; event";2026-03-01T09:30:00Z;"{""a"": ""x;y""}"\r\n'
        "c2;login;2026-03-01T09:31:00Z;\r\n"
    )
    path = tmp_path / "e.csv.gz"
    path.write_bytes(gzip.compress(text.encode("utf-8")))
    summary = run(path)
    assert (summary.rows, summary.inserted) == (2, 2)
    assert [(r[0], r[1], r[5]) for r in read_all(store)] == [
        ("c1", "multi\nline; event", '{"a": "x;y"}'),
        ("c2", "login", None),
    ]


def test_parquet_file_and_directory(run, store: EventStore, tmp_path: Path) -> None:
    parts = tmp_path / "events"
    parts.mkdir()
    table = make_events(30, customers=3)  # typed like the demo generator's parts
    pq.write_table(table.slice(0, 10), parts / "part-00000.parquet")
    pq.write_table(table.slice(10), parts / "part-00001.parquet")
    (parts / "_SUCCESS").write_text("")
    summary = run(parts, known_customer_ids=["c0", "c1", "c2"])
    assert (summary.rows, summary.inserted, summary.rejected) == (30, 30, 0)
    single = tmp_path / "one.parquet"
    pq.write_table(make_events(5, start=100, customers=3), single)
    assert run(single, known_customer_ids=["c0", "c1", "c2"]).inserted == 5
    assert store.count() == 35
    expected = sorted(
        tuple(r.values())
        for r in pa.concat_tables([table, make_events(5, start=100, customers=3)]).to_pylist()
    )
    assert read_all(store) == expected


def test_text_parquet_is_checked_like_csv(run, store: EventStore, tmp_path: Path) -> None:
    path = tmp_path / "text.parquet"
    pq.write_table(
        pa.table(
            {
                "customer_id": ["c1", "c2"],
                "event": ["login", "login"],
                "occurred_at": ["2026-03-01T09:30:00Z", "yesterday"],
                "value": ["2.5", "x"],
            }
        ),
        path,
    )
    summary = run(path)
    assert (summary.inserted, summary.rejected) == (1, 1)
    assert (summary.rejects[0].row, summary.rejects[0].field) == (2, "occurred_at")
    assert "also value: is not a number" in summary.rejects[0].reason


def test_directory_rejects_name_their_file(run, tmp_path: Path) -> None:
    parts = tmp_path / "events"
    parts.mkdir()
    pq.write_table(make_events(4, customers=2), parts / "part-0.parquet")
    pq.write_table(make_events(4, customers=3), parts / "part-1.parquet")  # has c2
    summary = run(parts, known_customer_ids=["c0", "c1"])
    assert (summary.inserted, summary.rejected) == (7, 1)
    (reject,) = summary.rejects
    assert (reject.row, reject.field, reject.value) == (3, "customer_id", "c2")
    assert "part-1.parquet" in reject.reason
    (line,) = read_rejects(summary.rejects_path)
    assert (line["row"], line["file"], line["customer_id"]) == ("3", "part-1.parquet", "c2")


@pytest.mark.parametrize(
    ("line", "field", "reason", "value"),
    [
        ("c1,login,2026-13-45,,,", "occurred_at", "is not a date/time", "2026-13-45"),
        ("c1,login,,,,", "occurred_at", "is empty", None),
        ("c9,login,2026-03-01,,,", "customer_id", "is not a known customer id", "c9"),
        ("  ,login,2026-03-01,,,", "customer_id", "is empty", "  "),
        ("c1,,2026-03-01,,,", "event", "is empty", None),
        ("c1,login,2026-03-01,,12;5,", "value", "is not a number", "12;5"),
        ("c1,login,2026-03-01,,inf,", "value", "is not a number", "inf"),
        ('c1,login,2026-03-01,,,"{""a"": 1"', "properties", "is not a JSON object", '{"a": 1'),
        ("c1,login,2026-03-01,,,[1]", "properties", "is not a JSON object", "[1]"),
        ("c1," + "e" * 201 + ",2026-03-01,,,", "event", "longer than 200", "e" * 201),
    ],
)
def test_bad_row_is_rejected_with_reason(
    run, store: EventStore, tmp_path: Path, line: str, field: str, reason: str, value
) -> None:
    summary = run(write_csv(tmp_path / "e.csv", [HEADER, GOOD[0], line, GOOD[1]]))
    assert (summary.rows, summary.inserted, summary.rejected) == (3, 2, 1)
    (reject,) = summary.rejects
    assert (reject.row, reject.field, reject.value) == (2, field, value)
    assert reason in reject.reason
    assert summary.rejects_path.parent == tmp_path / "rejects"
    assert summary.rejects_path.name.startswith("events-")
    assert summary.rejects_path.name.endswith("-rejects.csv")
    (row,) = read_rejects(summary.rejects_path)
    assert list(row)[:3] == ["row", "field", "reason"]
    assert list(row)[3:] == HEADER.split(",")
    assert (row["row"], row["field"]) == ("2", field)
    assert reason in row["reason"]
    assert store.count() == 2


def test_one_bad_row_among_ten_thousand(run, store: EventStore, tmp_path: Path) -> None:
    lines = [HEADER] + [
        f"c{i % 3 + 1},login,2026-03-01T00:00:{i % 60:02d}Z,,{i}," for i in range(10_000)
    ]
    lines[7_778] = "c1,login,not-a-time,,7777,"  # data row 7,778
    summary = run(write_csv(tmp_path / "e.csv", lines))
    assert (summary.rows, summary.inserted, summary.rejected) == (10_000, 9_999, 1)
    assert [(r.row, r.field) for r in summary.rejects] == [(7_778, "occurred_at")]
    assert store.count() == 9_999


def test_rejects_in_memory_are_capped_but_all_counted(run, tmp_path: Path) -> None:
    n = MAX_REJECTS_IN_MEMORY + 500
    lines = [HEADER] + [f"c1,login,{'bad' if i % 2 else '2026-03-01'},,," for i in range(2 * n)]
    summary = run(write_csv(tmp_path / "e.csv", lines))
    assert (summary.rows, summary.inserted, summary.rejected) == (2 * n, n, n)
    assert len(summary.rejects) == MAX_REJECTS_IN_MEMORY
    assert [r.row for r in summary.rejects[:3]] == [2, 4, 6]
    assert len(read_rejects(summary.rejects_path)) == n


def test_strict_mode_writes_nothing(run, store: EventStore, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "e.csv", [HEADER, GOOD[0], "c1,login,never,,,"])
    with pytest.raises(InvalidInput) as caught:
        run(path, strict=True)
    assert "1 of 2 row(s)" in caught.value.message
    assert "row 2, field 'occurred_at'" in caught.value.message
    assert "rejects.csv" in caught.value.hint
    assert store.count() == 0
    assert list(store.path.glob("*.parquet")) == []
    assert run(path).inserted == 1  # the same file, not strict: imported


def test_missing_required_column_names_it(run, store: EventStore, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "e.csv", ["customer_id,occurred_at", "c1,2026-03-01"])
    with pytest.raises(ImportFileError) as caught:
        run(path)
    assert "missing required column(s) ['event']" in caught.value.message
    assert "customer_id" in caught.value.message and "occurred_at" in caught.value.message
    assert store.version() is None


def test_wrong_encoding_names_line_and_byte(run, store: EventStore, tmp_path: Path) -> None:
    lines = [HEADER, GOOD[0], "c1,café,2026-03-01,,,", GOOD[1]]
    path = write_csv(tmp_path / "e.csv", lines, encoding="latin-1")
    with pytest.raises(ImportFileError) as caught:
        run(path)
    offset = path.read_bytes().index(b"\xe9")
    assert f"line 3 is not valid utf-8 (byte(s) e9 at byte offset {offset})" in caught.value.message
    assert "--encoding" in caught.value.hint
    assert store.version() is None
    summary = run(path, encoding="latin-1")
    assert summary.inserted == 3
    assert "café" in [r[1] for r in read_all(store)]


def test_other_encodings_are_converted(run, store: EventStore, tmp_path: Path) -> None:
    lines = [HEADER, 'c1,€uro,2026-03-01,,,"{""sign"": ""€""}"']
    assert (
        run(write_csv(tmp_path / "a.csv", lines, encoding="cp1252"), encoding="cp1252").inserted
        == 1
    )
    assert (
        run(write_csv(tmp_path / "b.csv", lines, encoding="utf-16"), encoding="utf-8").inserted == 1
    )
    assert [(r[1], r[5]) for r in read_all(store)] == [("€uro", '{"sign": "€"}')] * 2


def test_unknown_encoding_or_zone_is_refused(run, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "e.csv", [HEADER, GOOD[0]])
    with pytest.raises(InvalidInput, match="unknown encoding"):
        run(path, encoding="klingon")
    with pytest.raises(InvalidInput, match="unknown time zone"):
        run(path, timezone="Mars/Olympus")


def test_empty_file_is_an_error_and_header_only_imports_nothing(
    run, store: EventStore, tmp_path: Path
) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    with pytest.raises(ImportFileError, match="empty"):
        run(empty)
    summary = run(write_csv(tmp_path / "header.csv", [HEADER]))
    assert (summary.rows, summary.inserted, summary.rejected) == (0, 0, 0)
    assert any("no data rows" in n for n in summary.notes)
    assert store.version() is None


def test_ragged_line_refuses_the_file(run, store: EventStore, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "e.csv", [HEADER, GOOD[0], "c1,login,2026-03-01", GOOD[1]])
    with pytest.raises(ImportFileError) as caught:
        run(path)
    assert "Line: 3" in caught.value.message
    assert "as many fields as the header" in caught.value.hint
    assert store.count() == 0


def test_reimport_of_the_same_content_is_skipped(run, store: EventStore, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "e.csv", [HEADER, *GOOD])
    run(path)
    copy = write_csv(tmp_path / "same-content.csv", [HEADER, *GOOD])
    again = run(copy)
    assert again.skipped_file and (again.rows, again.inserted) == (0, 0)
    assert store.count() == 4
    other_zone = run(path, timezone="Asia/Tokyo")  # other options: other rows, other batch
    assert not other_zone.skipped_file
    assert store.count() == 8


def test_nothing_accepted_commits_nothing_so_a_fixed_import_can_follow(
    run, store: EventStore, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "e.csv", [HEADER, "c7,login,2026-03-01,,,"])
    first = run(path)
    assert (first.inserted, first.rejected) == (0, 1)
    assert store.count() == 0
    assert run(path, known_customer_ids=["c7"]).inserted == 1


def test_rejects_file_can_be_imported_once_fixed(run, store: EventStore, tmp_path: Path) -> None:
    summary = run(write_csv(tmp_path / "e.csv", [HEADER, GOOD[0], "c8,login,2026-03-01,,,"]))
    again = run(summary.rejects_path, known_customer_ids=[*KNOWN, "c8"])
    assert (again.inserted, again.rejected) == (1, 0)
    assert any("['row', 'field', 'reason']" in n for n in again.notes)
    assert store.count() == 2


def test_duplicates_are_kept_and_counted(run, store: EventStore, tmp_path: Path) -> None:
    summary = run(write_csv(tmp_path / "e.csv", [HEADER, GOOD[0], GOOD[0], GOOD[1], GOOD[0]]))
    assert summary.inserted == 4
    assert any(n.startswith("2 row(s) repeat another row") for n in summary.notes)


def test_without_known_ids_customers_are_not_checked(run, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "e.csv", [HEADER, "anyone,login,2026-03-01,,,"])
    assert run(path, known_customer_ids=None).inserted == 1


def test_known_ids_as_arrow_array(run, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "e.csv", [HEADER, *GOOD])
    summary = run(path, known_customer_ids=pa.array(["c1", None, "c2"]))
    assert (summary.inserted, summary.rejected) == (3, 1)


def test_mapping_renames_translates_defaults_and_zone(
    run, store: EventStore, tmp_path: Path
) -> None:
    lines = [
        "Account,Action,When,Extra",
        "c1,signin,2026-01-15 09:00,x",
        "c2,logout,2026-01-15 10:00,y",
    ]
    mapping = ColumnMapping(
        columns={"customer_id": "Account", "event": "Action", "occurred_at": "When"},
        defaults={"properties": '{"source": "crm"}'},
        values={"event": {"signin": "login"}},
        timezone="America/New_York",
    )
    summary = run(write_csv(tmp_path / "e.csv", lines), mapping=mapping)
    assert summary.inserted == 2
    assert any("['Extra']" in n for n in summary.notes)
    assert read_all(store) == [
        ("c1", "login", datetime(2026, 1, 15, 14, tzinfo=UTC), None, None, '{"source": "crm"}'),
        ("c2", "logout", datetime(2026, 1, 15, 15, tzinfo=UTC), None, None, '{"source": "crm"}'),
    ]


def test_mapping_naming_a_missing_column_is_a_file_error(run, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "e.csv", [HEADER, GOOD[0]])
    with pytest.raises(ImportFileError, match="does not have"):
        run(path, mapping=ColumnMapping(columns={"event": "Action"}))


def test_progress_is_reported_up_to_the_total(run, tmp_path: Path) -> None:
    calls: list[tuple[int, int]] = []
    run(write_csv(tmp_path / "e.csv", [HEADER, *GOOD]), progress=lambda d, t: calls.append((d, t)))
    assert calls and calls[-1][0] == calls[-1][1]
    assert all(0 <= d <= t for d, t in calls)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)


def test_missing_path_is_a_file_error(run, tmp_path: Path) -> None:
    with pytest.raises(ImportFileError, match="does not exist"):
        run(tmp_path / "nope.csv")


def test_duplicates_counted_by_duckdb_above_the_numpy_limit(
    run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("keepwell.events.importer.NUMPY_DUPLICATES_MAX_ROWS", 0)
    summary = run(write_csv(tmp_path / "e.csv", [HEADER, GOOD[1], GOOD[1], GOOD[2], GOOD[1]]))
    assert any(n.startswith("2 row(s) repeat another row") for n in summary.notes)
    unique = run(write_csv(tmp_path / "u.csv", [HEADER, *GOOD]))
    assert not any("repeat" in n for n in unique.notes)


def test_typed_parquet_columns_are_taken_as_they_are(
    run, store: EventStore, tmp_path: Path
) -> None:
    path = tmp_path / "typed.parquet"
    pq.write_table(
        pa.table(
            {
                "customer_id": ["c1", "c2"],
                "event": ["login", "login"],
                "occurred_at": pa.array(  # no zone: read in the import's zone
                    [datetime(2026, 1, 15, 9), datetime(2026, 7, 15, 9)], pa.timestamp("ms")
                ),
                "value": pa.array([3, None], pa.int64()),
                "properties": pa.array(
                    [{"plan": "pro", "seats": 3}, None],
                    pa.struct([("plan", pa.string()), ("seats", pa.int32())]),
                ),
            }
        ),
        path,
    )
    assert run(path, timezone="Europe/Berlin").inserted == 2
    assert read_all(store) == [
        (
            "c1",
            "login",
            datetime(2026, 1, 15, 8, tzinfo=UTC),
            None,
            3.0,
            '{"plan":"pro","seats":3}',
        ),
        ("c2", "login", datetime(2026, 7, 15, 7, tzinfo=UTC), None, None, None),
    ]


def test_unreadable_parquet_is_a_file_error(run, tmp_path: Path) -> None:
    path = tmp_path / "broken.parquet"
    path.write_bytes(b"PAR1 this is not really parquet")
    with pytest.raises(ImportFileError, match="not a readable Parquet file"):
        run(path)


def test_directory_without_parquet_is_a_file_error(run, tmp_path: Path) -> None:
    (tmp_path / "empty-dir").mkdir()
    with pytest.raises(ImportFileError, match=r"without \.parquet files"):
        run(tmp_path / "empty-dir")
