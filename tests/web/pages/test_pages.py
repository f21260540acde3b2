"""Staff pages through the real app: status, content, filters, writes, roles, CSRF, escaping."""

from __future__ import annotations

import csv
import io
import re
import uuid

import pytest
from markupsafe import escape
from sqlalchemy import select

from keepwell.customers import notes as notes_service
from keepwell.db import session_scope
from keepwell.tasks.models import Task, TaskStatus
from tests.web.pages.conftest import HOSTILE, HOSTILE_LONG, Site, csrf_of, post_form

PAGES = ["/", "/customers", "/customers/acme", "/tasks", "/segments", "/campaigns", "/deals"]


def rows_shown(html: str) -> list[str]:
    """External ids of the customer rows on a list page (admin view: one checkbox per row)."""
    return re.findall(r'name="ids" value="([^"]+)"', html)


def flash_error(html: str) -> str | None:
    match = re.search(r'<div class="flash bad" role="alert">(.*?)</div>', html, re.S)
    return match.group(1).strip() if match else None


@pytest.mark.parametrize(
    "path",
    [*PAGES, "/settings", "/customers/export.csv", "/segments/count?filter=x", "/campaigns/1"],
)
def test_anonymous_visitors_are_sent_to_the_login_page(site: Site, path: str) -> None:
    with site.anonymous() as client:
        answer = client.get(path)
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/login?next=" + path.split("?")[0])


def test_anonymous_writes_go_to_the_login_page_and_change_nothing(site: Site) -> None:
    body = f"anonymous {uuid.uuid4().hex}"
    with site.anonymous() as client:
        answer = client.post("/customers/acme/notes", data={"body": body})
    assert answer.status_code == 303 and answer.headers["location"].startswith("/login")
    assert body not in site.client("admin").get("/customers/acme").text


@pytest.mark.parametrize("path", PAGES)
def test_every_page_renders_for_every_role(site: Site, path: str) -> None:
    for role in ("admin", "csm", "viewer"):
        answer = site.client(role).get(path)
        assert answer.status_code == 200, (role, answer.text[:500])
        assert answer.headers["content-type"].startswith("text/html")
        assert "<nav>" in answer.text


def test_settings_are_for_admins_only(site: Site) -> None:
    assert site.client("admin").get("/settings").status_code == 200
    assert site.client("csm").get("/settings").status_code == 403
    assert site.client("viewer").get("/settings").status_code == 403
    assert 'href="/settings"' in site.client("admin").get("/").text
    assert 'href="/settings"' not in site.client("csm").get("/").text


def test_unknown_customer_is_a_404_page(site: Site) -> None:
    answer = site.client("csm").get("/customers/no-such-one")
    assert answer.status_code == 404
    assert "No customer with external id &#39;no-such-one&#39;" in answer.text


# -- dashboard --------------------------------------------------------------------------------


def kpi(html: str, key: str) -> str:
    match = re.search(
        rf'data-kpi="{key}">\s*<div class="label">.*?</div>\s*<div class="value">(.*?)</div>',
        html,
        re.S,
    )
    assert match, f"no KPI {key}"
    return match.group(1)


def test_dashboard_shows_the_figures_of_the_data(site: Site) -> None:
    html = site.client("viewer").get("/?months=6&period=month").text
    # acme 99.00 + globex 29.00 a month, both paying since 400 days ago, nobody left
    assert kpi(html, "customers") == "2"
    assert kpi(html, "mrr") == "$128.00"
    assert kpi(html, "churn") == "0.0%"
    assert kpi(html, "nrr") == "100.0%"
    # latest risk run: acme high; revenue at risk 0.42 x 1188.00 + 0.05 x 348.00
    assert kpi(html, "at_risk") == "1"
    assert kpi(html, "revenue_at_risk") == "$516.36"
    assert html.count('src="data:image/png;base64,') >= 2  # cohort heatmap, MRR movements


