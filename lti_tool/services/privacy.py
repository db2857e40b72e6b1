"""Pupils' data: export everything stored about one pupil, erase it, purge what is older than the retention
period, and log staff access to a pupil's work. Never commits: the caller does (and removes hand-in files
from disk only after the commit, so a failed transaction never loses a file the database still names).

A pupil is a pseudonymous LTI ``sub`` at one registration (issuer + client id): the same ``sub`` at two
platforms is two different people.

Invoices need seats, not people: a seat row is never deleted by erasure or purge. Its ``sub`` is replaced
by an anonymous marker (random, so it links to nothing and keeps the seat's unique constraint) and the pupil's
name its launch carried (``seats.name``) is cleared, while its
status, municipality, order and round, and the order's and round's counters, stay exactly as they were.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, delete, exists, func, inspect, or_, select, union, update
from sqlalchemy.orm import Session
from sqlalchemy.sql import column, table

from .. import clock
from ..domain.calendar import national_date
from ..domain.errors import DomainError
from ..models import (OUTBOX_DEAD, OUTBOX_SENT, OUTBOX_SUPERSEDED, SEAT_ACTIVE, WAITING, Assignment, AuditEntry,
                      CourseModule, CourseRound, Launch, Lesson, LessonProgress, LtiContext, MunicipalContact, Order,
                      OutboxItem, Registration, Review, RosterMember, Seat, SeatInvitation, Submission,
                      SubmissionVersion, WaitlistEntry)
from .errors import NotFoundError
from .platforms import find_registration

ANONYMOUS_PREFIX = "anonymous:"
# Audit actions for staff opening a pupil's work; the purge removes them after the retention period.
ACCESS_ACTION_PREFIX = "pupil_work."
ACCESS_PUPIL_PAGE = "pupil_work.pupil_page"
ACCESS_HAND_IN = "pupil_work.hand_in"
ACCESS_FILE = "pupil_work.file"
ACCESS_EXPORT = "pupil_work.export"
ACTION_ERASE = "privacy.erase"
ACTION_PURGE = "privacy.purge"


def anonymous_marker() -> str:
    """What replaces a pupil's ``sub`` on rows that must stay: random, so it can never be traced back."""
    return ANONYMOUS_PREFIX + secrets.token_hex(16)


def is_anonymous(sub: str | None) -> bool:
    return bool(sub) and sub.startswith(ANONYMOUS_PREFIX)


def pupil_pseudonym(secret: str, registration_id: int, sub: str) -> str:
    """How the audit log names a pupil: a keyed hash of registration and ``sub`` (never the ``sub`` itself).
    Without the tool's secret it cannot be computed from a ``sub``, and it cannot be reversed at all."""
    message = f"lti_tool.pupil-pseudonym\x1f{registration_id}\x1f{sub}".encode("utf-8")
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()[:20]


def access_target(pseudonym: str, submission_id: int | None = None) -> str:
    target = f"pupil {pseudonym}"
    return f"{target} submission {submission_id}" if submission_id is not None else target


def record_access(session: Session, *, actor: str, action: str, pseudonym: str, submission_id: int | None = None,
                  **details: Any) -> AuditEntry:
    """Someone on the staff side opened a pupil's work: who, which pupil (pseudonym), which hand-in."""
    entry = AuditEntry(actor=actor[:255], action=action, target=access_target(pseudonym, submission_id),
                       details={k: v for k, v in details.items() if v is not None})
    session.add(entry)
    return entry


# -- which pupil ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Pupil:
    registration_id: int
    sub: str


class AmbiguousPupilError(DomainError):
    """The same ``sub`` is stored under several registrations: the caller must name one."""

    code = "pupil_ambiguous"
    status = 409

    def __init__(self, sub: str, registrations: list[Registration]):
        super().__init__(f"{sub!r} is stored under {len(registrations)} registrations: name one")
        self.registrations = registrations


