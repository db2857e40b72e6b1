"""What a teacher's classroom pages and the municipal console show about pupils' progress: lessons done, work
handed in and reviewed, the grade grid of pupils and assignments, and pupils grouped by municipality.

Only queries for pages; whose pupils and whose work a viewer sees is decided in :mod:`.access` (every query
here goes through :func:`.delivery.roster` or one of its conditions). Never commits.

Pupils are named by their pseudonym (:func:`.delivery.pupil_label`) unless their platform shares a name: in the
pupil's launch into the round (kept on the seat, ``LAUNCH_NAMES``, on by default; the caller passes
``launch_names``) or in its member list (``ROSTER_NAMES``; ``keep_names``). See :func:`round_pupil_names`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from ..models import (SEAT_ACTIVE, SUBMISSION_REVIEWED, SUBMISSION_SUBMITTED, Assignment, Course, CourseModule,
                      CourseRound, Launch, Lesson, LessonProgress, LtiContext, Municipality, Review, RosterMember,
                      Seat, SeatInvitation, Submission)
from .access import Viewer, municipality_submissions, require_classroom, visible_submissions
from .course_plan import late_hand_ins
from .delivery import pupil_label, roster

PupilKey = tuple[int, str]  # (registration id, sub): a sub is only unique within its platform
RoundPupil = tuple[int, int, str]  # (round pk, registration id, sub): a pupil in one round


@dataclass(frozen=True)
class PupilProgress:
    registration_id: int
    sub: str
    label: str
    name: str | None
    municipality_id: str
    municipality_name: str
    lessons_done: int
    lessons_total: int
    handed_in: int
    reviewed: int
    waiting: int

    @property
    def key(self) -> PupilKey:
        return self.registration_id, self.sub


@dataclass(frozen=True)
class MunicipalityGroup:
    id: str
    name: str
    pupils: list[PupilProgress]

    @property
    def waiting(self) -> int:
        return sum(p.waiting for p in self.pupils)


def course_of_round(session: Session, round_pk: int | None) -> Course | None:
    round_ = session.get(CourseRound, round_pk) if round_pk else None
    return session.get(Course, round_.course_code) if round_ is not None else None


def current_lesson_ids(session: Session, course_code: str) -> list[int]:
    return list(session.scalars(select(Lesson.id).join(CourseModule, CourseModule.id == Lesson.module_id)
                                .where(CourseModule.course_code == course_code, CourseModule.current.is_(True),
                                       Lesson.current.is_(True))))


def current_assignments(session: Session, course_code: str) -> list[Assignment]:
    """The course's assignments in course order (module, then position)."""
    return list(session.scalars(select(Assignment).join(CourseModule, CourseModule.id == Assignment.module_id)
                                .where(CourseModule.course_code == course_code, CourseModule.current.is_(True),
                                       Assignment.current.is_(True))
                                .order_by(CourseModule.position, Assignment.position, Assignment.id)))


def _lessons_done(session: Session, pupils: set[PupilKey], lesson_ids: list[int]) -> dict[PupilKey, int]:
    if not pupils or not lesson_ids:
        return {}
    rows = session.execute(select(LessonProgress.registration_id, LessonProgress.sub, func.count())
                           .where(LessonProgress.lesson_id.in_(lesson_ids),
                                  LessonProgress.registration_id.in_({r for r, _s in pupils}),
                                  LessonProgress.sub.in_({s for _r, s in pupils}))
                           .group_by(LessonProgress.registration_id, LessonProgress.sub))
    return {(r, s): n for r, s, n in rows if (r, s) in pupils}