def test_dashboard_second_visit_computes_nothing_and_a_data_change_recomputes(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    from keepwell.reports import background, cache

    monkeypatch.setattr(background, "STALE_WAIT", 300)  # wait for the new figures

    client = site.client("admin")
    client.get("/?months=3&period=week")
    before = cache.STATS.misses
    hits = cache.STATS.hits
    again = client.get("/?months=3&period=week")
    assert again.status_code == 200
    assert cache.STATS.misses == before  # nothing computed the second time
    assert cache.STATS.hits > hits
    assert any((site.settings.home / "cache" / "metrics").iterdir())
    post_form(
        client,
        "/customers",
        "/customers/bulk-tag",
        {"ids": ["c060"], "tag": f"t-{uuid.uuid4().hex[:6]}", "action": "add"},
    )
    after = client.get("/?months=3&period=week")
    assert cache.STATS.misses > before  # tagging changed the data: computed again
    assert 'data-state="' not in after.text  # fresh figures, no notice


def test_dashboard_rejects_a_bad_period(site: Site) -> None:
    assert site.client("csm").get("/?period=decade").status_code == 422
    assert site.client("csm").get("/?months=0").status_code == 422


# -- customers list ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("tag=vip", ["acme", "globex"]),
        ("risk=high", ["acme"]),
        ("risk=low", ["globex"]),
        ("health=red", ["acme"]),
        ("health=green", ["globex"]),
        ("owner=CSM@example.com", ["acme"]),
        ("q=GLOB", ["globex"]),
        (
            "q=filler&per_page=25&page=3&sort=external_id&order=desc",
            [f"c{i:03d}" for i in range(10, 0, -1)],
        ),
        ("q=nobody-has-this", []),
    ],
)
def test_customer_filters(site: Site, query: str, expected: list[str]) -> None:
    html = site.client("admin").get("/customers?" + query).text
    assert rows_shown(html) == expected


def test_segment_filter_lists_its_members(site: Site) -> None:
    html = site.client("admin").get(f"/customers?segment={site.ids['segment']}").text
    assert rows_shown(html) == ["acme", "globex"]
    assert "Customers <span" in html and "(2)" in html
    unknown = site.client("admin").get("/customers?segment=999999")
    assert unknown.status_code == 200
    assert "no segment" in unknown.text.lower()


def test_bad_list_parameters_are_refused(site: Site) -> None:
    for query in ("risk=extreme", "sort=password", "page=0", "per_page=1000", "segment=abc"):
        assert site.client("csm").get("/customers?" + query).status_code == 422, query


def test_csv_export_streams_the_filtered_list(site: Site) -> None:
    answer = site.client("viewer").get("/customers/export.csv?tag=vip")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    assert [r["external_id"] for r in rows] == ["acme", "globex"]
    assert rows[0]["mrr"] == "99.00" and rows[0]["currency"] == "USD"
    assert rows[0]["risk_band"] == "high" and rows[0]["churn_probability"] == "0.4200"
    assert rows[0]["health_band"] == "red" and rows[0]["health"] == "35.0"
    assert rows[0]["owner"] == "csm@example.com"
    everyone = list(
        csv.DictReader(io.StringIO(site.client("csm").get("/customers/export.csv").text))
    )
    assert len(everyone) == 63


def test_csv_export_keeps_hostile_text_and_defuses_formulas(site: Site) -> None:
    rows = list(
        csv.DictReader(
            io.StringIO(site.client("admin").get("/customers/export.csv?q=hostile").text)
        )
    )
    assert len(rows) == 1
    assert rows[0]["name"] == HOSTILE
    assert rows[0]["company"] == "'=1+2"


def test_bulk_tag_and_untag(site: Site) -> None:
    client = site.client("csm")
    tag = f"bulk-{uuid.uuid4().hex[:8]}"
    done = post_form(
        client,
        "/customers",
        "/customers/bulk-tag",
        {"ids": ["c001", "c002"], "tag": tag, "action": "add", "back": "/customers?q=filler"},
    )
    assert done.status_code == 303
    assert done.headers["location"] == "/customers?q=filler"
    page = client.get(done.headers["location"]).text
    assert f"2 of 2 customers tagged &#39;{tag}&#39;" in page
    assert rows_shown(site.client("admin").get(f"/customers?tag={tag}").text) == ["c001", "c002"]
    post_form(
        client,
        "/customers",
        "/customers/bulk-tag",
        {"ids": ["c002"], "tag": tag, "action": "remove"},
    )
    assert rows_shown(site.client("admin").get(f"/customers?tag={tag}").text) == ["c001"]


def test_bulk_tag_errors_change_nothing(site: Site) -> None:
    client = site.client("csm")
    tag = f"bad-{uuid.uuid4().hex[:8]}"
    answer = post_form(
        client, "/customers", "/customers/bulk-tag", {"ids": ["c003", "nope"], "tag": tag}
    )
    assert answer.status_code == 303
    assert "not found: nope" in flash_error(client.get("/customers").text)
    assert rows_shown(site.client("admin").get(f"/customers?tag={tag}").text) == []
    answer = post_form(client, "/customers", "/customers/bulk-tag", {"tag": tag})
    assert "tick at least one customer" in flash_error(client.get("/customers").text)
    external = post_form(
        client,
        "/customers",
        "/customers/bulk-tag",
        {"ids": ["c003"], "tag": "x", "back": "//evil.example/"},
    )
    assert external.headers["location"] == "/"


