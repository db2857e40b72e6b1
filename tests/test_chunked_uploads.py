"""Video hand-ins: a per-course upload limit, resumable uploads in pieces (named and checked before a byte is sent,
the pieces in order, resumed after an interruption, checked by content at the end and handed in through the same
service as a form's file), and files served with range requests so a teacher can seek. Small limits and pieces
here (kilobytes, not hundreds of MB); tests/test_video_upload_browser.py has the browser's side."""

from __future__ import annotations

import io
import json
import re
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from lti_tool import clock
from lti_tool.config import ConfigurationError, Settings, load_settings
from lti_tool.db import new_session
from lti_tool.models import AuditEntry, Submission, UploadSession
from lti_tool.services import privacy

from . import sample_files
from .conftest import name_round_teacher

KB = 1024
CHUNK = 16 * KB
# A small MP4 "video": a valid header (ftyp, free, mdat) and then its data.
VIDEO = sample_files.MP4 + bytes(range(256)) * 200  # 51 240 bytes: four pieces of 16 KiB
NOT_A_VIDEO = b"\x00\x01\x02\x03" * 9000


@pytest.fixture
def config(config):
    """The default limit 40 KiB (the video is larger), pieces of 16 KiB."""
    return {**config, "UPLOAD_MAX_MB": 40 / 1024, "UPLOAD_CHUNK_MB": CHUNK / (1024 * 1024)}


@pytest.fixture
def video_course(app):
    """GIT-AK-1 takes files of up to 100 KiB (UPLOAD_MAX_MB_BY_COURSE); other courses keep 40 KiB."""
    app.config["UPLOAD_MAX_MB_BY_COURSE"] = {"GIT-AK-1": 100 / 1024}


class Pupil:
    """A browser after a launch: every request carries the launch token, as the page's script sends them."""

    def __init__(self, client, launches, user="p1", role="learner"):
        response = launches.launch(launches.spec("SE-1490", user=user, role=role, course="GIT-AK-1"))
        assert response.status_code == 303, response.get_data(as_text=True)
        self.client = client
        self.token = re.search(r"lt=([^&]+)", response.headers["Location"]).group(1)

    def url(self, path: str) -> str:
        return f"{path}{'&' if '?' in path else '?'}lt={self.token}"

    def start(self, assignment_id: int, data: bytes = VIDEO, *, name="dans.mp4", kind="video/mp4",
              modified=1700000000000, new_version=False):
        return self.client.post(self.url(f"/assignment/{assignment_id}/uploads"),
                                json={"name": name, "size": len(data), "type": kind, "lastModified": modified,
                                      "newVersion": new_version})

    def piece(self, upload: dict, data: bytes, offset: int, **kwargs):
        return self.client.patch(f"{upload['url']}&offset={offset}", data=data[offset:offset + CHUNK],
                                 content_type="application/offset+octet-stream", **kwargs)

    def send_all(self, upload: dict, data: bytes = VIDEO) -> list[int]:
        offsets, offset = [], upload["offset"]
        while offset < len(data):
            answer = self.piece(upload, data, offset)
            assert answer.status_code == 200, answer.get_data(as_text=True)
            offset = answer.get_json()["offset"]
            offsets.append(offset)
        return offsets

    def finish(self, upload: dict, **body):
        return self.client.post(upload["finish"], json=body)

    def get(self, path: str, **kwargs):
        """A page or a file, read whole (a file's handle closed)."""
        response = self.client.get(self.url(path), **kwargs)
        response.get_data()
        response.close()
        return response


def the_submission(app) -> Submission | None:
    with new_session(app) as session:
        found = session.scalars(select(Submission)).one_or_none()
        if found is not None:
            session.expunge(found)
        return found


def upload_rows(app) -> list[UploadSession]:
    with new_session(app) as session:
        rows = list(session.scalars(select(UploadSession)))
        session.expunge_all()
        return rows


def partial_files(app) -> list[Path]:
    folder = Path(app.config["UPLOAD_DIR"]) / "partial"
    return sorted(p for p in folder.glob("*/*") if p.is_file()) if folder.is_dir() else []


# -- the per-course limit ---------------------------------------------------------------------------------------