def registrations_of(session: Session, sub: str) -> list[Registration]:
    """Every registration under which something is stored about ``sub``."""
    ids = union(
        select(Launch.registration_id).where(Launch.sub == sub),
        select(Seat.registration_id).where(Seat.sub == sub),
        select(WaitlistEntry.registration_id).where(WaitlistEntry.sub == sub),
        select(LessonProgress.registration_id).where(LessonProgress.sub == sub),
        select(Submission.registration_id).where(Submission.sub == sub),
        select(Review.registration_id).where(Review.sub == sub),
        select(OutboxItem.registration_id).where(OutboxItem.sub == sub),
        select(MunicipalContact.registration_id).where(MunicipalContact.sub == sub),
        select(SeatInvitation.registration_id).where(SeatInvitation.sub == sub),
        select(LtiContext.registration_id).join(RosterMember, RosterMember.context_pk == LtiContext.id)
        .where(RosterMember.user_id == sub),
    ).subquery()
    return list(session.scalars(select(Registration).where(Registration.id.in_(select(ids.c[0])))
                                .order_by(Registration.id)))


def resolve_pupil(session: Session, sub: str, *, registration_id: int | None = None, issuer: str | None = None,
                  client_id: str | None = None) -> Pupil:
    """The pupil named by ``sub`` and a registration (its id, or issuer and client id). With the ``sub``
    alone, the one registration it is stored under; several is refused (:class:`AmbiguousPupilError`)."""
    if not sub or not sub.strip():
        raise DomainError("name the pupil's sub", code="invalid")
    if is_anonymous(sub):
        raise DomainError("an anonymous marker names nobody", code="invalid")
    if registration_id is not None:
        if session.get(Registration, registration_id) is None:
            raise NotFoundError(f"no registration {registration_id}")
        return Pupil(registration_id, sub)
    if issuer or client_id:
        if not (issuer and client_id):
            raise DomainError("give both the issuer and the client id (or the registration id)", code="invalid")
        return Pupil(find_registration(session, issuer, client_id).id, sub)  # the active one, if any
    found = registrations_of(session, sub)
    if not found:
        raise NotFoundError(f"nothing is stored about {sub!r} under any registration")
    if len(found) > 1:
        raise AmbiguousPupilError(sub, found)
    return Pupil(found[0].id, sub)


# -- export ---------------------------------------------------------------------------------------------

def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(timezone.utc).isoformat() if moment is not None else None


def _number(value: Decimal | None) -> str | None:
    return None if value is None else f"{value:.2f}"


@dataclass(frozen=True)
class ExportFile:
    submission_id: int
    file_key: str
    file_name: str
    version: int | None = None  # an earlier version's file (None: the hand-in's current one)


@dataclass
class Export:
    document: dict[str, Any]
    files: list[ExportFile] = field(default_factory=list)


def _rounds(session: Session, pks) -> dict[int, CourseRound]:
    pks = {pk for pk in pks if pk is not None}
    return {r.id: r for r in session.scalars(select(CourseRound).where(CourseRound.id.in_(pks)))} if pks else {}


def _round_label(rounds: dict[int, CourseRound], pk: int | None) -> dict[str, str] | None:
    round_ = rounds.get(pk) if pk is not None else None
    return {"course": round_.course_code, "round": round_.round_id} if round_ is not None else None


def _reviews(reviews: list[Review]) -> list[dict[str, Any]]:
    return [{"feedback": r.feedback, "score": _number(r.score), "score_max": _number(r.score_max),
             "at": _iso(r.created_at)} for r in reviews]


def _version_item(submission: Submission, version: SubmissionVersion, files: list[ExportFile]) -> dict[str, Any]:
    """An earlier version of a hand-in, with the reviews it got; its file joins ``files``."""
    item: dict[str, Any] = {"version": version.number, "submitted_at": _iso(version.submitted_at),
                            "replaced_at": _iso(version.replaced_at), "text": version.text, "file": None,
                            "reviews": _reviews([r for r in submission.reviews if r.version == version.number])}
    if version.file_key:
        item["file"] = {"name": version.file_name, "content_type": version.content_type, "size": version.file_size}
        files.append(ExportFile(submission.id, version.file_key, version.file_name or "file", version.number))
    return item


