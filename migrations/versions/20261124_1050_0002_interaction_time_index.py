"""Interactions in time order across all customers, for newest-first search

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 10:50:31.000000
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # SQLite FTS5 returns matches in id order. For a word in a large share of
    # all interactions, reading (occurred_at, id) newest first and taking
    # each stretch's matches from FTS5 reaches a page long before sorting
    # every match would; channel and direction are there so that their
    # filters need no row reads (hub/search/sqlite_fts.py). PostgreSQL's
    # ORDER BY occurred_at DESC, id DESC can use it too.
    with op.batch_alter_table("interaction", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_interaction_occurred_at_id_channel_direction"),
            ["occurred_at", "id", "channel", "direction"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("interaction", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_interaction_occurred_at_id_channel_direction"))
