"""The weekly e-mail digest to a municipality's arts school (``municipalities.digest_email``): per ordered course
round, counts only (new hand-ins, reviews given, pupils active, seats taken of the budget, seat invitations
redeemed and open, pupils marked "check"), and how to open the municipal console. Never a pupil's name,
pseudonym or identifier: whoever reads the mailbox learns nothing about a pupil.

In the municipality's language (sv in Sweden, nb in Norway). :func:`send_digests` is run weekly (``flask report
digest --send`` from cron); one bad address or an SMTP failure is logged and counted, never stops the others.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta

from babel.dates import format_date
from flask_babel import force_locale, gettext
from sqlalchemy import and_, func, select, union
from sqlalchemy.orm import Session

from .. import clock
from ..config import settings
from ..domain.calendar import local_date
from ..domain.claims import ROLE_LEARNER
from ..domain.texts import pick_text
from ..mail import MailError, mail_configured, send_mail
from ..models import (CHECK_MISMATCH, INVITATION_ISSUED, INVITATION_REDEEMED, SEAT_ACTIVE, SEAT_WITHDRAWN,
                      AuditEntry, Course, CourseModule, CourseRound, Launch, Lesson, LessonProgress, Municipality,
                      Order, Review, Seat, SeatInvitation, Submission)
from .errors import NotFoundError

log = logging.getLogger(__name__)

PERIOD = timedelta(days=7)
COUNTRY_LOCALES = {"SE": "sv", "NO": "nb"}
DATE_LOCALES = {"en": "en_GB"}
ACTION_DIGEST_EMAIL = "municipality.digest_email"
_ADDRESS = re.compile(r"[^@\s<>,;\"]+@[^@\s<>,;\"]+\.[^@\s<>,;\"]+")


@dataclass(frozen=True)
class CourseCounts:
    """One ordered course round of the municipality: what happened in the period, and where it stands now."""

    course_code: str
    course: str  # the title in the digest's language
    round: str
    starts_on: date
    ends_on: date
    new_hand_ins: int
    reviews_given: int
    pupils_active: int
    seats_taken: int
    seats_budget: int
    invitations_redeemed: int  # in the period
    invitations_open: int  # now: issued, not expired
    check_marks: int  # seats taken in the period through an invitation whose school belongs to another owner


@dataclass(frozen=True)
class Digest:
    municipality_id: str
    municipality_name: str
    locale: str
    since: datetime
    until: datetime
    console_url: str
    courses: list[CourseCounts] = field(default_factory=list)
    subject: str = ""
    text: str = ""


def municipality_locale(municipality: Municipality) -> str:
    """The language of a municipality's mail: Swedish in Sweden, bokmål in Norway."""
    return COUNTRY_LOCALES.get(municipality.country, "sv")


def console_url() -> str:
    """The console's address. It opens only from a launch (its token travels in the address), so the text says
    to open it from the learning platform."""
    return settings().base_url + "/municipal/"


# -- counting -------------------------------------------------------------------------------------------------

def _orders(session: Session, municipality_id: str, since: datetime):
    """The municipality's orders of rounds still running in the period (or later), by course and start."""
    first_day = local_date(municipality_id, since)
    return session.execute(select(Order, CourseRound, Course).join(CourseRound, CourseRound.id == Order.round_pk)
                           .join(Course, Course.code == CourseRound.course_code)
                           .where(Order.municipality_id == municipality_id, CourseRound.ends_on >= first_day)
                           .order_by(Course.code, CourseRound.starts_on, CourseRound.id)).all()


def _per_round(session: Session, query) -> dict[int, int]:
    return {round_pk: n for round_pk, n in session.execute(query)}


