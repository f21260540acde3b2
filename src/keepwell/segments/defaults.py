"""Ready-made segments, installed by ``keepwell segments install-defaults`` (idempotent).

Crisis-hit industries default to :data:`CRISIS_INDUSTRIES` (industries hit by travel bans and
lockdowns); edit the saved segment's filter to match your market.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from keepwell.segments.models import Segment
from keepwell.segments.service import create_segment

CRISIS_INDUSTRIES = ("travel", "hospitality", "events", "aviation", "tourism", "restaurants")


@dataclass(frozen=True)
class DefaultSegment:
    """A ready-made segment: name, filter and what it is for."""

    name: str
    filter_text: str
    description: str


def _quoted(values: tuple[str, ...]) -> str:
    return "[" + ", ".join(f'"{v}"' for v in values) + "]"


DEFAULTS = (
    DefaultSegment("At risk", 'risk_band = "high"', "Latest churn-risk score is in the high band."),
    DefaultSegment(
        "Crisis-hit industries",
        f"industry in {_quoted(CRISIS_INDUSTRIES)}",
        "Industries hard hit by a crisis (travel bans, lockdowns): "
        + ", ".join(CRISIS_INDUSTRIES)
        + ".",
    ),
    DefaultSegment(
        "Forgotten zone",
        'usage_band = "less than monthly"',
        "Used the product before, but not in the last 28 days.",
    ),
    DefaultSegment(
        "Lapsed",
        "paying = true and days_since_last_event >= 30",
        "Still paying, but no event for 30 days or more.",
    ),
    DefaultSegment(
        "Churned",
        'status = "churned" or (ever_paid = true and paying = false)',
        "Marked churned, or paid before and has no paying subscription now.",
    ),
    DefaultSegment("Promoters", "nps >= 9", "Latest NPS answer is 9 or 10."),
    DefaultSegment("Detractors", "nps <= 6", "Latest NPS answer is 0 to 6."),
)


def install_defaults(*, db_session: Session, created_by: int | None = None) -> list[str]:
    """Create the ready-made segments that do not exist yet (by name); returns their names.

    Segments already present -- even if their filter was edited since -- are left alone.
    """
    have = set(db_session.scalars(select(Segment.name)))
    created = []
    for seg in DEFAULTS:
        if seg.name in have:
            continue
        create_segment(
            db_session=db_session,
            name=seg.name,
            filter_text=seg.filter_text,
            description=seg.description,
            created_by=created_by,
        )
        created.append(seg.name)
    return created