def round_pupil_names(session: Session, pupils: set[RoundPupil], *, keep_names: bool,
                      launch_names: bool) -> dict[RoundPupil, str]:
    """The names a teacher (or the municipal console) sees for pupils of course rounds, keyed by (round, registration,
    sub): a pseudonym (no entry) wherever the pupil's platform shares no name.

    **Launch first**, then the member list: the name on the pupil's seat in *that* round, from their latest launch
    into it (``launch_names``: the ``LAUNCH_NAMES`` setting), is the one their platform signed for this very round,
    so a teacher of another round never sees it and it is as fresh as the pupil's last visit; the member lists'
    names (NRPS, and a school sign-in's name on a redeemed seat invitation; ``keep_names``: the ``ROSTER_NAMES``
    setting) belong to an LMS course, not to the round, and fill in only for a pupil whose launches carry none."""
    if not pupils:
        return {}
    registrations, subs = {r for _p, r, _s in pupils}, {s for _p, _r, s in pupils}
    names: dict[RoundPupil, str] = {}
    if launch_names:
        for round_pk, registration_id, sub, name in session.execute(
                select(Seat.round_pk, Seat.registration_id, Seat.sub, Seat.name)
                .where(Seat.name.is_not(None), Seat.round_pk.in_({p for p, _r, _s in pupils}),
                       Seat.registration_id.in_(registrations), Seat.sub.in_(subs))):
            if (round_pk, registration_id, sub) in pupils and name and name.strip():
                names[(round_pk, registration_id, sub)] = name.strip()
    if keep_names:
        shared = _member_list_names(session, {(r, s) for _p, r, s in pupils})
        for key in pupils:
            if key not in names and (key[1], key[2]) in shared:
                names[key] = shared[(key[1], key[2])]
    return names


def pupil_names(session: Session, pupils: set[PupilKey], *, round_pk: int | None, keep_names: bool,
                launch_names: bool) -> dict[PupilKey, str]:
    """The names of pupils of one round (``round_pk``: the viewer's classroom), launch first, then the member list
    (see :func:`round_pupil_names`, which says why)."""
    if round_pk is None:
        return _member_list_names(session, pupils) if keep_names else {}
    found = round_pupil_names(session, {(round_pk, r, s) for r, s in pupils}, keep_names=keep_names,
                              launch_names=launch_names)
    return {(r, s): name for (_p, r, s), name in found.items()}


def _member_list_names(session: Session, pupils: set[PupilKey]) -> dict[PupilKey, str]:
    """The names the pupils' platforms shared in their member lists (or their school sign-in gave, for a pupil
    who came with an invitation): only with ``ROSTER_NAMES``, which alone stores them."""
    if not pupils:
        return {}
    rows = session.execute(select(LtiContext.registration_id, RosterMember.user_id, RosterMember.name)
                           .join(LtiContext, LtiContext.id == RosterMember.context_pk)
                           .where(RosterMember.name.is_not(None),
                                  LtiContext.registration_id.in_({r for r, _s in pupils}),
                                  RosterMember.user_id.in_({s for _r, s in pupils}))
                           .order_by(RosterMember.updated_at.desc()))
    # A pupil of the second door: the name their school sign-in gave when they took the invitation's place.
    invited = session.execute(select(SeatInvitation.registration_id, SeatInvitation.sub, SeatInvitation.pupil_name)
                              .where(SeatInvitation.pupil_name.is_not(None),
                                     SeatInvitation.registration_id.in_({r for r, _s in pupils}),
                                     SeatInvitation.sub.in_({s for _r, s in pupils})))
    names: dict[PupilKey, str] = {}
    for registration_id, user_id, name in [*rows, *invited]:
        if (registration_id, user_id) in pupils and name and name.strip():
            names.setdefault((registration_id, user_id), name.strip())
    return names


def _municipality_names(session: Session, ids: Iterable[str]) -> dict[str, str]:
    wanted = set(ids)
    if not wanted:
        return {}
    return dict(session.execute(select(Municipality.id, Municipality.name).where(Municipality.id.in_(wanted))).all())