def _active_pupils(session: Session, municipality_id: str, round_pks: list[int], since: datetime,
                   until: datetime) -> dict[int, int]:
    """Pupils with a seat of the municipality in the round who opened the course, handed in or marked a lesson
    done in the period."""
    launched = select(Launch.round_pk, Launch.registration_id, Launch.sub).where(
        Launch.municipality_id == municipality_id, Launch.role == ROLE_LEARNER, Launch.round_pk.in_(round_pks),
        Launch.created_at >= since, Launch.created_at < until)
    handed_in = select(Submission.round_pk, Submission.registration_id, Submission.sub).where(
        Submission.municipality_id == municipality_id, Submission.round_pk.in_(round_pks),
        Submission.submitted_at >= since, Submission.submitted_at < until)
    studied = (select(Seat.round_pk, LessonProgress.registration_id, LessonProgress.sub)
               .join(Lesson, Lesson.id == LessonProgress.lesson_id)
               .join(CourseModule, CourseModule.id == Lesson.module_id)
               .join(CourseRound, CourseRound.course_code == CourseModule.course_code)
               .join(Seat, and_(Seat.round_pk == CourseRound.id, Seat.registration_id == LessonProgress.registration_id,
                                Seat.sub == LessonProgress.sub))
               .where(Seat.municipality_id == municipality_id, Seat.round_pk.in_(round_pks),
                      LessonProgress.completed_at >= since, LessonProgress.completed_at < until))
    active = union(launched, handed_in, studied).subquery()
    seated = (select(active.c.round_pk, func.count())
              .join(Seat, and_(Seat.round_pk == active.c.round_pk, Seat.registration_id == active.c.registration_id,
                               Seat.sub == active.c.sub))
              .where(Seat.municipality_id == municipality_id, Seat.status.in_((SEAT_ACTIVE, SEAT_WITHDRAWN)))
              .group_by(active.c.round_pk))
    return _per_round(session, seated)


def _counts(session: Session, municipality_id: str, round_pks: list[int], since: datetime,
            until: datetime) -> dict[str, dict[int, int]]:
    mine = and_(Submission.municipality_id == municipality_id, Submission.round_pk.in_(round_pks))
    invitations = and_(SeatInvitation.municipality_id == municipality_id, SeatInvitation.round_pk.in_(round_pks))
    redeemed = and_(invitations, SeatInvitation.status == INVITATION_REDEEMED, SeatInvitation.redeemed_at >= since,
                    SeatInvitation.redeemed_at < until)
    return {
        "hand_ins": _per_round(session, select(Submission.round_pk, func.count()).where(
            mine, Submission.submitted_at >= since, Submission.submitted_at < until).group_by(Submission.round_pk)),
        "reviews": _per_round(session, select(Submission.round_pk, func.count(Review.id))
                              .join(Submission, Submission.id == Review.submission_id)
                              .where(mine, Review.created_at >= since, Review.created_at < until)
                              .group_by(Submission.round_pk)),
        "active": _active_pupils(session, municipality_id, round_pks, since, until),
        "redeemed": _per_round(session, select(SeatInvitation.round_pk, func.count()).where(redeemed)
                               .group_by(SeatInvitation.round_pk)),
        "open": _per_round(session, select(SeatInvitation.round_pk, func.count()).where(
            invitations, SeatInvitation.status == INVITATION_ISSUED, SeatInvitation.expires_at > until)
            .group_by(SeatInvitation.round_pk)),
        "checks": _per_round(session, select(SeatInvitation.round_pk, func.count()).where(
            redeemed, SeatInvitation.cross_check == CHECK_MISMATCH).group_by(SeatInvitation.round_pk)),
    }


# -- the text ---------------------------------------------------------------------------------------------------

def _day(value: date, locale: str) -> str:
    return format_date(value, "long", locale=DATE_LOCALES.get(locale, locale))


def _course_lines(course: CourseCounts, locale: str) -> list[str]:
    return [
        f"{course.course} ({course.course_code} {course.round}, {_day(course.starts_on, locale)} – "
        f"{_day(course.ends_on, locale)})",
        "  " + gettext("New hand-ins: %(num)s", num=course.new_hand_ins),
        "  " + gettext("Reviews given: %(num)s", num=course.reviews_given),
        "  " + gettext("Pupils active: %(num)s", num=course.pupils_active),
        "  " + gettext("%(taken)s of %(budget)s seats taken", taken=course.seats_taken, budget=course.seats_budget),
        "  " + gettext("Seat invitations redeemed: %(num)s (still open: %(open)s)", num=course.invitations_redeemed,
                       open=course.invitations_open),
        "  " + gettext('Marked "check" (the school belongs to another owner): %(num)s', num=course.check_marks),
    ]


def _compose(digest: Digest) -> tuple[str, str]:
    """The subject and the body, in the digest's language."""
    locale = digest.locale
    name = digest.municipality_name
    with force_locale(locale):
        subject = gettext("Distance courses for %(name)s: the week to %(date)s", name=name,
                          date=_day(local_date(digest.municipality_id, digest.until), locale))
        lines = [gettext("Distance courses for %(name)s", name=name), "",
                 gettext("What happened since %(date)s:", date=_day(local_date(digest.municipality_id, digest.since),
                                                                    locale)), ""]
        for course in digest.courses:
            lines += _course_lines(course, locale) + [""]
        if not digest.courses:
            lines += [gettext("%(name)s has not ordered any distance course yet.", name=name), ""]
        lines += [
            gettext("This summary holds counts only: no pupil's name or data."), "",
            gettext("To see your pupils' progress and download it, open the municipal console from your learning "
                    "platform: open the distance courses tool there as an administrator (or sign in with your "
                    "school account where your municipality has no such platform). The console's address, %(url)s, "
                    "opens only from there.", url=digest.console_url), "",
            gettext("You get this e-mail because national staff entered this address for %(name)s. Ask them to "
                    "stop it if you no longer want it.", name=name),
        ]
    return subject, "\n".join(lines) + "\n"


