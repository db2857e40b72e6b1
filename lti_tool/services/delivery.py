"""Course delivery: the outline a pupil follows, hand-ins, the teacher's roster, queue and reviews.
Never commits: the caller does."""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import BinaryIO

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from .. import clock
from ..domain.claims import ROLE_LEARNER
from ..domain.errors import DomainError
from ..models import (SEAT_ACTIVE, SHOWCASE_APPROVED, SHOWCASE_PENDING, SHOWCASE_WITHDRAWN, SUBMISSION_REVIEWED,
                      SUBMISSION_SUBMITTED, Assignment, Course, CourseModule, Launch, Lesson, LessonProgress, Review,
                      Seat, ShowcaseItem, Submission, SubmissionVersion)
from ..uploads import UploadStore, download_name
from .errors import NotFoundError
# Who may see whose work is decided in .access; ForbiddenError stays importable from here.
from .access import (ForbiddenError, Viewer, check_review, check_submission, classroom_launches, require_classroom,
                     visible_submissions)
from .grades import enqueue_hand_in, enqueue_score


def pupil_label(sub: str) -> str:
    """How a pupil appears to teachers without names: a short, stable pseudonym of the LTI ``sub``."""
    return hashlib.sha256(sub.encode("utf-8")).hexdigest()[:6].upper()


@dataclass(frozen=True)
class OutlineModule:
    id: int
    position: int
    title: dict


@dataclass(frozen=True)
class OutlineLesson:
    __tablename__ = "lessons"  # as the table's rows say it, for templates that link to either kind of step

    id: int
    module_id: int
    position: int
    title: dict


@dataclass(frozen=True)
class OutlineAssignment:
    __tablename__ = "assignments"

    id: int
    module_id: int
    position: int
    title: dict


@dataclass
class Outline:
    course: Course
    modules: list[OutlineModule]
    lessons: list[OutlineLesson]  # in course order
    assignments: list[OutlineAssignment]
    done: set[int] = field(default_factory=set)
    submissions: dict[int, Submission] = field(default_factory=dict)

    def neighbours(self, item) -> tuple[object | None, object | None]:
        """Previous and next step through the course: each module's lessons, then its assignments. ``item`` is
        a lesson or an assignment (a row or an outline entry)."""
        steps = [s for m in self.modules for s in (*[lesson for lesson in self.lessons if lesson.module_id == m.id],
                                                     *[a for a in self.assignments if a.module_id == m.id])]
        index = next(i for i, s in enumerate(steps) if s.__tablename__ == item.__tablename__ and s.id == item.id)
        return (steps[index - 1] if index > 0 else None, steps[index + 1] if index + 1 < len(steps) else None)


class OutlineCache:
    """Course outlines (the ids, order and titles of modules, lessons and assignments) kept between requests
    while the course row says its content has not changed: the catalog sync writes a new content hash (and
    update time) whenever a course's content changes, and the course row is read on every page anyway."""

    def __init__(self, max_courses: int = 2000):
        self.max_courses = max_courses
        self._entries: dict[str, tuple[tuple, tuple]] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _version(course: Course) -> tuple:
        return course.content_hash, course.version, course.updated_at, course.created_at

    def get(self, course: Course) -> tuple | None:
        entry = self._entries.get(course.code)
        return entry[1] if entry is not None and entry[0] == self._version(course) else None

    def put(self, course: Course, value: tuple) -> None:
        with self._lock:
            if len(self._entries) >= self.max_courses and course.code not in self._entries:
                self._entries.clear()
            self._entries[course.code] = (self._version(course), value)


