"""Talking to the group: the round's announcements, the conversation on a hand-in between its pupil and the
round's teachers, and the round's showcase of finished work. Who may see and write what is decided in
:mod:`.access`; this module never commits (the caller does).

- **Announcements**: a round teacher writes to the whole round, in the language they write in; the round's
  pupils read them on their course page, those newer than their seat's ``announcements_seen_at`` marked new.
- **Hand-in messages**: the pupil who handed in and the round's teachers write; whoever may see the hand-in
  reads. Each side's unread messages are those of the other side without ``read_at``. A pupil's name is never
  stored with a message (``author_name`` is a teacher's).
- **Showcase** (per round, off until a round teacher switches it on): a pupil shares a reviewed hand-in with a
  caption (waiting); a round teacher approves it (shown to the round) or declines it; the pupil withdraws it at
  any time (gone at once, for everyone). Only reviewed work is shared: it can no longer be handed in again, so
  what the teacher approved is what the round sees.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Select, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from .. import clock
from ..domain.claims import SUPPORTED_LOCALES
from ..domain.errors import DomainError
from ..models import (MESSAGE_FROM_PUPIL, MESSAGE_FROM_TEACHER, SEAT_ACTIVE, SHOWCASE_APPROVED, SHOWCASE_PENDING,
                      SHOWCASE_WITHDRAWN, SUBMISSION_REVIEWED, Announcement, AuditEntry, CourseRound, HandInMessage,
                      Launch, RoundTeacher, Seat, ShowcaseItem, Submission)
from .access import (ForbiddenError, Viewer, check_message, check_showcase_item, check_submission, may_announce,
                     may_read_announcements, may_review, may_write_message, round_teacher_rows, showcase_visible,
                     teaches_round, visible_submissions)
from .errors import ConflictError, NotFoundError

MAX_BODY = 4000
MAX_CAPTION = 500
# A teacher's item taken off the showcase (or never put on it): the pupil may share it again.
SHOWCASE_DECLINED = "declined"
# The languages an announcement may be written in: the interface's, and the Sami languages municipalities use.
ANNOUNCEMENT_LANGUAGES = (*SUPPORTED_LOCALES, "se", "sma", "smj")
SAMI_NAMES = {"se": "Davvisámegiella", "sma": "Åarjelsaemien gïele", "smj": "Julevsámegiella"}

ACTION_SHOWCASE_SWITCH = "showcase_switch"
ACTION_SHOWCASE_APPROVE = "showcase_approve"
ACTION_SHOWCASE_DECLINE = "showcase_decline"
ACTION_ANNOUNCEMENT_DELETE = "announcement_delete"


def _viewer(who: Viewer | Launch) -> Viewer:
    return who if isinstance(who, Viewer) else Viewer.of(who)


def _body(text: str | None, *, empty: str, too_long: str, limit: int = MAX_BODY) -> str:
    body = (text or "").replace("\r\n", "\n").strip()
    if not body:
        raise DomainError("nothing written", code=empty)
    if len(body) > limit:
        raise DomainError(f"longer than {limit} characters", code=too_long)
    return body


def _teacher_name(session: Session, viewer: Viewer) -> str | None:
    return session.scalar(select(RoundTeacher.name).where(round_teacher_rows(viewer)).order_by(RoundTeacher.id)
                          .limit(1))


def _actor(viewer: Viewer) -> str:
    """Who, in the audit log: a teacher's sign-in or launch (never a pupil's ``sub``: pupils' changes are not
    audited here)."""
    return f"teacher {viewer.reviewer_key} (round {viewer.round_pk})"[:255]


def _require_teacher(session: Session, viewer: Viewer) -> None:
    if not teaches_round(session, viewer):
        raise ForbiddenError("only the round's teachers can do this", code="round_teacher_only")


def _seat(session: Session, viewer: Viewer) -> Seat | None:
    if not viewer.is_pupil or not viewer.round_pk:
        return None
    return session.scalar(select(Seat).where(Seat.round_pk == viewer.round_pk,
                                             Seat.registration_id == viewer.registration_id,
                                             Seat.sub == viewer.sub, Seat.status == SEAT_ACTIVE))


# -- announcements ------------------------------------------------------------------------------------------

def post_announcement(session: Session, who: Viewer | Launch, body: str | None, language: str | None) -> Announcement:
    """A round teacher's announcement to the whole round, in the language it is written in."""
    viewer = _viewer(who)
    if not may_announce(session, viewer):
        raise ForbiddenError("only the round's teachers write to the round", code="round_teacher_only")
    text = _body(body, empty="announcement_empty", too_long="announcement_too_long")
    lang = (language or "").strip().lower()
    if lang not in ANNOUNCEMENT_LANGUAGES:
        raise DomainError(f"unknown language {language!r}", code="invalid")
    announcement = Announcement(round_pk=viewer.round_pk, author_name=(_teacher_name(session, viewer) or "")[:200],
                                body=text, language=lang, created_at=clock.now())
    session.add(announcement)
    session.flush()
    return announcement


