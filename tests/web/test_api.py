"""The /v1 REST API over real HTTP: customers, contacts, tags, notes, reports, problem details."""

from __future__ import annotations

import uuid

import pytest

from keepwell.db import session_scope
from keepwell.metrics.registry import TITLES
from tests.factories import make_subscription
from tests.web.conftest import Live, unique

HOSTILE = {
    "script": "<script>alert('x')</script>",
    "sql": "Robert'); DROP TABLE customers;-- \" OR 1=1",
    "rtl-emoji": "\u202eשלום עולם 🚀👩‍👩‍👧 مرحبا",  # noqa: RUF001
    "nul-ish": "tab\there\nnewline \\ backslash %_ like",
}


def quote_safe(text: str) -> str:
    """``text`` without what a URL path segment cannot carry ("/" and control characters)."""
    return "".join(ch for ch in text if ch != "/" and ch.isprintable())


def assert_problem(answer, status: int, kind: str | None = None) -> dict:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    body = answer.json()
    assert {"type", "title", "status", "detail"} <= set(body)
    assert body["status"] == status
    if kind:
        assert body["type"] == f"urn:keepwell:problem:{kind}"
    return body


def test_create_get_patch_a_customer(live: Live) -> None:
    ext = unique()
    with live.client("csm") as api:
        created = api.post(
            "/v1/customers",
            json={
                "external_id": ext,
                "name": "Acme",
                "industry": "travel",
                "country": "de",
                "time_zone": "Europe/Berlin",
                "signup_at": "2026-03-01T09:30:00+02:00",
                "owner_email": live.emails["csm"],
                "attributes": {"seats": 12},
                "tags": ["vip", "beta"],
            },
        )
        assert created.status_code == 201, created.text
        body = created.json()
        assert body["country"] == "DE"
        assert body["signup_at"] == "2026-03-01T07:30:00Z"
        assert body["tags"] == ["beta", "vip"]
        assert body["owner_email"] == live.emails["csm"]
        patched = api.patch(f"/v1/customers/{ext}", json={"name": "Acme GmbH", "status": "churned"})
        assert patched.status_code == 200
        assert patched.json()["name"] == "Acme GmbH"
        assert patched.json()["status"] == "churned"
        assert patched.json()["industry"] == "travel"  # untouched
        timeline = api.get(f"/v1/customers/{ext}/timeline").json()
        kinds = [item["kind"] for item in timeline]
        assert "customer.created" in kinds
        assert "customer.updated" in kinds
        assert "tag.added" in kinds


def test_duplicate_and_missing_customers_are_problems(live: Live) -> None:
    ext = unique()
    with live.client() as api:
        assert api.post("/v1/customers", json={"external_id": ext, "name": "A"}).status_code == 201
        assert_problem(
            api.post("/v1/customers", json={"external_id": ext, "name": "B"}), 409, "already-exists"
        )
        assert_problem(api.get(f"/v1/customers/{unique()}"), 404, "not-found")
        assert_problem(api.patch(f"/v1/customers/{unique()}", json={"name": "x"}), 404)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "no id"}, "body.external_id"),
        ({"external_id": "x", "name": ""}, "body.name"),
        ({"external_id": "x", "name": "A", "status": "zombie"}, "body.status"),
        ({"external_id": "x", "name": "A", "signup_at": "yesterday"}, "body.signup_at"),
        ({"external_id": "x", "name": "A", "colour": "red"}, "body.colour"),
        ({"external_id": "x", "name": "A" * 256}, "body.name"),
    ],
)
def test_validation_problems_name_the_field(live: Live, body: dict, field: str) -> None:
    with live.client() as api:
        problem = assert_problem(api.post("/v1/customers", json=body), 422, "validation")
    assert field in [e["field"] for e in problem["errors"]]


def test_service_validation_is_a_problem_too(live: Live) -> None:
    with live.client() as api:
        answer = api.post(
            "/v1/customers", json={"external_id": unique(), "name": "A", "time_zone": "Mars/Base"}
        )
        problem = assert_problem(answer, 422, "validation")
        assert problem["errors"][0]["field"] == "time_zone"
        assert "'Mars/Base'" in problem["errors"][0]["message"]
        answer = api.post(
            "/v1/customers", json={"external_id": unique(), "name": "A", "owner_email": "x@y.z"}
        )
        assert assert_problem(answer, 422)["errors"][0]["field"] == "owner_email"


