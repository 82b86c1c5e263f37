"""Login sessions that can be revoked, and throttled failed logins

Revision ID: h0003
Revises: live01
Create Date: 2026-12-02 06:05:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = "h0003"
down_revision = "live01"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Existing cookies carry no epoch and are refused: everyone logs in once more.
    with op.batch_alter_table("agent", schema=None) as batch_op:
        batch_op.add_column(sa.Column("session_epoch", sa.Integer(), server_default="0", nullable=False))
    op.create_table(
        "login_throttle",
        sa.Column("key", sa.String(length=400), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("first_failure_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("blocked_until", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_login_throttle")),
    )


def downgrade() -> None:
    op.drop_table("login_throttle")
    with op.batch_alter_table("agent", schema=None) as batch_op:
        batch_op.drop_column("session_epoch")
