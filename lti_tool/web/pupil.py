"""What a pupil sees after a launch: the course, its lessons and assignments, hand-ins and feedback; the round's
announcements, the conversation with the teacher on a hand-in, and the round's showcase (services.classroom)."""

from __future__ import annotations

import hashlib
import hmac

from flask import Blueprint, Response, current_app, g, redirect, render_template, request, send_file, url_for
from flask_babel import get_locale
from flask_babel import lazy_gettext as _l
from sqlalchemy import and_, bindparam, select
from werkzeug.exceptions import RequestedRangeNotSatisfiable

from ..config import settings
from ..db import get_session
from ..domain.claims import ROLE_INSTRUCTOR, ROLE_LEARNER
from ..domain.errors import DomainError
from ..domain.texts import pick_text
from ..i18n import format_decimal
from ..models import Course, CourseRound, Municipality, Order, Submission, SubmissionVersion
from ..services import classroom, course_plan, delivery, placement, privacy, round_teachers, seats
from ..services.access import Viewer, check_showcase_item
from ..uploads import UploadStore, download_name, served_type
from .errors import MESSAGES
from .forms import parse_id
from .kept_text import forget_kept_text, kept_text, keeps_typed_text
from .launch_token import launch_required, launch_url, read_waitlist_token
from .media import own_video
from .municipal import may_open_console
from .privacy import audit_pupil_access

bp = Blueprint("pupil", __name__)
OUTLINES_KEY = "lti_tool.outlines"


def upload_store(course_code: str | None = None) -> UploadStore:
    """The upload store with the course's largest file (``UPLOAD_MAX_MB_BY_COURSE``, else ``UPLOAD_MAX_MB``)."""
    config = settings()
    return UploadStore(config.upload_dir, config.upload_max_bytes_for(course_code), config.upload_types)


def _seat(session, launch):
    """The pupil's active seat in the launch's round (``services.seats`` decides), or None."""
    if not launch.round_pk:
        return None
    return seats.active_seat(session, launch.round_pk, launch.registration_id, launch.sub)[0]


def _common(session, launch):
    locale = str(get_locale())
    round_ = session.get(CourseRound, launch.round_pk) if launch.round_pk else None
    return {"launch": launch, "municipality": launch.municipality, "round": round_, "locale": locale,
            "text": lambda value: pick_text(value, locale)}


def outline_cache() -> delivery.OutlineCache:
    """Course outlines kept by this worker while the catalog says the course is unchanged."""
    return current_app.extensions.setdefault(OUTLINES_KEY, delivery.OutlineCache())


def _preload_course(session, launch) -> tuple:
    """The launch's course and round in one statement; held by the caller, the page's later lookups find
    them in the session."""
    if not launch.course_code:
        return None, None
    row = session.execute(_COURSE_AND_ROUND, {"course_code": launch.course_code, "round_pk": launch.round_pk}).first()
    return tuple(row) if row is not None else (None, None)


_COURSE_AND_ROUND = (select(Course, CourseRound)
                     .outerjoin(CourseRound, and_(CourseRound.course_code == Course.code,
                                                  CourseRound.id == bindparam("round_pk")))
                     .where(Course.code == bindparam("course_code")))


