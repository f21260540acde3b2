"""Campaign service: templates, campaigns, launch into the outbox, one-off template e-mails.

A campaign's audience is a segment (or a filter) at launch, minus customers without a usable
address and minus suppressed addresses. It is split at random (reproducibly, from the
campaign's seed) into an optional holdout group that gets nothing and the A/B variants; the
snapshot is stored per recipient. :func:`launch` then renders each variant's template and
queues one outbox message per recipient with ``dedup_key = campaign:<id>:<customer>``, so a
second launch (after a crash, or by mistake) never queues anyone twice. Analytics are in
:mod:`keepwell.campaigns.analytics`.

Services flush; the caller commits.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from keepwell.campaigns.analytics import CampaignResults, results
from keepwell.campaigns.assignment import assign
from keepwell.campaigns.context import load_addresses, load_merge_rows
from keepwell.campaigns.models import (
    Campaign,
    CampaignRecipient,
    CampaignStatus,
    CampaignVariant,
    EmailTemplate,
    RecipientStatus,
)
from keepwell.campaigns.schedule import local_send_at, parse_time_of_day
from keepwell.campaigns.templates import CompiledTemplate, compile_template, compiled, render_row
from keepwell.config import Settings
from keepwell.email import service as email_service
from keepwell.email.addresses import normalize_address, suppression_key
from keepwell.email.models import EmailMessage, EmailSuppression
from keepwell.errors import AlreadyExists, InvalidInput, NotFound
from keepwell.models import row_id, utcnow
from keepwell.timeline import service as timeline
from keepwell.timeline.models import TimelineEntry

__all__ = [
    "CampaignResults",
    "LaunchReport",
    "VariantIn",
    "cancel_campaign",
    "create_campaign",
    "create_template",
    "delete_template",
    "get_campaign",
    "get_template",
    "launch",
    "list_campaigns",
    "list_templates",
    "recipients_of",
    "refresh_status",
    "results",
    "send_template_email",
    "update_template",
]

MAX_NAME = 120
BATCH = 1000
UNSUBSCRIBE_PLACEHOLDER = "keepwell:unsubscribe-url"
"""Rendered in place of ``unsubscribe_url``; replaced by the message's signed link once queued."""


# --- templates -------------------------------------------------------------------------------


def _clean_name(name: str, what: str) -> str:
    clean = (name or "").strip() if isinstance(name, str) else ""
    if not clean:
        raise InvalidInput(f"a {what} needs a name", field="name")
    if len(clean) > MAX_NAME:
        raise InvalidInput(
            f"name is {len(clean)} characters long", field="name", expected=f"<= {MAX_NAME}"
        )
    return clean


def _by_name_or_id(db_session: Session, model, name_or_id: str | int, what: str, hint: str):
    row = None
    if not isinstance(name_or_id, int):
        ref = name_or_id.strip()
        row = db_session.scalars(select(model).where(model.name == ref)).first()
    found_id = row_id(name_or_id)
    if row is None and found_id is not None:
        row = db_session.get(model, found_id)
    if row is None:
        raise NotFound(f"no {what} {name_or_id!r}", hint=hint)
    return row


def get_template(*, db_session: Session, name_or_id: str | int) -> EmailTemplate:
    """The template with this name (or id: an int or ``#<id>``); raises :class:`NotFound`."""
    return _by_name_or_id(
        db_session,
        EmailTemplate,
        name_or_id,
        "e-mail template",
        "`keepwell templates list` shows the templates",
    )


def list_templates(*, db_session: Session) -> list[EmailTemplate]:
    """Every template, by name."""
    return list(db_session.scalars(select(EmailTemplate).order_by(EmailTemplate.name)))


