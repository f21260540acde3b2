"""Benchmark keepwell's e-mail sender against a raw aiosmtplib loop, in one run.

    python3 bench/send.py                       # 100,000 messages, 4 connections
    python3 bench/send.py --messages 2000 --concurrency 8 --json out.json

Steps:

1. a fresh keepwell home (SQLite, or ``--database-url``) with ``--messages`` customers;
2. ``queue``: one personalised message per customer, rendered by the campaigns engine's
   template renderer (``keepwell.campaigns.templates``; a sandboxed Jinja2 template over the
   customer rows when that module is absent), links tracked, queued with ``queue_message``;
3. an aiosmtpd server started in a separate process, counting what it accepts;
4. ``raw``: a plain aiosmtplib loop (``--concurrency`` persistent connections) sending the
   same messages, pre-rendered to bytes, with no database at all;
5. ``keepwell``: ``send_due`` (claim batches, compose, send, sent-log, grouped updates)
   with the same concurrency and no rate cap;
6. ``raw`` again; the raw figure is the mean of both rounds (the machine's load drifts).

Each send is checked against the server's count. Prints messages/s of both and the ratio
(goal >= 0.7x raw); ``--json FILE`` writes the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import platform
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

GOAL = 0.7
HTML = """<!DOCTYPE html><html><body>
<p>Hi {{ customer.first_name | default(customer.name) }},</p>
<p>Thanks for being with us since you joined from {{ customer.country | default("afar") }}.
Your team in {{ customer.industry | default("your industry") }} can now try our new reports:
they show which accounts are slipping before they churn.</p>
<p><a href="https://example.com/reports?utm_source=keepwell">See the new reports</a></p>
<p>Cheers,<br>The team</p>
<p style="font-size:small"><a href="{{ unsubscribe_url }}">Unsubscribe</a></p>
</body></html>"""
TEXT = """Hi {{ customer.first_name | default(customer.name) }},

Thanks for being with us since you joined from {{ customer.country | default("afar") }}.
Your team in {{ customer.industry | default("your industry") }} can now try our new reports:
they show which accounts are slipping before they churn.

See the new reports: https://example.com/reports?utm_source=keepwell

