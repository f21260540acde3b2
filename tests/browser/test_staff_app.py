"""The staff web app in a real browser: Debian's Chromium driven by Playwright against a live
``keepwell serve`` (a subprocess on a free port) on a home with a small demo business.

Screenshots of every step go to ``test-artifacts/screenshots/`` (git-ignored).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from keepwell.config import Settings
from keepwell.db import engine_from_settings, session_scope
from keepwell.money import format_money
from keepwell.users import service as users_service
from tests.web.conftest import free_port

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
EMAIL = "admin@example.com"
PASSWORD = "correct horse battery"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed"),
]


@dataclass
class Server:
    url: str
    settings: Settings


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    from keepwell.campaigns import service as campaigns
    from keepwell.demo.loader import load_demo

    home = tmp_path_factory.mktemp("browser-home")
    env = {
        **os.environ,
        "KEEPWELL_HOME": str(home),
        "KEEPWELL_SECRET_KEY": "browser-" + uuid.uuid4().hex,
        "KEEPWELL_DASHBOARD_WAIT_SECONDS": "300",  # busy CI: wait for figures, never "computing"
    }
    settings = Settings(home=home, secret_key=env["KEEPWELL_SECRET_KEY"])
    load_demo(settings, customers=300, months=12, seed=11)
    engine = engine_from_settings(settings)
    with session_scope(engine) as s:
        users_service.create(
            db_session=s, email=EMAIL, name="Ada Admin", role="admin", password=PASSWORD
        )
        campaigns.create_template(
            db_session=s,
            name="check-in",
            subject="How is it going, {{ customer.name }}?",
            html="<p>Hello {{ customer.name }},</p><p>anything we can help with?</p>",
        )
    engine.dispose()
    port = free_port()
    log = (home / "serve.log").open("w")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from keepwell.cli import main; main()",
            "serve",
            "--port",
            str(port),
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            raise RuntimeError("keepwell serve did not start: " + (home / "serve.log").read_text())
        time.sleep(0.2)
    yield Server(url=url, settings=settings)
    proc.terminate()
    proc.wait(timeout=20)
    log.close()


@pytest.fixture(scope="module")
def page(server: Server):
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        context = browser.new_context(viewport={"width": 1360, "height": 900})
        context.set_default_timeout(120_000)
        yield context.new_page()
        context.close()
        browser.close()


def shot(page, name: str) -> None:
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def expected_figures(settings: Settings) -> dict[str, str]:
    """The dashboard's default range computed directly with the metrics engine."""
    from keepwell.metrics.sources import open_default
    from keepwell.reports.cache import dashboard_range
    from keepwell.reports.service import run_metric

    start, end = dashboard_range(12)
    src = open_default(settings)
    try:
        churn = run_metric(src, "churn", start=start, end=end, period="month").iloc[-1]
        mrr = run_metric(src, "mrr", start=start, end=end, period="month")
    finally:
        src.con.disconnect()
    main = mrr.groupby("currency")["mrr_end"].sum().idxmax()
    last = mrr[mrr["currency"] == main].iloc[-1]
    return {
        "customers": f"{int(churn.customers_end):,}",
        "churn": f"{churn.churn_rate:.1%}",
        "mrr": format_money(int(last.mrr_end), main),
    }


def test_a_csm_day_in_the_browser(server: Server, page) -> None:
    from keepwell.segments import service as segments

    # log in
    page.goto(server.url + "/customers")
    assert "/login" in page.url
    page.fill("#email", EMAIL)
    page.fill("#password", PASSWORD)
    shot(page, "01-login")
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r"/customers$"))

    # dashboard: the demo figures, as the metrics engine computes them
    page.goto(server.url + "/")
    want = expected_figures(server.settings)
    for key, value in want.items():
        assert page.inner_text(f'[data-kpi="{key}"] .value').strip() == value, key
    assert page.locator(".chart img").count() == 4
    shot(page, "02-dashboard")
    page.select_option("select[name=period]", "quarter")
    page.click("form[aria-label=Period] button")
    page.wait_for_url(re.compile(r"period=quarter"))
    assert page.locator('[data-kpi="mrr"]').count() == 1

    # build a segment with the live count, see an error with its position, save it
    page.goto(server.url + "/segments")
    page.fill("#filter", 'industry = "travel" and mrr >')
    page.wait_for_selector("#filter-error:not([hidden])")
    assert "column" in page.inner_text("#filter-error-text")
    assert "^" in page.inner_text("#filter-error-pos")
    shot(page, "03-segment-error")
    page.fill("#filter", 'industry = "travel" and mrr > 0')
    page.wait_for_function("document.querySelector('#live-count strong') !== null")
    engine = engine_from_settings(server.settings)
    with session_scope(engine) as s:
        travel = segments.count_filter(db_session=s, filter_text='industry = "travel" and mrr > 0')
    engine.dispose()
    assert travel > 0
    assert page.inner_text("#live-count strong") == f"{travel:,}"
    page.fill("input[name=name]", "Paying travel")
    shot(page, "04-segment-builder")
    page.click("#segment-form button[type=submit]")
    page.wait_for_url(re.compile(r"/customers\?segment=\d+"))

    # the customers list filtered by that segment
    page.goto(server.url + "/customers")
    page.select_option("#segment-filter", label="Paying travel")
    page.click("form[aria-label=Filters] button[type=submit]")
    page.wait_for_url(re.compile(r"segment=\d+"))
    assert page.locator("input[name=ids]").count() == min(travel, 50)
    assert f"({travel:,})" in page.inner_text("h1")
    shot(page, "05-customers-by-segment")

    # a customer 360: add a note and a task
    first = page.locator("tbody td.clip a").first
    name = first.inner_text()
    first.click()
    page.wait_for_selector("section[aria-label=Profile]")
    assert page.inner_text("h1").startswith(name)
    note = f"Called them about the renewal ({uuid.uuid4().hex[:6]})"
    page.fill("#note-body", note)
    page.click("#note-form button[type=submit]")
    page.wait_for_selector(".flash")
    assert "Note added" in page.inner_text(".flash")
    assert note in page.inner_text("section[aria-label=Timeline]")
    title = f"Send the renewal offer {uuid.uuid4().hex[:4]}"
    page.fill("#task-title", title)
    page.fill("#task-form input[name=due]", "2031-01-15")
    page.select_option("#task-form select[name=priority]", "high")
    page.click("#task-form button[type=submit]")
    page.wait_for_selector(".flash")
    assert "Task created" in page.inner_text(".flash")
    assert title in page.inner_text("section[aria-label=Tasks]")
    shot(page, "06-customer-360")

    page.goto(server.url + "/tasks")
    assert title in page.inner_text("section[aria-label=Tasks]")
    shot(page, "07-tasks")

    # preview a campaign for the segment
    page.goto(server.url + "/campaigns")
    page.select_option("#template", "check-in")
    page.select_option("#campaign-segment", "Paying travel")
    page.click("#preview-form button[type=submit]")
    page.wait_for_selector("#preview-subject")
    subject = page.inner_text("#preview-subject")
    assert subject.startswith("How is it going, ") and subject.endswith("?")
    body = page.frame_locator("iframe.preview").locator("body").inner_text()
    assert subject.removeprefix("How is it going, ").removesuffix("?") in body
    shot(page, "08-campaign-preview")

    for path, name_ in (("/deals", "09-deals"), ("/settings", "10-settings")):
        page.goto(server.url + path)
        assert page.locator("h1").count() == 1
        shot(page, name_)
    assert len(list(SHOTS.glob("*.png"))) >= 10
