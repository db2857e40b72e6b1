"""Grade passback through a transactional outbox: a hand-in or a review writes its score and an outbox row in
one transaction; workers drain the outbox. A score is never lost and never sent out of order: transient
failures are retried with backoff (forever, at most an hour apart), a newer score for the same pupil and
line item supersedes an unsent older one and is never sent while an older one is in flight.

Which column a score goes to is decided once per placement (a resource link in a context) and recorded
(``GradePlacement``): one column per assignment, created by the tool with the placement's ``resourceLinkId``,
where the platform grants the line-item scope; else the placement's own column (from its launches, e.g. made
by deep linking) with the course total the tool computes from all the pupil's assignment scores."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, time, timedelta, timezone
from decimal import Decimal

from pylti1p3.lineitem import LineItem as Column
from sqlalchemy import and_, exists, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased, sessionmaker

from ..domain import retry
from ..domain.calendar import time_zone
from ..domain.claims import ROLE_LEARNER, SCOPE_LINEITEM, SCOPE_LINEITEM_READONLY, SCOPE_SCORE, normalise_locale
from ..domain.gradebook import column_label, column_language, total_progress
from ..lti.ags import AssignmentsGrades, ServiceClient, ServiceError, lookup_registration
from ..metrics import OutboxStats
from ..models import (GRADES_COURSE_TOTAL, GRADES_PER_ASSIGNMENT, OUTBOX_DEAD, OUTBOX_PENDING, OUTBOX_SENDING,
                      OUTBOX_SENT, OUTBOX_SUPERSEDED, SUBMISSION_REVIEWED, Assignment, Course, CourseModule,
                      CourseRound, GradePlacement, Launch, LineItem, LtiContext, Municipality, OutboxItem, Review,
                      Submission)

LEASE = timedelta(minutes=5)
GRADE_SCOPES = {SCOPE_LINEITEM, SCOPE_LINEITEM_READONLY, SCOPE_SCORE}
TAG = "kulturskola"
TOTAL = "total"  # the target of a course total in an outbox row's dedupe key


def _now() -> datetime:
    return datetime.now(timezone.utc)


def rfc3339(moment: datetime) -> str:
    """With milliseconds and an offset (Blackboard refuses naive times)."""
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds")


# -- placements ----------------------------------------------------------------------------------------

def _course_assignments(session: Session, course_code: str) -> list[Assignment]:
    return list(session.scalars(select(Assignment).join(CourseModule)
                                .where(CourseModule.course_code == course_code, Assignment.current.is_(True))
                                .order_by(CourseModule.position, Assignment.position, Assignment.id)))


def course_maximum(session: Session, course_code: str) -> Decimal:
    """The course total's maximum, as deep linking declares it on the placement's column."""
    total = sum((a.max_score for a in _course_assignments(session, course_code)), Decimal(0))
    return total or Decimal(100)


def _resource_link_of(session: Session, submission: Submission, course_code: str) -> str | None:
    """The placement of a hand-in; for one written before hand-ins recorded it, the pupil's latest launch of
    the course in the same context."""
    if submission.resource_link_id:
        return submission.resource_link_id
    return session.scalar(select(Launch.resource_link_id).where(
        Launch.registration_id == submission.registration_id, Launch.sub == submission.sub,
        Launch.context_id == submission.context_id, Launch.course_code == course_code,
        Launch.resource_link_id.is_not(None)).order_by(Launch.created_at.desc()).limit(1))


def placement_for(session: Session, context: LtiContext, resource_link_id: str, course_code: str,
                  municipality_id: str | None = None) -> GradePlacement | None:
    """The recorded choice for a placement, made now if it is the first score: None when the platform gives
    neither the right to create columns nor a column of the placement."""
    found = session.scalar(select(GradePlacement).where(GradePlacement.context_pk == context.id,
                                                        GradePlacement.resource_link_id == resource_link_id))
    if found is not None:
        return found
    scopes = context.ags_scopes or []
    own = session.scalar(select(LineItem).where(LineItem.context_pk == context.id, LineItem.assignment_id.is_(None),
                                                LineItem.resource_link_id == resource_link_id))
    if context.ags_lineitems_url and SCOPE_LINEITEM in scopes:
        values = {"mode": GRADES_PER_ASSIGNMENT}
    elif own is not None:
        values = {"mode": GRADES_COURSE_TOTAL, "lineitem_url": own.url,
                  "score_maximum": course_maximum(session, course_code)}
    else:
        return None
    municipality = session.get(Municipality, municipality_id) if municipality_id else None
    # The platform's language for the placement: a teacher's launch first (a pupil's own choice of English
    # does not name the columns of the whole class), else any.
    locale = session.scalar(select(Launch.locale).where(
        Launch.registration_id == context.registration_id, Launch.context_id == context.context_id,
        Launch.resource_link_id == resource_link_id, Launch.locale.is_not(None))
        .order_by((Launch.role == ROLE_LEARNER), Launch.created_at.desc()).limit(1))
    placement = GradePlacement(
        context_pk=context.id,
        resource_link_id=resource_link_id,
        course_code=course_code,
        language=column_language(municipality.country if municipality else None, normalise_locale(locale)),
        decided_at=_now(),
        **values,
    )
    try:
        with session.begin_nested():
            session.add(placement)
    except IntegrityError:  # decided by a concurrent hand-in of the same placement: that choice stands
        placement = session.scalar(
            select(GradePlacement).where(
                GradePlacement.context_pk == context.id, GradePlacement.resource_link_id == resource_link_id
            )
        )
    return placement


@dataclass(frozen=True)
class PlacementView:
    """What the tool chose for a placement, for the teacher and national staff."""

    context_id: str
    resource_link_id: str
    course_code: str
    mode: str
    lineitem_url: str | None
    score_maximum: Decimal | None
    language: str
    columns: int  # columns the tool knows for the placement (per assignment), or 1 (course total)
    decided_at: datetime


def placements(
    session: Session,
    *,
    registration_id: int | None = None,
    context_id: str | None = None,
    resource_link_id: str | None = None,
) -> list[PlacementView]:
    query = (
        select(GradePlacement, LtiContext)
        .join(LtiContext, LtiContext.id == GradePlacement.context_pk)
        .order_by(GradePlacement.id)
    )
    if registration_id is not None:
        query = query.where(LtiContext.registration_id == registration_id)
    if context_id is not None:
        query = query.where(LtiContext.context_id == context_id)
    if resource_link_id is not None:
        query = query.where(GradePlacement.resource_link_id == resource_link_id)
    views = []
    for placement, context in session.execute(query).all():
        columns = (
            1
            if placement.mode == GRADES_COURSE_TOTAL
            else session.scalar(
                select(func.count())
                .select_from(LineItem)
                .where(
                    LineItem.context_pk == context.id,
                    LineItem.resource_link_id == placement.resource_link_id,
                    LineItem.assignment_id.is_not(None),
                )
            )
        )
        views.append(
            PlacementView(
                context.context_id,
                placement.resource_link_id,
                placement.course_code,
                placement.mode,
                placement.lineitem_url,
                placement.score_maximum,
                placement.language,
                columns,
                placement.decided_at,
            )
        )
    return views


def placement_of_launch(session: Session, launch: Launch) -> PlacementView | None:
    """The choice for the placement a teacher launched from (None before its first score)."""
    if not launch.context_id or not launch.resource_link_id:
        return None
    found = placements(
        session,
        registration_id=launch.registration_id,
        context_id=launch.context_id,
        resource_link_id=launch.resource_link_id,
    )
    return found[0] if found else None


# -- enqueueing ----------------------------------------------------------------------------------------


def _context_of(session: Session, submission: Submission) -> LtiContext | None:
    if not submission.context_id:
        return None
    return session.scalar(
        select(LtiContext).where(
            LtiContext.registration_id == submission.registration_id, LtiContext.context_id == submission.context_id
        )
    )


def _latest_reviews(session: Session, submissions: list[Submission]) -> dict[int, Review]:
    latest: dict[int, Review] = {}
    if not submissions:
        return latest
    for review in session.scalars(
        select(Review)
        .where(Review.submission_id.in_([s.id for s in submissions]))
        .order_by(Review.created_at, Review.id)
    ):
        latest[review.submission_id] = review
    return latest


def course_total_payload(
    session: Session, placement: GradePlacement, submission: Submission, comment: str | None = None
) -> dict:
    """The pupil's course total in the placement's column: the sum of the latest score of every assignment
    of the course in the pupil's round, out of the maximum deep linking declared; the timestamp is that of
    the pupil's latest hand-in or review, so a later state always has a later timestamp."""
    assignments = _course_assignments(session, placement.course_code)
    ids = [a.id for a in assignments]
    pupils_work = list(
        session.scalars(
            select(Submission).where(
                Submission.registration_id == submission.registration_id,
                Submission.sub == submission.sub,
                Submission.round_pk == submission.round_pk,
                Submission.assignment_id.in_(ids),
            )
        )
    )
    latest = _latest_reviews(session, pupils_work)
    reviewed = [s for s in pupils_work if s.status == SUBMISSION_REVIEWED and s.id in latest]
    activity, grading = total_progress(len(ids), len(pupils_work), len(reviewed))
    moments = [s.submitted_at for s in pupils_work] + [r.created_at for r in latest.values()]
    payload = {
        "userId": submission.sub,
        "timestamp": rfc3339(max(moments)),
        "activityProgress": activity,
        "gradingProgress": grading,
    }
    if reviewed:
        payload["scoreGiven"] = float(sum((latest[s.id].score for s in reviewed), Decimal(0)))
        payload["scoreMaximum"] = float(placement.score_maximum or course_maximum(session, placement.course_code))
    if comment:
        payload["comment"] = comment
    return payload