def test_the_course_limit_setting_is_read_from_pairs_or_json_and_checked():
    typed = Settings.from_config(load_settings({"LTI_TOOL_UPLOAD_MAX_MB_BY_COURSE": "DANS-1=800, FILM-2=1200"}))
    assert dict(typed.upload_max_mb_by_course) == {"DANS-1": 800.0, "FILM-2": 1200.0}
    assert typed.upload_max_bytes_for("FILM-2") == 1200 * 1024 * 1024
    assert typed.upload_max_bytes_for("GIT-AK-1") == typed.upload_max_bytes == 50 * 1024 * 1024  # the default
    assert typed.upload_chunk_bytes == 5 * 1024 * 1024
    parsed = Settings.from_config(load_settings({"LTI_TOOL_UPLOAD_MAX_MB_BY_COURSE": '{"DANS-1": 300}'}))
    assert dict(parsed.upload_max_mb_by_course) == {"DANS-1": 300.0}
    for wrong in ("DANS-1", "DANS-1=lots", "DANS-1=0", "=5", "DANS-1=4096"):
        with pytest.raises(ConfigurationError, match="UPLOAD_MAX_MB_BY_COURSE"):
            load_settings({"LTI_TOOL_UPLOAD_MAX_MB_BY_COURSE": wrong})
    with pytest.raises(ConfigurationError, match="UPLOAD_CHUNK_MB"):
        load_settings({"LTI_TOOL_UPLOAD_CHUNK_MB": "0"})


def test_a_file_over_the_course_limit_is_refused_before_a_byte_is_sent(app, client, launches, content):
    pupil = Pupil(client, launches)
    answer = pupil.start(content["assignment1"])  # 50 KiB, the default limit is 40 KiB
    assert answer.status_code == 413
    refusal = answer.get_json()
    assert refusal["error"] == "upload_too_large" and "0,0 MB" not in refusal["message"]
    assert "högst 0" in refusal["message"] or "at most 0" in refusal["message"]
    assert upload_rows(app) == [] and partial_files(app) == []
    # The page says the course's limit, and tells its script (size checked before sending).
    page = pupil.get(f"/assignment/{content['assignment1']}").get_data(as_text=True)
    assert f'data-max-bytes="{40 * KB}"' in page and f'data-chunk-bytes="{CHUNK}"' in page
    # The plain form keeps the same limit.
    form = client.post(pupil.url(f"/assignment/{content['assignment1']}"),
                       data={"file": (io.BytesIO(VIDEO), "dans.mp4")}, content_type="multipart/form-data")
    assert form.status_code == 400 and 'data-error-code="upload_too_large"' in form.get_data(as_text=True)


def test_a_course_with_a_larger_limit_takes_what_the_default_refuses(app, client, launches, content, video_course):
    pupil = Pupil(client, launches)
    page = pupil.get(f"/assignment/{content['assignment1']}").get_data(as_text=True)
    assert f'data-max-bytes="{100 * KB}"' in page
    answer = pupil.start(content["assignment1"])
    assert answer.status_code == 201, answer.get_data(as_text=True)
    upload = answer.get_json()
    pupil.send_all(upload)
    assert pupil.finish(upload).status_code == 200
    assert the_submission(app).file_size == len(VIDEO)
    # Over the course's own limit: refused the same way.
    bigger = VIDEO + bytes(60 * KB)
    assert pupil.start(content["assignment1"], bigger, name="lång.mp4").status_code == 413
    # The plain form upload follows the course's limit too.
    form = client.post(pupil.url(f"/assignment/{content['assignment1']}"),
                       data={"file": (io.BytesIO(VIDEO), "dans2.mp4")}, content_type="multipart/form-data")
    assert form.status_code == 303


# -- pieces in order, resumed, refused ----------------------------------------------------------------------------

