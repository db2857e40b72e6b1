"""Resumable chunked uploads of hand-in files: the video of a dance, film or music course is hundreds of MB, sent
from a phone over a school's Wi-Fi inside the learning platform's frame.

1. :func:`open_upload`: the pupil's page names the file (name, size, declared type, date) before sending a byte;
   it is refused at once when larger than the course's limit (``UPLOAD_MAX_MB_BY_COURSE``, else
   ``UPLOAD_MAX_MB``), when its declared type is not an accepted kind, or when the hand-in is not open to it
   (the same checks as the hand-in form: the course's assignment, a seat, reviewed work only as a new version).
   The same pupil naming the same file again (after an interruption, or a reload of the page with the file
   chosen again) gets the same upload back, with the bytes it has.
2. :func:`write_chunk`: the pieces, in order, each at the offset the upload has reached (another offset is
   refused with the right one); the bytes go straight to a file under the upload directory, never into memory
   or the database; only a piece that arrived whole moves the offset.
3. :func:`finish`: the assembled file becomes the hand-in (or its new version) through ``delivery.submit``,
   checked by content exactly as a form's upload (``uploads.UploadStore.adopt``), and the upload is gone.

Who may touch an upload is decided in ``access.own_uploads``. Never commits: the caller does (and removes a
refused or cancelled upload's bytes with :func:`discard`)."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import BinaryIO

from sqlalchemy import and_, delete, select, update
from sqlalchemy.orm import Session

from .. import clock
from ..domain.errors import DomainError
from ..models import SUBMISSION_REVIEWED, Launch, Submission, UploadSession
from ..uploads import CHUNK, UploadError, UploadStore, kind_allowed
from . import delivery
from .access import check_upload, own_uploads

MAX_NAME = 200


class UploadOffsetError(DomainError):
    """A piece sent at another offset than the upload has reached: ``offset`` is where to go on from."""

    code = "upload_offset"
    status = 409

    def __init__(self, detail: str, *, offset: int):
        super().__init__(detail)
        self.offset = offset


@dataclass(frozen=True)
class UploadRules:
    """What a course's uploads must keep to: its largest file, the largest piece, the accepted kinds."""

    max_bytes: int
    chunk_bytes: int
    allowed: tuple[str, ...]


def _clean_name(name: str) -> str:
    return (name or "file").replace("/", "_").replace("\\", "_").strip()[-MAX_NAME:] or "file"


def _mine(launch: Launch, assignment_id: int):
    return and_(own_uploads(launch), UploadSession.assignment_id == assignment_id)


def open_upload(session: Session, launch: Launch, assignment_id: int, *, name: str, size: int, content_type: str,
                last_modified: int | None, rules: UploadRules, store: UploadStore,
                new_version: bool = False) -> UploadSession:
    """The pupil's upload of this file for the assignment: the one begun before (the same name, size and date),
    with what it has received, or a new one; checked before any byte is sent. A new file replaces the pupil's
    unfinished upload of another one for the same assignment (its bytes are removed)."""
    assignment = delivery.get_assignment(session, launch, assignment_id)
    delivery.require_seat(session, launch)
    if assignment.submission != "file":
        raise DomainError("this assignment takes no file", code="no_hand_in")
    existing = delivery.own_submission(session, launch, assignment.id)
    if existing is not None and existing.status == SUBMISSION_REVIEWED and not new_version:
        raise DomainError("the work has been reviewed: hand in a new version", code="already_reviewed", status=409)
    if size <= 0:
        raise UploadError("empty file", code="upload_empty")
    if size > rules.max_bytes:
        raise UploadError(f"file of {size} bytes, the course takes {rules.max_bytes}", code="upload_too_large",
                          status=413)
    declared = (content_type or "").strip().lower()[:100]
    if declared and not kind_allowed(declared, rules.allowed):
        raise UploadError(f"declared type {declared!r} not accepted", code="upload_type", status=415)
    file_name = _clean_name(name)
    begun = session.scalars(select(UploadSession).where(_mine(launch, assignment.id))
                            .order_by(UploadSession.id)).all()
    for earlier in begun:
        same = (earlier.file_name, earlier.size, earlier.last_modified) == (file_name, size, last_modified)
        path = store.partial_path(earlier.token)
        if same and path.is_file():
            # What is on disk counts: never more than it holds (a piece cut off mid-way is sent again).
            earlier.received = min(earlier.received, path.stat().st_size)
            earlier.updated_at = clock.now()
            return earlier
    for earlier in begun:
        store.delete_partial(earlier.token)
        session.delete(earlier)
    token = secrets.token_urlsafe(24)
    path = store.partial_path(token)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "xb"):
        pass
    row = UploadSession(token=token, registration_id=launch.registration_id, sub=launch.sub,
                        assignment_id=assignment.id, round_pk=launch.round_pk, file_name=file_name,
                        content_type=declared, size=size, last_modified=last_modified, received=0)
    session.add(row)
    session.flush()
    return row


