"""The column schema of every import kind: the single source for validation, docs and demo files.

A file may name columns exactly as here, or be renamed with a column mapping
(:mod:`keepwell.imports.mapping`). Rules that hold for every kind:

* Timestamps are ISO 8601 (``2026-03-01``, ``2026-03-01T09:30:00``, ``...+02:00``, ``...Z``).
  A timestamp without an offset is read in the import's time zone (default UTC); a bare date
  is midnight of that day.
* Money is either ``<name>_minor`` (integer minor units, e.g. cents) or ``<name>`` (a decimal
  amount in major units, converted with the currency's number of decimals). Never negative.
* ``customer_id`` is the customer's *external* id, which must already exist (import customers
  first) -- or appear earlier in the same customers file.
* ``external_id`` is the row's id in the source system; imports upsert on it, so re-importing
  a file changes nothing.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from keepwell.billing.models import BillingPeriod, InvoiceStatus, OrderStatus, SubscriptionStatus
from keepwell.customers.models import CustomerStatus
from keepwell.support.models import TicketPriority, TicketStatus
from keepwell.surveys.models import SurveyKind


class FieldType(enum.StrEnum):
    """How a column's text is parsed and checked."""

    string = "string"
    text = "text"  # long free text
    integer = "integer"
    number = "number"  # decimal / float
    money = "money"  # see module docstring: `<name>_minor` or `<name>` in major units
    timestamp = "timestamp"
    choice = "choice"
    email = "email"
    country = "country"  # ISO 3166-1 alpha-2
    time_zone = "time_zone"  # IANA name
    currency = "currency"  # ISO 4217
    json = "json"  # a JSON object
    tags = "tags"  # names separated by ';'


@dataclass(frozen=True)
class Field:
    """One column of an import file."""

    name: str
    type: FieldType
    required: bool = False
    description: str = ""
    choices: tuple[str, ...] = ()
    default: str | None = None
    max_length: int | None = None


@dataclass(frozen=True)
class ImportSchema:
    """The columns of one import kind and the column its rows are keyed on."""

    kind: str
    fields: tuple[Field, ...]
    key: str | None = "external_id"
    description: str = ""
    extra_prefix: str | None = None  # columns starting with it go into a JSON attributes column
    notes: tuple[str, ...] = field(default=())

    def field(self, name: str) -> Field:
        return next(f for f in self.fields if f.name == name)

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields if f.required)


def _choices(cls: type[enum.Enum]) -> tuple[str, ...]:
    return tuple(m.value for m in cls)


F = FieldType

CUSTOMERS = ImportSchema(
    kind="customers",
    description="Customer accounts. Also creates their owners (staff users) by e-mail and tags.",
    fields=(
        Field("external_id", F.string, True, "Id of the customer in your system.", max_length=255),
        Field("name", F.string, True, "Display name (company or person).", max_length=255),
        Field("email", F.email, description="Main e-mail address."),
        Field("company", F.string, description="Company name.", max_length=255),
        Field(
            "industry", F.string, description="Industry, e.g. travel, healthcare.", max_length=120
        ),
        Field("country", F.country, description="ISO 3166-1 alpha-2 code, e.g. DE."),
        Field(
            "time_zone", F.time_zone, description="IANA zone, e.g. Europe/Berlin.", default="UTC"
        ),
        Field("signup_at", F.timestamp, True, "When the customer signed up."),
        Field("owner_email", F.email, description="E-mail of the responsible manager (staff)."),
        Field(
            "status",
            F.choice,
            description="Account state.",
            choices=_choices(CustomerStatus),
            default="active",
        ),
        Field("tags", F.tags, description="Tag names separated by ';'."),
    ),
    extra_prefix="attr_",
    notes=("Any column named `attr_<name>` is stored as custom attribute `<name>`.",),
)

SUBSCRIPTIONS = ImportSchema(
    kind="subscriptions",
    description=(
        "Subscription periods at a constant price. A plan change ends one row and starts the "
        "next; active while started_at <= t < ended_at."
    ),
    fields=(
        Field("external_id", F.string, True, "Id of the subscription (period).", max_length=255),
        Field("customer_id", F.string, True, "External id of the customer."),
        Field("plan", F.string, True, "Plan name.", max_length=120),
        Field("mrr", F.money, description="Monthly recurring revenue (or give `price`)."),
        Field("price", F.money, description="Price per billing period; MRR = price / months."),
        Field("currency", F.currency, description="ISO 4217 code; default from settings."),
        Field(
            "billing_period",
            F.choice,
            description="Billing interval.",
            choices=_choices(BillingPeriod),
            default="month",
        ),
        Field("quantity", F.integer, description="Seats/units (>= 1).", default="1"),
        Field("started_at", F.timestamp, True, "Start of the period."),
        Field("ended_at", F.timestamp, description="End (exclusive); empty while running."),
        Field(
            "status",
            F.choice,
            description="State.",
            choices=_choices(SubscriptionStatus),
            default="active",
        ),
        Field("cancel_reason", F.string, description="Why it was cancelled."),
    ),
    notes=("Exactly one of `mrr`/`mrr_minor`/`price`/`price_minor` is needed.",),
)

