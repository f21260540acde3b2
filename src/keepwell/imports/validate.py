"""Check and convert every row of a :class:`~keepwell.imports.columns.Frame`, column by column.

The result is a :class:`Validated`: the accepted rows as ready-to-write records (database
column -> Python value), which database columns the file provides, and every problem found.
A row with several problems gets one reject per problem and counts once as rejected.

Per-kind rules beyond the column types (:mod:`keepwell.imports.schemas`):

* ``customer_id`` must name a stored customer; ``subscription_id`` (invoices) a stored
  subscription of the same customer.
* subscriptions: exactly one of ``mrr``/``mrr_minor``/``price``/``price_minor`` per row;
  ``mrr_minor = round_half_even(price_minor / months(billing_period))``; ``quantity >= 1``;
  ``ended_at >= started_at``.
* invoices: ``attempt_count >= 0``; orders: ``items >= 1``; tickets: ``closed_at >= opened_at``.
* surveys: ``score`` is required for nps (0-10) and csat (1-5).
* ``external_id`` appears once per file; a later duplicate is rejected naming the first row.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import Column, String, Table
from sqlalchemy.orm import Session

from keepwell.all_models import (
    Customer,
    Invoice,
    Order,
    Subscription,
    SurveyResponse,
    Tag,
    Ticket,
)
from keepwell.billing.models import MONTHS_PER_PERIOD, BillingPeriod
from keepwell.imports import parse
from keepwell.imports.columns import MINOR_SUFFIX, Frame
from keepwell.imports.problems import Problems, as_bool
from keepwell.imports.schemas import Field, FieldType
from keepwell.imports.summary import Reject
from keepwell.imports.upsert import fetch_columns
from keepwell.surveys.models import SCORE_RANGE

TABLES: dict[str, Table] = {
    "customers": Customer.__table__,
    "subscriptions": Subscription.__table__,
    "invoices": Invoice.__table__,
    "orders": Order.__table__,
    "surveys": SurveyResponse.__table__,
    "tickets": Ticket.__table__,
}
"""The table each kind is upserted into (on ``external_id``)."""


INT32_MAX = 2_147_483_647
"""Largest value of an INTEGER column (quantity, items, attempt_count, score)."""


@dataclass
class Options:
    """What a row's text means: zone of offset-less timestamps, currency when none is given."""

    timezone: str = "UTC"
    default_currency: str = "USD"


Values = pa.Array | np.ndarray
"""Values of one column for every row of the file (rejected rows included)."""


@dataclass
class Validated:
    """The accepted rows of one file and everything wrong with the others.

    Values stay columnar (Arrow/numpy, one entry per file row) until :meth:`records` turns a
    slice of the accepted rows into Python dicts, so memory follows the slice, not the file.

    Attributes:
        positions: table positions of the accepted rows, in file order.
        values: database column -> values (insert values, defaults filled).
        provided: database columns the file provides (written on update and compared); the
            others only get their default on insert.
        extras: per-kind side data (customers: ``owner_email``, ``tags``, and ``attributes``
            as attribute name -> column).
    """

    kind: str
    table: Table
    problems: Problems
    positions: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    values: dict[str, Values] = field(default_factory=dict)
    provided: set[str] = field(default_factory=set)
    extras: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.positions)

    def records(self, positions: np.ndarray) -> list[dict[str, Any]]:
        """The rows at table ``positions`` as dicts (database column -> Python value)."""
        names = list(self.values)
        columns = [to_python(self.values[n], positions) for n in names]
        return [dict(zip(names, row, strict=True)) for row in zip(*columns, strict=True)]

    def extra(self, name: str, positions: np.ndarray) -> list[Any] | None:
        """Side data ``name`` at ``positions`` (None when the file does not have it)."""
        values = self.extras.get(name)
        if values is None:
            return None
        if isinstance(values, dict):  # custom attributes: name -> column
            names = list(values)
            taken = [to_python(values[n], positions) for n in names]
            return [dict(zip(names, row, strict=True)) for row in zip(*taken, strict=True)]
        return to_python(values, positions)