def export_pupil(session: Session, pupil: Pupil, *, secret: str, retention_days: int | None = None) -> Export:
    """Everything stored about the pupil, as a JSON-ready document, and the hand-in files it names.
    Reviews leave out who wrote them (the teacher's id is the teacher's data, not the pupil's)."""
    registration = session.get(Registration, pupil.registration_id)
    reg, sub = pupil.registration_id, pupil.sub
    launches = list(session.scalars(select(Launch).where(Launch.registration_id == reg, Launch.sub == sub)
                                    .order_by(Launch.created_at)))
    seats_ = list(session.scalars(select(Seat).where(Seat.registration_id == reg, Seat.sub == sub)
                                  .order_by(Seat.taken_at)))
    waiting = list(session.scalars(select(WaitlistEntry).where(WaitlistEntry.registration_id == reg,
                                                               WaitlistEntry.sub == sub)
                                   .order_by(WaitlistEntry.created_at)))
    progress = session.execute(select(LessonProgress, Lesson, CourseModule)
                               .join(Lesson, Lesson.id == LessonProgress.lesson_id)
                               .join(CourseModule, CourseModule.id == Lesson.module_id)
                               .where(LessonProgress.registration_id == reg, LessonProgress.sub == sub)
                               .order_by(LessonProgress.completed_at)).all()
    submissions = list(session.scalars(select(Submission).where(Submission.registration_id == reg,
                                                                Submission.sub == sub)
                                       .order_by(Submission.submitted_at)))
    assignments = {a.id: a for a in session.scalars(select(Assignment).where(
        Assignment.id.in_({s.assignment_id for s in submissions})))} if submissions else {}
    modules = {m.id: m for m in session.scalars(select(CourseModule).where(
        CourseModule.id.in_({a.module_id for a in assignments.values()})))} if assignments else {}
    roster = session.execute(select(RosterMember, LtiContext).join(LtiContext, LtiContext.id == RosterMember.context_pk)
                             .where(LtiContext.registration_id == reg, RosterMember.user_id == sub)
                             .order_by(RosterMember.id)).all()
    outbox = list(session.scalars(select(OutboxItem).where(OutboxItem.registration_id == reg, OutboxItem.sub == sub)
                                  .order_by(OutboxItem.id)))
    contacts = list(session.scalars(select(MunicipalContact).where(MunicipalContact.registration_id == reg,
                                                                   MunicipalContact.sub == sub)))
    invited = list(session.scalars(select(SeatInvitation).where(SeatInvitation.registration_id == reg,
                                                               SeatInvitation.sub == sub)
                                   .order_by(SeatInvitation.redeemed_at)))
    pseudonym = pupil_pseudonym(secret, reg, sub)
    access = list(session.scalars(select(AuditEntry).where(AuditEntry.target.startswith(access_target(pseudonym)))
                                  .order_by(AuditEntry.at, AuditEntry.id)))
    orders = {o.id: o for o in session.scalars(select(Order).where(Order.id.in_({w.order_id for w in waiting})))} \
        if waiting else {}
    rounds = _rounds(session, [launch.round_pk for launch in launches] + [s.round_pk for s in seats_] +
                     [w.round_pk for w in waiting] + [s.round_pk for s in submissions] +
                     [i.round_pk for i in invited])

    files: list[ExportFile] = []
    handed_in = []
    for s in submissions:
        assignment = assignments.get(s.assignment_id)
        module = modules.get(assignment.module_id) if assignment else None
        item: dict[str, Any] = {
            "id": s.id,
            **(_round_label(rounds, s.round_pk) or {}),
            "assignment": assignment.key if assignment else None,
            "assignment_title": assignment.title if assignment else None,
            "module": module.key if module else None,
            "municipality": s.municipality_id,
            "context_id": s.context_id,
            "status": s.status,
            "attempts": s.attempts,
            "submitted_at": _iso(s.submitted_at),
            "version": s.version,
            "text": s.text,
            "file": None,
            # The current version's reviews (and any that names no version kept); earlier ones with their version.
            "reviews": _reviews([r for r in s.reviews if r.version not in {v.number for v in s.versions}]),
            "earlier_versions": [_version_item(s, v, files) for v in s.versions],
        }
        if s.file_key:
            item["file"] = {"name": s.file_name, "content_type": s.content_type, "size": s.file_size}
            files.append(ExportFile(s.id, s.file_key, s.file_name or "file"))
        handed_in.append(item)

    document = {
        "format": "kulturskola-lti-tool/pupil-export/1",
        "exported_at": _iso(clock.now()),
        "pupil": {"sub": sub, "registration": {"id": reg, "name": registration.name, "issuer": registration.issuer,
                                               "client_id": registration.client_id},
                  "audit_pseudonym": pseudonym},
        "retention_days": retention_days,
        "launches": [{"id": launch.id, "at": _iso(launch.created_at), "message_type": launch.message_type,
                      "role": launch.role, "roles": launch.roles, "context_id": launch.context_id,
                      "resource_link_id": launch.resource_link_id, "custom": launch.custom,
                      "municipality": launch.municipality_id, "resolved_by": launch.resolution_method,
                      "locale": launch.locale, "course": launch.course_code,
                      "round": (_round_label(rounds, launch.round_pk) or {}).get("round")} for launch in launches],
        "seats": [{**(_round_label(rounds, s.round_pk) or {}), "municipality": s.municipality_id, "status": s.status,
                   "taken_at": _iso(s.taken_at), "released_at": _iso(s.released_at), "name": s.name}
                  for s in seats_],
        "waiting_list": [{**(_round_label(rounds, w.round_pk) or {}),
                          "municipality": orders[w.order_id].municipality_id if w.order_id in orders else None,
                          "status": w.status, "since": _iso(w.created_at), "admitted_at": _iso(w.admitted_at)}
                         for w in waiting],
        "lessons_done": [{"course": module.course_code, "module": module.key, "lesson": lesson.key,
                          "title": lesson.title, "at": _iso(mark.completed_at)}
                         for mark, lesson, module in progress],
        "hand_ins": handed_in,
        "course_rosters": [{"context_id": context.context_id, "roles": member.roles, "status": member.status,
                            "name": member.name, "updated_at": _iso(member.updated_at)} for member, context in roster],
        "grades_sent_to_platform": [{"kind": o.kind, "status": o.status, "created_at": _iso(o.created_at),
                                     "sent_at": _iso(o.sent_at), "payload": o.payload} for o in outbox],
        "municipal_contact_for": [c.municipality_id for c in contacts],
        "invitations_redeemed": [{**(_round_label(rounds, i.round_pk) or {}), "municipality": i.municipality_id,
                                  "redeemed_at": _iso(i.redeemed_at), "name": i.pupil_name, "school": i.school_name,
                                  "school_code": i.school_code, "school_owner": i.school_owner}
                                 for i in invited],
        "access_log": [{"at": _iso(e.at), "who": e.actor, "what": e.action, "target": e.target} for e in access],
    }
    return Export(document, files)


