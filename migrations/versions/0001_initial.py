"""initial schema: municipalities, registrations, deployments, login states, key sets, launches

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""
from alembic import op
import sqlalchemy as sa
import lti_tool.models


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('login_states',
    sa.Column('state', sa.String(length=100), nullable=False),
    sa.Column('nonce', sa.String(length=100), nullable=False),
    sa.Column('registration_id', sa.Integer(), nullable=False),
    sa.Column('expires_at', lti_tool.models.AwareDateTime(timezone=True), nullable=False),
    sa.Column('used_at', lti_tool.models.AwareDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('state', name=op.f('pk_login_states')),
    sa.UniqueConstraint('nonce', name=op.f('uq_login_states_nonce'))
    )
    with op.batch_alter_table('login_states', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_login_states_expires_at'), ['expires_at'], unique=False)

    op.create_table('municipalities',
    sa.Column('id', sa.String(length=8), nullable=False),
    sa.Column('country', sa.String(length=2), nullable=False),
    sa.Column('code', sa.String(length=4), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('county_code', sa.String(length=4), nullable=True),
    sa.Column('county_name', sa.String(length=200), nullable=True),
    sa.Column('updated_at', lti_tool.models.AwareDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_municipalities')),
    sa.UniqueConstraint('country', 'code', name=op.f('uq_municipalities_country'))
    )
    with op.batch_alter_table('municipalities', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_municipalities_country'), ['country'], unique=False)

    op.create_table('platform_key_sets',
    sa.Column('jwks_url', sa.String(length=1000), nullable=False),
    sa.Column('keys', sa.JSON(), nullable=False),
    sa.Column('fetched_at', lti_tool.models.AwareDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', lti_tool.models.AwareDateTime(timezone=True), nullable=False),
    sa.Column('etag', sa.String(length=500), nullable=True),
    sa.PrimaryKeyConstraint('jwks_url', name=op.f('pk_platform_key_sets'))
    )
    op.create_table('registrations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('issuer', sa.String(length=500), nullable=False),
    sa.Column('client_id', sa.String(length=255), nullable=False),
    sa.Column('auth_login_url', sa.String(length=1000), nullable=False),
    sa.Column('auth_token_url', sa.String(length=1000), nullable=False),
    sa.Column('jwks_url', sa.String(length=1000), nullable=False),
    sa.Column('token_audience', sa.String(length=1000), nullable=True),
    sa.Column('created_at', lti_tool.models.AwareDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_registrations')),
    sa.UniqueConstraint('issuer', 'client_id', name=op.f('uq_registrations_issuer'))
    )
    with op.batch_alter_table('registrations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_registrations_issuer'), ['issuer'], unique=False)

    op.create_table('deployments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('registration_id', sa.Integer(), nullable=False),
    sa.Column('deployment_id', sa.String(length=255), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('custom_param', sa.String(length=100), nullable=True),
    sa.Column('created_at', lti_tool.models.AwareDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['registration_id'], ['registrations.id'],
                            name=op.f('fk_deployments_registration_id_registrations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_deployments')),
    sa.UniqueConstraint('registration_id', 'deployment_id', name=op.f('uq_deployments_registration_id'))
    )
    op.create_table('deployment_municipalities',
    sa.Column('deployment_id', sa.Integer(), nullable=False),
    sa.Column('municipality_id', sa.String(length=8), nullable=False),
    sa.ForeignKeyConstraint(['deployment_id'], ['deployments.id'],
                            name=op.f('fk_deployment_municipalities_deployment_id_deployments'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['municipality_id'], ['municipalities.id'],
                            name=op.f('fk_deployment_municipalities_municipality_id_municipalities')),
    sa.PrimaryKeyConstraint('deployment_id', 'municipality_id', name=op.f('pk_deployment_municipalities'))
    )
    op.create_table('launches',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('registration_id', sa.Integer(), nullable=False),
    sa.Column('deployment_pk', sa.Integer(), nullable=False),
    sa.Column('message_type', sa.String(length=50), nullable=False),
    sa.Column('sub', sa.String(length=255), nullable=False),
    sa.Column('role', sa.String(length=20), nullable=False),
    sa.Column('roles', sa.JSON(), nullable=False),
    sa.Column('context_id', sa.String(length=255), nullable=True),
    sa.Column('resource_link_id', sa.String(length=255), nullable=True),
    sa.Column('custom', sa.JSON(), nullable=False),
    sa.Column('municipality_id', sa.String(length=8), nullable=False),
    sa.Column('resolution_method', sa.String(length=30), nullable=False),
    sa.Column('locale', sa.String(length=10), nullable=True),
    sa.Column('created_at', lti_tool.models.AwareDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['deployment_pk'], ['deployments.id'],
                            name=op.f('fk_launches_deployment_pk_deployments'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['municipality_id'], ['municipalities.id'],
                            name=op.f('fk_launches_municipality_id_municipalities')),
    sa.ForeignKeyConstraint(['registration_id'], ['registrations.id'],
                            name=op.f('fk_launches_registration_id_registrations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_launches'))
    )
    with op.batch_alter_table('launches', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_launches_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_launches_municipality_id'), ['municipality_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_launches_registration_id'), ['registration_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_launches_sub'), ['sub'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('launches', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_launches_sub'))
        batch_op.drop_index(batch_op.f('ix_launches_registration_id'))
        batch_op.drop_index(batch_op.f('ix_launches_municipality_id'))
        batch_op.drop_index(batch_op.f('ix_launches_created_at'))

    op.drop_table('launches')
    op.drop_table('deployment_municipalities')
    op.drop_table('deployments')
    with op.batch_alter_table('registrations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_registrations_issuer'))

    op.drop_table('registrations')
    op.drop_table('platform_key_sets')
    with op.batch_alter_table('municipalities', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_municipalities_country'))

    op.drop_table('municipalities')
    with op.batch_alter_table('login_states', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_login_states_expires_at'))

    op.drop_table('login_states')
