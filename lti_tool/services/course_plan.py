"""Where a pupil is in the course, and when work is due.

- **Progress** (the pupil's course page): lessons done, assignments handed in, feedback received, and each
  assignment's status with the score of its feedback, from the pupil's outline (:func:`.delivery.outline`).
- **Due days**: each module's weeks of the round and the day its assignments are due, from the catalog's module
  order and the round's dates (:func:`..domain.schedule.module_schedule`); the pupil's course page shows them, the
  teacher's queue and grade grid mark work handed in after them as late. One plan for both.

Only reads; never commits.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..domain.schedule import ModuleWeeks, is_late, module_schedule
from ..models import SUBMISSION_REVIEWED, Assignment, CourseModule, CourseRound, Review, Submission
from .delivery import Outline, reviews_of

# Where a pupil is with an assignment.
NOT_HANDED_IN = "not_handed_in"
HANDED_IN = "handed_in"
FEEDBACK = "feedback"
NOTHING_TO_HAND_IN = "nothing_to_hand_in"


def round_plan(course_round: CourseRound, module_ids: list[int]) -> dict[int, ModuleWeeks]:
    """The weeks and due day of each module (``module_ids``: the round's course's current modules in catalog
    order) of the round."""
    if course_round.ends_on < course_round.starts_on:  # the feed never has one; a plan of nothing rather than a 500
        return {}
    return module_schedule(course_round.starts_on, course_round.ends_on, module_ids)


@dataclass(frozen=True)
class Progress:
    """Lessons marked done, assignments handed in (of those that take a hand-in), hand-ins with feedback."""

    lessons_done: int
    lessons: int
    handed_in: int
    hand_ins: int
    feedback: int


@dataclass
class CoursePlan:
    """A pupil's outline with where they are and the round's plan of weeks."""

    outline: Outline
    kinds: dict[int, str]  # assignment id: what it takes (file, text, none)
    schedule: dict[int, ModuleWeeks] = field(default_factory=dict)  # module id: its weeks and due day

    @property
    def nothing_to_hand_in(self) -> set[int]:
        """The assignments that take no hand-in."""
        return {assignment_id for assignment_id, kind in self.kinds.items() if kind == "none"}

    def status(self, assignment) -> str:
        """Not handed in, handed in (waiting for feedback), feedback on the current version, or nothing to hand
        in."""
        found = self.outline.submissions.get(assignment.id)
        if found is None:
            return NOTHING_TO_HAND_IN if self.kinds.get(assignment.id) == "none" else NOT_HANDED_IN
        return FEEDBACK if self.feedback(assignment) is not None else HANDED_IN

    def feedback(self, assignment) -> Review | None:
        """The latest review of the current version of the pupil's hand-in, if it has had one."""
        found = self.outline.submissions.get(assignment.id)
        if found is None or found.status != SUBMISSION_REVIEWED:
            return None
        current = reviews_of(found)
        return current[-1] if current else None

    def progress(self) -> Progress:
        taking = [a for a in self.outline.assignments if self.kinds.get(a.id) != "none"]
        states = [self.status(a) for a in taking]
        lessons = {lesson.id for lesson in self.outline.lessons}
        return Progress(len(self.outline.done & lessons), len(lessons), sum(s != NOT_HANDED_IN for s in states),
                        len(taking), states.count(FEEDBACK))


def course_plan(session: Session, outline: Outline, course_round: CourseRound | None) -> CoursePlan:
    """The pupil's progress and the round's weeks, for an outline (:func:`.delivery.outline`) of the round's
    course."""
    ids = [a.id for a in outline.assignments]
    kinds = dict(session.execute(select(Assignment.id, Assignment.submission).where(Assignment.id.in_(ids))).all()) \
        if ids else {}
    plan = CoursePlan(outline, kinds)
    if course_round is not None and course_round.course_code == outline.course.code:
        plan.schedule = round_plan(course_round, [m.id for m in outline.modules])
    return plan


# -- the teacher's side: late work -------------------------------------------------------------------------------

def due_days(session: Session, course_round: CourseRound | None) -> dict[int, date]:
    """The due day of each current assignment of the round's course (assignment id: day)."""
    if course_round is None:
        return {}
    module_ids = list(session.scalars(select(CourseModule.id)
                                      .where(CourseModule.course_code == course_round.course_code,
                                             CourseModule.current.is_(True))
                                      .order_by(CourseModule.position, CourseModule.id)))
    plan = round_plan(course_round, module_ids)
    rows = session.execute(select(Assignment.id, Assignment.module_id)
                           .where(Assignment.module_id.in_(module_ids), Assignment.current.is_(True))).all() \
        if module_ids else []
    return {assignment_id: plan[module_id].due_on for assignment_id, module_id in rows if module_id in plan}


def first_handed_in_at(submission: Submission) -> datetime:
    """When the work was first handed in: its first version's time (a new version after feedback is not late
    work; a hand-in replaced before its review counts from the replacement)."""
    if submission.version > 1 and submission.versions:
        return submission.versions[0].submitted_at
    return submission.submitted_at


def handed_in_late(submission: Submission, due: dict[int, date]) -> bool:
    """Whether the work was first handed in after its assignment's due day, the day counted where the pupil
    lives."""
    return is_late(due.get(submission.assignment_id), first_handed_in_at(submission), submission.municipality_id)


def late_hand_ins(session: Session, submissions: Iterable[Submission]) -> set[int]:
    """The ids of the hand-ins first handed in after their assignment's due day in their round."""
    work = list(submissions)
    rounds = {round_pk: due_days(session, session.get(CourseRound, round_pk))
              for round_pk in {s.round_pk for s in work}}
    return {s.id for s in work if handed_in_late(s, rounds[s.round_pk])}
