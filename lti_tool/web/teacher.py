"""What a teacher sees after an instructor's launch on a placed course: the round's pupils, their
hand-ins, the queue of work waiting for review, and the review form."""

from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, g, redirect, render_template, request
from flask_babel import get_locale

from ..config import settings
from ..db import get_session
from ..domain.errors import DomainError
from ..domain.texts import pick_text
from ..lti import get_lti
from ..lti.ags import ServiceClient
from ..models import Assignment, Course, CourseRound
from ..services import delivery, grades, privacy
from ..services import roster as roster_service
from .errors import MESSAGES
from .launch_token import launch_required, launch_url
from .privacy import audit_pupil_access

bp = Blueprint("teacher", __name__, url_prefix="/teach")


def _context(session, launch):
    locale = str(get_locale())
    return {"launch": launch, "municipality": launch.municipality, "locale": locale,
            "course": session.get(Course, launch.course_code) if launch.course_code else None,
            "round": session.get(CourseRound, launch.round_pk) if launch.round_pk else None,
            "text": lambda value: pick_text(value, locale), "label": delivery.pupil_label}


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


@bp.route("/")
@launch_required
def dashboard():
    session, launch = get_session(), g.launch
    delivery.roster(session, launch)  # teachers only
    roster_fresh = _refresh_roster(session, launch)
    pupils = delivery.roster(session, launch)
    queue = delivery.review_queue(session, launch)
    members = roster_service.roster_and_seats(session, launch)
    return render_template("teacher/dashboard.html", pupils=pupils, waiting=len(queue), members=members,
                           roster_fresh=roster_fresh, gradebook=grades.placement_of_launch(session, launch),
                           **_context(session, launch))


@bp.route("/queue")
@launch_required
def queue():
    session, launch = get_session(), g.launch
    items = delivery.review_queue(session, launch)
    assignments = {a.id: a
                   for a in session.query(Assignment).filter(Assignment.id.in_({s.assignment_id for s in items}))}
    return render_template("teacher/queue.html", items=items, assignments=assignments, **_context(session, launch))


@bp.route("/pupil/<label>")
@launch_required
def pupil(label: str):
    session, launch = get_session(), g.launch
    line = next((p for p in delivery.roster(session, launch) if p.label == label), None)
    if line is None:
        raise DomainError("no such pupil in this course", code="not_found", status=404)
    work = delivery.submissions_of(session, launch, line.sub)
    audit_pupil_access(session, launch, privacy.ACCESS_PUPIL_PAGE, registration_id=launch.registration_id,
                       sub=line.sub)
    return render_template("teacher/pupil.html", pupil=line, work=work, **_context(session, launch))


@bp.route("/submission/<int:submission_id>", methods=["GET", "POST"])
@launch_required
def review(submission_id: int):
    session, launch = get_session(), g.launch
    error_code = None
    if request.method == "POST":
        try:
            delivery.record_review(session, launch, submission_id, feedback=request.form.get("feedback", ""),
                                   score=request.form.get("score", ""))
            session.commit()
            following = delivery.review_queue(session, launch)
            if following:
                return redirect(launch_url("teacher.review", submission_id=following[0].id, saved="1"), code=303)
            return redirect(launch_url("teacher.queue", saved="1"), code=303)
        except DomainError as refusal:
            session.rollback()
            if refusal.code not in ("feedback_empty", "score_invalid"):
                raise
            error_code = refusal.code
    submission = delivery.get_submission_for(session, launch, submission_id)
    if launch.role != "instructor":
        raise delivery.ForbiddenError("only the course's teacher can review")
    if request.method == "GET":
        audit_pupil_access(session, launch, privacy.ACCESS_HAND_IN, registration_id=submission.registration_id,
                           sub=submission.sub, submission_id=submission.id)
    assignment = session.get(Assignment, submission.assignment_id)
    return render_template("teacher/review.html", submission=submission, assignment=assignment,
                           last=submission.reviews[-1] if submission.reviews else None, error_code=error_code,
                           error_message=MESSAGES.get(error_code) if error_code else None,
                           form=request.form if error_code else {}, saved=request.args.get("saved") == "1",
                           **_context(session, launch)), 400 if error_code else 200
