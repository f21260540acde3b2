"""A keepwell home with a little of everything, served by the real app (uvicorn in a thread,
real HTTP), once on SQLite and once on a fresh PostgreSQL database; logged-in clients per role.

The data (hand-made, so expected values are known):

* ``acme`` (Acme Corp, owner csm, tag ``vip``, pro plan 99.00 USD, risk high 0.42 with reasons,
  health red 31 then 35; 3 events on the 2nd-last day and 1 on the last day of usage);
* ``globex`` (tag ``vip``, starter 29.00 USD, risk low 0.05, health green 88);
* ``hostile`` (name :data:`HOSTILE`: script tag, RTL override, emoji, SQL; company ``=1+2``);
* ``c001`` .. ``c060`` ("Filler 001" ...) for paging;
* a segment ``vip`` (``tag = "vip"``), an e-mail template ``hello``, two deal stages and a
  deal on acme, a task for the csm on acme (overdue).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pyarrow as pa
import pytest
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url

from keepwell import migrate
from keepwell.billing.models import Subscription
from keepwell.config import Settings
from keepwell.db import make_engine, session_scope
from keepwell.events.store import EventStore
from keepwell.health.models import HealthScore
from keepwell.metrics.rollup import Rollup
from keepwell.risk.models import RiskScore
from keepwell.users import service as users_service
from tests.conftest import PG_ADMIN_URL, _admin_engine
from tests.web.conftest import start_server

PASSWORD = "correct horse battery"
ROLES = ("admin", "csm", "viewer")
HOSTILE = "<script>alert(1)</script> \u202eRTL \U0001f642 '; DROP TABLE customers; --" + "x" * 150
"""A customer name (names hold 255 characters)."""
HOSTILE_LONG = "<script>alert(2)</script> \u202eRTL \U0001f642 " + "y" * 10_000
"""A 10 kB note."""
NOW = datetime.now(UTC).replace(microsecond=0)


@dataclass
class Site:
    settings: Settings
    engine: Engine
    url: str
    backend: str
    clients: dict[str, httpx.Client] = field(default_factory=dict)
    ids: dict[str, int] = field(default_factory=dict)

    def client(self, role: str) -> httpx.Client:
        return self.clients[role]

    def anonymous(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=120)


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF field in the page"
    return match.group(1)


def log_in(client: httpx.Client, email: str) -> None:
    token = csrf_of(client.get("/login").text)
    answer = client.post(
        "/login", data={"email": email, "password": PASSWORD, "csrf_token": token, "next": "/"}
    )
    assert answer.status_code == 303, answer.text


def post_form(client: httpx.Client, page: str, action: str, data: dict | None = None, **kw):
    """POST ``data`` to ``action`` with the CSRF token of ``page``."""
    token = csrf_of(client.get(page).text)
    return client.post(action, data={"csrf_token": token, **(data or {})}, **kw)


def _fill(settings: Settings, engine: Engine, site: Site) -> None:
    from keepwell.campaigns import service as campaigns
    from keepwell.customers import tags
    from keepwell.deals import service as deals
    from keepwell.segments import service as segments
    from keepwell.tasks import service as tasks
    from keepwell.web import customer_edits

    with session_scope(engine) as s:
        for role in ROLES:
            user = users_service.create(
                db_session=s,
                email=f"{role}@example.com",
                name=role.title(),
                role=role,
                password=PASSWORD,
            )
            site.ids[role] = user.id
        made = {}
        for ext, name, company, owner in (
            ("acme", "Acme Corp", "Acme", "csm@example.com"),
            ("globex", "Globex", "Globex GmbH", None),
            ("hostile", HOSTILE, "=1+2", None),
        ):
            made[ext] = customer_edits.create_customer(
                db_session=s,
                external_id=ext,
                name=name,
                company=company,
                owner_email=owner,
                email=f"{ext}@example.com" if ext != "hostile" else None,
                signup_at=NOW - timedelta(days=400),
                industry="software",
            )
        for i in range(1, 61):
            customer_edits.create_customer(
                db_session=s,
                external_id=f"c{i:03d}",
                name=f"Filler {i:03d}",
                signup_at=NOW - timedelta(days=30),
            )
        for ext, plan, mrr in (("acme", "pro", 9900), ("globex", "starter", 2900)):
            s.add(
                Subscription(
                    external_id=f"sub_{ext}",
                    customer_id=made[ext].id,
                    plan=plan,
                    mrr_minor=mrr,
                    currency="USD",
                    started_at=NOW - timedelta(days=400),
                )
            )
        tags.bulk_add(
            db_session=s, customer_ids=[made["acme"].id, made["globex"].id], tag_name="vip"
        )
        as_of = NOW - timedelta(days=1)
        for ext, p, band, value in (("acme", 0.42, "high", 118800), ("globex", 0.05, "low", 34800)):
            s.add(
                RiskScore(
                    customer_id=made[ext].id,
                    as_of=as_of,
                    scored_at=NOW,
                    model_version="t1",
                    probability=p,
                    band=band,
                    value_minor=value,
                    revenue_at_risk_minor=round(p * value),
                    currency="USD",
                    reasons=[
                        {
                            "feature": "usage",
                            "text": "usage fell 60% in 28 days",
                            "contribution": 0.2,
                        }
                    ],
                )
            )
        for ext, score, band, days_ago in (
            ("acme", 31.0, "red", 8),
            ("acme", 35.0, "red", 1),
            ("globex", 88.0, "green", 1),
        ):
            s.add(
                HealthScore(
                    customer_id=made[ext].id,
                    as_of=NOW - timedelta(days=days_ago),
                    scored_at=NOW,
                    score=score,
                    band=band,
                    components={"usage": score},
                )
            )
        seg = segments.create_segment(db_session=s, name="vip", filter_text='tag = "vip"')
        site.ids["segment"] = seg.id
        campaigns.create_template(
            db_session=s,
            name="hello",
            subject="Hi {{ customer.name }}",
            html="<p>Hello {{ customer.name }}, thanks for using us.</p>",
        )
        deals.configure_stage(db_session=s, name="Talking", position=1, probability_pct=20)
        deals.configure_stage(db_session=s, name="Proposal", position=2, probability_pct=60)
        deal = deals.create_deal(
            db_session=s,
            customer_id=made["acme"].id,
            title="Upsell to enterprise",
            value_minor=50000,
            currency="USD",
            stage="Talking",
        )
        site.ids["deal"] = deal.id
        task = tasks.create_task(
            db_session=s,
            customer_id=made["acme"].id,
            title="Call Acme about usage",
            owner_id=site.ids["csm"],
            due_at=NOW - timedelta(days=2),
            priority="high",
        )
        site.ids["task"] = task.id
        site.ids.update({f"customer_{k}": v.id for k, v in made.items()})
    last = NOW.replace(hour=12, minute=0, second=0)
    when = [last - timedelta(days=1)] * 3 + [last]
    EventStore.from_settings(settings).append(
        pa.table(
            {
                "customer_id": ["acme"] * 4,
                "event": ["login", "report", "report", "login"],
                "occurred_at": pa.array(when, type=pa.timestamp("us", tz="UTC")),
            }
        )
    )
    Rollup.from_settings(settings).refresh(EventStore.from_settings(settings))


def _pg_database() -> Iterator[str]:
    admin = _admin_engine()
    name = f"keepwell_pages_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    finally:
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


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def site(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Site]:
    home: Path = tmp_path_factory.mktemp("pages-home")
    pg = None
    if request.param == "sqlite":
        url = f"sqlite:///{home / 'keepwell.db'}"
    else:
        pg = _pg_database()
        url = next(pg)
    settings = Settings(
        home=home,
        database_url=url,
        secret_key="pages-" + uuid.uuid4().hex,
        dashboard_wait_seconds=300,  # a busy CI machine: wait for the figures, never "computing"
    )
    engine = make_engine(url)
    migrate.upgrade(engine)
    server, thread, base_url = start_server(settings)
    state = Site(settings=settings, engine=engine, url=base_url, backend=request.param)
    _fill(settings, engine, state)
    for role in ROLES:
        client = httpx.Client(base_url=base_url, timeout=120)
        log_in(client, f"{role}@example.com")
        state.clients[role] = client
    yield state
    for client in state.clients.values():
        client.close()
    server.should_exit = True
    thread.join(timeout=10)
    engine.dispose()
    if pg is not None:
        pg.close()
