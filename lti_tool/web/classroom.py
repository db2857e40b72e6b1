"""The teacher's side of talking to the group (services.classroom): announcements to the round, the
conversations on the round's hand-ins, and the moderation of the round's showcase.

A round teacher writes, approves and switches; a local teacher (read-only follower of their own pupils) reads
the announcements and the conversations on the hand-ins they may see; whatever a page shows or a form changes
is decided in services.access. The teacher is whoever the request proves (:func:`current_viewer`).

Also, for the teacher's own pages (templates/teacher/*), two includes that need no data from their views:
``classroom/_teacher_links.html`` (unread messages, showcase items waiting, links here) and
``classroom/_hand_in_talk.html`` (the conversation on the hand-in of the review page), through the template
globals :func:`classroom_summary` and :func:`hand_in_talk`.
"""

from __future__ import annotations

import functools
from datetime import datetime

from babel.dates import format_datetime
from flask import Blueprint, g, redirect, render_template, request
from flask_babel import get_locale
from werkzeug.routing import BuildError

from ..config import settings
from ..db import get_session
from ..domain.calendar import time_zone
from ..domain.claims import ROLE_LEARNER
from ..domain.errors import DomainError
from ..domain.texts import pick_text
from ..i18n import LANGUAGE_NAMES, formatting_locale
from ..models import Assignment, Course, CourseRound, Submission
from ..services import classroom, classroom_views, delivery, privacy
from ..services.access import ForbiddenError, Viewer, check_showcase_item, may_announce, teaches_round
from .errors import MESSAGES
from .privacy import staff_actor
from .pupil import send_hand_in
from .staff import csrf_token
from .teacher import classroom_required, classroom_url, signed_in_teacher

bp = Blueprint("classroom", __name__, url_prefix="/classroom")

FORM_ERRORS = ("announcement_empty", "announcement_too_long", "message_empty", "message_too_long", "invalid")


# -- who is looking -------------------------------------------------------------------------------------------

def current_viewer() -> Viewer:
    """The teacher the request proves, as the teacher's pages found them (``g.viewer``, see
    :func:`.teacher.classroom_required`)."""
    viewer: Viewer = g.viewer
    return viewer


def teacher_required(view):
    """The view runs for a teacher, by a launch or the e-mail sign-in, in the round of the address (a round
    teacher, or a local teacher: the services decide what each may do)."""

    @functools.wraps(view)
    def checked(*args, **kwargs):
        viewer = current_viewer()
        if viewer.role == ROLE_LEARNER or not viewer.is_teacher:
            raise ForbiddenError("only the course's teachers open this page")
        return view(*args, **kwargs)

    return classroom_required(checked)


@bp.context_processor
def _classroom_pages():
    """What the teacher's layout needs (templates/teacher/_layout.html): the e-mail sign-in and its form token."""
    teacher = signed_in_teacher() if not g.get("launch") else None
    values: dict = {"signed_in_teacher": teacher}
    if teacher is not None:
        values["csrf"] = csrf_token()
    return values


def _context(session, viewer: Viewer) -> dict:
    locale = str(get_locale())
    round_ = session.get(CourseRound, viewer.round_pk) if viewer.round_pk else None
    course = session.get(Course, round_.course_code) if round_ is not None else None
    launch = g.get("launch")
    return {"viewer": viewer, "round": round_, "course": course, "locale": locale,
            "municipality": launch.municipality if launch is not None else None,
            "teaches": teaches_round(session, viewer), "text": lambda value: pick_text(value, locale),
            "label": delivery.pupil_label}


def _audit(session, action: str, submission: Submission) -> None:
    """A teacher opened a pupil's words or file: in the audit log (the pupil as a keyed pseudonym; see
    web/privacy.py), whichever way the teacher came."""
    viewer, launch = current_viewer(), g.get("launch")
    actor = staff_actor(launch) if launch is not None else f"teacher {viewer.reviewer_key}"
    privacy.record_access(session, actor=actor, action=action, submission_id=submission.id, round=viewer.round_pk,
                          pseudonym=privacy.pupil_pseudonym(settings().secret_key, submission.registration_id,
                                                            submission.sub),
                          municipality=launch.municipality_id if launch is not None else None)
    session.commit()