def create_template(
    *, db_session: Session, name: str, subject: str, html: str, text: str | None = None
) -> EmailTemplate:
    """Validate and store a template (see :func:`~keepwell.campaigns.templates.compile_template`).

    ``text=None`` generates the plain text from the HTML at render time. Raises
    :class:`InvalidInput` (part, line, field) or :class:`AlreadyExists`.
    """
    clean = _clean_name(name, "template")
    compile_template(subject=subject, html=html, text=text, name=clean)
    if db_session.scalar(select(EmailTemplate.id).where(EmailTemplate.name == clean)):
        raise AlreadyExists(f"a template named {clean!r} exists")
    row = EmailTemplate(
        name=clean, subject=subject.strip(), html=html, text=text or None, version=1
    )
    db_session.add(row)
    db_session.flush()
    return row


def update_template(
    *,
    db_session: Session,
    template: EmailTemplate,
    subject: str | None = None,
    html: str | None = None,
    text: str | None = None,
) -> EmailTemplate:
    """Change a template's parts (validated first; ``version`` goes up by one)."""
    new_subject = template.subject if subject is None else subject.strip()
    new_html = template.html if html is None else html
    new_text = template.text if text is None else (text or None)
    compile_template(subject=new_subject, html=new_html, text=new_text, name=template.name)
    template.subject, template.html, template.text = new_subject, new_html, new_text
    template.version += 1
    db_session.flush()
    return template


def delete_template(*, db_session: Session, template: EmailTemplate) -> None:
    """Delete a template that no campaign uses (else :class:`InvalidInput`)."""
    used = db_session.scalars(
        select(Campaign.name)
        .join(CampaignVariant, CampaignVariant.campaign_id == Campaign.id)
        .where(CampaignVariant.template_id == template.id)
        .distinct()
    ).all()
    if used:
        raise InvalidInput(
            f"template {template.name!r} is used by campaign(s) {', '.join(sorted(used))}",
            field="template",
        )
    db_session.delete(template)
    db_session.flush()


# --- campaigns -------------------------------------------------------------------------------


@dataclass(frozen=True)
class VariantIn:
    """One A/B variant to create: a name (e.g. "A"), a template and its share in percent."""

    name: str
    template: str | int | EmailTemplate
    percent: float = 100.0


def _check_variants(db_session: Session, variants: Sequence[VariantIn]) -> list[CampaignVariant]:
    if not variants:
        raise InvalidInput("a campaign needs at least one variant", field="variants")
    names: set[str] = set()
    rows = []
    for i, variant in enumerate(variants, start=1):
        name = (variant.name or "").strip()
        if not name or len(name) > 32:
            raise InvalidInput(
                f"variant {i} has name {variant.name!r}", field="variants.name", expected="1-32"
            )
        if name in names:
            raise InvalidInput(f"two variants are named {name!r}", field="variants.name")
        names.add(name)
        if not isinstance(variant.percent, int | float) or not 0 < variant.percent <= 100:
            raise InvalidInput(
                f"variant {name!r} has {variant.percent}%",
                field="variants.percent",
                expected="0 < x <= 100",
            )
        template = (
            variant.template
            if isinstance(variant.template, EmailTemplate)
            else get_template(db_session=db_session, name_or_id=variant.template)
        )
        rows.append(CampaignVariant(name=name, template=template, percent=float(variant.percent)))
    total = sum(r.percent for r in rows)
    if abs(total - 100) > 1e-6:
        raise InvalidInput(
            f"variant shares add up to {total:g}%", field="variants.percent", expected="100%"
        )
    return rows