# -- erasure --------------------------------------------------------------------------------------------

def _launch_references(session: Session) -> list[tuple[str, str]]:
    """Columns of other tables that point at a launch (found in the database itself, so a table added later
    is honoured): a launch they reference is kept, with its personal fields dropped."""
    inspector = inspect(session.connection())
    found = []
    for name in inspector.get_table_names():
        for fk in inspector.get_foreign_keys(name):
            if fk.get("referred_table") == Launch.__tablename__ and len(fk.get("constrained_columns", [])) == 1:
                found.append((name, fk["constrained_columns"][0]))
    return found


def _referenced(references: list[tuple[str, str]]):
    """SQL condition: the launch row is pointed at by some other row."""
    conditions = []
    for name, col in references:
        other = table(name, column(col))
        conditions.append(exists().where(other.c[col] == Launch.id))
    return or_(*conditions) if conditions else None


def _drop_launches(session: Session, where) -> tuple[int, int]:
    """Delete the launches matching ``where``; those another row points at stay, without their ``sub``,
    custom parameters and deep-linking settings. Returns (deleted, anonymised)."""
    referenced = _referenced(_launch_references(session))
    kept = 0
    if referenced is not None:
        ids = list(session.scalars(select(Launch.id).where(where, referenced,
                                                           ~Launch.sub.startswith(ANONYMOUS_PREFIX))))
        if ids:
            session.execute(update(Launch), [{"id": i, "sub": anonymous_marker(), "custom": {}, "deep_linking": None}
                                             for i in ids])
        kept = len(ids)
        where = and_(where, ~referenced)
    deleted = session.execute(delete(Launch).where(where).execution_options(synchronize_session=False)).rowcount
    return deleted, kept


def _anonymise_seats(session: Session, where) -> int:
    ids = list(session.scalars(select(Seat.id).where(where, ~Seat.sub.startswith(ANONYMOUS_PREFIX))))
    if ids:
        session.execute(update(Seat), [{"id": i, "sub": anonymous_marker(), "name": None} for i in ids])
    return len(ids)


