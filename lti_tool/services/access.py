"""Who may see whose work: one rule, in one place. Every teacher page, file download, review and export of a
teacher's view asks here, and so do a pupil's own pages.

A :class:`Viewer` is what a launch proves about who is looking. From it come

- :func:`classroom_launches`: the condition on launch records that puts a pupil in the viewer's classroom
  (the teacher's roster is built from it);
- :func:`visible_submissions`: the condition on hand-ins the viewer may see (queues, pupil pages, counts);
- :func:`may_see` and :func:`check_submission`: may the viewer open this one hand-in (the review form, the
  file download); the same SQL condition, so a page and a download can never disagree.

Today's rule. A teacher (instructor launch on a course round) sees the work of pupils whose launch has the
same registration (platform), deployment, LMS context, resource link and course round as the teacher's own,
handed in from that context in that round; every one of these values must be present on the teacher's side.
A missing value matches nothing (NULL never equals NULL): a teacher launch without a context sees no pupil
and its pages say so (``context_missing``), never the work of everyone else who launched without one.
A pupil sees their own work: the same registration and ``sub``. Nobody else sees anything here.

A later rule (the course round as a teacher's classroom across municipalities, with round teachers assigned
by national staff) is another way for a viewer to hold a classroom: a field on :class:`Viewer` and a branch
in :func:`classroom_launches` / :func:`visible_submissions`; the callers stay as they are.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import and_, exists, false, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from ..domain.claims import ROLE_INSTRUCTOR, ROLE_LEARNER
from ..domain.errors import DomainError
from ..models import Launch, Submission
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

    @classmethod
    def of(cls, launch: Launch) -> "Viewer":
        return cls(role=launch.role, sub=launch.sub, registration_id=launch.registration_id,
                   deployment_pk=launch.deployment_pk, context_id=launch.context_id,
                   resource_link_id=launch.resource_link_id, round_pk=launch.round_pk)

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
        return self.is_teacher and not self.missing()


def _viewer(who: "Viewer | Launch") -> Viewer:
    return who if isinstance(who, Viewer) else Viewer.of(who)


def require_classroom(who: "Viewer | Launch") -> Viewer:
    """The viewer, when it is a teacher whose launch proves a classroom; refused otherwise, with a page that
    says why (a teacher's launch without a context or resource link: ``context_missing``)."""
    viewer = _viewer(who)
    if not viewer.is_teacher or _absent(viewer.round_pk):
        raise ForbiddenError("only the course's teacher can do this")
    missing = viewer.missing()
    if missing:
        raise ForbiddenError(f"the teacher's launch has no {', '.join(missing)}: it shows no pupil's work",
                             code=CONTEXT_MISSING)
    return viewer


def classroom_launches(who: "Viewer | Launch") -> ColumnElement[bool]:
    """The condition on :class:`Launch` rows that put a pupil in the viewer's classroom: a pupil's launch with
    every key equal to the teacher's. Matches nothing for a viewer without a classroom."""
    viewer = _viewer(who)
    if not viewer.has_classroom:
        return false()
    return and_(Launch.role == ROLE_LEARNER,
                Launch.registration_id == viewer.registration_id,
                Launch.deployment_pk == viewer.deployment_pk,
                Launch.context_id == viewer.context_id,
                Launch.resource_link_id == viewer.resource_link_id,
                Launch.round_pk == viewer.round_pk)


def visible_submissions(who: "Viewer | Launch") -> ColumnElement[bool]:
    """The condition on :class:`Submission` rows the viewer may see: a pupil's own; a teacher's classroom's
    (handed in from the teacher's context in the teacher's round, by a pupil of the classroom). Nothing for
    anyone else or for a launch that lacks a key."""
    viewer = _viewer(who)
    if viewer.is_pupil:
        if _absent(viewer.registration_id) or _absent(viewer.sub):
            return false()
        return and_(Submission.registration_id == viewer.registration_id, Submission.sub == viewer.sub)
    if not viewer.has_classroom:
        return false()
    return and_(Submission.registration_id == viewer.registration_id,
                Submission.context_id == viewer.context_id,
                Submission.round_pk == viewer.round_pk,
                # handed in through the teacher's placement (hand-ins stored before placements were recorded
                # carry none; the pupil's launch from the teacher's placement below still has to exist)
                or_(Submission.resource_link_id == viewer.resource_link_id, Submission.resource_link_id.is_(None)),
                exists(select(Launch.id).where(classroom_launches(viewer), Launch.sub == Submission.sub)))


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
        require_classroom(viewer)
    if not may_see(session, viewer, submission.id):
        raise ForbiddenError("not your hand-in")
    return submission