def test_malformed_json_is_a_problem(live: Live) -> None:
    with live.client() as api:
        answer = api.post(
            "/v1/customers", content=b"{not json", headers={"Content-Type": "application/json"}
        )
    assert_problem(answer, 422, "validation")


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_hostile_text_is_stored_and_returned_intact(live: Live, kind: str) -> None:
    text = HOSTILE[kind]
    ext = unique() + quote_safe(text[:20])
    tag = quote_safe(text[:80])
    with live.client() as api:
        created = api.post(
            "/v1/customers",
            json={"external_id": ext, "name": text, "company": text, "attributes": {text: text}},
        )
        assert created.status_code == 201, created.text
        got = api.get(f"/v1/customers/{ext}")
        assert got.status_code == 200, got.text
        assert got.json()["name"] == text
        assert got.json()["company"] == text
        assert got.json()["attributes"] == {text: text}
        tagged = api.put(f"/v1/customers/{ext}/tags/{tag}")
        assert tagged.status_code == 200, tagged.text
        assert tagged.json()["tags"] == [tag.strip()]
        found = api.get("/v1/customers", params={"search": text}).json()
        assert [c["external_id"] for c in found["items"]] == [ext]
        note = api.post(f"/v1/customers/{ext}/notes", json={"body": text})
        assert (
            api.get(f"/v1/customers/{ext}/notes").json()[0]["body"] == text == note.json()["body"]
        )


def test_ten_kilobyte_strings(live: Live) -> None:
    big = ("<b>x</b>'; 🚀" * 1000)[:10_240]
    ext = unique()
    with live.client() as api:
        # Text columns take 10 kB intact ...
        created = api.post(
            "/v1/customers", json={"external_id": ext, "name": "Big", "attributes": {"big": big}}
        )
        assert created.status_code == 201
        note = api.post(f"/v1/customers/{ext}/notes", json={"body": big})
        assert note.status_code == 201
        assert api.get(f"/v1/customers/{ext}/notes").json()[0]["body"] == big
        assert api.get(f"/v1/customers/{ext}").json()["attributes"]["big"] == big
        # ... a name is at most 255 characters: refused with the field named, nothing stored.
        refused = api.post("/v1/customers", json={"external_id": unique(), "name": big})
        assert assert_problem(refused, 422)["errors"][0]["field"] == "body.name"
        refused = api.get("/v1/customers", params={"search": big})
        assert_problem(refused, 422)


def test_list_filters_sorts_and_pages(live: Live) -> None:
    industry = "ind-" + uuid.uuid4().hex[:8]
    with live.client() as api:
        ids = []
        for n, name in enumerate(["Charlie", "Alpha", "Bravo", "Delta", "Echo"]):
            ext = unique()
            ids.append(ext)
            api.post(
                "/v1/customers",
                json={
                    "external_id": ext,
                    "name": name,
                    "industry": industry,
                    "signup_at": f"2026-0{n + 1}-01T00:00:00Z",
                    "status": "trial" if n % 2 else "active",
                },
            ).raise_for_status()
        page = api.get("/v1/customers", params={"industry": industry, "limit": 2}).json()
        assert page["total"] == 5
        assert [c["name"] for c in page["items"]] == ["Alpha", "Bravo"]
        assert page["next_offset"] == 2
        last = api.get(
            "/v1/customers", params={"industry": industry, "limit": 2, "offset": 4}
        ).json()
        assert [c["name"] for c in last["items"]] == ["Echo"]
        assert last["next_offset"] is None
        newest = api.get(
            "/v1/customers",
            params={"industry": industry, "sort": "signup_at", "order": "desc", "limit": 1},
        ).json()
        assert newest["items"][0]["name"] == "Echo"
        trials = api.get("/v1/customers", params={"industry": industry, "status": "trial"}).json()
        assert sorted(c["name"] for c in trials["items"]) == ["Alpha", "Delta"]
        api.put(f"/v1/customers/{ids[0]}/tags/{industry}")
        tagged = api.get("/v1/customers", params={"tag": industry}).json()
        assert [c["external_id"] for c in tagged["items"]] == [ids[0]]
        for params in ({"sort": "mrr"}, {"limit": 0}, {"offset": -1}, {"order": "up"}):
            assert_problem(api.get("/v1/customers", params=params), 422, "validation")


