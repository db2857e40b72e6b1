"""Who may see whose work: one rule, in one place. Every teacher page, file download, review and export of a
teacher's view asks here, and so do a pupil's own pages.

A :class:`Viewer` is what a launch (or a teacher's sign-in) proves about who is looking. From it come

- :func:`classroom_launches`: the condition on launch records that puts a pupil in the viewer's classroom
  (the teacher's roster is built from it);
- :func:`visible_submissions`: the condition on hand-ins the viewer may see (queues, pupil pages, counts);
- :func:`may_see` and :func:`check_submission`: may the viewer open this one hand-in (the review form, the
  file download); the same SQL condition, so a page and a download can never disagree;
- :func:`may_review` and :func:`check_review`: may the viewer give feedback and a score on it.

The rule. **The course round is the classroom.**

- A **round teacher** (named for the round by national staff, ``round_teachers``: identified by their
  platform's registration and ``sub`` when they launch from their own platform, or by the verified e-mail of
  the staff OpenID Connect sign-in) sees every pupil of the round, across municipalities and platforms, and
  every hand-in of the round, and reviews them.
- A **local teacher** (an instructor launch from a municipality's own LMS course, not named for the round)
  sees the pupils of their own municipality who launched from the same registration, deployment, context,
  resource link and round, and the work they handed in there: read-only. Every one of these values must be
  present; a missing one matches nothing (NULL never equals NULL), and a teacher launch without a context sees
  no pupil and its pages say so (``context_missing``).
- A **pupil** sees their own work: the same registration and ``sub``.
Nobody else sees anything here. The municipal console's view of a municipality's pupils is decided in
:func:`municipality_submissions`.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import and_, exists, false, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from ..domain.claims import ROLE_INSTRUCTOR, ROLE_LEARNER
from ..domain.errors import DomainError
from ..models import (SEAT_ACTIVE, SHOWCASE_APPROVED, SHOWCASE_PENDING, CourseRound, Launch, RoundTeacher, Seat,
                      ShowcaseItem, Submission, UploadSession)
from .errors import NotFoundError

CONTEXT_MISSING = "context_missing"
# What a teacher's launch must prove, all of it, to see any pupil's work.
CLASSROOM_KEYS = ("registration_id", "deployment_pk", "context_id", "resource_link_id", "round_pk")


class ForbiddenError(DomainError):
    code = "forbidden"
    status = 403


def _absent(value) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


@dataclass(frozen=True)
class Viewer:
    """Who is looking, as far as a launch proves it (never what a request asks for)."""

    role: str
    sub: str | None
    registration_id: int | None
    deployment_pk: int | None
    context_id: str | None
    resource_link_id: str | None
    round_pk: int | None
    municipality_id: str | None = None
    # A teacher signed in through the staff OpenID Connect provider (a verified e-mail), not by a launch.
    email: str | None = None

    @classmethod
    def of(cls, launch: Launch) -> "Viewer":
        return cls(role=launch.role, sub=launch.sub, registration_id=launch.registration_id,
                   deployment_pk=launch.deployment_pk, context_id=launch.context_id,
                   resource_link_id=launch.resource_link_id, round_pk=launch.round_pk,
                   municipality_id=launch.municipality_id)

    @classmethod
    def signed_in(cls, email: str, round_pk: int) -> "Viewer":
        """A teacher who signed in (staff OpenID Connect) and opened one of their rounds."""
        return cls(role=ROLE_INSTRUCTOR, sub=None, registration_id=None, deployment_pk=None, context_id=None,
                   resource_link_id=None, round_pk=round_pk, email=email.strip().lower())

    @property
    def reviewer_key(self) -> str:
        """Who gave a review, as kept with it: the launch's ``sub``, or ``email:`` and the signed-in address."""
        return f"email:{self.email}" if self.email else str(self.sub)

    @property
    def is_pupil(self) -> bool:
        return self.role == ROLE_LEARNER

    @property
    def is_teacher(self) -> bool:
        return self.role == ROLE_INSTRUCTOR

    def missing(self) -> tuple[str, ...]:
        """The keys of a classroom this viewer's launch does not prove."""
        return tuple(key for key in CLASSROOM_KEYS if _absent(getattr(self, key)))

    @property
    def has_classroom(self) -> bool:
        """A local teacher's classroom: every key of their launch present."""
        return self.is_teacher and self.email is None and not self.missing() and not _absent(self.municipality_id)


