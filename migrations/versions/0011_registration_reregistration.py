"""registrations: (issuer, client_id) unique among active registrations only

A dynamic re-registration of an active registration is stored as a second, pending registration with the
same issuer and client id (national staff compare the two and approve the new one as the replacement, or
reject it), so the unique constraint on (issuer, client_id) becomes a partial unique index over the active
rows. SQLite recreates the table in batch mode to drop the constraint (Alembic's own connection: foreign
keys are not enforced there, so nothing cascades).

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-24
"""
from alembic import op
import sqlalchemy as sa


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

ACTIVE = sa.text("status = 'active'")


def upgrade() -> None:
    with op.batch_alter_table('registrations', schema=None) as batch_op:
        batch_op.drop_constraint('uq_registrations_issuer', type_='unique')
    op.create_index('uq_registrations_active_issuer_client_id', 'registrations', ['issuer', 'client_id'],
                    unique=True, sqlite_where=ACTIVE, postgresql_where=ACTIVE)


def downgrade() -> None:
    # Pending re-registrations that share an issuer and client id with another registration cannot survive
    # the old constraint: they are dropped (with their pending deployments), the older registration kept.
    op.execute(sa.text(
        "DELETE FROM deployments WHERE registration_id IN (SELECT r.id FROM registrations r "
        "WHERE r.status <> 'active' AND EXISTS (SELECT 1 FROM registrations o WHERE o.issuer = r.issuer "
        "AND o.client_id = r.client_id AND o.id <> r.id AND (o.status = 'active' OR o.id < r.id)))"))
    op.execute(sa.text(
        "DELETE FROM registrations WHERE status <> 'active' AND EXISTS (SELECT 1 FROM registrations o "
        "WHERE o.issuer = registrations.issuer AND o.client_id = registrations.client_id "
        "AND o.id <> registrations.id AND (o.status = 'active' OR o.id < registrations.id))"))
    op.drop_index('uq_registrations_active_issuer_client_id', table_name='registrations')
    with op.batch_alter_table('registrations', schema=None) as batch_op:
        batch_op.create_unique_constraint('uq_registrations_issuer', ['issuer', 'client_id'])
