"""Imports every domain's tables so ``Base.metadata`` is complete (for Alembic and tests)."""

from keepwell.automation.models import AlertFiring, AlertRule, Playbook
from keepwell.billing.models import Invoice, Order, Subscription
from keepwell.campaigns.models import Campaign, CampaignRecipient, CampaignVariant, EmailTemplate
from keepwell.customers.models import Contact, Customer, Note, Tag, customer_tags
from keepwell.deals.models import Deal, DealStage, DealStageChange
from keepwell.email.models import EmailEvent, EmailMessage, EmailSuppression
from keepwell.health.models import HealthScore
from keepwell.imports.models import ImportRun
from keepwell.journeys.models import Journey, JourneyEnrollment, JourneyStep, JourneyStepRun
from keepwell.models import Base
from keepwell.risk.models import RiskScore
from keepwell.segments.models import (
    CustomerStats,
    Segment,
    SegmentMembership,
    SegmentMembershipChange,
)
from keepwell.support.models import Ticket
from keepwell.surveys.models import SurveyResponse
from keepwell.tasks.models import AssignmentRule, Task
from keepwell.timeline.models import TimelineEntry
from keepwell.users.models import ApiToken, LoginAttempt, StaffUser
from keepwell.web.models import WebhookEvent

metadata = Base.metadata

__all__ = [
    "AlertFiring",
    "AlertRule",
    "ApiToken",
    "AssignmentRule",
    "Base",
    "Campaign",
    "CampaignRecipient",
    "CampaignVariant",
    "Contact",
    "Customer",
    "CustomerStats",
    "Deal",
    "DealStage",
    "DealStageChange",
    "EmailEvent",
    "EmailMessage",
    "EmailSuppression",
    "EmailTemplate",
    "HealthScore",
    "ImportRun",
    "Invoice",
    "Journey",
    "JourneyEnrollment",
    "JourneyStep",
    "JourneyStepRun",
    "LoginAttempt",
    "Note",
    "Order",
    "Playbook",
    "RiskScore",
    "Segment",
    "SegmentMembership",
    "SegmentMembershipChange",
    "StaffUser",
    "Subscription",
    "SurveyResponse",
    "Tag",
    "Task",
    "Ticket",
    "TimelineEntry",
    "WebhookEvent",
    "customer_tags",
    "metadata",
]
