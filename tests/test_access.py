"""Who may see whose work (services/access.py), through the pages with real launches: a teacher sees the work
of pupils whose launch has the same registration, deployment, context, resource link and round as the
teacher's, every one of them present; a missing claim matches nothing. Every teacher page, the review form
(GET and POST) and the file download, for every way a launch can differ or lack a claim."""

from __future__ import annotations

import dataclasses
import io
import json
import re

import pytest
import responses
from sqlalchemy import func, select, update

from lti_tool.db import new_session
from lti_tool.domain.claims import CLAIM_CONTEXT
from lti_tool.models import Launch, Review, Submission
from lti_tool.sandbox import SHARED_DEPLOYMENT, SandboxPlatform
from lti_tool.services import access, seats
from lti_tool.services.delivery import pupil_label

from .catalog_factory import add_content, add_course
from .conftest import LaunchActions, error_code, main_attrs, name_round_teacher
from .sample_files import PNG
from .test_delivery import Person

SECRET_TEXT = "Mitt hemliga svar"
OTHER_PLATFORM = "http://localhost:5001"  # another issuer: another registration, same context and link ids


@pytest.fixture
def content(app, demo):
    with new_session(app) as session:
        add_course(session)
        made = add_content(session)
        for municipality in ("SE-1490", "SE-1440", "NO-0301"):
            seats.set_order(session, municipality, "GIT-AK-1", "now", 10)
        session.commit()
    return made


@pytest.fixture
def other_platform(app, demo, platform_http, client, tmp_path):
    """A second platform (its own issuer, hence registration) whose courses reuse the sandbox's ids."""
    other = SandboxPlatform(OTHER_PLATFORM, tmp_path / "other-platform", app.config["SECRET_KEY"],
                            tool_base_url=app.config["BASE_URL"])
    with new_session(app) as session:
        other.ensure_registration(session)
        session.commit()
    platform_http.add_callback(responses.GET, other.jwks_url,
                               callback=lambda _request: (200, {}, json.dumps(other.jwks())),
                               content_type="application/json")
    return LaunchActions(client, other)


def browser(client, launches, user, *, role="learner", municipality="SE-1490", deployment=None,
            context="sandbox-course-1", link="sandbox-link-1", round_id=None) -> Person:
    """A launch through the real login and launch endpoints; ``context=None`` sends no context claim,
    ``deployment="shared"`` launches through the regional deployment (picking ``municipality``)."""
    spec = {"user": user, "role": role, "course": "GIT-AK-1", "resource_link_id": link, "locale": "sv-SE",
            "custom": {"round": round_id} if round_id else {}}
    if deployment == "shared":
        spec.update(deployment_id=SHARED_DEPLOYMENT, municipality_code=municipality)
    if context is not None:
        spec["context_id"] = context
    response = launches.launch(launches.spec(municipality, **spec),
                               overrides={CLAIM_CONTEXT: None} if context is None else None)
    assert response.status_code == 303, response.get_data(as_text=True)
    person = Person.__new__(Person)
    person.client, person.home = client, response.headers["Location"]
    person.token = re.search(r"lt=([^&]+)", person.home).group(1)
    with new_session(client.application) as session:  # the launch just recorded
        person.launch_id = session.scalar(select(Launch.id).order_by(Launch.created_at.desc()).limit(1))
    return person


def hand_in(pupil: Person, content) -> tuple[int, int]:
    """A text and a file: the ids of both hand-ins."""
    assert pupil.post(f"/assignment/{content['assignment2']}", {"text": SECRET_TEXT}).status_code == 303
    assert pupil.post(f"/assignment/{content['assignment1']}", {"file": (io.BytesIO(PNG), "Alva Andersson.png")},
                      content_type="multipart/form-data").status_code == 303
    return text_and_file(pupil)


def text_and_file(pupil: Person) -> tuple[int, int]:
    with new_session(pupil.client.application) as session:
        launch = session.get(Launch, pupil.launch_id)
        rows = session.execute(select(Submission.id, Submission.file_key).where(
            Submission.registration_id == launch.registration_id, Submission.sub == launch.sub)).all()
    return next(i for i, key in rows if key is None), next(i for i, key in rows if key is not None)


def reviews(app) -> int:
    with new_session(app) as session:
        return session.scalar(select(func.count()).select_from(Review))


