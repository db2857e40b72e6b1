"""SQLAlchemy 2.0 typed mappings. Nothing but tables; behaviour lives in services and the domain."""

from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal

from sqlalchemy import (JSON, BigInteger, Boolean, Date, DateTime, ForeignKey, Index, Integer, MetaData, Numeric,
                        String, Text, UniqueConstraint, false, text)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

from .clock import now
from .domain.seats import ROUND_CANCELLED, ROUND_OPEN, ROUND_RETIRED, ROUND_RUNNING  # noqa: F401

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class AwareDateTime(TypeDecorator):
    """Stores UTC; always returns aware datetimes (SQLite forgets the offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime given to an AwareDateTime column")
        return value.astimezone(timezone.utc) if value is not None else None

    def process_result_value(self, value, dialect):
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Municipality(Base):
    """A kommun / kommune, identified as ``SE-1490`` or ``NO-0301``."""

    __tablename__ = "municipalities"

    id: Mapped[str] = mapped_column(String(8), primary_key=True)
    country: Mapped[str] = mapped_column(String(2), index=True)
    code: Mapped[str] = mapped_column(String(4))
    name: Mapped[str] = mapped_column(String(200))
    county_code: Mapped[str | None] = mapped_column(String(4))
    county_name: Mapped[str | None] = mapped_column(String(200))
    updated_at: Mapped[datetime] = mapped_column(AwareDateTime(), default=now, onupdate=now)
    # Where the arts school wants the weekly digest (counts and a link, no personal data); None: no digest.
    digest_email: Mapped[str | None] = mapped_column(String(320))

    __table_args__ = (UniqueConstraint("country", "code"),)


REGISTRATION_PENDING = "pending"
REGISTRATION_ACTIVE = "active"
# Only active registrations route logins and launches, so (issuer, client id) is unique among them; a
# dynamic re-registration of an active one is a second, pending row with the same pair until staff approve
# it as the replacement (or reject it). A partial unique index, on SQLite and PostgreSQL alike.
_ONE_ACTIVE_PER_CLIENT = text("status = 'active'")


class Registration(Base):
    """A platform's client_id at an issuer: what the tool knows to verify launches and call services."""

    __tablename__ = "registrations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    issuer: Mapped[str] = mapped_column(String(500), index=True)
    client_id: Mapped[str] = mapped_column(String(255))
    auth_login_url: Mapped[str] = mapped_column(String(1000))
    auth_token_url: Mapped[str] = mapped_column(String(1000))
    jwks_url: Mapped[str] = mapped_column(String(1000))
    token_audience: Mapped[str | None] = mapped_column(String(1000))
    created_at: Mapped[datetime] = mapped_column(AwareDateTime(), default=now)
    # "pending" after a dynamic registration, until national staff approve it; "active" otherwise. A pending
    # registration never takes part in a login or a launch.
    status: Mapped[str] = mapped_column(String(16), default=REGISTRATION_ACTIVE, server_default=REGISTRATION_ACTIVE)
    # The platform product (canvas, moodle, Brightspace, ...) from its openid-configuration, when known.
    product: Mapped[str | None] = mapped_column(String(100))
    # "lti": an LTI platform. "school_sign_in": a school identity provider of the second door (Feide,
    # Skolfederation; its settings in ``identity_providers``): the namespace of the subjects it signs in, so that
    # seats, hand-ins and reviews key on (registration, sub) whichever door a pupil came through. Only "lti"
    # registrations route logins and launches.
    kind: Mapped[str] = mapped_column(String(16), default="lti", server_default="lti")

    deployments: Mapped[list["Deployment"]] = relationship(back_populates="registration",
                                                           cascade="all, delete-orphan")

    __table_args__ = (Index("uq_registrations_active_issuer_client_id", "issuer", "client_id", unique=True,
                            sqlite_where=_ONE_ACTIVE_PER_CLIENT, postgresql_where=_ONE_ACTIVE_PER_CLIENT),)


DEPLOYMENT_PENDING = "pending"
DEPLOYMENT_ACTIVE = "active"
DEPLOYMENT_INACTIVE = "inactive"


class Deployment(Base):
    """One installation of the tool in a platform, bound to the municipalities it serves."""

    __tablename__ = "deployments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    registration_id: Mapped[int] = mapped_column(ForeignKey("registrations.id", ondelete="CASCADE"))
    deployment_id: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16), default=DEPLOYMENT_PENDING)
    # Name of the signed custom parameter that picks the municipality on a shared deployment.
    custom_param: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(AwareDateTime(), default=now)

    registration: Mapped[Registration] = relationship(back_populates="deployments")
    municipalities: Mapped[list["DeploymentMunicipality"]] = relationship(
        cascade="all, delete-orphan", back_populates="deployment")

    __table_args__ = (UniqueConstraint("registration_id", "deployment_id"),)


class DeploymentMunicipality(Base):
    __tablename__ = "deployment_municipalities"

    deployment_id: Mapped[int] = mapped_column(ForeignKey("deployments.id", ondelete="CASCADE"),
                                               primary_key=True)
    municipality_id: Mapped[str] = mapped_column(ForeignKey("municipalities.id"), primary_key=True)

    deployment: Mapped[Deployment] = relationship(back_populates="municipalities")


