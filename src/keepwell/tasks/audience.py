"""Which customers an assignment rule covers: a segment's filter text or a saved segment's name.

When ``keepwell.segments`` provides ``matching_customer_ids`` (and ``get_segment`` +
``member_ids`` for saved segments) they are used, so the rule speaks the documented filter
language. Without it a thin built-in filter covers plain customer fields, clauses joined by
``and`` (a subset of that language)::

    industry in [travel, hospitality] and country = "DE" and status != churned

Fields: industry, country, status, company, time_zone, external_id, email, tag. Values are
bare words or quoted strings; matching is exact (case-insensitive for industry and tag).
The text is tokenised and turned into SQLAlchemy expressions, never evaluated.
"""

from __future__ import annotations

import re
from importlib import import_module
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, func, select
from sqlalchemy.orm import Session

from keepwell.customers.models import Customer, CustomerStatus, Tag, customer_tags
from keepwell.errors import InvalidInput

_FIELDS = {
    "industry": Customer.industry,
    "country": Customer.country,
    "status": Customer.status,
    "company": Customer.company,
    "time_zone": Customer.time_zone,
    "external_id": Customer.external_id,
    "email": Customer.email,
}
_CASELESS = {"industry", "tag"}
_TOKEN = re.compile(r'\s*(?:(\[)|(\])|(,)|(!=|=)|"((?:[^"\\]|\\.)*)"|([A-Za-z0-9_.@+:/-]+))')


def segments_api(name: str) -> Any | None:
    """``keepwell.segments``' function ``name`` when that package provides it, else None."""
    for module in ("keepwell.segments.service", "keepwell.segments"):
        try:
            found = getattr(import_module(module), name, None)
        except ImportError:
            continue
        if callable(found):
            return found
    return None


def _tokens(text: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise InvalidInput(
                f"cannot read {text[pos : pos + 20]!r} at character {pos + 1}",
                field="segment_filter",
                expected='clauses like industry = "travel", joined by and',
            )
        kinds = ("[", "]", ",", "op", "str", "word")
        kind = next(k for k, g in zip(kinds, m.groups(), strict=True) if g is not None)
        value = m.group(m.lastindex or 0)
        out.append((kind, value.replace('\\"', '"') if kind == "str" else value))
        pos = m.end()
    return out


def _clause(field: str, op: str, values: list[str]) -> ColumnElement[bool]:
    if field == "tag":
        tagged = select(customer_tags.c.customer_id).join(Tag, Tag.id == customer_tags.c.tag_id)
        hit = Customer.id.in_(tagged.where(func.lower(Tag.name).in_([v.lower() for v in values])))
        return ~hit if op == "!=" else hit
    column = _FIELDS[field]
    if field == "status":
        unknown = [v for v in values if v not in CustomerStatus.__members__]
        if unknown:
            raise InvalidInput(
                f"unknown status {unknown[0]!r}",
                field="segment_filter",
                expected=", ".join(CustomerStatus.__members__),
            )
    if field in _CASELESS:
        expr, values = func.lower(column), [v.lower() for v in values]
    else:
        expr = column
    hit = expr.in_(values)
    return (~hit | (column.is_(None))) if op == "!=" else hit


def compile_filter(text: str) -> ColumnElement[bool]:
    """The built-in filter ``text`` as a condition on :class:`Customer` (raises InvalidInput)."""
    tokens = _tokens(text)
    if not tokens:
        raise InvalidInput("the filter is empty", field="segment_filter")
    clauses, i = [], 0

    def expect(kinds: tuple[str, ...], what: str) -> str:
        nonlocal i
        if i >= len(tokens) or tokens[i][0] not in kinds:
            got = repr(tokens[i][1]) if i < len(tokens) else "the end"
            raise InvalidInput(f"expected {what}, got {got}", field="segment_filter")
        i += 1
        return tokens[i - 1][1]

    while True:
        field = expect(("word",), "a field name").lower()
        if field not in _FIELDS and field != "tag":
            raise InvalidInput(
                f"unknown field {field!r}",
                field="segment_filter",
                expected=", ".join([*_FIELDS, "tag"]),
            )
        if i < len(tokens) and tokens[i] == ("word", "in"):
            i += 1
            op, values = "=", []
            expect(("[",), "[")
            while True:
                values.append(expect(("word", "str"), "a value"))
                if expect((",", "]"), ", or ]") == "]":
                    break
        else:
            op = expect(("op",), "=, != or in")
            values = [expect(("word", "str"), "a value")]
        clauses.append(_clause(field, op, values))
        if i == len(tokens):
            return and_(*clauses)
        if tokens[i] != ("word", "and"):
            raise InvalidInput(f"expected and, got {tokens[i][1]!r}", field="segment_filter")
        i += 1


def check(*, db_session: Session, segment_filter: str | None, segment_name: str | None) -> None:
    """Raise :class:`InvalidInput` unless the audience can be resolved."""
    if segment_filter is not None and segment_name is not None:
        raise InvalidInput(
            "give a segment filter or a segment name, not both", field="segment_filter"
        )
    try:
        customer_ids(
            db_session=db_session, segment_filter=segment_filter, segment_name=segment_name
        )
    except InvalidInput as exc:
        if exc.field is not None:
            raise
        field = "segment_filter" if segment_filter is not None else "segment_name"
        raise InvalidInput(exc.message, field=field, hint=exc.hint) from exc


def customer_ids(
    *, db_session: Session, segment_filter: str | None, segment_name: str | None
) -> Select | None:
    """A SELECT of the audience's customer ids, or None when it is every customer."""
    if segment_name is not None:
        members, get_segment = segments_api("member_ids"), segments_api("get_segment")
        if members is None or get_segment is None:
            raise InvalidInput(
                f"saved segment {segment_name!r} cannot be used: segments are not available",
                field="segment_name",
                hint="use a segment filter instead",
            )
        segment = get_segment(db_session=db_session, name_or_id=segment_name)
        return members(db_session=db_session, segment=segment)
    if segment_filter is None:
        return None
    matching = segments_api("matching_customer_ids")
    if matching is not None:
        return matching(db_session=db_session, filter_text=segment_filter)
    return select(Customer.id).where(compile_filter(segment_filter))