# -- customer 360 -----------------------------------------------------------------------------


def test_customer_360_shows_profile_money_risk_health_usage_and_timeline(site: Site) -> None:
    html = site.client("viewer").get("/customers/acme").text
    assert "<h1" in html and "Acme Corp" in html
    assert '$99.00</strong> <span class="muted">MRR now' in html
    assert "pro · $99.00/mo · active" in html
    assert "high</span> <strong>42%</strong> chance to churn" in html
    assert "$498.96 at risk" in html
    assert "usage fell 60% in 28 days" in html
    assert [
        int(s) for s in re.findall(r'<td class="num">(\d+)</td><td><span class="pill band-', html)
    ] == [35, 31]
    assert "4 events on 2 of 90 days" in html
    assert html.count("<rect ") == 90
    assert "Tagged vip" in html
    assert "Call Acme about usage" in html
    assert "Upsell to enterprise" in html


def test_add_note_through_the_form(site: Site) -> None:
    client = site.client("csm")
    body = f"<b>spoke</b> to them {uuid.uuid4().hex[:6]}"
    answer = post_form(client, "/customers/acme", "/customers/acme/notes", {"body": body})
    assert answer.status_code == 303 and answer.headers["location"] == "/customers/acme"
    html = client.get("/customers/acme").text
    assert "Note added" in html
    assert str(escape(body)) in html and body not in html
    with session_scope(site.engine) as s:
        notes = notes_service.list_notes(db_session=s, customer_id=site.ids["customer_acme"])
        assert notes[0].body == body
        assert notes[0].author_id == site.ids["csm"]


def test_empty_note_is_refused_with_a_message(site: Site) -> None:
    client = site.client("csm")
    with session_scope(site.engine) as s:
        before = notes_service.count_notes(db_session=s, customer_id=site.ids["customer_globex"])
    post_form(client, "/customers/globex", "/customers/globex/notes", {"body": "   "})
    assert "note" in flash_error(client.get("/customers/globex").text).lower()
    with session_scope(site.engine) as s:
        assert (
            notes_service.count_notes(db_session=s, customer_id=site.ids["customer_globex"])
            == before
        )


def test_add_task_then_complete_it_from_the_inbox(site: Site) -> None:
    client = site.client("csm")
    title = f"Renewal call {uuid.uuid4().hex[:6]}"
    post_form(
        client,
        "/customers/globex",
        "/customers/globex/tasks",
        {"title": title, "due": "2030-01-31", "priority": "urgent", "owner": "csm@example.com"},
    )
    inbox = client.get("/tasks").text
    assert title in inbox and "2030-01-31" in inbox
    with session_scope(site.engine) as s:
        task = s.scalars(select(Task).where(Task.title == title)).one()
        assert task.owner_id == site.ids["csm"] and task.priority.value == "urgent"
        task_id = task.id
    done = post_form(client, "/tasks", f"/tasks/{task_id}/complete", {"back": "/tasks"})
    assert done.status_code == 303
    assert f'<td class="cell">{title}' not in client.get("/tasks").text
    assert f'<td class="cell">{title}' in client.get("/tasks?show=done").text
    with session_scope(site.engine) as s:
        assert s.get(Task, task_id).status is TaskStatus.done


def test_bad_task_input_is_shown_and_nothing_is_created(site: Site) -> None:
    client = site.client("csm")
    post_form(
        client, "/customers/globex", "/customers/globex/tasks", {"title": "x", "due": "31/01/2030"}
    )
    assert "due" in flash_error(client.get("/customers/globex").text)
    post_form(
        client,
        "/customers/globex",
        "/customers/globex/tasks",
        {"title": "y", "owner": "ghost@example.com"},
    )
    assert "ghost@example.com" in flash_error(client.get("/customers/globex").text)
    with session_scope(site.engine) as s:
        assert s.scalars(select(Task).where(Task.title.in_(["x", "y"]))).all() == []


def test_overdue_tasks_are_marked(site: Site) -> None:
    html = site.client("csm").get("/tasks?show=overdue").text
    assert "Call Acme about usage" in html
    assert "overdue</span>" in html