class LoginState(Base):
    """One OIDC login: its state and nonce, used at most once (when Redis is not configured)."""

    __tablename__ = "login_states"

    state: Mapped[str] = mapped_column(String(100), primary_key=True)
    nonce: Mapped[str] = mapped_column(String(100), unique=True)
    registration_id: Mapped[int] = mapped_column(Integer)
    expires_at: Mapped[datetime] = mapped_column(AwareDateTime(), index=True)
    used_at: Mapped[datetime | None] = mapped_column(AwareDateTime())
    # The platform's storage frame (``lti_storage_target``) when the login asked for platform storage.
    storage_target: Mapped[str | None] = mapped_column(String(100))
    # A login started again in a new window, after neither platform storage nor cookies worked in the frame.
    relaunch: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # The login initiation's routing parameters, to start the login again in a new window.
    login_params: Mapped[dict | None] = mapped_column(JSON)


class PlatformKeySet(Base):
    """A platform's JWKS as last fetched, kept as long as its HTTP cache headers allow."""

    __tablename__ = "platform_key_sets"

    jwks_url: Mapped[str] = mapped_column(String(1000), primary_key=True)
    keys: Mapped[dict] = mapped_column(JSON)
    fetched_at: Mapped[datetime] = mapped_column(AwareDateTime())
    expires_at: Mapped[datetime] = mapped_column(AwareDateTime())
    etag: Mapped[str | None] = mapped_column(String(500))


STATE_PATH_COOKIE = "cookie"
STATE_PATH_STORAGE = "platform_storage"
STATE_PATH_NEW_WINDOW = "new_window"


class Launch(Base):
    """An accepted launch. Holds the pseudonymous LTI ``sub``, never names or e-mail."""

    __tablename__ = "launches"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    registration_id: Mapped[int] = mapped_column(ForeignKey("registrations.id", ondelete="CASCADE"),
                                                 index=True)
    deployment_pk: Mapped[int] = mapped_column(ForeignKey("deployments.id", ondelete="CASCADE"))
    message_type: Mapped[str] = mapped_column(String(50))
    sub: Mapped[str] = mapped_column(String(255), index=True)
    role: Mapped[str] = mapped_column(String(20))
    roles: Mapped[list] = mapped_column(JSON)
    context_id: Mapped[str | None] = mapped_column(String(255))
    resource_link_id: Mapped[str | None] = mapped_column(String(255))
    custom: Mapped[dict] = mapped_column(JSON)
    municipality_id: Mapped[str] = mapped_column(ForeignKey("municipalities.id"), index=True)
    resolution_method: Mapped[str] = mapped_column(String(30))
    locale: Mapped[str | None] = mapped_column(String(10))
    created_at: Mapped[datetime] = mapped_column(AwareDateTime(), default=now, index=True)
    # The course placed on the resource link (custom parameter ``course``) and the round the launch is for.
    course_code: Mapped[str | None] = mapped_column(String(40), index=True)
    round_pk: Mapped[int | None] = mapped_column(ForeignKey("course_rounds.id", ondelete="SET NULL"))
    # LtiDeepLinkingRequest: the platform's deep_linking_settings, for the response.
    deep_linking: Mapped[dict | None] = mapped_column(JSON)
    # How the login's state was bound to the browser: "cookie", "platform_storage" or "new_window".
    state_path: Mapped[str | None] = mapped_column(String(20))

    municipality: Mapped[Municipality] = relationship()
    registration: Mapped[Registration] = relationship()


# -- national catalog (synced from the feed, never edited here) ---------------------------------------

COURSE_ACTIVE = "active"
COURSE_RETIRED = "retired"


class Course(Base):
    """A course of the national catalog. ``title``/``summary`` are LocalText: {"sv": ..., "nb": ...}."""

    __tablename__ = "courses"

    code: Mapped[str] = mapped_column(String(40), primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default=COURSE_ACTIVE)
    subject: Mapped[str | None] = mapped_column(String(20))
    title: Mapped[dict] = mapped_column(JSON)
    summary: Mapped[dict | None] = mapped_column(JSON)
    age_min: Mapped[int | None] = mapped_column(Integer)
    age_max: Mapped[int | None] = mapped_column(Integer)
    languages: Mapped[list] = mapped_column(JSON, default=list)
    # sha256 of the course's canonical JSON in the feed: equal hash, nothing to do.
    content_hash: Mapped[str] = mapped_column(String(64))
    # The arts school that provides the course's teaching (named by national staff; not in the feed).
    providing_school: Mapped[str | None] = mapped_column(String(200))
    retired_at: Mapped[datetime | None] = mapped_column(AwareDateTime())
    created_at: Mapped[datetime] = mapped_column(AwareDateTime(), default=now)
    updated_at: Mapped[datetime] = mapped_column(AwareDateTime(), default=now, onupdate=now)

    prices: Mapped[list["CoursePrice"]] = relationship(cascade="all, delete-orphan", back_populates="course")
    rounds: Mapped[list["CourseRound"]] = relationship(back_populates="course", order_by="CourseRound.starts_on")
    modules: Mapped[list["CourseModule"]] = relationship(back_populates="course", order_by="CourseModule.position")


class CoursePrice(Base):
    """Fixed price of one pupil seat for one round, per country."""

    __tablename__ = "course_prices"

    course_code: Mapped[str] = mapped_column(ForeignKey("courses.code", ondelete="CASCADE"), primary_key=True)
    country: Mapped[str] = mapped_column(String(2), primary_key=True)
    amount: Mapped[Decimal] = mapped_column(Numeric(12, 2))
    currency: Mapped[str] = mapped_column(String(3))

    course: Mapped[Course] = relationship(back_populates="prices")


