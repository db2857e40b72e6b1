"""Grade passback through a transactional outbox: a review writes its score and an outbox row in one
transaction; workers drain the outbox. A score is never lost and never sent out of order: transient
failures are retried with backoff (forever, at most an hour apart), a newer score for the same pupil and
line item supersedes an unsent older one and is never sent while an older one is in flight."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from sqlalchemy import and_, exists, func, or_, select, update
from sqlalchemy.orm import Session, aliased, sessionmaker

from ..domain import retry
from ..domain.claims import SCOPE_LINEITEM, SCOPE_LINEITEM_READONLY, SCOPE_SCORE
from ..lti.ags import ServiceClient, ServiceError, lookup_registration
from ..metrics import OutboxStats
from ..models import (OUTBOX_DEAD, OUTBOX_PENDING, OUTBOX_SENDING, OUTBOX_SENT, OUTBOX_SUPERSEDED, Assignment,
                      CourseModule, LineItem, LtiContext, OutboxItem, Review, Submission)

LEASE = timedelta(minutes=5)
GRADE_SCOPES = {SCOPE_LINEITEM, SCOPE_LINEITEM_READONLY, SCOPE_SCORE}


def _now() -> datetime:
    return datetime.now(timezone.utc)


def rfc3339(moment: datetime) -> str:
    """With milliseconds and an offset (Blackboard refuses naive times)."""
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds")


def enqueue_score(session: Session, review: Review, submission: Submission) -> OutboxItem | None:
    """The score of a review, for the platform the pupil launched from (when it offers AGS)."""
    if not submission.context_id:
        return None
    context = session.scalar(select(LtiContext).where(LtiContext.registration_id == submission.registration_id,
                                                      LtiContext.context_id == submission.context_id))
    if context is None or not (context.ags_lineitems_url or _fallback_lineitem(session, context.id)):
        return None
    key = f"{submission.registration_id}|{context.id}|{submission.assignment_id}|{submission.sub}"
    session.execute(update(OutboxItem).where(OutboxItem.dedupe_key == key, OutboxItem.status == OUTBOX_PENDING)
                    .values(status=OUTBOX_SUPERSEDED))
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
    item = OutboxItem(kind="score", registration_id=submission.registration_id, context_pk=context.id,
                      assignment_id=submission.assignment_id, sub=submission.sub, dedupe_key=key, payload=payload,
                      status=OUTBOX_PENDING, attempts=0, next_attempt_at=_now())
    session.add(item)
    session.flush()
    return item


def _fallback_lineitem(session: Session, context_pk: int) -> LineItem | None:
    return session.scalar(select(LineItem).where(LineItem.context_pk == context_pk, LineItem.assignment_id.is_(None))
                          .order_by(LineItem.id).limit(1))


# -- draining ------------------------------------------------------------------------------------------

def claim(session: Session, limit: int, now: datetime | None = None) -> list[int]:
    """Take up to ``limit`` due rows for this worker (SKIP LOCKED on PostgreSQL: workers never wait on each
    other), skipping any pupil and line item whose older score is still in flight."""
    now = now or _now()
    inflight = aliased(OutboxItem)
    due = or_(and_(OutboxItem.status == OUTBOX_PENDING, OutboxItem.next_attempt_at <= now),
              and_(OutboxItem.status == OUTBOX_SENDING, OutboxItem.locked_until < now))  # a worker died
    busy = exists().where(inflight.dedupe_key == OutboxItem.dedupe_key, inflight.id != OutboxItem.id,
                          inflight.status == OUTBOX_SENDING, inflight.locked_until >= now)
    older = exists().where(inflight.dedupe_key == OutboxItem.dedupe_key, inflight.id < OutboxItem.id,
                           inflight.status.in_([OUTBOX_PENDING, OUTBOX_SENDING]))
    ids = list(session.scalars(select(OutboxItem.id).where(due, ~busy, ~older).order_by(OutboxItem.id).limit(limit)
                               .with_for_update(skip_locked=True)))
    if ids:
        session.execute(update(OutboxItem).where(OutboxItem.id.in_(ids))
                        .values(status=OUTBOX_SENDING, locked_until=now + LEASE))
    return ids


@dataclass
class DrainReport:
    sent: int = 0
    retried: int = 0
    dead: int = 0
    errors: list[str] = field(default_factory=list)

    def total(self) -> int:
        return self.sent + self.retried + self.dead


def _lineitem_url(session: Session, client: ServiceClient, token: str, item: OutboxItem, context: LtiContext) -> str:
    """The assignment's column: known already; else found by resourceId; else created where the scope allows;
    else the resource link's own column (from deep linking)."""
    known = session.scalar(select(LineItem).where(LineItem.context_pk == context.id,
                                                  LineItem.assignment_id == item.assignment_id))
    if known is not None:
        return known.url
    assignment = session.get(Assignment, item.assignment_id)
    module = session.get(CourseModule, assignment.module_id)
    resource_id = f"{module.course_code}:{assignment.key}"
    url = None
    if context.ags_lineitems_url:
        scopes = context.ags_scopes or []
        if SCOPE_LINEITEM in scopes or SCOPE_LINEITEM_READONLY in scopes:
            url = client.find_lineitem(token, context.ags_lineitems_url, resource_id)
            if url is None and SCOPE_LINEITEM in scopes:
                title = assignment.title.get("sv") or assignment.title.get("nb") or assignment.key
                url = client.create_lineitem(token, context.ags_lineitems_url, label=title,
                                             score_maximum=float(assignment.max_score), resource_id=resource_id,
                                             tag="kulturskola")
    if url is None:
        fallback = _fallback_lineitem(session, context.id)
        if fallback is None:
            raise ServiceError("no line item for the assignment and no scope to create one", status=400,
                               body="no line item")
        return fallback.url
    session.add(LineItem(context_pk=context.id, assignment_id=item.assignment_id, url=url))
    session.flush()
    return url