def status(session: Session, launch: Launch, token: str, store: UploadStore) -> UploadSession:
    """The pupil's upload and the offset it has reached (``upload_gone`` when its bytes are gone)."""
    row = check_upload(session, launch, token)
    if not store.partial_path(token).is_file():
        raise DomainError("the upload's bytes are gone", code="upload_gone", status=404)
    return row


def write_chunk(session: Session, launch: Launch, token: str, *, offset: int, length: int | None, stream: BinaryIO,
                rules: UploadRules, store: UploadStore) -> int:
    """Write one piece at ``offset``, which must be where the upload has reached; return the new offset. The
    piece goes straight to the upload's file; the offset moves only when all ``length`` bytes arrived (a piece
    cut off is sent again from the same offset), and only once when the same piece arrives twice at once."""
    row = status(session, launch, token, store)
    if offset != row.received:
        raise UploadOffsetError(f"piece at {offset}, the upload is at {row.received}", offset=row.received)
    if length is None or length <= 0:
        raise DomainError("a piece needs its length", code="upload_chunk_invalid", status=411)
    if length > rules.chunk_bytes:
        raise DomainError(f"piece of {length} bytes, at most {rules.chunk_bytes}", code="upload_chunk_too_large",
                          status=413)
    if offset + length > row.size:
        raise DomainError("piece beyond the file's size", code="upload_chunk_invalid", status=400)
    written = 0
    with open(store.partial_path(token), "r+b") as out:
        out.seek(offset)
        while written < length:
            piece = stream.read(min(CHUNK, length - written))
            if not piece:
                break
            out.write(piece)
            written += len(piece)
    if written != length:
        raise DomainError(f"piece cut off after {written} of {length} bytes", code="upload_interrupted")
    moved = session.execute(update(UploadSession)
                            .where(UploadSession.id == row.id, UploadSession.received == offset)
                            .values(received=offset + length, updated_at=clock.now())
                            .execution_options(synchronize_session=False))
    if moved.rowcount != 1:  # the same piece, sent twice at once, arrived first the other way; or cancelled
        reached = session.scalar(select(UploadSession.received).where(UploadSession.id == row.id))
        if reached is None:
            raise DomainError("the upload was cancelled meanwhile", code="upload_gone", status=404)
        raise UploadOffsetError("the upload moved on meanwhile", offset=reached)
    return offset + length


def finish(session: Session, launch: Launch, token: str, *, store: UploadStore, new_version: bool = False
           ) -> Submission:
    """The whole file becomes the pupil's hand-in (or its new version) the way a form's file does
    (``delivery.submit``: checked by content and size, stored, the gradebook told); the upload is gone. A refusal
    leaves the upload as it was: the caller rolls back and :func:`discard`s it."""
    row = status(session, launch, token, store)
    if row.received != row.size:
        raise DomainError(f"{row.received} of {row.size} bytes received", code="upload_incomplete", status=409)
    path = store.partial_path(token)
    os.truncate(path, row.size)  # never a byte past the file, whatever a cut-off piece left behind
    submission = delivery.submit(session, launch, row.assignment_id, upload=(path, row.file_name), store=store,
                                 new_version=new_version)
    session.delete(row)
    session.flush()
    return submission


def discard(session: Session, launch: Launch, token: str, store: UploadStore) -> None:
    """Cancel the pupil's upload: the row and its bytes go."""
    row = check_upload(session, launch, token)
    store.delete_partial(token)
    session.delete(row)
    session.flush()


def purge_stale(session: Session, *, cutoff: datetime) -> list[str]:
    """Delete unfinished uploads whose last piece came before ``cutoff``; their tokens, whose bytes the caller
    removes after the commit (``UploadStore.delete_partial``)."""
    tokens = list(session.scalars(select(UploadSession.token).where(UploadSession.updated_at < cutoff)))
    if tokens:
        session.execute(delete(UploadSession).where(UploadSession.token.in_(tokens))
                        .execution_options(synchronize_session=False))
    return tokens


def open_tokens(session: Session) -> set[str]:
    """The tokens of every upload still under way (their bytes are not strays)."""
    return set(session.scalars(select(UploadSession.token)))
