"""Templates: validation at save time, sandboxing, escaping, fallbacks, preview, bulk render."""

from __future__ import annotations

import pytest

from keepwell.billing.models import SubscriptionStatus
from keepwell.campaigns import service
from keepwell.campaigns.templates import compile_template, render_for_customers, render_preview
from keepwell.errors import AlreadyExists, InvalidInput, NotFound
from tests.factories import at, make_customer, make_subscription


def _err(html: str, *, subject: str = "Hello", text: str | None = None) -> InvalidInput:
    with pytest.raises(InvalidInput) as err:
        compile_template(subject=subject, html=html, text=text)
    return err.value


@pytest.mark.parametrize(
    ("html", "line", "field_name"),
    [
        ("<p>Hi</p>\n<p>{{ customer.nickname }}</p>", 2, "customer.nickname"),
        ("{{ customer.first_name }}\n\n\n{{ owner.phone }}", 4, "owner.phone"),
        ("{{ discount }}", 1, "discount"),
        ("{{ mrr.amount }}", 1, "mrr.amount"),
        ("{{ customer.attributes }}", 1, "customer.attributes"),
        ("{{ customer }}", 1, "customer"),
        ("{% for x in customer.attributes.list %}{{ y }}{% endfor %}", 1, "y"),
    ],
)
def test_unknown_field_names_line_and_field(html, line, field_name) -> None:
    err = _err(html)
    assert err.field == "html"
    assert f"line {line}:" in err.message and repr(field_name) in err.message
    assert "customer.<field>" in (err.expected or "")


@pytest.mark.parametrize(
    ("html", "line"),
    [
        ("<p>{{ customer.name </p>", 1),
        ("ok\n{% if customer.name %}\nno end", 2),  # the unclosed block
        ("a\nb\n{{ customer.name | no_such_filter }}", 3),
        ("{% endfor %}", 1),
    ],
)
def test_syntax_errors_name_the_line(html, line) -> None:
    err = _err(html)
    assert err.field == "html" and err.message.startswith(f"field 'html': line {line}:")


@pytest.mark.parametrize(
    "html",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ customer.__class__ }}",
        "{{ customer._values }}",
        "{{ customer['__class__'] }}",
        "{{ customer.name.__class__.__init__.__globals__ }}",
        "{% set x = customer.name %}{{ x.__class__ }}",
        "{{ customer.name.upper() }}",
        "{{ range(10) }}",
        "{{ lipsum() }}",
        "{{ cycler }}",
        "{{ self }}",
        "{{ config }}",
        "{% include 'x.html' %}",
        "{% import 'x' as y %}",
        "{% extends 'base' %}",
        "{% macro m() %}x{% endmacro %}",
        "{{ customer.name | attr('__class__') }}",
        "{{ customer.name | safe }}",
        "{{ customer.attributes[customer.name] }}",
        "{% set customer = 1 %}{{ customer }}",
        "{{ (1).__class__ }}",
    ],
)
def test_sandbox_escapes_rejected_at_save(html) -> None:
    assert _err(html).field == "html"


def test_subject_and_text_are_checked_too() -> None:
    assert _err("ok", subject="{{ customer.bogus }}").field == "subject"
    assert _err("ok", text="{{ bogus }}").field == "text"
    assert _err("ok", subject="   ").field == "subject"
    assert _err("ok", subject="Hi\nBcc: x@evil.test").field == "subject"
    assert _err("  ").field == "html"


def test_catalogue_fields_accepted() -> None:
    t = compile_template(
        subject="{{ customer.name }}",
        html=(
            "{{ customer.first_name | default('there') }} {{ customer.attributes.seats }}"
            "{% if owner %}{{ owner.name }}{% endif %} {{ plan }} {{ mrr }} {{ risk_band }}"
            "{{ health_band }} {{ health_score }} <a href='{{ unsubscribe_url }}'>u</a>"
            "{{ data.coupon | default('') }} {% for t in customer.attributes.tags %}{{ t }}"
            "{{ loop.index }}{% endfor %} {{ customer['company'] }}"
        ),
    )
    assert t.text_generated
    assert {"customer.name", "customer.attributes.seats", "owner.name", "mrr"} <= t.fields