def deliver(session: Session, client: ServiceClient, item_id: int, now: datetime | None = None) -> str:
    """Send one claimed row; returns sent | retried | dead. The caller commits."""
    item = session.get(OutboxItem, item_id)
    if item is None or item.status != OUTBOX_SENDING:
        return "skipped"
    registration = lookup_registration(session, item.registration_id)
    context = session.get(LtiContext, item.context_pk)
    # One token for everything the worker does in this context: a thousand scores, one token request.
    scopes = sorted({s for s in (context.ags_scopes or []) if s in GRADE_SCOPES} | {SCOPE_SCORE})
    refreshed = False
    item.attempts += 1
    while True:
        try:
            token = client.token(session, registration, scopes)
            url = _lineitem_url(session, client, token, item, context)
            response = client.post_score(token, url, item.payload)
        except ServiceError as error:
            action = retry.classify(error.status)
            if action == retry.REFRESH_TOKEN and not refreshed:
                refreshed = True
                client.forget_token(session, registration, scopes)
                continue
            return _failed(session, item, error, action, now)
        item.status, item.sent_at, item.locked_until = OUTBOX_SENT, now or _now(), None
        item.platform_status, item.platform_response = response.status_code, response.text[:2000]
        item.last_error = None
        return "sent"


def _failed(session: Session, item: OutboxItem, error: ServiceError, action: str, now: datetime | None) -> str:
    now = now or _now()
    item.last_error, item.platform_status, item.platform_response = str(error), error.status, error.body
    item.locked_until = None
    newer = session.scalar(select(OutboxItem.id).where(OutboxItem.dedupe_key == item.dedupe_key,
                                                       OutboxItem.id > item.id,
                                                       OutboxItem.status != OUTBOX_SUPERSEDED).limit(1))
    if newer is not None:
        item.status = OUTBOX_SUPERSEDED  # a newer score for the same pupil and line item will go instead
        return "retried"
    if action in (retry.RETRY, retry.REFRESH_TOKEN):
        delay = retry.backoff_seconds(item.attempts, retry.parse_retry_after(error.retry_after, now))
        item.status, item.next_attempt_at = OUTBOX_PENDING, now + timedelta(seconds=delay)
        return "retried"
    item.status = OUTBOX_DEAD
    return "dead"


def drain(sessions: sessionmaker[Session], client: ServiceClient, *, batch: int = 50, max_items: int | None = None,
          now=None) -> DrainReport:
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


def retry_dead(session: Session, item_id: int | None = None) -> int:
    """Put dead letters back in the queue (one, or all)."""
    query = update(OutboxItem).where(OutboxItem.status == OUTBOX_DEAD)
    if item_id is not None:
        query = query.where(OutboxItem.id == item_id)
    return session.execute(query.values(status=OUTBOX_PENDING, next_attempt_at=_now(), locked_until=None)).rowcount


def list_items(session: Session, status: str | None = None, limit: int = 100) -> list[OutboxItem]:
    query = select(OutboxItem).order_by(OutboxItem.id.desc()).limit(limit)
    if status:
        query = query.where(OutboxItem.status == status)
    return list(session.scalars(query))


def outbox_stats(session: Session) -> OutboxStats:
    """How many items wait to be sent, how many are dead letters, and when the oldest waiting one was written
    (for the metrics)."""
    rows = session.execute(select(OutboxItem.status, func.count(), func.min(OutboxItem.created_at))
                           .where(OutboxItem.status.in_([OUTBOX_PENDING, OUTBOX_SENDING, OUTBOX_DEAD]))
                           .group_by(OutboxItem.status)).all()
    waiting = sum(count for status, count, _oldest in rows if status != OUTBOX_DEAD)
    dead = sum(count for status, count, _oldest in rows if status == OUTBOX_DEAD)
    oldest = min((first for status, _count, first in rows if status != OUTBOX_DEAD and first is not None),
                 default=None)
    return OutboxStats(waiting=waiting, dead=dead, oldest_waiting_at=oldest)
