"""Ready-made journeys: onboarding (day 0 / day 7), renewal reminders, win-back.

E-mail steps name templates (``onboarding-day-0``, ...) in ``keepwell.campaigns``;
:func:`install_defaults` adds plain starting versions of those that do not exist yet (edit them
with ``keepwell templates``). Every e-mail step skips customers whose address is suppressed, so
a customer who unsubscribed is only reached through a task for their CSM.
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


_SIGN_OFF = (
    "<p>{% if owner %}{{ owner.name }}{% else %}The team{% endif %}</p>"
    '<p style="font-size:12px"><a href="{{ unsubscribe_url }}">Unsubscribe</a></p>'
)
_HELLO = '<p>Hi {{ customer.first_name | default("there") }},</p>'

DEFAULT_TEMPLATES: dict[str, tuple[str, str]] = {
    "onboarding-day-0": (
        "Welcome to your new account, {{ customer.first_name | default('there') }}",
        _HELLO + "<p>Welcome aboard! Reply to this e-mail if anything is unclear.</p>",
    ),
    "onboarding-day-7": (
        "Your first week: three things worth trying",
        _HELLO + "<p>You have had a week with us. Customers who stay set up their team, "
        "connect their data and share a first report in the first month.</p>",
    ),
    "renewal-reminder-30": (
        "Your {{ plan | default('subscription') }} renews in 30 days",
        _HELLO + "<p>Your {{ plan | default('subscription') }} ({{ mrr }} a month) renews in "
        "30 days. Nothing to do if you are happy; reply if you want to change anything.</p>",
    ),
    "renewal-reminder-7": (
        "Your {{ plan | default('subscription') }} renews in a week",
        _HELLO + "<p>A reminder that your {{ plan | default('subscription') }} renews in "
        "7 days.</p>",
    ),
    "win-back-lapsed": (
        "We have not seen you for a while",
        _HELLO + "<p>You have not used your account lately. Is something in the way? Reply "
        "and we will help.</p>",
    ),
    "win-back-churned-1": (
        "We would like to have you back",
        _HELLO + "<p>Your account is closed, and your data is still here. Come back any "
        "time; reply if something made you leave.</p>",
    ),
    "win-back-churned-2": (
        "A last note from us",
        _HELLO + "<p>This is our last note. If you ever need us again, your data is waiting.</p>",
    ),
}
"""Starting versions of the templates the default journeys send (subject, HTML body)."""


def install_defaults(*, db_session: Session) -> list[str]:
    """Create the ready-made journeys (and their rule and e-mail templates) that do not exist
    yet; return what was created."""
    from keepwell.automation import service as rules
    from keepwell.campaigns import service as campaigns
    from keepwell.errors import NotFound
    from keepwell.journeys.service import create_journey, get_journey

    created: list[str] = []
    for name, (subject, html) in DEFAULT_TEMPLATES.items():
        try:
            campaigns.get_template(db_session=db_session, name_or_id=name)
        except NotFound:
            campaigns.create_template(
                db_session=db_session, name=name, subject=subject, html=html + _SIGN_OFF
            )
            created.append(f"template {name}")
    for definition in DEFAULT_JOURNEYS:
        if get_journey(db_session=db_session, name_or_id=definition["name"]) is None:
            journey: Journey = create_journey(db_session=db_session, definition=definition)
            created.append(journey.name)
    for definition in DEFAULT_RULES:
        if rules.get_rule(db_session=db_session, name_or_id=definition["name"]) is None:
            rules.create_rule(db_session=db_session, definition=definition)
            created.append(f"rule {definition['name']} (disabled)")
    return created
