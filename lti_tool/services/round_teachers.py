"""The teachers of a course round, named by national staff (console and CLI), every change audited.

A teacher is identified the way they arrive:

- by a launch from their own platform: the registration and ``sub`` of that launch. Staff either give them
  directly (``rounds teachers add --issuer --client-id --sub``) or send an invitation link; the teacher opens
  the link from an instructor launch in their own platform, which binds that launch's registration and
  ``sub`` to the round, once (the link is then spent);
- by the staff OpenID Connect sign-in: the verified e-mail address.

Whether a viewer teaches a round is decided in :mod:`.access` from these rows.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from .. import clock
from ..domain.claims import ROLE_INSTRUCTOR
from ..domain.errors import DomainError
from ..models import AuditEntry, Course, CourseRound, Launch, Registration, RoundTeacher
from .errors import ConflictError, NotFoundError

INVITATION_DAYS = 14
ACTION_ADD = "round_teacher_add"
ACTION_INVITE = "round_teacher_invite"
ACTION_BIND = "round_teacher_bind"
ACTION_REMOVE = "round_teacher_remove"
ACTION_SCHOOL = "course_providing_school"
INVITATION_PATH = "/teach/join/"


class InvitationError(DomainError):
    status = 400


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def _audit(session: Session, actor: str, action: str, teacher: RoundTeacher, **details: object) -> None:
    session.add(AuditEntry(actor=actor[:255], action=action, target=f"round {teacher.round_pk}",
                           details={"teacher": teacher.id, "name": teacher.name, **details}))


def _clean_name(name: str | None) -> str | None:
    name = " ".join((name or "").split())[:200]
    return name or None


def _added(session: Session, teacher: RoundTeacher) -> RoundTeacher:
    try:
        with session.begin_nested():
            session.add(teacher)
    except IntegrityError as exc:
        raise ConflictError("this teacher is already a teacher of the round") from exc
    return teacher


def add_launch_teacher(session: Session, round_pk: int, *, issuer: str, client_id: str, sub: str,
                       name: str | None, actor: str) -> RoundTeacher:
    """A teacher who arrives by a launch from their own platform (its registration and the teacher's ``sub``)."""
    registration = session.scalar(select(Registration).where(Registration.issuer == issuer,
                                                             Registration.client_id == client_id))
    if registration is None:
        raise NotFoundError(f"no registration for issuer {issuer!r} and client id {client_id!r}")
    sub = sub.strip()
    if not sub or len(sub) > 255:
        raise DomainError("the teacher's sub must be 1 to 255 characters", code="invalid")
    teacher = _added(session, RoundTeacher(round_pk=round_pk, name=_clean_name(name), registration_id=registration.id,
                                           sub=sub, created_by=actor[:200]))
    _audit(session, actor, ACTION_ADD, teacher, registration=registration.id)
    return teacher


def add_email_teacher(session: Session, round_pk: int, *, email: str, name: str | None, actor: str) -> RoundTeacher:
    """A teacher who signs in through the staff OpenID Connect provider with this (verified) e-mail."""
    email = email.strip().lower()
    if "@" not in email or len(email) > 320 or any(c.isspace() for c in email):
        raise DomainError("not an e-mail address", code="invalid")
    teacher = _added(session, RoundTeacher(round_pk=round_pk, name=_clean_name(name), email=email,
                                           created_by=actor[:200]))
    _audit(session, actor, ACTION_ADD, teacher, email=email)
    return teacher


def invite(session: Session, round_pk: int, *, name: str | None, actor: str,
           days: int = INVITATION_DAYS) -> tuple[RoundTeacher, str]:
    """An invitation link's token for a teacher who will arrive from their own platform: single use, valid
    ``days`` days. Only its hash is stored."""
    if session.get(CourseRound, round_pk) is None:
        raise NotFoundError("no such round")
    token = secrets.token_urlsafe(32)
    teacher = RoundTeacher(round_pk=round_pk, name=_clean_name(name), invite_hash=_hash(token),
                           invite_expires_at=clock.now() + timedelta(days=days), created_by=actor[:200])
    session.add(teacher)
    session.flush()
    _audit(session, actor, ACTION_INVITE, teacher, days=days)
    return teacher, token


def pending_invitation(session: Session, token: str) -> RoundTeacher:
    """The invitation this token opens, while it is unspent and unexpired."""
    teacher = session.scalar(select(RoundTeacher).where(RoundTeacher.invite_hash == _hash(token or "")))
    if teacher is None:
        raise InvitationError("unknown or spent invitation", code="invitation_invalid")
    expires = teacher.invite_expires_at
    if expires is None or expires <= clock.now():
        raise InvitationError("the invitation has expired", code="invitation_expired")
    return teacher


def accept_invitation(session: Session, token: str, launch: Launch) -> RoundTeacher:
    """Bind the invitation to the instructor launch it is opened from: that launch's registration and ``sub``
    become a teacher of the round. Spent at once; the same teacher accepting twice keeps one row."""
    if launch.role != ROLE_INSTRUCTOR:
        raise InvitationError("only a teacher's launch can accept a teaching invitation",
                              code="invitation_not_teacher", status=403)
    teacher = pending_invitation(session, token)
    existing = session.scalar(select(RoundTeacher).where(RoundTeacher.round_pk == teacher.round_pk,
                                                         RoundTeacher.registration_id == launch.registration_id,
                                                         RoundTeacher.sub == launch.sub))
    if existing is not None:
        session.delete(teacher)
        session.flush()
        return existing
    teacher.registration_id, teacher.sub = launch.registration_id, launch.sub
    teacher.invite_hash = teacher.invite_expires_at = None
    session.flush()
    _audit(session, f"teacher {teacher.name or teacher.id} (invitation)", ACTION_BIND, teacher,
           registration=launch.registration_id)
    return teacher


def list_teachers(session: Session, round_pk: int | None = None) -> list[RoundTeacher]:
    query = select(RoundTeacher).order_by(RoundTeacher.round_pk, RoundTeacher.id)
    if round_pk is not None:
        query = query.where(RoundTeacher.round_pk == round_pk)
    return list(session.scalars(query))


def remove_teacher(session: Session, teacher_id: int, *, actor: str) -> RoundTeacher:
    teacher = session.get(RoundTeacher, teacher_id)
    if teacher is None:
        raise NotFoundError("no such round teacher")
    _audit(session, actor, ACTION_REMOVE, teacher, email=teacher.email, registration=teacher.registration_id)
    session.delete(teacher)
    session.flush()
    return teacher


def rounds_of_email(session: Session, email: str) -> list[CourseRound]:
    """The rounds a signed-in teacher (verified e-mail) teaches."""
    return list(session.scalars(select(CourseRound).join(RoundTeacher, RoundTeacher.round_pk == CourseRound.id)
                                .where(RoundTeacher.email == email.strip().lower())
                                .order_by(CourseRound.starts_on)))


def rounds_of_launch(session: Session, registration_id: int, sub: str) -> list[CourseRound]:
    """The rounds the teacher of a platform launch teaches."""
    return list(session.scalars(select(CourseRound).join(RoundTeacher, RoundTeacher.round_pk == CourseRound.id)
                                .where(RoundTeacher.registration_id == registration_id, RoundTeacher.sub == sub)
                                .order_by(CourseRound.starts_on)))


def names_of(session: Session, round_pk: int) -> list[str]:
    """The names of the round's teachers, for its pupils' pages."""
    return [name for name in session.scalars(select(RoundTeacher.name).where(
        RoundTeacher.round_pk == round_pk, RoundTeacher.name.is_not(None),
        or_(RoundTeacher.sub.is_not(None), RoundTeacher.email.is_not(None))).order_by(RoundTeacher.id)) if name]


def describe_identity(teacher: RoundTeacher) -> str:
    """How the teacher arrives, for staff: ``email <address>``, ``launch <registration id> <sub>``, or
    ``invited until <date>``."""
    if teacher.email:
        return f"email {teacher.email}"
    if teacher.sub is not None:
        return f"launch registration {teacher.registration_id} sub {teacher.sub}"
    expires = teacher.invite_expires_at
    return f"invited until {expires.date().isoformat()}" if expires else "invited"


def invitation_url(base_url: str, token: str) -> str:
    """The link a teacher opens (or pastes) from a launch in their own platform (``web/teacher.py: join``)."""
    return f"{base_url.rstrip('/')}{INVITATION_PATH}{token}"


def invitation_token(pasted: str) -> str:
    """The token of an invitation as a teacher pastes it: the whole link (``.../teach/join/<token>``, with or
    without a query or a trailing slash) or the code alone."""
    text = (pasted or "").strip()
    if INVITATION_PATH in text:
        text = text.split(INVITATION_PATH, 1)[1]
    return text.split("?", 1)[0].split("#", 1)[0].strip().strip("/")


def set_providing_school(session: Session, course_code: str, school: str | None, *, actor: str) -> Course:
    """Name the arts school that provides the course's teaching (shown to its pupils); empty clears it."""
    course = session.get(Course, course_code)
    if course is None:
        raise NotFoundError(f"no course {course_code!r}")
    before, course.providing_school = course.providing_school, _clean_name(school)
    session.add(AuditEntry(actor=actor[:255], action=ACTION_SCHOOL, target=f"course {course_code}",
                           details={"school": course.providing_school, "before": before}))
    session.flush()
    return course