def progress(session: Session, who: Viewer | Launch, *, keep_names: bool,
             launch_names: bool) -> list[PupilProgress]:
    """Every pupil of the viewer's classroom (see :func:`.delivery.roster`) with their progress."""
    lines = roster(session, who)
    viewer = require_classroom(who, session)
    course = course_of_round(session, viewer.round_pk)
    lesson_ids = current_lesson_ids(session, course.code) if course is not None else []
    keys = {(line.registration_id, line.sub) for line in lines}
    done = _lessons_done(session, keys, lesson_ids)
    names = pupil_names(session, keys, round_pk=viewer.round_pk, keep_names=keep_names, launch_names=launch_names)
    places = _municipality_names(session, (line.municipality_id for line in lines))
    return [PupilProgress(line.registration_id, line.sub, line.label, names.get((line.registration_id, line.sub)),
                          line.municipality_id, places.get(line.municipality_id, line.municipality_id),
                          done.get((line.registration_id, line.sub), 0), len(lesson_ids), line.handed_in,
                          line.reviewed, line.waiting)
            for line in lines]


def by_municipality(pupils: Iterable[PupilProgress]) -> list[MunicipalityGroup]:
    """Pupils grouped by their home municipality, municipalities by name, pupils by name or pseudonym."""
    groups: dict[str, list[PupilProgress]] = {}
    for pupil in pupils:
        groups.setdefault(pupil.municipality_id, []).append(pupil)
    return sorted((MunicipalityGroup(mid, members[0].municipality_name,
                                     sorted(members, key=lambda p: ((p.name or "").casefold(), p.label)))
                   for mid, members in groups.items()), key=lambda g: (g.name.casefold(), g.id))


# -- the grade grid -------------------------------------------------------------------------------------------

CELL_REVIEWED = "reviewed"
CELL_WAITING = "waiting"
CELL_MISSING = "missing"  # not handed in
CELL_NO_HAND_IN = "no_hand_in"  # the assignment has nothing to hand in


@dataclass(frozen=True)
class GradeCell:
    state: str
    submission_id: int | None = None
    score: Decimal | None = None
    score_max: Decimal | None = None
    late: bool = False  # first handed in after its module's due day (services.course_plan)


    def matches(self, show: str) -> bool:
        """The cell is one a filter of the grid asks for (``GRID_FILTERS``)."""
        if show == GRID_LATE:
            return self.late
        return self.state == show


# What the grade grid can be narrowed to: pupils with work waiting for review, handed in late, reviewed, or
# assignments not handed in.
GRID_LATE = "late"
GRID_FILTERS = (CELL_WAITING, GRID_LATE, CELL_REVIEWED, CELL_MISSING)


@dataclass
class GradeGrid:
    assignments: list[Assignment]
    rows: list[tuple[PupilProgress, list[GradeCell]]] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        """How many pupils each filter keeps."""
        return {show: sum(any(cell.matches(show) for cell in cells) for _pupil, cells in self.rows)
                for show in GRID_FILTERS}

    def only(self, show: str | None) -> "GradeGrid":
        """The pupils with at least one cell the filter asks for (all of them without a known filter)."""
        if show not in GRID_FILTERS:
            return self
        return GradeGrid(self.assignments, [(pupil, cells) for pupil, cells in self.rows
                                            if any(cell.matches(show) for cell in cells)])


def grade_grid(session: Session, who: Viewer | Launch, *, keep_names: bool, launch_names: bool) -> GradeGrid:
    """Pupils × assignments of the viewer's classroom: the latest score, "waiting" or "not handed in"; work handed
    in after its due day marked late."""
    pupils = progress(session, who, keep_names=keep_names, launch_names=launch_names)
    viewer = require_classroom(who, session)
    course = course_of_round(session, viewer.round_pk)
    assignments = current_assignments(session, course.code) if course is not None else []
    work = {(s.registration_id, s.sub, s.assignment_id): s
            for s in session.scalars(select(Submission)
                                     .where(visible_submissions(viewer), Submission.round_pk == viewer.round_pk)
                                     .options(selectinload(Submission.reviews), selectinload(Submission.versions)))}
    late = late_hand_ins(session, work.values())
    grid = GradeGrid(assignments)
    for pupil in sorted(pupils, key=lambda p: (p.municipality_name.casefold(), (p.name or "").casefold(), p.label)):
        cells = []
        for assignment in assignments:
            found = work.get((pupil.registration_id, pupil.sub, assignment.id))
            if found is None:
                cells.append(GradeCell(CELL_NO_HAND_IN if assignment.submission == "none" else CELL_MISSING))
            elif found.status == SUBMISSION_REVIEWED and found.reviews:
                last = found.reviews[-1]
                cells.append(GradeCell(CELL_REVIEWED, found.id, last.score, last.score_max, found.id in late))
            else:
                cells.append(GradeCell(CELL_WAITING, found.id, late=found.id in late))
        grid.rows.append((pupil, cells))
    return grid