@bp.route("/home")
@launch_required
def home():
    launch = g.launch
    session = get_session()
    if launch.role == ROLE_INSTRUCTOR and launch.course_code:
        return redirect(launch_url("teacher.dashboard"))
    course, _round = _preload_course(session, launch)
    context = _common(session, launch)
    seat, from_waitlist = (seats.active_seat(session, launch.round_pk, launch.registration_id, launch.sub)
                           if launch.role == ROLE_LEARNER and launch.round_pk else (None, False))
    plan = delivery.outline(session, launch, outline_cache()) if course is not None else None
    round_ = context["round"]
    # The pupil's progress and the round's weeks (due days) per module.
    mine = course_plan.course_plan(session, plan, round_) if plan is not None and launch.role == ROLE_LEARNER \
        else None
    board = unread = None
    if seat is not None:
        board = classroom.pupil_noticeboard(session, launch)  # seeing the page marks them seen
        unread = classroom.unread_by_submission(session, launch)
        session.commit()
    # A link without a course (no custom ``course``, nothing deep-linked): what the municipality has ordered, and
    # for a teacher the rounds they teach.
    no_course = not launch.course_code
    offers = placement.list_offers(session, launch.municipality_id) if no_course else []
    taught = (round_teachers.rounds_of_launch(session, launch.registration_id, launch.sub)
              if no_course and launch.role == ROLE_INSTRUCTOR else [])
    return render_template(
        "pupil/home.html", course=course, course_code=launch.course_code, plan=plan, seat=seat, mine=mine,
        no_course=no_course, offers=offers, taught=taught,
        taught_courses={c.code: c for c in session.scalars(
            select(Course).where(Course.code.in_({r.course_code for r in taught})))} if taught else {},
        from_waitlist=from_waitlist, board=board, unread=unread or {},
        showcase_on=seat is not None and round_ is not None and round_.showcase_enabled,
        may_withdraw=seat is not None and seats.may_withdraw(round_, seat),
        may_open_console=launch.role != ROLE_LEARNER and may_open_console(launch),
        withdrawn=request.args.get("withdrawn") == "1", **context)


@bp.route("/lesson/<int:lesson_id>", methods=["GET", "POST"])
@launch_required
def lesson(lesson_id: int):
    session, launch = get_session(), g.launch
    item = delivery.get_lesson(session, launch, lesson_id)
    if request.method == "POST":
        delivery.mark_done(session, launch, lesson_id)
        session.commit()
        return redirect(launch_url("pupil.lesson", lesson_id=lesson_id), code=303)
    plan = delivery.outline(session, launch, outline_cache())
    previous, following = plan.neighbours(item)
    return render_template("pupil/lesson.html", plan=plan, lesson=item, previous=previous, following=following,
                           done=item.id in plan.done, seat=_seat(session, launch), video=own_video(item.video_url),
                           **_common(session, launch))


def hand_in_draft_key(launch, assignment_id: int) -> str:
    """The hand-in field's draft key, as the page marks it for drafts.js (``data-draft-key``)."""
    return f"{draft_key(launch)}.{assignment_id}.hand-in"


def message_draft_key(launch, assignment_id: int) -> str:
    """The message field's draft key on the assignment page."""
    return f"{draft_key(launch)}.{assignment_id}.message"


def assignment_page(assignment_id: int) -> str:
    """The assignment page's address: where a text kept after the session ended is put back."""
    return url_for("pupil.assignment", assignment_id=assignment_id)


@bp.route("/assignment/<int:assignment_id>", methods=["GET", "POST"])
@keeps_typed_text("text", hand_in_draft_key, assignment_page)
@launch_required
def assignment(assignment_id: int):
    session, launch = get_session(), g.launch
    error_code = None
    item = delivery.get_assignment(session, launch, assignment_id)
    if request.method == "POST":
        upload = request.files.get("file")
        try:
            delivery.submit(session, launch, assignment_id, text=request.form.get("text"),
                            upload=(upload.stream, upload.filename or "") if upload and upload.filename else None,
                            store=upload_store(launch.course_code),
                            new_version=request.form.get("new_version") == "1")
            session.commit()
            return forget_kept_text(redirect(launch_url("pupil.assignment", assignment_id=assignment_id, saved="1"),
                                             code=303), "text", request.path)
        except DomainError as refusal:
            session.rollback()
            if refusal.code.startswith(("upload_", "hand_in_", "already_")):
                error_code = refusal.code  # shown next to the form, the pupil's text kept
            else:
                raise
    # Texts sent after the session ended, kept for this pupil until handed in or sent (web/kept_text.py).
    kept = kept_text("text", hand_in_draft_key(launch, assignment_id)) if not error_code else None
    kept_message = kept_text("body", message_draft_key(launch, assignment_id))
    return _assignment_page(session, launch, item, error_code=error_code,
                            draft=request.form.get("text", "") if error_code else kept or "", kept_restored=bool(kept),
                            message_draft=kept_message or "", kept_message_restored=bool(kept_message))