def assert_sees_nothing(app, teacher: Person, pupil_sub: str, text_id: int, file_id: int, *, refusal: str | None):
    """No page of ``teacher`` shows the pupil or the work; ``refusal``: the code every teacher page answers
    (a launch that proves no classroom), else the pages open empty and the work is ``forbidden``."""
    label = pupil_label(pupil_sub)
    dashboard = teacher.get("/teach/")
    queue = teacher.get("/teach/queue")
    pupil_page = teacher.get(f"/teach/pupil/{label}")
    review = teacher.get(f"/teach/submission/{text_id}")
    scored = teacher.post(f"/teach/submission/{text_id}", {"feedback": "Bra", "score": "5"})
    file_ = teacher.get(f"/files/{file_id}")
    pages = [dashboard, queue, pupil_page, review, scored, file_]
    for page in pages:
        body = page.get_data(as_text=True)
        assert label not in body and SECRET_TEXT not in body and PNG not in page.data
        assert "Alva" not in body
    if refusal:
        assert [(p.status_code, error_code(p)) for p in pages] == [(403, refusal)] * len(pages)
    else:
        assert dashboard.status_code == 200 and main_attrs(dashboard)["pupils"] == "0"
        assert queue.status_code == 200 and main_attrs(queue)["queue"] == "0"
        assert (pupil_page.status_code, error_code(pupil_page)) == (404, "not_found")
        assert [(p.status_code, error_code(p)) for p in (review, scored, file_)] == [(403, "forbidden")] * 3
    assert reviews(app) == 0
    with new_session(app) as session:
        assert session.get(Submission, text_id).status == "submitted"


def assert_sees_all(app, teacher: Person, pupil_sub: str, text_id: int, file_id: int, *, reviews_too: bool):
    """Every page shows the pupil and the work; ``reviews_too``: the teacher may review it (a round teacher),
    else the review is refused (a local teacher follows, read-only)."""
    label = pupil_label(pupil_sub)
    dashboard = teacher.get("/teach/")
    assert dashboard.status_code == 200 and label in dashboard.get_data(as_text=True)
    assert main_attrs(teacher.get("/teach/queue"))["queue"] == "2"
    assert f"/teach/submission/{text_id}?" in teacher.get(f"/teach/pupil/{label}").get_data(as_text=True)
    assert SECRET_TEXT in teacher.get(f"/teach/submission/{text_id}").get_data(as_text=True)
    file_ = teacher.get(f"/files/{file_id}")
    assert file_.status_code == 200 and file_.data == PNG
    file_.close()
    scored = teacher.post(f"/teach/submission/{text_id}", {"feedback": "Bra", "score": "5"})
    if reviews_too:
        assert scored.status_code == 303 and reviews(app) == 1
    else:
        assert (scored.status_code, error_code(scored)) == (403, "review_forbidden") and reviews(app) == 0


def assert_pupil_keeps_own_work(pupil: Person, text_id: int, file_id: int):
    own = pupil.get(f"/files/{file_id}")
    assert own.status_code == 200 and own.data == PNG
    own.close()
    assert pupil.get(f"/teach/submission/{text_id}").status_code == 403


# (pupil's launch, teacher's launch, what the teacher gets): "context_missing" on every page, or nothing seen.
HIDDEN = {
    "no context on the pupil's side": ({"context": None}, {}, None),
    "no context on the teacher's side": ({}, {"context": None}, access.CONTEXT_MISSING),
    "no context on either side": ({"context": None}, {"context": None}, access.CONTEXT_MISSING),
    "another context": ({"context": "another-course"}, {}, None),
    "another municipality's deployment": ({"municipality": "NO-0301"}, {}, None),
    "the same municipality through another deployment": ({}, {"deployment": "shared"}, None),
    "another round": ({}, {"round_id": "later"}, None),
    "another resource link": ({"link": "another-link"}, {}, None),
}


@pytest.mark.parametrize("pupil_launch, teacher_launch, refusal", HIDDEN.values(), ids=HIDDEN.keys())
def test_a_teacher_sees_no_work_of_a_pupil_outside_the_classroom(app, client, launches, content, pupil_launch,
                                                                   teacher_launch, refusal):
    pupil = browser(client, launches, "p1", **pupil_launch)
    text_id, file_id = hand_in(pupil, content)
    teacher = browser(client, launches, "t1", role="instructor", **teacher_launch)
    assert_sees_nothing(app, teacher, "p1", text_id, file_id, refusal=refusal)
    assert_pupil_keeps_own_work(pupil, text_id, file_id)


def test_a_teacher_of_another_platform_sees_no_work_under_the_same_ids(app, client, launches, content,
                                                                         other_platform):
    pupil = browser(client, launches, "p1")
    text_id, file_id = hand_in(pupil, content)
    teacher = browser(client, other_platform, "t1", role="instructor")  # same context, link, round and sub ids
    assert_sees_nothing(app, teacher, "p1", text_id, file_id, refusal=None)
    twin = browser(client, other_platform, "p1")  # the same sub at another platform is another pupil
    assert twin.get(f"/files/{file_id}").status_code == 403
    assert twin.get(f"/assignment/{content['assignment2']}").get_data(as_text=True).count(SECRET_TEXT) == 0


def test_the_teacher_of_the_classroom_sees_its_pupils_work(app, client, launches, content):
    """The control for the tests above: the same launches, every key equal, everything shown; a local teacher
    follows (read-only), the round's teacher reviews."""
    pupil = browser(client, launches, "p1")
    text_id, file_id = hand_in(pupil, content)
    teacher = browser(client, launches, "t1", role="instructor")
    assert_sees_all(app, teacher, "p1", text_id, file_id, reviews_too=False)
    name_round_teacher(app, "t1")
    assert_sees_all(app, teacher, "p1", text_id, file_id, reviews_too=True)