# -- the municipal console: the municipality's own pupils ------------------------------------------------------

@dataclass(frozen=True)
class MunicipalPupil:
    label: str
    name: str | None
    lessons_done: int
    lessons_total: int
    handed_in: int
    reviewed: int
    latest_feedback_at: datetime | None
    latest_score: Decimal | None
    latest_score_max: Decimal | None


@dataclass
class RoundPupils:
    round: CourseRound
    course: Course
    pupils: list[MunicipalPupil]


def municipality_progress(session: Session, municipality_id: str, *, keep_names: bool,
                          launch_names: bool) -> list[RoundPupils]:
    """The municipality's pupils (active seats) per course round, with their progress and their latest feedback,
    read-only, for its arts-school contact: only work :func:`.access.municipality_submissions` lets them follow."""
    seated = session.execute(select(Seat.round_pk, Seat.registration_id, Seat.sub)
                             .where(Seat.municipality_id == municipality_id, Seat.status == SEAT_ACTIVE)
                             .order_by(Seat.taken_at, Seat.id)).all()
    if not seated:
        return []
    round_pks = {round_pk for round_pk, _r, _s in seated}
    rounds = {r.id: r for r in session.scalars(select(CourseRound).where(CourseRound.id.in_(round_pks))
                                               .options(selectinload(CourseRound.course)))}
    keys = {(registration_id, sub) for _p, registration_id, sub in seated}
    names = round_pupil_names(session, {(p, r, s) for p, r, s in seated}, keep_names=keep_names,
                              launch_names=launch_names)
    visible = municipality_submissions(municipality_id)
    counts: dict[tuple[int, int, str], dict[str, int]] = {}
    for round_pk, registration_id, sub, status, n in session.execute(
            select(Submission.round_pk, Submission.registration_id, Submission.sub, Submission.status, func.count())
            .where(visible, Submission.round_pk.in_(round_pks))
            .group_by(Submission.round_pk, Submission.registration_id, Submission.sub, Submission.status)):
        counts.setdefault((round_pk, registration_id, sub), {})[status] = n
    latest: dict[tuple[int, int, str], Review] = {}
    for review, round_pk in session.execute(
            select(Review, Submission.round_pk).join(Submission, Submission.id == Review.submission_id)
            .where(visible, Submission.round_pk.in_(round_pks))
            .order_by(Review.created_at.desc(), Review.id.desc())):
        latest.setdefault((round_pk, review.registration_id, review.sub), review)
    lessons = {code: current_lesson_ids(session, code) for code in {r.course_code for r in rounds.values()}}
    done = {code: _lessons_done(session, keys, ids) for code, ids in lessons.items()}
    result: dict[int, RoundPupils] = {}
    for round_pk, registration_id, sub in seated:
        round_ = rounds[round_pk]
        key = (round_pk, registration_id, sub)
        statuses = counts.get(key, {})
        last = latest.get(key)
        reviewed = statuses.get(SUBMISSION_REVIEWED, 0)
        pupil = MunicipalPupil(pupil_label(sub), names.get(key),
                               done[round_.course_code].get((registration_id, sub), 0),
                               len(lessons[round_.course_code]), statuses.get(SUBMISSION_SUBMITTED, 0) + reviewed,
                               reviewed, last.created_at if last else None, last.score if last else None,
                               last.score_max if last else None)
        result.setdefault(round_pk, RoundPupils(round_, round_.course, [])).pupils.append(pupil)
    return sorted(result.values(), key=lambda r: (r.course.code, r.round.starts_on, r.round.id))