def create_campaign(
    *,
    db_session: Session,
    name: str,
    variants: Sequence[VariantIn],
    segment: str | int | None = None,
    filter_text: str | None = None,
    holdout_percent: float = 0.0,
    seed: int | None = None,
    send_date: date | None = None,
    send_time: str | None = None,
) -> Campaign:
    """Create a draft campaign.

    Args:
        name: unique name.
        variants: the A/B variants; shares must add up to 100.
        segment: the audience segment (name or id), or
        filter_text: a segment filter (e.g. ``industry = "travel" and mrr >= 100``).
        holdout_percent: share of the audience (0 <= x < 100) that gets nothing (control).
        seed: makes the random assignment reproducible (default: a random one, stored).
        send_date, send_time: send on this day at this local time ("HH:MM") in each
            recipient's time zone; both or neither (then: as soon as launched).
    """
    from keepwell.segments import service as segments

    clean = _clean_name(name, "campaign")
    if db_session.scalar(select(Campaign.id).where(Campaign.name == clean)):
        raise AlreadyExists(f"a campaign named {clean!r} exists")
    if (segment is None) == (filter_text is None):
        raise InvalidInput(
            "give either a segment or a filter", field="segment", expected="exactly one of them"
        )
    segment_row = None
    if segment is not None:
        segment_row = segments.get_segment(db_session=db_session, name_or_id=segment)
    else:
        if not isinstance(filter_text, str) or not filter_text.strip():
            raise InvalidInput("the filter is empty", field="filter")
        segments.matching_customer_ids(db_session=db_session, filter_text=filter_text)
    if not isinstance(holdout_percent, int | float) or not 0 <= holdout_percent < 100:
        raise InvalidInput(
            f"holdout of {holdout_percent}%", field="holdout_percent", expected="0 <= x < 100"
        )
    if (send_date is None) != (send_time is None):
        raise InvalidInput("give both a send date and a send time, or neither", field="send_time")
    if send_time is not None:
        send_time = parse_time_of_day(send_time).strftime("%H:%M")
    if seed is not None and (not isinstance(seed, int) or not 0 <= seed < 2**31):
        raise InvalidInput(f"seed {seed!r}", field="seed", expected="an integer 0 <= x < 2^31")
    rows = _check_variants(db_session, variants)
    campaign = Campaign(
        name=clean,
        status=CampaignStatus.draft,
        segment_id=segment_row.id if segment_row else None,
        segment_name=segment_row.name if segment_row else None,
        filter_text=filter_text.strip() if filter_text else None,
        holdout_percent=float(holdout_percent),
        seed=seed if seed is not None else random.SystemRandom().randrange(2**31),
        send_date=send_date,
        send_time=send_time,
        variants=rows,
    )
    db_session.add(campaign)
    db_session.flush()
    return campaign


def get_campaign(*, db_session: Session, name_or_id: str | int) -> Campaign:
    """The campaign with this name (or id: an int or ``#<id>``); raises :class:`NotFound`."""
    return _by_name_or_id(
        db_session, Campaign, name_or_id, "campaign", "`keepwell campaigns list` shows them"
    )


def list_campaigns(*, db_session: Session) -> list[Campaign]:
    """Every campaign, newest first (statuses refreshed from the outbox)."""
    rows = list(db_session.scalars(select(Campaign).order_by(Campaign.id.desc())))
    for row in rows:
        refresh_status(db_session=db_session, campaign=row)
    return rows


def recipients_of(
    *, db_session: Session, campaign: Campaign, limit: int = 100, offset: int = 0
) -> list[CampaignRecipient]:
    """A page of the campaign's audience snapshot, by customer id."""
    return list(
        db_session.scalars(
            select(CampaignRecipient)
            .where(CampaignRecipient.campaign_id == campaign.id)
            .order_by(CampaignRecipient.customer_id)
            .limit(limit)
            .offset(offset)
        )
    )


# --- launch ------------------------------------------------------------------------------------


@dataclass
class LaunchReport:
    """What :func:`launch` did.

    ``audience`` = customers in the snapshot (variants + holdout); ``excluded`` counts who was
    left out of it and why (no address, invalid address, suppressed); ``queued`` = messages
    put in the outbox by this call; ``not_queued`` = refused by the outbox (suppressed since,
    or queued before); ``failed`` = could not be rendered (``errors`` has examples).
    ``unknown_time_zones`` = recipients scheduled in UTC because their zone is unknown;
    ``to_queue`` = recipients this call had to queue (progress: queued + not_queued + failed).
    """

    campaign_id: int
    status: str
    relaunch: bool
    audience: int = 0
    holdout: int = 0
    by_variant: dict[str, int] = field(default_factory=dict)
    excluded: dict[str, int] = field(default_factory=dict)
    queued: int = 0
    not_queued: int = 0
    failed: int = 0
    unknown_time_zones: int = 0
    to_queue: int = 0
    first_send_at: datetime | None = None
    last_send_at: datetime | None = None
    errors: list[str] = field(default_factory=list)


