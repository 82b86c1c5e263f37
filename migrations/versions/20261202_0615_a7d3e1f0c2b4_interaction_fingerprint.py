"""A content fingerprint per interaction, so two messages under one Message-ID stay two

Revision ID: a7d3e1f0c2b4
Revises: h0003
Create Date: 2026-12-02 06:15:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "a7d3e1f0c2b4"
down_revision = "h0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable and not backfilled: a row without a fingerprint is deduplicated
    # by its id alone, as before, so a resync after the upgrade duplicates
    # nothing that is already on the timeline.
    with op.batch_alter_table("interaction", schema=None) as batch_op:
        batch_op.add_column(sa.Column("fingerprint", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("interaction", schema=None) as batch_op:
        batch_op.drop_column("fingerprint")
