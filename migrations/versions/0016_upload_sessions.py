"""upload sessions: hand-in files sent in resumable pieces

``upload_sessions`` keeps a hand-in file on its way in pieces (a chunked upload from the pupil's page): the pupil,
the assignment, the file's name, declared type, size and date, and how many bytes have arrived. The bytes wait
under the upload directory, never in the database.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07
"""

from alembic import op
import sqlalchemy as sa

from lti_tool.models import AwareDateTime


revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "upload_sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token", sa.String(length=64), nullable=False),
        sa.Column("registration_id", sa.Integer(), nullable=False),
        sa.Column("sub", sa.String(length=255), nullable=False),
        sa.Column("assignment_id", sa.Integer(), nullable=False),
        sa.Column("round_pk", sa.Integer(), nullable=False),
        sa.Column("file_name", sa.String(length=255), nullable=False),
        sa.Column("content_type", sa.String(length=100), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("last_modified", sa.BigInteger(), nullable=True),
        sa.Column("received", sa.BigInteger(), nullable=False),
        sa.Column("created_at", AwareDateTime(), nullable=False),
        sa.Column("updated_at", AwareDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["assignment_id"], ["assignments.id"],
                                name=op.f("fk_upload_sessions_assignment_id_assignments"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["registration_id"], ["registrations.id"],
                                name=op.f("fk_upload_sessions_registration_id_registrations"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["round_pk"], ["course_rounds.id"],
                                name=op.f("fk_upload_sessions_round_pk_course_rounds"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_upload_sessions")),
        sa.UniqueConstraint("token", name=op.f("uq_upload_sessions_token")),
    )
    with op.batch_alter_table("upload_sessions", schema=None) as batch_op:
        batch_op.create_index("ix_upload_sessions_pupil", ["registration_id", "sub", "assignment_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_upload_sessions_updated_at"), ["updated_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("upload_sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_upload_sessions_updated_at"))
        batch_op.drop_index("ix_upload_sessions_pupil")
    op.drop_table("upload_sessions")
