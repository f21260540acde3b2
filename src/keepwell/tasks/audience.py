"""Which customers an assignment rule covers, through ``keepwell.segments``.

A rule names its audience as filter text in the segment filter language (e.g.
``industry in ["travel", "hospitality"] and risk >= 0.6``, see ``docs/segments.md``) or as a
saved segment's name; neither means every customer. Filters are compiled to SQL by the
segments service, never evaluated.
"""

from __future__ import annotations

from sqlalchemy import Select
from sqlalchemy.orm import Session

from keepwell.errors import InvalidInput
from keepwell.segments import service as segments


def check(*, db_session: Session, segment_filter: str | None, segment_name: str | None) -> None:
    """Raise :class:`InvalidInput` / :class:`NotFound` unless the audience can be resolved."""
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
        segment = segments.get_segment(db_session=db_session, name_or_id=segment_name)
        return segments.member_ids(db_session=db_session, segment=segment)
    if segment_filter is None:
        return None
    return segments.matching_customer_ids(db_session=db_session, filter_text=segment_filter)
