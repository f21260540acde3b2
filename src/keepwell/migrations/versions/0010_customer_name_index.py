"""index customers.name (the staff customers list sorts by it; 1M customers: 1.9 s -> ms)

Revision ID: 0010_customer_name_index
Revises: 0009_merge_domains
Create Date: 2026-11-22
"""

from __future__ import annotations

from alembic import op

revision = "0010_customer_name_index"
down_revision = "0009_merge_domains"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Index the customer name."""
    op.create_index("ix_customers_name", "customers", ["name"])


def downgrade() -> None:
    """Drop the index."""
    op.drop_index("ix_customers_name", table_name="customers")
