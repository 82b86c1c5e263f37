"""Canned responses: reply snippets the team shares, with placeholders

Revision ID: canned01
Revises: saved01
Create Date: 2026-12-02 15:10:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "canned01"
down_revision = "saved01"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "canned_response",
        sa.Column("id", Id, nullable=False),
        sa.Column("shortcut", sa.String(length=40), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_by_id", Id, nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["created_by_id"], ["agent.id"], name=op.f("fk_canned_response_created_by_id_agent")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_canned_response")),
        sa.UniqueConstraint("shortcut", name=op.f("uq_canned_response_shortcut")),
    )


def downgrade() -> None:
    op.drop_table("canned_response")
