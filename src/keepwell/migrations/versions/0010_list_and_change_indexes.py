"""index customers.name and updated_at of the tables metrics read

The staff customers list sorts by name (1M customers: first page 1.88 s -> 0.05 s). The
metrics' data version reads each table's latest ``updated_at`` on every dashboard visit: an
index makes that a lookup instead of a scan (and lets SQLite count rows on a small index).

Revision ID: 0010_list_and_change_indexes
Revises: 0009_merge_domains
Create Date: 2026-11-22
"""

from __future__ import annotations

from alembic import op

revision = "0010_list_and_change_indexes"
down_revision = "0009_merge_domains"
branch_labels = None
depends_on = None

UPDATED_AT = ("customers", "subscriptions", "invoices", "orders", "survey_responses", "tickets")


def upgrade() -> None:
    """Create the indexes."""
    op.create_index("ix_customers_name", "customers", ["name"])
    for table in UPDATED_AT:
        op.create_index(f"ix_{table}_updated_at", table, ["updated_at"])


def downgrade() -> None:
    """Drop them."""
    for table in UPDATED_AT:
        op.drop_index(f"ix_{table}_updated_at", table_name=table)
    op.drop_index("ix_customers_name", table_name="customers")
