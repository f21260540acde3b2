"""E-mail templates: validate and compile once, render for many customers fast.

Templates are Jinja2 in a :class:`~jinja2.sandbox.SandboxedEnvironment` (HTML autoescaped,
undefined values are errors). At save time :func:`compile_template` rejects syntax errors,
unknown merge fields (see :mod:`keepwell.campaigns.fields`), function calls, attributes
starting with ``_`` and includes/imports/macros, each with its line number. The plain text part
is generated from the HTML (:func:`~keepwell.campaigns.plaintext.html_to_text`) when none is
given.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from jinja2 import StrictUndefined, TemplateError, nodes
from jinja2.exceptions import SecurityError
from jinja2.sandbox import SandboxedEnvironment
from jinja2.utils import missing
from sqlalchemy.orm import Session

from keepwell.campaigns import fields
from keepwell.campaigns.context import MergeRow, Record, load_merge_rows
from keepwell.campaigns.models import EmailTemplate
from keepwell.campaigns.plaintext import html_to_text
from keepwell.errors import InvalidInput, NotFound
from keepwell.models import utcnow

__all__ = [
    "FIELDS_HINT",
    "SAFE_FILTERS",
    "CompiledTemplate",
    "Rendered",
    "compile_template",
    "compiled",
    "render_for_customers",
    "render_preview",
    "render_row",
]

SAFE_FILTERS = [
    "abs",
    "capitalize",
    "center",
    "count",
    "d",
    "default",
    "e",
    "escape",
    "first",
    "float",
    "indent",
    "int",
    "join",
    "last",
    "length",
    "list",
    "lower",
    "replace",
    "reverse",
    "round",
    "sort",
    "string",
    "striptags",
    "title",
    "trim",
    "truncate",
    "unique",
    "upper",
    "urlencode",
    "wordcount",
    "wordwrap",
]
"""Filters a template may use (``safe`` is left out: customer data is always escaped)."""

FIELDS_HINT = (
    "customer.<field>, customer.attributes.<key>, owner.name, owner.email, plan, mrr, "
    "risk_band, health_band, health_score, unsubscribe_url or data.<key>"
)
_FORBIDDEN = {
    nodes.Call: "function and method calls are not allowed; use filters",
    nodes.Include: "{% include %} is not allowed",
    nodes.Import: "{% import %} is not allowed",
    nodes.FromImport: "{% from ... import %} is not allowed",
    nodes.Extends: "{% extends %} is not allowed",
    nodes.Macro: "{% macro %} is not allowed",
    nodes.CallBlock: "{% call %} is not allowed",
    nodes.Pow: "the ** operator is not allowed",
}


class _Undefined(StrictUndefined):
    """Strict, except in a test: ``{% if customer.company %}`` is false when it is missing."""

    __slots__ = ()

    def __bool__(self) -> bool:
        return False

    @property
    def _undefined_message(self) -> str:
        obj, name = self._undefined_obj, self._undefined_name
        if self._undefined_hint is None and isinstance(name, str):
            if isinstance(obj, Record):
                return f"{obj.path_of(name)} has no value for this customer"
            if obj is missing:
                return f"{name} has no value for this customer"
        return super()._undefined_message


class _Sandbox(SandboxedEnvironment):
    """No text or list repetition (``'x' * 10**9`` would exhaust memory while sending)."""

    intercepted_binops = frozenset({"*"})

    def call_binop(self, context, operator: str, left: Any, right: Any) -> Any:
        if operator == "*" and not (
            isinstance(left, int | float) and isinstance(right, int | float)
        ):
            raise SecurityError("only numbers can be multiplied in a template")
        return super().call_binop(context, operator, left, right)


def _environment(*, html: bool) -> SandboxedEnvironment:
    env = _Sandbox(
        autoescape=html, undefined=_Undefined, keep_trailing_newline=True, auto_reload=False
    )
    env.filters = {name: env.filters[name] for name in SAFE_FILTERS}
    env.globals = {}
    return env


_HTML_ENV = _environment(html=True)
_TEXT_ENV = _environment(html=False)


@dataclass(frozen=True)
class CompiledTemplate:
    """A validated template, compiled once: render it for as many customers as needed."""

    name: str
    subject_source: str
    html_source: str
    text_source: str
    text_generated: bool
    subject: Any
    html: Any
    text: Any
    fields: frozenset[str]


@dataclass(frozen=True)
class Rendered:
    """One customer's message; ``error`` says why it could not be rendered (then no body)."""

    customer_id: int
    to: str | None
    subject: str
    html: str
    text: str
    error: str | None = None


