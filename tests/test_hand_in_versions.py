"""Handing in again after feedback: the reviewed version is kept (text or file, and its feedback) and shown as
history to the pupil and the teacher; the new version waits for review again, and the gradebook is told so;
only the current version is reviewed; export, erasure and the purge cover the earlier versions. And the page's
keys for drafts kept in the browser (tests/test_drafts_browser.py has the browser's side)."""

from __future__ import annotations

import io
import json
import re
from datetime import timedelta
from pathlib import Path

from sqlalchemy import func, select

from lti_tool.db import new_session
from lti_tool.domain.claims import CLAIM_AGS, SCOPE_LINEITEM, SCOPE_SCORE
from lti_tool.models import (OutboxItem, Review, ShowcaseItem, Submission, SubmissionVersion)
from lti_tool.services import privacy

from . import sample_files
from .conftest import error_code, main_attrs, name_round_teacher

LINEITEMS = "https://lms.example/api/lti/courses/7/line_items"


class Person:
    """A browser after a launch (with the platform's grade service): follows links with the launch token."""

    def __init__(self, client, launches, user, role="learner"):
        spec = launches.spec("SE-1490", user=user, role=role, course="GIT-AK-1")
        ags = {"scope": [SCOPE_LINEITEM, SCOPE_SCORE], "lineitems": LINEITEMS}
        response = launches.launch(spec, overrides={CLAIM_AGS: ags})
        assert response.status_code == 303, response.get_data(as_text=True)
        self.client = client
        self.home = response.headers["Location"]
        self.token = re.search(r"lt=([^&]+)", self.home).group(1)

    def get(self, path, **kwargs):
        sep = "&" if "?" in path else "?"
        return self.client.get(f"{path}{sep}lt={self.token}", **kwargs)

    def post(self, path, data, **kwargs):
        sep = "&" if "?" in path else "?"
        return self.client.post(f"{path}{sep}lt={self.token}", data=data, **kwargs)


def the_submission(app) -> Submission:
    with new_session(app) as session:
        found = session.scalars(select(Submission)).one()
        session.expunge(found)
        return found


def grade_rows(app) -> list[tuple[str, str, float | None]]:
    with new_session(app) as session:
        return [(i.status, i.payload["gradingProgress"], i.payload.get("scoreGiven"))
                for i in session.scalars(select(OutboxItem).order_by(OutboxItem.id))]


def review_form(page) -> dict[str, str]:
    body = page.get_data(as_text=True)
    return {"version": re.search(r'name="version" value="(\d+)"', body).group(1)}