# Round status: open (enrolment open until enrolment_closes_on), running (enrolment closed, enough
# participants), cancelled (below min_participants at enrolment close: seats released, no cost),
# retired (gone from the feed).


class CourseRound(Base):
    """One run of a course: one national teaching group with a capacity across all municipalities."""

    __tablename__ = "course_rounds"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    course_code: Mapped[str] = mapped_column(ForeignKey("courses.code", ondelete="CASCADE"), index=True)
    round_id: Mapped[str] = mapped_column(String(40))
    starts_on: Mapped[date] = mapped_column(Date)
    ends_on: Mapped[date] = mapped_column(Date)
    enrolment_closes_on: Mapped[date] = mapped_column(Date)
    withdrawal_deadline: Mapped[date] = mapped_column(Date)
    capacity: Mapped[int] = mapped_column(Integer)
    min_participants: Mapped[int] = mapped_column(Integer)
    # Seats taken in this round, all municipalities together (never above capacity).
    seats_taken: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(16), default=ROUND_OPEN)
    # The round's showcase: pupils share finished pieces with the round, shown after the teacher approves.
    showcase_enabled: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())

    course: Mapped[Course] = relationship(back_populates="rounds")

    __table_args__ = (UniqueConstraint("course_code", "round_id"),)


class CourseModule(Base):
    __tablename__ = "course_modules"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    course_code: Mapped[str] = mapped_column(ForeignKey("courses.code", ondelete="CASCADE"), index=True)
    key: Mapped[str] = mapped_column(String(100))  # the feed's module id
    position: Mapped[int] = mapped_column(Integer)
    title: Mapped[dict] = mapped_column(JSON)
    # False when the module is gone from the feed: kept, since pupils' work may refer to it.
    current: Mapped[bool] = mapped_column(default=True)

    course: Mapped[Course] = relationship(back_populates="modules")
    lessons: Mapped[list["Lesson"]] = relationship(back_populates="module", order_by="Lesson.position")
    assignments: Mapped[list["Assignment"]] = relationship(back_populates="module", order_by="Assignment.position")

    __table_args__ = (UniqueConstraint("course_code", "key"),)


class Lesson(Base):
    """``body_markdown`` is the feed's LocalText; ``body_html`` the same, rendered and sanitised."""

    __tablename__ = "lessons"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    module_id: Mapped[int] = mapped_column(ForeignKey("course_modules.id", ondelete="CASCADE"), index=True)
    key: Mapped[str] = mapped_column(String(100))
    position: Mapped[int] = mapped_column(Integer)
    title: Mapped[dict] = mapped_column(JSON)
    body_markdown: Mapped[dict] = mapped_column(JSON)
    body_html: Mapped[dict] = mapped_column(JSON)
    video_url: Mapped[str | None] = mapped_column(String(1000))
    duration_minutes: Mapped[int | None] = mapped_column(Integer)
    current: Mapped[bool] = mapped_column(default=True)

    module: Mapped[CourseModule] = relationship(back_populates="lessons")

    __table_args__ = (UniqueConstraint("module_id", "key"),)


class Assignment(Base):
    __tablename__ = "assignments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    module_id: Mapped[int] = mapped_column(ForeignKey("course_modules.id", ondelete="CASCADE"), index=True)
    key: Mapped[str] = mapped_column(String(100))
    position: Mapped[int] = mapped_column(Integer)
    title: Mapped[dict] = mapped_column(JSON)
    instructions_markdown: Mapped[dict] = mapped_column(JSON)
    instructions_html: Mapped[dict] = mapped_column(JSON)
    submission: Mapped[str] = mapped_column(String(10))  # file | text | none
    max_score: Mapped[Decimal] = mapped_column(Numeric(10, 2))
    current: Mapped[bool] = mapped_column(default=True)

    module: Mapped[CourseModule] = relationship(back_populates="assignments")

    __table_args__ = (UniqueConstraint("module_id", "key"),)


class CatalogSync(Base):
    """One run of ``catalog sync``: when, from where, what happened."""

    __tablename__ = "catalog_syncs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    started_at: Mapped[datetime] = mapped_column(AwareDateTime(), default=now, index=True)
    finished_at: Mapped[datetime | None] = mapped_column(AwareDateTime())
    source: Mapped[str] = mapped_column(String(1000))
    # applied | no_changes | not_modified | rejected | failed | dry_run
    result: Mapped[str] = mapped_column(String(20))
    added: Mapped[int] = mapped_column(Integer, default=0)
    updated: Mapped[int] = mapped_column(Integer, default=0)
    retired: Mapped[int] = mapped_column(Integer, default=0)
    unchanged: Mapped[int] = mapped_column(Integer, default=0)
    errors: Mapped[list] = mapped_column(JSON, default=list)
    etag: Mapped[str | None] = mapped_column(String(500))
    last_modified: Mapped[str | None] = mapped_column(String(100))
    feed_generated_at: Mapped[str | None] = mapped_column(String(40))


# -- orders (avrop), seats and waiting lists ------------------------------------------------------------