Unsubscribe: {{ unsubscribe_url }}
"""
SUBJECT = "{{ customer.first_name | default(customer.name) }}, new reports for your team"
INDUSTRIES = ["travel", "retail", "software", "health", "education", "hospitality"]
COUNTRIES = ["DE", "FR", "US", "GB", "ES", "IT", "NL", "SE"]


# -- the SMTP server process --------------------------------------------------------------


def _serve(port: int, counter, ready, stop) -> None:
    """Run an aiosmtpd server on 127.0.0.1:port, counting accepted messages."""
    from aiosmtpd.controller import Controller

    class Counter:
        async def handle_DATA(self, server, session, envelope):
            with counter.get_lock():
                counter.value += len(envelope.rcpt_tos)
            return "250 OK"

    controller = Controller(Counter(), hostname="127.0.0.1", port=port)
    controller.start()
    ready.set()
    stop.wait()
    controller.stop()


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- steps ---------------------------------------------------------------------------------


def make_customers(engine, count: int) -> None:
    from sqlalchemy import insert

    from keepwell.customers.models import Customer

    now = datetime.now(UTC)
    with engine.begin() as conn:
        for start in range(0, count, 5000):
            rows = [
                {
                    "external_id": f"cus_{i:07d}",
                    "name": f"Customer {i}",
                    "email": f"customer{i}@example.com",
                    "company": f"Company {i}",
                    "industry": INDUSTRIES[i % len(INDUSTRIES)],
                    "country": COUNTRIES[i % len(COUNTRIES)],
                    "time_zone": "UTC",
                    "signup_at": now,
                    "status": "active",
                    "attributes": {},
                    "created_at": now,
                    "updated_at": now,
                }
                for i in range(start, min(count, start + 5000))
            ]
            conn.execute(insert(Customer), rows)


def _renderer():
    """(name, render(db_session, ids) -> iterator of (customer_id, to, subject, html, text))."""
    try:
        from keepwell.campaigns.templates import compile_template, render_for_customers
    except ImportError:
        return "sandboxed Jinja2 (campaigns engine absent)", _jinja_renderer()
    template = compile_template(subject=SUBJECT, html=HTML, text=TEXT, name="bench")
    placeholder = "__UNSUBSCRIBE__"

    def render(db_session, ids):
        for item in render_for_customers(
            db_session=db_session,
            template=template,
            customer_ids=ids,
            unsubscribe_url=lambda _cid, _addr: placeholder,
        ):
            if item.error:
                raise SystemExit(f"render failed for customer {item.customer_id}: {item.error}")
            to = getattr(item, "to", None) or getattr(item, "address", None)
            yield item.customer_id, to, item.subject, item.html, item.text

    return "keepwell.campaigns.templates.render_for_customers", render


def _jinja_renderer():
    from jinja2.sandbox import SandboxedEnvironment
    from sqlalchemy import select

    from keepwell.customers.models import Customer

    html_env = SandboxedEnvironment(autoescape=True)
    text_env = SandboxedEnvironment(autoescape=False)
    subject_t, html_t, text_t = (
        text_env.from_string(SUBJECT),
        html_env.from_string(HTML),
        text_env.from_string(TEXT),
    )

    def render(db_session, ids):
        for c in db_session.scalars(select(Customer).where(Customer.id.in_(ids))):
            values = {"customer": c, "unsubscribe_url": "__UNSUBSCRIBE__"}
            yield (
                c.id,
                c.email,
                subject_t.render(values),
                html_t.render(values),
                text_t.render(values),
            )

    return render


def queue_all(settings, engine) -> tuple[str, float]:
    """Render and queue one message per customer; returns (renderer, seconds)."""
    from sqlalchemy import select

    from keepwell.customers.models import Customer
    from keepwell.db import make_sessionmaker
    from keepwell.email import service, tokens
    from keepwell.email.links import track_links

    name, render = _renderer()
    started = time.perf_counter()
    with make_sessionmaker(engine)() as db:
        ids = list(db.scalars(select(Customer.id).order_by(Customer.id)))
        for start in range(0, len(ids), 2000):
            for customer_id, to, subject, html, text in render(db, ids[start : start + 2000]):
                message = service.queue_message(
                    db_session=db,
                    customer_id=customer_id,
                    to=to,
                    subject=subject,
                    html=html,
                    text=text,
                    kind="campaign",
                    campaign_id=1,
                    variant="A",
                    dedup_key=f"bench:{customer_id}",
                )
                link = tokens.unsubscribe_url(settings, message)
                message.html = track_links(html, settings=settings, message=message).replace(
                    "__UNSUBSCRIBE__", link
                )
                message.text = text.replace("__UNSUBSCRIBE__", link)
            db.commit()
    return name, time.perf_counter() - started


def prerender(settings, engine) -> list[tuple[str, bytes]]:
    """Every queued message as (recipient, bytes), exactly as keepwell would compose it."""
    from sqlalchemy import select

    from keepwell.db import make_sessionmaker
    from keepwell.email.compose import Composer, OutgoingMessage
    from keepwell.email.models import EmailMessage
    from keepwell.email.tokens import unsubscribe_url

    composer = Composer(
        mail_from=settings.mail_from,
        secret=settings.resolved_secret_key(),
        unsubscribe_url=lambda m: unsubscribe_url(settings, m),
    )
    with make_sessionmaker(engine)() as db:
        rows = db.execute(
            select(
                EmailMessage.id,
                EmailMessage.to_address,
                EmailMessage.subject,
                EmailMessage.html,
                EmailMessage.text,
                EmailMessage.kind,
            ).order_by(EmailMessage.id)
        ).all()
    return [
        (
            r.to_address,
            composer.compose(
                OutgoingMessage(r.id, r.to_address, r.subject, r.html, r.text, r.kind)
            ),
        )
        for r in rows
    ]


async def raw_send(
    port: int, concurrency: int, messages: list[tuple[str, bytes]], sender: str
) -> None:
    """The baseline: ``concurrency`` persistent aiosmtplib connections, nothing else."""
    import aiosmtplib

    queue: asyncio.Queue = asyncio.Queue()
    for item in messages:
        queue.put_nowait(item)

    async def worker() -> None:
        client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False)
        await client.connect()
        try:
            while not queue.empty():
                to, data = queue.get_nowait()
                await client.sendmail(sender, [to], data)
        finally:
            await client.quit()

    await asyncio.gather(*(worker() for _ in range(concurrency)))


def _wait_count(counter, expected: int, timeout: float = 30.0) -> int:
    deadline = time.monotonic() + timeout
    while counter.value < expected and time.monotonic() < deadline:
        time.sleep(0.01)
    return counter.value


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000, help="messages (customers)")
    parser.add_argument("--concurrency", type=int, default=4, help="SMTP connections")
    parser.add_argument("--database-url", help="store URL (default: SQLite in the work dir)")
    parser.add_argument("--work", type=Path, help="work directory (default: a temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument("--json", type=Path, help="write the figures to this file")
    args = parser.parse_args(argv)
    if args.messages < 1 or not 1 <= args.concurrency <= 64:
        parser.error("--messages must be >= 1 and --concurrency 1-64")

    from keepwell import migrate
    from keepwell.config import Settings
    from keepwell.db import make_engine
    from keepwell.email.sender import send_due

    work = args.work or Path(tempfile.mkdtemp(prefix="keepwell-send-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    url = args.database_url or f"sqlite:///{work / 'keepwell.db'}"
    settings = Settings(
        home=work,
        database_url=url,
        smtp_port=port,
        send_concurrency=args.concurrency,
        send_rate=0,
        secret_key="bench-secret",
        base_url="https://keepwell.example",
        mail_from="Keepwell <news@keepwell.example>",
    )
    ctx = multiprocessing.get_context("spawn")
    counter, ready, stop = ctx.Value("q", 0), ctx.Event(), ctx.Event()
    server = ctx.Process(target=_serve, args=(port, counter, ready, stop), daemon=True)
    engine = make_engine(url)
    figures: dict = {
        "messages": args.messages,
        "concurrency": args.concurrency,
        "database": engine.dialect.name,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
    }
    try:
        migrate.upgrade(engine)
        t = time.perf_counter()
        make_customers(engine, args.messages)
        figures["customers_s"] = time.perf_counter() - t
        renderer, seconds = queue_all(settings, engine)
        figures.update(renderer=renderer, queue_s=seconds, queue_per_s=args.messages / seconds)
        print(f"queued {args.messages:,} with {renderer} in {seconds:.1f} s "
              f"({args.messages / seconds:,.0f}/s)", flush=True)  # fmt: skip
        messages = prerender(settings, engine)
        server.start()
        if not ready.wait(30):
            raise SystemExit("the SMTP server did not start")

        def raw_round(label: str) -> float:
            counter.value = 0
            t = time.perf_counter()
            asyncio.run(raw_send(port, args.concurrency, messages, "news@keepwell.example"))
            seconds = time.perf_counter() - t
            got = _wait_count(counter, args.messages)
            if got != args.messages:
                raise SystemExit(f"raw loop: the server counted {got}, expected {args.messages}")
            print(f"raw aiosmtplib ({label}): {args.messages / seconds:,.0f} messages/s "
                  f"({seconds:.1f} s)", flush=True)  # fmt: skip
            return seconds

        raw_before = raw_round("before")
        counter.value = 0
        t = time.perf_counter()
        report = send_due(settings)
        kw_s = time.perf_counter() - t
        got = _wait_count(counter, args.messages)
        if report.sent != args.messages or got != args.messages:
            raise SystemExit(
                f"keepwell: sent {report.sent}, server counted {got}, expected {args.messages}"
            )
        print(f"keepwell sender: {args.messages / kw_s:,.0f} messages/s ({kw_s:.1f} s)", flush=True)
        raw_after = raw_round("after")
        raw_s = (raw_before + raw_after) / 2  # the raw loop runs before and after keepwell
        ratio = raw_s / kw_s
        figures.update(
            raw_rounds_s=[raw_before, raw_after],
            raw_s=raw_s,
            raw_per_s=args.messages / raw_s,
            keepwell_s=kw_s,
            keepwell_per_s=args.messages / kw_s,
            ratio=ratio,
            goal=GOAL,
            met=ratio >= GOAL,
        )
        verdict = "met" if ratio >= GOAL else "NOT met"
        print(f"ratio keepwell/raw: {ratio:.2f}x (goal >= {GOAL}x): {verdict}")
    finally:
        stop.set()
        if server.pid is not None:
            server.join(10)
        engine.dispose()
        if not args.keep and args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2), encoding="utf-8")
    return figures


if __name__ == "__main__":
    main(sys.argv[1:])
