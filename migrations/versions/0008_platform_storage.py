"""login states remember how the browser is bound (platform storage target, relaunch in a new window, the
login parameters for that relaunch); launches record which path bound them

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23
"""
from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('login_states', schema=None) as batch_op:
        batch_op.add_column(sa.Column('storage_target', sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column('relaunch', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column('login_params', sa.JSON(), nullable=True))
    with op.batch_alter_table('launches', schema=None) as batch_op:
        batch_op.add_column(sa.Column('state_path', sa.String(length=20), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('launches', schema=None) as batch_op:
        batch_op.drop_column('state_path')
    with op.batch_alter_table('login_states', schema=None) as batch_op:
        batch_op.drop_column('login_params')
        batch_op.drop_column('relaunch')
        batch_op.drop_column('storage_target')
