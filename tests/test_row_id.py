"""Name-or-id lookups: what counts as a row id, and huge numbers are "not found", not a 500."""

from __future__ import annotations

import pytest

from keepwell.customers import service as customers
from keepwell.errors import NotFound
from keepwell.journeys import service as journeys
from keepwell.models import row_id

HUGE = str(2**63)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (5, 5),
        ("5", 5),
        ("#5", 5),
        (" 12 ", 12),
        (str(2**63 - 1), 2**63 - 1),
        (HUGE, None),
        (-(2**63) - 1, None),
        ("²", None),
        ("5a", None),
        ("", None),
        (True, None),
    ],
)
def test_row_id(value, expected) -> None:
    assert row_id(value) == expected


def test_huge_ids_are_not_found(db_session) -> None:
    assert journeys.get_journey(db_session=db_session, name_or_id=HUGE) is None
    with pytest.raises(NotFound):
        customers.get_or_raise(db_session=db_session, ref=f"#{HUGE}")