def _audience_ids(db_session: Session, campaign: Campaign, now: datetime) -> list[int]:
    from keepwell.segments import service as segments

    if campaign.filter_text is not None:
        stmt = segments.matching_customer_ids(
            db_session=db_session, filter_text=campaign.filter_text, now=now
        )
    else:
        segment = segments.get_segment(db_session=db_session, name_or_id=campaign.segment_id)
        stmt = segments.member_ids(db_session=db_session, segment=segment, now=now)
    return sorted(set(db_session.scalars(stmt)))


def _batches(items: Sequence[Any], size: int = BATCH) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _suppressed(db_session: Session, keys: Sequence[str]) -> set[str]:
    """Which of these suppression keys are suppressed (one query; the outbox re-checks)."""
    if not keys:
        return set()
    return set(
        db_session.scalars(
            select(EmailSuppression.address).where(EmailSuppression.address.in_(list(keys)))
        )
    )


def _snapshot(db_session: Session, campaign: Campaign, report: LaunchReport, now: datetime) -> None:
    """Take the audience snapshot: exclusions, assignment and send time per recipient."""
    reachable: dict[int, tuple[str, str]] = {}
    excluded: Counter[str] = Counter()
    for batch in _batches(_audience_ids(db_session, campaign, now)):
        found = load_addresses(db_session=db_session, customer_ids=batch)
        candidates: dict[int, tuple[str, str]] = {}
        for customer_id in batch:
            address, zone = found.get(customer_id, (None, "UTC"))
            if not address:
                excluded["no address"] += 1
                continue
            try:
                candidates[customer_id] = (normalize_address(address), zone)
            except InvalidInput:
                excluded["invalid address"] += 1
        blocked = _suppressed(db_session, [suppression_key(a) for a, _ in candidates.values()])
        for customer_id, (address, zone) in candidates.items():
            if suppression_key(address) in blocked:
                excluded["suppressed"] += 1
            else:
                reachable[customer_id] = (address, zone)
    variants = list(campaign.variants)
    groups = assign(
        list(reachable),
        seed=campaign.seed,
        holdout_percent=campaign.holdout_percent,
        variant_percents=[v.percent for v in variants],
    )
    send_time = parse_time_of_day(campaign.send_time) if campaign.send_time else None
    rows = []
    for customer_id in sorted(groups):
        address, zone = reachable[customer_id]
        index = groups[customer_id]
        not_before = None
        if campaign.send_date is not None and send_time is not None:
            not_before, known = local_send_at(campaign.send_date, send_time, zone)
            report.unknown_time_zones += not known
        rows.append(
            {
                "campaign_id": campaign.id,
                "customer_id": customer_id,
                "variant_id": None if index is None else variants[index].id,
                "address": address,
                "status": RecipientStatus.holdout if index is None else RecipientStatus.pending,
                "not_before": not_before,
            }
        )
    held_out = [
        _timeline_row(
            row["customer_id"],
            f"Held out of campaign {campaign.name!r} (control group)",
            {"campaign": campaign.id},
            now,
        )
        for row in rows
        if row["status"] is RecipientStatus.holdout
    ]
    for batch in _batches(rows):
        db_session.execute(insert(CampaignRecipient), list(batch))
    for batch in _batches(held_out):
        db_session.execute(insert(TimelineEntry), list(batch))
    report.excluded = dict(excluded)
    campaign.launched_at = now
    db_session.flush()


def _timeline_row(customer_id: int, title: str, detail: dict[str, Any], at: datetime) -> dict:
    """A timeline entry for a bulk insert (one statement per batch; see :func:`launch`)."""
    return {
        "customer_id": customer_id,
        "occurred_at": at,
        "kind": "campaign",
        "title": title[:500],
        "detail": detail,
    }