INVOICES = ImportSchema(
    kind="invoices",
    description="Invoices and their payment state (failed and overdue payments are risk signals).",
    fields=(
        Field("external_id", F.string, True, "Id of the invoice.", max_length=255),
        Field("customer_id", F.string, True, "External id of the customer."),
        Field("subscription_id", F.string, description="External id of the subscription row."),
        Field("amount", F.money, True, "Amount invoiced."),
        Field("currency", F.currency, description="ISO 4217 code; default from settings."),
        Field("issued_at", F.timestamp, True, "When it was issued."),
        Field("due_at", F.timestamp, description="When payment is due."),
        Field("paid_at", F.timestamp, description="When it was paid; empty if unpaid."),
        Field(
            "status",
            F.choice,
            description="Payment state.",
            choices=_choices(InvoiceStatus),
            default="open",
        ),
        Field("attempt_count", F.integer, description="Payment attempts so far.", default="0"),
        Field("failure_reason", F.string, description="Why the last payment failed."),
    ),
)

ORDERS = ImportSchema(
    kind="orders",
    description="One-off purchases (repeat-purchase businesses).",
    fields=(
        Field("external_id", F.string, True, "Id of the order.", max_length=255),
        Field("customer_id", F.string, True, "External id of the customer."),
        Field("ordered_at", F.timestamp, True, "When it was ordered."),
        Field("amount", F.money, True, "Order total."),
        Field("currency", F.currency, description="ISO 4217 code; default from settings."),
        Field("category", F.string, description="Purchase category.", max_length=120),
        Field("items", F.integer, description="Number of items (>= 1).", default="1"),
        Field(
            "status",
            F.choice,
            description="State.",
            choices=_choices(OrderStatus),
            default="completed",
        ),
    ),
)

SURVEYS = ImportSchema(
    kind="surveys",
    description="Survey answers: NPS scores 0-10, CSAT 1-5, open answers carry no score.",
    fields=(
        Field("external_id", F.string, True, "Id of the response.", max_length=255),
        Field("customer_id", F.string, True, "External id of the customer."),
        Field("kind", F.choice, True, "Question type.", choices=_choices(SurveyKind)),
        Field("score", F.integer, description="Score; required for nps (0-10) and csat (1-5)."),
        Field("comment", F.text, description="Free-text answer."),
        Field("responded_at", F.timestamp, True, "When it was answered."),
        Field("survey", F.string, description="Survey name.", max_length=120),
        Field("respondent_email", F.email, description="Who answered."),
    ),
)

TICKETS = ImportSchema(
    kind="tickets",
    description="Support tickets.",
    fields=(
        Field("external_id", F.string, True, "Id of the ticket.", max_length=255),
        Field("customer_id", F.string, True, "External id of the customer."),
        Field("subject", F.string, description="Subject line.", max_length=500),
        Field(
            "priority",
            F.choice,
            description="Urgency.",
            choices=_choices(TicketPriority),
            default="normal",
        ),
        Field(
            "status", F.choice, description="State.", choices=_choices(TicketStatus), default="open"
        ),
        Field("opened_at", F.timestamp, True, "When it was opened."),
        Field("closed_at", F.timestamp, description="When it was closed."),
    ),
)

EVENTS = ImportSchema(
    kind="events",
    key=None,
    description=(
        "Product usage events, appended to the event store. A file is imported once: "
        "re-importing the same file (same content) is recognised and skipped."
    ),
    fields=(
        Field("customer_id", F.string, True, "External id of the customer."),
        Field("event", F.string, True, "Event name, e.g. login, report_created.", max_length=200),
        Field("occurred_at", F.timestamp, True, "When it happened."),
        Field("user_id", F.string, description="Which user of the customer did it."),
        Field("value", F.number, description="A numeric value (amount, duration, count)."),
        Field("properties", F.json, description="A JSON object of extra properties."),
    ),
)

SCHEMAS: dict[str, ImportSchema] = {
    s.kind: s for s in (CUSTOMERS, SUBSCRIPTIONS, INVOICES, ORDERS, SURVEYS, TICKETS, EVENTS)
}
"""Every import kind by name, in the order files should be imported."""
