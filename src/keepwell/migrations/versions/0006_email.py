"""e-mail outbox, suppressions and tracking events

Revision ID: 0006_email
Revises: 0002
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import keepwell.models

revision = "0006_email"
down_revision = "0002"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "email_messages",
        sa.Column("id", ID, nullable=False),
        sa.Column("customer_id", ID, nullable=True),
        sa.Column("to_address", sa.String(length=320), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("html", sa.Text(), nullable=True),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column(
            "headers",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("campaign_id", sa.BigInteger(), nullable=True),
        sa.Column("variant", sa.String(length=32), nullable=True),
        sa.Column("dedup_key", sa.String(length=255), nullable=True),
        sa.Column("not_before", keepwell.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", keepwell.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("smtp_response", sa.Text(), nullable=True),
        sa.Column("message_id", sa.String(length=255), nullable=True),
        sa.Column("claimed_by", sa.String(length=64), nullable=True),
        sa.Column("sent_at", keepwell.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", keepwell.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", keepwell.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_email_messages_customer_id_customers"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_email_messages")),
        sa.UniqueConstraint("dedup_key", name=op.f("uq_email_messages_dedup_key")),
        sa.UniqueConstraint("message_id", name=op.f("uq_email_messages_message_id")),
    )
    with op.batch_alter_table("email_messages", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_email_messages_campaign_id"), ["campaign_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_email_messages_customer_id"), ["customer_id"], unique=False
        )
        batch_op.create_index("ix_email_messages_state_due", ["state", "not_before"], unique=False)

    op.create_table(
        "email_suppressions",
        sa.Column("id", ID, nullable=False),
        sa.Column("address", sa.String(length=320), nullable=False),
        sa.Column("reason", sa.String(length=16), nullable=False),
        sa.Column("source", sa.String(length=255), nullable=True),
        sa.Column("at", keepwell.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_email_suppressions")),
        sa.UniqueConstraint("address", name=op.f("uq_email_suppressions_address")),
    )

    op.create_table(
        "email_events",
        sa.Column("id", ID, nullable=False),
        sa.Column("message_id", ID, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column("at", keepwell.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["email_messages.id"],
            name=op.f("fk_email_events_message_id_email_messages"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_email_events")),
    )
    with op.batch_alter_table("email_events", schema=None) as batch_op:
        batch_op.create_index("ix_email_events_kind_at", ["kind", "at"], unique=False)
        batch_op.create_index("ix_email_events_message_kind", ["message_id", "kind"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("email_events", schema=None) as batch_op:
        batch_op.drop_index("ix_email_events_message_kind")
        batch_op.drop_index("ix_email_events_kind_at")
    op.drop_table("email_events")
    op.drop_table("email_suppressions")
    with op.batch_alter_table("email_messages", schema=None) as batch_op:
        batch_op.drop_index("ix_email_messages_state_due")
        batch_op.drop_index(batch_op.f("ix_email_messages_customer_id"))
        batch_op.drop_index(batch_op.f("ix_email_messages_campaign_id"))
    op.drop_table("email_messages")