def _chain(node: nodes.Node) -> tuple[nodes.Node, list[str]] | None:
    """(root, [keys]) of ``a.b['c']``; None when a key is not a constant string."""
    path: list[str] = []
    while isinstance(node, nodes.Getattr | nodes.Getitem):
        if isinstance(node, nodes.Getattr):
            path.append(node.attr)
        elif isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
            path.append(node.arg.value)
        else:
            return None
        node = node.node
    return node, path[::-1]


def _local_names(ast: nodes.Template) -> set[str]:
    names = {"loop"}
    for target in ast.find_all(nodes.Name):
        if target.ctx in ("store", "param"):
            names.add(target.name)
    return names


def _problems(ast: nodes.Template, used: set[str]) -> Iterator[tuple[int, str, str | None]]:
    """(line, message, field) for everything that makes ``ast`` unacceptable.

    Adds the merge fields the template uses to ``used``.
    """
    local = _local_names(ast)
    for name in sorted(local & set(fields.TOP_LEVEL)):
        yield 1, f"{name!r} is a merge field and cannot be redefined", name

    def visit(node: nodes.Node) -> Iterator[tuple[int, str, str | None]]:
        for kind, message in _FORBIDDEN.items():
            if isinstance(node, kind):
                yield node.lineno, message, None
                return
        if isinstance(node, nodes.Getattr | nodes.Getitem | nodes.Name):
            chain = _chain(node)
            if chain is None:
                if isinstance(node, nodes.Getitem):
                    yield node.lineno, "only constant keys are allowed, e.g. x['key']", None
                    return
            else:
                root, path = chain
                if isinstance(root, nodes.Name):
                    shown = ".".join([root.name, *path])
                    if root.name in fields.TOP_LEVEL:
                        why = fields.check_path(root.name, path)
                        if why is None and not path and root.name == "customer":
                            why = "'customer' alone is not a field; use e.g. customer.name"
                        if why:
                            yield node.lineno, why, shown
                        used.add(".".join([root.name, *path[:2]]))
                    elif root.name in local:
                        if any(key.startswith("_") for key in path):
                            yield (
                                node.lineno,
                                f"{shown!r}: names starting with '_' are not allowed",
                                shown,
                            )
                    else:
                        yield node.lineno, f"unknown merge field {shown!r}", shown
                    return
                if path:
                    yield node.lineno, "attributes are allowed on merge fields only", None
                    return
        for child in node.iter_child_nodes():
            yield from visit(child)

    yield from visit(ast)


def _compile_one(env: SandboxedEnvironment, source: str, part: str) -> tuple[Any, set[str]]:
    try:
        ast = env.parse(source)
    except TemplateError as exc:
        line = getattr(exc, "lineno", None)
        raise InvalidInput(
            f"line {line}: template syntax error: {exc.message}", field=part
        ) from None
    used: set[str] = set()
    for line, message, name in _problems(ast, used):
        raise InvalidInput(
            f"line {line}: {message}",
            field=part,
            expected=None if name is None else FIELDS_HINT,
        )
    try:
        return env.from_string(source), used
    except TemplateError as exc:
        line = getattr(exc, "lineno", None)
        raise InvalidInput(f"line {line}: template error: {exc.message}", field=part) from None