def test_hand_in_again_after_feedback_keeps_the_reviewed_version(app, client, launches, content):
    pupil = Person(client, launches, "p1")
    teacher = Person(client, launches, "t1", role="instructor")
    name_round_teacher(app, "t1")
    path = f"/assignment/{content['assignment2']}"
    assert pupil.post(path, {"text": "Första versionen"}).status_code == 303
    submission_id = the_submission(app).id
    review = f"/teach/submission/{submission_id}"
    first = teacher.get(review)
    assert main_attrs(first)["version"] == "1" and review_form(first) == {"version": "1"}
    assert teacher.post(review, {"feedback": "Öva på ackorden.", "score": "6", "version": "1"}).status_code == 303
    assert grade_rows(app) == [("superseded", "PendingManual", None), ("pending", "FullyGraded", 6.0)]

    # After feedback the pupil is offered a new version (the earlier text to start from).
    page = pupil.get(path)
    body = page.get_data(as_text=True)
    assert main_attrs(page)["hand-in"] == "reviewed" and "Öva på ackorden." in body
    assert 'name="new_version" value="1"' in body and "Första versionen</textarea>" in body
    # A form from before the feedback (no new_version) is refused, with what was typed kept.
    stale = pupil.post(path, {"text": "Från en gammal flik"})
    assert stale.status_code == 400 and error_code(stale) == "already_reviewed"
    assert "Från en gammal flik</textarea>" in stale.get_data(as_text=True)
    assert pupil.post(path, {"text": "Andra versionen", "new_version": "1"}).status_code == 303

    submission = the_submission(app)
    assert (submission.status, submission.version, submission.attempts, submission.text) == \
        ("submitted", 2, 2, "Andra versionen")
    with new_session(app) as session:
        kept = session.scalars(select(SubmissionVersion)).one()
        assert (kept.submission_id, kept.number, kept.text, kept.file_key) == \
            (submission.id, 1, "Första versionen", None)
        assert kept.submitted_at < submission.submitted_at
        assert [r.version for r in session.scalars(select(Review))] == [1]
    # Waiting for review again, and the gradebook says "needs grading" again, as after a first hand-in (the
    # unsent score of the first version is superseded by it).
    queue = teacher.get("/teach/queue")
    assert main_attrs(queue)["queue"] == "1" and f"/teach/submission/{submission_id}" in queue.get_data(as_text=True)
    assert grade_rows(app) == [("superseded", "PendingManual", None), ("superseded", "FullyGraded", 6.0),
                               ("pending", "PendingManual", None)]

    # The pupil sees the new version waiting, and the first one with its feedback as history.
    page = pupil.get(path)
    body = page.get_data(as_text=True)
    assert main_attrs(page)["hand-in"] == "submitted" and main_attrs(page)["version"] == "2"
    history = body[body.index('id="versions"'):]
    assert 'data-version="1"' in history and "Första versionen" in history and "Öva på ackorden." in history
    assert 'name="new_version"' not in body  # until the new version is reviewed: hand in again (replace)
    assert pupil.post(path, {"text": "Andra versionen, rättad"}).status_code == 303
    assert (the_submission(app).version, the_submission(app).attempts) == (2, 3)

    # The teacher sees version 2, with the first version and its feedback and score below, newest first.
    page = teacher.get(review)
    body = page.get_data(as_text=True)
    assert main_attrs(page)["version"] == "2" and review_form(page) == {"version": "2"}
    assert "Andra versionen, rättad" in body and 'id="feedback" name="feedback" rows="8" required></textarea>' in body
    history = body[body.index('id="versions"'):]
    assert "Första versionen" in history and "Öva på ackorden." in history and "6 av 10" in history

    # A review of the first version (a page opened before the new version came) is refused; the current one
    # is reviewed.
    old = teacher.post(review, {"feedback": "Bra!", "score": "7", "version": "1"})
    assert old.status_code == 400 and error_code(old) == "conflict"
    assert main_attrs(old)["version"] == "2" and "Bra!</textarea>" in old.get_data(as_text=True)
    assert teacher.post(review, {"feedback": "Mycket bättre!", "score": "9", "version": "2"}).status_code == 303
    with new_session(app) as session:
        assert [(r.version, r.feedback) for r in session.scalars(select(Review).order_by(Review.id))] == \
            [(1, "Öva på ackorden."), (2, "Mycket bättre!")]
    assert grade_rows(app)[-1] == ("pending", "FullyGraded", 9.0)
    page = pupil.get(path)
    body = page.get_data(as_text=True)
    assert main_attrs(page)["hand-in"] == "reviewed"
    current, history = body.split('id="versions"', 1)
    assert "Mycket bättre!" in current and "Öva på ackorden." not in current
    assert "Öva på ackorden." in history and "Mycket bättre!" not in history

    # The pupil's page for the teacher: the current version's feedback, the earlier one folded away.
    pupil_page = teacher.get(f"/teach/pupil/{pupil_label('p1')}").get_data(as_text=True)
    assert 'data-versions="1"' in pupil_page and "Version 2" in pupil_page


def pupil_label(sub):
    from lti_tool.services.delivery import pupil_label as label

    return label(sub)