def _load_outline(session: Session, course: Course) -> tuple:
    rows = session.scalars(select(CourseModule).where(CourseModule.course_code == course.code,
                                                      CourseModule.current.is_(True))
                           .order_by(CourseModule.position)).all()
    modules = [OutlineModule(m.id, m.position, dict(m.title or {})) for m in rows]
    module_ids = [m.id for m in modules]
    order = {m.id: m.position for m in modules}
    # Titles only: lesson bodies and instructions stay in the database.
    lessons = sorted((OutlineLesson(id_, module_id, position, dict(title or {})) for id_, module_id, position, title in
                      session.execute(select(Lesson.id, Lesson.module_id, Lesson.position, Lesson.title)
                                      .where(Lesson.module_id.in_(module_ids), Lesson.current.is_(True)))),
                     key=lambda lesson: (order[lesson.module_id], lesson.position))
    assignments = sorted(
        (
            OutlineAssignment(id_, module_id, position, dict(title or {}))
            for id_, module_id, position, title in session.execute(
                select(Assignment.id, Assignment.module_id, Assignment.position, Assignment.title).where(
                    Assignment.module_id.in_(module_ids), Assignment.current.is_(True)
                )
            )
        ),
        key=lambda a: (order[a.module_id], a.position),
    )
    return tuple(modules), tuple(lessons), tuple(assignments)


def outline(session: Session, launch: Launch, cache: OutlineCache | None = None) -> Outline:
    course = session.get(Course, launch.course_code) if launch.course_code else None
    if course is None:
        raise NotFoundError("this launch is not for a course", code="course_unknown")
    content = cache.get(course) if cache is not None else None
    if content is None:
        content = _load_outline(session, course)
        if cache is not None:
            cache.put(course, content)
    modules, lessons, assignments = (list(part) for part in content)
    result = Outline(course, modules, lessons, assignments)
    if launch.role == ROLE_LEARNER:
        result.done = set(
            session.scalars(
                _DONE_QUERY,
                {
                    "registration_id": launch.registration_id,
                    "sub": launch.sub,
                    "lesson_ids": [lesson.id for lesson in lessons],
                },
            )
        )
        if launch.round_pk:
            result.submissions = {
                s.assignment_id: s
                for s in session.scalars(
                    select(Submission).where(
                        visible_submissions(Viewer.of(launch)), Submission.round_pk == launch.round_pk
                    )
                )
            }
    return result


# The pupil's own rows, on every course page: statements built once.
_DONE_QUERY = select(LessonProgress.lesson_id).where(
    LessonProgress.registration_id == bindparam("registration_id"),
    LessonProgress.sub == bindparam("sub"),
    LessonProgress.lesson_id.in_(bindparam("lesson_ids", expanding=True)),
)


def _in_course(session: Session, launch: Launch, model, item_id: int):
    item = session.get(model, item_id)
    if item is None or not item.current:
        raise NotFoundError("no such lesson or assignment")
    module = session.get(CourseModule, item.module_id)
    if module is None or module.course_code != launch.course_code:
        raise ForbiddenError("not part of the course this launch is for")
    return item


def get_lesson(session: Session, launch: Launch, lesson_id: int) -> Lesson:
    return _in_course(session, launch, Lesson, lesson_id)


def get_assignment(session: Session, launch: Launch, assignment_id: int) -> Assignment:
    return _in_course(session, launch, Assignment, assignment_id)


def require_seat(session: Session, launch: Launch) -> None:
    """Only a pupil with an active seat in the launch's round hands in (or marks lessons done)."""
    if launch.role != ROLE_LEARNER or not launch.round_pk:
        raise ForbiddenError("only a pupil with a place in the round can do this")
    seat = session.scalar(
        select(Seat.id).where(
            Seat.round_pk == launch.round_pk,
            Seat.registration_id == launch.registration_id,
            Seat.sub == launch.sub,
            Seat.status == SEAT_ACTIVE,
        )
    )
    if seat is None:
        raise ForbiddenError("no active place in this round", code="seat_missing")


def mark_done(session: Session, launch: Launch, lesson_id: int) -> None:
    lesson = get_lesson(session, launch, lesson_id)
    require_seat(session, launch)
    exists = session.scalar(
        select(LessonProgress.id).where(
            LessonProgress.lesson_id == lesson.id,
            LessonProgress.registration_id == launch.registration_id,
            LessonProgress.sub == launch.sub,
        )
    )
    if exists is None:
        try:
            with session.begin_nested():
                session.add(LessonProgress(lesson_id=lesson.id, registration_id=launch.registration_id, sub=launch.sub))
        except IntegrityError:
            pass  # marked twice at once


