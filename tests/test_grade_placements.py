"""Which gradebook column each score goes to (per placement, per assignment), and the outbox's answers to an
expired token, a lost answer and a dead letter overtaken by a newer score."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
import responses
from sqlalchemy import select

from lti_tool.db import new_session
from lti_tool.domain.claims import CLAIM_AGS, SCOPE_LINEITEM, SCOPE_LINEITEM_READONLY, SCOPE_SCORE
from lti_tool.lti import get_lti
from lti_tool.lti.ags import ServiceClient
from lti_tool.domain.gradebook import column_label, column_language, total_progress
from lti_tool.models import Assignment, GradePlacement, Launch, LineItem, OutboxItem, Submission
from lti_tool.services import grades, seats
from lti_tool.services.delivery import record_review, submit

from .catalog_factory import add_content, add_course
from .conftest import name_round_teacher
from .test_grades import LINEITEMS, TOKEN_URL, drain, token_reply, token_requests

COL_A = "https://lms.example/api/lti/courses/7/line_items/41"
COL_B = "https://lms.example/api/lti/courses/7/line_items/42"
READ_ONLY = (SCOPE_LINEITEM_READONLY, SCOPE_SCORE)
CREATE = (SCOPE_LINEITEM, SCOPE_SCORE)


@pytest.fixture
def client_(app):
    return ServiceClient(get_lti(app).keys, timeout=2, policy=get_lti(app).outbound)


@pytest.fixture
def two_courses(app, demo):
    with new_session(app) as session:
        made = {}
        for code in ("GIT-AK-1", "PIA-1"):
            add_course(session, code)
            made[code] = add_content(session, code)
            for assignment in session.scalars(select(Assignment)):
                assignment.submission = "text"
            seats.set_order(session, "SE-1490", code, "now", 10)
        session.commit()
    return made


def place(launches, user, course, link, *, role="learner", scopes=READ_ONLY, column=None, locale="sv-SE"):
    spec = launches.spec("SE-1490", user=user, role=role, course=course, resource_link_id=link, locale=locale)
    ags = {"scope": list(scopes), "lineitems": LINEITEMS}
    if column:
        ags["lineitem"] = column
    response = launches.launch(spec, overrides={CLAIM_AGS: ags})
    assert response.status_code == 303, response.get_data(as_text=True)
    if role == "instructor":
        name_round_teacher(launches.client.application, user, course=course)  # the round's teacher reviews


def work(app, pupil, link, assignment_id, score):
    """The pupil's hand-in from placement ``link`` and the teacher's review there."""
    with new_session(app) as session:
        learner = session.scalars(select(Launch).where(Launch.sub == pupil, Launch.resource_link_id == link)
                                  .order_by(Launch.created_at.desc())).first()
        teacher = session.scalars(select(Launch).where(Launch.role == "instructor", Launch.resource_link_id == link)
                                  .order_by(Launch.created_at.desc())).first()
        submission = submit(session, learner, assignment_id, text="Mitt svar") if assignment_id else None
        session.flush()
        if score is not None:
            record_review(session, teacher, submission.id, feedback="Bra!", score=score)
        session.commit()


def scores_sent(mock):
    return [(c.request.url.split("/scores")[0], json.loads(c.request.body)) for c in mock.calls
            if "/scores" in c.request.url and c.response is not None and c.response.status_code < 300]


def test_two_placements_of_different_courses_in_one_context_each_in_its_own_column(app, launches, two_courses, client_):
    place(launches, "t1", "GIT-AK-1", "link-a", role="instructor", column=COL_A)
    place(launches, "t1", "PIA-1", "link-b", role="instructor", column=COL_B)
    place(launches, "p1", "GIT-AK-1", "link-a", column=COL_A)
    place(launches, "p1", "PIA-1", "link-b", column=COL_B)
    work(app, "p1", "link-a", two_courses["GIT-AK-1"]["assignment2"], "7")
    work(app, "p1", "link-b", two_courses["PIA-1"]["assignment2"], "3")
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        token_reply(mock)
        mock.post(COL_A + "/scores", status=200)
        mock.post(COL_B + "/scores", status=200)
        assert drain(app, client_).sent == 2
        sent = {url: body["scoreGiven"] for url, body in scores_sent(mock)}
    assert sent == {COL_A: 7.0, COL_B: 3.0}
    with new_session(app) as session:
        rows = session.scalars(select(OutboxItem).where(OutboxItem.status == "sent")).all()
        assert {r.resource_link_id for r in rows} == {"link-a", "link-b"}
        assert {s.resource_link_id for s in session.scalars(select(Submission))} == {"link-a", "link-b"}
        modes = {p.resource_link_id: (p.mode, p.lineitem_url) for p in session.scalars(select(GradePlacement))}
    assert modes == {"link-a": ("course_total", COL_A), "link-b": ("course_total", COL_B)}


def test_declarative_two_assignments_give_the_course_total_in_the_placements_column(
    app, launches, two_courses, client_
):
    course = two_courses["GIT-AK-1"]
    place(launches, "t1", "GIT-AK-1", "link-a", role="instructor", column=COL_A)
    place(launches, "p1", "GIT-AK-1", "link-a", column=COL_A)
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        token_reply(mock)
        mock.post(COL_A + "/scores", status=200)
        work(app, "p1", "link-a", course["assignment1"], None)  # handed in, not yet scored
        drain(app, client_)
        work(app, "p1", "link-a", course["assignment2"], "6")
        drain(app, client_)
        with new_session(app) as session:
            first = session.scalar(select(Submission).where(Submission.assignment_id == course["assignment1"]))
            teacher = session.scalars(select(Launch).where(Launch.role == "instructor")).first()
            record_review(session, teacher, first.id, feedback="Fint", score="8")
            session.commit()
        drain(app, client_)
        bodies = [body for _url, body in scores_sent(mock)]
    assert [
        (b["activityProgress"], b["gradingProgress"], b.get("scoreGiven"), b.get("scoreMaximum")) for b in bodies
    ] == [
        ("InProgress", "PendingManual", None, None),
        ("Submitted", "PendingManual", 6.0, 20.0),
        ("Completed", "FullyGraded", 14.0, 20.0),
    ]
    assert [b["timestamp"] for b in bodies] == sorted(b["timestamp"] for b in bodies)


def test_programmatic_two_assignments_one_column_each_tied_to_the_placement(app, launches, two_courses, client_):
    course = two_courses["GIT-AK-1"]
    place(launches, "t1", "GIT-AK-1", "link-a", role="instructor", scopes=CREATE, column=COL_A, locale="en-GB")
    place(launches, "p1", "GIT-AK-1", "link-a", scopes=CREATE, column=COL_A, locale="nb-NO")  # not the pupil's
    work(app, "p1", "link-a", course["assignment1"], "8")
    work(app, "p1", "link-a", course["assignment2"], "4")
    created = iter([COL_A + "1", COL_A + "2"])

    def create(request):
        return (201, {}, json.dumps({**json.loads(request.body), "id": next(created)}))

    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        token_reply(mock)
        mock.get(LINEITEMS, json=[{"id": COL_B, "resourceId": "GIT-AK-1:GIT-AK-1-m1-a1", "resourceLinkId": "other"}])
        mock.add_callback(responses.POST, LINEITEMS, callback=create)
        mock.post(COL_A + "1/scores", status=200)
        mock.post(COL_A + "2/scores", status=200)
        assert drain(app, client_).sent == 2
        columns = [
            json.loads(c.request.body) for c in mock.calls if c.request.url == LINEITEMS and c.request.method == "POST"
        ]
        sent = {url: body["scoreGiven"] for url, body in scores_sent(mock)}
    assert sent == {COL_A + "1": 8.0, COL_A + "2": 4.0}  # never the other placement's column COL_B
    assert [(c["resourceLinkId"], c["scoreMaximum"], c["label"]) for c in columns] == [
        ("link-a", 10.0, "Course GIT-AK-1 – assignment 1: Uppgift 1"),
        ("link-a", 10.0, "Course GIT-AK-1 – assignment 2: Uppgift 2"),
    ]
    assert all(c["startDateTime"] < c["endDateTime"] for c in columns)
    with new_session(app) as session:
        assert session.scalar(select(GradePlacement)).mode == "per_assignment"
        assert (
            len(
                session.scalars(
                    select(LineItem).where(LineItem.resource_link_id == "link-a", LineItem.assignment_id.is_not(None))
                ).all()
            )
            == 2
        )
        assert grades.placements(session)[0].columns == 2


def _placed(launches):
    place(launches, "t1", "GIT-AK-1", "link-a", role="instructor", column=COL_A)
    place(launches, "p1", "GIT-AK-1", "link-a", column=COL_A)
    place(launches, "p2", "GIT-AK-1", "link-a", column=COL_A)


def _one_score_sent(app, launches, course, client_, mock):
    work(app, "p1", "link-a", course["assignment2"], "7")
    token_reply(mock, "tok-1")
    mock.post(COL_A + "/scores", status=200)
    assert drain(app, client_).sent == 1  # tok-1 is now cached


def test_403_with_a_cached_token_takes_one_new_token_then_succeeds(app, launches, two_courses, client_):
    _placed(launches)
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        _one_score_sent(app, launches, two_courses["GIT-AK-1"], client_, mock)
        work(app, "p2", "link-a", two_courses["GIT-AK-1"]["assignment2"], "5")
        mock.replace(responses.POST, TOKEN_URL, json={"access_token": "tok-2", "expires_in": 3600})
        mock.replace(responses.POST, COL_A + "/scores", status=403, json={"detail": "token expired"})
        mock.add(responses.POST, COL_A + "/scores", status=200)
        assert drain(app, client_).sent == 1
        auths = [c.request.headers["Authorization"] for c in mock.calls if "/scores" in c.request.url]
        tokens = token_requests(mock)
    assert auths == ["Bearer tok-1", "Bearer tok-1", "Bearer tok-2"] and tokens == 2


def test_403_with_a_new_token_is_a_dead_letter(app, launches, two_courses, client_):
    _placed(launches)
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        _one_score_sent(app, launches, two_courses["GIT-AK-1"], client_, mock)
        work(app, "p2", "link-a", two_courses["GIT-AK-1"]["assignment2"], "5")
        mock.replace(responses.POST, COL_A + "/scores", status=403)
        assert drain(app, client_).dead == 1
        assert token_requests(mock) == 2  # one new token tried, not more


def test_retry_all_dead_never_resends_a_score_a_newer_one_replaced(app, runner, launches, two_courses, client_):
    course = two_courses["GIT-AK-1"]
    place(launches, "t1", "GIT-AK-1", "link-a", role="instructor", column=COL_A)
    place(launches, "p1", "GIT-AK-1", "link-a", column=COL_A)
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        token_reply(mock)
        mock.post(COL_A + "/scores", status=400, json={"error": "bad"})
        work(app, "p1", "link-a", course["assignment2"], "5")
        assert drain(app, client_).dead == 1
        mock.replace(responses.POST, COL_A + "/scores", status=200)
        work(app, "p1", "link-a", course["assignment1"], "9")  # a newer course total for the same column
        assert drain(app, client_).sent == 1
        output = runner.invoke(args=["outbox", "retry-all-dead"]).output
        assert "0 dead letter(s) queued again, 1 superseded" in output
        assert drain(app, client_).total() == 0
        assert [body["scoreGiven"] for _u, body in scores_sent(mock)] == [14.0]


def test_a_lost_answer_then_already_exists_counts_as_sent(app, launches, two_courses, client_):
    course = two_courses["GIT-AK-1"]
    place(launches, "t1", "GIT-AK-1", "link-a", role="instructor", column=COL_A)
    place(launches, "p1", "GIT-AK-1", "link-a", column=COL_A)
    work(app, "p1", "link-a", course["assignment2"], "5")
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        token_reply(mock)
        mock.post(COL_A + "/scores", status=504)  # saved by the platform, the answer lost on the way
        assert drain(app, client_).retried == 1
        mock.replace(
            responses.POST, COL_A + "/scores", status=400, json={"error": "Score already exists for this timestamp"}
        )
        assert drain(app, client_, now=datetime.now(timezone.utc) + timedelta(hours=2)).sent == 1
    with new_session(app) as session:
        assert [i.status for i in session.scalars(select(OutboxItem).order_by(OutboxItem.id))][-1] == "sent"


def test_already_exists_on_a_first_try_is_not_taken_for_success(app, launches, two_courses, client_):
    course = two_courses["GIT-AK-1"]
    place(launches, "t1", "GIT-AK-1", "link-a", role="instructor", column=COL_A)
    place(launches, "p1", "GIT-AK-1", "link-a", column=COL_A)
    work(app, "p1", "link-a", course["assignment2"], "5")
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        token_reply(mock)
        mock.post(COL_A + "/scores", status=400, json={"error": "Score already exists for this timestamp"})
        assert drain(app, client_).dead == 1


def test_first_success_after_an_outage_wakes_the_registrations_waiting_scores(app, launches, two_courses, client_):
    course = two_courses["GIT-AK-1"]
    place(launches, "t1", "GIT-AK-1", "link-a", role="instructor", column=COL_A)
    for pupil in ("p1", "p2"):
        place(launches, pupil, "GIT-AK-1", "link-a", column=COL_A)
        work(app, pupil, "link-a", course["assignment2"], "5")
    start = datetime.now(timezone.utc)
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        token_reply(mock)
        mock.post(COL_A + "/scores", status=503)
        for hours in range(8):  # a long outage: backoffs grow towards an hour
            drain(app, client_, now=start + timedelta(hours=hours))
        with new_session(app) as session:
            item = session.scalars(
                select(OutboxItem).where(OutboxItem.status == "pending").order_by(OutboxItem.id)
            ).first()
            item.next_attempt_at = start + timedelta(hours=7)  # the first one due again
            session.commit()
        mock.replace(responses.POST, COL_A + "/scores", status=200)
        later = start + timedelta(hours=7, seconds=1)
        assert drain(app, client_, now=later).sent == 2  # the other one did not wait out its backoff


def test_labels_in_the_municipalitys_language_with_the_course_title():
    course = {"sv": "Akvarell", "nb": "Akvarell (nb)", "en": "Watercolour"}
    task = {"sv": "Skiss", "nb": "Skisse"}
    assert column_label("sv", course, 2, task) == "Akvarell – uppgift 2: Skiss"
    assert column_label("nb", course, 2, task) == "Akvarell (nb) – oppgave 2: Skisse"
    assert column_label("nn", course, 2, task) == "Akvarell (nb) – oppgåve 2: Skisse"
    assert column_label("en", course, 2, task) == "Watercolour – assignment 2: Skiss"
    assert (
        column_language("SE", "sv"),
        column_language("NO", "nb"),
        column_language("NO", "nn"),
        column_language("NO", None),
        column_language("SE", "en"),
    ) == ("sv", "nb", "nn", "nb", "en")
    assert len(column_label("sv", {"sv": "x" * 400}, 1, task)) == 255


def test_course_total_progress():
    assert total_progress(3, 1, 0) == ("InProgress", "PendingManual")
    assert total_progress(3, 3, 1) == ("Submitted", "PendingManual")
    assert total_progress(3, 2, 2) == ("InProgress", "Pending")
    assert total_progress(3, 3, 3) == ("Completed", "FullyGraded")


LIS = "http://purl.imsglobal.org/vocab/lis/v2/"


@pytest.mark.parametrize(
    "roles, role",
    [
        ([LIS + "membership#Administrator"], "instructor"),  # Open edX course Admin
        (["Administrator"], "instructor"),
        ([LIS + "membership/Instructor#PrimaryInstructor"], "instructor"),
        ([LIS + "membership/Administrator#Developer"], "instructor"),
        ([LIS + "membership#Administrator", LIS + "institution/person#Administrator"], "administrator"),
        ([LIS + "membership#Learner"], "learner"),
    ],
)
def test_course_level_administrators_are_the_courses_teachers(roles, role):
    from lti_tool.domain.claims import map_role

    assert map_role(roles) == role


def test_a_course_admin_reaches_the_teacher_pages_of_their_own_context(app, client, launches, two_courses):
    from lti_tool.domain.claims import CLAIM_ROLES

    spec = launches.spec("SE-1490", user="edx-admin", role="instructor", course="GIT-AK-1")
    response = launches.launch(spec, overrides={CLAIM_ROLES: [LIS + "membership#Administrator"]})
    assert response.status_code == 303
    token = response.headers["Location"].split("lt=")[1].split("&")[0]
    assert client.get(f"/teach/?lt={token}").status_code == 200


def test_staff_list_what_each_placement_chose(app, runner, launches, two_courses):
    place(launches, "t1", "GIT-AK-1", "link-a", role="instructor", column=COL_A)
    place(launches, "p1", "GIT-AK-1", "link-a", column=COL_A)
    assert runner.invoke(args=["outbox", "placements"]).output == ""  # nothing chosen before the first hand-in
    work(app, "p1", "link-a", two_courses["GIT-AK-1"]["assignment2"], None)
    listing = runner.invoke(args=["outbox", "placements"]).output
    assert listing.split("\t")[:5] == ["sandbox-course-1", "link-a", "GIT-AK-1", "course_total", "1 column(s)"]
    assert "max 20.00" in listing and COL_A in listing


def test_the_teacher_sees_what_the_tool_chose_for_the_placement(app, client, launches, two_courses):
    def dashboard():
        response = launches.launch(
            launches.spec(
                "SE-1490", user="t1", role="instructor", course="GIT-AK-1", resource_link_id="link-a", locale="en-GB"
            ),
            overrides={CLAIM_AGS: {"scope": list(READ_ONLY), "lineitems": LINEITEMS, "lineitem": COL_A}},
        )
        token = response.headers["Location"].split("lt=")[1].split("&")[0]
        return client.get(f"/teach/?lt={token}").get_data(as_text=True)

    assert 'data-gradebook="undecided"' in dashboard()
    place(launches, "p1", "GIT-AK-1", "link-a", column=COL_A)
    work(app, "p1", "link-a", two_courses["GIT-AK-1"]["assignment2"], None)
    page = dashboard()
    assert 'data-gradebook="course_total"' in page and "course total (out of 20)" in page


def test_national_staff_see_each_placements_choice_in_the_console(app, client, launches, two_courses):
    from .test_staff import sign_in

    place(launches, "t1", "GIT-AK-1", "link-a", role="instructor", column=COL_A)
    place(launches, "p1", "GIT-AK-1", "link-a", column=COL_A)
    sign_in(client)
    assert "data-placement" not in client.get("/staff/outbox").get_data(as_text=True)
    work(app, "p1", "link-a", two_courses["GIT-AK-1"]["assignment2"], None)
    page = client.get("/staff/outbox", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert 'data-placement="link-a" data-mode="course_total"' in page and "course total out of 20" in page


def test_staff_retry_a_dead_letter_from_the_console(app, client, launches, two_courses, client_):
    from lti_tool.models import AuditEntry

    from .test_staff import sign_in

    course = two_courses["GIT-AK-1"]
    place(launches, "t1", "GIT-AK-1", "link-a", role="instructor", column=COL_A)
    place(launches, "p1", "GIT-AK-1", "link-a", column=COL_A)
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        token_reply(mock)
        mock.post(COL_A + "/scores", status=400, json={"error": "bad"})
        work(app, "p1", "link-a", course["assignment2"], "5")
        assert drain(app, client_).dead == 1
    token = sign_in(client)
    with new_session(app) as session:
        dead = session.scalars(select(OutboxItem).where(OutboxItem.status == "dead")).one()
    assert client.post("/staff/outbox/retry", data={"csrf": token, "item": str(dead.id)}).status_code == 302
    assert client.post("/staff/outbox/retry", data={"csrf": token}).status_code == 302  # all dead: none left
    with new_session(app) as session:
        assert session.get(OutboxItem, dead.id).status == "pending"
        entries = session.scalars(select(AuditEntry).where(AuditEntry.action == "outbox.retry")
                                  .order_by(AuditEntry.id)).all()
    assert [(e.details["queued"], e.details["superseded"]) for e in entries] == [(1, 0), (0, 0)]


def test_a_score_queued_before_placements_never_overtakes_a_newer_one(app, launches, two_courses, client_):
    """A row written before grade placements were recorded (no placement, the old key) waits out a backoff
    while a newer score for the same pupil and column is sent: it is superseded, never sent after it."""
    course = two_courses["GIT-AK-1"]
    place(launches, "t1", "GIT-AK-1", "link-a", role="instructor", column=COL_A)
    place(launches, "p1", "GIT-AK-1", "link-a", column=COL_A)
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        token_reply(mock)
        mock.post(COL_A + "/scores", status=200)
        work(app, "p1", "link-a", course["assignment2"], "5")
        with new_session(app) as session:  # the pending row as an older release wrote it
            row = session.scalars(select(OutboxItem).where(OutboxItem.status == "pending")
                                  .order_by(OutboxItem.id.desc())).first()
            row.placement_id = None
            row.dedupe_key = f"{row.registration_id}|{row.context_pk}|{row.assignment_id}|{row.sub}"
            row.next_attempt_at = datetime.now(timezone.utc) + timedelta(hours=1)  # waiting out a backoff
            old_id = row.id
            session.commit()
        work(app, "p1", "link-a", course["assignment1"], "9")  # a newer score for the same column
        assert drain(app, client_).sent >= 1
        report = drain(app, client_, now=datetime.now(timezone.utc) + timedelta(hours=2))
        assert report.sent == 0
        sent = [body.get("scoreGiven") for _u, body in scores_sent(mock)]
    with new_session(app) as session:
        assert session.get(OutboxItem, old_id).status == "superseded"
    assert sent[-1] == 14.0  # the course total after both scores, never the older 5 after it
