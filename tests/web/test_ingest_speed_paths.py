"""The fast paths of event ingestion give the same answers as the careful ones: the one-query
customer check (SQLite and PostgreSQL) and bad rows inside big otherwise clean batches."""

from __future__ import annotations

import json

import pytest
from sqlalchemy.orm import Session

from keepwell.errors import InvalidInput
from keepwell.web.ingest import InvalidRows, parse_events, unknown_customers
from tests.factories import make_customer


def test_unknown_customers_names_exactly_the_missing_ids(db_session: Session) -> None:
    for ext in ("acme", "o'brien", "ünï-😀", "50%_off"):
        make_customer(db_session, external_id=ext)
    asked = ["acme", "o'brien", "ünï-😀", "50%_off", "acme", "ACME", "o'brien ", "50%", "nobody"]
    assert unknown_customers(db_session=db_session, external_ids=asked) == {
        "ACME",
        "o'brien ",
        "50%",
        "nobody",
    }
    assert unknown_customers(db_session=db_session, external_ids=[]) == set()


def test_unknown_customers_takes_more_ids_than_one_chunk(db_session: Session) -> None:
    make_customer(db_session, external_id="known_1")
    make_customer(db_session, external_id="known_2")
    asked = [f"stranger_{i}" for i in range(12_000)] + ["known_1", "known_2"]
    unknown = unknown_customers(db_session=db_session, external_ids=asked)
    assert len(unknown) == 12_000
    assert "known_1" not in unknown and "known_2" not in unknown
    assert "stranger_11999" in unknown


def _row(i: int) -> dict:
    return {
        "customer_id": f"c{i % 7}",
        "event": "login",
        "occurred_at": "2026-01-01T00:00:00Z",
        "value": i,
        "properties": {"n": i} if i % 2 else None,
    }


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"occurred_at": "2026-01-01T00:00:00"}, "occurred_at"),
        ({"customer_id": None}, "customer_id"),
        ({"colour": "red"}, "colour"),
        ({"properties": "plan=pro"}, "properties"),
        ({"value": "1.5"}, "value"),
    ],
)
def test_one_bad_row_in_ten_thousand_is_named_by_its_number(change: dict, field: str) -> None:
    rows = [_row(i) for i in range(10_000)]
    rows[7776] = {**rows[7776], **change}
    with pytest.raises(InvalidRows) as caught:
        parse_events(json.dumps(rows).encode(), json_lines=False)
    assert caught.value.total == 1
    assert [(e["row"], e.get("field")) for e in caught.value.errors] == [(7777, field)]


def test_json_lines_count_blank_lines_in_row_numbers_of_bad_rows() -> None:
    lines = [json.dumps(_row(i)) for i in range(3000)]
    lines.insert(10, "")  # line 11 is blank
    lines[2000] = json.dumps({**_row(1999), "extra": 1})  # line 2001
    body = "\n".join(lines).encode()
    with pytest.raises(InvalidRows) as caught:
        parse_events(body, json_lines=True)
    assert [(e["row"], e.get("field")) for e in caught.value.errors] == [(2001, "extra")]
    clean = "\n".join(line for i, line in enumerate(lines) if i != 2000).encode()
    table = parse_events(clean, json_lines=True)
    assert table.num_rows == 2999
    assert table.column("value").to_pylist()[:2] == [0.0, 1.0]
    assert table.column("properties").to_pylist()[:2] == [None, '{"n":1}']


def test_a_committed_key_is_skipped_even_when_its_body_no_longer_passes(tmp_path) -> None:
    """The key is looked up by the store's append; a retry failing the checks still skips."""
    from keepwell.events.store import EventStore
    from keepwell.web.ingest import append_events

    store = EventStore(tmp_path / "events")
    row = {"customer_id": "acme", "event": "login", "occurred_at": "2026-01-01T00:00:00Z"}
    body = json.dumps([row]).encode()
    with _sqlite_session(tmp_path) as db_session:
        make_customer(db_session, external_id="acme")
        rows, first = append_events(
            db_session=db_session, store=store, body=body, json_lines=False, idempotency_key="k1"
        )
        assert (rows, first.skipped) == (1, False)
        rows, again = append_events(
            db_session=db_session, store=store, body=body, json_lines=False, idempotency_key="k1"
        )
        assert (rows, again.skipped) == (0, True)
        stranger = json.dumps([{**row, "customer_id": "nobody"}]).encode()
        rows, retry = append_events(
            db_session=db_session,
            store=store,
            body=stranger,
            json_lines=False,
            idempotency_key="k1",
        )
        assert (rows, retry.skipped) == (0, True)
        with pytest.raises(InvalidRows):  # a new key with the same body is checked
            append_events(
                db_session=db_session,
                store=store,
                body=stranger,
                json_lines=False,
                idempotency_key="k2",
            )
        with pytest.raises(InvalidInput):
            append_events(
                db_session=db_session,
                store=store,
                body=b"{",
                json_lines=False,
                idempotency_key="k3",
            )
    assert store.version() == 1  # one commit: the first batch