def _anonymise_invitations(session: Session, where) -> int:
    """A redeemed invitation keeps that it was redeemed (the arts school's count) but no longer who by: no
    subject (a random marker each), no name, no school."""
    ids = list(session.scalars(select(SeatInvitation.id).where(where, SeatInvitation.sub.is_not(None),
                                                               ~SeatInvitation.sub.startswith(ANONYMOUS_PREFIX))))
    if ids:
        session.execute(update(SeatInvitation), [
            {"id": i, "sub": anonymous_marker(), "pupil_name": None, "school_name": None, "school_code": None,
             "school_owner": None, "school_municipality_id": None} for i in ids])
    return len(ids)


def _delete_submissions(session: Session, where) -> tuple[int, int, int, list[str]]:
    """Hand-ins with their earlier versions and reviews; returns (submissions, versions, reviews, file keys to
    remove after the commit)."""
    chosen = select(Submission.id).where(where)
    keys = [k for k in session.scalars(select(Submission.file_key).where(where, Submission.file_key.is_not(None)))]
    keys += session.scalars(select(SubmissionVersion.file_key).where(SubmissionVersion.submission_id.in_(chosen),
                                                                     SubmissionVersion.file_key.is_not(None)))
    versions = session.execute(delete(SubmissionVersion).where(SubmissionVersion.submission_id.in_(chosen))
                               .execution_options(synchronize_session=False)).rowcount
    reviews = session.execute(delete(Review).where(Review.submission_id.in_(chosen))
                              .execution_options(synchronize_session=False)).rowcount
    submissions = session.execute(delete(Submission).where(where).execution_options(synchronize_session=False)).rowcount
    return submissions, versions, reviews, keys


def _delete_old_versions(session: Session, cutoff: datetime) -> tuple[int, int, list[str]]:
    """Earlier versions handed in before ``cutoff`` (of hand-ins that stay: their current version is newer) and
    the reviews they got; returns (versions, reviews, file keys to remove after the commit)."""
    old = select(SubmissionVersion.submission_id, SubmissionVersion.number).where(
        SubmissionVersion.submitted_at < cutoff)
    pairs = session.execute(old).all()
    if not pairs:
        return 0, 0, []
    keys = list(session.scalars(select(SubmissionVersion.file_key).where(SubmissionVersion.submitted_at < cutoff,
                                                                         SubmissionVersion.file_key.is_not(None))))
    reviews = sum(session.execute(delete(Review).where(Review.submission_id == submission_id,
                                                       Review.version == number)
                                  .execution_options(synchronize_session=False)).rowcount
                  for submission_id, number in pairs)
    versions = session.execute(delete(SubmissionVersion).where(SubmissionVersion.submitted_at < cutoff)
                               .execution_options(synchronize_session=False)).rowcount
    return versions, reviews, keys


def _roster_rows(pupil: Pupil):
    contexts = select(LtiContext.id).where(LtiContext.registration_id == pupil.registration_id)
    return and_(RosterMember.user_id == pupil.sub, RosterMember.context_pk.in_(contexts))


@dataclass
class ErasureReport:
    counts: dict[str, int] = field(default_factory=dict)
    file_keys: list[str] = field(default_factory=list)
    # Seats still active in rounds that have not ended: the pupil's place keeps counting (and costing); a
    # later launch of the same pupil is a new pupil.
    active_seats: int = 0

    def total(self) -> int:
        return sum(self.counts.values())


def count_pupil_data(session: Session, pupil: Pupil) -> ErasureReport:
    """What an erasure would remove or anonymise (read only, for the confirmation)."""
    reg, sub = pupil.registration_id, pupil.sub

    def count(model, *where) -> int:
        return int(session.scalar(select(func.count()).select_from(model).where(*where)) or 0)

    own_submissions = select(Submission.id).where(Submission.registration_id == reg, Submission.sub == sub)
    report = ErasureReport(counts={
        "submissions": count(Submission, Submission.registration_id == reg, Submission.sub == sub),
        "submission_versions": count(SubmissionVersion, SubmissionVersion.submission_id.in_(own_submissions)),
        "files": count(Submission, Submission.registration_id == reg, Submission.sub == sub,
                       Submission.file_key.is_not(None))
        + count(SubmissionVersion, SubmissionVersion.submission_id.in_(own_submissions),
                SubmissionVersion.file_key.is_not(None)),
        "reviews": count(Review, or_(Review.submission_id.in_(own_submissions),
                                     and_(Review.registration_id == reg, Review.sub == sub))),
        "lesson_progress": count(LessonProgress, LessonProgress.registration_id == reg, LessonProgress.sub == sub),
        "waitlist_entries": count(WaitlistEntry, WaitlistEntry.registration_id == reg, WaitlistEntry.sub == sub),
        "roster_rows": count(RosterMember, _roster_rows(pupil)),
        "outbox_rows": count(OutboxItem, OutboxItem.registration_id == reg, OutboxItem.sub == sub),
        "launches": count(Launch, Launch.registration_id == reg, Launch.sub == sub),
        "seats_anonymised": count(Seat, Seat.registration_id == reg, Seat.sub == sub),
        "municipal_contacts": count(MunicipalContact, MunicipalContact.registration_id == reg,
                                    MunicipalContact.sub == sub),
    })
    report.active_seats = _active_seats(session, pupil)
    return report