MAX_TEXT = 20000


def own_submission(session: Session, launch: Launch, assignment_id: int, *,
                   for_update: bool = False) -> Submission | None:
    """The pupil's own hand-in for an assignment in the launch's round, if any (``for_update``: locked)."""
    query = select(Submission).where(Submission.assignment_id == assignment_id,
                                     Submission.round_pk == launch.round_pk,
                                     Submission.registration_id == launch.registration_id,
                                     Submission.sub == launch.sub)
    return session.scalar(query.with_for_update() if for_update else query)


def _archive_reviewed(session: Session, submission: Submission) -> SubmissionVersion:
    """Keep the reviewed version of a hand-in, unchanged, before the pupil's new version replaces it; the hand-in
    leaves the round's showcase (the teacher approved the reviewed work, not what comes next)."""
    kept = SubmissionVersion(submission_id=submission.id, number=submission.version, text=submission.text,
                             file_key=submission.file_key, file_name=submission.file_name,
                             content_type=submission.content_type, file_size=submission.file_size,
                             submitted_at=submission.submitted_at, replaced_at=clock.now())
    submission.versions.append(kept)
    submission.version += 1
    submission.file_key = None  # now the kept version's: never removed with the replaced work below
    session.execute(update(ShowcaseItem)
                    .where(ShowcaseItem.submission_id == submission.id,
                           ShowcaseItem.status.in_((SHOWCASE_PENDING, SHOWCASE_APPROVED)))
                    .values(status=SHOWCASE_WITHDRAWN, withdrawn_at=clock.now())
                    .execution_options(synchronize_session=False))
    return kept


# A handed-in file and the name it was chosen under: a stream (a form's upload) to store, or the path of a file
# assembled from a chunked upload's pieces under the upload directory, to move into the store
# (services/upload_sessions.py). Either is checked by content the same way.
Upload = tuple[BinaryIO | Path, str]


def _take_work(submission: Submission, assignment: Assignment, text: str | None,
               upload: Upload | None, store: UploadStore | None) -> None:
    """Put the handed-in text or file on the hand-in (a file is checked and stored first)."""
    if assignment.submission == "text":
        body = (text or "").strip()
        if not body:
            raise DomainError("empty hand-in", code="hand_in_empty")
        if len(body) > MAX_TEXT:
            raise DomainError("hand-in text too long", code="hand_in_too_long")
        submission.text = body
        submission.file_key = submission.file_name = submission.content_type = None
        submission.file_size = None
        return
    if upload is None or store is None:
        raise DomainError("no file chosen", code="hand_in_empty")
    source, filename = upload
    stored = store.adopt(source) if isinstance(source, Path) else store.save(source)
    submission.file_key, submission.file_size, submission.content_type = stored.key, stored.size, stored.content_type
    submission.file_name = (filename or "file").replace("/", "_").replace("\\", "_")[-200:]
    submission.text = None


