"""merge the per-domain branches (segments, tasks and deals, automation, e-mail, campaigns, auth)

Revision ID: 0009_merge_domains
Revises: 0003_segments, 0004_tasks_deals, 0005_automation, 0006_email, 0007_campaigns, 0008_auth
Create Date: 2026-11-22
"""

from __future__ import annotations

revision = "0009_merge_domains"
down_revision = (
    "0003_segments",
    "0004_tasks_deals",
    "0005_automation",
    "0006_email",
    "0007_campaigns",
    "0008_auth",
)
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Nothing to change: this revision joins the branches into one head again."""


def downgrade() -> None:
    """Nothing to change."""
