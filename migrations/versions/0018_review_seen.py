"""review seen: when the pupil first opened a review (the course page marks feedback not yet opened as new)

``reviews.seen_at`` is set the first time the pupil opens the assignment page that shows the review; null until
then. It says nothing about the pupil beyond what the review already does, and goes with the review.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07
"""

from alembic import op
import sqlalchemy as sa

from lti_tool.models import AwareDateTime


revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("reviews") as batch_op:
        batch_op.add_column(sa.Column("seen_at", AwareDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("reviews") as batch_op:
        batch_op.drop_column("seen_at")