def announcements(session: Session, who: Viewer | Launch, *, limit: int = 50) -> list[Announcement]:
    """The round's announcements, newest first: for its pupils and teachers, and a local teacher of the round."""
    viewer = _viewer(who)
    if not may_read_announcements(session, viewer):
        raise ForbiddenError("not a member of this round")
    return list(session.scalars(select(Announcement).where(Announcement.round_pk == viewer.round_pk)
                                .order_by(Announcement.created_at.desc(), Announcement.id.desc()).limit(limit)))


def delete_announcement(session: Session, who: Viewer | Launch, announcement_id: int) -> None:
    """A round teacher takes an announcement of their round back."""
    viewer = _viewer(who)
    _require_teacher(session, viewer)
    announcement = session.get(Announcement, announcement_id)
    if announcement is None or announcement.round_pk != viewer.round_pk:
        raise NotFoundError("no such announcement in this round")
    session.add(AuditEntry(actor=_actor(viewer), action=ACTION_ANNOUNCEMENT_DELETE, target=f"round {viewer.round_pk}",
                           details={"announcement": announcement.id}))
    session.delete(announcement)
    session.flush()


@dataclass(frozen=True)
class Noticeboard:
    """The announcements a pupil sees on the course page, and which of them are new to them."""

    items: list[Announcement]
    new_ids: frozenset[int]

    @property
    def new(self) -> int:
        return len(self.new_ids)


def pupil_noticeboard(session: Session, who: Viewer | Launch, *, mark_seen: bool = True) -> Noticeboard | None:
    """A seat holder's announcements, newest first, with those newer than the seat's ``announcements_seen_at``
    marked new; seeing them marks them seen (up to the newest shown, so one posted meanwhile stays new). None
    for anyone without a seat in the round."""
    viewer = _viewer(who)
    seat = _seat(session, viewer)
    if seat is None:
        return None
    items = announcements(session, viewer)
    seen = seat.announcements_seen_at
    new_ids = frozenset(a.id for a in items if seen is None or a.created_at > seen)
    if mark_seen and items:
        newest = max(a.created_at for a in items)
        if seen is None or newest > seen:
            seat.announcements_seen_at = newest
            session.flush()
    return Noticeboard(items, new_ids)


def unseen_announcements(session: Session, who: Viewer | Launch) -> int:
    """How many of the round's announcements the pupil has not seen yet (0 without a seat)."""
    seat = _seat(session, _viewer(who))
    if seat is None:
        return 0
    query = select(func.count()).select_from(Announcement).where(Announcement.round_pk == seat.round_pk)
    if seat.announcements_seen_at is not None:
        query = query.where(Announcement.created_at > seat.announcements_seen_at)
    return session.scalar(query) or 0


# -- the conversation on a hand-in --------------------------------------------------------------------------

@dataclass(frozen=True)
class Thread:
    """A hand-in's conversation as one viewer sees it."""

    submission: Submission
    messages: list[HandInMessage]
    may_write: bool
    own_role: str | None  # the side the viewer writes as; None for a reader only
    unread_ids: frozenset[int]  # the other side's messages the viewer had not read before this view

    @property
    def unread(self) -> int:
        return len(self.unread_ids)


def _role_of(viewer: Viewer) -> str:
    return MESSAGE_FROM_PUPIL if viewer.is_pupil else MESSAGE_FROM_TEACHER