def _finished_bodies(
    settings: Settings, message: EmailMessage, html: str, text: str
) -> tuple[str, str]:
    """The message's bodies with its own signed unsubscribe link, links tracked, a pixel."""
    from keepwell.email import tokens
    from keepwell.email.links import track_links

    link = tokens.unsubscribe_url(settings, message)
    html = track_links(html, settings=settings, message=message)
    return html.replace(UNSUBSCRIBE_PLACEHOLDER, link), text.replace(UNSUBSCRIBE_PLACEHOLDER, link)


def _queue_pending(
    db_session: Session,
    settings: Settings,
    campaign: Campaign,
    report: LaunchReport,
    now: datetime,
    on_batch: Callable[[LaunchReport], None] | None,
) -> None:
    """Render and queue the pending recipients, a batch at a time.

    Per message the outbox's :func:`~keepwell.email.service.queue_message` runs (its checks,
    its insert); the finished bodies, the recipients' states and the timeline entries are
    written with one statement each per batch.
    """
    templates: dict[int, CompiledTemplate] = {v.id: compiled(v.template) for v in campaign.variants}
    names = {v.id: v.name for v in campaign.variants}
    while True:
        pending = db_session.execute(
            select(
                CampaignRecipient.id,
                CampaignRecipient.customer_id,
                CampaignRecipient.variant_id,
                CampaignRecipient.address,
                CampaignRecipient.not_before,
            )
            .where(
                CampaignRecipient.campaign_id == campaign.id,
                CampaignRecipient.status == RecipientStatus.pending,
            )
            .order_by(CampaignRecipient.id)
            .limit(BATCH)
        ).all()
        if not pending:
            return
        merge = load_merge_rows(
            db_session=db_session, customer_ids=[r.customer_id for r in pending], at=now
        )
        states: list[dict[str, Any]] = []
        bodies: list[dict[str, Any]] = []
        entries: list[dict[str, Any]] = []
        for recipient in pending:
            row = merge.get(recipient.customer_id)
            variant = names[recipient.variant_id]
            if row is None:  # the customer was deleted since the snapshot
                states.append(_state(recipient.id, RecipientStatus.failed, "customer deleted"))
                report.failed += 1
                continue
            rendered = render_row(
                templates[recipient.variant_id], row, unsubscribe_url=UNSUBSCRIBE_PLACEHOLDER
            )
            if rendered.error:
                states.append(_state(recipient.id, RecipientStatus.failed, rendered.error))
                report.failed += 1
                if len(report.errors) < 5:
                    report.errors.append(f"customer {recipient.customer_id}: {rendered.error}")
                continue
            message = email_service.queue_message(
                db_session=db_session,
                customer_id=recipient.customer_id,
                to=recipient.address,
                subject=rendered.subject,
                html=rendered.html,
                text=rendered.text,
                kind="campaign",
                campaign_id=campaign.id,
                variant=variant,
                dedup_key=f"campaign:{campaign.id}:{recipient.customer_id}",
                not_before=recipient.not_before,
            )
            if message is None:
                states.append(
                    _state(
                        recipient.id,
                        RecipientStatus.suppressed,
                        "suppressed address, or queued before",
                    )
                )
                report.not_queued += 1
                continue
            html, text = _finished_bodies(settings, message, rendered.html, rendered.text)
            bodies.append({"id": message.id, "html": html, "text": text})
            db_session.expunge(message)  # its bodies are written below, in bulk
            states.append(_state(recipient.id, RecipientStatus.queued, None, message.id))
            report.queued += 1
            entries.append(
                _timeline_row(
                    recipient.customer_id,
                    f"Campaign {campaign.name!r}: e-mail queued (variant {variant})",
                    {"campaign": campaign.id, "variant": variant, "message": message.id},
                    now,
                )
            )
        if bodies:
            db_session.execute(update(EmailMessage), bodies)
        db_session.execute(update(CampaignRecipient), states)
        if entries:
            db_session.execute(insert(TimelineEntry), entries)
        db_session.flush()
        if on_batch is not None:
            on_batch(report)


def _state(
    recipient_id: int, status: RecipientStatus, error: str | None, message_id: int | None = None
) -> dict[str, Any]:
    return {"id": recipient_id, "status": status, "error": error, "message_id": message_id}


