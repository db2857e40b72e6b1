"""A hand-in file sent in pieces from the pupil's assignment page (static/chunked-upload.js): resumable, with a
progress bar, checked against the course's limit before a byte is sent. On the pupil's blueprint, so the
proof against forgery is the launch token in the address (web/csrf.py), as for the hand-in form; each answer is
JSON for the page's script, a refusal with its code and a sentence in the pupil's language
(services/upload_sessions.py does the work; without the script the plain form upload works as before)."""

from __future__ import annotations

import functools

from flask import g, jsonify, request
from flask_babel import gettext as _
from werkzeug.exceptions import ClientDisconnected

from ..config import settings
from ..db import get_session
from ..domain.errors import DomainError
from ..i18n import format_decimal
from ..services import upload_sessions
from .errors import MESSAGES
from .launch_token import launch_required, launch_url
from .pupil import ALREADY_REVIEWED, bp, upload_store



def rules(course_code: str | None) -> upload_sessions.UploadRules:
    """The course's upload rules from the settings: its largest file, the pieces' size, the accepted kinds."""
    config = settings()
    return upload_sessions.UploadRules(max_bytes=config.upload_max_bytes_for(course_code),
                                       chunk_bytes=config.upload_chunk_bytes, allowed=config.upload_types)


def _message(refusal: DomainError) -> str:
    if refusal.code == "upload_too_large" and g.get("launch") is not None:
        limit = settings().upload_max_mb_for(g.launch.course_code)
        return _("The file is too large: this course takes files of at most %(max)s MB. Make it smaller (for "
                 "example a shorter video, or a lower quality) and try again.",
                 max=format_decimal(limit, format="#,##0.#"))
    if refusal.code == "already_reviewed":
        return str(ALREADY_REVIEWED)
    return str(MESSAGES.get(refusal.code) or MESSAGES["error"])


def _json(body: dict, status: int = 200):
    """An answer to the page's script: JSON, never cached (an upload's state changes with every piece)."""
    response = jsonify(body)
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    return response


def _refusal(refusal: DomainError):
    session = g.get("db_session")
    if session is not None:
        session.rollback()
    body = {"error": refusal.code, "message": _message(refusal)}
    if isinstance(refusal, upload_sessions.UploadOffsetError):
        body["offset"] = refusal.offset
    return _json(body, refusal.status)


def answers_json(view):
    """Every refusal of the view, its launch's too (an ended session), is JSON for the page's script."""

    @functools.wraps(view)
    def wrapped(*args, **kwargs):
        try:
            return view(*args, **kwargs)
        except DomainError as refusal:
            return _refusal(refusal)

    return wrapped


def _answer(row, status: int = 200):
    return _json({
        "upload": row.token, "offset": row.received, "size": row.size, "chunk": settings().upload_chunk_bytes,
        "url": launch_url("pupil.upload_status", token=row.token),
        "finish": launch_url("pupil.finish_upload", token=row.token),
    }, status)


def _whole_number(value) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


@bp.route("/assignment/<int:assignment_id>/uploads", methods=["POST"])
@answers_json
@launch_required
def start_upload(assignment_id: int):
    """Name the file (JSON: name, size, type, lastModified, newVersion) before sending it: refused at once when
    too large for the course or not an accepted kind; else the upload (the one begun before for the same file,
    with what it has) and where to send its pieces."""
    session, launch = get_session(), g.launch
    asked = request.get_json(silent=True)
    if not isinstance(asked, dict):
        raise DomainError("no JSON object", code="upload_request_invalid")
    size = _whole_number(asked.get("size"))
    modified = _whole_number(asked.get("lastModified"))
    if modified is not None and not 0 <= modified < 1 << 62:
        modified = None
    if size is None or size >= 1 << 62 or not isinstance(asked.get("name", ""), str) \
            or not isinstance(asked.get("type", ""), str):
        raise DomainError("name, size and type needed", code="upload_request_invalid")
    store = upload_store(launch.course_code)
    row = upload_sessions.open_upload(
        session, launch, assignment_id, name=asked.get("name", ""), size=size, content_type=asked.get("type", ""),
        last_modified=modified, rules=rules(launch.course_code), store=store, new_version=bool(asked.get("newVersion")))
    session.commit()
    return _answer(row, 201 if row.received == 0 else 200)


@bp.route("/uploads/<token>", methods=["GET"])
@answers_json
@launch_required
def upload_status(token: str):
    """Where the upload has reached: the offset its next piece goes to."""
    session, launch = get_session(), g.launch
    row = upload_sessions.status(session, launch, token, upload_store(launch.course_code))
    return _answer(row)


@bp.route("/uploads/<token>", methods=["PATCH"])
@answers_json
@launch_required
def upload_chunk(token: str):
    """One piece of the file (the body, ``application/offset+octet-stream``) at ``?offset=``: written where the
    upload has reached; another offset is refused (409) with the right one."""
    session, launch = get_session(), g.launch
    offset = _whole_number(request.args.get("offset", ""))
    if offset is None:
        raise DomainError("offset needed", code="upload_chunk_invalid")
    try:
        reached = upload_sessions.write_chunk(session, launch, token, offset=offset,
                                              length=request.content_length, stream=request.stream,
                                              rules=rules(launch.course_code), store=upload_store(launch.course_code))
    except ClientDisconnected as gone:  # the pupil's connection dropped mid-piece: the offset stays
        raise DomainError("client went away mid-piece", code="upload_interrupted") from gone
    session.commit()
    return _json({"offset": reached})


@bp.route("/uploads/<token>/finish", methods=["POST"])
@answers_json
@launch_required
def finish_upload(token: str):
    """The whole file has arrived: it becomes the hand-in (or its new version), checked by content as a form's
    file is. A refused file's upload is removed (choose another file)."""
    session, launch = get_session(), g.launch
    store = upload_store(launch.course_code)
    asked = request.get_json(silent=True)
    new_version = bool(asked.get("newVersion")) if isinstance(asked, dict) else False
    try:
        submission = upload_sessions.finish(session, launch, token, store=store, new_version=new_version)
    except DomainError as refusal:
        session.rollback()
        if refusal.code.startswith("upload_") and refusal.code not in ("upload_gone", "upload_incomplete"):
            upload_sessions.discard(session, launch, token, store)  # the file itself is refused
            session.commit()
        raise
    session.commit()
    return _json({"location": launch_url("pupil.assignment", assignment_id=submission.assignment_id, saved="1")})


@bp.route("/uploads/<token>", methods=["DELETE"])
@answers_json
@launch_required
def cancel_upload(token: str):
    """The pupil cancels: the upload and what it received are gone."""
    session, launch = get_session(), g.launch
    upload_sessions.discard(session, launch, token, upload_store(launch.course_code))
    session.commit()
    return "", 204