def test_pieces_in_order_become_the_hand_in(app, client, launches, content, video_course):
    pupil = Pupil(client, launches)
    answer = pupil.start(content["assignment1"])
    assert answer.status_code == 201
    upload = answer.get_json()
    assert upload["offset"] == 0 and upload["size"] == len(VIDEO) and upload["chunk"] == CHUNK
    assert "lt=" in upload["url"] and "lt=" in upload["finish"]  # the launch token travels, no cookie needed
    assert pupil.send_all(upload) == [CHUNK, 2 * CHUNK, 3 * CHUNK, len(VIDEO)]
    # The bytes wait under the upload directory, never in the database.
    [partial] = partial_files(app)
    assert partial.read_bytes() == VIDEO
    done = pupil.finish(upload)
    assert done.status_code == 200
    assert done.get_json()["location"].startswith(f"/assignment/{content['assignment1']}?")
    submission = the_submission(app)
    assert (submission.content_type, submission.file_size, submission.file_name, submission.status) == \
        ("video/mp4", len(VIDEO), "dans.mp4", "submitted")
    assert (Path(app.config["UPLOAD_DIR"]) / submission.file_key).read_bytes() == VIDEO
    assert upload_rows(app) == [] and partial_files(app) == []
    # The pupil's page shows it; the file comes back whole.
    page = pupil.get(f"/assignment/{content['assignment1']}?saved=1").get_data(as_text=True)
    assert 'data-hand-in="submitted"' in page and "<video" in page
    assert pupil.get(f"/files/{submission.id}").data == VIDEO


def test_an_interrupted_upload_goes_on_from_where_it_stopped(app, client, launches, content, video_course):
    pupil = Pupil(client, launches)
    upload = pupil.start(content["assignment1"]).get_json()
    assert pupil.piece(upload, VIDEO, 0).get_json() == {"offset": CHUNK}
    # The connection drops half-way through the second piece: the offset does not move.
    cut = client.patch(f"{upload['url']}&offset={CHUNK}", input_stream=io.BytesIO(VIDEO[CHUNK:CHUNK + 5000]),
                       content_type="application/offset+octet-stream",
                       environ_overrides={"CONTENT_LENGTH": str(CHUNK)})
    assert cut.status_code == 400 and cut.get_json()["error"] == "upload_interrupted"
    status = client.get(upload["url"])
    assert status.status_code == 200 and status.get_json()["offset"] == CHUNK
    # The page is reloaded (a new launch, even) and the same file chosen again: the same upload, at its offset.
    again = Pupil(client, launches)
    resumed = again.start(content["assignment1"])
    assert resumed.status_code == 200
    assert resumed.get_json()["upload"] == upload["upload"] and resumed.get_json()["offset"] == CHUNK
    again.send_all(resumed.get_json())
    assert again.finish(resumed.get_json()).status_code == 200
    submission = the_submission(app)
    assert (Path(app.config["UPLOAD_DIR"]) / submission.file_key).read_bytes() == VIDEO  # not a byte too many


def test_another_file_starts_afresh_and_replaces_the_unfinished_one(app, client, launches, content, video_course):
    pupil = Pupil(client, launches)
    first = pupil.start(content["assignment1"]).get_json()
    pupil.piece(first, VIDEO, 0)
    other = pupil.start(content["assignment1"], modified=1700000999000)  # same name and size, another file
    assert other.status_code == 201 and other.get_json()["offset"] == 0
    assert [row.token for row in upload_rows(app)] == [other.get_json()["upload"]]
    assert len(partial_files(app)) == 1
    assert client.get(first["url"]).status_code == 404


def test_a_piece_at_the_wrong_offset_is_refused_with_the_right_one(app, client, launches, content, video_course):
    pupil = Pupil(client, launches)
    upload = pupil.start(content["assignment1"]).get_json()
    skipped = pupil.piece(upload, VIDEO, CHUNK)
    assert skipped.status_code == 409 and skipped.get_json() == {
        "error": "upload_offset", "message": skipped.get_json()["message"], "offset": 0}
    pupil.piece(upload, VIDEO, 0)
    repeated = pupil.piece(upload, VIDEO, 0)  # the same piece again (its answer was lost)
    assert repeated.status_code == 409 and repeated.get_json()["offset"] == CHUNK
    too_big = client.patch(f"{upload['url']}&offset={CHUNK}", data=VIDEO[CHUNK:CHUNK + CHUNK + 1],
                           content_type="application/offset+octet-stream")
    assert too_big.status_code == 413 and too_big.get_json()["error"] == "upload_chunk_too_large"
    early = pupil.finish(upload)
    assert early.status_code == 409 and early.get_json()["error"] == "upload_incomplete"
    assert the_submission(app) is None and upload_rows(app)[0].received == CHUNK