def _assignment_page(session, launch, item, *, error_code: str | None = None, draft: str = "",
                     talk_error: str | None = None, message_draft: str = "", caption_draft: str | None = None,
                     kept_restored: bool = False, kept_message_restored: bool = False):
    """The assignment page: instructions, the hand-in and its feedback, the conversation with the teacher on
    it (seeing it marks the teacher's messages read) and sharing it on the round's showcase. A form refused
    (``error_code``: the hand-in; ``talk_error``: a message or a caption) is shown again with its error."""
    plan = delivery.outline(session, launch, outline_cache())
    previous, following = plan.neighbours(item)
    submission = plan.submissions.get(item.id)
    current_reviews = delivery.reviews_of(submission) if submission is not None else []
    talk = showcase_item = None
    if submission is not None:
        talk = classroom.thread(session, launch, submission.id)
        showcase_item = classroom.own_items(session, launch).get(submission.id)
        delivery.mark_feedback_seen(submission)  # the pupil's own hand-in: its feedback is no longer new
        session.commit()
    status = 400 if error_code or talk_error else 200
    context = _common(session, launch)
    return render_template("pupil/assignment.html", plan=plan, assignment=item, previous=previous,
                           following=following, submission=submission, seat=_seat(session, launch),
                           review=current_reviews[-1] if current_reviews else None,
                           earlier=list(reversed(submission.versions)) if submission is not None else [],
                           draft_key=draft_key(launch),
                           error_code=error_code, error_message=_hand_in_message(error_code),
                           draft=draft, kept_restored=kept_restored, kept_message_restored=kept_message_restored,
                           saved=request.args.get("saved") == "1",
                           max_mb=format_decimal(settings().upload_max_mb_for(launch.course_code), format="#,##0.#"),
                           max_bytes=settings().upload_max_bytes_for(launch.course_code),
                           chunk_bytes=settings().upload_chunk_bytes,
                           talk=talk, talk_error=talk_error,
                           talk_message=MESSAGES.get(talk_error) if talk_error else None,
                           message_draft=message_draft, sent=request.args.get("sent") == "1",
                           showcase_item=showcase_item,
                           showcase_on=context["round"] is not None and context["round"].showcase_enabled,
                           caption_draft=caption_draft, shared=request.args.get("shared"),
                           **context), status


# A form from before the feedback (the page was open while the teacher reviewed): not the refusal's general
# wording, since the pupil may now hand in a new version.
ALREADY_REVIEWED = _l("Your teacher has given feedback on this work in the meantime. Read it; then you can hand in "
                      "a new version.")


def _hand_in_message(error_code: str | None):
    if not error_code:
        return None
    return ALREADY_REVIEWED if error_code == "already_reviewed" else MESSAGES.get(error_code)


def draft_key(launch) -> str:
    """What the page's script keys the pupil's unsent texts by in the browser (drafts.js): the same for every
    launch of the pupil (registration and ``sub``), a keyed hash that never shows the ``sub`` and cannot be
    computed from it without the tool's secret."""
    message = f"lti_tool.draft-key\x1f{launch.registration_id}\x1f{launch.sub}".encode("utf-8")
    return hmac.new(settings().secret_key.encode("utf-8"), message, hashlib.sha256).hexdigest()[:24]


def _own_submission(session, launch, assignment_id: int) -> Submission:
    """The pupil's hand-in for this assignment of the course, in the launch's round."""
    item = delivery.get_assignment(session, launch, assignment_id)
    found = delivery.own_submission(session, launch, item.id)
    if found is None:
        raise DomainError("nothing handed in for this assignment", code="not_found", status=404)
    return found


TALK_ERRORS = ("message_empty", "message_too_long", "caption_too_long")


def _talk_form(assignment_id: int, act, field: str, limit: int, draft_name: str, done: str, anchor: str):
    """A pupil's form about their hand-in (a message to the teacher, a share on the showcase): ``act`` does it;
    a refusal of what was typed shows the page again with the error and the text kept, else the page anew."""
    session, launch = get_session(), g.launch
    submission = _own_submission(session, launch, assignment_id)
    typed = request.form.get(field, "")
    try:
        act(session, launch, submission.id, typed)
    except DomainError as refusal:
        session.rollback()
        if refusal.code not in TALK_ERRORS:
            raise
        return _assignment_page(session, launch, delivery.get_assignment(session, launch, assignment_id),
                                talk_error=refusal.code, **{draft_name: typed[:limit * 2]})
    session.commit()
    return forget_kept_text(redirect(launch_url("pupil.assignment", assignment_id=assignment_id, _anchor=anchor,
                                                **{done: "1"}), code=303), field, assignment_page(assignment_id))


