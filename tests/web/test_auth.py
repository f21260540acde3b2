"""Login, sessions, CSRF, rate limiting, tokens and roles, over real HTTP."""

from __future__ import annotations

import re
import uuid

import httpx
import pytest
from fastapi.routing import iter_route_contexts

from keepwell.config import Settings
from keepwell.db import make_engine, session_scope
from keepwell.users import service as users_service
from keepwell.web.app import create_app
from keepwell.web.public import PUBLIC_PATHS, SIGNED_PATHS
from tests.web.conftest import PASSWORD, Live, start_server, unique


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF field in the page"
    return match.group(1)


def log_in(client: httpx.Client, email: str, password: str = PASSWORD) -> httpx.Response:
    token = csrf_of(client.get("/login").text)
    return client.post(
        "/login", data={"email": email, "password": password, "csrf_token": token, "next": "/"}
    )


def test_login_sets_a_signed_httponly_lax_cookie_and_logout_ends_it(live: Live) -> None:
    with live.browser() as browser:
        assert browser.get("/").status_code == 303  # anonymous: off to the login page
        answer = log_in(browser, live.emails["csm"])
        assert answer.status_code == 303
        assert answer.headers["location"] == "/"
        cookie = answer.headers["set-cookie"]
        assert cookie.startswith("keepwell_session=")
        assert "httponly" in cookie.lower()
        assert "samesite=lax" in cookie.lower()
        assert "secure" not in cookie.lower()  # base_url is http here
        me = browser.get("/v1/me").json()
        assert me["user"]["email"] == live.emails["csm"]
        assert me["via"] == "session"
        assert me["scopes"] == ["read", "write"]
        home = browser.get("/")
        assert home.status_code == 200
        token = csrf_of(home.text)
        assert browser.post("/logout", data={"csrf_token": token}).status_code == 303
        assert browser.get("/v1/me").status_code == 401


def test_tampered_session_cookie_is_anonymous(live: Live) -> None:
    with live.browser() as browser:
        log_in(browser, live.emails["viewer"])
        value = browser.cookies["keepwell_session"]
        browser.cookies.clear()
        forged = value[:-3] + ("AAA" if not value.endswith("AAA") else "BBB")
        browser.cookies.set("keepwell_session", forged)
        assert browser.get("/v1/me").status_code == 401


def test_wrong_password_and_unknown_user_get_the_same_answer(live: Live) -> None:
    with live.browser() as browser:
        wrong = log_in(browser, live.emails["manager"], "not the password")
        nobody = log_in(browser, "nobody@example.com", "not the password")
    assert wrong.status_code == nobody.status_code == 401
    assert "Wrong e-mail address or password." in wrong.text
    assert "Wrong e-mail address or password." in nobody.text


def test_login_redirects_only_to_local_paths(live: Live) -> None:
    with live.browser() as browser:
        token = csrf_of(browser.get("/login").text)
        answer = browser.post(
            "/login",
            data={
                "email": live.emails["csm"],
                "password": PASSWORD,
                "csrf_token": token,
                "next": "//evil.example/x",
            },
        )
    assert answer.status_code == 303
    assert answer.headers["location"] == "/"


@pytest.mark.parametrize(
    "send",
    [
        pytest.param(lambda c, _t: c.post("/logout"), id="form-without-token"),
        pytest.param(lambda c, _t: c.post("/logout", data={"csrf_token": "x"}), id="wrong-token"),
        pytest.param(
            lambda c, _t: c.post("/v1/customers", json={"external_id": "x", "name": "x"}),
            id="json-without-header",
        ),
        pytest.param(
            lambda c, _t: c.post(
                "/v1/customers",
                json={"external_id": "x", "name": "x"},
                headers={"X-CSRF-Token": "nope"},
            ),
            id="json-wrong-header",
        ),
        pytest.param(
            lambda c, _t: c.delete("/v1/customers/x/tags/vip"),
            id="delete-without-token",
        ),
    ],
)
def test_csrf_is_enforced_on_cookie_requests(live: Live, send) -> None:
    with live.browser() as browser:
        log_in(browser, live.emails["admin"])
        answer = send(browser, None)
        assert answer.status_code == 403
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["type"] == "urn:keepwell:problem:csrf"
        assert browser.get("/v1/me").status_code == 200  # still logged in


def test_csrf_token_in_header_lets_a_cookie_request_write(live: Live) -> None:
    with live.browser() as browser:
        log_in(browser, live.emails["csm"])
        token = csrf_of(browser.get("/").text)
        ext = unique()
        answer = browser.post(
            "/v1/customers",
            json={"external_id": ext, "name": "Via cookie"},
            headers={"X-CSRF-Token": token},
        )
        assert answer.status_code == 201, answer.text


def test_login_form_itself_needs_the_csrf_token(live: Live) -> None:
    with live.browser() as browser:
        answer = browser.post("/login", data={"email": live.emails["csm"], "password": PASSWORD})
    assert answer.status_code == 403