def compile_template(
    *, subject: str, html: str, text: str | None = None, name: str = "(unsaved)"
) -> CompiledTemplate:
    """Validate and compile a template (raises :class:`InvalidInput` naming part and line).

    >>> t = compile_template(subject="Hi {{ customer.name }}", html="<p>{{ mrr }}</p>")
    >>> sorted(t.fields), t.text_source
    (['customer.name', 'mrr'], '{{ mrr }}')
    """
    if not subject.strip():
        raise InvalidInput("a subject is required", field="subject")
    if "\n" in subject or "\r" in subject:
        raise InvalidInput("the subject must be one line", field="subject")
    if not html.strip():
        raise InvalidInput("the HTML body is required", field="html")
    generated = text is None or not text.strip()
    text_source = html_to_text(html) if generated else text
    subject_t, used_s = _compile_one(_TEXT_ENV, subject, "subject")
    html_t, used_h = _compile_one(_HTML_ENV, html, "html")
    text_t, used_t = _compile_one(_TEXT_ENV, text_source, "text")
    return CompiledTemplate(
        name=name,
        subject_source=subject,
        html_source=html,
        text_source=text_source,
        text_generated=generated,
        subject=subject_t,
        html=html_t,
        text=text_t,
        fields=frozenset(used_s | used_h | used_t),
    )


def compiled(template: EmailTemplate | CompiledTemplate) -> CompiledTemplate:
    """``template`` compiled (a stored template is validated again)."""
    if isinstance(template, CompiledTemplate):
        return template
    return compile_template(
        subject=template.subject, html=template.html, text=template.text, name=template.name
    )


def _batches(ids: Sequence[int], size: int) -> Iterable[Sequence[int]]:
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


def render_row(
    template: CompiledTemplate,
    row: MergeRow,
    *,
    unsubscribe_url: str | None = None,
    data: dict[str, Any] | None = None,
) -> Rendered:
    """Render ``template`` for one loaded customer (an undefined value gives ``error``)."""
    values = dict(row.values)
    if unsubscribe_url is not None:
        values["unsubscribe_url"] = unsubscribe_url
    values["data"] = Record(data or {}, "data")
    try:
        subject = " ".join(template.subject.render(values).split())
        html = template.html.render(values)
        text = template.text.render(values)
    except TemplateError as exc:
        message = exc.message or str(exc)
        return Rendered(row.customer_id, row.address, "", "", "", error=message)
    return Rendered(row.customer_id, row.address, subject, html, text)


def render_for_customers(
    *,
    db_session: Session,
    template: EmailTemplate | CompiledTemplate,
    customer_ids: Sequence[int],
    unsubscribe_url: Callable[[int, str | None], str] | None = None,
    data: dict[str, Any] | None = None,
    at: datetime | None = None,
    batch_size: int = 1000,
) -> Iterator[Rendered]:
    """Render ``template`` for each customer, in the order given (unknown ids are skipped).

    Compiles once; loads merge values per batch of ``batch_size`` customers (two queries per
    batch). ``unsubscribe_url(customer_id, address)`` gives each recipient's link; ``data``
    fills ``data.<key>``; ``at`` is when plan and MRR are read (default now). A customer that
    lacks a value the template uses without a fallback comes back with ``error`` set.
    """
    tpl = compiled(template)
    when = at or utcnow()
    for batch in _batches(list(customer_ids), batch_size):
        rows = load_merge_rows(db_session=db_session, customer_ids=batch, at=when)
        for customer_id in batch:
            row = rows.get(customer_id)
            if row is None:
                continue
            link = unsubscribe_url(customer_id, row.address) if unsubscribe_url else None
            yield render_row(tpl, row, unsubscribe_url=link, data=data)


def render_preview(
    *,
    db_session: Session,
    template: EmailTemplate | CompiledTemplate,
    customer_id: int,
    data: dict[str, Any] | None = None,
) -> Rendered:
    """One customer's message as it would be sent (the unsubscribe link is a placeholder).

    Raises :class:`NotFound` for an unknown customer and :class:`InvalidInput` when the
    template needs a value this customer does not have.
    """
    rendered = list(
        render_for_customers(
            db_session=db_session,
            template=template,
            customer_ids=[customer_id],
            unsubscribe_url=lambda _c, _a: "https://example.invalid/unsubscribe-preview",
            data=data,
        )
    )
    if not rendered:
        raise NotFound(f"no customer with id {customer_id}")
    if rendered[0].error:
        raise InvalidInput(
            f"cannot render for customer {customer_id}: {rendered[0].error}",
            hint='give the field a fallback, e.g. {{ customer.first_name | default("there") }}',
        )
    return rendered[0]