@bp.route("/assignment/<int:assignment_id>/message", methods=["POST"])
@keeps_typed_text("body", message_draft_key, assignment_page)
@launch_required
def write_message(assignment_id: int):
    """The pupil writes to the teacher about their hand-in for this assignment."""
    return _talk_form(assignment_id, classroom.write_message, "body", classroom.MAX_BODY, "message_draft", "sent",
                      "talk")


@bp.route("/assignment/<int:assignment_id>/share", methods=["POST"])
@launch_required
def share(assignment_id: int):
    """The pupil shares their reviewed hand-in for this assignment on the round's showcase (waits for the
    teacher's approval)."""
    return _talk_form(assignment_id, classroom.share, "caption", classroom.MAX_CAPTION, "caption_draft", "shared",
                      "share")


@bp.route("/showcase/<int:item_id>/withdraw", methods=["POST"])
@launch_required
def withdraw_item(item_id: int):
    """The pupil takes their item off the showcase: gone at once, for everyone."""
    session, launch = get_session(), g.launch
    item = classroom.withdraw(session, launch, item_id)
    assignment_id = session.scalar(select(Submission.assignment_id).where(Submission.id == item.submission_id))
    session.commit()
    if request.form.get("back") == "showcase":
        return redirect(launch_url("pupil.showcase", withdrawn="1"), code=303)
    return redirect(launch_url("pupil.assignment", assignment_id=assignment_id, shared="withdrawn",
                               _anchor="share"), code=303)


@bp.route("/showcase")
@launch_required
def showcase():
    """The round's showcase: the approved work its pupils shared, for the round's pupils (a seat in it)."""
    session, launch = get_session(), g.launch
    if launch.role == ROLE_INSTRUCTOR:
        return redirect(launch_url("classroom.showcase"))
    seat = _seat(session, launch)
    if seat is None:
        raise delivery.ForbiddenError("no place in this round", code="seat_missing")
    context = _common(session, launch)
    items = classroom.showcase(session, launch)
    course = session.get(Course, launch.course_code) if launch.course_code else None
    return render_template("pupil/showcase.html", items=items, course=course,
                           enabled=context["round"] is not None and context["round"].showcase_enabled,
                           own={i.id for i in classroom.own_items(session, launch).values()},
                           label=delivery.pupil_label, withdrawn=request.args.get("withdrawn") == "1", **context)


@bp.route("/showcase/<int:item_id>/file")
@launch_required
def showcase_file(item_id: int):
    """The file of an item on the round's showcase, for whoever may see the item (services.access); gone the
    moment the item is withdrawn or declined."""
    session, launch = get_session(), g.launch
    item = check_showcase_item(session, Viewer.of(launch), item_id)
    if launch.role != ROLE_LEARNER and not is_seek():
        audit_pupil_access(session, launch, privacy.ACCESS_FILE, registration_id=item.submission.registration_id,
                           sub=item.submission.sub, submission_id=item.submission_id)
    return send_hand_in(session, item.submission, showcase=True)


@bp.route("/files/<int:submission_id>/versions/<int:number>")
@launch_required
def hand_in_version_file(submission_id: int, number: int):
    """The file of an earlier version of a hand-in, for whoever may see the hand-in (as :func:`hand_in_file`)."""
    session, launch = get_session(), g.launch
    version = delivery.get_version_for(session, launch, submission_id, number)
    submission = version.submission
    if launch.role != ROLE_LEARNER and not is_seek():
        audit_pupil_access(session, launch, privacy.ACCESS_FILE, registration_id=submission.registration_id,
                           sub=submission.sub, submission_id=submission.id)
    return send_hand_in(session, submission, version=version)