class Order(Base):
    """A municipality's call-off (avrop) of one course round, with a budget of pupil seats."""

    __tablename__ = "orders"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    municipality_id: Mapped[str] = mapped_column(ForeignKey("municipalities.id"), index=True)
    round_pk: Mapped[int] = mapped_column(ForeignKey("course_rounds.id", ondelete="CASCADE"), index=True)
    seats_budget: Mapped[int] = mapped_column(Integer)
    seats_taken: Mapped[int] = mapped_column(Integer, default=0)
    # The open pool: pupils whose school is owned by this municipality may claim a seat after a school sign-in
    # without an invitation code (the invitation stays the rule; see services.invitations).
    open_pool: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(AwareDateTime(), default=now)
    updated_at: Mapped[datetime] = mapped_column(AwareDateTime(), default=now, onupdate=now)

    municipality: Mapped[Municipality] = relationship()
    round: Mapped[CourseRound] = relationship()

    __table_args__ = (UniqueConstraint("municipality_id", "round_pk"),)


SEAT_ACTIVE = "active"
SEAT_WITHDRAWN = "withdrawn"
SEAT_CANCELLED = "cancelled"


class Seat(Base):
    """One pupil (pseudonymous ``sub`` at a registration) in one round, paid by the home municipality."""

    __tablename__ = "seats"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    round_pk: Mapped[int] = mapped_column(ForeignKey("course_rounds.id", ondelete="CASCADE"), index=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    municipality_id: Mapped[str] = mapped_column(ForeignKey("municipalities.id"))
    registration_id: Mapped[int] = mapped_column(ForeignKey("registrations.id", ondelete="CASCADE"))
    sub: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16), default=SEAT_ACTIVE)
    taken_at: Mapped[datetime] = mapped_column(AwareDateTime(), default=now)
    released_at: Mapped[datetime | None] = mapped_column(AwareDateTime())
    # When the pupil last saw the round's announcements (newer ones are marked new).
    announcements_seen_at: Mapped[datetime | None] = mapped_column(AwareDateTime())
    # The pupil's name as their platform sent it at their latest launch into this round (LAUNCH_NAMES), for the
    # round's teachers; None where the platform shares none. Goes with the sub (erasure, or purge after the round).
    name: Mapped[str | None] = mapped_column(String(255))

    __table_args__ = (UniqueConstraint("round_pk", "registration_id", "sub"),)


WAITING = "waiting"
WAITING_ADMITTED = "admitted"
WAITING_LEFT = "left"


class WaitlistEntry(Base):
    """First come, first served, per (municipality, course round)."""

    __tablename__ = "waitlist_entries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    round_pk: Mapped[int] = mapped_column(ForeignKey("course_rounds.id", ondelete="CASCADE"))
    registration_id: Mapped[int] = mapped_column(ForeignKey("registrations.id", ondelete="CASCADE"))
    sub: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16), default=WAITING)
    created_at: Mapped[datetime] = mapped_column(AwareDateTime(), default=now, index=True)
    admitted_at: Mapped[datetime | None] = mapped_column(AwareDateTime())

    __table_args__ = (UniqueConstraint("round_pk", "registration_id", "sub"),)


# -- course delivery: progress, hand-ins, reviews ----------------------------------------------------------

class LessonProgress(Base):
    """A lesson the pupil has marked as done."""

    __tablename__ = "lesson_progress"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    lesson_id: Mapped[int] = mapped_column(ForeignKey("lessons.id", ondelete="CASCADE"))
    registration_id: Mapped[int] = mapped_column(ForeignKey("registrations.id", ondelete="CASCADE"))
    sub: Mapped[str] = mapped_column(String(255))
    completed_at: Mapped[datetime] = mapped_column(AwareDateTime(), default=now)

    __table_args__ = (UniqueConstraint("lesson_id", "registration_id", "sub"),)


SUBMISSION_SUBMITTED = "submitted"
SUBMISSION_REVIEWED = "reviewed"


class Submission(Base):
    """A pupil's hand-in for one assignment in one round: its current version. Handed in again (replaced) until
    reviewed; after feedback the pupil may hand in a new version: the reviewed one is kept, unchanged, as a
    :class:`SubmissionVersion` and this row becomes the new version (``version`` + 1). Files live in the upload
    store (``file_key``), never in the database."""

    __tablename__ = "submissions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    assignment_id: Mapped[int] = mapped_column(ForeignKey("assignments.id", ondelete="CASCADE"), index=True)
    round_pk: Mapped[int] = mapped_column(ForeignKey("course_rounds.id", ondelete="CASCADE"), index=True)
    registration_id: Mapped[int] = mapped_column(ForeignKey("registrations.id", ondelete="CASCADE"))
    sub: Mapped[str] = mapped_column(String(255))
    context_id: Mapped[str | None] = mapped_column(String(255), index=True)
    municipality_id: Mapped[str] = mapped_column(ForeignKey("municipalities.id"))
    text: Mapped[str | None] = mapped_column(Text)
    file_key: Mapped[str | None] = mapped_column(String(200))
    file_name: Mapped[str | None] = mapped_column(String(255))
    content_type: Mapped[str | None] = mapped_column(String(100))
    file_size: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default=SUBMISSION_SUBMITTED, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=1)
    submitted_at: Mapped[datetime] = mapped_column(AwareDateTime(), default=now, index=True)
    # The placement (resource link) the pupil handed in from: its scores go to that placement's column.
    resource_link_id: Mapped[str | None] = mapped_column(String(255))
    # The number of the current version: 1, and one more for each new version handed in after feedback.
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")

    assignment: Mapped["Assignment"] = relationship()
    reviews: Mapped[list["Review"]] = relationship(back_populates="submission", order_by="Review.created_at")
    # The earlier versions, oldest first (the current one is the submission itself).
    versions: Mapped[list["SubmissionVersion"]] = relationship(
        back_populates="submission", order_by="SubmissionVersion.number", cascade="all, delete-orphan",
        passive_deletes=True)

    __table_args__ = (UniqueConstraint("assignment_id", "round_pk", "registration_id", "sub"),)


