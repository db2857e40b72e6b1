"""The teacher's side of a course round's classroom: the round's pupils grouped by municipality with their
progress, the queue of work waiting for review, the grade grid, each pupil's hand-ins with their history, and
the review form; the rounds a teacher teaches; accepting a teaching invitation.

Who is looking is a :class:`~lti_tool.services.access.Viewer`, put on ``g.viewer`` by
:func:`classroom_required` from either

- a launch token (``?lt=``; the launch is on ``g.launch``): a round teacher or a local teacher launching from
  their platform, in the launch's own round, or, for a named teacher of another round, that round
  (``/teach/rounds/<round_pk>/...``), or
- a teacher signed in by e-mail through the staff OpenID Connect provider (``session["teacher"]``), always
  with the round in the address.

What the viewer may see and do is decided in :mod:`lti_tool.services.access` only; the views ask it. Links
are made with :func:`classroom_url`, which keeps the round and the launch token whichever way the teacher came.
"""

from __future__ import annotations

import functools
from datetime import timedelta

from flask import Blueprint, g, redirect, render_template, request, url_for
from flask import session as web_session
from flask_babel import get_locale
from flask_babel import lazy_gettext as _l

from ..config import settings
from ..db import get_session
from ..domain.claims import ROLE_INSTRUCTOR
from ..domain.errors import DomainError
from ..domain.texts import pick_text
from ..lti import get_lti
from ..lti.ags import ServiceClient
from ..models import Assignment, Course, CourseRound, Submission
from ..services import (access, classroom_views, course_plan, delivery, grades, privacy, round_teachers,
                       staff_catalog)
from ..services import roster as roster_service
from .errors import MESSAGES
from .launch_token import current_launch, launch_required, launch_url
from .privacy import audit_pupil_access, staff_actor

bp = Blueprint("teacher", __name__, url_prefix="/teach")
# The review form's refusals worded for the teacher where the general message would not say what happened.
REVIEW_MESSAGES = {
    "conflict": _l("The pupil has handed in a new version since this page was opened. Read it above, then review "
                   "it."),
}
# The session of a teacher signed in by e-mail (staff OpenID Connect): {"email": ..., "name": ...}. It opens the
# teacher's rounds here and nothing of the staff console.
TEACHER_SESSION_KEY = "teacher"
PLATFORM_PARAM = "platform"  # the pupil's registration on a pupil's page: a sub is only unique within one


def signed_in_teacher() -> dict | None:
    """The e-mail sign-in of the request's session, if any."""
    value = web_session.get(TEACHER_SESSION_KEY)
    return value if isinstance(value, dict) and isinstance(value.get("email"), str) and value["email"] else None


def _has_launch_token() -> bool:
    return "lt" in request.values


def current_viewer(round_pk: int | None) -> access.Viewer | None:
    """Who is looking at the round ``round_pk`` (None: the launch's own round): from the launch token when the
    request has one (a bad or expired one is refused, never replaced by a session), else from the e-mail
    sign-in. None: neither (the caller sends the teacher to sign in)."""
    session = get_session()
    if _has_launch_token():
        g.launch = current_launch()
        return access.viewer_for_round(session, g.launch, round_pk)
    teacher = signed_in_teacher()
    if teacher is None or round_pk is None:
        return None
    return access.signed_in_viewer(session, teacher["email"], round_pk)


def classroom_required(view):
    """The view runs with the viewer on ``g.viewer`` (see :func:`current_viewer`); the round comes from the
    address (``round_pk``) and is not passed on to the view. Without a launch token or a sign-in: a signed-in
    teacher without a round goes to their rounds, anyone else to the sign-in (a round's address) or the
    ``launch_expired`` refusal."""

    @functools.wraps(view)
    def wrapped(*args, **kwargs):
        round_pk = kwargs.pop("round_pk", None)
        viewer = current_viewer(round_pk)
        if viewer is None:
            if signed_in_teacher() is not None:
                return redirect(url_for("teacher.rounds"))
            if round_pk is not None and request.method == "GET":
                return redirect(url_for("staff.sign_in"))
            raise DomainError("launch token missing, bad or expired", code="launch_expired", status=401)
        g.viewer = viewer
        return view(*args, **kwargs)

    return wrapped