def _summarise(db_session: Session, campaign: Campaign, report: LaunchReport) -> None:
    """Fill the report's group sizes, send window and what is left to queue."""
    names = {v.id: v.name for v in campaign.variants}
    counts = db_session.execute(
        select(CampaignRecipient.variant_id, func.count())
        .where(CampaignRecipient.campaign_id == campaign.id)
        .group_by(CampaignRecipient.variant_id)
    ).all()
    report.holdout = sum(n for vid, n in counts if vid is None)
    report.by_variant = {names[vid]: n for vid, n in counts if vid is not None}
    report.audience = sum(n for _, n in counts)
    first, last = db_session.execute(
        select(func.min(CampaignRecipient.not_before), func.max(CampaignRecipient.not_before))
        .where(CampaignRecipient.campaign_id == campaign.id)
        .where(CampaignRecipient.variant_id.is_not(None))
    ).one()
    report.first_send_at, report.last_send_at = _aware(first), _aware(last)
    report.to_queue = (
        db_session.scalar(
            select(func.count())
            .select_from(CampaignRecipient)
            .where(
                CampaignRecipient.campaign_id == campaign.id,
                CampaignRecipient.status == RecipientStatus.pending,
            )
        )
        or 0
    )


def launch(
    *,
    db_session: Session,
    settings: Settings,
    campaign: Campaign,
    now: datetime | None = None,
    on_batch: Callable[[LaunchReport], None] | None = None,
) -> LaunchReport:
    """Snapshot the audience (first launch only) and queue every pending recipient's message.

    Idempotent: launching again only queues recipients not queued yet (the outbox refuses a
    second message with the same ``campaign:<id>:<customer>`` key), so a launch cut short
    is finished by the next one. A cancelled campaign cannot be launched. Status becomes
    ``scheduled`` when the first send time is still ahead, else ``sending``.

    ``on_batch(report)`` is called after the snapshot and after each batch of 1,000 queued
    recipients: the CLI commits there (so the sender can start, and a crash keeps what was
    done) and moves its progress bar. Each recipient gets a timeline entry (queued, or held
    out), written in one statement per batch, as the sender does for "sent".
    """
    when = now or utcnow()
    if campaign.status is CampaignStatus.cancelled:
        raise InvalidInput(f"campaign {campaign.name!r} was cancelled", field="status")
    relaunch = campaign.launched_at is not None
    report = LaunchReport(campaign_id=campaign.id, status=str(campaign.status), relaunch=relaunch)
    if not relaunch:
        _snapshot(db_session, campaign, report, when)
    _summarise(db_session, campaign, report)
    if campaign.status in (CampaignStatus.draft, CampaignStatus.scheduled):
        ahead = report.first_send_at is not None and report.first_send_at > when
        campaign.status = CampaignStatus.scheduled if ahead else CampaignStatus.sending
    db_session.flush()
    if on_batch is not None:
        on_batch(report)
    with db_session.no_autoflush:  # the outbox flushes once per message; no extra autoflushes
        _queue_pending(db_session, settings, campaign, report, when, on_batch)
    refresh_status(db_session=db_session, campaign=campaign, now=when)
    report.status = str(campaign.status)
    return report


def _aware(value: datetime | str | None) -> datetime | None:
    """MIN()/MAX() over a UTC column: SQLite gives text or a naive datetime."""
    from datetime import UTC

    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def refresh_status(
    *, db_session: Session, campaign: Campaign, now: datetime | None = None
) -> CampaignStatus:
    """Move a launched campaign on: scheduled -> sending at the first send time, and
    scheduled/sending -> sent once nothing of it is left in the outbox."""
    if campaign.status not in (CampaignStatus.scheduled, CampaignStatus.sending):
        return campaign.status
    when = now or utcnow()
    pending_recipients = db_session.scalar(
        select(func.count())
        .select_from(CampaignRecipient)
        .where(
            CampaignRecipient.campaign_id == campaign.id,
            CampaignRecipient.status == RecipientStatus.pending,
        )
    )
    outbox = email_service.outbox_status(db_session=db_session, campaign_id=campaign.id)
    if not pending_recipients and outbox.pending == 0:
        campaign.status = CampaignStatus.sent
    elif campaign.status is CampaignStatus.scheduled:
        first = _aware(
            db_session.scalar(
                select(func.min(CampaignRecipient.not_before)).where(
                    CampaignRecipient.campaign_id == campaign.id,
                    CampaignRecipient.variant_id.is_not(None),
                )
            )
        )
        if first is None or first <= when:
            campaign.status = CampaignStatus.sending
    db_session.flush()
    return campaign.status