def test_file_versions_stay_stored_and_are_served_to_pupil_and_teacher(app, client, launches, content):
    pupil = Person(client, launches, "p1")
    other = Person(client, launches, "p2")
    teacher = Person(client, launches, "t1", role="instructor")
    name_round_teacher(app, "t1")
    path = f"/assignment/{content['assignment1']}"
    upload = Path(app.config["UPLOAD_DIR"])

    def hand_in(data, name, **extra):
        return pupil.post(path, {"file": (io.BytesIO(data), name), **extra}, content_type="multipart/form-data")

    assert hand_in(sample_files.PNG, "skiss.png").status_code == 303
    first = the_submission(app)
    teacher.post(f"/teach/submission/{first.id}", {"feedback": "Fin skiss.", "score": "5", "version": "1"})
    assert hand_in(sample_files.MP3_ID3, "inspelning.mp3", new_version="1").status_code == 303
    second = the_submission(app)
    assert second.version == 2 and second.file_key != first.file_key
    assert (upload / first.file_key).read_bytes() == sample_files.PNG  # the reviewed version's file is kept
    # Replacing version 2 before its review removes version 2's file only.
    assert hand_in(sample_files.WAV, "inspelning.wav").status_code == 303
    third = the_submission(app)
    assert not (upload / second.file_key).exists() and (upload / first.file_key).exists()
    with new_session(app) as session:
        assert privacy.referenced_file_keys(session) == {first.file_key, third.file_key}

    url = f"/files/{first.id}/versions/1"
    own = pupil.get(url)
    assert own.status_code == 200 and own.data == sample_files.PNG and own.mimetype == "image/png"
    assert f"{pupil_label('p1')}-GIT-AK-1-m1-a1-v1.png" in own.headers["Content-Disposition"]
    own.close()
    assert f"/files/{first.id}/versions/1?lt=" in pupil.get(path).get_data(as_text=True)
    seen = teacher.get(f"/teach/files/{first.id}/versions/1")
    assert seen.status_code == 200 and seen.data == sample_files.PNG
    seen.close()
    assert f"/teach/files/{first.id}/versions/1?lt=" in teacher.get(f"/teach/submission/{first.id}").get_data(
        as_text=True)
    assert other.get(url).status_code == 403
    assert pupil.get(f"/files/{first.id}/versions/2").status_code == 404  # version 2 is the current one
    assert client.get(url).status_code == 401


def test_a_new_version_leaves_the_showcase(app, client, launches, content):
    pupil = Person(client, launches, "p1")
    teacher = Person(client, launches, "t1", role="instructor")
    name_round_teacher(app, "t1")
    path = f"/assignment/{content['assignment2']}"
    pupil.post(path, {"text": "Klar"})
    submission = the_submission(app)
    teacher.post(f"/teach/submission/{submission.id}", {"feedback": "Fint", "score": "8", "version": "1"})
    with new_session(app) as session:
        session.add(ShowcaseItem(round_pk=submission.round_pk, submission_id=submission.id, status="approved"))
        session.commit()
    # the launch is Swedish
    assert "tar bort arbetet från omgångens utställning" in pupil.get(path).get_data(as_text=True)
    assert pupil.post(path, {"text": "Ny", "new_version": "1"}).status_code == 303
    with new_session(app) as session:
        item = session.scalars(select(ShowcaseItem)).one()
        assert item.status == "withdrawn" and item.withdrawn_at is not None


def two_versions(app, client, launches, content) -> Submission:
    """p1's file hand-in reviewed, then a second version handed in and reviewed."""
    pupil = Person(client, launches, "p1")
    teacher = Person(client, launches, "t1", role="instructor")
    name_round_teacher(app, "t1")
    path = f"/assignment/{content['assignment1']}"
    pupil.post(path, {"file": (io.BytesIO(sample_files.PNG), "a.png")}, content_type="multipart/form-data")
    submission_id = the_submission(app).id
    teacher.post(f"/teach/submission/{submission_id}", {"feedback": "Första", "score": "4", "version": "1"})
    pupil.post(path, {"file": (io.BytesIO(sample_files.MP3_ID3), "b.mp3"), "new_version": "1"},
               content_type="multipart/form-data")
    teacher.post(f"/teach/submission/{submission_id}", {"feedback": "Andra", "score": "9", "version": "2"})
    return the_submission(app)