def classroom_url(endpoint: str, **values) -> str:
    """A link inside the classroom being shown: the round (unless it is the launch's own) and the launch token
    (when the teacher came by a launch) travel with it."""
    viewer, launch = g.get("viewer"), g.get("launch")
    if viewer is not None and viewer.round_pk and (launch is None or viewer.round_pk != launch.round_pk):
        values.setdefault("round_pk", viewer.round_pk)
    if launch is not None:
        values["lt"] = g.get("launch_token", "")
    return url_for(endpoint, **values)


def round_url(round_pk: int) -> str:
    """The classroom of one of the teacher's rounds."""
    launch = g.get("launch")
    if launch is not None:
        return url_for("teacher.dashboard", round_pk=round_pk, lt=g.get("launch_token", ""))
    return url_for("teacher.dashboard", round_pk=round_pk)


@bp.app_template_global("classroom_url")
def _classroom_url_global(endpoint: str, **values) -> str:
    return classroom_url(endpoint, **values)


@bp.app_template_global("round_teacher_names")
def round_teacher_names(round_pk: int | None) -> list[str]:
    """The names of a round's teachers, for any page that shows the round (the pupil's course page too)."""
    return round_teachers.names_of(get_session(), round_pk) if round_pk else []


@bp.context_processor
def _teacher_pages():
    teacher = signed_in_teacher() if not g.get("launch") else None
    values = {"signed_in_teacher": teacher, "round_url": round_url, "platform_param": PLATFORM_PARAM}
    if teacher is not None:
        from .staff import csrf_token

        values["csrf"] = csrf_token()
    return values


def _context(session, viewer: access.Viewer):
    locale = str(get_locale())
    launch = g.get("launch")
    round_ = session.get(CourseRound, viewer.round_pk) if viewer.round_pk else None
    course = session.get(Course, round_.course_code) if round_ is not None else None
    if course is None and launch is not None and launch.course_code:
        course = session.get(Course, launch.course_code)
    return {"launch": launch, "viewer": viewer, "municipality": launch.municipality if launch is not None else None,
            "locale": locale, "course": course, "round": round_, "text": lambda value: pick_text(value, locale),
            "label": delivery.pupil_label, "classroom": access.classroom_kind(session, viewer),
            "teacher_names": round_teachers.names_of(session, round_.id) if round_ is not None else []}


def _saved_review(session, viewer: access.Viewer) -> dict | None:
    """The hand-in whose review was just saved (``?saved=<id>``), named on the next page: the pupil and the
    assignment, with a way back to it; nothing for an id the viewer may not see."""
    submission_id = request.args.get("saved", type=int)
    if submission_id is None:
        return None
    try:
        submission = delivery.get_submission_for(session, viewer, submission_id)
    except DomainError:
        return None
    names = classroom_views.pupil_names(session, {(submission.registration_id, submission.sub)},
                                        round_pk=submission.round_pk, **_names())
    return {"id": submission.id, "label": delivery.pupil_label(submission.sub),
            "name": names.get((submission.registration_id, submission.sub)),
            "assignment": session.get(Assignment, submission.assignment_id)}


def _own_launch_classroom(viewer: access.Viewer) -> bool:
    """The page shows the launch's own LMS course (its member list, its gradebook column): a launch in its own
    round whose launch proves the course."""
    launch = g.get("launch")
    return launch is not None and viewer.round_pk == launch.round_pk and viewer.has_classroom


def _refresh_roster(session, launch) -> bool:
    """Fetch the course roster again when it is stale (services.roster decides); on failure the last known
    roster is shown."""
    config = settings()

    def client() -> ServiceClient:
        return ServiceClient(get_lti().keys, timeout=min(5.0, config.http_timeout_seconds),
                             policy=get_lti().outbound)

    refresh = roster_service.refresh_stale_roster(
        session, launch, client, max_age=timedelta(seconds=config.roster_max_age_seconds),
        keep_names=config.roster_names)
    if refresh.synced:
        session.commit()
    return refresh.fresh


def _names() -> dict[str, bool]:
    """Which names a teacher's page shows (services.classroom_views.round_pupil_names): the launch's, kept on the
    pupil's seat for the round (``LAUNCH_NAMES``), and the member list's (``ROSTER_NAMES``)."""
    config = settings()
    return {"keep_names": config.roster_names, "launch_names": config.launch_names}