class Review(Base):
    """A teacher's written feedback and score for a hand-in: the score with its timestamp, per pupil and
    assignment, is what the gradebook receives."""

    __tablename__ = "reviews"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    submission_id: Mapped[int] = mapped_column(ForeignKey("submissions.id", ondelete="CASCADE"), index=True)
    assignment_id: Mapped[int] = mapped_column(ForeignKey("assignments.id", ondelete="CASCADE"))
    registration_id: Mapped[int] = mapped_column(ForeignKey("registrations.id", ondelete="CASCADE"))
    sub: Mapped[str] = mapped_column(String(255))  # the pupil
    reviewer_sub: Mapped[str] = mapped_column(String(255))
    feedback: Mapped[str] = mapped_column(Text)
    score: Mapped[Decimal] = mapped_column(Numeric(10, 2))
    score_max: Mapped[Decimal] = mapped_column(Numeric(10, 2))
    created_at: Mapped[datetime] = mapped_column(AwareDateTime(), default=now)
    # The version of the hand-in reviewed (``Submission.version`` when the review was written).
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    # When the pupil first opened the page showing it (null: not yet; the course page marks it new).
    seen_at: Mapped[datetime | None] = mapped_column(AwareDateTime(), nullable=True)

    submission: Mapped[Submission] = relationship(back_populates="reviews")


class SubmissionVersion(Base):
    """An earlier version of a hand-in, as it was reviewed: kept, unchanged, when the pupil hands in a new version
    after feedback. Its reviews are the submission's reviews with its ``number`` (``Review.version``). Its file
    stays in the upload store while this row names it (erasure and the retention purge remove both)."""

    __tablename__ = "submission_versions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    submission_id: Mapped[int] = mapped_column(ForeignKey("submissions.id", ondelete="CASCADE"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    text: Mapped[str | None] = mapped_column(Text)
    file_key: Mapped[str | None] = mapped_column(String(200))
    file_name: Mapped[str | None] = mapped_column(String(255))
    content_type: Mapped[str | None] = mapped_column(String(100))
    file_size: Mapped[int | None] = mapped_column(Integer)
    submitted_at: Mapped[datetime] = mapped_column(AwareDateTime())
    # When the next version replaced it.
    replaced_at: Mapped[datetime] = mapped_column(AwareDateTime(), default=now)

    submission: Mapped[Submission] = relationship(back_populates="versions")

    __table_args__ = (UniqueConstraint("submission_id", "number"),)


class UploadSession(Base):
    """A hand-in file on its way in pieces (a resumable chunked upload): the pupil, the assignment and the file's
    name, size and date as the browser gave them (a reload with the same file chosen again finds it), and how
    many bytes have arrived, in order. The bytes themselves wait under the upload directory
    (``partial/<token[:2]>/<token>``), never in the database or in memory; finishing moves them into the
    upload store as the hand-in's file. An unfinished one is removed by ``privacy purge`` after
    ``UPLOAD_SESSION_HOURS``."""

    __tablename__ = "upload_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token: Mapped[str] = mapped_column(String(64), unique=True)  # random, names the partial data
    registration_id: Mapped[int] = mapped_column(ForeignKey("registrations.id", ondelete="CASCADE"))
    sub: Mapped[str] = mapped_column(String(255))
    assignment_id: Mapped[int] = mapped_column(ForeignKey("assignments.id", ondelete="CASCADE"))
    round_pk: Mapped[int] = mapped_column(ForeignKey("course_rounds.id", ondelete="CASCADE"))
    file_name: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(100), default="")  # as the browser declared it
    size: Mapped[int] = mapped_column(BigInteger)
    last_modified: Mapped[int | None] = mapped_column(BigInteger)  # the file's date, ms (the browser's)
    received: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(AwareDateTime(), default=now)
    updated_at: Mapped[datetime] = mapped_column(AwareDateTime(), default=now, index=True)

    __table_args__ = (Index("ix_upload_sessions_pupil", "registration_id", "sub", "assignment_id"),)


# -- LTI Advantage: contexts, line items, the grade outbox, service tokens, rosters ---------------------

class LtiContext(Base):
    """A course in a platform (registration + context id) and the service endpoints its launches gave."""

    __tablename__ = "lti_contexts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    registration_id: Mapped[int] = mapped_column(ForeignKey("registrations.id", ondelete="CASCADE"))
    context_id: Mapped[str] = mapped_column(String(255))
    course_code: Mapped[str | None] = mapped_column(String(40))
    ags_lineitems_url: Mapped[str | None] = mapped_column(String(1000))
    ags_scopes: Mapped[list] = mapped_column(JSON, default=list)
    nrps_url: Mapped[str | None] = mapped_column(String(1000))
    nrps_differences_url: Mapped[str | None] = mapped_column(String(1000))
    roster_synced_at: Mapped[datetime | None] = mapped_column(AwareDateTime())
    updated_at: Mapped[datetime] = mapped_column(AwareDateTime(), default=now, onupdate=now)

    __table_args__ = (UniqueConstraint("registration_id", "context_id"),)


