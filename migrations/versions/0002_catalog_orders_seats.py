"""catalog, orders, seats, waiting lists

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""
from alembic import op
import sqlalchemy as sa
import lti_tool.models


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('catalog_syncs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('started_at', lti_tool.models.AwareDateTime(timezone=True), nullable=False),
    sa.Column('finished_at', lti_tool.models.AwareDateTime(timezone=True), nullable=True),
    sa.Column('source', sa.String(length=1000), nullable=False),
    sa.Column('result', sa.String(length=20), nullable=False),
    sa.Column('added', sa.Integer(), nullable=False),
    sa.Column('updated', sa.Integer(), nullable=False),
    sa.Column('retired', sa.Integer(), nullable=False),
    sa.Column('unchanged', sa.Integer(), nullable=False),
    sa.Column('errors', sa.JSON(), nullable=False),
    sa.Column('etag', sa.String(length=500), nullable=True),
    sa.Column('last_modified', sa.String(length=100), nullable=True),
    sa.Column('feed_generated_at', sa.String(length=40), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_catalog_syncs'))
    )
    with op.batch_alter_table('catalog_syncs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_catalog_syncs_started_at'), ['started_at'], unique=False)

    op.create_table('courses',
    sa.Column('code', sa.String(length=40), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('subject', sa.String(length=20), nullable=True),
    sa.Column('title', sa.JSON(), nullable=False),
    sa.Column('summary', sa.JSON(), nullable=True),
    sa.Column('age_min', sa.Integer(), nullable=True),
    sa.Column('age_max', sa.Integer(), nullable=True),
    sa.Column('languages', sa.JSON(), nullable=False),
    sa.Column('content_hash', sa.String(length=64), nullable=False),
    sa.Column('retired_at', lti_tool.models.AwareDateTime(timezone=True), nullable=True),
    sa.Column('created_at', lti_tool.models.AwareDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', lti_tool.models.AwareDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('code', name=op.f('pk_courses'))
    )
    op.create_table('course_modules',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('course_code', sa.String(length=40), nullable=False),
    sa.Column('key', sa.String(length=100), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('title', sa.JSON(), nullable=False),
    sa.Column('current', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['course_code'], ['courses.code'],
                            name=op.f('fk_course_modules_course_code_courses'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_course_modules')),
    sa.UniqueConstraint('course_code', 'key', name=op.f('uq_course_modules_course_code'))
    )
    with op.batch_alter_table('course_modules', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_course_modules_course_code'), ['course_code'], unique=False)

    op.create_table('course_prices',
    sa.Column('course_code', sa.String(length=40), nullable=False),
    sa.Column('country', sa.String(length=2), nullable=False),
    sa.Column('amount', sa.Numeric(precision=12, scale=2), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.ForeignKeyConstraint(['course_code'], ['courses.code'],
                            name=op.f('fk_course_prices_course_code_courses'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('course_code', 'country', name=op.f('pk_course_prices'))
    )
    op.create_table('course_rounds',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('course_code', sa.String(length=40), nullable=False),
    sa.Column('round_id', sa.String(length=40), nullable=False),
    sa.Column('starts_on', sa.Date(), nullable=False),
    sa.Column('ends_on', sa.Date(), nullable=False),
    sa.Column('enrolment_closes_on', sa.Date(), nullable=False),
    sa.Column('withdrawal_deadline', sa.Date(), nullable=False),
    sa.Column('capacity', sa.Integer(), nullable=False),
    sa.Column('min_participants', sa.Integer(), nullable=False),
    sa.Column('seats_taken', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.ForeignKeyConstraint(['course_code'], ['courses.code'],
                            name=op.f('fk_course_rounds_course_code_courses'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_course_rounds')),
    sa.UniqueConstraint('course_code', 'round_id', name=op.f('uq_course_rounds_course_code'))
    )
    with op.batch_alter_table('course_rounds', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_course_rounds_course_code'), ['course_code'], unique=False)

    op.create_table('assignments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('module_id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=100), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('title', sa.JSON(), nullable=False),
    sa.Column('instructions_markdown', sa.JSON(), nullable=False),
    sa.Column('instructions_html', sa.JSON(), nullable=False),
    sa.Column('submission', sa.String(length=10), nullable=False),
    sa.Column('max_score', sa.Numeric(precision=10, scale=2), nullable=False),
    sa.Column('current', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['module_id'], ['course_modules.id'],
                            name=op.f('fk_assignments_module_id_course_modules'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_assignments')),
    sa.UniqueConstraint('module_id', 'key', name=op.f('uq_assignments_module_id'))
    )
    with op.batch_alter_table('assignments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_assignments_module_id'), ['module_id'], unique=False)

    op.create_table('lessons',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('module_id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=100), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('title', sa.JSON(), nullable=False),
    sa.Column('body_markdown', sa.JSON(), nullable=False),
    sa.Column('body_html', sa.JSON(), nullable=False),
    sa.Column('video_url', sa.String(length=1000), nullable=True),
    sa.Column('duration_minutes', sa.Integer(), nullable=True),
    sa.Column('current', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['module_id'], ['course_modules.id'],
                            name=op.f('fk_lessons_module_id_course_modules'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_lessons')),
    sa.UniqueConstraint('module_id', 'key', name=op.f('uq_lessons_module_id'))
    )
    with op.batch_alter_table('lessons', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_lessons_module_id'), ['module_id'], unique=False)

    op.create_table('orders',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('municipality_id', sa.String(length=8), nullable=False),
    sa.Column('round_pk', sa.Integer(), nullable=False),
    sa.Column('seats_budget', sa.Integer(), nullable=False),
    sa.Column('seats_taken', sa.Integer(), nullable=False),
    sa.Column('created_at', lti_tool.models.AwareDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', lti_tool.models.AwareDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['municipality_id'], ['municipalities.id'],
                            name=op.f('fk_orders_municipality_id_municipalities')),
    sa.ForeignKeyConstraint(['round_pk'], ['course_rounds.id'],
                            name=op.f('fk_orders_round_pk_course_rounds'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_orders')),
    sa.UniqueConstraint('municipality_id', 'round_pk', name=op.f('uq_orders_municipality_id'))
    )
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_orders_municipality_id'), ['municipality_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_orders_round_pk'), ['round_pk'], unique=False)

    op.create_table('seats',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('round_pk', sa.Integer(), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=False),
    sa.Column('municipality_id', sa.String(length=8), nullable=False),
    sa.Column('registration_id', sa.Integer(), nullable=False),
    sa.Column('sub', sa.String(length=255), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('taken_at', lti_tool.models.AwareDateTime(timezone=True), nullable=False),
    sa.Column('released_at', lti_tool.models.AwareDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['municipality_id'], ['municipalities.id'],
                            name=op.f('fk_seats_municipality_id_municipalities')),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], name=op.f('fk_seats_order_id_orders'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['registration_id'], ['registrations.id'],
                            name=op.f('fk_seats_registration_id_registrations'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['round_pk'], ['course_rounds.id'],
                            name=op.f('fk_seats_round_pk_course_rounds'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_seats')),
    sa.UniqueConstraint('round_pk', 'registration_id', 'sub', name=op.f('uq_seats_round_pk'))
    )
    with op.batch_alter_table('seats', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_seats_order_id'), ['order_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_seats_round_pk'), ['round_pk'], unique=False)

    op.create_table('waitlist_entries',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=False),
    sa.Column('round_pk', sa.Integer(), nullable=False),
    sa.Column('registration_id', sa.Integer(), nullable=False),
    sa.Column('sub', sa.String(length=255), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('created_at', lti_tool.models.AwareDateTime(timezone=True), nullable=False),
    sa.Column('admitted_at', lti_tool.models.AwareDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'],
                            name=op.f('fk_waitlist_entries_order_id_orders'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['registration_id'], ['registrations.id'],
                            name=op.f('fk_waitlist_entries_registration_id_registrations'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['round_pk'], ['course_rounds.id'],
                            name=op.f('fk_waitlist_entries_round_pk_course_rounds'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_waitlist_entries')),
    sa.UniqueConstraint('round_pk', 'registration_id', 'sub', name=op.f('uq_waitlist_entries_round_pk'))
    )
    with op.batch_alter_table('waitlist_entries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_waitlist_entries_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_waitlist_entries_order_id'), ['order_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('waitlist_entries', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_waitlist_entries_order_id'))
        batch_op.drop_index(batch_op.f('ix_waitlist_entries_created_at'))

    op.drop_table('waitlist_entries')
    with op.batch_alter_table('seats', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_seats_round_pk'))
        batch_op.drop_index(batch_op.f('ix_seats_order_id'))

    op.drop_table('seats')
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_orders_round_pk'))
        batch_op.drop_index(batch_op.f('ix_orders_municipality_id'))

    op.drop_table('orders')
    with op.batch_alter_table('lessons', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_lessons_module_id'))

    op.drop_table('lessons')
    with op.batch_alter_table('assignments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_assignments_module_id'))

    op.drop_table('assignments')
    with op.batch_alter_table('course_rounds', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_course_rounds_course_code'))

    op.drop_table('course_rounds')
    op.drop_table('course_prices')
    with op.batch_alter_table('course_modules', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_course_modules_course_code'))

    op.drop_table('course_modules')
    op.drop_table('courses')
    with op.batch_alter_table('catalog_syncs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_catalog_syncs_started_at'))

    op.drop_table('catalog_syncs')
