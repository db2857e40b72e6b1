"""grades: one recorded choice per placement (resource link), columns per placement and assignment

``grade_placements`` records, once per resource link in a context, how its scores reach the gradebook (one
column per assignment, or the placement's own column with the course total). Hand-ins and outbox rows record
the placement they come from; a known column is per (context, resource link, assignment), so a second
placement of another course in the same context never writes into the first one's columns. Rows written
before this revision keep a NULL resource link (the worker finds their placement from the pupil's launches).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07
"""
from alembic import op
import sqlalchemy as sa

from lti_tool.models import AwareDateTime


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "grade_placements",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("context_pk", sa.Integer(), nullable=False),
        sa.Column("resource_link_id", sa.String(length=255), nullable=False),
        sa.Column("course_code", sa.String(length=40), nullable=False),
        sa.Column("mode", sa.String(length=20), nullable=False),
        sa.Column("lineitem_url", sa.String(length=1000), nullable=True),
        sa.Column("score_maximum", sa.Numeric(precision=10, scale=2), nullable=True),
        sa.Column("language", sa.String(length=5), nullable=False),
        sa.Column("decided_at", AwareDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["context_pk"],
            ["lti_contexts.id"],
            name=op.f("fk_grade_placements_context_pk_lti_contexts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_grade_placements")),
        sa.UniqueConstraint("context_pk", "resource_link_id", name=op.f("uq_grade_placements_context_pk")),
    )
    with op.batch_alter_table("submissions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("resource_link_id", sa.String(length=255), nullable=True))
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("resource_link_id", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("placement_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_outbox_placement_id_grade_placements"),
            "grade_placements",
            ["placement_id"],
            ["id"],
            ondelete="CASCADE",
        )
    with op.batch_alter_table("line_items", schema=None) as batch_op:
        batch_op.drop_constraint("uq_line_items_context_pk", type_="unique")
        batch_op.create_unique_constraint(
            "uq_line_items_context_pk", ["context_pk", "resource_link_id", "assignment_id"]
        )


def downgrade() -> None:
    # Columns of a second placement of the same assignment cannot survive the old constraint: the first kept.
    op.execute(
        sa.text(
            "DELETE FROM line_items WHERE assignment_id IS NOT NULL AND EXISTS (SELECT 1 FROM line_items o "
            "WHERE o.context_pk = line_items.context_pk AND o.assignment_id = line_items.assignment_id "
            "AND o.id < line_items.id)"
        )
    )
    with op.batch_alter_table("line_items", schema=None) as batch_op:
        batch_op.drop_constraint("uq_line_items_context_pk", type_="unique")
        batch_op.create_unique_constraint("uq_line_items_context_pk", ["context_pk", "assignment_id"])
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_outbox_placement_id_grade_placements"), type_="foreignkey")
        batch_op.drop_column("placement_id")
        batch_op.drop_column("resource_link_id")
    with op.batch_alter_table("submissions", schema=None) as batch_op:
        batch_op.drop_column("resource_link_id")
    op.drop_table("grade_placements")