class LineItem(Base):
    """A platform gradebook column the tool knows: one assignment of one placement (resource link) in one
    context, or (``assignment_id`` None) the placement's own column from its launches (deep linking)."""

    __tablename__ = "line_items"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    context_pk: Mapped[int] = mapped_column(ForeignKey("lti_contexts.id", ondelete="CASCADE"))
    assignment_id: Mapped[int | None] = mapped_column(ForeignKey("assignments.id", ondelete="CASCADE"))
    resource_link_id: Mapped[str | None] = mapped_column(String(255))
    url: Mapped[str] = mapped_column(String(1000))

    __table_args__ = (UniqueConstraint("context_pk", "resource_link_id", "assignment_id"),)


# How a placement's scores reach the gradebook: one column per assignment (the platform lets the tool create
# columns), or the placement's own column with the course total the tool computes.
GRADES_PER_ASSIGNMENT = "per_assignment"
GRADES_COURSE_TOTAL = "course_total"


class GradePlacement(Base):
    """What the tool chose, once, for the scores of one placement (a resource link in a context): the mode,
    the column of a course total and its maximum, and the language of the columns it creates."""

    __tablename__ = "grade_placements"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    context_pk: Mapped[int] = mapped_column(ForeignKey("lti_contexts.id", ondelete="CASCADE"))
    resource_link_id: Mapped[str] = mapped_column(String(255))
    course_code: Mapped[str] = mapped_column(String(40))
    mode: Mapped[str] = mapped_column(String(20))
    lineitem_url: Mapped[str | None] = mapped_column(String(1000))  # course total: the placement's column
    score_maximum: Mapped[Decimal | None] = mapped_column(Numeric(10, 2))  # course total: as deep linking declared
    language: Mapped[str] = mapped_column(String(5))  # of the labels of created columns: sv, nb, nn or en
    decided_at: Mapped[datetime] = mapped_column(AwareDateTime(), default=now)

    __table_args__ = (UniqueConstraint("context_pk", "resource_link_id"),)


OUTBOX_PENDING = "pending"
OUTBOX_SENDING = "sending"
OUTBOX_SENT = "sent"
OUTBOX_DEAD = "dead"
OUTBOX_SUPERSEDED = "superseded"


class OutboxItem(Base):
    """Work for a platform, written in the same transaction as the change that causes it (a score when a
    review is saved), drained by ``flask ... worker``. Never deleted: sent, dead or superseded."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))  # score
    registration_id: Mapped[int] = mapped_column(ForeignKey("registrations.id", ondelete="CASCADE"))
    context_pk: Mapped[int] = mapped_column(ForeignKey("lti_contexts.id", ondelete="CASCADE"))
    assignment_id: Mapped[int] = mapped_column(ForeignKey("assignments.id", ondelete="CASCADE"))
    sub: Mapped[str] = mapped_column(String(255))
    # The placement the score belongs to (None on rows written before placements were recorded).
    resource_link_id: Mapped[str | None] = mapped_column(String(255))
    placement_id: Mapped[int | None] = mapped_column(ForeignKey("grade_placements.id", ondelete="CASCADE"))
    # One line item and one pupil: a newer score supersedes an unsent older one, and is never sent
    # before an older one still in flight.
    dedupe_key: Mapped[str] = mapped_column(String(400), index=True)
    payload: Mapped[dict] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default=OUTBOX_PENDING, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(AwareDateTime(), default=now, index=True)
    locked_until: Mapped[datetime | None] = mapped_column(AwareDateTime())
    last_error: Mapped[str | None] = mapped_column(Text)
    platform_status: Mapped[int | None] = mapped_column(Integer)
    platform_response: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(AwareDateTime(), default=now)
    sent_at: Mapped[datetime | None] = mapped_column(AwareDateTime())


class ServiceToken(Base):
    """An OAuth 2 access token for a registration's services, reused until shortly before it expires."""

    __tablename__ = "service_tokens"

    registration_id: Mapped[int] = mapped_column(ForeignKey("registrations.id", ondelete="CASCADE"),
                                                 primary_key=True)
    scopes: Mapped[str] = mapped_column(String(1000), primary_key=True)
    access_token: Mapped[str] = mapped_column(Text)
    expires_at: Mapped[datetime] = mapped_column(AwareDateTime())


