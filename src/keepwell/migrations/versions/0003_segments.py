"""segments, memberships, membership history and customer stats

Revision ID: 0003_segments
Revises: 0002
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import keepwell.models

revision = "0003_segments"
down_revision = "0002"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "segments",
        sa.Column("id", ID, nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("filter_text", sa.Text(), nullable=True),
        sa.Column(
            "kind",
            sa.Enum("dynamic", "static", name="segmentkind", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column("created_by", ID, nullable=True),
        sa.Column("refreshed_at", keepwell.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("member_count", sa.Integer(), nullable=False),
        sa.Column("created_at", keepwell.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", keepwell.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by"],
            ["staff_users.id"],
            name=op.f("fk_segments_created_by_staff_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_segments")),
        sa.UniqueConstraint("name", name=op.f("uq_segments_name")),
    )
    op.create_table(
        "segment_memberships",
        sa.Column("segment_id", ID, nullable=False),
        sa.Column("customer_id", ID, nullable=False),
        sa.Column("entered_at", keepwell.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_segment_memberships_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["segment_id"],
            ["segments.id"],
            name=op.f("fk_segment_memberships_segment_id_segments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("segment_id", "customer_id", name=op.f("pk_segment_memberships")),
    )
    with op.batch_alter_table("segment_memberships", schema=None) as batch_op:
        batch_op.create_index("ix_segment_memberships_customer_id", ["customer_id"], unique=False)

    op.create_table(
        "segment_membership_changes",
        sa.Column("id", ID, nullable=False),
        sa.Column("segment_id", ID, nullable=False),
        sa.Column("customer_id", ID, nullable=False),
        sa.Column("change", sa.String(length=8), nullable=False),
        sa.Column("at", keepwell.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_segment_membership_changes_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["segment_id"],
            ["segments.id"],
            name=op.f("fk_segment_membership_changes_segment_id_segments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_segment_membership_changes")),
    )
    with op.batch_alter_table("segment_membership_changes", schema=None) as batch_op:
        batch_op.create_index(
            "ix_segment_membership_changes_customer_id", ["customer_id"], unique=False
        )
        batch_op.create_index(
            "ix_segment_membership_changes_segment_at", ["segment_id", "at"], unique=False
        )

    op.create_table(
        "customer_stats",
        sa.Column("customer_id", ID, nullable=False),
        sa.Column("as_of", keepwell.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("usage_band", sa.String(length=24), nullable=True),
        sa.Column("active_days_28d", sa.Integer(), nullable=False),
        sa.Column("events_28d", sa.Integer(), nullable=False),
        sa.Column("days_since_last_event", sa.Integer(), nullable=True),
        sa.Column("last_event_at", keepwell.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("refreshed_at", keepwell.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_customer_stats_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("customer_id", name=op.f("pk_customer_stats")),
    )
    with op.batch_alter_table("customer_stats", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_customer_stats_usage_band"), ["usage_band"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("customer_stats", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_customer_stats_usage_band"))
    op.drop_table("customer_stats")
    with op.batch_alter_table("segment_membership_changes", schema=None) as batch_op:
        batch_op.drop_index("ix_segment_membership_changes_segment_at")
        batch_op.drop_index("ix_segment_membership_changes_customer_id")
    op.drop_table("segment_membership_changes")
    with op.batch_alter_table("segment_memberships", schema=None) as batch_op:
        batch_op.drop_index("ix_segment_memberships_customer_id")
    op.drop_table("segment_memberships")
    op.drop_table("segments")
