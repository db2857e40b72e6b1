"""seat names: the name a pupil's launch carries, kept on their seat for the round's teachers

``seats.name`` is the pupil's name as their platform sent it (OpenID Connect ``name``, or ``given_name`` and
``family_name``) at their latest launch into the round, with ``LTI_TOOL_LAUNCH_NAMES`` (on by default); null where
the platform shares none. It goes with the seat's ``sub``: at erasure, and at the purge ``RETENTION_DAYS`` after the
round ended. Launch records never hold names.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07
"""

from alembic import op
import sqlalchemy as sa


revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("seats") as batch_op:
        batch_op.add_column(sa.Column("name", sa.String(length=255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("seats") as batch_op:
        batch_op.drop_column("name")