def test_render_escapes_hostile_names_in_html_only(db_session, acme) -> None:
    tpl = compile_template(
        subject="For {{ customer.name }}",
        html="<p>Dear {{ customer.name }}</p>",
        text="Dear {{ customer.name }}",
    )
    (msg,) = render_for_customers(db_session=db_session, template=tpl, customer_ids=[acme.id])
    assert msg.error is None
    assert msg.html == "<p>Dear Acme &lt;script&gt;alert(1)&lt;/script&gt; &amp; Co</p>"
    assert "<script>" not in msg.html
    assert msg.text == "Dear Acme <script>alert(1)</script> & Co"
    assert msg.subject == "For Acme <script>alert(1)</script> & Co"
    assert msg.to == "billing@acme.test"


def test_merge_values(db_session, acme) -> None:
    tpl = compile_template(
        subject="s",
        html=(
            "{{ customer.first_name }}|{{ customer.contact_name }}|{{ owner.name }}|"
            "{{ owner.email }}|{{ plan }}|{{ mrr }}|{{ risk_band }}|{{ health_band }}|"
            "{{ health_score }}|{{ customer.attributes.seats }}|{{ customer.attributes.items }}|"
            "{{ customer.industry }}|{{ customer.time_zone }}|{{ customer.company }}"
        ),
    )
    (msg,) = render_for_customers(db_session=db_session, template=tpl, customer_ids=[acme.id])
    # two plans in force (USD 1,234.56 + 10.00): the larger names the plan, MRR is the sum
    assert msg.html == (
        "Bo|Bo Berg|Ana Owner|ana@keepwell.test|pro|$1,244.56|high|red|32|12|x|travel|"
        "Europe/Berlin|Acme GmbH"
    )


def test_fallbacks_and_missing_values(db_session, acme, bare) -> None:
    tpl = compile_template(
        subject="Hi {{ customer.first_name | default('there') }}",
        html=(
            "{{ customer.first_name | default('there') }}, "
            "{% if owner %}{{ owner.name }}{% else %}the team{% endif %}, "
            "{{ plan | default('no plan') }}, {{ customer.attributes.tier | default('-') }}"
        ),
    )
    got = {
        m.customer_id: m
        for m in render_for_customers(
            db_session=db_session, template=tpl, customer_ids=[bare.id, acme.id]
        )
    }
    assert got[acme.id].html == "Bo, Ana Owner, pro, gold"
    assert got[bare.id].html == "there, the team, no plan, -"
    assert got[bare.id].subject == "Hi there"
    strict = compile_template(subject="s", html="Hi {{ customer.first_name }}")
    (missing,) = render_for_customers(
        db_session=db_session, template=strict, customer_ids=[bare.id]
    )
    assert missing.html == "" and "first_name" in (missing.error or "")


def test_plain_text_generated_from_html(db_session, acme) -> None:
    tpl = compile_template(
        subject="s",
        html=(
            "<html><head><style>p {color: red}</style></head><body>"
            "<h1>Hello {{ customer.first_name }}</h1><p>Your plan: <b>{{ plan }}</b></p>"
            "<ul><li>one</li><li>two</li></ul>"
            "<p><a href='https://shop.test/x?a=1&amp;b=2'>Renew now</a><br>"
            "<a href='{{ unsubscribe_url }}'>Unsubscribe</a></p></body></html>"
        ),
    )
    assert tpl.text_source == (
        "Hello {{ customer.first_name }}\n\nYour plan: {{ plan }}\n\n- one\n- two\n\n"
        "Renew now (https://shop.test/x?a=1&b=2)\nUnsubscribe ({{ unsubscribe_url }})"
    )
    (msg,) = render_for_customers(
        db_session=db_session,
        template=tpl,
        customer_ids=[acme.id],
        unsubscribe_url=lambda cid, addr: f"https://k.test/u/{cid}",
    )
    assert msg.text.startswith("Hello Bo\n\nYour plan: pro")
    assert msg.text.endswith(f"Unsubscribe (https://k.test/u/{acme.id})")


def test_render_order_batches_and_unknown_ids(db_session) -> None:
    customers = [make_customer(db_session, name=f"N{i}", email=f"n{i}@x.test") for i in range(7)]
    ids = [c.id for c in reversed(customers)] + [10**9]
    tpl = compile_template(subject="s", html="{{ customer.name }}")
    out = list(
        render_for_customers(db_session=db_session, template=tpl, customer_ids=ids, batch_size=3)
    )
    assert [m.customer_id for m in out] == ids[:-1]
    assert [m.html for m in out] == [f"N{i}" for i in reversed(range(7))]