def digest_for(session: Session, municipality_id: str, *, since: datetime, locale: str,
               until: datetime | None = None) -> Digest:
    """The municipality's digest for the period ``since`` .. ``until`` (now by default), in ``locale``."""
    municipality = session.get(Municipality, municipality_id)
    if municipality is None:
        raise NotFoundError(f"no municipality {municipality_id}")
    until = until or clock.now()
    orders = _orders(session, municipality.id, since)
    round_pks = [round_.id for _order, round_, _course in orders]
    counts = _counts(session, municipality.id, round_pks, since, until) if round_pks else {}

    def count(kind: str, round_pk: int) -> int:
        return counts.get(kind, {}).get(round_pk, 0)

    courses = [CourseCounts(course.code, str(pick_text(course.title, locale)) or course.code, round_.round_id,
                            round_.starts_on, round_.ends_on, count("hand_ins", round_.id), count("reviews", round_.id),
                            count("active", round_.id), order.seats_taken, order.seats_budget,
                            count("redeemed", round_.id), count("open", round_.id), count("checks", round_.id))
               for order, round_, course in orders]
    digest = Digest(municipality.id, municipality.name, locale, since, until, console_url(), courses)
    subject, text = _compose(digest)
    return replace(digest, subject=subject, text=text)


# -- sending ----------------------------------------------------------------------------------------------------

@dataclass
class DigestRun:
    sent: int = 0
    failed: int = 0
    failures: list[str] = field(default_factory=list)  # municipality ids


def deliver_digests(session: Session, *, now: datetime | None = None,
                    municipality_id: str | None = None) -> DigestRun:
    """Send every municipality's digest that has an address (or only ``municipality_id``'s), for the week up to
    ``now``; each in the municipality's language. A failure is logged and counted, and the next one is sent."""
    now = now or clock.now()
    run = DigestRun()
    query = select(Municipality).where(Municipality.digest_email.is_not(None), Municipality.digest_email != "")
    if municipality_id is not None:
        query = query.where(Municipality.id == municipality_id)
    for municipality in session.scalars(query.order_by(Municipality.id)).all():
        digest = digest_for(session, municipality.id, since=now - PERIOD, until=now,
                            locale=municipality_locale(municipality))
        try:
            send_mail(municipality.digest_email, digest.subject, digest.text)
        except MailError as error:
            run.failed += 1
            run.failures.append(municipality.id)
            log.warning("digest of %s not sent: %s", municipality.id, error)
            continue
        run.sent += 1
    log.info("digests: %s sent, %s failed", run.sent, run.failed)
    return run


def send_digests(session: Session, *, now: datetime | None = None) -> int:
    """Send the week's digests (see :func:`deliver_digests`); how many were sent. Without ``SMTP_HOST`` nothing
    is sent (logged), and 0."""
    if not mail_configured():
        log.info("digests not sent: SMTP_HOST is not set")
        return 0
    return deliver_digests(session, now=now).sent


# -- the address -------------------------------------------------------------------------------------------------

def set_digest_email(session: Session, municipality_id: str, email: str | None, *, actor: str) -> Municipality:
    """Set (or, with ``None``, remove) where the municipality's digest goes; audited. Never commits. An unknown
    municipality is :class:`.errors.NotFoundError`, a malformed address ``ValueError``."""
    municipality = session.get(Municipality, municipality_id)
    if municipality is None:
        raise NotFoundError(f"no municipality {municipality_id}")
    address = (email or "").strip() or None
    if address is not None and (len(address) > 320 or not _ADDRESS.fullmatch(address)):
        raise ValueError(f"not an e-mail address: {email!r}")
    before = municipality.digest_email
    municipality.digest_email = address
    session.add(AuditEntry(actor=actor[:255], action=ACTION_DIGEST_EMAIL, target=f"municipality {municipality.id}",
                           details={"from": before, "to": address}))
    session.flush()
    return municipality
