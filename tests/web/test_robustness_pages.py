"""Invalid query parameters: pages answer an HTML error page (422), /v1 problem details."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest

from tests.web.conftest import PASSWORD, Live


@contextmanager
def _browser(live: Live) -> Iterator[httpx.Client]:
    """A logged-in csm's browser."""
    browser = live.browser()
    page = browser.get("/login").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    answer = browser.post(
        "/login", data={"email": live.emails["csm"], "password": PASSWORD, "csrf_token": token}
    )
    assert answer.status_code == 303, answer.text
    try:
        yield browser
    finally:
        browser.close()


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/customers", {"page": "abc"}, "query.page"),
        ("/customers", {"per_page": "0"}, "query.per_page"),
        ("/customers", {"risk": "<script>alert(1)</script>"}, "query.risk"),
        ("/", {"months": "twelve"}, "query.months"),
    ],
)
def test_pages_answer_bad_query_parameters_with_an_html_page(
    live: Live, path: str, params: dict, field: str
) -> None:
    with _browser(live) as browser:
        answer = browser.get(path, params=params)
        assert answer.status_code == 422
        assert answer.headers["content-type"].startswith("text/html")
        html = answer.text
        assert "<h1" in html and "Invalid input" in html
        assert f"<code>{field}</code>" in html  # names the field
        assert "<script>alert" not in html  # nothing of the input comes back unescaped
        assert '<a class="brand" href="/">keepwell</a>' in html  # the app's layout


def test_the_error_page_escapes_what_it_shows(live: Live) -> None:
    """A pydantic message that quotes the input (a Literal's choices, a bad date) is escaped."""
    with _browser(live) as browser:
        answer = browser.get("/customers", params={"sort": '"><img src=x onerror=alert(1)>'})
        assert answer.status_code == 422
        assert "<img" not in answer.text
        assert "query.sort" in answer.text


def test_the_api_keeps_problem_details(live: Live) -> None:
    with live.client("csm") as api:
        answer = api.get("/v1/customers", params={"limit": "abc"})
        assert answer.status_code == 422
        assert answer.headers["content-type"] == "application/problem+json"
        body = answer.json()
        assert body["errors"][0]["field"] == "query.limit"
        assert body["instance"] == "/v1/customers"
    # the same holds for a browser session calling the API (decided by route, not Accept)
    with _browser(live) as browser:
        answer = browser.get(
            "/v1/customers", params={"limit": "abc"}, headers={"Accept": "text/html"}
        )
        assert answer.status_code == 422
        assert answer.headers["content-type"] == "application/problem+json"


def test_docs_work_offline_and_need_a_login(live: Live) -> None:
    """/docs is rendered on the server: no script, stylesheet or image from another host."""
    with _browser(live) as browser:
        docs = browser.get("/docs")
        assert docs.status_code == 200 and "/v1/customers" in docs.text
        assert re.findall(r'(?:src|href)="(?:https?:)?//', docs.text) == []
        assert "<script" not in docs.text.lower()
        assert browser.get("/openapi.json").json()["info"]["title"] == "keepwell"
    with live.client(role=None) as anonymous:
        assert anonymous.get("/docs", follow_redirects=False).status_code == 303
        assert anonymous.get("/openapi.json").status_code == 401
