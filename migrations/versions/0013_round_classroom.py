"""the round as the classroom: round teachers, announcements, conversations on hand-ins, the showcase

``round_teachers`` names the teachers of a course round (by their platform's launch, bound through an
invitation, or by the e-mail of the staff sign-in); ``announcements`` are their messages to the round (pupils'
``seats.announcements_seen_at`` marks what is new); ``hand_in_messages`` are the conversation on a hand-in;
``showcase_items`` are finished pieces a pupil shares with the round (per round ``showcase_enabled``).
``courses.providing_school`` names the arts school that provides a course's teaching.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07
"""

from alembic import op
import sqlalchemy as sa

from lti_tool.models import AwareDateTime


revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "announcements",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("round_pk", sa.Integer(), nullable=False),
        sa.Column("author_name", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("language", sa.String(length=10), nullable=True),
        sa.Column("created_at", AwareDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["round_pk"], ["course_rounds.id"], name=op.f("fk_announcements_round_pk_course_rounds"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_announcements")),
    )
    with op.batch_alter_table("announcements", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_announcements_created_at"), ["created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_announcements_round_pk"), ["round_pk"], unique=False)

    op.create_table(
        "round_teachers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("round_pk", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("registration_id", sa.Integer(), nullable=True),
        sa.Column("sub", sa.String(length=255), nullable=True),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("invite_hash", sa.String(length=64), nullable=True),
        sa.Column("invite_expires_at", AwareDateTime(), nullable=True),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", AwareDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["registration_id"],
            ["registrations.id"],
            name=op.f("fk_round_teachers_registration_id_registrations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["round_pk"],
            ["course_rounds.id"],
            name=op.f("fk_round_teachers_round_pk_course_rounds"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_round_teachers")),
        sa.UniqueConstraint("invite_hash", name=op.f("uq_round_teachers_invite_hash")),
        sa.UniqueConstraint("round_pk", "email", name="uq_round_teachers_email"),
        sa.UniqueConstraint("round_pk", "registration_id", "sub", name="uq_round_teachers_launch"),
    )
    with op.batch_alter_table("round_teachers", schema=None) as batch_op:
        batch_op.create_index("ix_round_teachers_email", ["email"], unique=False)
        batch_op.create_index("ix_round_teachers_identity", ["registration_id", "sub"], unique=False)
        batch_op.create_index(batch_op.f("ix_round_teachers_round_pk"), ["round_pk"], unique=False)

    op.create_table(
        "hand_in_messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("submission_id", sa.Integer(), nullable=False),
        sa.Column("author_role", sa.String(length=10), nullable=False),
        sa.Column("author_name", sa.String(length=200), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", AwareDateTime(), nullable=False),
        sa.Column("read_at", AwareDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["submission_id"],
            ["submissions.id"],
            name=op.f("fk_hand_in_messages_submission_id_submissions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hand_in_messages")),
    )
    with op.batch_alter_table("hand_in_messages", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_hand_in_messages_submission_id"), ["submission_id"], unique=False)

    op.create_table(
        "showcase_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("round_pk", sa.Integer(), nullable=False),
        sa.Column("submission_id", sa.Integer(), nullable=False),
        sa.Column("caption", sa.String(length=500), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", AwareDateTime(), nullable=False),
        sa.Column("approved_at", AwareDateTime(), nullable=True),
        sa.Column("withdrawn_at", AwareDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["round_pk"],
            ["course_rounds.id"],
            name=op.f("fk_showcase_items_round_pk_course_rounds"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["submission_id"],
            ["submissions.id"],
            name=op.f("fk_showcase_items_submission_id_submissions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_showcase_items")),
        sa.UniqueConstraint("submission_id", name=op.f("uq_showcase_items_submission_id")),
    )
    with op.batch_alter_table("showcase_items", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_showcase_items_round_pk"), ["round_pk"], unique=False)

    with op.batch_alter_table("course_rounds", schema=None) as batch_op:
        batch_op.add_column(sa.Column("showcase_enabled", sa.Boolean(), server_default=sa.false(), nullable=False))

    with op.batch_alter_table("courses", schema=None) as batch_op:
        batch_op.add_column(sa.Column("providing_school", sa.String(length=200), nullable=True))

    with op.batch_alter_table("seats", schema=None) as batch_op:
        batch_op.add_column(sa.Column("announcements_seen_at", AwareDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("seats", schema=None) as batch_op:
        batch_op.drop_column("announcements_seen_at")

    with op.batch_alter_table("courses", schema=None) as batch_op:
        batch_op.drop_column("providing_school")

    with op.batch_alter_table("course_rounds", schema=None) as batch_op:
        batch_op.drop_column("showcase_enabled")

    with op.batch_alter_table("showcase_items", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_showcase_items_round_pk"))

    op.drop_table("showcase_items")
    with op.batch_alter_table("hand_in_messages", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_hand_in_messages_submission_id"))

    op.drop_table("hand_in_messages")
    with op.batch_alter_table("round_teachers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_round_teachers_round_pk"))
        batch_op.drop_index("ix_round_teachers_identity")
        batch_op.drop_index("ix_round_teachers_email")

    op.drop_table("round_teachers")
    with op.batch_alter_table("announcements", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_announcements_round_pk"))
        batch_op.drop_index(batch_op.f("ix_announcements_created_at"))

    op.drop_table("announcements")