def submit(
    session: Session,
    launch: Launch,
    assignment_id: int,
    *,
    text: str | None = None,
    upload: Upload | None = None,
    store: UploadStore | None = None,
    new_version: bool = False,
) -> Submission:
    """Hand in a text or a file: again (replacing it) until the work is reviewed; after feedback, with
    ``new_version``, a new version (the reviewed one is kept with its reviews, the hand-in waits for review
    again). Without ``new_version`` reviewed work is refused (``already_reviewed``: a form from before the
    feedback)."""
    assignment = get_assignment(session, launch, assignment_id)
    require_seat(session, launch)
    existing = own_submission(session, launch, assignment.id, for_update=True)
    if existing is not None and existing.status == SUBMISSION_REVIEWED and not new_version:
        raise DomainError("the work has been reviewed: hand in a new version", code="already_reviewed", status=409)
    if assignment.submission == "none":
        raise DomainError("this assignment has no hand-in", code="no_hand_in", status=400)
    submission = existing or Submission(
        assignment_id=assignment.id,
        round_pk=launch.round_pk,
        registration_id=launch.registration_id,
        sub=launch.sub,
        context_id=launch.context_id,
        municipality_id=launch.municipality_id,
        attempts=0,
        version=1,
    )
    old_key = submission.file_key
    if existing is not None and existing.status == SUBMISSION_REVIEWED:
        _archive_reviewed(session, submission)
        old_key = None
    _take_work(submission, assignment, text, upload, store)
    submission.status = SUBMISSION_SUBMITTED
    submission.attempts = (submission.attempts or 0) + 1
    submission.submitted_at = clock.now()
    submission.resource_link_id = launch.resource_link_id or submission.resource_link_id  # its placement
    session.add(submission)
    session.flush()
    enqueue_hand_in(session, submission)  # the gradebook shows "needs grading" again, same transaction
    if old_key and old_key != submission.file_key and store is not None:
        store.delete(old_key)
    return submission


# -- teacher ------------------------------------------------------------------------------------------

# Whose work a teacher sees is decided in .access (one rule for every page, download and review).


@dataclass(frozen=True)
class RosterLine:
    sub: str
    label: str
    municipality_id: str
    first_launch: datetime
    handed_in: int
    waiting: int
    # The pupil's platform: a round's pupils come from many, and a ``sub`` is only unique within one.
    registration_id: int = 0

    @property
    def reviewed(self) -> int:
        return self.handed_in - self.waiting


def roster(session: Session, who: Viewer | Launch) -> list[RosterLine]:
    """The pupils of the teacher's classroom (see .access), with what each has handed in."""
    viewer = require_classroom(who, session)
    pupils = session.execute(
        select(Launch.registration_id, Launch.sub, Launch.municipality_id, func.min(Launch.created_at))
        .where(classroom_launches(viewer))
        .group_by(Launch.registration_id, Launch.sub, Launch.municipality_id)
        .order_by(func.min(Launch.created_at))
    ).all()
    counts = {
        (registration_id, sub, status): n
        for registration_id, sub, status, n in session.execute(
            select(Submission.registration_id, Submission.sub, Submission.status, func.count())
            .where(visible_submissions(viewer))
            .group_by(Submission.registration_id, Submission.sub, Submission.status)
        )
    }
    return [
        RosterLine(
            sub,
            pupil_label(sub),
            municipality,
            first,
            counts.get((registration_id, sub, SUBMISSION_SUBMITTED), 0)
            + counts.get((registration_id, sub, SUBMISSION_REVIEWED), 0),
            counts.get((registration_id, sub, SUBMISSION_SUBMITTED), 0),
            registration_id,
        )
        for registration_id, sub, municipality, first in pupils
    ]


def review_queue(session: Session, who: Viewer | Launch) -> list[Submission]:
    """Work waiting for review, oldest first."""
    viewer = require_classroom(who, session)
    return list(
        session.scalars(
            select(Submission)
            .where(visible_submissions(viewer))
            .where(Submission.status == SUBMISSION_SUBMITTED)
            .order_by(Submission.submitted_at, Submission.id)
        )
    )


def submissions_of(session: Session, who: Viewer | Launch, sub: str,
                   registration_id: int | None = None) -> list[Submission]:
    """One pupil's hand-ins the viewer may see, with their reviews (every one, oldest first), earlier versions
    and assignments; ``registration_id``: the pupil's platform (a ``sub`` is only unique within one)."""
    viewer = require_classroom(who, session)
    query = (select(Submission).where(visible_submissions(viewer), Submission.sub == sub)
             .options(selectinload(Submission.reviews), selectinload(Submission.versions),
                      selectinload(Submission.assignment))
             .order_by(Submission.submitted_at, Submission.id))
    if registration_id is not None:
        query = query.where(Submission.registration_id == registration_id)
    return list(session.scalars(query))


