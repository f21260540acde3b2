"""POST /v1/events over real HTTP: good batches, bad rows, JSON lines, idempotency."""

from __future__ import annotations

import json
import uuid

import pyarrow as pa
import pytest

from keepwell.errors import InvalidInput
from keepwell.events.store import EventStore
from keepwell.web.ingest import InvalidRows, parse_events
from tests.web.conftest import Live, unique


@pytest.fixture
def customer(live: Live) -> str:
    ext = unique()
    with live.client() as api:
        api.post("/v1/customers", json={"external_id": ext, "name": "Events"}).raise_for_status()
    return ext


def stored(live: Live, customer_id: str) -> list[dict]:
    store = EventStore.from_settings(live.settings)
    import duckdb

    con = duckdb.connect()
    try:
        store.register(con)
        rows = con.execute(
            "SELECT customer_id, event, epoch_us(occurred_at), user_id, value, properties "
            "FROM events WHERE customer_id = ? ORDER BY 3, 2",
            [customer_id],
        ).fetchall()
    finally:
        con.close()
    keys = ("customer_id", "event", "occurred_us", "user_id", "value", "properties")
    return [dict(zip(keys, row, strict=True)) for row in rows]


def test_a_json_array_is_appended(live: Live, customer: str) -> None:
    batch = [
        {"customer_id": customer, "event": "login", "occurred_at": "2026-03-01T09:30:00Z"},
        {
            "customer_id": customer,
            "event": "export",
            "occurred_at": "2026-03-01T10:30:00+01:00",  # = 09:30 UTC
            "user_id": "u_7",
            "value": 3,
            "properties": {"format": "csv", "note": "<b>ü</b>"},
        },
    ]
    with live.client("csm") as api:
        answer = api.post("/v1/events", json=batch)
    assert answer.status_code == 200, answer.text
    assert answer.json()["rows"] == 2
    assert answer.json()["skipped"] is False
    rows = stored(live, customer)
    at_930 = 1772357400 * 1_000_000  # 2026-03-01T09:30:00Z in microseconds
    assert rows == [
        {
            "customer_id": customer,
            "event": "export",
            "occurred_us": at_930,
            "user_id": "u_7",
            "value": 3.0,
            "properties": '{"format":"csv","note":"<b>ü</b>"}',
        },
        {
            "customer_id": customer,
            "event": "login",
            "occurred_us": at_930,
            "user_id": None,
            "value": None,
            "properties": None,
        },
    ]


def test_json_lines_are_appended(live: Live, customer: str) -> None:
    body = (
        f'{{"customer_id": "{customer}", "event": "a", "occurred_at": "2026-01-01T00:00:00Z"}}\n'
        "\n"
        f'{{"customer_id": "{customer}", "event": "b", "occurred_at": "2026-01-02T00:00:00Z"}}\n'
    )
    with live.client() as api:
        answer = api.post(
            "/v1/events", content=body, headers={"Content-Type": "application/x-ndjson"}
        )
    assert answer.status_code == 200, answer.text
    assert [r["event"] for r in stored(live, customer)] == ["a", "b"]


def test_bad_rows_are_listed_by_row_and_nothing_is_written(live: Live, customer: str) -> None:
    good = {"customer_id": customer, "event": "login", "occurred_at": "2026-01-01T00:00:00Z"}
    batch = [
        good,
        {**good, "occurred_at": "2026-01-01T00:00:00"},  # 2: no zone
        {**good, "event": ""},  # 3
        {**good, "value": "many"},  # 4
        {**good, "colour": "red"},  # 5
        "not an object",  # 6
        {**good, "customer_id": "cus_nobody_" + uuid.uuid4().hex},  # 7 (checked once 2-6 pass)
        {**good, "properties": [1, 2]},  # 8
        {**good, "occurred_at": "soon"},  # 9
    ]
    with live.client() as api:
        answer = api.post("/v1/events", json=batch)
    assert answer.status_code == 422
    assert answer.headers["content-type"] == "application/problem+json"
    problem = answer.json()
    assert [(e["row"], e.get("field")) for e in problem["errors"]] == [
        (2, "occurred_at"),
        (3, "event"),
        (4, "value"),
        (5, "colour"),
        (6, None),
        (8, "properties"),
        (9, "occurred_at"),
    ]
    assert "nothing was written" in problem["detail"]
    assert stored(live, customer) == []


