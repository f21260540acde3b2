"""Segments service: save filters as segments, count and list members, refresh memberships.

A *dynamic* segment is a saved filter: its members are whoever matches now
(:func:`member_ids`). :func:`refresh` snapshots them into ``segment_memberships`` and appends
who ``entered`` and who ``left`` since the previous refresh to ``segment_membership_changes``
-- a handful of set-based statements, whatever the number of customers. A *static* segment is a
hand-picked list kept in ``segment_memberships`` (:func:`add_members`, :func:`remove_members`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Column,
    MetaData,
    Select,
    String,
    Table,
    delete,
    exists,
    func,
    insert,
    literal,
    select,
    text,
)
from sqlalchemy.orm import Session

from keepwell.customers.models import Customer
from keepwell.errors import AlreadyExists, InvalidInput, NotFound
from keepwell.models import UTCDateTime, row_id, utcnow
from keepwell.segments.filters import compile_filter, validate_filter
from keepwell.segments.models import (
    Segment,
    SegmentKind,
    SegmentMembership,
    SegmentMembershipChange,
)

MAX_NAME = 120
MAX_PAGE = 1_000
_BATCH = 10_000

# Per-connection scratch tables of one refresh: who matches now, who was a member, what changed.
# Every join of a refresh is between these (fresh statistics on PostgreSQL) and primary keys.
_SCRATCH = MetaData()
_MATCH = Table("kw_segment_match", _SCRATCH, Column("customer_id", BigInteger, primary_key=True))
_PREV = Table("kw_segment_prev", _SCRATCH, Column("customer_id", BigInteger, primary_key=True))
_DELTA = Table(
    "kw_segment_delta",
    _SCRATCH,
    Column("customer_id", BigInteger, primary_key=True),
    Column("change", String(8)),
)
_SCRATCH_DDL = [
    "CREATE TEMPORARY TABLE IF NOT EXISTS kw_segment_match (customer_id BIGINT PRIMARY KEY)",
    "CREATE TEMPORARY TABLE IF NOT EXISTS kw_segment_prev (customer_id BIGINT PRIMARY KEY)",
    "CREATE TEMPORARY TABLE IF NOT EXISTS kw_segment_delta "
    "(customer_id BIGINT PRIMARY KEY, change VARCHAR(8))",
]


@dataclass(frozen=True)
class RefreshResult:
    """What one refresh changed: customers that entered, that left, and members now."""

    entered: int
    left: int
    members: int


@dataclass(frozen=True)
class MembersPage:
    """A page of a segment's members (by name) and how many there are in all."""

    rows: list[Customer]
    total: int
    limit: int
    offset: int


def matching_customer_ids(
    *, db_session: Session, filter_text: str, now: datetime | None = None
) -> Select:
    """A select of the ids of customers matching ``filter_text`` (raises InvalidInput)."""
    return select(Customer.id).where(compile_filter(filter_text, now=now))


def _clean_name(name: str) -> str:
    clean = (name or "").strip()
    if not clean:
        raise InvalidInput("a segment needs a name", field="name")
    if len(clean) > MAX_NAME:
        raise InvalidInput(
            f"name is {len(clean)} characters long", field="name", expected=f"<= {MAX_NAME}"
        )
    return clean


def _kind(kind: str | SegmentKind) -> SegmentKind:
    try:
        return SegmentKind(kind)
    except ValueError:
        raise InvalidInput(
            f"unknown segment kind {kind!r}", field="kind", expected="dynamic or static"
        ) from None


def create_segment(
    *,
    db_session: Session,
    name: str,
    filter_text: str | None,
    description: str | None = None,
    kind: str = "dynamic",
    created_by: int | None = None,
) -> Segment:
    """Save a segment. Dynamic ones need a valid filter; static ones take none (add members).

    Raises :class:`AlreadyExists` for a taken name and :class:`InvalidInput` (with line and
    column) for a filter that does not validate -- nothing is saved then.
    """
    clean = _clean_name(name)
    seg_kind = _kind(kind)
    if seg_kind is SegmentKind.dynamic:
        if filter_text is None or not filter_text.strip():
            raise InvalidInput("a dynamic segment needs a filter", field="filter")
        validate_filter(filter_text)
        filter_text = filter_text.strip()
    elif filter_text is not None and filter_text.strip():
        raise InvalidInput(
            "a static segment has no filter", field="filter", hint="add members by id instead"
        )
    else:
        filter_text = None
    if db_session.scalar(select(Segment.id).where(Segment.name == clean)) is not None:
        raise AlreadyExists(f"a segment named {clean!r} already exists")
    segment = Segment(
        name=clean,
        description=description,
        filter_text=filter_text,
        kind=seg_kind,
        created_by=created_by,
        member_count=0,
    )
    db_session.add(segment)
    db_session.flush()
    return segment


