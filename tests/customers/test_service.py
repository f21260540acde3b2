"""Customer service: lookup, filters, sort, pagination, current plan and MRR."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from keepwell.customers import service
from keepwell.customers.models import CustomerStatus, Tag
from keepwell.errors import InvalidInput, NotFound
from keepwell.users.models import StaffUser
from tests.factories import at, make_customer, make_subscription


@pytest.fixture
def shop(db_session: Session):
    ana = StaffUser(email="ana@x.test", name="Ana")
    vip = Tag(name="vip")
    db_session.add_all([ana, vip])
    a = make_customer(
        db_session,
        external_id="a1",
        name="Alpha Travel",
        industry="travel",
        owner=ana,
        tags=[vip],
        email="ops@alpha.test",
    )
    b = make_customer(
        db_session,
        external_id="b2",
        name="Beta Health",
        industry="healthcare",
        status=CustomerStatus.churned,
        signup_at=at(2025, 6, 1),
    )
    c = make_customer(
        db_session, external_id="c3", name="Gamma Hotels", industry="Travel", company="Gamma Group"
    )
    make_subscription(db_session, a, plan="pro", mrr_minor=9900, started_at=at(2026, 1, 1))
    make_subscription(
        db_session,
        b,
        plan="starter",
        mrr_minor=2900,
        started_at=at(2025, 6, 1),
        ended_at=at(2026, 1, 1),
    )
    return a, b, c


def test_get_or_raise(db_session: Session, shop) -> None:
    a, _, _ = shop
    assert service.get_or_raise(db_session=db_session, ref="a1").id == a.id
    assert service.get_or_raise(db_session=db_session, ref=f"#{a.id}").id == a.id
    with pytest.raises(NotFound, match="no customer 'zz'"):
        service.get_or_raise(db_session=db_session, ref="zz")


@pytest.mark.parametrize(
    ("flt", "expected"),
    [
        (service.CustomerFilter(), ["a1", "b2", "c3"]),
        (service.CustomerFilter(search="GAMMA group"), ["c3"]),  # company, case-insensitive
        (service.CustomerFilter(search="alpha.test"), ["a1"]),  # e-mail
        (service.CustomerFilter(industry="travel"), ["a1", "c3"]),  # case-insensitive
        (service.CustomerFilter(status=CustomerStatus.churned), ["b2"]),
        (service.CustomerFilter(owner_email="ANA@x.test"), ["a1"]),
        (service.CustomerFilter(tag="vip"), ["a1"]),
        (service.CustomerFilter(search="'; DROP TABLE customers; --"), []),
    ],
)
def test_filters(db_session: Session, shop, flt, expected) -> None:
    page = service.get_all(db_session=db_session, flt=flt)
    assert [r.customer.external_id for r in page.rows] == expected
    assert page.total == len(expected)


def test_current_plan_and_mrr(db_session: Session, shop) -> None:
    page = service.get_all(db_session=db_session, at=at(2026, 2, 1))
    by_id = {r.customer.external_id: r for r in page.rows}
    assert (by_id["a1"].plan, by_id["a1"].mrr_minor) == ("pro", 9900)
    assert (by_id["b2"].plan, by_id["b2"].mrr_minor) == (None, 0)


def test_sort_and_pages(db_session: Session, shop) -> None:
    page = service.get_all(db_session=db_session, sort="signup_at", limit=2)
    assert [r.customer.external_id for r in page.rows] == ["b2", "a1"]
    assert page.total == 3
    page2 = service.get_all(db_session=db_session, sort="signup_at", limit=2, offset=2)
    assert [r.customer.external_id for r in page2.rows] == ["c3"]
    with pytest.raises(InvalidInput, match="cannot sort by"):
        service.get_all(db_session=db_session, sort="password")
    with pytest.raises(InvalidInput):
        service.get_all(db_session=db_session, limit=0)


def test_overview(db_session: Session, shop) -> None:
    ov = service.overview(db_session=db_session, ref="a1", at=at(2026, 3, 1))
    assert ov.current_mrr_minor == 9900 and ov.currency == "USD"
    assert [s.plan for s in ov.subscriptions] == ["pro"]
    assert ov.timeline[0].title.startswith("Started pro")


@pytest.mark.parametrize(
    ("search", "expected"),
    [
        ("50%_off\\", ["lit"]),  # the whole name, taken literally
        ("%", ["lit"]),  # not "any text"
        ("_", ["lit"]),  # not "any one character"
        ("\\", ["lit"]),  # a backslash is no escape character (PostgreSQL)
        ("%_OFF", ["lit"]),  # case-insensitive
        ("50__off", []),  # '_' must not match the literal '%'
        ("50%%off", []),
        ("/", []),  # the escape character itself is matched literally
    ],
)
def test_search_matches_like_wildcards_literally(
    db_session: Session, search: str, expected: list[str]
) -> None:
    make_customer(db_session, external_id="lit", name="50%_off\\ Shop")
    make_customer(db_session, external_id="other", name="500 off Store")
    flt = service.CustomerFilter(search=search)
    page = service.get_all(db_session=db_session, flt=flt)
    assert [r.customer.external_id for r in page.rows] == expected
