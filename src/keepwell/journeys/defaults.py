"""Ready-made journeys: onboarding (day 0 / day 7), renewal reminders, win-back.

E-mail steps name templates (``onboarding-day-0``, ...) that must exist in
``keepwell.campaigns``; every e-mail step skips customers whose address is suppressed, so a
customer who unsubscribed is only reached through a task for their CSM.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from keepwell.journeys.models import Journey

DEFAULT_JOURNEYS: list[dict[str, Any]] = [
    {
        "name": "Onboarding",
        "description": "Day-0 welcome and day-7 tips after the 'signup' event; a check-in task.",
        "trigger": "event",
        "trigger_value": "signup",
        "exit_conditions": [{"kind": "churned"}],
        "steps": [
            {"kind": "send_email", "template": "onboarding-day-0"},
            {"kind": "wait", "days": 7},
            {"kind": "send_email", "template": "onboarding-day-7"},
            {
                "kind": "create_task",
                "title": "First-week check-in with {{ customer.name }}",
                "body": "{{ customer.name }} signed up a week ago: check they are set up.",
                "due_in_days": 3,
            },
        ],
    },
    {
        "name": "Renewal reminder",
        "description": "Reminders 30 and 7 days before renewal (enrolled by the rule "
        "'Renewal in 30 days').",
        "trigger": "manual",
        "exit_conditions": [{"kind": "churned"}],
        "steps": [
            {"kind": "send_email", "template": "renewal-reminder-30"},
            {"kind": "wait", "before_renewal_days": 7},
            {"kind": "send_email", "template": "renewal-reminder-7"},
            {
                "kind": "create_task",
                "title": "Renewal in 7 days: {{ customer.name }}",
                "priority": "high",
                "due_in_days": 2,
            },
        ],
    },
    {
        "name": "Win-back lapsed",
        "description": "Entered the 'Lapsed' segment; ends when they use the product again.",
        "trigger": "segment",
        "trigger_value": "Lapsed",
        "exit_conditions": [
            {"kind": "churned"},
            {"kind": "filter", "filter": "days_since_last_event < 30"},
        ],
        "steps": [
            {"kind": "send_email", "template": "win-back-lapsed"},
            {"kind": "wait", "days": 7},
            {
                "kind": "create_task",
                "title": "Lapsed: call {{ customer.name }}",
                "body": "No product use for a month while paying. Why, and what would help?",
                "priority": "high",
                "due_in_days": 2,
            },
        ],
    },
    {
        "name": "Win-back churned",
        "description": "Customers who entered the 'Churned' segment; ends when they pay again.",
        "trigger": "segment",
        "trigger_value": "Churned",
        "exit_conditions": [{"kind": "became_paying"}],
        "steps": [
            {"kind": "send_email", "template": "win-back-churned-1"},
            {"kind": "wait", "days": 14},
            {"kind": "send_email", "template": "win-back-churned-2"},
            {"kind": "wait", "days": 14},
            {
                "kind": "create_task",
                "title": "Win back {{ customer.name }}",
                "body": "Churned a month ago and did not come back after two e-mails.",
                "due_in_days": 7,
            },
        ],
    },
]

DEFAULT_RULES: list[dict[str, Any]] = [
    {
        "name": "Renewal in 30 days",
        "description": "Enrols yearly subscribers in the 'Renewal reminder' journey.",
        "enabled": False,
        "trigger": "renewal_in",
        "params": {"days": 30, "billing_periods": ["year"]},
        "actions": [{"type": "enrol", "journey": "Renewal reminder"}],
    },
]
"""Installed disabled: enable with ``keepwell rules enable "Renewal in 30 days"``."""


def install_defaults(*, db_session: Session) -> list[str]:
    """Create the ready-made journeys (and their rule) that do not exist yet; return names."""
    from keepwell.automation import service as rules
    from keepwell.journeys.service import create_journey, get_journey

    created: list[str] = []
    for definition in DEFAULT_JOURNEYS:
        if get_journey(db_session=db_session, name_or_id=definition["name"]) is None:
            journey: Journey = create_journey(db_session=db_session, definition=definition)
            created.append(journey.name)
    for definition in DEFAULT_RULES:
        if rules.get_rule(db_session=db_session, name_or_id=definition["name"]) is None:
            rules.create_rule(db_session=db_session, definition=definition)
            created.append(f"rule {definition['name']} (disabled)")
    return created