class _Rows:
    """Parsed columns of one file, before the rejected rows are dropped."""

    def __init__(self, frame: Frame, problems: Problems, options: Options, table: Table) -> None:
        self.frame = frame
        self.problems = problems
        self.options = options
        self.table = table
        self.values: dict[str, pa.Array | np.ndarray] = {}  # database column -> values
        self.provided: set[str] = set()

    def cells(self, name: str) -> pa.Array | None:
        return self.frame.cells.get(name)

    def constant(self, value: Any, type_: pa.DataType) -> pa.Array:
        return pa.array([value] * self.frame.n, type_)

    def max_length(self, f: Field) -> int | None:
        if f.max_length is not None:
            return f.max_length
        column = self.table.c.get(f.name)
        if column is not None and isinstance(column.type, String):
            return column.type.length
        return None

    def parse(self, f: Field) -> pa.Array | None:
        """Parse field ``f`` into the database column of the same name.

        Returns the parsed values, or None when the file does not have the column and the
        field has no default.
        """
        column = f.name
        cells = self.cells(f.name)
        if cells is None:
            if f.default is None:
                return None
            cells = self.constant(f.default, pa.string())
        else:
            self.provided.add(column)
            if f.default is not None:
                cells = cells.fill_null(f.default)
        if f.required:
            self.problems.add(pc.is_null(cells), f.name, "required value is empty")
        parsed = self.parse_cells(f, cells)
        self.values[column] = parsed
        return parsed

    def parse_cells(self, f: Field, cells: pa.Array) -> pa.Array:
        p, name = self.problems, f.name
        match f.type:
            case FieldType.string | FieldType.text:
                return parse.text(cells, field=name, problems=p, max_length=self.max_length(f))
            case FieldType.integer:  # INTEGER columns: 32-bit on PostgreSQL
                return parse.integer(cells, field=name, problems=p, maximum=INT32_MAX)
            case FieldType.number:
                return parse.number(cells, field=name, problems=p)
            case FieldType.timestamp:
                return parse.timestamp(cells, field=name, problems=p, tz=self.options.timezone)
            case FieldType.choice:
                return parse.choice(cells, field=name, problems=p, choices=f.choices)
            case FieldType.email:
                return parse.email(cells, field=name, problems=p)
            case FieldType.country:
                return parse.country(cells, field=name, problems=p)
            case FieldType.time_zone:
                return parse.time_zone(cells, field=name, problems=p)
            case FieldType.currency:
                return parse.currency(cells, field=name, problems=p)
            case FieldType.tags:
                max_length = Tag.__table__.c.name.type.length
                return parse.tags(cells, field=name, problems=p, max_length=max_length)
        raise TypeError(f"no parser for {f.type} (field {name!r})")  # pragma: no cover

    def at_least(self, column: str, minimum: int) -> None:
        """Reject rows whose integer ``column`` is below ``minimum``."""
        values = self.values.get(column)
        if values is None:
            return
        self.problems.add(
            pc.less(values, minimum), column, f"must be at least {minimum}", self.cells(column)
        )

    def not_before(self, later: str, earlier: str) -> None:
        """Reject rows where timestamp ``later`` is before ``earlier``."""
        if later not in self.values or earlier not in self.values:
            return
        self.problems.add(
            pc.less(self.values[later], self.values[earlier]),
            later,
            f"{later} is before {earlier}",
            self.cells(later),
        )

    def currency(self) -> pa.Array:
        """The currency column, the default currency filling empty cells and absent columns."""
        f = self.frame.schema.field("currency")
        cells = self.cells("currency")
        default = self.options.default_currency
        cells = self.constant(default, pa.string()) if cells is None else cells.fill_null(default)
        self.provided.add("currency")  # an amount always comes with its currency
        parsed = self.parse_cells(f, cells)
        self.values["currency"] = parsed
        return parsed

    def money(self, name: str, currency: pa.Array) -> pa.Array:
        """Money field ``name`` in minor units, from ``<name>`` or ``<name>_minor``."""
        major, minor = self.cells(name), self.cells(name + MINOR_SUFFIX)
        minor_name = name + MINOR_SUFFIX
        result = pa.nulls(self.frame.n, pa.int64())
        if major is not None and minor is not None:
            both = pc.and_(pc.is_valid(major), pc.is_valid(minor))
            self.problems.add(both, name, f"give either {name} or {minor_name}, not both", major)
        if minor is not None:
            parsed = parse.minor_units(minor, field=minor_name, problems=self.problems)
            result = pc.coalesce(result, parsed)
        if major is not None:
            decimals = currency_exponents(currency)
            parsed = parse.major_units(major, field=name, problems=self.problems, decimals=decimals)
            result = pc.coalesce(result, parsed)
        return result

    def given(self, name: str) -> np.ndarray:
        """Rows where money field ``name`` has a value (in either column)."""
        given = np.zeros(self.frame.n, dtype=bool)
        for column in (name, name + MINOR_SUFFIX):
            cells = self.cells(column)
            if cells is not None:
                given |= as_bool(pc.is_valid(cells))
        return given

    def reference(
        self,
        db_session: Session,
        *,
        name: str,
        column: Column,
        select: tuple[Column, ...],
        missing: Callable[[str | None], str],
    ) -> dict[str, tuple[Any, ...]]:
        """Look up the external ids of field ``name`` in ``column``; reject the unknown ones.

        Returns external id -> the ``select`` values of the matching stored row.
        """
        cells = self.cells(name)
        assert cells is not None
        keys = pc.unique(cells.drop_null()).to_pylist()
        found = fetch_columns(db_session, key=column, keys=keys, columns=select)
        known = pc.is_in(cells, value_set=pa.array(list(found), pa.string()))
        self.problems.add(parse.invalid(cells, known), name, missing, cells)
        return found