def _other(role: str) -> str:
    return MESSAGE_FROM_TEACHER if role == MESSAGE_FROM_PUPIL else MESSAGE_FROM_PUPIL


def thread(session: Session, who: Viewer | Launch, submission_id: int, *, mark_read: bool = True) -> Thread:
    """The conversation on a hand-in, for whoever may see the hand-in (:func:`.access.check_submission`). A
    writer's view (its pupil, a round teacher) marks the other side's messages read; a reader's never does."""
    viewer = _viewer(who)
    submission = check_submission(session, viewer, submission_id)
    may_write = may_write_message(session, viewer, submission)
    own = _role_of(viewer) if may_write else None
    messages = list(session.scalars(select(HandInMessage).where(HandInMessage.submission_id == submission.id)
                                    .order_by(HandInMessage.created_at, HandInMessage.id)))
    unread = frozenset(m.id for m in messages if own and m.author_role == _other(own) and m.read_at is None)
    if mark_read and unread:
        moment = clock.now()
        for message in messages:
            if message.id in unread:
                message.read_at = moment
        session.flush()
    return Thread(submission, messages, may_write, own, unread)


def write_message(session: Session, who: Viewer | Launch, submission_id: int, body: str | None) -> HandInMessage:
    """A message on a hand-in from its pupil or a round teacher (``message_forbidden`` for anyone else who can
    see it). Plain text, at most :data:`MAX_BODY` characters. Writing marks what the other side wrote as read."""
    viewer = _viewer(who)
    submission = check_message(session, viewer, submission_id)
    text = _body(body, empty="message_empty", too_long="message_too_long")
    role = _role_of(viewer)
    moment = clock.now()
    for earlier in session.scalars(select(HandInMessage).where(HandInMessage.submission_id == submission.id,
                                                               HandInMessage.author_role == _other(role),
                                                               HandInMessage.read_at.is_(None))):
        earlier.read_at = moment
    message = HandInMessage(submission_id=submission.id, author_role=role,
                            author_name=(_teacher_name(session, viewer) if role == MESSAGE_FROM_TEACHER else None),
                            body=text, created_at=moment)
    session.add(message)
    session.flush()
    return message


def _unread_query(viewer: Viewer) -> Select[int, int] | None:
    """Unread messages addressed to the viewer, by hand-in: the teacher's on a pupil's own hand-ins of the round;
    the pupils' on every hand-in of the round for its teachers. None for a reader only (a local teacher)."""
    if viewer.is_pupil:
        side = MESSAGE_FROM_TEACHER
    elif viewer.is_teacher:
        side = MESSAGE_FROM_PUPIL
    else:
        return None
    return (select(HandInMessage.submission_id, func.count())
            .join(Submission, Submission.id == HandInMessage.submission_id)
            .where(visible_submissions(viewer), Submission.round_pk == viewer.round_pk,
                   HandInMessage.author_role == side, HandInMessage.read_at.is_(None))
            .group_by(HandInMessage.submission_id))


def unread_by_submission(session: Session, who: Viewer | Launch) -> dict[int, int]:
    """The viewer's unread messages per hand-in (a pupil: from the teacher; a round teacher: from pupils)."""
    viewer = _viewer(who)
    if viewer.is_teacher and not teaches_round(session, viewer):
        return {}
    query = _unread_query(viewer)
    return {} if query is None else {submission_id: n for submission_id, n in session.execute(query)}


def unread_messages(session: Session, who: Viewer | Launch) -> int:
    return sum(unread_by_submission(session, who).values())


@dataclass(frozen=True)
class Conversation:
    submission: Submission
    last: HandInMessage
    unread: int


def conversations(session: Session, who: Viewer | Launch, *, limit: int = 100) -> list[Conversation]:
    """A round teacher's conversations on the round's hand-ins: those with unread pupils' messages first, then
    the most recent."""
    viewer = _viewer(who)
    _require_teacher(session, viewer)
    unread = unread_by_submission(session, viewer)
    latest = (select(HandInMessage.submission_id, func.max(HandInMessage.id).label("last_id"))
              .group_by(HandInMessage.submission_id).subquery())
    rows = session.execute(select(Submission, HandInMessage)
                           .join(latest, latest.c.submission_id == Submission.id)
                           .join(HandInMessage, HandInMessage.id == latest.c.last_id)
                           .where(visible_submissions(viewer), Submission.round_pk == viewer.round_pk)
                           .order_by(HandInMessage.created_at.desc()).limit(limit)).all()
    found = [Conversation(submission, last, unread.get(submission.id, 0)) for submission, last in rows]
    return sorted(found, key=lambda c: c.unread == 0)  # stable: newest first within each group