def test_every_route_refuses_anonymous_visitors_except_the_public_ones(live: Live) -> None:
    app = create_app(live.settings)
    checked = 0
    with live.client(None) as anonymous:
        for ctx in iter_route_contexts(app.routes):
            path = ctx.path
            methods = getattr(ctx.original_route, "methods", None) or {"GET"}
            if path in PUBLIC_PATHS:
                continue
            url = re.sub(r"\{[^}]+\}", "x", path)
            for method in sorted(methods - {"HEAD", "OPTIONS"}):
                answer = anonymous.request(method, url)
                if path in SIGNED_PATHS:
                    assert answer.status_code == 400, (method, path, answer.status_code)
                    assert "Stripe-Signature" in answer.json()["detail"]
                    continue
                assert answer.status_code in (401, 303), (method, path, answer.status_code)
                if answer.status_code == 303:
                    assert answer.headers["location"].startswith("/login")
                checked += 1
    assert checked >= 25


def test_public_routes_answer_anonymous_visitors(live: Live) -> None:
    with live.client(None) as anonymous:
        assert anonymous.get("/healthz").json() == {"status": "ok"}
        assert anonymous.get("/login").status_code == 200
        bad = anonymous.get("/c/not-a-token")
        assert bad.status_code == 404
        assert "not valid" in bad.text
        pixel = anonymous.get("/o/not-a-token")
        assert pixel.headers["content-type"] == "image/gif"


@pytest.mark.parametrize("role", ["viewer"])
def test_viewer_reads_but_cannot_write(live: Live, role: str) -> None:
    ext = unique()
    with live.client("csm") as csm:
        assert csm.post("/v1/customers", json={"external_id": ext, "name": "A"}).status_code == 201
    with live.client(role) as viewer:
        assert viewer.get(f"/v1/customers/{ext}").status_code == 200
        for method, url, body in [
            ("POST", "/v1/customers", {"external_id": unique(), "name": "B"}),
            ("PATCH", f"/v1/customers/{ext}", {"name": "C"}),
            ("PUT", f"/v1/customers/{ext}/tags/vip", None),
            ("DELETE", f"/v1/customers/{ext}/tags/vip", None),
            ("POST", f"/v1/customers/{ext}/notes", {"body": "hi"}),
            ("POST", f"/v1/customers/{ext}/contacts", {"name": "Bo"}),
            ("POST", "/v1/events", []),
            ("GET", "/v1/users", None),
        ]:
            answer = viewer.request(method, url, json=body)
            assert answer.status_code == 403, (method, url, answer.text)
            assert answer.json()["type"] == "urn:keepwell:problem:forbidden"
        assert viewer.get(f"/v1/customers/{ext}").json()["name"] == "A"


def test_only_admins_manage_users(live: Live) -> None:
    email = f"new-{uuid.uuid4().hex[:8]}@example.com"
    with live.client("manager") as manager:
        assert manager.get("/v1/users").status_code == 403
        answer = manager.post("/v1/users", json={"email": email, "name": "N"})
        assert answer.status_code == 403
    with live.client("admin") as admin:
        created = admin.post("/v1/users", json={"email": email, "name": "N", "role": "viewer"})
        assert created.status_code == 201, created.text
        assert created.json()["role"] == "viewer"
        changed = admin.patch(f"/v1/users/{email}", json={"role": "csm", "is_active": False})
        assert changed.json()["role"] == "csm"
        assert changed.json()["is_active"] is False
        assert email in [u["email"] for u in admin.get("/v1/users").json()]


def test_token_scopes_limit_what_a_token_does(live: Live) -> None:
    with session_scope(live.engine) as db_session:
        _, read_only = users_service.create_token(
            db_session=db_session, email=live.emails["admin"], name="ro", scopes=["read"]
        )
    headers = {"Authorization": f"Bearer {read_only}"}
    with httpx.Client(base_url=live.url, headers=headers) as client:
        assert client.get("/v1/customers").status_code == 200
        answer = client.post("/v1/customers", json={"external_id": unique(), "name": "x"})
        assert answer.status_code == 403
        assert "'write'" in answer.json()["detail"]


def test_revoked_unknown_and_disabled_tokens_are_refused(live: Live) -> None:
    email = f"gone-{uuid.uuid4().hex[:8]}@example.com"
    with session_scope(live.engine) as db_session:
        users_service.create(db_session=db_session, email=email, name="Gone", role="csm")
        token, secret = users_service.create_token(
            db_session=db_session, email=email, name="t", scopes=["read", "write"]
        )
        _, other = users_service.create_token(
            db_session=db_session, email=email, name="t2", scopes=["read"]
        )
    with httpx.Client(base_url=live.url) as client:
        auth = {"Authorization": f"Bearer {secret}"}
        assert client.get("/v1/me", headers=auth).status_code == 200
        with session_scope(live.engine) as db_session:
            users_service.revoke_token(db_session=db_session, token_id=token.id)
        refused = client.get("/v1/me", headers=auth)
        assert refused.status_code == 401
        assert refused.json()["type"] == "urn:keepwell:problem:invalid-token"
        bogus = {"Authorization": "Bearer kw_" + "A" * 43}
        assert client.get("/v1/me", headers=bogus).status_code == 401
        with session_scope(live.engine) as db_session:
            users_service.disable(db_session=db_session, email=email)
        assert client.get("/v1/me", headers={"Authorization": f"Bearer {other}"}).status_code == 401


