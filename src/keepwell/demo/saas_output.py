"""Rows of the SaaS demo files, and its usage events, from a simulated :class:`SaasChunk`."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from keepwell.demo import names, vocab
from keepwell.demo import saas_signals as signals
from keepwell.demo.clock import Window
from keepwell.demo.saas import SUBSCRIPTION_STATUS, SaasChunk
from keepwell.demo.sessions import B2B_HOURS, lay_out
from keepwell.demo.simkit import ChunkResult, join_tags, rank_within, strings
from keepwell.demo.writers import EVENT_BATCH, iso, optional_int

BILLING = ("month", "year")
CUSTOMER_STATUS = ("lead", "trial", "active", "churned", "churned")  # by customer state
_USER_SUFFIX = pa.array([f"-u{i:03d}" for i in range(1, 1000)])
_PROPERTIES = tuple(p for e in vocab.SAAS_EVENTS for p in vocab.EVENT_PROPERTIES.get(e, ()))
_SYSTEM = [vocab.SAAS_EVENTS.index(e) for e in vocab.SYSTEM_EVENTS]


def simulate(
    rng: np.random.Generator,
    *,
    first: int,
    n: int,
    total: int,
    window: Window,
    events_per_customer_day: float,
    event_batch: int = EVENT_BATCH,
) -> ChunkResult:
    """Simulate SaaS customers ``first .. first + n - 1`` of ``total``."""
    chunk = SaasChunk(
        rng,
        first=first,
        n=n,
        total=total,
        window=window,
        events_per_customer_day=events_per_customer_day,
    )
    chunk.run()
    out = _Output(chunk)
    return ChunkResult(tables=out.tables(), events=out.event_batches(event_batch))


class _Output:
    def __init__(self, chunk: SaasChunk) -> None:
        c = self.c = chunk
        # Names are drawn after the simulation, so they never shift its random stream.
        number = c.first + np.arange(c.n) + 1
        self.cid = names.numbered("C", number, 7)
        region = np.array([vocab.REGIONS.index(p[2]) for p in vocab.COUNTRIES])[c.place]
        first, last = names.person_names(c.rng, region)
        self.company, slug = names.company_names(number, c.industry)
        domain = pc.binary_join_element_wise(slug, pa.scalar("example"), ".")
        self.email = names.emails(first, last, domain)

    def tables(self) -> dict[str, pa.Table]:
        return {
            "customers": self._customers(),
            "subscriptions": self._subscriptions(),
            "invoices": self._invoices(),
            "surveys": self._surveys(),
            "tickets": self._tickets(),
            "truth": self._truth(),
        }

    def _customers(self) -> pa.Table:
        c = self.c
        legal = strings(tuple(p[3] for p in vocab.COUNTRIES), c.place)
        tags = join_tags(
            {
                "enterprise": c.plan == 3,
                "key-account": (c.plan >= 2) & (c.seats >= 40),
                "beta": c.beta,
                "partner": c.channel == vocab.ACQUISITION_CHANNELS.index("partner"),
            }
        )
        band = np.searchsorted(np.array([3, 12, 40, 150]), c.seats, side="left")
        return pa.table(
            {
                "external_id": self.cid,
                "name": self.company,
                "email": self.email,
                "company": pc.binary_join_element_wise(self.company, legal, " "),
                "industry": strings(tuple(i[0] for i in vocab.INDUSTRIES), c.industry),
                "country": strings(tuple(p[0] for p in vocab.COUNTRIES), c.place),
                "time_zone": strings(tuple(p[1] for p in vocab.COUNTRIES), c.place),
                "signup_at": iso(c.signup),
                "owner_email": strings(vocab.OWNERS, c.owner),
                "status": strings(CUSTOMER_STATUS, c.state),
                "tags": tags,
                "attr_seats": pa.array(c.seats.astype(np.int64)),
                "attr_acquisition_channel": strings(vocab.ACQUISITION_CHANNELS, c.channel),
                "attr_employees": strings(vocab.EMPLOYEE_BANDS, band),
            }
        )

    def _subscriptions(self) -> pa.Table:
        f = self.c.subscriptions.frame(
            "customer", "seq", "plan", "annual", "trial", "start", "end", "status", "reason",
            by=("customer", "seq"),
        )  # fmt: skip
        cid = self.cid.take(pa.array(f["customer"]))
        price = np.array(vocab.PLAN_PRICE_MINOR)[f["plan"]]
        yearly = np.round(price * 12 * (1 - vocab.ANNUAL_DISCOUNT)).astype(np.int64)
        price = np.where(f["trial"], 0, np.where(f["annual"], yearly, price))
        rows = len(price)
        return pa.table(
            {
                "external_id": names.suffixed(cid, "-S", f["seq"], 2),
                "customer_id": cid,
                "plan": strings(vocab.PLANS, f["plan"]),
                "price_minor": pa.array(price.astype(np.int64)),
                "currency": pa.array(np.full(rows, vocab.CURRENCY_SAAS)),
                "billing_period": strings(BILLING, f["annual"].astype(np.int64)),
                "quantity": pa.array(np.ones(rows, np.int64)),
                "started_at": iso(f["start"]),
                "ended_at": iso(f["end"]),
                "status": strings(SUBSCRIPTION_STATUS, f["status"]),
                "cancel_reason": strings(signals.REASONS, f["reason"]),
            }
        )

    def _invoices(self) -> pa.Table:
        f = self.c.invoices.frame(
            "customer", "seq", "issue", "due", "paid", "status", "attempts", "reason", "amount",
            by=("customer", "issue"),
        )  # fmt: skip
        cid = self.cid.take(pa.array(f["customer"]))
        return pa.table(
            {
                "external_id": names.suffixed(cid, "-I", rank_within(f["customer"]), 4),
                "customer_id": cid,
                "subscription_id": names.suffixed(cid, "-S", f["seq"], 2),
                "amount_minor": pa.array(f["amount"].astype(np.int64)),
                "currency": pa.array(np.full(len(f["amount"]), vocab.CURRENCY_SAAS)),
                "issued_at": iso(f["issue"]),
                "due_at": iso(f["due"]),
                "paid_at": iso(f["paid"]),
                "status": strings(signals.INVOICE_STATUS, f["status"]),
                "attempt_count": pa.array(f["attempts"].astype(np.int64)),
                "failure_reason": strings(vocab.FAILURE_REASONS, f["reason"]),
            }
        )

    def _surveys(self) -> pa.Table:
        f = self.c.surveys.frame(
            "customer", "at", "kind", "score", "comment", "survey", by=("customer", "at", "kind")
        )
        customer = pa.array(f["customer"])
        cid = self.cid.take(customer)
        return pa.table(
            {
                "external_id": names.suffixed(cid, "-R", rank_within(f["customer"]), 3),
                "customer_id": cid,
                "kind": strings(signals.SURVEY_KINDS, f["kind"]),
                "score": optional_int(f["score"], f["score"] < 0),
                "comment": strings(signals.SURVEY_TEXTS, f["comment"]),
                "responded_at": iso(f["at"]),
                "survey": strings(signals.SURVEY_NAMES, f["survey"]),
                "respondent_email": self.email.take(customer),
            }
        )

    def _tickets(self) -> pa.Table:
        f = self.c.tickets.frame(
            "customer", "opened", "closed", "priority", "status", "subject",
            by=("customer", "opened"),
        )  # fmt: skip
        cid = self.cid.take(pa.array(f["customer"]))
        return pa.table(
            {
                "external_id": names.suffixed(cid, "-T", rank_within(f["customer"]), 3),
                "customer_id": cid,
                "subject": strings(signals.TICKET_SUBJECTS, f["subject"]),
                "priority": strings(signals.TICKET_PRIORITY, f["priority"]),
                "status": strings(signals.TICKET_STATUS, f["status"]),
                "opened_at": iso(f["opened"]),
                "closed_at": iso(f["closed"]),
            }
        )

    def _truth(self) -> pa.Table:
        c = self.c
        shock = np.where(c.crisis, 1, np.where(c.thriving, 2, 0))
        return pa.table(
            {
                "customer_id": self.cid,
                "persona": strings(tuple(p[0] for p in vocab.PERSONAS), c.persona),
                "habit": strings(vocab.HABITS, c.habit),
                "industry": strings(tuple(i[0] for i in vocab.INDUSTRIES), c.industry),
                "industry_shock": strings(("none", "crisis", "thriving"), shock),
                "trial": pa.array(c.trial),
                "plan_at_signup": strings(vocab.PLANS, c.plan0),
                "plan_at_end": strings(vocab.PLANS, c.plan),
                "health_at_signup": pa.array(np.round(c.health0, 3)),
                "health_at_end": pa.array(np.round(c.health_end, 3)),
                "status_at_end": strings(CUSTOMER_STATUS, c.state),
                "churned": pa.array(c.churn_count > 0),
                "churn_count": pa.array(c.churn_count.astype(np.int64)),
                "first_churned_at": iso(c.first_churn_at),
                "first_churn_cause": strings(signals.CAUSES, c.first_cause),
                "churned_at": iso(c.last_churn_at),
                "churn_cause": strings(signals.CAUSES, c.last_cause),
                "reactivations": pa.array(c.reactivations.astype(np.int64)),
            }
        )

    # --- usage events ---------------------------------------------------------------------------

    def event_batches(self, size: int) -> Iterator[pa.Table]:
        """Usage events in batches of about ``size`` rows, sorted by customer and time."""
        customer, period = np.nonzero(self.c.days)
        cumulative = np.cumsum(self.c.events[customer, period])
        start = 0
        while start < len(customer):
            before = cumulative[start - 1] if start else 0
            stop = int(np.searchsorted(cumulative, before + size, side="right"))
            stop = max(stop, start + 1)
            yield self._events(customer[start:stop], period[start:stop])
            start = stop

    def _events(self, customer: np.ndarray, period: np.ndarray) -> pa.Table:
        """Sessions open with ``login``; other events follow the customer's adopted features
        (earlier-adopted ones more often); ``integration_sync`` and ``api_call`` have no user."""
        c, rng = self.c, self.c.rng
        timed = lay_out(
            rng,
            zone=c.zone[customer],
            lo=c.lo[customer, period],
            hi=c.hi[customer, period],
            days=c.days[customer, period],
            events=c.events[customer, period],
            zones=c.window.zones,
            hours=B2B_HOURS,
            weekend_keep=0.3,
        )
        k = len(timed.row)
        who = customer[timed.row]
        breadth = c.breadth[customer, period][timed.row].astype(np.int64)
        pick = np.minimum((breadth * rng.random(k) ** 1.6).astype(np.int64), breadth - 1)
        kind = np.where(timed.opens_session, 0, c.feature_order[who, pick]).astype(np.int64)
        seats = c.seats_t[customer, period][timed.row].astype(np.int64)
        share = rng.random(timed.n_sessions)[timed.session]
        user = np.minimum((seats * share**2).astype(np.int64), seats - 1)
        # Sort by customer, then time (overlapping visits may interleave): one stable sort of
        # customer << 43 | milliseconds since the window start, on nearly sorted data.
        ms = (timed.occurred_us - c.window.start * 1_000_000) // 1_000
        order = np.argsort((who.astype(np.int64) << 43) | ms, kind="stable")
        who, kind, user = who[order], kind[order], user[order]
        value, properties = _decorate(rng, kind)
        cid = self.cid.take(pa.array(who))
        user_id = pc.binary_join_element_wise(
            cid, _USER_SUFFIX.take(pa.array(user, mask=np.isin(kind, _SYSTEM))), ""
        )
        return pa.table(
            {
                "customer_id": cid,
                "event": strings(vocab.SAAS_EVENTS, kind),
                "occurred_at": pa.array(timed.occurred_us[order], pa.timestamp("us", tz="UTC")),
                "user_id": user_id,
                "value": pa.array(value, from_pandas=True),
                "properties": properties,
            }
        )


def _decorate(rng: np.random.Generator, kind: np.ndarray) -> tuple[np.ndarray, pa.Array]:
    """A numeric value and a JSON properties string per event, by event type (or null)."""
    value = np.full(len(kind), np.nan)
    prop = np.full(len(kind), -1, np.int64)
    spec = {
        "dashboard_view": lambda m: np.round(np.exp(np.log(40) + 0.8 * rng.normal(size=m)), 1),
        "report_created": lambda m: rng.integers(1, 13, m).astype(np.float64),
        "export": lambda m: np.round(np.exp(np.log(500) + 1.2 * rng.normal(size=m))),
        "api_call": lambda m: np.round(np.exp(np.log(20) + 1.0 * rng.normal(size=m))),
        "integration_sync": lambda m: np.round(np.exp(np.log(150) + 1.0 * rng.normal(size=m))),
        "file_uploaded": lambda m: np.round(np.exp(np.log(1.5) + 1.0 * rng.normal(size=m)), 2),
    }
    base = 0
    for index, event in enumerate(vocab.SAAS_EVENTS):
        mask = kind == index
        m = int(mask.sum())
        if event in spec and m:
            value[mask] = spec[event](m)
        options = vocab.EVENT_PROPERTIES.get(event, ())
        if options and m:
            prop[mask] = base + rng.integers(0, len(options), m)
        base += len(options)
    return value, strings(_PROPERTIES, prop)