def test_list_shows_plan_and_mrr(live: Live) -> None:
    ext = unique()
    with live.client() as api:
        api.post("/v1/customers", json={"external_id": ext, "name": "Paying"}).raise_for_status()
        customer_id = api.get(f"/v1/customers/{ext}").json()["id"]
        with session_scope(live.engine) as db_session:
            from keepwell.customers.models import Customer

            customer = db_session.get(Customer, customer_id)
            make_subscription(db_session, customer, plan="pro", mrr_minor=4900)
        row = api.get("/v1/customers", params={"search": ext}).json()["items"][0]
    assert (row["plan"], row["mrr_minor"], row["currency"]) == ("pro", 4900, "USD")


def test_contacts_tags_and_notes(live: Live) -> None:
    ext = unique()
    with live.client("manager") as api:
        api.post("/v1/customers", json={"external_id": ext, "name": "C"}).raise_for_status()
        first = api.post(
            f"/v1/customers/{ext}/contacts",
            json={"name": "Ana", "email": "ana@c.test", "is_primary": True},
        ).json()
        second = api.post(
            f"/v1/customers/{ext}/contacts", json={"name": "Bo", "is_primary": True}
        ).json()
        contacts = {c["name"]: c for c in api.get(f"/v1/customers/{ext}/contacts").json()}
        assert contacts["Ana"]["is_primary"] is False  # the new primary demoted the old one
        assert contacts["Bo"]["is_primary"] is True
        assert api.delete(f"/v1/customers/{ext}/contacts/{first['id']}").status_code == 204
        assert [c["id"] for c in api.get(f"/v1/customers/{ext}/contacts").json()] == [second["id"]]
        assert_problem(api.delete(f"/v1/customers/{ext}/contacts/{first['id']}"), 404)

        assert api.put(f"/v1/customers/{ext}/tags/champion").json()["tags"] == ["champion"]
        assert api.put(f"/v1/customers/{ext}/tags/champion").json()["tags"] == ["champion"]
        tags = {t["name"]: t["customers"] for t in api.get("/v1/tags").json()}
        assert tags["champion"] >= 1
        assert api.delete(f"/v1/customers/{ext}/tags/champion").json()["tags"] == []
        assert api.delete(f"/v1/customers/{ext}/tags/champion").status_code == 200

        api.post(f"/v1/customers/{ext}/notes", json={"body": "first"}).raise_for_status()
        api.post(f"/v1/customers/{ext}/notes", json={"body": "second"}).raise_for_status()
        notes = api.get(f"/v1/customers/{ext}/notes").json()
        assert [n["body"] for n in notes] == ["second", "first"]
        assert notes[0]["author_id"] == api.get("/v1/me").json()["user"]["id"]
        assert_problem(api.post(f"/v1/customers/{ext}/notes", json={"body": ""}), 422)


def test_reports_catalogue(live: Live) -> None:
    with live.client("viewer") as api:
        catalogue = api.get("/v1/reports").json()
    assert [m["name"] for m in catalogue] == list(TITLES)
    assert {"start", "end", "period"} <= set(catalogue[0]["params"])


@pytest.mark.parametrize(
    "names",
    [
        pytest.param(["churn", "mrr"], id="two"),
        pytest.param(list(TITLES), id="all", marks=pytest.mark.slow),  # ~20 s
    ],
)
def test_metrics_run_as_json(live: Live, names: list[str]) -> None:
    with live.client("viewer") as api:
        for name in names:
            answer = api.get(
                f"/v1/reports/{name}", params={"from": "2026-01-01", "to": "2026-03-01"}
            )
            assert answer.status_code == 200, (name, answer.text)
            body = answer.json()
            assert body["metric"] == name
            assert (body["start"], body["end"], body["period"]) == (
                "2026-01-01",
                "2026-03-01",
                "month",
            )
            assert isinstance(body["rows"], list)