def test_preview(db_session, acme, bare) -> None:
    stored = service.create_template(
        db_session=db_session,
        name="welcome",
        subject="Welcome {{ customer.first_name | default('there') }}",
        html="<p>{{ customer.first_name }}</p><a href='{{ unsubscribe_url }}'>u</a>",
    )
    shown = render_preview(db_session=db_session, template=stored, customer_id=acme.id)
    assert shown.subject == "Welcome Bo" and "<p>Bo</p>" in shown.html
    assert "unsubscribe-preview" in shown.html
    with pytest.raises(InvalidInput, match="first_name"):
        render_preview(db_session=db_session, template=stored, customer_id=bare.id)
    with pytest.raises(NotFound):
        render_preview(db_session=db_session, template=stored, customer_id=10**9)


def test_template_crud(db_session, acme) -> None:
    t = service.create_template(
        db_session=db_session, name=" news ", subject="News", html="<p>{{ customer.name }}</p>"
    )
    assert (t.name, t.version, t.text) == ("news", 1, None)
    with pytest.raises(AlreadyExists):
        service.create_template(db_session=db_session, name="news", subject="x", html="x")
    with pytest.raises(InvalidInput) as err:
        service.create_template(db_session=db_session, name="bad", subject="x", html="{{ nope }}")
    assert err.value.field == "html"
    assert [x.name for x in service.list_templates(db_session=db_session)] == ["news"]
    assert service.get_template(db_session=db_session, name_or_id=f"#{t.id}") is t
    assert service.get_template(db_session=db_session, name_or_id=t.id) is t
    with pytest.raises(NotFound):
        service.get_template(db_session=db_session, name_or_id="missing")
    with pytest.raises(InvalidInput):
        service.update_template(db_session=db_session, template=t, html="{{ customer.x }}")
    assert t.html == "<p>{{ customer.name }}</p>" and t.version == 1  # unchanged
    service.update_template(db_session=db_session, template=t, subject="News 2", text="plain")
    assert (t.subject, t.text, t.version) == ("News 2", "plain", 2)
    with pytest.raises(InvalidInput):
        service.create_template(db_session=db_session, name="  ", subject="x", html="x")
    service.delete_template(db_session=db_session, template=t)
    assert service.list_templates(db_session=db_session) == []


def test_no_resource_exhaustion(db_session, acme) -> None:
    assert "**" in _err("{{ 10 ** 10 ** 10 }}").message  # refused before Jinja folds it
    tpl = compile_template(
        subject="s", html="{{ 'x' * 1000000000 }}{{ customer.name * 1000000000 }}"
    )
    (msg,) = render_for_customers(db_session=db_session, template=tpl, customer_ids=[acme.id])
    assert msg.error == "only numbers can be multiplied in a template" and msg.html == ""
    num = compile_template(subject="s", html="{{ health_score * 2 }}")
    (ok,) = render_for_customers(db_session=db_session, template=num, customer_ids=[acme.id])
    assert ok.html == "64"  # the latest health score, 31.6, shows as 32


def test_line_breaks_in_values_never_reach_the_subject(db_session) -> None:
    evil = make_customer(db_session, name="Evil\r\nBcc: all@victim.test", email="e@x.test")
    tpl = compile_template(subject="Hi {{ customer.name }}", html="x")
    (msg,) = render_for_customers(db_session=db_session, template=tpl, customer_ids=[evil.id])
    assert msg.subject == "Hi Evil Bcc: all@victim.test"


def test_plan_and_mrr_per_customer_and_currency(db_session, acme) -> None:
    """Each customer's own largest row sets the currency (a correlated subquery per customer)."""
    euro = make_customer(db_session, name="Euro", email="eu@x.test")
    make_subscription(db_session, euro, plan="big", mrr_minor=990000, currency="EUR")
    make_subscription(db_session, euro, plan="extra", mrr_minor=500, currency="EUR")
    make_subscription(db_session, euro, plan="usd-addon", mrr_minor=100, currency="USD")
    make_subscription(
        db_session,
        euro,
        plan="trial",
        mrr_minor=700,
        currency="EUR",
        status=SubscriptionStatus.trialing,
    )
    make_subscription(
        db_session, euro, plan="old", mrr_minor=999999, currency="EUR", ended_at=at(2026, 2, 1)
    )
    tpl = compile_template(subject="s", html="{{ plan }} {{ mrr }}")
    got = {
        m.customer_id: m.html
        for m in render_for_customers(
            db_session=db_session, template=tpl, customer_ids=[acme.id, euro.id]
        )
    }
    # EUR rows in force, not trials: 9,900.00 + 5.00; the USD add-on and the ended row do not count
    assert got == {acme.id: "pro $1,244.56", euro.id: "big €9,905.00"}