def round_teacher_rows(viewer: Viewer) -> ColumnElement[bool]:
    """The condition on :class:`RoundTeacher` rows that name this viewer a teacher of the viewer's round."""
    if not viewer.is_teacher or _absent(viewer.round_pk):
        return false()
    if viewer.email:
        return and_(RoundTeacher.round_pk == viewer.round_pk, RoundTeacher.email == viewer.email)
    if _absent(viewer.registration_id) or _absent(viewer.sub):
        return false()
    return and_(RoundTeacher.round_pk == viewer.round_pk, RoundTeacher.registration_id == viewer.registration_id,
                RoundTeacher.sub == viewer.sub)


def _teaches(viewer: Viewer) -> ColumnElement[bool]:
    return exists(select(RoundTeacher.id).where(round_teacher_rows(viewer)))


def teaches_round(session: Session, who: "Viewer | Launch") -> bool:
    """Is the viewer a named teacher of the round they are looking at?"""
    return session.scalar(select(_teaches(_viewer(who)))) is True


def _viewer(who: "Viewer | Launch") -> Viewer:
    return who if isinstance(who, Viewer) else Viewer.of(who)


def require_classroom(who: "Viewer | Launch", session: Session | None = None) -> Viewer:
    """The viewer, when it is a teacher with a classroom: a round teacher (checked when ``session`` is given),
    or a local teacher whose launch proves every key; refused otherwise, with a page that says why (a local
    teacher's launch without a context or resource link: ``context_missing``)."""
    viewer = _viewer(who)
    if not viewer.is_teacher or _absent(viewer.round_pk):
        raise ForbiddenError("only the course's teacher can do this")
    if viewer.email is not None:
        if session is not None and not teaches_round(session, viewer):
            raise ForbiddenError("not a teacher of this round")
        return viewer
    if session is not None and teaches_round(session, viewer):
        return viewer
    missing = viewer.missing()
    if missing:
        raise ForbiddenError(f"the teacher's launch has no {', '.join(missing)}: it shows no pupil's work",
                             code=CONTEXT_MISSING)
    return viewer


def _local_launches(viewer: Viewer) -> ColumnElement[bool]:
    if not viewer.has_classroom:
        return false()
    return and_(Launch.registration_id == viewer.registration_id,
                Launch.deployment_pk == viewer.deployment_pk,
                Launch.context_id == viewer.context_id,
                Launch.resource_link_id == viewer.resource_link_id,
                Launch.municipality_id == viewer.municipality_id)


def classroom_launches(who: "Viewer | Launch") -> ColumnElement[bool]:
    """The condition on :class:`Launch` rows that put a pupil in the viewer's classroom: a pupil's launch into
    the viewer's round, from anywhere when the viewer teaches the round, else with every key equal to the
    local teacher's. Matches nothing for a viewer without a classroom."""
    viewer = _viewer(who)
    if not viewer.is_teacher or _absent(viewer.round_pk):
        return false()
    return and_(Launch.role == ROLE_LEARNER, Launch.round_pk == viewer.round_pk,
                or_(_teaches(viewer), _local_launches(viewer)))


def visible_submissions(who: "Viewer | Launch") -> ColumnElement[bool]:
    """The condition on :class:`Submission` rows the viewer may see: a pupil's own; every hand-in of the round
    for its teachers; a local teacher's classroom's (handed in from the teacher's context in the teacher's
    round, by a pupil of the classroom). Nothing for anyone else or for a launch that lacks a key."""
    viewer = _viewer(who)
    if viewer.is_pupil:
        if _absent(viewer.registration_id) or _absent(viewer.sub):
            return false()
        return and_(Submission.registration_id == viewer.registration_id, Submission.sub == viewer.sub)
    if not viewer.is_teacher or _absent(viewer.round_pk):
        return false()
    round_wide = and_(Submission.round_pk == viewer.round_pk, _teaches(viewer))
    if not viewer.has_classroom:
        return round_wide
    local = and_(Submission.registration_id == viewer.registration_id,
                 Submission.context_id == viewer.context_id,
                 Submission.round_pk == viewer.round_pk,
                 Submission.municipality_id == viewer.municipality_id,
                 # handed in through the teacher's placement (hand-ins stored before placements were recorded
                 # carry none; the pupil's launch from the teacher's placement below still has to exist)
                 or_(Submission.resource_link_id == viewer.resource_link_id, Submission.resource_link_id.is_(None)),
                 exists(select(Launch.id).where(Launch.role == ROLE_LEARNER, Launch.round_pk == viewer.round_pk,
                                                _local_launches(viewer), Launch.sub == Submission.sub)))
    return or_(round_wide, local)


