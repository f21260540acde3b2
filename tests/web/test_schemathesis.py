"""Property-based run over the whole OpenAPI schema (schemathesis) with an admin token:
whatever the generated input, the server never answers 5xx, and errors are problem details.

Marked slow (about 100 s here): run with ``pytest -m slow tests/web/test_schemathesis.py``."""

from __future__ import annotations

import uuid

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from keepwell import migrate
from keepwell.config import Settings
from keepwell.db import make_engine, session_scope
from keepwell.users import service as users_service
from tests.web.conftest import start_server

schema = schemathesis.pytest.from_fixture("api_schema")


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory):
    """A server of its own (generated data must not leak into the other tests' server)."""
    home = tmp_path_factory.mktemp("fuzz-home")
    cfg = Settings(home=home, secret_key=uuid.uuid4().hex * 2, stripe_webhook_secret="whsec_f")
    engine = make_engine(cfg.resolved_database_url)
    migrate.upgrade(engine)
    with session_scope(engine) as db_session:
        users_service.create(
            db_session=db_session, email="fuzz@example.com", name="F", role="admin"
        )
        _, secret = users_service.create_token(
            db_session=db_session,
            email="fuzz@example.com",
            name="fuzz",
            scopes=["read", "write", "admin"],
        )
    server, thread, url = start_server(cfg)
    yield url, secret
    server.should_exit = True
    thread.join(timeout=10)
    engine.dispose()


@pytest.fixture(scope="module")
def api_schema(fuzz_server):
    url, secret = fuzz_server
    return schemathesis.openapi.from_url(
        f"{url}/openapi.json", headers={"Authorization": f"Bearer {secret}"}
    )


@pytest.fixture(scope="module")
def auth(fuzz_server) -> dict[str, str]:
    return {"Authorization": f"Bearer {fuzz_server[1]}"}


@pytest.mark.slow  # ~100 s on the shared 2-core machine
@schema.parametrize()
@settings(
    max_examples=30,
    deadline=None,
    derandomize=True,  # the same cases every run: CI stays stable; explore with a random seed
    # locally (`--hypothesis-seed=...` after removing this) when changing the API
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_no_server_errors(case, auth) -> None:
    response = case.call(headers=auth)
    assert response.status_code < 500, (case.method, case.formatted_path, response.text[:500])
    if response.status_code >= 400:
        media = response.headers["content-type"]
        assert (media[0] if isinstance(media, list) else media) == "application/problem+json"
        body = response.json()
        assert body["status"] == response.status_code
        assert isinstance(body["title"], str) and isinstance(body["detail"], str)
