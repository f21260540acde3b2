"""e-mail templates and campaigns (variants, recipients)

Revision ID: 0007_campaigns
Revises: 0002
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import keepwell.models

revision = "0007_campaigns"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "campaigns",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "draft",
                "scheduled",
                "sending",
                "sent",
                "cancelled",
                name="campaignstatus",
                native_enum=False,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column(
            "segment_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("segment_name", sa.String(length=120), nullable=True),
        sa.Column("filter_text", sa.Text(), nullable=True),
        sa.Column("holdout_percent", sa.Float(), nullable=False),
        sa.Column("seed", sa.Integer(), nullable=False),
        sa.Column("send_date", sa.Date(), nullable=True),
        sa.Column("send_time", sa.String(length=5), nullable=True),
        sa.Column("launched_at", keepwell.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("cancelled_at", keepwell.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", keepwell.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", keepwell.models.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "holdout_percent >= 0 AND holdout_percent < 100",
            name=op.f("ck_campaigns_holdout_percent_range"),
        ),
        sa.CheckConstraint(
            "segment_id IS NOT NULL OR filter_text IS NOT NULL",
            name=op.f("ck_campaigns_has_audience"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaigns")),
        sa.UniqueConstraint("name", name=op.f("uq_campaigns_name")),
    )
    op.create_table(
        "email_templates",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("subject", sa.String(length=998), nullable=False),
        sa.Column("html", sa.Text(), nullable=False),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", keepwell.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", keepwell.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_email_templates")),
        sa.UniqueConstraint("name", name=op.f("uq_email_templates_name")),
    )
    op.create_table(
        "campaign_variants",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "campaign_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column(
            "template_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("percent", sa.Float(), nullable=False),
        sa.CheckConstraint(
            "percent > 0 AND percent <= 100", name=op.f("ck_campaign_variants_percent_range")
        ),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_campaign_variants_campaign_id_campaigns"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["template_id"],
            ["email_templates.id"],
            name=op.f("fk_campaign_variants_template_id_email_templates"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaign_variants")),
        sa.UniqueConstraint("campaign_id", "name", name="uq_campaign_variants_campaign_name"),
    )
    with op.batch_alter_table("campaign_variants", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_campaign_variants_campaign_id"), ["campaign_id"], unique=False
        )

    op.create_table(
        "campaign_recipients",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "campaign_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "customer_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "variant_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("address", sa.String(length=320), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "holdout",
                "pending",
                "queued",
                "suppressed",
                "failed",
                "cancelled",
                name="recipientstatus",
                native_enum=False,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("not_before", keepwell.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column(
            "message_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_campaign_recipients_campaign_id_campaigns"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_campaign_recipients_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["variant_id"],
            ["campaign_variants.id"],
            name=op.f("fk_campaign_recipients_variant_id_campaign_variants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaign_recipients")),
        sa.UniqueConstraint("campaign_id", "customer_id", name="uq_campaign_recipients_customer"),
    )
    with op.batch_alter_table("campaign_recipients", schema=None) as batch_op:
        batch_op.create_index(
            "ix_campaign_recipients_campaign_status", ["campaign_id", "status"], unique=False
        )
        batch_op.create_index("ix_campaign_recipients_customer_id", ["customer_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("campaign_recipients", schema=None) as batch_op:
        batch_op.drop_index("ix_campaign_recipients_customer_id")
        batch_op.drop_index("ix_campaign_recipients_campaign_status")

    op.drop_table("campaign_recipients")
    with op.batch_alter_table("campaign_variants", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_campaign_variants_campaign_id"))

    op.drop_table("campaign_variants")
    op.drop_table("email_templates")
    op.drop_table("campaigns")