def municipality_submissions(municipality_id: str) -> ColumnElement[bool]:
    """The hand-ins a municipal contact follows (read-only): every hand-in of the municipality's pupils."""
    if _absent(municipality_id):
        return false()
    return Submission.municipality_id == municipality_id


def may_see(session: Session, who: "Viewer | Launch", submission_id: int) -> bool:
    """May the viewer open this hand-in: the very condition of :func:`visible_submissions`."""
    return session.scalar(select(Submission.id).where(Submission.id == submission_id,
                                                      visible_submissions(who))) is not None


def check_submission(session: Session, who: "Viewer | Launch", submission_id: int) -> Submission:
    """The hand-in, when the viewer may see it. None such: 404; a teacher whose launch proves no classroom:
    ``context_missing``; anyone else: ``forbidden``."""
    viewer = _viewer(who)
    submission = session.get(Submission, submission_id)
    if submission is None:
        raise NotFoundError("no such hand-in")
    if viewer.is_teacher:
        require_classroom(viewer, session)
    if not may_see(session, viewer, submission.id):
        raise ForbiddenError("not your hand-in")
    return submission


def may_review(session: Session, who: "Viewer | Launch", submission: Submission) -> bool:
    """Feedback and scores are given by the round's teachers only (a local teacher follows, read-only)."""
    viewer = _viewer(who)
    return viewer.is_teacher and submission.round_pk == viewer.round_pk and teaches_round(session, viewer)


def check_review(session: Session, who: "Viewer | Launch", submission_id: int) -> Submission:
    """The hand-in, when the viewer may review it; ``review_forbidden`` for a teacher who may only follow."""
    viewer = _viewer(who)
    submission = check_submission(session, viewer, submission_id)
    if not may_review(session, viewer, submission):
        raise ForbiddenError("only the round's teachers review", code="review_forbidden")
    return submission


# -- the round's classroom: announcements, conversations on hand-ins, the showcase -----------------------------
#
# The round is the classroom here too. Announcements and the showcase are the round's: its pupils (an active seat
# in the round) and its teachers; a local teacher reads the announcements of the round their classroom is in. A
# hand-in's conversation is read by whoever may see the hand-in (:func:`visible_submissions`) and written by its
# pupil and the round's teachers only.

def _holds_seat(viewer: Viewer) -> ColumnElement[bool]:
    if not viewer.is_pupil or _absent(viewer.round_pk) or _absent(viewer.registration_id) or _absent(viewer.sub):
        return false()
    return exists(select(Seat.id).where(Seat.round_pk == viewer.round_pk, Seat.status == SEAT_ACTIVE,
                                        Seat.registration_id == viewer.registration_id, Seat.sub == viewer.sub))


def holds_seat(session: Session, who: "Viewer | Launch") -> bool:
    """Is the viewer a pupil with an active seat in the round they are looking at?"""
    return session.scalar(select(_holds_seat(_viewer(who)))) is True


def in_round(session: Session, who: "Viewer | Launch") -> bool:
    """A member of the round's classroom: a pupil with a seat in it, or one of its teachers."""
    viewer = _viewer(who)
    return holds_seat(session, viewer) if viewer.is_pupil else teaches_round(session, viewer)


def may_read_announcements(session: Session, who: "Viewer | Launch") -> bool:
    """The round's pupils and teachers; a local teacher reads their classroom's round's (never another round's)."""
    viewer = _viewer(who)
    return in_round(session, viewer) or viewer.has_classroom


def may_announce(session: Session, who: "Viewer | Launch") -> bool:
    """Announcements to the round are posted by its teachers only."""
    return teaches_round(session, _viewer(who))


def may_write_message(session: Session, who: "Viewer | Launch", submission: Submission) -> bool:
    """A message on a hand-in is written by the pupil who handed it in (with a seat in its round) or by a teacher
    of its round; everyone else who may see the hand-in (a local teacher) reads only."""
    viewer = _viewer(who)
    if viewer.is_pupil:
        return (submission.registration_id == viewer.registration_id and submission.sub == viewer.sub
                and submission.round_pk == viewer.round_pk and holds_seat(session, viewer))
    return may_review(session, viewer, submission)


def check_message(session: Session, who: "Viewer | Launch", submission_id: int) -> Submission:
    """The hand-in, when the viewer may write on its conversation (``message_forbidden`` for a reader only)."""
    viewer = _viewer(who)
    submission = check_submission(session, viewer, submission_id)
    if not may_write_message(session, viewer, submission):
        raise ForbiddenError("only the pupil and the round's teachers write here", code="message_forbidden")
    return submission