def get_submission_for(session: Session, who: Viewer | Launch, submission_id: int) -> Submission:
    """A hand-in, for its pupil or for a teacher of its classroom (see .access); anyone else is refused."""
    return check_submission(session, who if isinstance(who, Viewer) else Viewer.of(who), submission_id)


def reviews_of(submission: Submission, version: int | None = None) -> list[Review]:
    """The reviews of one version of a hand-in (the current one by default), oldest first: a changed review is a
    later one."""
    number = submission.version if version is None else version
    return [review for review in submission.reviews if review.version == number]


def mark_feedback_seen(submission: Submission) -> bool:
    """The pupil has opened the page showing their hand-in's feedback: its reviews not seen before are seen now
    (the course page stops marking them new). True when one was new. The caller commits."""
    fresh = [review for review in submission.reviews if review.seen_at is None]
    for review in fresh:
        review.seen_at = clock.now()
    return bool(fresh)


def get_version_for(session: Session, who: Viewer | Launch, submission_id: int, number: int) -> SubmissionVersion:
    """An earlier version of a hand-in, for whoever may see the hand-in (see .access)."""
    submission = get_submission_for(session, who, submission_id)
    found = next((v for v in submission.versions if v.number == number), None)
    if found is None:
        raise NotFoundError("no such version of the hand-in")
    return found


def hand_in_download_name(session: Session, submission: Submission, version: int | None = None) -> str:
    """The name a handed-in file is served under: the pupil's pseudonym, the assignment (and the number of an
    earlier version) and the extension of the type its content was sniffed as; never the name it was uploaded
    with."""
    assignment = session.get(Assignment, submission.assignment_id)
    parts = [pupil_label(submission.sub), assignment.key if assignment else "hand-in"]
    if version is None:
        return download_name(parts, submission.content_type)
    content_type = next((v.content_type for v in submission.versions if v.number == version), None)
    return download_name([*parts, f"v{version}"], content_type)


def parse_score(raw: str, maximum: Decimal) -> Decimal:
    try:
        score = Decimal((raw or "").strip().replace(",", "."))
    except InvalidOperation as exc:
        raise DomainError("the score is not a number", code="score_invalid") from exc
    if not score.is_finite() or score < 0 or score > maximum:
        raise DomainError(f"the score must be between 0 and {maximum}", code="score_invalid")
    return score.quantize(Decimal("0.01"))


def record_review(session: Session, who: Viewer | Launch, submission_id: int, *, feedback: str,
                  score: str, version: int | None = None) -> Review:
    """A round teacher's written feedback and score, with its timestamp, for the current version of the hand-in:
    the work counts as reviewed. ``version``: the version the teacher's form showed; an earlier one is refused
    (``conflict``: the pupil has handed in a new version since). The score goes to the pupil's own platform and
    column (the hand-in's placement), wherever the teacher came from."""
    viewer = who if isinstance(who, Viewer) else Viewer.of(who)
    submission = check_review(session, viewer, submission_id)
    if version is not None and version != submission.version:
        raise DomainError(f"version {version} is not the current version ({submission.version}) of the hand-in",
                          code="conflict", status=409)
    assignment = session.get(Assignment, submission.assignment_id)
    text = (feedback or "").strip()
    if not text:
        raise DomainError("written feedback is required", code="feedback_empty")
    review = Review(
        submission_id=submission.id,
        assignment_id=submission.assignment_id,
        registration_id=submission.registration_id,
        sub=submission.sub,
        reviewer_sub=viewer.reviewer_key,
        feedback=text[:MAX_TEXT],
        score=parse_score(score, assignment.max_score),
        score_max=assignment.max_score,
        version=submission.version,
    )
    submission.status = SUBMISSION_REVIEWED
    session.add(review)
    session.flush()
    enqueue_score(session, review, submission)  # same transaction: the score is never lost
    return review