def currency_exponents(currency: pa.Array) -> np.ndarray:
    """Minor-unit exponent per row (2 where the currency is missing or invalid)."""
    codes = pc.unique(currency.drop_null()).to_pylist()
    exponents = {c: parse.currency_decimals(c) for c in codes}
    index = pc.index_in(currency, value_set=pa.array(codes, pa.string()))
    lookup = np.array([exponents[c] for c in codes] + [2], dtype=np.int64)
    return lookup[index.fill_null(len(codes)).to_numpy()]


def round_half_even_div(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """``numerator / denominator`` rounded half to even, in integers (no float error)."""
    quotient, remainder = np.divmod(numerator, denominator)
    twice = 2 * remainder
    up = (twice > denominator) | ((twice == denominator) & (quotient % 2 == 1))
    return quotient + up


def _duplicates(rows: _Rows) -> None:
    cells = rows.cells("external_id")
    if cells is None:
        return
    series = cells.to_pandas()
    repeated = series.notna() & series.duplicated(keep="first")
    if not repeated.any():
        return
    first = series[series.notna() & ~series.duplicated(keep="first")]
    first_row = dict(zip(first.tolist(), rows.problems.rows[first.index.to_numpy()], strict=True))
    rows.problems.add(
        repeated.to_numpy(),
        "external_id",
        lambda v: f"duplicate external_id: first seen in row {first_row[v]}",
        cells,
    )


def _customer_ref(rows: _Rows, db_session: Session) -> None:
    cells = rows.cells("customer_id")
    rows.problems.add(pc.is_null(cells), "customer_id", "required value is empty")
    found = rows.reference(
        db_session,
        name="customer_id",
        column=Customer.__table__.c.external_id,
        select=(Customer.__table__.c.id,),
        missing=lambda v: f"customer {v!r} not found; import customers first",
    )
    rows.values["customer_id"] = _ids(rows.cells("customer_id"), found)
    rows.provided.add("customer_id")


def _ids(cells: pa.Array, found: dict[str, tuple[Any, ...]], at: int = 0) -> pa.Array:
    keys = list(found)
    index = pc.index_in(cells, value_set=pa.array(keys, pa.string()))
    return pc.take(pa.array([found[k][at] for k in keys], pa.int64()), index)


def _customers(rows: _Rows, db_session: Session) -> dict[str, Any]:
    schema = rows.frame.schema
    for name in (
        "external_id",
        "name",
        "email",
        "company",
        "industry",
        "country",
        "time_zone",
        "signup_at",
        "status",
    ):
        rows.parse(schema.field(name))
    extras: dict[str, Any] = {}
    owner = rows.cells("owner_email")
    if owner is not None:
        extras["owner_email"] = rows.parse_cells(schema.field("owner_email"), owner)
    tags = rows.cells("tags")
    if tags is not None:
        extras["tags"] = rows.parse_cells(schema.field("tags"), tags)
    attributes = rows.frame.attribute_columns()
    if attributes:
        extras["attributes"] = attributes
    return extras


def _subscriptions(rows: _Rows, db_session: Session) -> dict[str, Any]:
    schema = rows.frame.schema
    for name in ("external_id", "plan", "quantity", "started_at", "ended_at", "status"):
        rows.parse(schema.field(name))
    rows.parse(schema.field("cancel_reason"))
    _customer_ref(rows, db_session)
    currency = rows.currency()
    period = rows.parse(schema.field("billing_period"))
    assert period is not None  # has a default
    rows.at_least("quantity", 1)
    rows.not_before("ended_at", "started_at")

    given = {name: rows.given(name) for name in ("mrr", "price")}
    count = given["mrr"].astype(int) + given["price"].astype(int)
    options = "mrr, mrr_minor, price or price_minor"
    rows.problems.add(count == 0, "mrr", f"no amount: give one of {options}")
    rows.problems.add(count > 1, "mrr", f"give exactly one of {options}, not mrr and price")
    mrr = rows.money("mrr", currency).fill_null(0).to_numpy()
    price = rows.money("price", currency).fill_null(0).to_numpy()
    months_by_period = [MONTHS_PER_PERIOD[BillingPeriod(p)] for p in BillingPeriod]
    period_index = pc.index_in(period, value_set=pa.array([p.value for p in BillingPeriod]))
    months = np.array(months_by_period, dtype=np.int64)[period_index.fill_null(0).to_numpy()]
    rows.values["mrr_minor"] = np.where(given["price"], round_half_even_div(price, months), mrr)
    rows.provided.add("mrr_minor")
    if given["price"].any() or rows.frame.has("price") or rows.frame.has("price" + MINOR_SUFFIX):
        rows.provided.add("billing_period")  # the MRR was derived from it
    return {}


def _invoices(rows: _Rows, db_session: Session) -> dict[str, Any]:
    schema = rows.frame.schema
    for name in ("external_id", "issued_at", "due_at", "paid_at", "status", "attempt_count"):
        rows.parse(schema.field(name))
    rows.parse(schema.field("failure_reason"))
    _customer_ref(rows, db_session)
    currency = rows.currency()
    _amount(rows, currency)
    rows.at_least("attempt_count", 0)
    cells = rows.cells("subscription_id")
    if cells is not None:
        table = Subscription.__table__
        found = rows.reference(
            db_session,
            name="subscription_id",
            column=table.c.external_id,
            select=(table.c.id, table.c.customer_id),
            missing=lambda v: f"subscription {v!r} not found; import subscriptions first",
        )
        rows.values["subscription_id"] = _ids(cells, found)
        owner = _ids(cells, found, at=1)
        other = pc.not_equal(owner, rows.values["customer_id"])
        rows.problems.add(
            other,
            "subscription_id",
            lambda v: f"subscription {v!r} belongs to another customer",
            cells,
        )
        rows.provided.add("subscription_id")
    return {}


def _amount(rows: _Rows, currency: pa.Array) -> None:
    given = rows.given("amount")
    rows.problems.add(~given, "amount", "required value is empty")
    rows.values["amount_minor"] = rows.money("amount", currency)
    rows.provided.add("amount_minor")


def _orders(rows: _Rows, db_session: Session) -> dict[str, Any]:
    schema = rows.frame.schema
    for name in ("external_id", "ordered_at", "category", "items", "status"):
        rows.parse(schema.field(name))
    _customer_ref(rows, db_session)
    _amount(rows, rows.currency())
    rows.at_least("items", 1)
    return {}


def _surveys(rows: _Rows, db_session: Session) -> dict[str, Any]:
    schema = rows.frame.schema
    for name in (
        "external_id",
        "kind",
        "score",
        "comment",
        "responded_at",
        "survey",
        "respondent_email",
    ):
        rows.parse(schema.field(name))
    _customer_ref(rows, db_session)
    kind = rows.values["kind"]
    score = rows.values.get("score")
    for survey_kind, (low, high) in SCORE_RANGE.items():
        of_kind = pc.equal(kind, survey_kind.value).fill_null(False)
        if score is None:
            rows.problems.add(
                of_kind, "score", f"score is required for {survey_kind} answers ({low}-{high})"
            )
            continue
        missing = pc.and_(of_kind, pc.is_null(score))
        missing = pc.and_(missing, pc.is_null(rows.cells("score")))
        rows.problems.add(
            missing, "score", f"score is required for {survey_kind} answers ({low}-{high})"
        )
        outside = pc.and_(of_kind, pc.or_(pc.less(score, low), pc.greater(score, high)))
        rows.problems.add(
            outside,
            "score",
            f"{survey_kind} score must be between {low} and {high}",
            rows.cells("score"),
        )
    return {}


def _tickets(rows: _Rows, db_session: Session) -> dict[str, Any]:
    schema = rows.frame.schema
    for name in ("external_id", "subject", "priority", "status", "opened_at", "closed_at"):
        rows.parse(schema.field(name))
    _customer_ref(rows, db_session)
    rows.not_before("closed_at", "opened_at")
    return {}


KIND_RULES: dict[str, Callable[[_Rows, Session], dict[str, Any]]] = {
    "customers": _customers,
    "subscriptions": _subscriptions,
    "invoices": _invoices,
    "orders": _orders,
    "surveys": _surveys,
    "tickets": _tickets,
}


def to_python(values: Values, positions: np.ndarray) -> list[Any]:
    """Values at ``positions`` as Python objects (timestamps as aware UTC datetimes)."""
    if isinstance(values, np.ndarray):
        return values[positions].tolist()
    taken = values.take(pa.array(positions, pa.int64()))
    if pa.types.is_timestamp(taken.type):
        # numpy makes naive datetimes in C; far faster than Arrow's to_pylist for tz types
        naive = taken.cast(pa.timestamp("us")).to_numpy(zero_copy_only=False).astype(object)
        return [None if d is None else d.replace(tzinfo=UTC) for d in naive]
    return taken.to_pylist()


def validate(*, db_session: Session, frame: Frame, options: Options) -> Validated:
    """Parse and check every row of ``frame``; look up referenced customers/subscriptions."""
    kind = frame.schema.kind
    table = TABLES[kind]
    problems = Problems(frame.raw.rows)
    for ragged in frame.raw.ragged:
        problems.add_reject(_ragged_reject(ragged.row, ragged.expected, ragged.actual, ragged.text))
    for name, cells in frame.cells.items():  # PostgreSQL text cannot hold NUL
        nul = pc.match_substring(cells, "\x00")
        problems.add(nul, name, "contains a NUL character (byte 0)")
    rows = _Rows(frame, problems, options, table)
    extras = KIND_RULES[kind](rows, db_session)
    _duplicates(rows)

    validated = Validated(kind=kind, table=table, problems=problems)
    validated.positions = np.flatnonzero(~problems.bad)
    validated.values = rows.values
    validated.provided = rows.provided
    validated.extras = extras
    return validated


def _ragged_reject(row: int, expected: int, actual: int, text: str) -> Reject:
    """The reject of a CSV row whose field count differs from the header's."""
    shown = text if len(text) <= 200 else text[:200] + "..."
    return Reject(
        row,
        None,
        f"has {actual} fields but the header has {expected}; check quoting and the delimiter",
        shown,
    )
