"""Public pages reached from e-mails (signed tokens, no login) and `keepwell serve` itself."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import httpx
from sqlalchemy import select

from keepwell.db import session_scope
from keepwell.email import service as email_service
from keepwell.email import tokens
from keepwell.email.models import EmailEvent
from tests.web.conftest import Live, free_port, unique


def queued_message(live: Live):
    ext = unique()
    with live.client() as api:
        customer_id = api.post("/v1/customers", json={"external_id": ext, "name": "Mail"}).json()[
            "id"
        ]
    with session_scope(live.engine) as db_session:
        return email_service.queue_message(
            db_session=db_session,
            customer_id=customer_id,
            to=f"{ext}@example.com",
            subject="Hello",
            html="<p>Hi</p>",
            text="Hi",
            kind="campaign",
        )


def events_of(live: Live, message_id: int) -> list[tuple[str, str | None]]:
    with session_scope(live.engine) as db_session:
        rows = db_session.scalars(select(EmailEvent).where(EmailEvent.message_id == message_id))
        return [(e.kind, e.url) for e in rows]


def test_unsubscribe_open_and_click_links(live: Live) -> None:
    message = queued_message(live)
    unsubscribe = tokens.unsubscribe_url(live.settings, message).rsplit("/u/", 1)[1]
    pixel = tokens.open_pixel_url(live.settings, message).rsplit("/o/", 1)[1]
    click = tokens.click_url(live.settings, message, "https://example.org/offer?a=1").rsplit(
        "/c/", 1
    )[1]
    with live.client(None) as visitor:
        page = visitor.get(f"/u/{unsubscribe}")
        assert page.status_code == 200 and "<form" in page.text
        done = visitor.post(f"/u/{unsubscribe}")  # RFC 8058 one-click: no cookie, no CSRF
        assert done.status_code == 200 and "unsubscribed" in done.text
        gif = visitor.get(f"/o/{pixel}")
        assert gif.headers["content-type"] == "image/gif"
        jump = visitor.get(f"/c/{click}")
        assert jump.status_code == 302
        assert jump.headers["location"] == "https://example.org/offer?a=1"
        forged = visitor.get(f"/c/{click[:-2]}xx")
        assert forged.status_code == 404 and "example.org" not in forged.text
    with session_scope(live.engine) as db_session:
        assert email_service.is_suppressed(db_session=db_session, address=message.to_address)
    kinds = [kind for kind, _ in events_of(live, message.id)]
    assert {"unsubscribed", "opened", "clicked"} <= set(kinds)


def test_keepwell_serve_starts_on_an_empty_home(tmp_path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEEPWELL_")}
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from keepwell.cli import main; main()",
            "serve",
            "--port",
            str(port),
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
                break
            except httpx.TransportError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(process.stdout.read() if process.stdout else "") from None
                time.sleep(0.2)
        assert answer.json() == {"status": "ok"}
        assert (tmp_path / "keepwell-data" / "keepwell.db").exists()
        assert httpx.get(f"http://127.0.0.1:{port}/v1/customers").status_code == 401
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=30)
    assert "created the database schema" in output
    assert "No staff users yet" in output
