"""Thin routers over other domains: tasks, deals, segments, campaigns, alert rules."""

from __future__ import annotations

import uuid
from urllib.parse import quote

from tests.web.conftest import Live, unique
from tests.web.test_api import assert_problem


def customer(live: Live, **fields) -> str:
    ext = unique()
    with live.client() as api:
        api.post(
            "/v1/customers", json={"external_id": ext, "name": "W", **fields}
        ).raise_for_status()
    return ext


def test_tasks_create_list_update_close(live: Live) -> None:
    ext = customer(live)
    with live.client("csm") as api:
        made = api.post(
            "/v1/tasks",
            json={
                "customer_id": ext,
                "title": "Call <them>",
                "owner_email": live.emails["csm"],
                "due_at": "2026-04-01T12:00:00Z",
                "priority": "high",
            },
        )
        assert made.status_code == 201, made.text
        task = made.json()
        assert (task["title"], task["priority"], task["status"]) == ("Call <them>", "high", "open")
        mine = api.get("/v1/tasks", params={"owner": live.emails["csm"], "customer": ext}).json()
        assert [t["id"] for t in mine] == [task["id"]]
        patched = api.patch(f"/v1/tasks/{task['id']}", json={"title": "Call back"})
        assert patched.json()["title"] == "Call back"
        assert api.post(f"/v1/tasks/{task['id']}/complete").json()["status"] == "done"
        assert api.post(f"/v1/tasks/{task['id']}/reopen").json()["status"] == "open"
        assert api.post(f"/v1/tasks/{task['id']}/explode").status_code == 422
        assert_problem(api.get("/v1/tasks/999999999"), 404)
        bad = api.post("/v1/tasks", json={"customer_id": unique(), "title": "x"})
        assert assert_problem(bad, 422)["errors"][0]["field"] == "customer_id"
    with live.client("viewer") as viewer:
        assert viewer.get(f"/v1/tasks/{task['id']}").status_code == 200
        assert viewer.post(f"/v1/tasks/{task['id']}/complete").status_code == 403


def test_deals_create_move_and_list(live: Live) -> None:
    ext = customer(live)
    with live.client("manager") as api:
        stages = api.get("/v1/deal-stages").json()
        assert stages, "the default pipeline has stages"
        made = api.post(
            "/v1/deals",
            json={"customer_id": ext, "title": "Upsell", "value_minor": 120000, "currency": "EUR"},
        )
        assert made.status_code == 201, made.text
        deal = made.json()
        assert deal["stage"] == stages[0]["name"]
        target = next(s["name"] for s in stages[1:] if s["outcome"] == "open")
        moved = api.post(f"/v1/deals/{deal['id']}/move", json={"stage": target})
        assert moved.status_code == 200, moved.text
        assert moved.json()["stage"] == target
        listed = api.get("/v1/deals", params={"customer": ext}).json()
        assert [d["id"] for d in listed] == [deal["id"]]
        patched = api.patch(f"/v1/deals/{deal['id']}", json={"value_minor": 150000})
        assert patched.json()["value_minor"] == 150000
        assert_problem(api.get("/v1/deals/999999999"), 404)


def test_segments_save_count_members(live: Live) -> None:
    industry = "seg" + uuid.uuid4().hex[:8]
    ext = customer(live, industry=industry)
    name = "seg-" + uuid.uuid4().hex[:8]
    flt = f'industry = "{industry}"'
    with live.client("csm") as api:
        preview = api.post("/v1/segments/preview", json={"filter": flt})
        assert preview.status_code == 200, preview.text
        assert preview.json() == {"count": 1}
        made = api.post("/v1/segments", json={"name": name, "filter": flt})
        assert made.status_code == 201, made.text
        assert api.get(f"/v1/segments/{name}").json()["count"] == 1
        members = api.get(f"/v1/segments/{name}/members").json()
        assert [m["external_id"] for m in members["items"]] == [ext]
        assert name in [s["name"] for s in api.get("/v1/segments").json()]
        bad = api.post("/v1/segments/preview", json={"filter": "industry = = ="})
        assert_problem(bad, 422)
        assert_problem(api.get("/v1/segments/" + "9" * 30), 404)
        assert api.delete(f"/v1/segments/{name}").status_code == 204
        assert_problem(api.get(f"/v1/segments/{name}"), 404)


def test_campaigns_and_templates_read(live: Live) -> None:
    with live.client("viewer") as api:
        assert isinstance(api.get("/v1/campaigns").json(), list)
        assert isinstance(api.get("/v1/email-templates").json(), list)
        assert_problem(api.get("/v1/campaigns/no-such-campaign"), 404)
        # not ids: a superscript digit, a number beyond BIGINT (found by schemathesis)
        for ref in ("²", "#²", str(2**63), "#" + str(2**64)):
            assert_problem(api.get(f"/v1/campaigns/{quote(ref, safe='')}"), 404)
            assert_problem(api.get(f"/v1/segments/{quote(ref, safe='')}"), 404)


def test_alert_rules_are_admin_settings(live: Live) -> None:
    with live.client("manager") as manager:
        assert isinstance(manager.get("/v1/alert-rules").json(), list)
        denied = manager.post("/v1/alert-rules", json={"name": "x"})
        assert denied.status_code == 403
    with live.client("admin") as admin:
        bad = admin.post("/v1/alert-rules", json={"name": "incomplete"})
        assert_problem(bad, 422)
        assert_problem(admin.get("/v1/alert-rules/no-such-rule"), 404)
        assert_problem(admin.post("/v1/alert-rules/no-such-rule/enable"), 404)


def test_alert_rule_webhook_secrets_are_masked(live: Live) -> None:
    name = "Hook " + uuid.uuid4().hex[:8]
    hook = {"type": "webhook", "url": "https://hooks.example/in", "secret": "s3cret-hook-key-0123"}
    definition = {"name": name, "trigger": "payment_failed", "actions": [hook]}
    masked = {**hook, "secret": "***", "timeout": 10.0, "retries": 2}  # defaults filled in
    with live.client("admin") as admin:
        made = admin.post("/v1/alert-rules", json=definition)
        assert made.status_code == 201, made.text
        assert made.json()["actions"][0]["secret"] == "***"
        assert admin.post(f"/v1/alert-rules/{made.json()['id']}/disable").json()["actions"] == [
            masked
        ]
    with live.client("viewer") as reader:
        listed = [r for r in reader.get("/v1/alert-rules").json() if r["name"] == name]
        one = reader.get(f"/v1/alert-rules/{name}")
        assert one.status_code == 200, one.text
        for rule in [*listed, one.json()]:
            assert rule["actions"] == [masked]
            assert (rule["trigger"], rule["enabled"]) == ("payment_failed", False)
        assert "s3cret-hook-key-0123" not in reader.get("/v1/alert-rules").text
        assert len(listed) == 1