def test_unknown_customers_are_rejected_with_their_rows(live: Live, customer: str) -> None:
    good = {"customer_id": customer, "event": "login", "occurred_at": "2026-01-01T00:00:00Z"}
    stranger = "cus_nobody_" + uuid.uuid4().hex
    with live.client() as api:
        answer = api.post("/v1/events", json=[good, {**good, "customer_id": stranger}, good])
    assert answer.status_code == 422
    assert answer.json()["errors"] == [
        {"row": 2, "field": "customer_id", "message": f"no customer with external id {stranger!r}"}
    ]
    assert stored(live, customer) == []


def test_idempotency_key_writes_a_batch_once(live: Live, customer: str) -> None:
    batch = [{"customer_id": customer, "event": "login", "occurred_at": "2026-01-01T00:00:00Z"}]
    key = {"Idempotency-Key": str(uuid.uuid4())}
    with live.client() as api:
        first = api.post("/v1/events", json=batch, headers=key)
        again = api.post("/v1/events", json=batch, headers=key)
        other = api.post("/v1/events", json=batch, headers={"Idempotency-Key": str(uuid.uuid4())})
    assert first.json()["skipped"] is False
    assert again.status_code == 200
    assert again.json()["skipped"] is True
    assert again.json()["rows"] == 0
    assert other.json()["skipped"] is False
    assert len(stored(live, customer)) == 2


@pytest.mark.parametrize(
    ("content", "content_type", "status"),
    [
        (b"[]", "text/csv", 415),
        (b"{not json", "application/json", 422),
        (b'{"customer_id": "x"}', "application/json", 422),  # an object, not an array
        (b"[]", "application/json", 422),  # no rows
    ],
)
def test_unusable_bodies(live: Live, content: bytes, content_type: str, status: int) -> None:
    with live.client() as api:
        answer = api.post("/v1/events", content=content, headers={"Content-Type": content_type})
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"


def test_parse_events_types_every_column() -> None:
    body = json.dumps(
        [
            {
                "customer_id": "c",
                "event": "e",
                "occurred_at": "2026-01-01T00:00:00.5-05:00",
                "value": 2,
            }
        ]
    ).encode()
    table = parse_events(body, json_lines=False)
    assert table.schema.field("occurred_at").type == pa.timestamp("us", tz="UTC")
    assert table.column("occurred_at")[0].as_py().isoformat() == "2026-01-01T05:00:00.500000+00:00"
    assert table.column("value").to_pylist() == [2.0]


def test_parse_events_reports_bad_json_lines_by_line() -> None:
    body = b'{"customer_id": "c", "event": "e", "occurred_at": "2026-01-01T00:00:00Z"}\n{oops\n'
    with pytest.raises(InvalidRows) as caught:
        parse_events(body, json_lines=True)
    assert caught.value.errors[0]["row"] == 2
    with pytest.raises(InvalidInput, match="JSON array"):
        parse_events(b'"text"', json_lines=False)


def test_clean_batches_read_the_same_on_the_fast_and_the_careful_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from keepwell.web import ingest

    rows = [
        {"customer_id": "c", "event": "e", "occurred_at": "2026-01-01T00:00:00Z", "value": 1.5},
        {"customer_id": "d", "event": "f", "occurred_at": "2026-01-01T01:00:00+01:00"},
        {"customer_id": "d", "event": "g", "occurred_at": "2026-01-01T02:00:00Z", "value": 10**30},
    ]
    body = json.dumps(rows).encode()
    fast = parse_events(body, json_lines=False)
    lines = b"\n".join(json.dumps(r).encode() for r in rows)
    assert parse_events(lines, json_lines=True).equals(fast)
    monkeypatch.setattr(ingest, "_fast_events", lambda *_a, **_k: None)  # the row-by-row path
    careful = parse_events(body, json_lines=False)
    assert careful.equals(fast)
    assert careful.column("value").to_pylist() == [1.5, None, 1e30]
    assert parse_events(lines, json_lines=True).equals(fast)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"value": True}, "value"),
        ({"event": "   "}, "event"),
        ({"user_id": 7}, "user_id"),
        ({"customer_id": "x" * 1001}, "customer_id"),
    ],
)
def test_rows_the_fast_path_would_let_through_are_refused(change: dict, field: str) -> None:
    row = {"customer_id": "c", "event": "e", "occurred_at": "2026-01-01T00:00:00Z", **change}
    body = json.dumps([row]).encode()
    with pytest.raises(InvalidRows) as caught:
        parse_events(body, json_lines=False)
    assert caught.value.errors[0]["field"] == field