def test_export_holds_every_version_with_its_feedback_and_file(app, client, launches, content, runner, tmp_path):
    current = two_versions(app, client, launches, content)
    files = tmp_path / "files"
    result = runner.invoke(args=["privacy", "export", "--pupil", "p1", "--output", str(tmp_path / "p1.json"),
                                 "--files-dir", str(files)])
    assert result.exit_code == 0, result.output
    document = json.loads((tmp_path / "p1.json").read_text(encoding="utf-8"))
    (hand_in,) = document["hand_ins"]
    assert hand_in["version"] == 2 and [r["feedback"] for r in hand_in["reviews"]] == ["Andra"]
    (earlier,) = hand_in["earlier_versions"]
    assert earlier["version"] == 1 and [r["feedback"] for r in earlier["reviews"]] == ["Första"]
    assert earlier["file"]["name"] == "a.png" and earlier["file"]["copied_as"] == f"{current.id}-v1.png"
    assert hand_in["file"]["copied_as"] == f"{current.id}.mp3"
    assert (files / f"{current.id}-v1.png").read_bytes() == sample_files.PNG
    assert (files / f"{current.id}.mp3").read_bytes() == sample_files.MP3_ID3


def test_erasure_removes_every_version_and_its_file(app, client, launches, content, runner):
    current = two_versions(app, client, launches, content)
    upload = Path(app.config["UPLOAD_DIR"])
    with new_session(app) as session:
        earlier_key = session.scalars(select(SubmissionVersion.file_key)).one()
        from lti_tool.services.privacy import Pupil

        plan = privacy.count_pupil_data(session, Pupil(current.registration_id, "p1"))
        assert (plan.counts["submission_versions"], plan.counts["files"], plan.counts["reviews"]) == (1, 2, 2)
    result = runner.invoke(args=["privacy", "erase", "--pupil", "p1", "--yes"])
    assert result.exit_code == 0, result.output
    assert "2 file(s) removed" in result.output
    with new_session(app) as session:
        for model in (Submission, SubmissionVersion, Review):
            assert session.scalar(select(func.count()).select_from(model)) == 0
    assert not (upload / earlier_key).exists() and not (upload / current.file_key).exists()


def test_purge_removes_versions_past_retention_and_keeps_files_still_named(app, client, launches, content, runner):
    from lti_tool import clock

    current = two_versions(app, client, launches, content)
    upload = Path(app.config["UPLOAD_DIR"])
    with new_session(app) as session:
        earlier_key = session.scalars(select(SubmissionVersion.file_key)).one()
    # Nothing is old yet: every file is named by a row, none is a stray.
    assert runner.invoke(args=["privacy", "purge"]).exit_code == 0
    assert (upload / earlier_key).exists() and (upload / current.file_key).exists()
    # The first version (and its review) ages past the retention period; the current version does not.
    with new_session(app) as session:
        version = session.scalars(select(SubmissionVersion)).one()
        version.submitted_at = clock.now() - timedelta(days=400)
        session.commit()
    result = runner.invoke(args=["privacy", "purge"])
    assert result.exit_code == 0, result.output
    with new_session(app) as session:
        assert session.scalar(select(func.count()).select_from(SubmissionVersion)) == 0
        assert [(r.version, r.feedback) for r in session.scalars(select(Review))] == [(2, "Andra")]
        assert session.scalars(select(Submission)).one().version == 2
    assert not (upload / earlier_key).exists() and (upload / current.file_key).exists()


def test_the_page_keys_drafts_by_a_hash_never_the_sub_and_clears_them_after_a_hand_in(app, client, launches,
                                                                                    content):
    pupil = Person(client, launches, "elev-hemlig")
    path = f"/assignment/{content['assignment2']}"
    body = pupil.get(path).get_data(as_text=True)
    keys = re.findall(r'data-draft-key="([^"]+)"', body)
    assert keys and keys[0].endswith(f".{content['assignment2']}.hand-in")
    assert "elev-hemlig" not in body and "data-draft-clear" not in body
    assert re.search(r'<script nonce="[^"]+" src="/static/drafts.js">', body)
    again = Person(client, launches, "elev-hemlig")  # a fresh launch: the same key
    assert re.findall(r'data-draft-key="([^"]+)"', again.get(path).get_data(as_text=True))[0] == keys[0]
    other = Person(client, launches, "elev-annan")
    assert re.findall(r'data-draft-key="([^"]+)"', other.get(path).get_data(as_text=True))[0] != keys[0]
    saved = pupil.post(path, {"text": "Klart"}, follow_redirects=True)
    assert re.search(r'data-draft-key="[^"]+\.hand-in" data-draft-clear="1"', saved.get_data(as_text=True))
