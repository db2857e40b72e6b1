"""The second door after a school sign-in: what the signed-in person may open, and each visit recorded as a
launch of the identity provider's school deployment (``services.identity``), so that every page after it (the
course, hand-ins, feedback, the round's classroom, the municipal console) works exactly as after an LTI launch
and is decided by the same rules (``services.access``, ``services.municipal``).

A visit's launch names the person (the provider's registration and subject), the role the sign-in allows, the
home municipality (from the seat, which the invitation decided: never from the school login) and the course
and round of the seat. It carries no LTI context: there is no gradebook to send scores to, so they stay in the
tool (``services.grades`` sends nothing for a hand-in without a context).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..domain.claims import INSTITUTION_ADMINISTRATOR, ROLE_ADMINISTRATOR, ROLE_INSTRUCTOR, ROLE_LEARNER
from ..models import (SEAT_ACTIVE, Course, CourseRound, IdentityProvider, Launch, MunicipalContact, Municipality,
                      Order, RoundTeacher, Seat, SeatInvitation)
from .errors import NotFoundError
from .identity import school_deployment

MESSAGE_TYPE = "SchoolSignIn"
LEARNER_URI = "http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"
INSTRUCTOR_URI = "http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"
ROLE_URIS = {ROLE_LEARNER: [LEARNER_URI], ROLE_INSTRUCTOR: [INSTRUCTOR_URI],
             ROLE_ADMINISTRATOR: [INSTITUTION_ADMINISTRATOR]}
# How the visit's home municipality was decided (``launches.resolution_method``).
BY_INVITATION = "invitation"
BY_OPEN_POOL = "open_pool"
BY_SEAT = "seat"  # a later visit: the seat the pupil holds
BY_TEACHER = "round_teacher"
BY_CONTACT = "municipal_contact"


def record_visit(session: Session, provider: IdentityProvider, *, sub: str, municipality_id: str, role: str,
                 locale: str | None, method: str, course_code: str | None = None,
                 round_pk: int | None = None) -> Launch:
    """One visit of a signed-in person, as the launch every later page reads (its token travels in links)."""
    launch = Launch(id=str(uuid.uuid4()), registration_id=provider.registration_id,
                    deployment_pk=school_deployment(session, provider).id, message_type=MESSAGE_TYPE, sub=sub,
                    role=role, roles=list(ROLE_URIS[role]), context_id=None, resource_link_id=None, custom={},
                    municipality_id=municipality_id, resolution_method=method, locale=locale,
                    course_code=course_code, round_pk=round_pk, state_path=None)
    session.add(launch)
    session.flush()
    return launch


@dataclass(frozen=True)
class MySeat:
    seat: Seat
    round: CourseRound
    course: Course
    municipality: Municipality


def my_seats(session: Session, registration_id: int, sub: str) -> list[MySeat]:
    """The person's active seats, newest round first ("My courses")."""
    rows = session.execute(
        select(Seat, CourseRound, Course, Municipality)
        .join(CourseRound, Seat.round_pk == CourseRound.id).join(Course, CourseRound.course_code == Course.code)
        .join(Municipality, Seat.municipality_id == Municipality.id)
        .where(Seat.registration_id == registration_id, Seat.sub == sub, Seat.status == SEAT_ACTIVE)
        .order_by(CourseRound.starts_on.desc())).all()
    return [MySeat(*row) for row in rows]


def open_seat(session: Session, provider: IdentityProvider, *, sub: str, seat_id: int, locale: str | None) -> Launch:
    """A visit to the course of one of the person's own active seats; any other seat is not found."""
    seat = session.get(Seat, seat_id)
    if seat is None or seat.registration_id != provider.registration_id or seat.sub != sub \
            or seat.status != SEAT_ACTIVE:
        raise NotFoundError(f"no active seat {seat_id} of this person")
    round_ = session.get(CourseRound, seat.round_pk)
    return record_visit(session, provider, sub=sub, municipality_id=seat.municipality_id, role=ROLE_LEARNER,
                        locale=locale, method=BY_SEAT, course_code=round_.course_code, round_pk=round_.id)


def visit_for_seat(session: Session, provider: IdentityProvider, *, sub: str, seat: Seat, method: str,
                   locale: str | None) -> Launch:
    """The visit right after a seat was taken (by an invitation or from the open pool)."""
    round_ = session.get(CourseRound, seat.round_pk)
    return record_visit(session, provider, sub=sub, municipality_id=seat.municipality_id, role=ROLE_LEARNER,
                        locale=locale, method=method, course_code=round_.course_code, round_pk=round_.id)


def taught_rounds(session: Session, registration_id: int, sub: str) -> list[CourseRound]:
    return list(session.scalars(select(CourseRound).join(RoundTeacher, RoundTeacher.round_pk == CourseRound.id)
                                .where(RoundTeacher.registration_id == registration_id, RoundTeacher.sub == sub)
                                .order_by(CourseRound.starts_on)))


def contact_municipalities(session: Session, registration_id: int, sub: str) -> list[Municipality]:
    """The municipalities whose console this person may open (listed as their arts school's contact)."""
    return list(session.scalars(select(Municipality).join(MunicipalContact,
                                                          MunicipalContact.municipality_id == Municipality.id)
                                .where(MunicipalContact.registration_id == registration_id,
                                       MunicipalContact.sub == sub).order_by(Municipality.name)))


def teacher_visit(session: Session, provider: IdentityProvider, *, sub: str, school_municipality_id: str | None,
                  locale: str | None) -> Launch:
    """A teacher's visit (staff affiliation): their rounds, or a teaching invitation to accept. The launch's
    municipality is the school's, else that of an order of the first round they teach, else any of the country
    (a teacher's pages show the round's pupils, not a municipality's)."""
    municipality_id = school_municipality_id if school_municipality_id and session.get(
        Municipality, school_municipality_id) is not None else None
    if municipality_id is None:
        municipality_id = session.scalar(
            select(Order.municipality_id).join(RoundTeacher, RoundTeacher.round_pk == Order.round_pk)
            .where(RoundTeacher.registration_id == provider.registration_id, RoundTeacher.sub == sub).limit(1))
    if municipality_id is None:
        municipality_id = session.scalar(select(Municipality.id).where(Municipality.country == provider.country)
                                         .order_by(Municipality.id).limit(1))
    if municipality_id is None:
        raise NotFoundError(f"no municipality of {provider.country} is known")
    return record_visit(session, provider, sub=sub, municipality_id=municipality_id, role=ROLE_INSTRUCTOR,
                        locale=locale, method=BY_TEACHER)


def contact_visit(session: Session, provider: IdentityProvider, *, sub: str, municipality_id: str,
                  locale: str | None) -> Launch:
    """A municipal contact's visit to their municipality's console (which checks the listing itself)."""
    if municipality_id not in {m.id for m in contact_municipalities(session, provider.registration_id, sub)}:
        raise NotFoundError(f"not a contact of {municipality_id}")
    return record_visit(session, provider, sub=sub, municipality_id=municipality_id, role=ROLE_ADMINISTRATOR,
                        locale=locale, method=BY_CONTACT)


def invitation_of_seat(session: Session, seat_id: int) -> SeatInvitation | None:
    return session.scalar(select(SeatInvitation).where(SeatInvitation.seat_id == seat_id))