def update_segment(
    *,
    db_session: Session,
    segment: Segment,
    filter_text: str | None = None,
    description: str | None = None,
) -> Segment:
    """Change a dynamic segment's filter (validated first) and/or the description."""
    if filter_text is not None:
        if segment.kind is not SegmentKind.dynamic:
            raise InvalidInput("a static segment has no filter", field="filter")
        validate_filter(filter_text)
        segment.filter_text = filter_text.strip()
    if description is not None:
        segment.description = description
    db_session.flush()
    return segment


def get_segment(*, db_session: Session, name_or_id: str | int) -> Segment:
    """The segment with this name (or id: an int, or ``#<id>``); raises :class:`NotFound`."""
    segment: Segment | None = None
    if not isinstance(name_or_id, int):
        segment = db_session.scalars(
            select(Segment).where(Segment.name == name_or_id.strip())
        ).first()
    found_id = row_id(name_or_id)
    if segment is None and found_id is not None:
        segment = db_session.get(Segment, found_id)
    if segment is None:
        raise NotFound(
            f"no segment {name_or_id!r}", hint="`keepwell segments list` shows the segments"
        )
    return segment


def list_segments(*, db_session: Session) -> list[Segment]:
    """Every segment, by name."""
    return list(db_session.scalars(select(Segment).order_by(Segment.name)))


def delete_segment(*, db_session: Session, segment: Segment) -> None:
    """Delete a segment with its memberships and history."""
    sid = segment.id
    db_session.execute(
        delete(SegmentMembershipChange).where(SegmentMembershipChange.segment_id == sid)
    )
    db_session.execute(delete(SegmentMembership).where(SegmentMembership.segment_id == sid))
    db_session.delete(segment)
    db_session.flush()


def member_ids(*, db_session: Session, segment: Segment, now: datetime | None = None) -> Select:
    """A select of member customer ids: who matches the filter now (dynamic) or the list."""
    if segment.kind is SegmentKind.dynamic:
        return matching_customer_ids(
            db_session=db_session, filter_text=segment.filter_text or "", now=now
        )
    return select(SegmentMembership.customer_id).where(SegmentMembership.segment_id == segment.id)


def count(*, db_session: Session, segment: Segment) -> int:
    """How many customers are members now."""
    ids = member_ids(db_session=db_session, segment=segment).subquery()
    return int(db_session.scalar(select(func.count()).select_from(ids)) or 0)


def count_filter(*, db_session: Session, filter_text: str) -> int:
    """How many customers match ``filter_text`` now."""
    ids = matching_customer_ids(db_session=db_session, filter_text=filter_text).subquery()
    return int(db_session.scalar(select(func.count()).select_from(ids)) or 0)


def members(
    *, db_session: Session, segment: Segment, limit: int = 25, offset: int = 0
) -> MembersPage:
    """One page of members, ordered by name then id."""
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(f"limit {limit}", field="limit", expected=f"1..{MAX_PAGE}")
    if offset < 0:
        raise InvalidInput(f"offset {offset}", field="offset", expected=">= 0")
    ids = member_ids(db_session=db_session, segment=segment)
    total = int(db_session.scalar(select(func.count()).select_from(ids.subquery())) or 0)
    rows = list(
        db_session.scalars(
            select(Customer)
            .where(Customer.id.in_(ids))
            .order_by(Customer.name, Customer.id)
            .limit(limit)
            .offset(offset)
        )
    )
    return MembersPage(rows=rows, total=total, limit=limit, offset=offset)


def _membership_diff(db_session: Session, segment: Segment, now: datetime) -> RefreshResult:
    """Apply the ids in ``kw_segment_match`` as the new membership; log entries and exits."""
    connection = db_session.connection()
    pg = connection.dialect.name == "postgresql"
    sid = segment.id
    SM, SC = SegmentMembership, SegmentMembershipChange
    connection.execute(
        insert(_PREV).from_select(
            ["customer_id"], select(SM.customer_id).where(SM.segment_id == sid)
        )
    )
    if pg:
        connection.execute(text("ANALYZE kw_segment_match, kw_segment_prev"))
    m, p = _MATCH.c.customer_id, _PREV.c.customer_id
    entered = select(m, literal("entered")).where(~exists().where(p == m))
    left = select(p, literal("left")).where(~exists().where(m == p))
    connection.execute(insert(_DELTA).from_select(["customer_id", "change"], entered))
    connection.execute(insert(_DELTA).from_select(["customer_id", "change"], left))
    if pg:
        connection.execute(text("ANALYZE kw_segment_delta"))
    at = literal(now, UTCDateTime())
    d = _DELTA.c
    connection.execute(
        insert(SC.__table__).from_select(
            ["segment_id", "customer_id", "change", "at"],
            select(literal(sid), d.customer_id, d.change, at).order_by(d.change, d.customer_id),
        )
    )
    connection.execute(
        delete(SM.__table__).where(
            SM.segment_id == sid,
            SM.customer_id.in_(select(d.customer_id).where(d.change == "left")),
        )
    )
    connection.execute(
        insert(SM.__table__).from_select(
            ["segment_id", "customer_id", "entered_at"],
            select(literal(sid), d.customer_id, at).where(d.change == "entered"),
        )
    )
    counts = dict(connection.execute(select(d.change, func.count()).group_by(d.change)).all())
    total = int(connection.scalar(select(func.count()).select_from(_MATCH)) or 0)
    return RefreshResult(
        entered=int(counts.get("entered", 0)), left=int(counts.get("left", 0)), members=total
    )