def _audit_access(session, action: str, *, registration_id: int, sub: str, submission_id: int | None = None) -> None:
    """A teacher opened a pupil's page, hand-in or file: in the audit log (see web/privacy.py)."""
    viewer, launch = g.viewer, g.get("launch")
    if launch is not None and viewer.round_pk == launch.round_pk:
        audit_pupil_access(session, launch, action, registration_id=registration_id, sub=sub,
                           submission_id=submission_id)
        return
    actor = staff_actor(launch) if launch is not None else f"teacher {viewer.reviewer_key}"
    privacy.record_access(session, actor=actor, action=action,
                          pseudonym=privacy.pupil_pseudonym(settings().secret_key, registration_id, sub),
                          submission_id=submission_id, round=viewer.round_pk,
                          municipality=launch.municipality_id if launch is not None else None)
    session.commit()


def _teacher_rounds(session) -> list[CourseRound]:
    """The rounds the person looking teaches: by their launch's platform account, or by their e-mail sign-in."""
    launch = g.get("launch")
    if launch is not None:
        return round_teachers.rounds_of_launch(session, launch.registration_id, launch.sub)
    teacher = signed_in_teacher()
    return round_teachers.rounds_of_email(session, teacher["email"]) if teacher else []


# -- the classroom ----------------------------------------------------------------------------------------------

@bp.route("/")
@bp.route("/rounds/<int:round_pk>/")
@classroom_required
def dashboard():
    session, viewer, launch = get_session(), g.viewer, g.get("launch")
    try:
        access.require_classroom(viewer, session)
    except access.ForbiddenError:
        # A teacher whose launch shows no classroom here, but who teaches rounds or may accept an invitation.
        if launch is not None and launch.role == ROLE_INSTRUCTOR and viewer.round_pk == launch.round_pk and (
                launch.round_pk is None or _teacher_rounds(session)):
            return redirect(launch_url("teacher.rounds"), code=303)
        raise
    own_course = _own_launch_classroom(viewer)
    roster_fresh = _refresh_roster(session, launch) if own_course else True
    pupils = classroom_views.progress(session, viewer, **_names())
    queue = delivery.review_queue(session, viewer)
    shares_roster = own_course and roster_service.shares_roster(session, launch)
    members = (roster_service.roster_and_seats(session, launch, launch_names=settings().launch_names)
               if shares_roster else None)
    others = [r for r in _teacher_rounds(session) if r.id != viewer.round_pk]
    return render_template("teacher/dashboard.html", pupils=pupils, groups=classroom_views.by_municipality(pupils),
                           names={p.key: p.name for p in pupils if p.name},
                           waiting=len(queue), queue=queue[:5], members=members, roster_fresh=roster_fresh,
                           own_course=own_course, shares_roster=shares_roster,
                           gradebook=grades.placement_of_launch(session, launch) if own_course else None,
                           other_rounds=others, **_context(session, viewer))


@bp.route("/queue")
@bp.route("/rounds/<int:round_pk>/queue")
@classroom_required
def queue():
    session, viewer = get_session(), g.viewer
    items = delivery.review_queue(session, viewer)
    assignments = {a.id: a
                   for a in session.query(Assignment).filter(Assignment.id.in_({s.assignment_id for s in items}))}
    names = classroom_views.pupil_names(session, {(s.registration_id, s.sub) for s in items},
                                        round_pk=viewer.round_pk, **_names())
    return render_template("teacher/queue.html", items=items, assignments=assignments, names=names,
                           late=course_plan.late_hand_ins(session, items), saved=_saved_review(session, viewer),
                           **_context(session, viewer))


@bp.route("/grades")
@bp.route("/rounds/<int:round_pk>/grades")
@classroom_required
def grade_grid():
    """Pupils × assignments; ``?show=`` narrows it to the pupils with work waiting, late, reviewed or not handed
    in; ``?saved=`` marks the hand-in whose review was just saved."""
    session, viewer = get_session(), g.viewer
    grid = classroom_views.grade_grid(session, viewer, **_names())
    show = request.args.get("show")
    show = show if show in classroom_views.GRID_FILTERS else None
    return render_template("teacher/grades.html", grid=grid.only(show), counts=grid.counts(), show=show,
                           total=len(grid.rows), saved_id=request.args.get("saved", type=int),
                           **_context(session, viewer))