def test_the_wrong_kind_is_refused_when_named_or_when_finished(app, client, launches, content, video_course):
    pupil = Pupil(client, launches)
    named = pupil.start(content["assignment1"], name="kod.zip", kind="application/zip")
    assert named.status_code == 415 and named.get_json()["error"] == "upload_type"
    # Named as a video, but it is not one: refused by content once it has all arrived, and gone.
    upload = pupil.start(content["assignment1"], NOT_A_VIDEO, name="film.mp4").get_json()
    pupil.send_all(upload, NOT_A_VIDEO)
    refused = pupil.finish(upload)
    assert refused.status_code == 400 and refused.get_json()["error"] == "upload_type"
    assert "bild" in refused.get_json()["message"] or "picture" in refused.get_json()["message"]
    assert the_submission(app) is None and upload_rows(app) == [] and partial_files(app) == []
    assert [p for p in Path(app.config["UPLOAD_DIR"]).glob("*/*") if p.is_file()] == []  # no stored file either
    # A text assignment takes no file.
    text = pupil.start(content["assignment2"])
    assert text.status_code == 400 and text.get_json()["error"] == "no_hand_in"


def test_only_the_pupil_touches_their_upload_and_every_request_carries_the_launch(app, client, launches, content,
                                                                                   video_course):
    pupil = Pupil(client, launches)
    upload = pupil.start(content["assignment1"]).get_json()
    other = Pupil(client, launches, user="p2")
    token = upload["upload"]
    for answer in (client.get(other.url(f"/uploads/{token}")),
                   client.patch(other.url(f"/uploads/{token}?offset=0"), data=VIDEO[:CHUNK],
                                content_type="application/offset+octet-stream"),
                   client.post(other.url(f"/uploads/{token}/finish"), json={}),
                   client.delete(other.url(f"/uploads/{token}"))):
        assert answer.status_code == 404 and answer.get_json()["error"] == "upload_gone"
    teacher = Pupil(client, launches, user="t1", role="instructor")
    assert client.get(teacher.url(f"/uploads/{token}")).status_code == 404
    assert teacher.start(content["assignment1"]).status_code == 403
    # Without the launch token: refused as a forgery (a piece), or as an ended session (a question).
    forged = client.patch(f"/uploads/{token}?offset=0", data=VIDEO[:CHUNK],
                          content_type="application/offset+octet-stream")
    assert forged.status_code == 400 and 'data-error-code="csrf_invalid"' in forged.get_data(as_text=True)
    ended = client.get(f"/uploads/{token}")
    assert ended.status_code == 401 and ended.get_json()["error"] == "launch_expired"
    assert upload_rows(app)[0].received == 0


def test_cancelling_removes_the_upload_and_its_bytes(app, client, launches, content, video_course):
    pupil = Pupil(client, launches)
    upload = pupil.start(content["assignment1"]).get_json()
    pupil.piece(upload, VIDEO, 0)
    assert client.delete(upload["url"]).status_code == 204
    assert upload_rows(app) == [] and partial_files(app) == []
    assert client.get(upload["url"]).status_code == 404


def test_a_new_version_after_feedback_through_pieces(app, client, launches, content, video_course):
    pupil = Pupil(client, launches)
    first = pupil.start(content["assignment1"]).get_json()
    pupil.send_all(first)
    assert pupil.finish(first).status_code == 200
    name_round_teacher(app, "t1")
    teacher = Pupil(client, launches, user="t1", role="instructor")
    submission_id = the_submission(app).id
    reviewed = client.post(teacher.url(f"/teach/submission/{submission_id}"),
                           data={"feedback": "Fint!", "score": "8", "version": "1"})
    assert reviewed.status_code == 303
    second = VIDEO[:-10] + b"andra-vers"
    stale = pupil.start(content["assignment1"], second, modified=1700000555000)
    assert stale.status_code == 409 and stale.get_json()["error"] == "already_reviewed"
    upload = pupil.start(content["assignment1"], second, modified=1700000555000, new_version=True).get_json()
    pupil.send_all(upload, second)
    assert pupil.finish(upload, newVersion=True).status_code == 200
    submission = the_submission(app)
    assert (submission.version, submission.status) == (2, "submitted")
    assert (Path(app.config["UPLOAD_DIR"]) / submission.file_key).read_bytes() == second