def _clear_scratch(db_session: Session) -> None:
    connection = db_session.connection()
    for ddl in _SCRATCH_DDL:
        connection.execute(text(ddl))
    for table in (_MATCH, _PREV, _DELTA):
        connection.execute(delete(table))


def refresh(*, db_session: Session, segment: Segment, now: datetime | None = None) -> RefreshResult:
    """Bring a segment's stored membership up to date; returns entered / left / members.

    Dynamic: the filter runs once into a per-connection scratch table; set-based statements
    then diff it with the stored members, log entries and exits (``entered`` / ``left``) and
    update ``segment_memberships``. Static: nothing moves (members are added and removed by
    hand); the count is returned.
    """
    moment = now or utcnow()
    if segment.kind is SegmentKind.static:
        total = count(db_session=db_session, segment=segment)
        result = RefreshResult(entered=0, left=0, members=total)
    else:
        db_session.flush()
        # One refresh of a segment at a time (PostgreSQL row lock; SQLite serialises writers).
        db_session.execute(select(Segment.id).where(Segment.id == segment.id).with_for_update())
        _clear_scratch(db_session)
        ids = member_ids(db_session=db_session, segment=segment, now=moment)
        db_session.connection().execute(insert(_MATCH).from_select(["customer_id"], ids))
        result = _membership_diff(db_session, segment, moment)
        _clear_scratch(db_session)
    segment.refreshed_at = moment
    segment.member_count = result.members
    db_session.flush()
    return result


def refresh_all(*, db_session: Session) -> dict[str, RefreshResult]:
    """Refresh every segment (by name); returns each one's result."""
    return {
        segment.name: refresh(db_session=db_session, segment=segment)
        for segment in list_segments(db_session=db_session)
    }


def _static(segment: Segment) -> None:
    if segment.kind is not SegmentKind.static:
        raise InvalidInput(
            f"segment {segment.name!r} is dynamic: its filter decides who is in it",
            field="segment",
            hint="hand-pick members in a static segment",
        )


def add_members(*, db_session: Session, segment: Segment, customer_ids: Iterable[int]) -> int:
    """Add customers to a static segment (logged as entered); returns how many were new."""
    _static(segment)
    wanted = sorted({int(i) for i in customer_ids})
    known = set()
    for start in range(0, len(wanted), _BATCH):
        chunk = wanted[start : start + _BATCH]
        known.update(db_session.scalars(select(Customer.id).where(Customer.id.in_(chunk))))
    missing = [i for i in wanted if i not in known]
    if missing:
        raise NotFound(f"{len(missing)} customer id(s) do not exist: {missing[:10]}")
    have = set(
        db_session.scalars(
            select(SegmentMembership.customer_id).where(SegmentMembership.segment_id == segment.id)
        )
    )
    new = [i for i in wanted if i not in have]
    now = utcnow()
    for start in range(0, len(new), _BATCH):
        chunk = new[start : start + _BATCH]
        db_session.execute(
            insert(SegmentMembership),
            [{"segment_id": segment.id, "customer_id": i, "entered_at": now} for i in chunk],
        )
        db_session.execute(
            insert(SegmentMembershipChange),
            [
                {"segment_id": segment.id, "customer_id": i, "change": "entered", "at": now}
                for i in chunk
            ],
        )
    segment.member_count = len(have) + len(new)
    db_session.flush()
    return len(new)


def remove_members(*, db_session: Session, segment: Segment, customer_ids: Iterable[int]) -> int:
    """Remove customers from a static segment (logged as left); returns how many were in."""
    _static(segment)
    wanted = {int(i) for i in customer_ids}
    have = set(
        db_session.scalars(
            select(SegmentMembership.customer_id).where(SegmentMembership.segment_id == segment.id)
        )
    )
    gone = sorted(wanted & have)
    now = utcnow()
    for start in range(0, len(gone), _BATCH):
        chunk = gone[start : start + _BATCH]
        db_session.execute(
            delete(SegmentMembership).where(
                SegmentMembership.segment_id == segment.id,
                SegmentMembership.customer_id.in_(chunk),
            )
        )
        db_session.execute(
            insert(SegmentMembershipChange),
            [
                {"segment_id": segment.id, "customer_id": i, "change": "left", "at": now}
                for i in chunk
            ],
        )
    segment.member_count = len(have) - len(gone)
    db_session.flush()
    return len(gone)


def changes(
    *, db_session: Session, segment: Segment, limit: int = 100
) -> list[SegmentMembershipChange]:
    """The segment's most recent entered/left changes, newest first."""
    return list(
        db_session.scalars(
            select(SegmentMembershipChange)
            .where(SegmentMembershipChange.segment_id == segment.id)
            .order_by(SegmentMembershipChange.at.desc(), SegmentMembershipChange.id.desc())
            .limit(limit)
        )
    )