def cancel_campaign(*, db_session: Session, campaign: Campaign) -> int:
    """Cancel a campaign that is not sent yet; returns how many queued messages were withdrawn.

    Messages already sent stay sent; recipients not queued yet are marked cancelled.
    """
    refresh_status(db_session=db_session, campaign=campaign)
    if campaign.status in (CampaignStatus.sent, CampaignStatus.cancelled):
        raise InvalidInput(
            f"campaign {campaign.name!r} is {campaign.status}",
            field="status",
            expected="draft, scheduled or sending",
        )
    withdrawn = 0
    if campaign.launched_at is not None:
        withdrawn = email_service.cancel(db_session=db_session, campaign_id=campaign.id)
        for recipient in db_session.scalars(
            select(CampaignRecipient).where(
                CampaignRecipient.campaign_id == campaign.id,
                CampaignRecipient.status == RecipientStatus.pending,
            )
        ):
            recipient.status = RecipientStatus.cancelled
    campaign.status = CampaignStatus.cancelled
    campaign.cancelled_at = utcnow()
    db_session.flush()
    return withdrawn


# --- one message -------------------------------------------------------------------------------


def send_template_email(
    *,
    db_session: Session,
    settings: Settings,
    template_name: str,
    customer_id: int,
    context: dict[str, Any] | None = None,
    dedup_key: str | None = None,
    kind: str = "transactional",
    not_before: datetime | None = None,
) -> EmailMessage | None:
    """Queue one personalised message from a stored template (automation, journeys).

    ``context`` fills ``data.<key>`` in the template. Returns the outbox row, or None when
    the address is suppressed or ``dedup_key`` was used before. Raises :class:`NotFound`
    (template, customer) and :class:`InvalidInput` (no address, a value the template needs
    is missing). ``kind`` is an outbox kind (``transactional`` has no List-Unsubscribe;
    ``journey`` and ``alert`` do).
    """
    template = get_template(db_session=db_session, name_or_id=template_name)
    if context is not None and not isinstance(context, dict):
        raise InvalidInput("context must be a mapping of names to values", field="context")
    rows = load_merge_rows(db_session=db_session, customer_ids=[customer_id], at=utcnow())
    row = rows.get(customer_id)
    if row is None:
        raise NotFound(f"no customer with id {customer_id}")
    if not row.address:
        raise InvalidInput(
            f"customer {customer_id} has no e-mail address",
            field="email",
            expected="an account or primary-contact e-mail",
        )
    rendered = render_row(
        compiled(template), row, unsubscribe_url=UNSUBSCRIBE_PLACEHOLDER, data=context
    )
    if rendered.error:
        raise InvalidInput(
            f"template {template.name!r} for customer {customer_id}: {rendered.error}",
            field="template",
        )
    message = email_service.queue_message(
        db_session=db_session,
        customer_id=customer_id,
        to=row.address,
        subject=rendered.subject,
        html=rendered.html,
        text=rendered.text,
        kind=kind,
        dedup_key=dedup_key,
        not_before=not_before,
    )
    if message is None:
        return None
    message.html, message.text = _finished_bodies(settings, message, rendered.html, rendered.text)
    db_session.flush()
    timeline.record(
        db_session=db_session,
        customer_id=customer_id,
        kind="email_queued",
        title=f"E-mail queued: {rendered.subject}"[:500],
        detail={"template": template.name, "message": message.id},
    )
    return message