def test_tag_and_untag_one_customer(site: Site) -> None:
    client = site.client("csm")
    tag = f"one-{uuid.uuid4().hex[:6]}"
    post_form(client, "/customers/c010", "/customers/c010/tags", {"tag": tag, "action": "add"})
    assert f'<span class="pill">{tag}</span>' in client.get("/customers/c010").text
    post_form(client, "/customers/c010", "/customers/c010/tags", {"tag": tag, "action": "remove"})
    assert f'<span class="pill">{tag}</span>' not in client.get("/customers/c010").text


# -- permissions and CSRF ---------------------------------------------------------------------


WRITES = [
    ("/customers/acme/notes", {"body": "viewer was here"}),
    ("/customers/acme/tasks", {"title": "viewer task"}),
    ("/customers/acme/tags", {"tag": "viewer-tag"}),
    ("/customers/bulk-tag", {"ids": ["acme"], "tag": "viewer-tag"}),
    ("/segments", {"name": "viewer segment", "filter": 'industry = "x"'}),
    ("/campaigns", {"name": "viewer campaign", "template": "hello", "segment": "vip"}),
    ("/tasks/1/complete", {}),
    ("/deals/1/move", {"stage": "Proposal"}),
    ("/settings/health", {"weight_usage": "1"}),
]


def test_viewers_see_no_write_controls(site: Site) -> None:
    viewer = site.client("viewer")
    assert "note-form" not in viewer.get("/customers/acme").text
    assert "task-form" not in viewer.get("/customers/acme").text
    assert 'name="ids"' not in viewer.get("/customers").text
    assert "Complete</button>" not in viewer.get("/tasks?show=overdue").text
    assert "Save segment" not in viewer.get("/segments").text
    assert "/move" not in viewer.get("/deals").text
    assert "Create campaign" not in viewer.get("/campaigns").text
    csm = site.client("csm")
    assert "note-form" in csm.get("/customers/acme").text
    assert "/move" in csm.get("/deals").text


@pytest.mark.parametrize(("action", "data"), WRITES)
def test_viewers_get_403_on_every_write(site: Site, action: str, data: dict) -> None:
    answer = post_form(site.client("viewer"), "/customers", action, data)
    assert answer.status_code == 403
    assert "viewer" in answer.json()["detail"]


@pytest.mark.parametrize(("action", "data"), WRITES)
def test_writes_without_the_csrf_token_are_refused(site: Site, action: str, data: dict) -> None:
    client = site.client("admin")
    assert client.post(action, data=data).status_code == 403
    assert client.post(action, data={**data, "csrf_token": "forged"}).status_code == 403
    assert client.post(action, data=data, headers={"X-CSRF-Token": "forged"}).status_code == 403


def test_csrf_refusal_changes_nothing(site: Site) -> None:
    client = site.client("admin")
    body = f"forged {uuid.uuid4().hex}"
    client.post("/customers/acme/notes", data={"body": body})
    assert body not in client.get("/customers/acme").text


def test_every_form_carries_the_csrf_token(site: Site) -> None:
    client = site.client("admin")
    for path in [*PAGES, "/settings", "/campaigns?preview=1&template=hello&segment=vip"]:
        html = client.get(path).text
        token = csrf_of(html)
        for form in re.findall(r'<form method="post".*?</form>', html, re.S):
            assert f'name="csrf_token" value="{token}"' in form, (path, form[:200])


# -- hostile text -----------------------------------------------------------------------------


def test_hostile_names_render_escaped_everywhere(site: Site) -> None:
    client = site.client("admin")
    shown = str(escape(HOSTILE))
    for path in ("/customers?q=hostile", "/customers/hostile"):
        assert "<script>alert(1)</script>" not in client.get(path).text, path
    page = client.get("/customers/hostile").text
    assert shown in page  # RTL override, emoji and SQL intact
    assert "\u202e" in page and "\U0001f642" in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in client.get("/customers?q=hostile").text


def test_hostile_note_and_task_render_escaped(site: Site) -> None:
    client = site.client("csm")
    post_form(client, "/customers/hostile", "/customers/hostile/notes", {"body": HOSTILE_LONG})
    post_form(
        client,
        "/customers/hostile",
        "/customers/hostile/tasks",
        {"title": "<img src=x onerror=alert(1)>", "owner": "csm@example.com"},
    )
    page = client.get("/customers/hostile").text
    assert "<img src=x" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    assert str(escape(HOSTILE_LONG)) in page  # the whole 10 kB note, escaped
    assert "<script>alert(2)" not in page
    assert "<img src=x" not in client.get("/tasks").text


