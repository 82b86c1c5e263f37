"""Reports: conversation facts, daily volume, contacts, closes, satisfaction surveys; audit trail indexes

Revision ID: 0003r
Revises: hook01
Create Date: 2026-12-02 07:06:15.729322
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0003r'
down_revision = 'hook01'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('report_volume',
    sa.Column('day', sa.String(length=10), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('direction', sa.String(length=16), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('day', 'channel', 'direction', name=op.f('pk_report_volume'))
    )
    op.create_table('report_closure',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('conversation_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['conversation_id'], ['conversation.id'], name=op.f('fk_report_closure_conversation_id_conversation')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_report_closure')),
    sa.UniqueConstraint('conversation_id', 'closed_at', name=op.f('uq_report_closure_conversation_id_closed_at'))
    )
    with op.batch_alter_table('report_closure', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_report_closure_closed_at'), ['closed_at'], unique=False)

    op.create_table('report_conversation',
    sa.Column('conversation_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('first_channel', sa.String(length=16), nullable=True),
    sa.Column('first_response_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('first_response_by', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('first_response_seconds', sa.Float(), nullable=True),
    sa.Column('contacts', sa.Integer(), nullable=False),
    sa.Column('channel_count', sa.Integer(), nullable=False),
    sa.Column('switches', sa.Integer(), nullable=False),
    sa.Column('path', sa.String(length=200), nullable=False),
    sa.Column('last_contact_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_response_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('waiting_since', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['conversation_id'], ['conversation.id'], name=op.f('fk_report_conversation_conversation_id_conversation')),
    sa.PrimaryKeyConstraint('conversation_id', name=op.f('pk_report_conversation'))
    )
    with op.batch_alter_table('report_conversation', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_report_conversation_started_at_first_channel'), ['started_at', 'first_channel'], unique=False)

    op.create_table('csat_survey',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('conversation_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('customer_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('token', sa.String(length=64), nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('survey_interaction_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('answered_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('score', sa.Integer(), nullable=True),
    sa.Column('comment', sa.Text(), nullable=False),
    sa.Column('answer_interaction_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('flagged', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['answer_interaction_id'], ['interaction.id'], name=op.f('fk_csat_survey_answer_interaction_id_interaction')),
    sa.ForeignKeyConstraint(['conversation_id'], ['conversation.id'], name=op.f('fk_csat_survey_conversation_id_conversation')),
    sa.ForeignKeyConstraint(['customer_id'], ['customer.id'], name=op.f('fk_csat_survey_customer_id_customer')),
    sa.ForeignKeyConstraint(['survey_interaction_id'], ['interaction.id'], name=op.f('fk_csat_survey_survey_interaction_id_interaction')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_csat_survey')),
    sa.UniqueConstraint('token', name=op.f('uq_csat_survey_token'))
    )
    with op.batch_alter_table('csat_survey', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_csat_survey_conversation_id'), ['conversation_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_csat_survey_customer_id_sent_at'), ['customer_id', 'sent_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_csat_survey_sent_at'), ['sent_at'], unique=False)

    op.create_table('report_contact',
    sa.Column('interaction_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('customer_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['interaction_id'], ['interaction.id'], name=op.f('fk_report_contact_interaction_id_interaction')),
    sa.PrimaryKeyConstraint('interaction_id', name=op.f('pk_report_contact'))
    )
    with op.batch_alter_table('report_contact', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_report_contact_customer_id_occurred_at'), ['customer_id', 'occurred_at'], unique=False)

    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_log_action_at_id'), ['action', 'at', 'id'], unique=False)
        batch_op.create_index(batch_op.f('ix_audit_log_actor_id_at_id'), ['actor_id', 'at', 'id'], unique=False)
        batch_op.create_index(batch_op.f('ix_audit_log_target_type_target_id_at_id'), ['target_type', 'target_id', 'at', 'id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_audit_log_target_type_target_id_at_id'))
        batch_op.drop_index(batch_op.f('ix_audit_log_actor_id_at_id'))
        batch_op.drop_index(batch_op.f('ix_audit_log_action_at_id'))

    with op.batch_alter_table('report_contact', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_report_contact_customer_id_occurred_at'))

    op.drop_table('report_contact')
    with op.batch_alter_table('csat_survey', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_csat_survey_sent_at'))
        batch_op.drop_index(batch_op.f('ix_csat_survey_customer_id_sent_at'))
        batch_op.drop_index(batch_op.f('ix_csat_survey_conversation_id'))

    op.drop_table('csat_survey')
    with op.batch_alter_table('report_conversation', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_report_conversation_started_at_first_channel'))

    op.drop_table('report_conversation')
    with op.batch_alter_table('report_closure', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_report_closure_closed_at'))

    op.drop_table('report_closure')
    op.drop_table('report_volume')