def _enqueue(
    session: Session, submission: Submission, assignment_payload: dict, comment: str | None
) -> OutboxItem | None:
    context = _context_of(session, submission)
    if context is None:
        return None
    assignment = session.get(Assignment, submission.assignment_id)
    course_code = session.scalar(select(CourseModule.course_code).where(CourseModule.id == assignment.module_id))
    resource_link_id = _resource_link_of(session, submission, course_code)
    if not resource_link_id:
        return None
    placement = placement_for(session, context, resource_link_id, course_code, submission.municipality_id)
    if placement is None:
        return None
    if placement.mode == GRADES_COURSE_TOTAL:
        payload = course_total_payload(session, placement, submission, comment)
    else:
        payload = assignment_payload
    key = score_key(submission.registration_id, context.id, placement, submission.assignment_id, submission.sub)
    session.execute(
        update(OutboxItem)
        .where(OutboxItem.dedupe_key == key, OutboxItem.status == OUTBOX_PENDING)
        .values(status=OUTBOX_SUPERSEDED)
    )
    item = OutboxItem(
        kind="score",
        registration_id=submission.registration_id,
        context_pk=context.id,
        assignment_id=submission.assignment_id,
        sub=submission.sub,
        resource_link_id=resource_link_id,
        placement_id=placement.id,
        dedupe_key=key,
        payload=payload,
        status=OUTBOX_PENDING,
        attempts=0,
        next_attempt_at=_now(),
    )
    session.add(item)
    session.flush()
    return item