class RosterMember(Base):
    """A member of a platform context from NRPS: the user id, roles and status (names only if configured)."""

    __tablename__ = "roster_members"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    context_pk: Mapped[int] = mapped_column(ForeignKey("lti_contexts.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[str] = mapped_column(String(255))
    roles: Mapped[list] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(16), default="Active")
    name: Mapped[str | None] = mapped_column(String(255))
    updated_at: Mapped[datetime] = mapped_column(AwareDateTime(), default=now, onupdate=now)

    __table_args__ = (UniqueConstraint("context_pk", "user_id"),)


class AuditEntry(Base):
    """Every change made in the consoles: who, what, when."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(AwareDateTime(), default=now, index=True)
    actor: Mapped[str] = mapped_column(String(255))
    action: Mapped[str] = mapped_column(String(100))
    target: Mapped[str] = mapped_column(String(255))
    details: Mapped[dict] = mapped_column(JSON, default=dict)


class MunicipalContact(Base):
    """A person listed as the arts-school contact of a municipality: opens its console from a launch as an
    institution or system administrator of the platform (services.municipal)."""

    __tablename__ = "municipal_contacts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    municipality_id: Mapped[str] = mapped_column(ForeignKey("municipalities.id"), index=True)
    registration_id: Mapped[int] = mapped_column(ForeignKey("registrations.id", ondelete="CASCADE"))
    sub: Mapped[str] = mapped_column(String(255))

    __table_args__ = (UniqueConstraint("registration_id", "sub", "municipality_id"),)


class RateLimitCounter(Base):
    """A fixed-window request counter for the rate limits, when Redis is not configured: one row per limited
    key (a keyed hash of a client address or a registration, never the address itself), the start of its
    current window and the requests counted in it."""

    __tablename__ = "rate_limit_counters"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    window_start: Mapped[datetime] = mapped_column(AwareDateTime(), index=True)
    hits: Mapped[int] = mapped_column(Integer, default=0)


# -- the round's classroom: its teachers, announcements, conversations on hand-ins, the showcase ----------

class RoundTeacher(Base):
    """A teacher of a course round, assigned by national staff. Identified the way they arrive: an LTI launch
    from their own platform (``registration_id`` + ``sub``, bound when they open their invitation link from
    such a launch; until then only ``invite_hash`` is set), or the staff OpenID Connect sign-in (``email``,
    verified by the provider)."""

    __tablename__ = "round_teachers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    round_pk: Mapped[int] = mapped_column(ForeignKey("course_rounds.id", ondelete="CASCADE"), index=True)
    name: Mapped[str | None] = mapped_column(String(200))  # shown to the round's pupils
    registration_id: Mapped[int | None] = mapped_column(ForeignKey("registrations.id", ondelete="CASCADE"))
    sub: Mapped[str | None] = mapped_column(String(255))
    email: Mapped[str | None] = mapped_column(String(320))
    # sha256 of the invitation token while the invitation waits to be opened from a launch.
    invite_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    invite_expires_at: Mapped[datetime | None] = mapped_column(AwareDateTime())
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(AwareDateTime(), default=now)

    round: Mapped[CourseRound] = relationship()

    __table_args__ = (UniqueConstraint("round_pk", "registration_id", "sub", name="uq_round_teachers_launch"),
                      UniqueConstraint("round_pk", "email", name="uq_round_teachers_email"),
                      Index("ix_round_teachers_identity", "registration_id", "sub"),
                      Index("ix_round_teachers_email", "email"))


class Announcement(Base):
    """A round teacher's message to the whole round, shown on its pupils' course page in the language it was
    written in (``language``)."""

    __tablename__ = "announcements"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    round_pk: Mapped[int] = mapped_column(ForeignKey("course_rounds.id", ondelete="CASCADE"), index=True)
    author_name: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    language: Mapped[str | None] = mapped_column(String(10))
    created_at: Mapped[datetime] = mapped_column(AwareDateTime(), default=now, index=True)


MESSAGE_FROM_PUPIL = "pupil"
MESSAGE_FROM_TEACHER = "teacher"


class HandInMessage(Base):
    """One message of the conversation between a pupil and the round's teacher about a hand-in."""

    __tablename__ = "hand_in_messages"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    submission_id: Mapped[int] = mapped_column(ForeignKey("submissions.id", ondelete="CASCADE"), index=True)
    author_role: Mapped[str] = mapped_column(String(10))  # MESSAGE_FROM_PUPIL or MESSAGE_FROM_TEACHER
    author_name: Mapped[str | None] = mapped_column(String(200))  # a teacher's name; a pupil's is never kept
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(AwareDateTime(), default=now)
    read_at: Mapped[datetime | None] = mapped_column(AwareDateTime())  # by the other side


SHOWCASE_PENDING = "pending"
SHOWCASE_APPROVED = "approved"
SHOWCASE_WITHDRAWN = "withdrawn"


class ShowcaseItem(Base):
    """A finished hand-in a pupil shares with the rest of the round: visible only inside the round, only once
    the teacher has approved it, and gone when the pupil withdraws it."""

    __tablename__ = "showcase_items"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    round_pk: Mapped[int] = mapped_column(ForeignKey("course_rounds.id", ondelete="CASCADE"), index=True)
    submission_id: Mapped[int] = mapped_column(ForeignKey("submissions.id", ondelete="CASCADE"), unique=True)
    caption: Mapped[str | None] = mapped_column(String(500))
    status: Mapped[str] = mapped_column(String(16), default=SHOWCASE_PENDING)
    created_at: Mapped[datetime] = mapped_column(AwareDateTime(), default=now)
    approved_at: Mapped[datetime | None] = mapped_column(AwareDateTime())
    withdrawn_at: Mapped[datetime | None] = mapped_column(AwareDateTime())

    submission: Mapped[Submission] = relationship()


# -- the second door: school sign-in and seat invitations ---------------------------------------------------

REGISTRATION_KIND_LTI = "lti"
REGISTRATION_KIND_SCHOOL = "school_sign_in"
PROTOCOL_OIDC = "oidc"
PROTOCOL_SAML = "saml"


class IdentityProvider(Base):
    """A school identity provider of the second door: Feide (OpenID Connect) or a SAML federation such as
    Skolfederation. Its registration (kind ``school_sign_in``) is the namespace of the subjects it signs in."""

    __tablename__ = "identity_providers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    registration_id: Mapped[int] = mapped_column(ForeignKey("registrations.id", ondelete="CASCADE"), unique=True)
    protocol: Mapped[str] = mapped_column(String(8))  # oidc | saml
    # feide | skolfederation | oidc | saml: which attribute profile and which school facts to read.
    profile: Mapped[str] = mapped_column(String(20))
    name: Mapped[str] = mapped_column(String(200))
    country: Mapped[str] = mapped_column(String(2))  # the country whose pupils sign in here (SE, NO)
    # OpenID Connect: the discovery document, the client secret (never in the repository), the scopes and the
    # Groups API of Feide.
    discovery_url: Mapped[str | None] = mapped_column(String(1000))
    client_secret: Mapped[str | None] = mapped_column(String(500))
    scopes: Mapped[str | None] = mapped_column(String(500))
    groups_api_url: Mapped[str | None] = mapped_column(String(1000))
    # SAML: the metadata of the IdP or of the whole federation (XML, as last read), and where it came from.
    metadata_xml: Mapped[str | None] = mapped_column(Text)
    metadata_url: Mapped[str | None] = mapped_column(String(1000))
    metadata_fetched_at: Mapped[datetime | None] = mapped_column(AwareDateTime())
    status: Mapped[str] = mapped_column(String(16), default="active")  # active | disabled
    created_at: Mapped[datetime] = mapped_column(AwareDateTime(), default=now)

    registration: Mapped[Registration] = relationship()


class SignInRequest(Base):
    """One outstanding sign-in at a school identity provider (a SAML AuthnRequest id or an OpenID Connect
    state): answered at most once, within its lifetime. A second answer is a replay."""

    __tablename__ = "sign_in_requests"

    id: Mapped[str] = mapped_column(String(100), primary_key=True)
    provider_id: Mapped[int] = mapped_column(ForeignKey("identity_providers.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(AwareDateTime(), default=now)
    expires_at: Mapped[datetime] = mapped_column(AwareDateTime(), index=True)
    used_at: Mapped[datetime | None] = mapped_column(AwareDateTime())


class SchoolUnit(Base):
    """A Swedish school unit as Skolverket's school unit register (Skolenhetsregistret) gives it, cached:
    its municipality and owner cross-check a seat invitation."""

    __tablename__ = "school_units"

    code: Mapped[str] = mapped_column(String(8), primary_key=True)
    name: Mapped[str] = mapped_column(String(300))
    municipality_id: Mapped[str | None] = mapped_column(String(8))
    owner_name: Mapped[str | None] = mapped_column(String(300))
    owner_org_number: Mapped[str | None] = mapped_column(String(20))
    owner_type: Mapped[str | None] = mapped_column(String(40))
    fetched_at: Mapped[datetime] = mapped_column(AwareDateTime(), default=now)


INVITATION_ISSUED = "issued"
INVITATION_REDEEMED = "redeemed"
INVITATION_REVOKED = "revoked"
CHECK_MATCH = "match"  # the school's owner is the invitation's municipality
CHECK_MISMATCH = "check"  # another owner (county, independent school, another municipality): shown to check
CHECK_UNKNOWN = "unknown"  # the sign-in gave no school (or an LTI launch redeemed it)


class SeatInvitation(Base):
    """A single-use seat invitation issued by a municipality's arts school against its order's budget. Only the
    code's sha256 is kept (the code is shown once, when issued). Redeeming takes the seat; revoking or expiry
    frees nothing it did not take."""

    __tablename__ = "seat_invitations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    code_hint: Mapped[str] = mapped_column(String(8))  # the code's last characters, to tell invitations apart
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    round_pk: Mapped[int] = mapped_column(ForeignKey("course_rounds.id", ondelete="CASCADE"), index=True)
    municipality_id: Mapped[str] = mapped_column(ForeignKey("municipalities.id"), index=True)
    batch: Mapped[str | None] = mapped_column(String(40))
    label: Mapped[str | None] = mapped_column(String(200))  # the arts school's own note (e.g. its pupil number)
    status: Mapped[str] = mapped_column(String(16), default=INVITATION_ISSUED, index=True)
    expires_at: Mapped[datetime] = mapped_column(AwareDateTime())
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(AwareDateTime(), default=now)
    revoked_at: Mapped[datetime | None] = mapped_column(AwareDateTime())
    redeemed_at: Mapped[datetime | None] = mapped_column(AwareDateTime())
    # Who redeemed it: a school sign-in (the provider's registration) or an LTI launch (the platform's).
    registration_id: Mapped[int | None] = mapped_column(ForeignKey("registrations.id", ondelete="CASCADE"))
    sub: Mapped[str | None] = mapped_column(String(255))
    seat_id: Mapped[int | None] = mapped_column(ForeignKey("seats.id", ondelete="SET NULL"))
    # The cross-check of the redeeming sign-in's school (not a gate).
    school_name: Mapped[str | None] = mapped_column(String(300))
    school_code: Mapped[str | None] = mapped_column(String(40))
    school_owner: Mapped[str | None] = mapped_column(String(300))
    school_municipality_id: Mapped[str | None] = mapped_column(String(8))
    cross_check: Mapped[str | None] = mapped_column(String(16))
    # The pupil's name, only where a teacher's view needs it and ROSTER_NAMES keeps names (as with LTI rosters).
    pupil_name: Mapped[str | None] = mapped_column(String(255))

    order: Mapped[Order] = relationship()
    round: Mapped[CourseRound] = relationship()
    municipality: Mapped[Municipality] = relationship()

    __table_args__ = (Index("ix_seat_invitations_identity", "registration_id", "sub"),)
