"""The same HTTP flows against a server on PostgreSQL (the other tests' server uses SQLite):
hostile text, customers, tags and notes, events, the Stripe webhook, login and CSRF."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from keepwell import migrate
from keepwell.config import Settings
from keepwell.db import make_engine
from tests.conftest import PG_ADMIN_URL, _admin_engine
from tests.web import test_api, test_auth, test_events, test_stripe
from tests.web.conftest import WEBHOOK_SECRET, Live, make_staff, start_server

pytestmark = [pytest.mark.postgres, pytest.mark.slow]  # ~30 s: a second server


@pytest.fixture(scope="module")
def live_pg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    admin = _admin_engine()
    name = f"keepwell_web_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    settings = Settings(
        home=tmp_path_factory.mktemp("pg-home"),
        database_url=url,
        secret_key=uuid.uuid4().hex * 2,
        stripe_webhook_secret=WEBHOOK_SECRET,
    )
    engine = make_engine(settings.resolved_database_url)
    migrate.upgrade(engine)
    server, thread, base = start_server(settings)
    state = Live(url=base, settings=settings, engine=engine)
    make_staff(engine, state)
    yield state
    server.should_exit = True
    thread.join(timeout=10)
    engine.dispose()
    with admin.connect() as conn:
        conn.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = :n AND pid <> pg_backend_pid()"
            ),
            {"n": name},
        )
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
    admin.dispose()


@pytest.mark.parametrize("kind", sorted(test_api.HOSTILE))
def test_hostile_text(live_pg: Live, kind: str) -> None:
    test_api.test_hostile_text_is_stored_and_returned_intact(live_pg, kind)


def test_customers_contacts_tags_notes(live_pg: Live) -> None:
    test_api.test_create_get_patch_a_customer(live_pg)
    test_api.test_contacts_tags_and_notes(live_pg)
    test_api.test_list_filters_sorts_and_pages(live_pg)
    test_api.test_ten_kilobyte_strings(live_pg)


def test_events_ingestion(live_pg: Live) -> None:
    ext = "cus_" + uuid.uuid4().hex[:10]
    with live_pg.client() as api:
        api.post("/v1/customers", json={"external_id": ext, "name": "E"}).raise_for_status()
    test_events.test_bad_rows_are_listed_by_row_and_nothing_is_written(live_pg, ext)
    test_events.test_a_json_array_is_appended(live_pg, ext)


def test_stripe_webhook(live_pg: Live) -> None:
    test_stripe.test_subscription_lifecycle_keeps_constant_price_periods(live_pg)
    test_stripe.test_invoice_paid_and_failed(live_pg)
    test_stripe.test_a_redelivered_event_changes_nothing(live_pg)


def test_login_and_csrf(live_pg: Live) -> None:
    test_auth.test_login_sets_a_signed_httponly_lax_cookie_and_logout_ends_it(live_pg)
    test_auth.test_password_reset_and_disable_end_web_sessions(live_pg)
    test_auth.test_viewer_reads_but_cannot_write(live_pg, "viewer")