def test_the_purge_removes_unfinished_uploads_after_their_hours(app, client, launches, content, video_course, runner):
    pupil = Pupil(client, launches)
    old = pupil.start(content["assignment1"]).get_json()
    pupil.piece(old, VIDEO, 0)
    fresh = Pupil(client, launches, user="p2").start(content["assignment1"]).get_json()
    with new_session(app) as session:
        row = session.scalar(select(UploadSession).where(UploadSession.token == old["upload"]))
        row.updated_at = clock.now() - timedelta(hours=49)
        session.commit()
    stray = Path(app.config["UPLOAD_DIR"]) / "partial" / "zz" / ("zz" + "s" * 30)
    stray.parent.mkdir(parents=True, exist_ok=True)
    stray.write_bytes(b"left behind by a crash")
    import os
    os.utime(stray, (0, 0))
    dry = runner.invoke(args=["privacy", "purge", "--dry-run"])
    assert "unfinished uploads (no piece for 48 hours): 2" in dry.output and len(partial_files(app)) == 3
    result = runner.invoke(args=["privacy", "purge"])
    assert result.exit_code == 0, result.output
    assert [row.token for row in upload_rows(app)] == [fresh["upload"]]
    assert [p.name for p in partial_files(app)] == [fresh["upload"]]


# -- files served with ranges -------------------------------------------------------------------------------------

@pytest.fixture
def handed_in(app, client, launches, content, video_course):
    pupil = Pupil(client, launches)
    upload = pupil.start(content["assignment1"]).get_json()
    pupil.send_all(upload)
    pupil.finish(upload)
    return pupil, the_submission(app)


def access_entries(app) -> int:
    with new_session(app) as session:
        return session.scalar(select(func.count()).select_from(AuditEntry)
                              .where(AuditEntry.action == privacy.ACCESS_FILE)) or 0


def test_files_answer_ranges_for_the_pupil_and_the_teacher(app, client, launches, handed_in):
    pupil, submission = handed_in
    whole = pupil.get(f"/files/{submission.id}")
    assert whole.status_code == 200 and whole.headers["Accept-Ranges"] == "bytes" and whole.data == VIDEO
    part = pupil.get(f"/files/{submission.id}", headers={"Range": "bytes=100-199"})
    assert part.status_code == 206 and part.data == VIDEO[100:200]
    assert part.headers["Content-Range"] == f"bytes 100-199/{len(VIDEO)}"
    # The security headers and the tool's name stay on a part.
    assert part.headers["Content-Type"] == "video/mp4" and part.headers["X-Content-Type-Options"] == "nosniff"
    assert part.headers["Content-Disposition"].startswith('attachment; filename="') and "sandbox" in \
        part.headers["Content-Security-Policy"] and part.headers["Cache-Control"] == "private, no-store"
    tail = pupil.get(f"/files/{submission.id}", headers={"Range": "bytes=-10"})
    assert tail.status_code == 206 and tail.data == VIDEO[-10:]
    beyond = pupil.get(f"/files/{submission.id}", headers={"Range": f"bytes={len(VIDEO) + 10}-"})
    assert beyond.status_code == 416 and beyond.headers["Content-Range"] == f"bytes */{len(VIDEO)}"
    assert beyond.headers["X-Content-Type-Options"] == "nosniff" and beyond.data == b""

    # The round's teacher: a player for the video on the review page, and seeking in it.
    name_round_teacher(app, "t1")
    teacher = Pupil(client, launches, user="t1", role="instructor")
    review = teacher.get(f"/teach/submission/{submission.id}").get_data(as_text=True)
    assert re.search(r'<video controls preload="metadata" src="/teach/files/\d+\?lt=', review)
    before = access_entries(app)
    first = teacher.get(f"/teach/files/{submission.id}", headers={"Range": "bytes=0-"})
    assert first.status_code == 206 and first.data == VIDEO and first.headers["Accept-Ranges"] == "bytes"
    seek = teacher.get(f"/teach/files/{submission.id}", headers={"Range": "bytes=40000-40099"})
    assert seek.status_code == 206 and seek.data == VIDEO[40000:40100]
    assert seek.headers["Content-Range"] == f"bytes 40000-40099/{len(VIDEO)}"
    assert teacher.get(f"/teach/files/{submission.id}", headers={"Range": "bytes=999999-"}).status_code == 416
    # Opening the file is in the audit log once; a seek in it is not a new opening.
    assert access_entries(app) == before + 1