# -- the showcase ---------------------------------------------------------------------------------------------

def _round(session: Session, viewer: Viewer) -> CourseRound:
    round_ = session.get(CourseRound, viewer.round_pk) if viewer.round_pk else None
    if round_ is None:
        raise NotFoundError("no such round", code="round_unknown")
    return round_


def showcase_on(session: Session, who: Viewer | Launch) -> bool:
    viewer = _viewer(who)
    return bool(viewer.round_pk) and session.scalar(
        select(CourseRound.showcase_enabled).where(CourseRound.id == viewer.round_pk)) is True


def switch_showcase(session: Session, who: Viewer | Launch, enabled: bool) -> CourseRound:
    """A round teacher switches the round's showcase on or off. Off hides it from the pupils (nothing is
    deleted, nothing can be shared); on shows the approved items again."""
    viewer = _viewer(who)
    _require_teacher(session, viewer)
    round_ = _round(session, viewer)
    if round_.showcase_enabled != enabled:
        round_.showcase_enabled = enabled
        session.add(AuditEntry(actor=_actor(viewer), action=ACTION_SHOWCASE_SWITCH, target=f"round {round_.id}",
                               details={"enabled": enabled}))
        session.flush()
    return round_


def share(session: Session, who: Viewer | Launch, submission_id: int, caption: str | None) -> ShowcaseItem:
    """A pupil shares their reviewed hand-in with the round: waiting for the teacher's approval. Sharing again
    after a withdrawal or a decline asks for approval again; a waiting item's caption may be changed."""
    viewer = _viewer(who)
    if not viewer.is_pupil:
        raise ForbiddenError("only the pupil who handed the work in shares it")
    submission = check_submission(session, viewer, submission_id)
    if not may_write_message(session, viewer, submission):  # own hand-in, of this round, with a seat in it
        raise ForbiddenError("no place in the round", code="seat_missing")
    if not showcase_on(session, viewer):
        raise DomainError("the round's showcase is off", code="showcase_off", status=409)
    if submission.status != SUBMISSION_REVIEWED:
        raise DomainError("only work with feedback can be shared", code="showcase_not_reviewed", status=409)
    text = " ".join((caption or "").split())
    if len(text) > MAX_CAPTION:
        raise DomainError("caption too long", code="caption_too_long")
    item = session.scalar(select(ShowcaseItem).where(ShowcaseItem.submission_id == submission.id))
    if item is not None and item.status == SHOWCASE_APPROVED:
        raise ConflictError("already on the showcase", code="showcase_already_shared")
    moment = clock.now()
    if item is None:
        try:
            with session.begin_nested():
                item = ShowcaseItem(round_pk=submission.round_pk, submission_id=submission.id, caption=text or None,
                                    status=SHOWCASE_PENDING, created_at=moment)
                session.add(item)
        except IntegrityError as exc:  # shared twice at once
            raise ConflictError("already shared", code="showcase_already_shared") from exc
        return item
    item.caption = text or None
    item.status, item.created_at, item.approved_at, item.withdrawn_at = SHOWCASE_PENDING, moment, None, None
    session.flush()
    return item


def own_items(session: Session, who: Viewer | Launch) -> dict[int, ShowcaseItem]:
    """A pupil's own showcase items in the round, by hand-in (whatever their state)."""
    viewer = _viewer(who)
    if not viewer.is_pupil or not viewer.round_pk:
        return {}
    return {item.submission_id: item for item in session.scalars(
        select(ShowcaseItem).join(Submission, Submission.id == ShowcaseItem.submission_id)
        .where(visible_submissions(viewer), Submission.round_pk == viewer.round_pk))}


