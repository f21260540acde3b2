"""Segments service on SQLite and PostgreSQL: save, count, members, refresh history, defaults."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from keepwell.customers.models import Customer, CustomerStatus
from keepwell.errors import AlreadyExists, InvalidInput, NotFound
from keepwell.risk.models import RiskScore
from keepwell.segments import service
from keepwell.segments.defaults import DEFAULTS, install_defaults
from keepwell.segments.filters import FilterError
from keepwell.segments.models import (
    CustomerStats,
    Segment,
    SegmentMembership,
    SegmentMembershipChange,
)
from keepwell.surveys.models import SurveyKind, SurveyResponse
from tests.factories import at, make_customer, make_subscription


def _people(db_session: Session, n: int = 5, **kw) -> list[Customer]:
    return [
        make_customer(db_session, name=f"P{i}", external_id=f"p{i}", industry="travel", **kw)
        for i in range(n)
    ]


def _history(db_session: Session, segment: Segment) -> list[tuple[str, str]]:
    rows = db_session.execute(
        select(Customer.external_id, SegmentMembershipChange.change)
        .join(Customer, Customer.id == SegmentMembershipChange.customer_id)
        .where(SegmentMembershipChange.segment_id == segment.id)
        .order_by(SegmentMembershipChange.id)
    )
    return [tuple(r) for r in rows]


def _stored(db_session: Session, segment: Segment) -> list[str]:
    return sorted(
        db_session.scalars(
            select(Customer.external_id)
            .join(SegmentMembership, SegmentMembership.customer_id == Customer.id)
            .where(SegmentMembership.segment_id == segment.id)
        )
    )


def test_create_validates_and_refuses_duplicates(db_session: Session) -> None:
    seg = service.create_segment(
        db_session=db_session, name=" Travel ", filter_text=' industry = "travel" '
    )
    assert (seg.name, seg.filter_text, seg.kind.value) == (
        "Travel",
        'industry = "travel"',
        "dynamic",
    )
    with pytest.raises(AlreadyExists):
        service.create_segment(db_session=db_session, name="Travel", filter_text="mrr > 1")
    with pytest.raises(FilterError, match="unknown field 'mmr'; did you mean 'mrr'"):
        service.create_segment(db_session=db_session, name="Bad", filter_text="mmr > 1")
    with pytest.raises(InvalidInput, match="needs a filter"):
        service.create_segment(db_session=db_session, name="Empty", filter_text="  ")
    with pytest.raises(InvalidInput, match="static segment has no filter"):
        service.create_segment(
            db_session=db_session, name="S", filter_text="mrr > 1", kind="static"
        )
    with pytest.raises(InvalidInput, match="unknown segment kind"):
        service.create_segment(db_session=db_session, name="K", filter_text="mrr > 1", kind="smart")
    with pytest.raises(InvalidInput, match="needs a name"):
        service.create_segment(db_session=db_session, name=" ", filter_text="mrr > 1")
    assert [s.name for s in service.list_segments(db_session=db_session)] == ["Travel"]
    assert service.get_segment(db_session=db_session, name_or_id=seg.id) is seg
    assert service.get_segment(db_session=db_session, name_or_id=f"#{seg.id}") is seg
    with pytest.raises(NotFound):
        service.get_segment(db_session=db_session, name_or_id="Nope")


def test_refresh_history_over_repeated_runs(db_session: Session) -> None:
    p = _people(db_session, 4)
    seg = service.create_segment(
        db_session=db_session, name="Travel", filter_text='industry = "travel"'
    )
    assert service.refresh(db_session=db_session, segment=seg) == service.RefreshResult(4, 0, 4)
    assert service.refresh(db_session=db_session, segment=seg) == service.RefreshResult(0, 0, 4)
    p[0].industry = "retail"
    p[1].industry = None
    extra = make_customer(db_session, external_id="new", name="New", industry="travel")
    db_session.flush()
    assert service.refresh(db_session=db_session, segment=seg) == service.RefreshResult(1, 2, 3)
    p[0].industry = "travel"
    db_session.flush()
    assert service.refresh(db_session=db_session, segment=seg) == service.RefreshResult(1, 0, 4)
    assert _history(db_session, seg) == [
        ("p0", "entered"),
        ("p1", "entered"),
        ("p2", "entered"),
        ("p3", "entered"),
        ("new", "entered"),
        ("p0", "left"),
        ("p1", "left"),
        ("p0", "entered"),
    ]
    assert _stored(db_session, seg) == ["new", "p0", "p2", "p3"]
    assert (seg.member_count, seg.refreshed_at is not None) == (4, True)
    assert service.count(db_session=db_session, segment=seg) == 4
    assert extra.id in set(
        db_session.scalars(service.member_ids(db_session=db_session, segment=seg))
    )
    newest = service.changes(db_session=db_session, segment=seg, limit=1)
    assert [(c.customer_id, c.change) for c in newest] == [(p[0].id, "entered")]


def test_refresh_is_per_segment(db_session: Session) -> None:
    p = _people(db_session, 3)
    p[2].status = CustomerStatus.churned
    a = service.create_segment(db_session=db_session, name="A", filter_text='industry = "travel"')
    b = service.create_segment(db_session=db_session, name="B", filter_text='status = "churned"')
    results = service.refresh_all(db_session=db_session)
    assert results == {"A": service.RefreshResult(3, 0, 3), "B": service.RefreshResult(1, 0, 1)}
    assert _stored(db_session, a) == ["p0", "p1", "p2"]
    assert _stored(db_session, b) == ["p2"]
    p[2].status = CustomerStatus.active
    db_session.flush()
    assert service.refresh_all(db_session=db_session) == {
        "A": service.RefreshResult(0, 0, 3),
        "B": service.RefreshResult(0, 1, 0),
    }


def test_members_paginate_by_name(db_session: Session) -> None:
    for name in ("Delta", "alpha", "Charlie", "Bravo"):
        make_customer(db_session, name=name, industry="events")
    make_customer(db_session, name="Other", industry="retail")
    seg = service.create_segment(
        db_session=db_session, name="Ev", filter_text='industry = "events"'
    )
    page = service.members(db_session=db_session, segment=seg, limit=3, offset=0)
    assert (page.total, [c.name for c in page.rows]) == (4, ["Bravo", "Charlie", "Delta"])
    page = service.members(db_session=db_session, segment=seg, limit=3, offset=3)
    assert [c.name for c in page.rows] == ["alpha"]
    with pytest.raises(InvalidInput, match="limit"):
        service.members(db_session=db_session, segment=seg, limit=0)
    with pytest.raises(InvalidInput, match="offset"):
        service.members(db_session=db_session, segment=seg, offset=-1)


def test_static_segment_is_hand_picked(db_session: Session) -> None:
    p = _people(db_session, 3)
    seg = service.create_segment(
        db_session=db_session, name="Board", filter_text=None, kind="static"
    )
    assert (
        service.add_members(db_session=db_session, segment=seg, customer_ids=[p[0].id, p[1].id])
        == 2
    )
    assert service.add_members(db_session=db_session, segment=seg, customer_ids=[p[1].id]) == 0
    with pytest.raises(NotFound, match="do not exist"):
        service.add_members(db_session=db_session, segment=seg, customer_ids=[p[2].id, 999_999])
    assert service.remove_members(db_session=db_session, segment=seg, customer_ids=[p[0].id]) == 1
    assert service.refresh(db_session=db_session, segment=seg) == service.RefreshResult(0, 0, 1)
    assert _history(db_session, seg) == [("p0", "entered"), ("p1", "entered"), ("p0", "left")]
    assert service.count(db_session=db_session, segment=seg) == 1
    dynamic = service.create_segment(db_session=db_session, name="D", filter_text="mrr > 1")
    with pytest.raises(InvalidInput, match="is dynamic"):
        service.add_members(db_session=db_session, segment=dynamic, customer_ids=[p[0].id])


def test_delete_and_update(db_session: Session) -> None:
    _people(db_session, 2)
    seg = service.create_segment(db_session=db_session, name="T", filter_text='industry = "travel"')
    service.refresh(db_session=db_session, segment=seg)
    with pytest.raises(FilterError):
        service.update_segment(db_session=db_session, segment=seg, filter_text="industry >")
    assert seg.filter_text == 'industry = "travel"'
    service.update_segment(db_session=db_session, segment=seg, filter_text='industry = "x"')
    assert service.refresh(db_session=db_session, segment=seg) == service.RefreshResult(0, 2, 0)
    service.delete_segment(db_session=db_session, segment=seg)
    for model in (Segment, SegmentMembership, SegmentMembershipChange):
        assert db_session.scalar(select(func.count()).select_from(model)) == 0


def test_defaults_install_once_and_match(db_session: Session) -> None:
    now = at(2026, 6, 1)
    travel = make_customer(db_session, name="T", industry="Travel")  # exact match only
    hotel = make_customer(db_session, name="H", industry="hospitality")
    lapsed = make_customer(db_session, name="L")
    make_subscription(db_session, lapsed, started_at=at(2026, 1, 1))
    gone = make_customer(db_session, name="G")
    make_subscription(db_session, gone, started_at=at(2025, 1, 1), ended_at=at(2026, 2, 1))
    marked = make_customer(db_session, name="M", status=CustomerStatus.churned)
    trial = make_customer(db_session, name="Tr")
    make_subscription(db_session, trial, status="trialing", ended_at=at(2026, 2, 1))
    for cust, band, days in ((lapsed, "less than monthly", 40), (hotel, "weekly", 2)):
        db_session.add(
            CustomerStats(
                customer_id=cust.id,
                as_of=now,
                usage_band=band,
                days_since_last_event=days,
                active_days_28d=0,
                events_28d=0,
            )
        )
    db_session.add(
        RiskScore(customer_id=hotel.id, as_of=now, model_version="t", probability=0.5, band="high")
    )
    for n, (cust, score) in enumerate(((travel, 9), (hotel, 6), (lapsed, 7))):
        db_session.add(
            SurveyResponse(
                external_id=f"n{n}",
                customer_id=cust.id,
                kind=SurveyKind.nps,
                score=score,
                responded_at=now,
            )
        )
    db_session.flush()
    created = install_defaults(db_session=db_session)
    assert created == [d.name for d in DEFAULTS]
    assert install_defaults(db_session=db_session) == []
    seg = service.get_segment(db_session=db_session, name_or_id="Churned")
    seg.filter_text = 'status = "churned"'  # an edited default is kept
    assert install_defaults(db_session=db_session) == []
    assert seg.filter_text == 'status = "churned"'
    seg.filter_text = DEFAULTS[4].filter_text

    def members(name: str) -> list[str]:
        segment = service.get_segment(db_session=db_session, name_or_id=name)
        ids = set(db_session.scalars(service.member_ids(db_session=db_session, segment=segment)))
        return sorted(c.name for c in (travel, hotel, lapsed, gone, marked, trial) if c.id in ids)

    assert members("At risk") == ["H"]
    assert members("Crisis-hit industries") == ["H"]
    assert members("Forgotten zone") == ["L"]
    assert members("Lapsed") == ["L"]
    assert members("Churned") == ["G", "M"]  # the expired trial never paid
    assert members("Promoters") == ["T"]
    assert members("Detractors") == ["H"]


@pytest.mark.parametrize(
    "ref",
    [2**63, -(2**63) - 1, "9" * 20, "#" + "9" * 30, "2**63", "²", 2**63 - 1, "#0"],
)
def test_an_id_beyond_bigint_is_not_found(db_session: Session, ref) -> None:
    seg = service.create_segment(db_session=db_session, name="Travel", filter_text="mrr > 1")
    with pytest.raises(NotFound, match="no segment"):
        service.get_segment(db_session=db_session, name_or_id=ref)
    assert service.get_segment(db_session=db_session, name_or_id=f" #{seg.id} ") is seg