@bp.route("/files/<int:submission_id>")
@launch_required
def hand_in_file(submission_id: int):
    """A handed-in file, only for its pupil and the teachers of its classroom (see services.access). Always an
    attachment, as the type its content was sniffed as, under a name the tool makes (pupil pseudonym,
    assignment, extension of that type): never the name it was uploaded with."""
    session, launch = get_session(), g.launch
    submission = delivery.get_submission_for(session, launch, submission_id)
    if not submission.file_key:
        raise DomainError("no file", code="not_found", status=404)
    if launch.role != ROLE_LEARNER and not is_seek():  # a teacher opens a pupil's file: logged
        audit_pupil_access(session, launch, privacy.ACCESS_FILE, registration_id=submission.registration_id,
                           sub=submission.sub, submission_id=submission.id)
    return send_hand_in(session, submission)


def send_hand_in(session, submission: Submission, *, showcase: bool = False,
                 version: SubmissionVersion | None = None):
    """A hand-in's file (``version``: an earlier version's): an attachment, as the type its content was sniffed
    as, under a name the tool makes (never the name it was uploaded with; on the showcase, the assignment only,
    not the pupil's pseudonym). Never cached: a withdrawn showcase item is gone at once."""
    work: Submission | SubmissionVersion = version if version is not None else submission
    if not work.file_key:
        raise DomainError("no file", code="not_found", status=404)
    path = upload_store().path(work.file_key)
    content_type, _extension = served_type(work.content_type)
    if showcase:
        assignment = submission.assignment
        name = download_name(["showcase", assignment.key if assignment else "work"], submission.content_type)
    else:  # safe ASCII: [A-Za-z0-9_-] and one dot
        name = delivery.hand_in_download_name(session, submission, version.number if version is not None else None)
    try:
        # conditional: a Range header gets 206 with Content-Range (a teacher seeks in a video), Accept-Ranges always
        response = send_file(path, mimetype=content_type, download_name=name, as_attachment=True, max_age=0,
                             conditional=True)
    except RequestedRangeNotSatisfiable:
        response = Response(status=416)
        response.headers["Content-Range"] = f"bytes */{path.stat().st_size}"
        response.headers["Accept-Ranges"] = "bytes"
    response.headers["Content-Type"] = content_type
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "private, no-store"
    response.headers["Content-Security-Policy"] = "default-src 'none'; media-src 'self'; img-src 'self'; sandbox"
    return response


def is_seek() -> bool:
    """A request for a later part of a file (``Range`` from beyond its first byte): a player seeking in a file it
    has opened, not a new opening of it (the audit log records the opening, not every seek)."""
    wanted = request.headers.get("Range", "").strip()
    return wanted.startswith("bytes=") and not wanted[len("bytes="):].lstrip().startswith("0-")


@bp.route("/withdraw", methods=["GET", "POST"])
@launch_required
def withdraw():
    """The pupil leaves the round (before the withdrawal deadline): the seat goes to the first waiting pupil.
    First a page that says what happens and asks to confirm; only the confirmed form gives the seat up."""
    session, launch = get_session(), g.launch
    round_pk = parse_id(request.values.get("round"), what="round")
    if request.method == "GET" or request.form.get("confirm") != "yes":
        seat, _from_waitlist = seats.active_seat(session, round_pk, launch.registration_id, launch.sub)
        course_round = session.get(CourseRound, round_pk)
        if seat is None or course_round is None or not seats.may_withdraw(course_round, seat):
            return redirect(launch_url("pupil.home"), code=303)
        return render_template("pupil/withdraw.html", course=session.get(Course, course_round.course_code),
                               **_common(session, launch))
    seats.withdraw(session, round_pk=round_pk, registration_id=launch.registration_id, sub=launch.sub)
    session.commit()
    return redirect(launch_url("pupil.home", withdrawn="1"), code=303)


@bp.route("/waitlist", methods=["POST"])
def join_waitlist():
    session = get_session()
    offer = read_waitlist_token(request.form.get("wt", ""))
    entry, place = seats.join_waitlist(session, order_id=int(offer["o"]), registration_id=int(offer["r"]),
                                       sub=str(offer["s"]))
    session.commit()
    order = session.get(Order, entry.order_id)
    round_ = session.get(CourseRound, order.round_pk)
    course = session.get(Course, round_.course_code)
    return render_template("pupil/waitlist.html", place=place, entry=entry, round=round_,
                           title=pick_text(course.title, str(get_locale())),
                           municipality=session.get(Municipality, order.municipality_id))