def _pupil_names(session, viewer: Viewer, submissions: list[Submission]) -> dict[tuple[int, str], str]:
    """The names of these hand-ins' pupils as the teacher's pages show them (web/teacher.py: the name on the pupil's
    seat in the round, then the member list's; else the pseudonym)."""
    return classroom_views.pupil_names(session, {(s.registration_id, s.sub) for s in submissions},
                                       round_pk=viewer.round_pk, keep_names=settings().roster_names,
                                       launch_names=settings().launch_names)


def _back_to_review(submission_id: int) -> str | None:
    """The teacher's review page of the hand-in, when the teacher's pages have one."""
    try:
        return classroom_url("teacher.review", submission_id=submission_id, _anchor="talk")
    except BuildError:
        return None


# -- template globals, for every page -------------------------------------------------------------------------------

@bp.app_template_global()
def when(moment: datetime | None) -> str:
    """A moment as the reader reads it: short date and time, in the country's time zone (the viewer's
    municipality's; Sweden's and Norway's are the same)."""
    if moment is None:
        return ""
    launch = g.get("launch")
    zone = time_zone(launch.municipality_id if launch is not None and launch.municipality_id else "SE")
    return format_datetime(moment, "short", tzinfo=zone, locale=formatting_locale())


@bp.app_template_global()
def classroom_summary() -> classroom.Summary | None:
    """What waits for the teacher of the page in the round (for ``classroom/_teacher_links.html``)."""
    viewer = g.get("viewer")
    if viewer is None or not viewer.is_teacher or not viewer.round_pk:
        return None
    return classroom.teacher_summary(get_session(), viewer)


@bp.app_template_global()
def hand_in_talk(submission: Submission) -> classroom.Thread | None:
    """The conversation on the hand-in of a teacher's page (for ``classroom/_hand_in_talk.html``): seeing it
    marks the pupil's messages read when the viewer is a round teacher."""
    viewer = g.get("viewer")
    if viewer is None:
        return None
    session = get_session()
    try:
        talk = classroom.thread(session, viewer, submission.id)
    except DomainError:
        return None
    if talk.unread:
        session.commit()
    return talk


@bp.app_template_global()
def language_name(code: str | None) -> str:
    return LANGUAGE_NAMES.get(code or "", classroom.SAMI_NAMES.get(code or "", code or ""))


# -- announcements --------------------------------------------------------------------------------------------------

@bp.route("/announcements", methods=["GET", "POST"])
@bp.route("/rounds/<int:round_pk>/announcements", methods=["GET", "POST"])
@teacher_required
def announcements():
    """The round's announcements; a round teacher writes a new one to the whole round here."""
    session, viewer = get_session(), current_viewer()
    error_code = None
    if request.method == "POST":
        try:
            classroom.post_announcement(session, viewer, request.form.get("body"), request.form.get("language"))
            session.commit()
            return redirect(classroom_url("classroom.announcements", posted="1"), code=303)
        except DomainError as refusal:
            session.rollback()
            if refusal.code not in FORM_ERRORS:
                raise
            error_code = refusal.code
    items = classroom.announcements(session, viewer)
    context = _context(session, viewer)
    return render_template("classroom/announcements.html", items=items, may_write=may_announce(session, viewer),
                           error_code=error_code, error_message=MESSAGES.get(error_code) if error_code else None,
                           form=request.form if error_code else {}, languages=classroom.ANNOUNCEMENT_LANGUAGES,
                           posted=request.args.get("posted") == "1", deleted=request.args.get("deleted") == "1",
                           **context), 400 if error_code else 200


@bp.route("/announcements/<int:announcement_id>/delete", methods=["POST"])
@bp.route("/rounds/<int:round_pk>/announcements/<int:announcement_id>/delete", methods=["POST"])
@teacher_required
def delete_announcement(announcement_id: int):
    session, viewer = get_session(), current_viewer()
    classroom.delete_announcement(session, viewer, announcement_id)
    session.commit()
    return redirect(classroom_url("classroom.announcements", deleted="1"), code=303)


# -- conversations on hand-ins ------------------------------------------------------------------------------------

@bp.route("/messages")
@bp.route("/rounds/<int:round_pk>/messages")
@teacher_required
def messages():
    """A round teacher's conversations with the round's pupils: unread first."""
    session, viewer = get_session(), current_viewer()
    items = classroom.conversations(session, viewer)
    assignments = {a.id: a for a in session.query(Assignment).filter(
        Assignment.id.in_({c.submission.assignment_id for c in items}))}
    return render_template("classroom/messages.html", items=items, assignments=assignments,
                           names=_pupil_names(session, viewer, [c.submission for c in items]),
                           **_context(session, viewer))