def test_the_showcase_file_answers_ranges(app, client, launches, handed_in):
    from lti_tool.models import CourseRound

    pupil, submission = handed_in
    name_round_teacher(app, "t1")
    teacher = Pupil(client, launches, user="t1", role="instructor")
    with new_session(app) as session:
        session.get(CourseRound, submission.round_pk).showcase_enabled = True
        session.commit()
    assert client.post(teacher.url(f"/teach/submission/{submission.id}"),
                       data={"feedback": "Fint!", "score": "8", "version": "1"}).status_code == 303
    assert client.post(pupil.url(f"/assignment/{submission.assignment_id}/share"),
                       data={"caption": "Min dans"}).status_code == 303
    with new_session(app) as session:
        from lti_tool.models import ShowcaseItem

        item = session.scalars(select(ShowcaseItem)).one()
        item.status = "approved"
        session.commit()
        item_id = item.id
    part = pupil.get(f"/showcase/{item_id}/file", headers={"Range": "bytes=0-9"})
    assert part.status_code == 206 and part.data == VIDEO[:10]
    assert part.headers["Content-Disposition"].startswith('attachment; filename="showcase-')
    assert pupil.get(f"/showcase/{item_id}/file", headers={"Range": "bytes=99999999-"}).status_code == 416


def test_json_answers_are_not_cached(app, client, launches, content, video_course):
    pupil = Pupil(client, launches)
    answer = pupil.start(content["assignment1"])
    assert answer.headers["Cache-Control"] == "no-store" and json.loads(answer.data)["upload"]


def test_a_piece_racing_a_cancel_or_its_own_twin_moves_nothing(app, client, launches, content, video_course):
    """Service level: while a piece is being written, the upload is cancelled (or the same piece, sent twice,
    lands first the other way): the piece is refused, the offset never moves twice."""
    from sqlalchemy import delete, update

    from lti_tool.domain.errors import DomainError
    from lti_tool.models import Launch
    from lti_tool.services import upload_sessions
    from lti_tool.uploads import UploadStore

    pupil = Pupil(client, launches)
    upload = pupil.start(content["assignment1"]).get_json()
    store = UploadStore(app.config["UPLOAD_DIR"], 100 * KB, ("video/*",))
    rules = upload_sessions.UploadRules(max_bytes=100 * KB, chunk_bytes=CHUNK, allowed=("video/*",))

    class Meanwhile(io.BytesIO):
        def __init__(self, data, act):
            super().__init__(data)
            self.act = act

        def read(self, size=-1):
            if self.act:
                self.act()
                self.act = None
            return super().read(size)

    with app.app_context(), new_session(app) as session:
        launch = session.scalars(select(Launch).where(Launch.sub == "p1")).first()
        twin = Meanwhile(VIDEO[:CHUNK], lambda: session.execute(
            update(UploadSession).values(received=CHUNK).execution_options(synchronize_session=False)))
        with pytest.raises(upload_sessions.UploadOffsetError) as moved:
            upload_sessions.write_chunk(session, launch, upload["upload"], offset=0, length=CHUNK, stream=twin,
                                        rules=rules, store=store)
        assert moved.value.offset == CHUNK
        session.rollback()
        cancelled = Meanwhile(VIDEO[:CHUNK], lambda: session.execute(
            delete(UploadSession).execution_options(synchronize_session=False)))
        with pytest.raises(DomainError) as gone:
            upload_sessions.write_chunk(session, launch, upload["upload"], offset=0, length=CHUNK,
                                        stream=cancelled, rules=rules, store=store)
        assert gone.value.code == "upload_gone" and gone.value.status == 404
