"""municipal contacts

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-22
"""
from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('municipal_contacts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('municipality_id', sa.String(length=8), nullable=False),
    sa.Column('registration_id', sa.Integer(), nullable=False),
    sa.Column('sub', sa.String(length=255), nullable=False),
    sa.ForeignKeyConstraint(['municipality_id'], ['municipalities.id'],
                            name=op.f('fk_municipal_contacts_municipality_id_municipalities')),
    sa.ForeignKeyConstraint(['registration_id'], ['registrations.id'],
                            name=op.f('fk_municipal_contacts_registration_id_registrations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_municipal_contacts')),
    sa.UniqueConstraint('registration_id', 'sub', 'municipality_id', name=op.f('uq_municipal_contacts_registration_id'))
    )
    with op.batch_alter_table('municipal_contacts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_municipal_contacts_municipality_id'), ['municipality_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('municipal_contacts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_municipal_contacts_municipality_id'))

    op.drop_table('municipal_contacts')