def enqueue_hand_in(session: Session, submission: Submission) -> OutboxItem | None:
    """A hand-in waiting for review: the gradebook shows "needs grading" before the teacher scores."""
    payload = {
        "userId": submission.sub,
        "timestamp": rfc3339(submission.submitted_at),
        "activityProgress": "Submitted",
        "gradingProgress": "PendingManual",
        "submission": {"submittedAt": rfc3339(submission.submitted_at)},
    }
    return _enqueue(session, submission, payload, None)


def enqueue_score(session: Session, review: Review, submission: Submission) -> OutboxItem | None:
    """The score of a review, for the placement the pupil handed in from (when its platform offers AGS)."""
    payload = {
        "userId": submission.sub,
        "scoreGiven": float(review.score),
        "scoreMaximum": float(review.score_max),
        "comment": review.feedback,
        "timestamp": rfc3339(review.created_at),
        "activityProgress": "Completed",
        "gradingProgress": "FullyGraded",
        "submission": {"submittedAt": rfc3339(submission.submitted_at)},
    }
    return _enqueue(session, submission, payload, review.feedback)


# -- draining ------------------------------------------------------------------------------------------


def claim(session: Session, limit: int, now: datetime | None = None) -> list[int]:
    """Take up to ``limit`` due rows for this worker (SKIP LOCKED on PostgreSQL: workers never wait on each
    other), skipping any pupil and line item whose older score is still in flight."""
    now = now or _now()
    inflight = aliased(OutboxItem)
    due = or_(
        and_(OutboxItem.status == OUTBOX_PENDING, OutboxItem.next_attempt_at <= now),
        and_(OutboxItem.status == OUTBOX_SENDING, OutboxItem.locked_until < now),
    )  # a worker died
    busy = exists().where(
        inflight.dedupe_key == OutboxItem.dedupe_key,
        inflight.id != OutboxItem.id,
        inflight.status == OUTBOX_SENDING,
        inflight.locked_until >= now,
    )
    older = exists().where(
        inflight.dedupe_key == OutboxItem.dedupe_key,
        inflight.id < OutboxItem.id,
        inflight.status.in_([OUTBOX_PENDING, OUTBOX_SENDING]),
    )
    ids = list(
        session.scalars(
            select(OutboxItem.id)
            .where(due, ~busy, ~older)
            .order_by(OutboxItem.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    )
    if ids:
        session.execute(
            update(OutboxItem).where(OutboxItem.id.in_(ids)).values(status=OUTBOX_SENDING, locked_until=now + LEASE)
        )
    return ids


@dataclass
class DrainReport:
    sent: int = 0
    retried: int = 0
    dead: int = 0
    errors: list[str] = field(default_factory=list)

    def total(self) -> int:
        return self.sent + self.retried + self.dead


def score_key(registration_id: int, context_pk: int, placement: GradePlacement, assignment_id: int | None,
              sub: str) -> str:
    """The pupil and column a score row is for: rows with the same key go out in the order they were written,
    and a newer one supersedes an older one not yet sent."""
    target = TOTAL if placement.mode == GRADES_COURSE_TOTAL else str(assignment_id)
    return f"{registration_id}|{context_pk}|p{placement.id}|{target}|{sub}"


def _newer_score_exists(session: Session, item: OutboxItem) -> bool:
    return session.scalar(
        select(OutboxItem.id)
        .where(OutboxItem.dedupe_key == item.dedupe_key, OutboxItem.id > item.id,
               OutboxItem.status != OUTBOX_SUPERSEDED)
        .limit(1)
    ) is not None


def _placement_of_item(session: Session, item: OutboxItem, context: LtiContext) -> GradePlacement:
    """The row's placement; a row written before placements were recorded gets its pupil's (and, when that
    placement reports a course total, the total instead of the assignment's score)."""
    if item.placement_id is not None:
        return session.get(GradePlacement, item.placement_id)
    submission = session.scalar(
        select(Submission)
        .where(
            Submission.assignment_id == item.assignment_id,
            Submission.registration_id == item.registration_id,
            Submission.sub == item.sub,
        )
        .order_by(Submission.submitted_at.desc())
        .limit(1)
    )
    assignment = session.get(Assignment, item.assignment_id)
    course_code = session.scalar(select(CourseModule.course_code).where(CourseModule.id == assignment.module_id))
    link = _resource_link_of(session, submission, course_code) if submission is not None else None
    placement = placement_for(session, context, link, course_code, submission.municipality_id) if link else None
    if placement is None:
        raise ServiceError(
            "no column for the score: no placement known and no scope to create one", status=400, body="no line item"
        )
    item.placement_id, item.resource_link_id = placement.id, link
    # The row's key in today's form (pupil and column), so a newer score for the same column is seen.
    item.dedupe_key = score_key(item.registration_id, context.id, placement, item.assignment_id, item.sub)
    if placement.mode == GRADES_COURSE_TOTAL:
        item.payload = course_total_payload(session, placement, submission, item.payload.get("comment"))
    return placement


def _round_bounds(session: Session, context: LtiContext, item: OutboxItem) -> dict:
    """startDateTime and endDateTime of a created column: the pupil's round, on the municipality's calendar."""
    row = session.execute(
        select(CourseRound, Submission.municipality_id)
        .join(Submission, Submission.round_pk == CourseRound.id)
        .where(
            Submission.assignment_id == item.assignment_id,
            Submission.registration_id == item.registration_id,
            Submission.sub == item.sub,
        )
        .limit(1)
    ).first()
    if row is None:
        return {}
    round_, municipality_id = row
    zone = time_zone(municipality_id)
    start = datetime.combine(round_.starts_on, time.min, zone)
    end = datetime.combine(round_.ends_on, time(23, 59, 59), zone)
    return {"start": rfc3339(start), "end": rfc3339(end)}


def _lineitem_url(
    session: Session,
    ags: AssignmentsGrades,
    item: OutboxItem,
    context: LtiContext,
    placement: GradePlacement,
) -> str:
    """The row's column. Course total: the placement's own column. Per assignment: remembered once known;
    else found by resourceId and resourceLinkId; else created (label in the municipality's language with the
    course title, the assignment's maximum, the round's dates, the placement's resourceLinkId)."""
    if placement.mode == GRADES_COURSE_TOTAL:
        own = session.scalar(
            select(LineItem.url).where(
                LineItem.context_pk == context.id,
                LineItem.assignment_id.is_(None),
                LineItem.resource_link_id == placement.resource_link_id,
            )
        )
        return own or placement.lineitem_url
    known = session.scalar(
        select(LineItem).where(
            LineItem.context_pk == context.id,
            LineItem.resource_link_id == placement.resource_link_id,
            LineItem.assignment_id == item.assignment_id,
        )
    )
    if known is not None:
        return known.url
    if not context.ags_lineitems_url:
        raise ServiceError(
            "the platform no longer gives a line-item service for the context", status=400, body="no line item"
        )
    assignment = session.get(Assignment, item.assignment_id)
    resource_id = f"{placement.course_code}:{assignment.key}"
    url = ags.find_lineitem_of_link(resource_id, placement.resource_link_id)
    if url is None:
        course = session.get(Course, placement.course_code)
        ordered = [a.id for a in _course_assignments(session, placement.course_code)]
        number = ordered.index(assignment.id) + 1 if assignment.id in ordered else assignment.position
        column = (
            Column()
            .set_label(column_label(placement.language, course.title if course else None, number, assignment.title))
            .set_score_maximum(float(assignment.max_score))
            .set_resource_id(resource_id)
            .set_tag(TAG)
            .set_resource_link_id(placement.resource_link_id)
        )
        bounds = _round_bounds(session, context, item)
        if bounds:
            column.set_start_date_time(bounds["start"]).set_end_date_time(bounds["end"])
        url = ags.create_lineitem(column).get_id()
    try:
        with session.begin_nested():
            session.add(
                LineItem(
                    context_pk=context.id,
                    resource_link_id=placement.resource_link_id,
                    assignment_id=item.assignment_id,
                    url=url,
                )
            )
    except IntegrityError:  # another worker remembered one first: every score of the column goes there
        url = (
            session.scalar(
                select(LineItem.url).where(
                    LineItem.context_pk == context.id,
                    LineItem.resource_link_id == placement.resource_link_id,
                    LineItem.assignment_id == item.assignment_id,
                )
            )
            or url
        )
    return url


def _already_stored(item: OutboxItem, error: ServiceError) -> bool:
    """A retry after a lost answer (the platform saved the score, its answer never came) that the platform
    refuses because it holds a score with this very timestamp: the score is there."""
    return item.attempts > 1 and error.status in (400, 409, 422) and "already exists" in (error.body or "").lower()


def deliver(session: Session, client: ServiceClient, item_id: int, now: datetime | None = None) -> str:
    """Send one claimed row; returns sent | retried | dead. The caller commits."""
    item = session.get(OutboxItem, item_id)
    if item is None or item.status != OUTBOX_SENDING:
        return "skipped"
    registration = lookup_registration(session, item.registration_id)
    context = session.get(LtiContext, item.context_pk)
    # One token for everything the worker does in this context: a thousand scores, one token request.
    scopes = sorted({s for s in (context.ags_scopes or []) if s in GRADE_SCOPES} | {SCOPE_SCORE})
    connector = client.connector(session, registration)
    ags = client.assignments_grades(connector, scopes, context.ags_lineitems_url)
    refreshed = False
    item.attempts += 1
    while True:
        try:
            connector.get_access_token(scopes)
        except ServiceError as error:
            return _failed(session, item, error, retry.classify(error.status), now)
        cached = not connector.fresh
        try:
            old_row = item.placement_id is None
            placement = _placement_of_item(session, item, context)
            if old_row and _newer_score_exists(session, item):
                # A row written before placements were recorded, overtaken by a newer score for its column.
                item.status, item.locked_until = OUTBOX_SUPERSEDED, None
                return "retried"
            url = _lineitem_url(session, ags, item, context, placement)
            response = ags.post_score(url, item.payload)
            status, text = response.status_code, response.text[:2000]
        except ServiceError as error:
            # An expired or revoked token: platforms answer 401, some (Open edX) 403. The token is dropped
            # and the call made once more with a new one; only then is a 403 the platform's final word.
            if not refreshed and (error.status == 401 or (error.status == 403 and cached)):
                refreshed = True
                connector.forget(scopes)
                continue
            if not _already_stored(item, error):
                action = retry.classify(error.status)
                if action == retry.REFRESH_TOKEN:
                    connector.forget(scopes)
                return _failed(session, item, error, action, now)
            status, text = error.status, error.body[:2000]
        item.status, item.sent_at, item.locked_until = OUTBOX_SENT, now or _now(), None
        item.platform_status, item.platform_response = status, text
        item.last_error = None
        _wake(session, item.registration_id, now or _now())
        return "sent"


def _wake(session: Session, registration_id: int, now: datetime) -> None:
    """The platform answers again: its scores waiting out a backoff are due now, not in up to an hour."""
    session.execute(
        update(OutboxItem)
        .where(
            OutboxItem.registration_id == registration_id,
            OutboxItem.status == OUTBOX_PENDING,
            OutboxItem.attempts > 0,
            OutboxItem.next_attempt_at > now,
        )
        .values(next_attempt_at=now)
    )


def _failed(session: Session, item: OutboxItem, error: ServiceError, action: str, now: datetime | None) -> str:
    now = now or _now()
    item.last_error, item.platform_status, item.platform_response = str(error), error.status, error.body
    item.locked_until = None
    if _newer_score_exists(session, item):
        item.status = OUTBOX_SUPERSEDED  # a newer score for the same pupil and line item will go instead
        return "retried"
    if action in (retry.RETRY, retry.REFRESH_TOKEN):
        delay = retry.backoff_seconds(item.attempts, retry.parse_retry_after(error.retry_after, now))
        item.status, item.next_attempt_at = OUTBOX_PENDING, now + timedelta(seconds=delay)
        return "retried"
    item.status = OUTBOX_DEAD
    return "dead"


def drain(
    sessions: sessionmaker[Session], client: ServiceClient, *, batch: int = 50, max_items: int | None = None, now=None
) -> DrainReport:
    """Send what is due until nothing is left (or ``max_items``)."""
    report = DrainReport()
    while max_items is None or report.total() < max_items:
        with sessions.begin() as session:
            ids = claim(session, batch, now() if callable(now) else now)
        if not ids:
            break
        for item_id in ids:
            with sessions() as session:
                try:
                    outcome = deliver(session, client, item_id, now() if callable(now) else now)
                    session.commit()
                except Exception as exc:  # never lose the row: put it back for later
                    session.rollback()
                    _release(sessions, item_id, f"{exc.__class__.__name__}: {exc}")
                    report.errors.append(str(exc))
                    outcome = "retried"
            if outcome == "sent":
                report.sent += 1
            elif outcome == "dead":
                report.dead += 1
            else:
                report.retried += 1
    return report


def _release(sessions: sessionmaker[Session], item_id: int, error: str) -> None:
    with sessions.begin() as session:
        item = session.get(OutboxItem, item_id)
        if item is not None and item.status == OUTBOX_SENDING:
            item.status, item.locked_until = OUTBOX_PENDING, None
            item.next_attempt_at = _now() + timedelta(seconds=retry.backoff_seconds(max(1, item.attempts)))
            item.last_error = error[:2000]


@dataclass
class RetryReport:
    queued: int = 0
    superseded: int = 0


def retry_dead(session: Session, item_id: int | None = None) -> RetryReport:
    """Put dead letters back in the queue (one, or all). A dead letter for a pupil and column that a newer
    score has reached (sent, or on its way) is marked superseded instead: scores never go out of order."""
    report = RetryReport()
    query = select(OutboxItem).where(OutboxItem.status == OUTBOX_DEAD).order_by(OutboxItem.id)
    if item_id is not None:
        query = query.where(OutboxItem.id == item_id)
    newer = aliased(OutboxItem)
    for item in session.scalars(query.with_for_update()):
        replaced = session.scalar(
            select(newer.id)
            .where(
                newer.dedupe_key == item.dedupe_key,
                newer.id > item.id,
                newer.status.in_([OUTBOX_SENT, OUTBOX_PENDING, OUTBOX_SENDING]),
            )
            .limit(1)
        )
        if replaced is not None:
            item.status, item.last_error = OUTBOX_SUPERSEDED, f"superseded by {replaced}: {item.last_error or ''}"
            report.superseded += 1
        else:
            item.status, item.next_attempt_at, item.locked_until = OUTBOX_PENDING, _now(), None
            report.queued += 1
    session.flush()
    return report


def list_items(session: Session, status: str | None = None, limit: int = 100) -> list[OutboxItem]:
    query = select(OutboxItem).order_by(OutboxItem.id.desc()).limit(limit)
    if status:
        query = query.where(OutboxItem.status == status)
    return list(session.scalars(query))


def outbox_stats(session: Session) -> OutboxStats:
    """How many items wait to be sent, how many are dead letters, and when the oldest waiting one was written
    (for the metrics)."""
    rows = session.execute(
        select(OutboxItem.status, func.count(), func.min(OutboxItem.created_at))
        .where(OutboxItem.status.in_([OUTBOX_PENDING, OUTBOX_SENDING, OUTBOX_DEAD]))
        .group_by(OutboxItem.status)
    ).all()
    waiting = sum(count for status, count, _oldest in rows if status != OUTBOX_DEAD)
    dead = sum(count for status, count, _oldest in rows if status == OUTBOX_DEAD)
    oldest = min((first for status, _count, first in rows if status != OUTBOX_DEAD and first is not None), default=None)
    return OutboxStats(waiting=waiting, dead=dead, oldest_waiting_at=oldest)