def test_role_change_applies_to_existing_tokens(live: Live) -> None:
    email = f"demoted-{uuid.uuid4().hex[:8]}@example.com"
    with session_scope(live.engine) as db_session:
        users_service.create(db_session=db_session, email=email, name="D", role="manager")
        _, secret = users_service.create_token(
            db_session=db_session, email=email, name="t", scopes=["read", "write"]
        )
        users_service.set_role(db_session=db_session, email=email, role="viewer")
    with httpx.Client(base_url=live.url, headers={"Authorization": f"Bearer {secret}"}) as c:
        assert c.get("/v1/me").json()["scopes"] == ["read"]
        answer = c.post("/v1/customers", json={"external_id": unique(), "name": "x"})
        assert answer.status_code == 403


def test_password_reset_and_disable_end_web_sessions(live: Live) -> None:
    email = f"sess-{uuid.uuid4().hex[:8]}@example.com"
    with session_scope(live.engine) as db_session:
        users_service.create(
            db_session=db_session, email=email, name="S", role="csm", password=PASSWORD
        )
    with live.browser() as browser:
        assert log_in(browser, email).status_code == 303
        assert browser.get("/v1/me").status_code == 200
        with session_scope(live.engine) as db_session:
            users_service.reset_password(
                db_session=db_session, email=email, password="another long password"
            )
        assert browser.get("/v1/me").status_code == 401
        assert log_in(browser, email, "another long password").status_code == 303
        with session_scope(live.engine) as db_session:
            users_service.disable(db_session=db_session, email=email)
        assert browser.get("/v1/me").status_code == 401
        assert log_in(browser, email, "another long password").status_code == 401


@pytest.fixture(scope="module")
def fresh_server(tmp_path_factory: pytest.TempPathFactory):
    """A server of its own (rate-limit tests must not throttle the shared one's IP)."""
    from keepwell import migrate

    home = tmp_path_factory.mktemp("ratelimit-home")
    settings = Settings(home=home, secret_key="k" * 40)
    engine = make_engine(settings.resolved_database_url)
    migrate.upgrade(engine)
    with session_scope(engine) as db_session:
        for n in range(3):
            users_service.create(
                db_session=db_session,
                email=f"u{n}@example.com",
                name=f"U{n}",
                role="csm",
                password=PASSWORD,
            )
    server, thread, url = start_server(settings)
    yield url
    server.should_exit = True
    thread.join(timeout=10)
    engine.dispose()


def test_login_rate_limit_per_account_then_per_ip(fresh_server: str) -> None:
    limit = users_service.MAX_FAILURES_PER_ACCOUNT
    with httpx.Client(base_url=fresh_server) as browser:
        for _ in range(limit):
            assert log_in(browser, "u0@example.com", "wrong password!").status_code == 401
        throttled = log_in(browser, "u0@example.com")  # right password, but throttled
        assert throttled.status_code == 429
        assert "too many failed logins" in throttled.text
        ok = log_in(browser, "u1@example.com")  # another account from this IP still works
        assert ok.status_code == 303
        browser.cookies.clear()
        remaining = users_service.MAX_FAILURES_PER_IP - limit
        for n in range(remaining):
            log_in(browser, f"nobody{n}@example.com", "wrong password!")
        assert log_in(browser, "u2@example.com").status_code == 429  # the IP is throttled


def test_session_cookie_is_secure_when_base_url_is_https(tmp_path) -> None:
    from keepwell import migrate

    settings = Settings(home=tmp_path, secret_key="s" * 40, base_url="https://keepwell.example")
    engine = make_engine(settings.resolved_database_url)
    migrate.upgrade(engine)
    server, thread, url = start_server(settings)
    try:
        with httpx.Client(base_url=url) as browser:
            cookie = browser.get("/login").headers["set-cookie"].lower()
        assert "secure" in cookie
        assert "httponly" in cookie
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        engine.dispose()


def test_security_headers_on_every_answer(live: Live) -> None:
    with live.client(None) as anonymous:
        for url in ("/healthz", "/login", "/v1/customers"):
            headers = anonymous.get(url).headers
            assert headers["x-content-type-options"] == "nosniff", url
            assert headers["x-frame-options"] == "DENY", url
            assert headers["referrer-policy"] == "same-origin", url