def _sqlite_session(tmp_path):
    from keepwell import migrate
    from keepwell.db import make_engine, session_scope

    engine = make_engine(f"sqlite:///{tmp_path / 'kw.db'}")
    migrate.upgrade(engine)
    return session_scope(engine)


_RICH = [
    {
        "customer_id": "ünï-😀",
        "event": "export",
        "occurred_at": "2026-01-01T00:00:00.25+05:30",
        "user_id": None,
        "value": 0,
        "properties": {"note": "<b>ü</b>", "nested": {"list": [1, 2.5, None, True]}, "n": -1},
    },
    {"customer_id": "c", "event": "e", "occurred_at": "2026-01-01T00:00:00Z", "value": 10**30},
    {"customer_id": "c", "event": "e", "occurred_at": "2026-01-01T00:00:00Z", "properties": None},
    {"customer_id": "c", "event": "e", "occurred_at": "2026-01-01T00:00:00Z", "value": -2.5e-7},
]


@pytest.mark.parametrize("json_lines", [False, True])
def test_the_fast_and_the_careful_path_build_the_same_table(
    json_lines: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    from keepwell.web import ingest

    if json_lines:
        body = "\n".join(json.dumps(r, ensure_ascii=False) for r in _RICH).encode()
    else:
        body = json.dumps(_RICH).encode()
    fast = parse_events(body, json_lines=json_lines)
    monkeypatch.setattr(ingest, "_fast_events", lambda body, json_lines: None)
    careful = parse_events(body, json_lines=json_lines)
    assert fast.equals(careful)
    assert fast.column("value").to_pylist() == [0.0, 1e30, None, -2.5e-7]
    assert fast.column("properties").to_pylist()[0] == (
        '{"note":"<b>ü</b>","nested":{"list":[1,2.5,null,true]},"n":-1}'
    )
    assert fast.column("occurred_at")[0].as_py().isoformat() == "2025-12-31T18:30:00.250000+00:00"


@pytest.mark.parametrize(
    ("lines", "problems"),
    [
        # an object spread over two lines is two bad lines, not one row
        (
            [json.dumps(_row(0)), '{"customer_id": "c1", "event": "e",', '"occurred_at": "x"}'],
            [(2, None), (3, None)],
        ),
        # two objects on one line
        ([json.dumps(_row(0)) + " " + json.dumps(_row(1)), json.dumps(_row(2))], [(1, None)]),
        # a number beyond a double
        (
            [json.dumps(_row(0)), json.dumps(_row(1)).replace('"value": 1', '"value": 1e999')],
            [(2, None)],
        ),
        # blank in Unicode terms (an em space) is blank
        ([json.dumps(_row(0)), json.dumps({**_row(1), "event": "\u2003"})], [(2, "event")]),
    ],
)
def test_json_lines_that_only_a_lenient_reader_would_take_are_named(
    lines: list[str], problems: list[tuple[int, str | None]]
) -> None:
    with pytest.raises(InvalidRows) as caught:
        parse_events("\n".join(lines).encode(), json_lines=True)
    assert [(e["row"], e.get("field")) for e in caught.value.errors] == problems


def test_a_number_beyond_a_double_makes_a_json_array_unusable() -> None:
    body = json.dumps([_row(0), _row(1)]).replace('"value": 1', '"value": 1e999').encode()
    with pytest.raises(InvalidInput, match="not valid JSON") as caught:
        parse_events(body, json_lines=False)
    assert not isinstance(caught.value, InvalidRows)