@bp.route("/content")
@bp.route("/rounds/<int:round_pk>/content")
@classroom_required
def content():
    """The course as its pupils see it (modules, lessons, assignments), with each module's weeks of the round."""
    session, viewer = get_session(), g.viewer
    context = _context(session, viewer)
    course, round_ = context["course"], context["round"]
    if course is None:
        raise DomainError("this classroom has no course", code="not_found", status=404)
    modules = staff_catalog.course_content(session, course.code)
    schedule = course_plan.round_plan(round_, [part.module.id for part in modules]) if round_ is not None else {}
    return render_template("teacher/content.html", modules=modules, schedule=schedule, reader=context["locale"],
                           **context)


@bp.route("/pupil/<label>")
@bp.route("/rounds/<int:round_pk>/pupil/<label>")
@classroom_required
def pupil(label: str):
    session, viewer = get_session(), g.viewer
    platform = request.args.get(PLATFORM_PARAM, type=int)
    lines = [p for p in classroom_views.progress(session, viewer, **_names())
             if p.label == label and (platform is None or p.registration_id == platform)]
    if not lines:
        raise DomainError("no such pupil in this course", code="not_found", status=404)
    if len({line.key for line in lines}) > 1:
        raise DomainError("several pupils have this pseudonym: name the platform", code="pupil_ambiguous", status=409)
    line = lines[0]
    work = delivery.submissions_of(session, viewer, line.sub, line.registration_id)
    _audit_access(session, privacy.ACCESS_PUPIL_PAGE, registration_id=line.registration_id, sub=line.sub)
    return render_template("teacher/pupil.html", pupil=line, work=work, **_context(session, viewer))


@bp.route("/submission/<int:submission_id>", methods=["GET", "POST"])
@bp.route("/rounds/<int:round_pk>/submission/<int:submission_id>", methods=["GET", "POST"])
@classroom_required
def review(submission_id: int):
    session, viewer = get_session(), g.viewer
    error_code = None
    if request.method == "POST":
        try:
            delivery.record_review(session, viewer, submission_id, feedback=request.form.get("feedback", ""),
                                   score=request.form.get("score", ""),
                                   version=request.form.get("version", type=int))
            session.commit()
            following = delivery.review_queue(session, viewer)
            if following:
                return redirect(classroom_url("teacher.review", submission_id=following[0].id,
                                              saved=submission_id), code=303)
            return redirect(classroom_url("teacher.queue", saved=submission_id), code=303)
        except DomainError as refusal:
            session.rollback()
            if refusal.code not in ("feedback_empty", "score_invalid", "conflict"):
                raise
            error_code = refusal.code
    submission = delivery.get_submission_for(session, viewer, submission_id)
    if not viewer.is_teacher:
        raise delivery.ForbiddenError("only the course's teacher can review")
    if request.method == "GET":
        _audit_access(session, privacy.ACCESS_HAND_IN, registration_id=submission.registration_id,
                      sub=submission.sub, submission_id=submission.id)
    assignment = session.get(Assignment, submission.assignment_id)
    names = classroom_views.pupil_names(session, {(submission.registration_id, submission.sub)},
                                        round_pk=submission.round_pk, **_names())
    current = delivery.reviews_of(submission)
    return render_template("teacher/review.html", submission=submission, assignment=assignment,
                           last=current[-1] if current else None, earlier=list(reversed(submission.versions)),
                           may_review=access.may_review(session, viewer, submission),
                           pupil_name=names.get((submission.registration_id, submission.sub)),
                           error_code=error_code, error_message=REVIEW_MESSAGES.get(error_code or "")
                           or (MESSAGES.get(error_code) if error_code else None),
                           form=request.form if error_code else {}, saved=_saved_review(session, viewer),
                           **_context(session, viewer)), 400 if error_code else 200


