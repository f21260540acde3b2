"""The filter language on SQLite and PostgreSQL: good filters give hand-computed members,
hostile ones are matched literally or refused with a clear, positioned error."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from keepwell.customers.models import Customer, CustomerStatus, Tag
from keepwell.errors import InvalidInput
from keepwell.health.models import HealthScore
from keepwell.risk.models import RiskScore
from keepwell.segments.filters import (
    And,
    Condition,
    FilterError,
    Not,
    Or,
    compile_filter,
    parse_filter,
)
from keepwell.segments.models import CustomerStats
from keepwell.segments.service import matching_customer_ids
from keepwell.surveys.models import SurveyKind, SurveyResponse
from keepwell.users.models import StaffUser
from tests.factories import at, make_customer, make_subscription

NOW = at(2026, 6, 1)


@pytest.fixture
def shop(db_session: Session) -> dict[str, Customer]:
    """Five customers with hand-set facts (names are the keys)."""
    ana = StaffUser(email="ana@example.com", name="Ana")
    db_session.add(ana)
    db_session.flush()
    vip = Tag(name="vip")
    beta = Tag(name="beta")
    c = {
        "a": make_customer(
            db_session,
            name="Alpine Tours",
            external_id="a",
            email="ops@acme.test",
            industry="travel",
            signup_at=at(2025, 12, 31, 23, 0),
            owner_id=ana.id,
            attributes={"plan_tier": "gold", "seats": "12"},
            tags=[vip],
        ),
        "b": make_customer(
            db_session,
            name="Bay Hotel",
            external_id="b",
            email="info@bayhotel.test",
            industry="hospitality",
            signup_at=at(2026, 1, 1),
            attributes={"plan_tier": "silver", "seats": 3, "trial": True},
            tags=[beta],
        ),
        "c": make_customer(
            db_session,
            name="Crafty",
            external_id="c",
            email="hello@ACME.test",
            industry="retail",
            signup_at=at(2026, 2, 15),
            status=CustomerStatus.churned,
            attributes={"seats": "many"},
        ),
        "d": make_customer(
            db_session,
            name="x' OR 1=1 --",
            external_id="d",
            industry=None,
            signup_at=at(2026, 3, 1),
            tags=[vip, beta],
        ),
        "e": make_customer(db_session, name="Echo 100%_off", external_id="e", industry="events"),
    }
    # MRR now: a 150 USD, b 80 EUR (+ a trial that does not count), c ended, d JPY 20000.
    make_subscription(db_session, c["a"], mrr_minor=15000, currency="USD")
    make_subscription(db_session, c["b"], mrr_minor=8000, currency="EUR")
    make_subscription(db_session, c["b"], mrr_minor=9000, status="trialing")
    make_subscription(db_session, c["c"], mrr_minor=5000, ended_at=at(2026, 5, 1))
    make_subscription(db_session, c["d"], mrr_minor=20000, currency="JPY")
    # Latest risk: a 0.7 high (older 0.1), b 0.3, c none. Health: a red, b green.
    for cust, prob, band, when in (
        (c["a"], 0.1, "low", at(2026, 4, 1)),
        (c["a"], 0.7, "high", at(2026, 5, 1)),
        (c["b"], 0.3, "high", at(2026, 5, 1)),
    ):
        db_session.add(
            RiskScore(
                customer_id=cust.id,
                scored_at=when,
                as_of=when,
                model_version="t",
                probability=prob,
                band=band,
            )
        )
    db_session.add(HealthScore(customer_id=c["a"].id, as_of=NOW, score=30, band="red"))
    db_session.add(HealthScore(customer_id=c["b"].id, as_of=NOW, score=80, band="green"))
    # Latest NPS: a 10 then 5 (latest 5), b 9, c a CSAT only.
    for n, (cust, kind, score, when) in enumerate(
        (
            (c["a"], SurveyKind.nps, 10, at(2026, 1, 5)),
            (c["a"], SurveyKind.nps, 5, at(2026, 3, 5)),
            (c["b"], SurveyKind.nps, 9, at(2026, 3, 5)),
            (c["c"], SurveyKind.csat, 2, at(2026, 3, 5)),
        )
    ):
        db_session.add(
            SurveyResponse(
                external_id=f"s{n}", customer_id=cust.id, kind=kind, score=score, responded_at=when
            )
        )
    for cust, band, days, events, since in (
        (c["a"], "daily", 20, 300, 0),
        (c["b"], "less than monthly", 0, 0, 45),
        (c["c"], "monthly", 2, 5, 10),
    ):
        db_session.add(
            CustomerStats(
                customer_id=cust.id,
                as_of=NOW,
                usage_band=band,
                active_days_28d=days,
                events_28d=events,
                days_since_last_event=since,
                last_event_at=at(2026, 6, 1) if since == 0 else at(2026, 4, 1),
            )
        )
    db_session.flush()
    return c


def names(db_session: Session, shop: dict[str, Customer], text: str) -> str:
    ids = set(db_session.scalars(select(Customer.id).where(compile_filter(text, now=NOW))))
    return "".join(k for k, cust in sorted(shop.items()) if cust.id in ids)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('industry in ["travel", "hospitality"]', "ab"),
        ('industry = "travel" or industry = "events"', "ae"),
        ('industry != "travel"', "bce"),  # d has no industry: comparisons skip empty fields
        ('not industry = "travel"', "bcde"),
        ("industry is null", "d"),
        ("industry is not null", "abce"),
        ('industry not in ["travel", "retail"]', "be"),
        ("mrr >= 100", "ad"),  # 150 USD, 20000 JPY; b has 80 EUR
        ("mrr = 0", "ce"),
        ("mrr > 79.99 and mrr < 80.01", "b"),
        ("paying = true", "abd"),
        ("paying = false", "ce"),
        ("ever_paid = true and paying = false", "c"),
        ("risk >= 0.6", "a"),  # latest score only
        ('risk_band = "high"', "ab"),
        ("risk is null", "cde"),
        ("not risk >= 0.6", "bcde"),
        ('health_band = "red"', "a"),
        ("health > 50", "b"),
        ("nps <= 6", "a"),
        ("nps >= 9", "b"),
        ("nps is null", "cde"),
        ('usage_band = "less than monthly"', "b"),
        ('usage_band in ["daily", "monthly"]', "ac"),
        ("days_since_last_event > 30", "b"),
        ("active_days_28d >= 2 and events_28d < 100", "c"),
        ('last_event_at >= "2026-05-01"', "a"),
        ('tag = "vip"', "ad"),
        ('not tag = "vip"', "bce"),
        ('tag != "vip"', "bce"),
        ('tag in ["vip", "beta"]', "abd"),
        ('tag not in ["beta"]', "ace"),
        ("tag is null", "ce"),
        ('tag = "vip" and tag = "beta"', "d"),
        ('tag = "nobody"', ""),
        ('attributes.plan_tier = "gold"', "a"),
        ('attributes.plan_tier != "gold"', "b"),
        ("attributes.seats >= 10", "a"),  # "12" (text) counts as a number, "many" does not
        ("attributes.seats < 10", "b"),
        ('attributes.seats = "many"', "c"),
        ("attributes.trial = true", "b"),
        ("attributes.trial is null", "acde"),
        ("attributes.plan_tier is not null", "ab"),
        ('signup_at < "2026-01-01"', "a"),
        ('signup_at = "2026-01-01"', "be"),  # a signed up at 23:00 on Dec 31
        ('signup_at <= "2026-01-01"', "abe"),
        ('signup_at > "2026-01-01"', "cd"),  # after that whole day
        ('signup_at >= "2026-02-15T00:00:00+00:00"', "cd"),
        ('signup_at > "2026-01-01T00:30:00+01:00"', "bcde"),  # 2025-12-31 23:30 UTC
        ('email contains "@acme"', "ac"),  # case-insensitive
        ('name starts with "bay"', "b"),
        ('name contains "%_"', "e"),  # LIKE wildcards are literal
        ('name contains "%"', "e"),
        ('owner = "ana@example.com"', "a"),
        ('owner != "ana@example.com"', ""),
        ("owner is null", "bcde"),
        ('status = "churned"', "c"),
        ('STATUS = "CHURNED"', "c"),  # field names and enum values ignore case
        ('status in ["active", "trial"]', "abde"),
        (
            'industry in ["travel", "hospitality"] and mrr >= 100 and risk >= 0.6 '
            'and usage_band = "daily"',
            "a",
        ),
        ('(industry = "travel" or tag = "beta") and not (mrr < 100)', "ad"),
        ('not not tag = "vip"', "ad"),
    ],
)
def test_filter_members(db_session: Session, shop, text: str, expected: str) -> None:
    assert names(db_session, shop, text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('name = "x\' OR 1=1 --"', "d"),  # matched literally
        ("name = 'x\\' OR 1=1 --'", "d"),  # single quotes with an escaped quote
        ('name = "x\\" OR 1=1 --"', ""),
        ('name = "a\'; DROP TABLE customers; --"', ""),
        ("name = \"__import__('os').system('true')\"", ""),
        ('industry = "travel" or name = "1) OR (1=1"', "a"),
        ('attributes.plan_tier = "gold\') OR 1=1 --"', ""),
        ('name = "' + "x" * 10_000 + '"', ""),
        ('name contains "\\\\"', ""),
        ("(" * 200 + 'industry = "travel"' + ")" * 200, "a"),
    ],
)
def test_hostile_values_match_literally(db_session: Session, shop, text: str, expected) -> None:
    assert names(db_session, shop, text) == expected
    assert db_session.scalar(select(Customer.id).where(Customer.name == "Crafty")) is not None


@pytest.mark.parametrize(
    "value",
    ["x' OR 1=1 --", "a'; DROP TABLE customers; --", "1) OR (1=1", "gold') OR 1=1 --"],
)
def test_values_are_bound_parameters_never_sql_text(engine, value: str) -> None:
    for text in (f'name = "{value}"', f'attributes.plan_tier = "{value}"', f'tag = "{value}"'):
        compiled = select(Customer.id).where(compile_filter(text)).compile(dialect=engine.dialect)
        assert value not in str(compiled) and "DROP" not in str(compiled)
        assert value in compiled.params.values() or [value] in compiled.params.values()


def error(text: str) -> FilterError:
    with pytest.raises(InvalidInput) as info:
        compile_filter(text)
    assert isinstance(info.value, FilterError)
    return info.value


def test_unknown_field_suggests() -> None:
    err = error('industry = "travel" and indusrty = "x"')
    assert err.message == (
        "field 'indusrty': unknown field 'indusrty'; did you mean 'industry'? at line 1, column 25"
    )
    assert (err.line, err.column, err.field) == (1, 25, "indusrty")
    assert "did you mean 'attributes.tier'" in error('attribute.tier = "x"').message
    assert "did you mean" not in error("zzz = 1").message


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ('mrr >= "100"', '"100" is a string, but this is a money field'),
        ("industry = 3", "3 is a number, but this is a string field"),
        ("risk >= true", "true is a boolean, but this is a number field"),
        ('usage_band = "rarely"', '"rarely" is not a value of this field'),
        ('usage_band = "dayly"', 'did you mean "daily"?'),
        ('signup_at < "yesterday"', '"yesterday" is not a date'),
        ('signup_at < "2026-02-30"', '"2026-02-30" is not a date'),
        ('industry > "a"', "operator '>' does not apply to a string field"),
        ('mrr contains "1"', "operator 'contains' does not apply to a money field"),
        ("paying is null", "operator 'is null' does not apply to a boolean field"),
        ('signup_at in ["2026-01-01"]', "operator 'in' does not apply to a date field"),
        ('tag < "vip"', "operator '<' does not apply to a tag field"),
        ('attributes.x in ["a", 1]', "the list mixes value types"),
        ('attributes.x > "a"', "operator '>' does not apply to a string field"),
        ("industry in []", "'in' needs at least one value"),
    ],
)
def test_type_errors_name_field_and_type(text: str, needle: str) -> None:
    err = error(text)
    assert needle in err.message
    assert err.field is not None and err.line == 1 and err.column == 1


@pytest.mark.parametrize(
    ("text", "needle", "column"),
    [
        ('name = "unterminated', "unterminated string", 8),
        ("name = 'unterminated", "unterminated string", 8),
        ('industry = "travel" and', "the filter ends too early", 24),
        ('industry = "a" ; DROP TABLE customers', "unexpected character ';'", 16),
        ('industry == = "a"', "unexpected '='", 13),
        ('(industry = "a"', "the filter ends too early", 16),
        ('industry = "a")', "unexpected ')'", 15),
        ("__import__('os')", "unexpected '('", 11),
        ("mrr >= 1e9", "unexpected 'e9'", 9),
        ('industry = "a" && mrr > 1', "unexpected character '&'", 16),
    ],
)
def test_syntax_errors_have_position(text: str, needle: str, column: int) -> None:
    err = error(text)
    assert needle in err.message
    assert (err.line, err.column) == (1, column)


def test_limits() -> None:
    assert "nests and/or/not more than 50" in error("not " * 60 + 'industry = "a"').message
    assert "characters long" in error('name = "' + "x" * 20_001 + '"').message
    assert "NUL character at line 1, column 9" in error('name = "\x00"').message
    assert "empty" in error("   ").message
    many = " or ".join(f"mrr = {i}" for i in range(501))
    assert "more than 500 conditions" in error(many).message
    assert "ends too early" in error("(" * 5000).message
    assert "more than 50 levels" in error("not " * 4000 + "mrr = 1").message
    nested_or = " or ".join("(mrr = 1" for _ in range(300)) + ")" * 300
    assert "more than 50 levels" in error(nested_or).message
    assert "at most 1000 values" in error("nps in [" + ", ".join(["1"] * 1001) + "]").message
    compile_filter("(" * 4000 + "mrr = 1" + ")" * 4000)  # redundant parentheses are fine


def test_parse_is_case_insensitive_and_multiline() -> None:
    node = parse_filter('Industry = "a"\n  AND NOT tag = "x"')
    assert isinstance(node, And) and isinstance(node.children[1], Not)
    assert node.children[0] == Condition("Industry", "=", "a", 1, 1)
    assert node.children[1].child == Condition("tag", "=", "x", 2, 11)
    assert parse_filter("a = 1 or b = 2 and c = 3") == Or(
        (
            Condition("a", "=", 1.0, 1, 1),
            And((Condition("b", "=", 2.0, 1, 10), Condition("c", "=", 3.0, 1, 20))),
        )
    )
    err = error('industry = "a"\nand mrr >= "x"')
    assert (err.line, err.column) == (2, 5)


def test_matching_customer_ids_is_a_select(db_session: Session, shop) -> None:
    query = matching_customer_ids(db_session=db_session, filter_text='tag = "vip"')
    assert sorted(db_session.scalars(query)) == sorted([shop["a"].id, shop["d"].id])