def _active_seats(session: Session, pupil: Pupil) -> int:
    today = national_date(clock.now())  # a round has ended when its last day is over in Sweden and Norway
    return int(session.scalar(select(func.count()).select_from(Seat).join(CourseRound, CourseRound.id == Seat.round_pk)
                              .where(Seat.registration_id == pupil.registration_id, Seat.sub == pupil.sub,
                                     Seat.status == SEAT_ACTIVE, CourseRound.ends_on >= today)) or 0)


def erase_pupil(session: Session, pupil: Pupil, *, secret: str, actor: str) -> ErasureReport:
    """Remove the pupil's personal data and hand-ins; keep the anonymous seat rows invoices count.

    Deleted: hand-ins and their reviews (files after the caller's commit: ``report.file_keys``), lesson
    marks, waiting-list entries, roster rows, grade messages (pending or done: they hold the feedback),
    launch records (kept without ``sub`` and custom parameters where another row points at them) and
    arts-school contact rows. Anonymised: seats. Unchanged: orders' and rounds' seat counters, so the
    cost report. The audit log records the erasure under the pupil's pseudonym, never the ``sub``."""
    reg, sub = pupil.registration_id, pupil.sub
    report = ErasureReport()
    report.active_seats = _active_seats(session, pupil)
    # Reviews written about the pupil's work go with it (also any whose hand-in has gone already).
    report.counts["reviews"] = session.execute(delete(Review).where(Review.registration_id == reg, Review.sub == sub)
                                               .execution_options(synchronize_session=False)).rowcount
    submissions, versions, reviews, keys = _delete_submissions(session, and_(Submission.registration_id == reg,
                                                                             Submission.sub == sub))
    report.counts["submissions"], report.counts["submission_versions"] = submissions, versions
    report.file_keys = keys
    report.counts["reviews"] += reviews
    report.counts["files"] = len(keys)
    report.counts["lesson_progress"] = session.execute(delete(LessonProgress).where(
        LessonProgress.registration_id == reg, LessonProgress.sub == sub)
        .execution_options(synchronize_session=False)).rowcount
    report.counts["waitlist_entries"] = session.execute(delete(WaitlistEntry).where(
        WaitlistEntry.registration_id == reg, WaitlistEntry.sub == sub)
        .execution_options(synchronize_session=False)).rowcount
    report.counts["roster_rows"] = session.execute(delete(RosterMember).where(_roster_rows(pupil))
                                                   .execution_options(synchronize_session=False)).rowcount
    report.counts["outbox_rows"] = session.execute(delete(OutboxItem).where(
        OutboxItem.registration_id == reg, OutboxItem.sub == sub).execution_options(synchronize_session=False)).rowcount
    deleted, kept = _drop_launches(session, and_(Launch.registration_id == reg, Launch.sub == sub))
    report.counts["launches"] = deleted + kept
    report.counts["seats_anonymised"] = _anonymise_seats(session, and_(Seat.registration_id == reg, Seat.sub == sub))
    report.counts["invitations_anonymised"] = _anonymise_invitations(
        session, and_(SeatInvitation.registration_id == reg, SeatInvitation.sub == sub))
    report.counts["municipal_contacts"] = session.execute(delete(MunicipalContact).where(
        MunicipalContact.registration_id == reg, MunicipalContact.sub == sub)
        .execution_options(synchronize_session=False)).rowcount
    session.add(AuditEntry(actor=actor[:255], action=ACTION_ERASE,
                           target=access_target(pupil_pseudonym(secret, reg, sub)),
                           details={"registration": reg, **report.counts, "active_seats": report.active_seats}))
    session.flush()
    session.expire_all()
    return report