@bp.route("/files/<int:submission_id>/versions/<int:number>")
@bp.route("/rounds/<int:round_pk>/files/<int:submission_id>/versions/<int:number>")
@classroom_required
def hand_in_version_file(submission_id: int, number: int):
    """The file of an earlier version of a hand-in, for a teacher of its classroom (as :func:`hand_in_file`)."""
    from .pupil import is_seek, send_hand_in

    session, viewer = get_session(), g.viewer
    if not viewer.is_teacher:
        raise delivery.ForbiddenError("only the course's teacher opens pupils' files here")
    version = delivery.get_version_for(session, viewer, submission_id, number)
    submission = version.submission
    if not version.file_key:
        raise DomainError("no file", code="not_found", status=404)
    if not is_seek():  # a player seeking in a file it opened is not a new opening
        _audit_access(session, privacy.ACCESS_FILE, registration_id=submission.registration_id, sub=submission.sub,
                      submission_id=submission.id)
    return send_hand_in(session, submission, version=version)


@bp.route("/files/<int:submission_id>")
@bp.route("/rounds/<int:round_pk>/files/<int:submission_id>")
@classroom_required
def hand_in_file(submission_id: int):
    """A handed-in file for a teacher of its classroom (see services.access), served as the pupil's own page
    serves it (web/pupil.py: an attachment of the sniffed type under a name the tool makes); logged."""
    from .pupil import is_seek, send_hand_in

    session, viewer = get_session(), g.viewer
    if not viewer.is_teacher:
        raise delivery.ForbiddenError("only the course's teacher opens pupils' files here")
    submission: Submission = delivery.get_submission_for(session, viewer, submission_id)
    if not submission.file_key:
        raise DomainError("no file", code="not_found", status=404)
    if not is_seek():  # a player seeking in a file it opened is not a new opening
        _audit_access(session, privacy.ACCESS_FILE, registration_id=submission.registration_id, sub=submission.sub,
                      submission_id=submission.id)
    return send_hand_in(session, submission)


# -- the teacher's rounds and invitations -----------------------------------------------------------------------

@bp.route("/rounds")
def rounds():
    """The rounds the teacher teaches (by their launch's platform account or their e-mail sign-in), each linking
    to its classroom; with a launch, the form to accept a teaching invitation."""
    session = get_session()
    if _has_launch_token():
        g.launch = current_launch()
        if g.launch.role != ROLE_INSTRUCTOR:
            raise delivery.ForbiddenError("only teachers have rounds")
    elif signed_in_teacher() is None:
        return redirect(url_for("staff.sign_in"))
    taught = _teacher_rounds(session)
    locale = str(get_locale())
    launch = g.get("launch")
    return render_template("teacher/rounds.html", rounds=taught, launch=launch,
                           municipality=launch.municipality if launch is not None else None,
                           courses={c.code: c for c in session.query(Course).filter(
                               Course.code.in_({r.course_code for r in taught}))},
                           own_round=launch.round_pk if launch is not None and launch.course_code else None,
                           text=lambda value: pick_text(value, locale), joined=request.args.get("joined") == "1")


@bp.route("/join/<token>")
def join(token: str):
    """The page an invitation link opens: the round and course, and how to accept (from a teacher's launch in
    the teacher's own platform). Opened with a launch token: the accept button itself."""
    session = get_session()
    launch = current_launch() if _has_launch_token() else None
    if launch is not None:
        g.launch = launch
    invitation = round_teachers.pending_invitation(session, token)
    round_ = invitation.round
    locale = str(get_locale())
    return render_template("teacher/join.html", invitation=invitation, round=round_, course=round_.course,
                           token=token, launch=launch, municipality=launch.municipality if launch else None,
                           text=lambda value: pick_text(value, locale))


@bp.route("/invitations/accept", methods=["POST"])
@launch_required
def accept_invitation():
    """Accept a teaching invitation (the link or its code, pasted) from an instructor launch: the launch's
    platform account becomes a teacher of the round, and the round's classroom opens."""
    session = get_session()
    token = round_teachers.invitation_token(request.form.get("invitation", ""))
    teacher = round_teachers.accept_invitation(session, token, g.launch)
    round_pk = teacher.round_pk
    session.commit()
    return redirect(url_for("teacher.dashboard", round_pk=round_pk, lt=g.launch_token, joined="1"), code=303)