@bp.route("/hand-in/<int:submission_id>", methods=["GET", "POST"])
@bp.route("/rounds/<int:round_pk>/hand-in/<int:submission_id>", methods=["GET", "POST"])
@teacher_required
def hand_in(submission_id: int):
    """The conversation on one hand-in: read by whoever may see the hand-in, written by a round teacher. A
    message sent from the review page (``back=review``) returns there."""
    session, viewer = get_session(), current_viewer()
    error_code = None
    if request.method == "POST":
        try:
            classroom.write_message(session, viewer, submission_id, request.form.get("body"))
            session.commit()
            back = _back_to_review(submission_id) if request.form.get("back") == "review" else None
            return redirect(back or classroom_url("classroom.hand_in", submission_id=submission_id, sent="1",
                                                  _anchor="talk"), code=303)
        except DomainError as refusal:
            session.rollback()
            if refusal.code not in FORM_ERRORS:
                raise
            error_code = refusal.code
    talk = classroom.thread(session, viewer, submission_id)
    if request.method == "GET":
        _audit(session, privacy.ACCESS_HAND_IN, talk.submission)
    session.commit()
    assignment = session.get(Assignment, talk.submission.assignment_id)
    pupil_name = _pupil_names(session, viewer, [talk.submission]).get((talk.submission.registration_id,
                                                                        talk.submission.sub))
    return render_template("classroom/hand_in.html", talk=talk, submission=talk.submission, assignment=assignment,
                           pupil_name=pupil_name,
                           review_url=_back_to_review(submission_id), talk_error=error_code,
                           talk_message=MESSAGES.get(error_code) if error_code else None,
                           message_draft=request.form.get("body", "") if error_code else "",
                           sent=request.args.get("sent") == "1", **_context(session, viewer)), \
        400 if error_code else 200


# -- the showcase ---------------------------------------------------------------------------------------------------

@bp.route("/showcase")
@bp.route("/rounds/<int:round_pk>/showcase")
@teacher_required
def showcase():
    """The round's showcase for its teachers: switch it on or off, approve or decline what pupils share, take an
    approved item off."""
    session, viewer = get_session(), current_viewer()
    if not teaches_round(session, viewer):
        raise ForbiddenError("only the round's teachers moderate its showcase", code="round_teacher_only")
    return render_template("classroom/showcase.html", waiting=classroom.waiting_items(session, viewer),
                           approved=classroom.showcase(session, viewer), enabled=classroom.showcase_on(session, viewer),
                           done=request.args.get("done"), **_context(session, viewer))


@bp.route("/showcase/switch", methods=["POST"])
@bp.route("/rounds/<int:round_pk>/showcase/switch", methods=["POST"])
@teacher_required
def switch_showcase():
    session, viewer = get_session(), current_viewer()
    enabled = request.form.get("enabled") == "1"
    classroom.switch_showcase(session, viewer, enabled)
    session.commit()
    return redirect(classroom_url("classroom.showcase", done="on" if enabled else "off"), code=303)


@bp.route("/showcase/<int:item_id>/<any(approve, decline):decision>", methods=["POST"])
@bp.route("/rounds/<int:round_pk>/showcase/<int:item_id>/<any(approve, decline):decision>", methods=["POST"])
@teacher_required
def moderate(item_id: int, decision: str):
    session, viewer = get_session(), current_viewer()
    (classroom.approve if decision == "approve" else classroom.decline)(session, viewer, item_id)
    session.commit()
    return redirect(classroom_url("classroom.showcase", done=decision), code=303)


@bp.route("/showcase/<int:item_id>/file")
@bp.route("/rounds/<int:round_pk>/showcase/<int:item_id>/file")
@teacher_required
def showcase_file(item_id: int):
    """The file of a showcase item, for a teacher of its round (waiting or approved; see services.access)."""
    session, viewer = get_session(), current_viewer()
    item = check_showcase_item(session, viewer, item_id)
    _audit(session, privacy.ACCESS_FILE, item.submission)
    return send_hand_in(session, item.submission, showcase=True)