# -- retention ------------------------------------------------------------------------------------------

@dataclass
class PurgeReport:
    cutoff: datetime
    counts: dict[str, int] = field(default_factory=dict)
    file_keys: list[str] = field(default_factory=list)

    def total(self) -> int:
        return sum(self.counts.values())


def purge_expired(session: Session, *, cutoff: datetime, actor: str) -> PurgeReport:
    """Delete what is older than ``cutoff``: hand-ins with their reviews (files: ``report.file_keys``, for
    the caller to remove after the commit), lesson marks, launch records (kept without personal fields
    where another row points at them), waiting-list entries of ended rounds and old finished ones, roster
    rows of courses not synced since, departed members, finished grade messages and the access log.
    Seats of rounds that ended before ``cutoff`` lose their ``sub`` (an anonymous marker instead); their
    counts, hence invoices, stay. A dry run is this, rolled back."""
    report = PurgeReport(cutoff)
    counts = report.counts
    submissions, versions, reviews, keys = _delete_submissions(session, Submission.submitted_at < cutoff)
    old_versions, old_reviews, old_keys = _delete_old_versions(session, cutoff)
    counts["submissions"], counts["submission_versions"] = submissions, versions + old_versions
    counts["reviews"], counts["files"] = reviews + old_reviews, len(keys) + len(old_keys)
    report.file_keys = keys + old_keys
    counts["lesson_progress"] = session.execute(delete(LessonProgress).where(LessonProgress.completed_at < cutoff)
                                                .execution_options(synchronize_session=False)).rowcount
    deleted, kept = _drop_launches(session, Launch.created_at < cutoff)
    counts["launches_deleted"], counts["launches_anonymised"] = deleted, kept
    ended = select(CourseRound.id).where(CourseRound.ends_on < national_date(cutoff))
    counts["waitlist_entries"] = session.execute(delete(WaitlistEntry).where(or_(
        WaitlistEntry.round_pk.in_(ended),
        and_(WaitlistEntry.created_at < cutoff, WaitlistEntry.status != WAITING)))
        .execution_options(synchronize_session=False)).rowcount
    counts["seats_anonymised"] = _anonymise_seats(session, Seat.round_pk.in_(ended))
    counts["invitations_anonymised"] = _anonymise_invitations(
        session, SeatInvitation.round_pk.in_(ended))
    stale = select(LtiContext.id).where(or_(LtiContext.roster_synced_at < cutoff,
                                            and_(LtiContext.roster_synced_at.is_(None),
                                                 LtiContext.updated_at < cutoff)))
    counts["roster_rows"] = session.execute(delete(RosterMember).where(or_(
        RosterMember.context_pk.in_(stale),
        and_(RosterMember.status.in_(("Inactive", "Deleted")), RosterMember.updated_at < cutoff)))
        .execution_options(synchronize_session=False)).rowcount
    # The next sync of a purged course fetches the whole roster, not the differences since the last one.
    session.execute(update(LtiContext).where(LtiContext.id.in_(stale)).values(nrps_differences_url=None)
                    .execution_options(synchronize_session=False))
    counts["outbox_rows"] = session.execute(delete(OutboxItem).where(
        OutboxItem.created_at < cutoff, OutboxItem.status.in_((OUTBOX_SENT, OUTBOX_SUPERSEDED, OUTBOX_DEAD)))
        .execution_options(synchronize_session=False)).rowcount
    counts["access_log"] = session.execute(delete(AuditEntry).where(
        AuditEntry.at < cutoff, AuditEntry.action.startswith(ACCESS_ACTION_PREFIX))
        .execution_options(synchronize_session=False)).rowcount
    session.add(AuditEntry(actor=actor[:255], action=ACTION_PURGE, target=f"older than {cutoff.date().isoformat()}",
                           details=dict(counts)))
    session.flush()
    session.expire_all()
    return report


def referenced_file_keys(session: Session) -> set[str]:
    """The upload store's files a row still names: every hand-in's current file and its earlier versions'."""
    return set(session.scalars(union(
        select(Submission.file_key).where(Submission.file_key.is_not(None)),
        select(SubmissionVersion.file_key).where(SubmissionVersion.file_key.is_not(None)))))
