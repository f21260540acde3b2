"""The filter language: parse (Lark) -> validate against the field catalogue -> compile to SQL.

A filter such as ``industry in ["travel", "hospitality"] and mrr >= 100 and not tag = "vip"``
becomes one SQLAlchemy boolean expression over ``customers``. Values only ever travel as bound
parameters; nothing is evaluated or pasted into SQL text. Comparisons never match an empty
(null) field -- ``industry != "travel"`` skips customers without an industry -- while
``not industry = "travel"`` includes them; ``is null`` / ``is not null`` test emptiness.
See docs/segments.md for the full language.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import cache
from typing import Any

from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken
from sqlalchemy import and_, exists, false, func, not_, or_, select
from sqlalchemy.orm import InstrumentedAttribute
from sqlalchemy.sql.expression import ColumnElement

from keepwell.customers.models import Customer, Tag, customer_tags
from keepwell.errors import InvalidInput
from keepwell.models import utcnow
from keepwell.segments import fields as F
from keepwell.segments.grammar import GRAMMAR
from keepwell.segments.jsonattr import AttrBool, AttrNumber, AttrText, AttrType

MAX_LENGTH = 20_000
MAX_DEPTH = 50
MAX_CONDITIONS = 500
MAX_LIST = 1_000

ORDER_OPS = {"<", "<=", ">", ">="}
EQUALITY_OPS = {"=", "!="}
SET_OPS = {"in", "not in"}
NULL_OPS = {"is null", "is not null"}
TEXT_OPS = {"contains", "starts with"}

ALLOWED = {
    F.STRING: EQUALITY_OPS | SET_OPS | TEXT_OPS | NULL_OPS,
    F.ENUM: EQUALITY_OPS | SET_OPS | NULL_OPS,
    F.NUMBER: EQUALITY_OPS | ORDER_OPS | SET_OPS | NULL_OPS,
    F.MONEY: EQUALITY_OPS | ORDER_OPS | SET_OPS | NULL_OPS,
    F.DATE: EQUALITY_OPS | ORDER_OPS | NULL_OPS,
    F.TAG: EQUALITY_OPS | SET_OPS | NULL_OPS,
    F.BOOLEAN: EQUALITY_OPS,
}
VALUE_KIND = {
    F.STRING: "string",
    F.ENUM: "string",
    F.NUMBER: "number",
    F.MONEY: "number",
    F.DATE: "string",
    F.TAG: "string",
    F.BOOLEAN: "boolean",
}
EXPECTED = {
    F.STRING: 'a quoted string, e.g. "travel"',
    F.ENUM: "one of the listed values in quotes",
    F.NUMBER: "a number, e.g. 30 or 0.6",
    F.MONEY: "an amount in major units, e.g. 100 or 99.50",
    F.DATE: 'a quoted date "YYYY-MM-DD" or ISO date-time',
    F.TAG: 'a quoted tag name, e.g. "vip"',
    F.BOOLEAN: "true or false",
}
_TERMINALS = {
    "FIELD": "a field name",
    "OP": "an operator (=, !=, <, <=, >, >=)",
    "STRING": "a quoted string",
    "NUMBER": "a number",
    "TRUE": "true",
    "FALSE": "false",
    "LPAR": "'('",
    "RPAR": "')'",
    "LSQB": "'['",
    "RSQB": "']'",
    "COMMA": "','",
    "_AND": "and",
    "_OR": "or",
    "_NOT": "not",
    "_IN": "in",
    "_IS": "is",
    "_NULL": "null",
    "_CONTAINS": "contains",
    "_STARTS": "starts with",
    "_WITH": "with",
    "$END": "the end of the filter",
}
_ESCAPES = {"n": "\n", "t": "\t"}
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class FilterError(InvalidInput):
    """A filter that cannot be used; ``line`` / ``column`` (1-based) point at the problem."""

    def __init__(
        self,
        message: str,
        *,
        line: int | None = None,
        column: int | None = None,
        field: str | None = None,
        expected: str | None = None,
        hint: str | None = None,
    ) -> None:
        where = f" at line {line}, column {column}" if line is not None else ""
        super().__init__(f"{message}{where}", field=field, expected=expected, hint=hint)
        self.line = line
        self.column = column


# -- syntax tree ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Condition:
    """``field op value`` as written (value: str, float, bool, a tuple of those, or None)."""

    field: str
    op: str
    value: Any
    line: int
    column: int


@dataclass(frozen=True)
class Not:
    child: Node


@dataclass(frozen=True)
class And:
    children: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    children: tuple[Node, ...]


Node = Condition | Not | And | Or


@cache
def _parser() -> Lark:
    return Lark(GRAMMAR, parser="lalr", propagate_positions=True, maybe_placeholders=False)


def _syntax_error(text: str, exc: UnexpectedInput) -> FilterError:
    line, column = exc.line, exc.column
    if isinstance(exc, UnexpectedCharacters):
        char = text[exc.pos_in_stream] if exc.pos_in_stream < len(text) else ""
        if char in "\"'":
            return FilterError(
                "unterminated string (a quote is not closed on the same line)",
                line=line,
                column=column,
            )
        return FilterError(f"unexpected character {char!r}", line=line, column=column)
    assert isinstance(exc, UnexpectedToken)
    expected = sorted({_TERMINALS.get(t, t) for t in exc.expected if not t.startswith("__")})
    wanted = f"; expected {', '.join(expected)}" if expected else ""
    if exc.token.type == "$END":
        last_line = text.rsplit("\n", 1)[-1]
        return FilterError(
            f"the filter ends too early{wanted}",
            line=text.count("\n") + 1,
            column=len(last_line) + 1,
        )
    shown = str(exc.token)
    shown = shown if len(shown) <= 40 else shown[:37] + "..."
    return FilterError(f"unexpected {shown!r}{wanted}", line=line, column=column)


def _literal(token: Token) -> Any:
    if token.type == "STRING":
        body = token[1:-1]
        return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(1)), body)
    if token.type == "NUMBER":
        return float(token)
    return token.type == "TRUE"


def _depth(tree: Tree) -> int:
    deepest, stack = 0, [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        if deepest > MAX_DEPTH:
            return deepest
        stack.extend((c, depth + 1) for c in node.children if isinstance(c, Tree))
    return deepest


_OPS = {
    "is_in": "in",
    "not_in": "not in",
    "contains": "contains",
    "starts_with": "starts with",
    "is_null": "is null",
    "is_not_null": "is not null",
}


def _to_node(tree: Tree) -> Node:
    kind = tree.data
    if kind == "start":
        return _to_node(tree.children[0])
    if kind == "negation":
        return Not(_to_node(tree.children[0]))
    if kind in ("and_expr", "or_expr"):
        children = tuple(_to_node(c) for c in tree.children)
        return And(children) if kind == "and_expr" else Or(children)
    name = tree.children[0]
    line, column = name.line, name.column
    if kind == "compare":
        op = {"==": "=", "<>": "!="}.get(str(tree.children[1]), str(tree.children[1]))
        return Condition(str(name), op, _literal(tree.children[2]), line, column)
    op = _OPS[kind]
    if op in SET_OPS:
        items = [c for c in tree.children[1].children if c is not None]
        if not items:
            raise FilterError(
                f"'{op}' needs at least one value", line=line, column=column, field=str(name)
            )
        if len(items) > MAX_LIST:
            raise FilterError(
                f"'{op}' takes at most {MAX_LIST} values", line=line, column=column, field=str(name)
            )
        return Condition(str(name), op, tuple(_literal(t) for t in items), line, column)
    if op in TEXT_OPS:
        return Condition(str(name), op, _literal(tree.children[1]), line, column)
    return Condition(str(name), op, None, line, column)


def parse_filter(text: str) -> Node:
    """Parse filter text into a syntax tree (no field checks); raises :class:`FilterError`."""
    if not isinstance(text, str) or not text.strip():
        raise FilterError("the filter is empty", expected='e.g. industry = "travel"')
    if len(text) > MAX_LENGTH:
        raise FilterError(f"the filter is {len(text):,} characters long (at most {MAX_LENGTH:,})")
    if "\x00" in text:
        line = text.count("\n", 0, text.index("\x00")) + 1
        column = text.index("\x00") - (text.rfind("\n", 0, text.index("\x00")) + 1) + 1
        raise FilterError("the filter contains a NUL character", line=line, column=column)
    try:
        tree = _parser().parse(text)
    except UnexpectedInput as exc:
        raise _syntax_error(text, exc) from None
    if _depth(tree) > MAX_DEPTH:
        raise FilterError(f"the filter nests and/or/not more than {MAX_DEPTH} levels deep")
    node = _to_node(tree)
    if sum(1 for _ in _conditions(node)) > MAX_CONDITIONS:
        raise FilterError(f"the filter has more than {MAX_CONDITIONS} conditions")
    return node


def _conditions(node: Node):
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, Condition):
            yield item
        elif isinstance(item, Not):
            stack.append(item.child)
        else:
            stack.extend(item.children)


# -- validation ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Checked:
    """A validated condition: the field (or attribute key), its type and normalised values."""

    cond: Condition
    field: F.Field | None
    attribute: str | None
    type: str
    values: tuple[Any, ...]


def _kind_of(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, float):
        return "number"
    return "string"


def _shown(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    text = value if len(value) <= 40 else value[:37] + "..."
    return f'"{text}"'


def _parse_date(text: str, cond: Condition) -> tuple[datetime, bool]:
    """(instant, whole_day): a "YYYY-MM-DD" day (midnight UTC) or an ISO date-time."""
    try:
        if _DATE.match(text):
            day = date.fromisoformat(text)
            return datetime(day.year, day.month, day.day, tzinfo=UTC), True
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise FilterError(
            f"{_shown(text)} is not a date",
            line=cond.line,
            column=cond.column,
            field=cond.field,
            expected=EXPECTED[F.DATE],
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC), False


def _resolve(cond: Condition) -> tuple[F.Field | None, str | None]:
    name = cond.field
    lowered = name.lower()
    if lowered.startswith(F.ATTRIBUTE_PREFIX):
        return None, name[len(F.ATTRIBUTE_PREFIX) :]
    if "." not in lowered and lowered in F.FIELDS:
        return F.FIELDS[lowered], None
    names = [*F.FIELDS, "attributes"]
    close = difflib.get_close_matches(lowered, names, n=1, cutoff=0.6)
    if "." in lowered:
        suggestion = f"; did you mean 'attributes.{lowered.split('.', 1)[1]}'?"
    elif close and close[0] != "attributes":
        suggestion = f"; did you mean '{close[0]}'?"
    else:
        suggestion = ""
    raise FilterError(
        f"unknown field '{name}'{suggestion}",
        line=cond.line,
        column=cond.column,
        field=name,
        hint="`keepwell segments fields` lists every field; custom fields are attributes.<key>",
    )


def _check(cond: Condition) -> Checked:
    field, attribute = _resolve(cond)
    values: tuple[Any, ...] = (
        ()
        if cond.value is None
        else (cond.value if isinstance(cond.value, tuple) else (cond.value,))
    )
    where = {"line": cond.line, "column": cond.column, "field": cond.field}
    if field is None:  # a custom attribute: typed by the value it is compared with
        kinds = {_kind_of(v) for v in values}
        if len(kinds) > 1:
            raise FilterError("the list mixes value types", **where, expected="one type")
        ftype = {"string": F.STRING, "number": F.NUMBER, "boolean": F.BOOLEAN}.get(
            kinds.pop() if kinds else "", F.STRING
        )
        allowed = ALLOWED[ftype]
    else:
        ftype = field.type
        allowed = ALLOWED[ftype]
    if cond.op not in allowed:
        ops = ", ".join(sorted(allowed))
        raise FilterError(
            f"operator '{cond.op}' does not apply to a {ftype} field", **where, expected=ops
        )
    want = VALUE_KIND[ftype]
    for value in values:
        if _kind_of(value) != want:
            raise FilterError(
                f"{_shown(value)} is a {_kind_of(value)}, but this is a {ftype} field",
                **where,
                expected=EXPECTED[ftype],
            )
    if field is not None and ftype == F.ENUM:
        canonical = {v.lower(): v for v in field.values}
        fixed = []
        for value in values:
            if value.lower() not in canonical:
                close = difflib.get_close_matches(value.lower(), list(canonical), n=1)
                mean = f'; did you mean "{canonical[close[0]]}"?' if close else ""
                raise FilterError(
                    f"{_shown(value)} is not a value of this field{mean}",
                    **where,
                    expected="one of " + ", ".join(f'"{v}"' for v in field.values),
                )
            fixed.append(canonical[value.lower()])
        values = tuple(fixed)
    if ftype == F.DATE:
        values = tuple(_parse_date(v, cond) for v in values)
    return Checked(cond, field, attribute, ftype, values)


def validate_filter(text: str) -> Node:
    """Parse and check every condition (fields, operators, value types); return the tree."""
    node = parse_filter(text)
    for cond in _conditions(node):
        _check(cond)
    return node


# -- compilation -----------------------------------------------------------------------------


def _tag_exists(names: tuple[str, ...] | None) -> ColumnElement[bool]:
    query = exists().where(customer_tags.c.customer_id == Customer.id)
    if names is not None:
        query = query.where(
            customer_tags.c.tag_id.in_(select(Tag.id).where(Tag.name.in_(list(names))))
        )
    return query


def _safe(expr: ColumnElement[Any], test: ColumnElement[bool], plain: bool) -> Any:
    """``test`` made never-NULL: guarded by IS NOT NULL for columns, COALESCE for subqueries."""
    if plain:
        return and_(expr.is_not(None), test)
    return func.coalesce(test, false())


def _compile_condition(checked: Checked, now: datetime) -> ColumnElement[bool]:
    op, values = checked.cond.op, checked.values
    if checked.type == F.TAG:
        if op == "is null":
            return ~_tag_exists(None)
        if op == "is not null":
            return _tag_exists(None)
        found = _tag_exists(values)
        return found if op in ("=", "in") else ~found
    if checked.attribute is not None:
        column = Customer.__table__.c.attributes
        if op in NULL_OPS:
            kind = AttrType(column, checked.attribute)
            empty = or_(kind.is_(None), kind == "null")
            return empty if op == "is null" else not_(empty)
        reader = {F.STRING: AttrText, F.NUMBER: AttrNumber, F.BOOLEAN: AttrBool}[checked.type]
        expr: ColumnElement[Any] = reader(column, checked.attribute)
        plain = False
    else:
        assert checked.field is not None
        expr = checked.field.expr(now)
        plain = isinstance(expr, InstrumentedAttribute)
        if checked.type == F.BOOLEAN:
            truth = values[0] if op == "=" else not values[0]
            return expr if truth else ~expr
    if op == "is null":
        return expr.is_(None)
    if op == "is not null":
        return expr.is_not(None)
    if checked.field is not None and checked.field.name in F.NON_NULL_COLUMNS:
        return _test(expr, op, values, checked.type)
    return _safe(expr, _test(expr, op, values, checked.type), plain)


def _test(expr: ColumnElement[Any], op: str, values: tuple[Any, ...], ftype: str) -> Any:
    if ftype == F.DATE:
        moment, whole_day = values[0]
        end = moment + timedelta(days=1) if whole_day else moment
        if op == "=":
            return and_(expr >= moment, expr < end) if whole_day else expr == moment
        if op == "!=":
            return or_(expr < moment, expr >= end) if whole_day else expr != moment
        if op == "<":
            return expr < moment
        if op == "<=":
            return expr < end if whole_day else expr <= moment
        if op == ">":
            return expr >= end if whole_day else expr > moment
        return expr >= moment
    if op == "=":
        return expr == values[0]
    if op == "!=":
        return expr != values[0]
    if op == "<":
        return expr < values[0]
    if op == "<=":
        return expr <= values[0]
    if op == ">":
        return expr > values[0]
    if op == ">=":
        return expr >= values[0]
    if op == "in":
        return expr.in_(list(values))
    if op == "not in":
        return expr.not_in(list(values))
    if op == "contains":
        return expr.icontains(values[0], autoescape=True)
    return expr.istartswith(values[0], autoescape=True)


def _compile(node: Node, now: datetime) -> ColumnElement[bool]:
    if isinstance(node, Condition):
        return _compile_condition(_check(node), now)
    if isinstance(node, Not):
        return not_(_compile(node.child, now))
    parts = [_compile(child, now) for child in node.children]
    return and_(*parts) if isinstance(node, And) else or_(*parts)


def compile_filter(text: str, *, now: datetime | None = None) -> ColumnElement[bool]:
    """Compile filter text to a boolean SQL expression over ``Customer``.

    ``now`` (default: the current time) is when "current" facts such as MRR are taken.
    Raises :class:`~keepwell.errors.InvalidInput` (a :class:`FilterError` with ``line``,
    ``column`` and ``field``) for a filter that does not parse or does not fit the catalogue.
    """
    node = validate_filter(text)
    return _compile(node, now or utcnow())