def showcase_visible(who: "Viewer | Launch") -> ColumnElement[bool]:
    """The condition on :class:`ShowcaseItem` rows the viewer may see on the round's showcase: approved items of
    the viewer's round while its showcase is on, for a pupil with a seat in it; approved and waiting ones for a
    teacher of the round (who moderates them). Never a withdrawn or declined one, never another round's, nothing
    for a local teacher or anyone else."""
    viewer = _viewer(who)
    if _absent(viewer.round_pk):
        return false()
    same_round = ShowcaseItem.round_pk == viewer.round_pk
    if viewer.is_pupil:
        switched_on = exists(select(CourseRound.id).where(CourseRound.id == viewer.round_pk,
                                                          CourseRound.showcase_enabled.is_(True)))
        return and_(same_round, ShowcaseItem.status == SHOWCASE_APPROVED, switched_on, _holds_seat(viewer))
    if viewer.is_teacher:
        return and_(same_round, ShowcaseItem.status.in_((SHOWCASE_APPROVED, SHOWCASE_PENDING)), _teaches(viewer))
    return false()


def check_showcase_item(session: Session, who: "Viewer | Launch", item_id: int) -> ShowcaseItem:
    """The showcase item (and through it its hand-in), when :func:`showcase_visible` lets the viewer see it: the
    one check of the showcase's pages and of its file downloads. Anything else: 404, as if it did not exist."""
    item = session.scalar(select(ShowcaseItem).where(ShowcaseItem.id == item_id, showcase_visible(who)))
    if item is None:
        raise NotFoundError("no such item on this round's showcase")
    return item


# -- a pupil's file on its way in (a chunked upload) ------------------------------------------------------------

def own_uploads(who: "Viewer | Launch") -> ColumnElement[bool]:
    """The condition on :class:`UploadSession` rows the viewer may send pieces to, ask about, finish or cancel:
    the pupil's own (registration and ``sub``) for the round they look at and hold a seat in, as the hand-in form
    itself. Nobody else's, whatever they know of its token."""
    viewer = _viewer(who)
    if not viewer.is_pupil or _absent(viewer.round_pk):
        return false()
    return and_(UploadSession.registration_id == viewer.registration_id, UploadSession.sub == viewer.sub,
                UploadSession.round_pk == viewer.round_pk, _holds_seat(viewer))


def check_upload(session: Session, who: "Viewer | Launch", token: str, *, for_update: bool = False) -> UploadSession:
    """The viewer's own unfinished upload named by ``token`` (:func:`own_uploads`); anything else: 404
    (``upload_gone``), as if it did not exist."""
    query = select(UploadSession).where(UploadSession.token == token, own_uploads(who))
    found = session.scalar(query.with_for_update() if for_update else query)
    if found is None:
        raise NotFoundError("no such upload", code="upload_gone")
    return found


# -- which round a teacher's page shows ----------------------------------------------------------------------

ROUND_CLASSROOM = "round"
LOCAL_CLASSROOM = "local"


def viewer_for_round(session: Session, who: "Viewer | Launch", round_pk: int | None) -> Viewer:
    """The viewer of a teacher's page for the round named in its address. The launch's own round (or no round
    named): the launch as it is. Another round: only for a named teacher of that round, as the launch's
    registration and ``sub`` (no local classroom: the launch's course, context and link belong to its own round);
    anyone else is refused."""
    viewer = _viewer(who)
    if round_pk is None or round_pk == viewer.round_pk:
        return viewer
    other = Viewer(role=viewer.role, sub=viewer.sub, registration_id=viewer.registration_id, deployment_pk=None,
                   context_id=None, resource_link_id=None, round_pk=round_pk, email=viewer.email)
    if not teaches_round(session, other):
        raise ForbiddenError("not a teacher of this round")
    return other


def signed_in_viewer(session: Session, email: str, round_pk: int) -> Viewer:
    """A teacher signed in by e-mail (staff OpenID Connect) opening one of their rounds; refused for any round
    they are not named for."""
    viewer = Viewer.signed_in(email, round_pk)
    if not teaches_round(session, viewer):
        raise ForbiddenError("not a teacher of this round")
    return viewer


def classroom_kind(session: Session, who: "Viewer | Launch") -> str:
    """``round`` for a round teacher (sees and reviews the whole round), ``local`` for a local teacher (follows
    their own municipality's pupils of their course, read-only)."""
    return ROUND_CLASSROOM if teaches_round(session, who) else LOCAL_CLASSROOM