# -- segments ---------------------------------------------------------------------------------


def test_live_count_and_errors_with_their_position(site: Site) -> None:
    client = site.client("viewer")
    assert client.get("/segments/count", params={"filter": 'tag = "vip"'}).json() == {"count": 2}
    bad = client.get("/segments/count", params={"filter": 'industry = "x" and\nmrr >> 5'}).json()
    assert bad["line"] == 2 and bad["column"] >= 5
    assert "line 2" in bad["error"]
    assert "error" in client.get("/segments/count", params={"filter": "  "}).json()
    page = client.get("/segments", params={"filter": "industry == x"}).text
    assert "column 13" in page
    assert "industry == x\n            ^" in page


def test_save_a_segment_and_list_its_customers(site: Site) -> None:
    client = site.client("csm")
    name = f"software {uuid.uuid4().hex[:6]}"
    saved = post_form(
        client,
        "/segments",
        "/segments",
        {"name": name, "filter": 'industry = "software" and mrr >= 50'},
    )
    assert saved.status_code == 303
    assert saved.headers["location"].startswith("/customers?segment=")
    assert rows_shown(site.client("admin").get(saved.headers["location"]).text) == ["acme"]
    assert name in client.get("/segments").text


def test_saving_a_bad_segment_shows_the_error_and_keeps_the_input(site: Site) -> None:
    client = site.client("csm")
    answer = post_form(client, "/segments", "/segments", {"name": "broken", "filter": "mrr >= "})
    assert answer.status_code == 422
    assert "column" in answer.text and "mrr &gt;= " in answer.text
    assert 'value="broken"' in answer.text
    dup = post_form(client, "/segments", "/segments", {"name": "vip", "filter": 'tag = "vip"'})
    assert dup.status_code == 422 and "exists" in dup.text


# -- deals, campaigns, settings ---------------------------------------------------------------


def test_move_a_deal_on_the_board(site: Site) -> None:
    from keepwell.deals import service as deals

    client = site.client("csm")
    assert "Upsell to enterprise" in client.get("/deals").text
    moved = post_form(client, "/deals", f"/deals/{site.ids['deal']}/move", {"stage": "Proposal"})
    assert moved.status_code == 303
    page = client.get("/deals").text
    assert flash_error(page) is None, flash_error(page)
    assert "moved to proposal" in page  # stage names are kept lower-case
    with session_scope(site.engine) as s:
        assert deals.get_or_raise(db_session=s, deal_id=site.ids["deal"]).stage.name == "proposal"
    post_form(client, "/deals", f"/deals/{site.ids['deal']}/move", {"stage": "Nowhere"})
    assert "Nowhere" in flash_error(client.get("/deals").text)


def test_campaign_preview_create_schedule_and_results(site: Site) -> None:
    client = site.client("csm")
    page = client.get(
        "/campaigns", params={"preview": 1, "template": "hello", "segment": "vip"}
    ).text
    assert '<span id="preview-subject">Hi Acme Corp</span>' in page  # first member by name
    hostile = client.get(
        "/campaigns", params={"preview": 1, "template": "hello", "customer": "hostile"}
    ).text
    assert "<script>alert(1)" not in hostile
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in hostile
    missing = client.get(
        "/campaigns", params={"preview": 1, "template": "nope", "segment": "vip"}
    ).text
    assert "nope" in missing and "preview-subject" not in missing
    name = f"Winback {uuid.uuid4().hex[:6]}"
    created = post_form(
        client,
        "/campaigns",
        "/campaigns",
        {
            "name": name,
            "template": "hello",
            "segment": "vip",
            "holdout": "0",
            "send_date": "2031-05-04",
            "send_time": "09:30",
        },
    )
    assert created.status_code == 303
    url = created.headers["location"]
    results = client.get(url).text
    assert name in results and "draft" in results
    assert "Sends on 2031-05-04 at 09:30" in results
    post_form(client, url, url + "/launch")
    launched = client.get(url).text
    assert flash_error(launched) is None, flash_error(launched)
    assert "Launched: 2 recipients, status scheduled" in launched
    assert name in client.get("/campaigns").text