def test_a_regional_deployment_is_one_classroom_for_its_municipalities(app, client, launches, content):
    first = browser(client, launches, "p1", deployment="shared", municipality="SE-1490")
    second = browser(client, launches, "p2", deployment="shared", municipality="SE-1440")
    own_deployment = browser(client, launches, "p3", municipality="SE-1490")
    for pupil in (first, second, own_deployment):
        assert pupil.post(f"/assignment/{content['assignment2']}", {"text": "Svar"}).status_code == 303
    teacher = browser(client, launches, "t1", role="instructor", deployment="shared", municipality="SE-1490")
    dashboard = teacher.get("/teach/")
    body = dashboard.get_data(as_text=True)
    # a local teacher follows their own municipality's pupils of their course
    assert main_attrs(dashboard)["pupils"] == "1" and pupil_label("p1") in body
    assert pupil_label("p2") not in body and pupil_label("p3") not in body
    assert main_attrs(teacher.get("/teach/queue"))["queue"] == "1"
    # the round's teacher has the whole round, whichever municipality and placement the pupils came from
    name_round_teacher(app, "t1")
    dashboard = teacher.get("/teach/")
    body = dashboard.get_data(as_text=True)
    assert main_attrs(dashboard)["pupils"] == "3" and "SE-1440" in body and "SE-1490" in body
    assert main_attrs(teacher.get("/teach/queue"))["queue"] == "3"


def test_a_teacher_without_a_context_gets_a_page_that_says_why(app, client, launches, content):
    from html import unescape

    from flask_babel import force_locale

    from lti_tool.web.errors import MESSAGES

    teacher = browser(client, launches, "t1", role="instructor", context=None)
    page = client.get(teacher.home, follow_redirects=True)
    assert page.status_code == 403 and error_code(page) == "context_missing"
    with app.test_request_context(), force_locale("sv"):
        message = str(MESSAGES["context_missing"])
    assert message in unescape(page.get_data(as_text=True))


NULLABLE = {"context_id": [(Submission, Submission.context_id), (Launch, Launch.context_id)],
            "resource_link_id": [(Launch, Launch.resource_link_id)], "round_pk": [(Launch, Launch.round_pk)]}


@pytest.mark.parametrize("missing", access.CLASSROOM_KEYS)
def test_a_missing_key_on_the_teachers_side_matches_nothing(app, client, launches, content, missing):
    """The SQL helper and the predicate, straight: a teacher's launch with one key emptied sees no hand-in,
    even one stored with the same key empty (NULL never equals NULL)."""
    pupil = browser(client, launches, "p1")
    text_id, _file_id = hand_in(pupil, content)
    teacher = browser(client, launches, "t1", role="instructor")
    with new_session(app) as session:
        launch = session.get(Launch, teacher.launch_id)
        viewer = access.Viewer.of(launch)
        assert viewer.has_classroom and access.may_see(session, viewer, text_id)
        for model, column in NULLABLE.get(missing, ()):  # the pupil's side empty too, where it can be
            session.execute(update(model).values({column: None}))
        blind = dataclasses.replace(viewer, **{missing: None})
        assert blind.missing() == (missing,) and not blind.has_classroom
        assert session.scalar(select(func.count()).select_from(Submission)
                              .where(access.visible_submissions(blind))) == 0
        assert session.scalar(select(func.count()).select_from(Launch).where(access.classroom_launches(blind))) == 0
        assert not access.may_see(session, blind, text_id)
        with pytest.raises(access.ForbiddenError) as refused:
            access.check_submission(session, blind, text_id)
        assert refused.value.code == ("forbidden" if missing == "round_pk" else access.CONTEXT_MISSING)
        session.rollback()


def test_work_handed_in_through_another_placement_of_the_course_stays_there(app, client, launches, content):
    """The same course placed twice in one LMS course: a pupil who opened both hands in through the second;
    the teacher of the first sees the pupil (they launched there) but not that work."""
    browser(client, launches, "p1", link="link-a")
    pupil_b = browser(client, launches, "p1", link="link-b")
    text_id, file_id = hand_in(pupil_b, content)
    teacher_a = browser(client, launches, "t1", role="instructor", link="link-a")
    queue = teacher_a.get("/teach/queue")
    assert queue.status_code == 200 and main_attrs(queue)["queue"] == "0"
    for page in (teacher_a.get(f"/teach/submission/{text_id}"), teacher_a.get(f"/files/{file_id}"),
                 teacher_a.post(f"/teach/submission/{text_id}", {"feedback": "Bra", "score": "5"})):
        assert (page.status_code, error_code(page)) == (403, "forbidden")
        assert SECRET_TEXT not in page.get_data(as_text=True) and PNG not in page.data
    assert reviews(app) == 0
    teacher_b = browser(client, launches, "t1", role="instructor", link="link-b")
    assert_sees_all(app, teacher_b, "p1", text_id, file_id, reviews_too=False)