def withdraw(session: Session, who: Viewer | Launch, item_id: int) -> ShowcaseItem:
    """The pupil takes their item off the showcase (or back before approval): gone at once, for everyone. Their
    own item only; allowed whatever the state of their seat or of the showcase."""
    viewer = _viewer(who)
    item = session.get(ShowcaseItem, item_id)
    submission = session.get(Submission, item.submission_id) if item is not None else None
    if (item is None or submission is None or not viewer.is_pupil
            or (submission.registration_id, submission.sub) != (viewer.registration_id, viewer.sub)):
        raise NotFoundError("no such item of yours")
    if item.status != SHOWCASE_WITHDRAWN:
        item.status, item.withdrawn_at = SHOWCASE_WITHDRAWN, clock.now()
        session.flush()
    return item


def showcase(session: Session, who: Viewer | Launch) -> list[ShowcaseItem]:
    """The round's showcase as the viewer may see it (:func:`.access.showcase_visible`): approved items, newest
    approval first."""
    viewer = _viewer(who)
    return list(session.scalars(select(ShowcaseItem).where(showcase_visible(viewer),
                                                           ShowcaseItem.status == SHOWCASE_APPROVED)
                                .order_by(ShowcaseItem.approved_at.desc(), ShowcaseItem.id.desc())))


def waiting_items(session: Session, who: Viewer | Launch) -> list[ShowcaseItem]:
    """Items waiting for a round teacher's approval, oldest first."""
    viewer = _viewer(who)
    _require_teacher(session, viewer)
    return list(session.scalars(select(ShowcaseItem).where(showcase_visible(viewer),
                                                           ShowcaseItem.status == SHOWCASE_PENDING)
                                .order_by(ShowcaseItem.created_at, ShowcaseItem.id)))


def waiting_count(session: Session, who: Viewer | Launch) -> int:
    viewer = _viewer(who)
    if not viewer.is_teacher:
        return 0
    return session.scalar(select(func.count()).select_from(ShowcaseItem)
                          .where(showcase_visible(viewer), ShowcaseItem.status == SHOWCASE_PENDING)) or 0


def _moderated(session: Session, viewer: Viewer, item_id: int) -> ShowcaseItem:
    _require_teacher(session, viewer)
    item = check_showcase_item(session, viewer, item_id)
    if not may_review(session, viewer, item.submission):
        raise ForbiddenError("only the round's teachers moderate its showcase", code="round_teacher_only")
    return item


def approve(session: Session, who: Viewer | Launch, item_id: int) -> ShowcaseItem:
    """A round teacher puts a waiting item on the round's showcase."""
    viewer = _viewer(who)
    item = _moderated(session, viewer, item_id)
    if item.status != SHOWCASE_PENDING:
        raise ConflictError("the item is not waiting for approval")
    item.status, item.approved_at = SHOWCASE_APPROVED, clock.now()
    session.add(AuditEntry(actor=_actor(viewer), action=ACTION_SHOWCASE_APPROVE, target=f"round {item.round_pk}",
                           details={"item": item.id, "submission": item.submission_id}))
    session.flush()
    return item


def decline(session: Session, who: Viewer | Launch, item_id: int) -> ShowcaseItem:
    """A round teacher does not put a waiting item on the showcase, or takes an approved one off it."""
    viewer = _viewer(who)
    item = _moderated(session, viewer, item_id)
    item.status, item.approved_at = SHOWCASE_DECLINED, None
    session.add(AuditEntry(actor=_actor(viewer), action=ACTION_SHOWCASE_DECLINE, target=f"round {item.round_pk}",
                           details={"item": item.id, "submission": item.submission_id}))
    session.flush()
    return item


# -- for a teacher's pages: one summary ----------------------------------------------------------------------

@dataclass(frozen=True)
class Summary:
    """What waits for a teacher in the round: pupils' unread messages, showcase items to approve."""

    teaches: bool
    unread_messages: int
    waiting_items: int
    showcase_enabled: bool


def teacher_summary(session: Session, who: Viewer | Launch) -> Summary:
    viewer = _viewer(who)
    teaches = teaches_round(session, viewer)
    return Summary(teaches, unread_messages(session, viewer) if teaches else 0,
                   waiting_count(session, viewer) if teaches else 0, showcase_on(session, viewer))
