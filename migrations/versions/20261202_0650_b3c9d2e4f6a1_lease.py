"""Leases: one owner at a time for a mailbox folder's intake, taken over when it lapses

Revision ID: b3c9d2e4f6a1
Revises: 0003r
Create Date: 2026-12-02 06:50:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = "b3c9d2e4f6a1"
down_revision = "0003r"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "lease",
        sa.Column("name", sa.String(length=500), nullable=False),
        sa.Column("owner", sa.String(length=200), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_lease")),
    )


def downgrade() -> None:
    op.drop_table("lease")
