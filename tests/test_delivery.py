"""Course delivery through the pages: a pupil's way through a course, hand-ins, a teacher's review."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from sqlalchemy import func, select

from lti_tool.db import new_session
from lti_tool.models import LessonProgress, Review, Submission
from lti_tool.services import seats
from lti_tool.uploads import sniff

from . import sample_files
from .catalog_factory import add_content, add_course
from .conftest import error_code, main_attrs, name_round_teacher

PNG = sample_files.PNG  # well-formed: the sniffer checks a file's header from start to end
MP3 = sample_files.MP3_ID3


@pytest.fixture
def content(app, demo):
    with new_session(app) as session:
        add_course(session)
        made = add_content(session)
        seats.set_order(session, "SE-1490", "GIT-AK-1", "now", 10)
        seats.set_order(session, "NO-0301", "GIT-AK-1", "now", 10)
        session.commit()
    return made


class Person:
    """A browser after a launch: follows links with the launch token, posts forms."""

    def __init__(self, client, launches, user, role="learner", municipality="SE-1490", context="sandbox-course-1",
                 locale="sv-SE", overrides=None):
        spec = launches.spec(municipality, user=user, role=role, course="GIT-AK-1", context_id=context, locale=locale)
        response = launches.launch(spec, overrides=overrides)
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


def test_pupil_course_page_lists_modules_lessons_and_assignments(client, launches, content):
    pupil = Person(client, launches, "p1")
    page = client.get(pupil.home)
    body = page.get_data(as_text=True)
    assert page.status_code == 200 and main_attrs(page)["seat"] == "now"
    assert "Modul 1" in body and "Lektion 1.1" in body and "Uppgift 2" in body
    assert f"/lesson/{content['lesson1']}?lt=" in body


def test_lesson_done_and_next_previous(app, client, launches, content):
    pupil = Person(client, launches, "p1")
    page = pupil.get(f"/lesson/{content['lesson1']}")
    body = page.get_data(as_text=True)
    assert "<strong>lugnt</strong>" in body and "https://video.example/v1" in body
    assert f"/assignment/{content['assignment1']}?lt=" in body  # next: the module's assignment
    assert pupil.post(f"/lesson/{content['lesson1']}", {}).status_code == 303
    assert pupil.post(f"/lesson/{content['lesson1']}", {}).status_code == 303  # twice: once recorded
    with new_session(app) as session:
        assert session.scalar(select(func.count()).select_from(LessonProgress)) == 1
    assert "✓" in client.get(pupil.home).get_data(as_text=True)
    lesson2 = pupil.get(f"/lesson/{content['lesson2']}").get_data(as_text=True)
    assert f"/assignment/{content['assignment1']}?lt=" in lesson2 and 'rel="prev"' in lesson2


def test_text_hand_in_review_and_feedback(app, client, launches, content):
    pupil = Person(client, launches, "p1")
    teacher = Person(client, launches, "t1", role="instructor")
    name_round_teacher(app, "t1")
    path = f"/assignment/{content['assignment2']}"
    empty = pupil.post(path, {"text": "  "})
    assert empty.status_code == 400 and error_code(empty) == "hand_in_empty"
    assert pupil.post(path, {"text": "Första försöket"}).status_code == 303
    assert pupil.post(path, {"text": "Andra försöket"}).status_code == 303  # again, until reviewed
    page = pupil.get(path)
    assert main_attrs(page)["hand-in"] == "submitted" and "Andra försöket" in page.get_data(as_text=True)

    dashboard = client.get(teacher.home, follow_redirects=True)
    assert main_attrs(dashboard)["pupils"] == "1" and main_attrs(dashboard)["role"] == "instructor"
    queue = teacher.get("/teach/queue")
    assert main_attrs(queue)["queue"] == "1"
    submission_id = re.search(r"/teach/submission/(\d+)", queue.get_data(as_text=True)).group(1)
    review_page = teacher.get(f"/teach/submission/{submission_id}")
    assert "Andra försöket" in review_page.get_data(as_text=True)
    bad = teacher.post(f"/teach/submission/{submission_id}", {"feedback": "Bra", "score": "11"})
    assert bad.status_code == 400 and error_code(bad) == "score_invalid"
    assert teacher.post(f"/teach/submission/{submission_id}", {"feedback": "", "score": "5"}).status_code == 400
    saved = teacher.post(f"/teach/submission/{submission_id}", {"feedback": "Fint jobbat!", "score": "8,5"})
    assert saved.status_code == 303
    assert main_attrs(teacher.get("/teach/queue"))["queue"] == "0"

    feedback = pupil.get(path)
    body = feedback.get_data(as_text=True)
    assert main_attrs(feedback)["hand-in"] == "reviewed" and "Fint jobbat!" in body and "8,5" in body
    refused = pupil.post(path, {"text": "Tredje"})
    assert refused.status_code == 400 and error_code(refused) == "already_reviewed"
    with new_session(app) as session:
        review = session.scalars(select(Review)).one()
        assert (str(review.score), str(review.score_max), review.sub, review.reviewer_sub) == \
            ("8.50", "10.00", "p1", "t1")
        assert review.created_at.tzinfo is not None


def test_file_hand_in_checked_by_content_and_served_only_to_pupil_and_teacher(app, client, launches, content):
    pupil = Person(client, launches, "p1")
    other = Person(client, launches, "p2")
    teacher = Person(client, launches, "t1", role="instructor")
    stranger = Person(client, launches, "t2", role="instructor", context="another-course")
    path = f"/assignment/{content['assignment1']}"
    fake = pupil.post(path, {"file": (io.BytesIO(b"MZ\x90\x00 not a picture"), "photo.png")},
                      content_type="multipart/form-data")
    assert fake.status_code == 400 and error_code(fake) == "upload_type"
    assert pupil.post(path, {"file": (io.BytesIO(PNG), "övning.png")},
                      content_type="multipart/form-data").status_code == 303
    with new_session(app) as session:
        submission = session.scalars(select(Submission)).one()
        assert submission.content_type == "image/png" and submission.file_name == "övning.png"
        first_key = submission.file_key
    assert pupil.post(path, {"file": (io.BytesIO(MP3), "take2.mp3")},
                      content_type="multipart/form-data").status_code == 303
    with new_session(app) as session:
        submission = session.scalars(select(Submission)).one()
        assert submission.content_type == "audio/mpeg" and submission.attempts == 2
    assert not (Path(app.config["UPLOAD_DIR"]) / first_key).exists()  # the replaced file is gone
    assert (Path(app.config["UPLOAD_DIR"]) / submission.file_key).read_bytes() == MP3
    url = f"/files/{submission.id}"
    own = pupil.get(url)
    assert own.status_code == 200 and own.data == MP3 and own.headers["Cache-Control"] == "private, no-store"
    own.close()
    seen = teacher.get(url)
    assert seen.status_code == 200
    seen.close()
    assert other.get(url).status_code == 403
    assert stranger.get(url).status_code == 403
    assert client.get(url).status_code == 401  # no launch token


def test_upload_size_limit(app, client, launches, content):
    app.config["UPLOAD_MAX_MB"] = 0.0001  # about 100 bytes
    pupil = Person(client, launches, "p1")
    response = pupil.post(f"/assignment/{content['assignment1']}",
                          {"file": (io.BytesIO(PNG + b"\x00" * 500), "big.png")},
                          content_type="multipart/form-data")
    assert response.status_code == 400 and error_code(response) == "upload_too_large"
    with new_session(app) as session:
        assert session.scalar(select(func.count()).select_from(Submission)) == 0


def test_queue_is_oldest_first_and_scoped_to_the_teachers_course(app, client, launches, content):
    first = Person(client, launches, "p1")
    second = Person(client, launches, "p2")
    elsewhere = Person(client, launches, "p3", context="another-course")
    # Another municipality's deployment of the same platform, even with the same context id: not this classroom
    # (tests/test_access.py has every other way a launch can differ).
    other_deployment = Person(client, launches, "p4", municipality="NO-0301", locale="nb-NO")
    second.post(f"/assignment/{content['assignment2']}", {"text": "B"})
    first.post(f"/assignment/{content['assignment2']}", {"text": "A"})
    elsewhere.post(f"/assignment/{content['assignment2']}", {"text": "C"})
    other_deployment.post(f"/assignment/{content['assignment2']}", {"text": "D"})
    teacher = Person(client, launches, "t1", role="instructor")
    queue = teacher.get("/teach/queue").get_data(as_text=True)
    assert main_attrs(teacher.get("/teach/queue"))["queue"] == "2"
    from lti_tool.services.delivery import pupil_label

    assert queue.index(pupil_label("p2")) < queue.index(pupil_label("p1"))
    assert pupil_label("p3") not in queue and pupil_label("p4") not in queue
    dashboard = teacher.get("/teach/")
    assert main_attrs(dashboard)["pupils"] == "2" and "NO-0301" not in dashboard.get_data(as_text=True)


def test_pupils_cannot_open_teacher_pages_or_other_courses(client, launches, content):
    pupil = Person(client, launches, "p1")
    assert pupil.get("/teach/queue").status_code == 403
    assert pupil.get("/lesson/99999").status_code == 404


def test_nb_pupil_sees_norwegian_interface_and_marked_swedish_content(client, launches, content):
    pupil = Person(client, launches, "p2", municipality="NO-0301", locale="nb-NO")
    body = client.get(pupil.home).get_data(as_text=True)
    assert '<html lang="nb">' in body
    assert '<h1 lang="sv">Kurs GIT-AK-1</h1>' not in body  # the title exists in nb
    assert "Kurs GIT-AK-1 (nb)" in body
    assert '<span lang="sv">Lektion 1.1</span>' in body  # lesson titles only in sv/en: marked as Swedish


@pytest.mark.parametrize("data, kind", [(b"%PDF-1.7\n", "application/pdf"), (PNG, "image/png"),
                                        (sample_files.JPEG, "image/jpeg"), (sample_files.WAV, "audio/wav"),
                                        (sample_files.MP4, "video/mp4"), (sample_files.OGG, "audio/ogg"),
                                        (sample_files.WEBM, "video/webm"), (b"<script>", None), (b"", None),
                                        # signatures alone are not enough (tests/test_uploads.py has the rest)
                                        (b"%PDF-1.7", None), (b"\xff\xd8\xff\xe0", None), (b"OggS\x00", None),
                                        (b"\x00\x00\x00\x18ftypmp42", None), (b"\x1aE\xdf\xa3", None)])
def test_sniff(data, kind):
    assert sniff(data) == kind


def test_course_pages_follow_a_catalog_change(app, client, launches, content):
    """Outlines are kept between requests only while the course row says its content is unchanged: a
    sync that changes the course shows at once, on every worker."""
    from datetime import datetime, timedelta, timezone

    from lti_tool.models import Course, Lesson

    pupil = Person(client, launches, "p1")
    assert "Lektion 1.1" in client.get(pupil.home).get_data(as_text=True)
    with new_session(app) as session:
        lesson = session.get(Lesson, content["lesson1"])
        lesson.title = {"sv": "Stämma gitarren"}
        course = session.get(Course, "GIT-AK-1")
        course.content_hash = "y" * 64  # what the catalog sync writes with new content
        course.updated_at = datetime.now(timezone.utc) + timedelta(seconds=1)
        session.commit()
    body = client.get(pupil.home).get_data(as_text=True)
    assert "Stämma gitarren" in body and "Lektion 1.1" not in body
    page = pupil.get(f"/assignment/{content['assignment1']}").get_data(as_text=True)
    assert "Stämma gitarren" in page  # the previous step, by its new title


def test_a_lesson_shown_in_another_language_than_the_pupils_says_so(client, launches, content):
    """The feed lacks the lesson's text in nynorsk: the pupil reading nynorsk is told it is shown in Swedish; a
    Swedish pupil sees no mark."""
    nynorsk = Person(client, launches, "p-nn", municipality="NO-0301", locale="nn-NO")
    body = nynorsk.get(f"/lesson/{content['lesson1']}").get_data(as_text=True)
    assert 'data-fallback="sv"' in body and 'lang="sv"' in body
    swedish = Person(client, launches, "p-sv")
    assert "data-fallback" not in swedish.get(f"/lesson/{content['lesson1']}").get_data(as_text=True)