def test_campaign_form_errors_are_shown(site: Site) -> None:
    client = site.client("csm")
    post_form(
        client,
        "/campaigns",
        "/campaigns",
        {
            "name": "x",
            "template": "hello",
            "segment": "vip",
            "send_date": "tomorrow",
            "send_time": "09:00",
        },
    )
    assert "send_date" in flash_error(client.get("/campaigns").text)
    post_form(client, "/campaigns", "/campaigns", {"name": "y", "template": "", "segment": "vip"})
    assert "template" in flash_error(client.get("/campaigns").text)


def test_admin_saves_health_weights(site: Site) -> None:
    from keepwell.health.config import COMPONENTS, load_config
    from keepwell.web.pages.admin import health_path

    client = site.client("admin")
    weights = {f"weight_{c}": "0" for c in COMPONENTS} | {
        "weight_usage": "3",
        "weight_payments": "1.5",
    }
    saved = post_form(
        client, "/settings", "/settings/health", {**weights, "red_below": "30", "green_from": "75"}
    )
    assert saved.status_code == 303
    config = load_config(health_path(site.settings))
    assert config.weights["usage"] == 3.0 and config.weights["payments"] == 1.5
    assert config.weights["nps"] == 0.0 and config.bands.red_below == 30.0
    assert 'value="1.5"' in client.get("/settings").text
    text = health_path(site.settings).read_text()
    bad = post_form(
        client,
        "/settings",
        "/settings/health",
        {
            **weights,
            "weight_usage": "0",
            "weight_payments": "0",
            "red_below": "30",
            "green_from": "75",
        },
    )
    assert bad.status_code == 303
    assert "all weights are zero" in flash_error(client.get("/settings").text)
    post_form(
        client,
        "/settings",
        "/settings/health",
        {**weights, "weight_usage": "lots", "red_below": "1", "green_from": "2"},
    )
    assert "not a number" in flash_error(client.get("/settings").text)
    assert health_path(site.settings).read_text() == text  # unchanged by the bad posts


def test_admin_enables_and_disables_alert_rules(site: Site) -> None:
    from keepwell.automation import service as automation

    with session_scope(site.engine) as s:
        rule = automation.create_rule(
            db_session=s,
            definition={
                "name": f"Payment failed {uuid.uuid4().hex[:6]}",
                "trigger": "payment_failed",
                "params": {"within_days": 30},
                "actions": [{"type": "webhook", "url": "http://127.0.0.1:9/hook", "retries": 0}],
            },
        )
        rule_id = rule.id
    client = site.client("admin")
    assert "Disable</button>" in client.get("/settings").text
    post_form(client, "/settings", f"/settings/rules/{rule_id}/disable")
    with session_scope(site.engine) as s:
        assert automation.get_rule_or_raise(db_session=s, name_or_id=rule_id).enabled is False
    post_form(client, "/settings", f"/settings/rules/{rule_id}/enable")
    with session_scope(site.engine) as s:
        assert automation.get_rule_or_raise(db_session=s, name_or_id=rule_id).enabled is True
    assert site.settings.smtp_host in client.get("/settings").text


def test_alert_firings_show_in_the_inbox(site: Site) -> None:
    from keepwell.automation import service as automation
    from keepwell.automation.models import AlertFiring

    rule_name = f"Usage drop {uuid.uuid4().hex[:6]}"
    with session_scope(site.engine) as s:
        rule = automation.create_rule(
            db_session=s,
            definition={
                "name": rule_name,
                "trigger": "payment_failed",
                "params": {"within_days": 30},
                "actions": [{"type": "webhook", "url": "http://127.0.0.1:9/hook", "retries": 0}],
            },
        )
        s.add(
            AlertFiring(
                rule_id=rule.id,
                customer_id=site.ids["customer_acme"],
                dedup_key=f"test:{uuid.uuid4().hex}",
                reason="<b>usage</b> fell 60%",
            )
        )
    html = site.client("viewer").get("/tasks").text
    alerts = html[html.index('aria-label="Alerts"') :]
    assert rule_name in alerts
    assert "&lt;b&gt;usage&lt;/b&gt; fell 60%" in alerts
    assert 'href="/customers/acme"' in alerts


def test_export_stream_reads_in_batches_in_order(site: Site) -> None:
    from keepwell.web.pages import queries

    with session_scope(site.engine) as s:
        rows = list(
            queries.iter_rows(
                db_session=s, flt=queries.ListFilter(search="filler"), descending=True, batch=7
            )
        )
    assert [r.customer.external_id for r in rows] == [f"c{i:03d}" for i in range(60, 0, -1)]
