"""LTI Advantage: contexts, line items, outbox, service tokens, rosters, deep linking

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22
"""
from alembic import op
import sqlalchemy as sa
import lti_tool.models


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('lti_contexts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('registration_id', sa.Integer(), nullable=False),
    sa.Column('context_id', sa.String(length=255), nullable=False),
    sa.Column('course_code', sa.String(length=40), nullable=True),
    sa.Column('ags_lineitems_url', sa.String(length=1000), nullable=True),
    sa.Column('ags_scopes', sa.JSON(), nullable=False),
    sa.Column('nrps_url', sa.String(length=1000), nullable=True),
    sa.Column('nrps_differences_url', sa.String(length=1000), nullable=True),
    sa.Column('roster_synced_at', lti_tool.models.AwareDateTime(timezone=True), nullable=True),
    sa.Column('updated_at', lti_tool.models.AwareDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['registration_id'], ['registrations.id'],
                            name=op.f('fk_lti_contexts_registration_id_registrations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_lti_contexts')),
    sa.UniqueConstraint('registration_id', 'context_id', name=op.f('uq_lti_contexts_registration_id'))
    )
    op.create_table('service_tokens',
    sa.Column('registration_id', sa.Integer(), nullable=False),
    sa.Column('scopes', sa.String(length=1000), nullable=False),
    sa.Column('access_token', sa.Text(), nullable=False),
    sa.Column('expires_at', lti_tool.models.AwareDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['registration_id'], ['registrations.id'],
                            name=op.f('fk_service_tokens_registration_id_registrations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('registration_id', 'scopes', name=op.f('pk_service_tokens'))
    )
    op.create_table('roster_members',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('context_pk', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.String(length=255), nullable=False),
    sa.Column('roles', sa.JSON(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=True),
    sa.Column('updated_at', lti_tool.models.AwareDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['context_pk'], ['lti_contexts.id'],
                            name=op.f('fk_roster_members_context_pk_lti_contexts'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_roster_members')),
    sa.UniqueConstraint('context_pk', 'user_id', name=op.f('uq_roster_members_context_pk'))
    )
    with op.batch_alter_table('roster_members', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_roster_members_context_pk'), ['context_pk'], unique=False)

    op.create_table('line_items',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('context_pk', sa.Integer(), nullable=False),
    sa.Column('assignment_id', sa.Integer(), nullable=True),
    sa.Column('resource_link_id', sa.String(length=255), nullable=True),
    sa.Column('url', sa.String(length=1000), nullable=False),
    sa.ForeignKeyConstraint(['assignment_id'], ['assignments.id'],
                            name=op.f('fk_line_items_assignment_id_assignments'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['context_pk'], ['lti_contexts.id'],
                            name=op.f('fk_line_items_context_pk_lti_contexts'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_line_items')),
    sa.UniqueConstraint('context_pk', 'assignment_id', name=op.f('uq_line_items_context_pk'))
    )
    op.create_table('outbox',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('registration_id', sa.Integer(), nullable=False),
    sa.Column('context_pk', sa.Integer(), nullable=False),
    sa.Column('assignment_id', sa.Integer(), nullable=False),
    sa.Column('sub', sa.String(length=255), nullable=False),
    sa.Column('dedupe_key', sa.String(length=400), nullable=False),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', lti_tool.models.AwareDateTime(timezone=True), nullable=False),
    sa.Column('locked_until', lti_tool.models.AwareDateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('platform_status', sa.Integer(), nullable=True),
    sa.Column('platform_response', sa.Text(), nullable=True),
    sa.Column('created_at', lti_tool.models.AwareDateTime(timezone=True), nullable=False),
    sa.Column('sent_at', lti_tool.models.AwareDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['assignment_id'], ['assignments.id'],
                            name=op.f('fk_outbox_assignment_id_assignments'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['context_pk'], ['lti_contexts.id'],
                            name=op.f('fk_outbox_context_pk_lti_contexts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['registration_id'], ['registrations.id'],
                            name=op.f('fk_outbox_registration_id_registrations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outbox'))
    )
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_outbox_dedupe_key'), ['dedupe_key'], unique=False)
        batch_op.create_index(batch_op.f('ix_outbox_next_attempt_at'), ['next_attempt_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_outbox_status'), ['status'], unique=False)

    with op.batch_alter_table('launches', schema=None) as batch_op:
        batch_op.add_column(sa.Column('deep_linking', sa.JSON(), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('launches', schema=None) as batch_op:
        batch_op.drop_column('deep_linking')

    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_outbox_status'))
        batch_op.drop_index(batch_op.f('ix_outbox_next_attempt_at'))
        batch_op.drop_index(batch_op.f('ix_outbox_dedupe_key'))

    op.drop_table('outbox')
    op.drop_table('line_items')
    with op.batch_alter_table('roster_members', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_roster_members_context_pk'))

    op.drop_table('roster_members')
    op.drop_table('service_tokens')
    op.drop_table('lti_contexts')