def test_report_parameter_problems(live: Live) -> None:
    with live.client() as api:
        assert_problem(api.get("/v1/reports/nope"), 422)
        assert_problem(api.get("/v1/reports/churn", params={"period": "decade"}), 422)
        assert_problem(
            api.get("/v1/reports/churn", params={"from": "2026-03-01", "to": "2026-01-01"}), 422
        )
        bad = assert_problem(api.get("/v1/reports/churn", params={"segment": "oops"}), 422)
        assert bad["errors"][0]["field"] == "segment"
        unknown = assert_problem(api.get("/v1/reports/churn", params={"param": "zzz=1"}), 422)
        assert "zzz" in unknown["detail"]


def test_risk_and_health_without_scores(live: Live) -> None:
    with live.client("viewer") as api:
        health = api.get("/v1/health/scores").json()
        assert health["items"] == [] or isinstance(health["items"], list)
        ext = unique()
    with live.client() as api:
        api.post("/v1/customers", json={"external_id": ext, "name": "H"}).raise_for_status()
        assert api.get(f"/v1/customers/{ext}/health").json() == []


def test_openapi_lists_the_api(live: Live) -> None:
    with live.client("viewer") as api:
        schema = api.get("/openapi.json").json()
        docs = api.get("/docs")
        assert docs.status_code == 200
        assert "/v1/events" in docs.text and "Idempotency-Key" in docs.text
        assert "cdn" not in docs.text.lower() and "<script" not in docs.text.lower()
    paths = schema["paths"]
    for path in (
        "/v1/customers",
        "/v1/customers/{external_id}",
        "/v1/customers/{external_id}/contacts",
        "/v1/customers/{external_id}/tags/{tag}",
        "/v1/customers/{external_id}/notes",
        "/v1/reports/{metric}",
        "/v1/risk/worklist",
        "/v1/health/scores",
        "/v1/events",
        "/v1/webhooks/stripe",
    ):
        assert path in paths, path
    assert "/login" not in paths


def test_risk_worklist_and_health_scores(live: Live) -> None:
    from keepwell.customers.models import Customer
    from keepwell.health.models import HealthScore
    from keepwell.risk.models import RiskScore
    from tests.factories import at

    exts = [unique(), unique()]
    with live.client() as api:
        # The only test that scores risk on this server: before it, there is no run.
        assert_problem(api.get("/v1/risk/worklist"), 404, "not-found")
        ids = [
            api.post("/v1/customers", json={"external_id": e, "name": e}).json()["id"] for e in exts
        ]
    run_at = at(2031, 1, 1)  # later than any other run: this is the latest
    with session_scope(live.engine) as db_session:
        for customer_id, p, at_risk in ((ids[0], 0.2, 50_000), (ids[1], 0.9, 10_000)):
            db_session.add(
                RiskScore(
                    customer_id=customer_id,
                    scored_at=run_at,
                    as_of=run_at,
                    model_version="test",
                    probability=p,
                    band="high" if p > 0.5 else "low",
                    reasons=[{"text": f"reason {p}"}],
                    revenue_at_risk_minor=at_risk,
                    currency="EUR",
                )
            )
            for day, score in ((1, 40.0), (2, 55.5)):
                db_session.add(
                    HealthScore(
                        customer_id=customer_id,
                        scored_at=at(2031, 1, day),
                        as_of=at(2031, 1, day),
                        score=score,
                        band="yellow",
                        components={"usage": score},
                        config="default",
                    )
                )
        assert db_session.get(Customer, ids[0]) is not None
    with live.client("viewer") as api:
        work = api.get("/v1/risk/worklist", params={"limit": 5}).json()
        assert [w["external_id"] for w in work] == exts  # by revenue at risk, highest first
        assert work[0]["reasons"] == ["reason 0.2"]
        history = api.get(f"/v1/customers/{exts[0]}/health").json()
        assert [h["score"] for h in history] == [55.5, 40.0]
        scores = api.get("/v1/health/scores", params={"limit": 1000}).json()
        latest = {i["customer_id"]: i["health"] for i in scores["items"]}
        assert latest[exts[0]] == latest[exts[1]] == 55.5
