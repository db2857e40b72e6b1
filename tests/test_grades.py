"""Grade passback: the outbox, line items, scores, tokens, retries, dead letters and supersession."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone

import pytest
import requests
import responses
from sqlalchemy import select

from lti_tool.db import SESSIONMAKER_KEY, new_session
from lti_tool.domain.claims import CLAIM_AGS, SCOPE_LINEITEM, SCOPE_LINEITEM_READONLY, SCOPE_SCORE
from lti_tool.lti import get_lti
from lti_tool.lti.ags import ServiceClient, scores_url
from lti_tool.models import LineItem, OutboxItem, Review, Submission
from lti_tool.services import grades, seats
from lti_tool.services.delivery import record_review

from .catalog_factory import add_content, add_course
from .conftest import name_round_teacher

LINEITEMS = "https://lms.example/api/lti/courses/7/line_items"
TOKEN_URL = "http://localhost/sandbox/token"
ITEM = "https://lms.example/api/lti/courses/7/line_items/31"
LINK = "sandbox-link-1"
FOUND = [{"id": ITEM, "resourceId": "GIT-AK-1:GIT-AK-1-m2-a1", "resourceLinkId": LINK}]


@pytest.fixture
def course(app, demo):
    with new_session(app) as session:
        add_course(session)
        made = add_content(session)
        seats.set_order(session, "SE-1490", "GIT-AK-1", "now", 10)
        session.commit()
    return made


def launch(launches, user, role="learner", scopes=(SCOPE_LINEITEM, SCOPE_SCORE), lineitems=LINEITEMS):
    spec = launches.spec("SE-1490", user=user, role=role, course="GIT-AK-1")
    ags = {"scope": list(scopes), "lineitems": lineitems}
    response = launches.launch(spec, overrides={CLAIM_AGS: ags})
    assert response.status_code == 303, response.get_data(as_text=True)
    if role == "instructor":
        name_round_teacher(launches.client.application, user)  # the round's teacher reviews
    return response


def hand_in_and_review(app, course, pupil="p1", score="8", feedback="Bra!", assignment="assignment2"):
    """A pupil's text hand-in and the teacher's review, through the services (the pages have their tests)."""
    from lti_tool.models import Launch
    from lti_tool.services.delivery import submit

    with new_session(app) as session:
        learner = session.scalars(select(Launch).where(Launch.sub == pupil).order_by(Launch.created_at.desc())).first()
        teacher = session.scalars(select(Launch).where(Launch.role == "instructor")).first()
        existing = session.scalar(select(Submission).where(Submission.sub == pupil,
                                                           Submission.assignment_id == course[assignment]))
        if existing is None or existing.status == "submitted":
            submit(session, learner, course[assignment], text="Mitt svar")
        else:
            existing.status = "submitted"  # a teacher may change a review: the new score supersedes
        session.flush()
        sub = session.scalar(
            select(Submission).where(Submission.sub == pupil, Submission.assignment_id == course[assignment])
        )
        review = record_review(session, teacher, sub.id, feedback=feedback, score=score)
        session.commit()
        return review.id


@pytest.fixture
def client_(app):
    return ServiceClient(get_lti(app).keys, timeout=2, policy=get_lti(app).outbound)


def drain(app, client, now=None):
    return grades.drain(app.extensions[SESSIONMAKER_KEY], client, now=now)


def token_requests(mock):
    """New tokens asked of the faked token endpoint."""
    return len([c for c in mock.calls if c.request.url == TOKEN_URL])


def token_reply(mock, token="tok-1", expires_in=3600):
    mock.post(TOKEN_URL, json={"access_token": token, "token_type": "Bearer", "expires_in": expires_in})


def outbox(app):
    """The rows of scores (a hand-in's "needs grading" row, superseded by its review, left out)."""
    with new_session(app) as session:
        return [
            (i.status, i.attempts, i.payload["scoreGiven"])
            for i in session.scalars(select(OutboxItem).order_by(OutboxItem.id))
            if "scoreGiven" in i.payload
        ]


def test_review_writes_score_and_outbox_row_in_one_transaction(app, launches, course):
    launch(launches, "p1")
    launch(launches, "t1", role="instructor")
    hand_in_and_review(app, course, score="8,5")
    with new_session(app) as session:
        hand_in, item = session.scalars(select(OutboxItem).order_by(OutboxItem.id)).all()
        review = session.scalars(select(Review)).one()
        assert (hand_in.payload["activityProgress"], hand_in.payload["gradingProgress"]) == (
            "Submitted",
            "PendingManual",
        )
        assert "scoreGiven" not in hand_in.payload and hand_in.status == "superseded"  # the review goes instead
        assert hand_in.dedupe_key == item.dedupe_key and item.resource_link_id == hand_in.resource_link_id == LINK
        assert item.status == "pending" and item.sub == "p1"
        assert item.payload["scoreGiven"] == 8.5 and item.payload["scoreMaximum"] == 10.0
        assert item.payload["timestamp"] == review.created_at.astimezone(timezone.utc).isoformat(
            timespec="milliseconds"
        )
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", item.payload["timestamp"])
        assert item.payload["submission"]["submittedAt"].endswith("+00:00")
        assert (item.payload["activityProgress"], item.payload["gradingProgress"]) == ("Completed", "FullyGraded")


def test_no_ags_no_outbox(app, launches, course):
    launch(launches, "p1", scopes=(), lineitems=None)
    launch(launches, "t1", role="instructor", scopes=(), lineitems=None)
    hand_in_and_review(app, course)
    assert outbox(app) == []


def test_line_item_discovered_and_score_posted_exactly(app, launches, course, client_):
    launch(launches, "p1")
    launch(launches, "t1", role="instructor")
    hand_in_and_review(app, course, score="7")
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        token_reply(mock)
        mock.get(
            LINEITEMS,
            json=[{**FOUND[0], "scoreMaximum": 10}],
            match=[
                responses.matchers.query_param_matcher(
                    {"resource_id": "GIT-AK-1:GIT-AK-1-m2-a1", "resource_link_id": LINK}
                )
            ],
        )
        mock.post(ITEM + "/scores", status=200, json={})
        report = drain(app, client_)
        score_call = mock.calls[-1].request
        token_call = mock.calls[0].request
    assert report.sent == 1
    assert score_call.headers["Content-Type"] == "application/vnd.ims.lis.v1.score+json"
    assert score_call.headers["Authorization"] == "Bearer tok-1" and score_call.headers["User-Agent"]
    body = json.loads(score_call.body)
    assert {k: body[k] for k in ("userId", "scoreGiven", "scoreMaximum", "activityProgress", "gradingProgress")} == {
        "userId": "p1",
        "scoreGiven": 7.0,
        "scoreMaximum": 10.0,
        "activityProgress": "Completed",
        "gradingProgress": "FullyGraded",
    }
    assert body["comment"] == "Bra!" and "submittedAt" in body["submission"]
    form = dict(x.split("=", 1) for x in token_call.body.split("&"))
    assert form["grant_type"] == "client_credentials" and "jwt-bearer" in form["client_assertion_type"]
    assert form["scope"] == (
        "https%3A%2F%2Fpurl.imsglobal.org%2Fspec%2Flti-ags%2Fscope%2Flineitem+"
        "https%3A%2F%2Fpurl.imsglobal.org%2Fspec%2Flti-ags%2Fscope%2Fscore"
    )
    assert outbox(app) == [("sent", 1, 7.0)]
    with new_session(app) as session:
        assert {(i.resource_link_id, i.assignment_id) for i in session.scalars(select(LineItem))} >= {
            (LINK, course["assignment2"])
        }  # remembered for this placement: no lookup before the next score


def test_line_item_created_when_missing(app, launches, course, client_):
    launch(launches, "p1")
    launch(launches, "t1", role="instructor")
    hand_in_and_review(app, course)
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        token_reply(mock)
        mock.get(LINEITEMS, json=[])
        mock.post(LINEITEMS, json={"id": ITEM, "label": "Uppgift 2"}, status=201)
        mock.post(ITEM + "/scores", status=204)
        drain(app, client_)
        created = json.loads(mock.calls[2].request.body)
        assert mock.calls[2].request.headers["Content-Type"] == "application/vnd.ims.lis.v2.lineitem+json"
    assert created.pop("startDateTime").endswith(":00.000+00:00") and created.pop("endDateTime")
    assert created == {
        "label": "Kurs GIT-AK-1 – uppgift 2: Uppgift 2",
        "scoreMaximum": 10.0,
        "resourceId": "GIT-AK-1:GIT-AK-1-m2-a1",
        "tag": "kulturskola",
        "resourceLinkId": LINK,
    }
    assert outbox(app)[0][0] == "sent"


def test_read_only_line_items_fall_back_to_the_resource_links_column(app, launches, course, client_):
    from lti_tool.domain.claims import CLAIM_AGS as AGS

    spec = launches.spec("SE-1490", user="p1", course="GIT-AK-1")
    launches.launch(
        spec,
        overrides={
            AGS: {
                "scope": [SCOPE_LINEITEM_READONLY, SCOPE_SCORE],
                "lineitems": LINEITEMS,
                "lineitem": ITEM + "?type_id=5",
            }
        },
    )
    launch(launches, "t1", role="instructor", scopes=(SCOPE_LINEITEM_READONLY, SCOPE_SCORE))
    hand_in_and_review(app, course)
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        token_reply(mock)  # no lookup of columns: the placement's own column takes the course total
        mock.post(ITEM + "/scores", status=200, match=[responses.matchers.query_param_matcher({"type_id": "5"})])
        assert drain(app, client_).sent == 1
        body = json.loads(mock.calls[-1].request.body)
    assert (body["scoreGiven"], body["scoreMaximum"]) == (8.0, 20.0)


def test_scores_url_keeps_the_query():
    assert scores_url("https://lms.example/li/5?type=x&a=1") == "https://lms.example/li/5/scores?type=x&a=1"
    assert scores_url("https://lms.example/li/5/") == "https://lms.example/li/5/scores"


def test_a_thousand_scores_cost_one_token(app, launches, course, client_):
    for user in ("p1", "p2", "p3"):
        launch(launches, user)
    launch(launches, "t1", role="instructor")
    for user in ("p1", "p2", "p3"):
        hand_in_and_review(app, course, pupil=user)
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        token_reply(mock)
        mock.get(LINEITEMS, json=FOUND)
        mock.post(ITEM + "/scores", status=200)
        assert drain(app, client_).sent == 3
        assert token_requests(mock) == 1
        assert len([c for c in mock.calls if c.request.url.startswith(LINEITEMS + "?")]) == 1  # remembered


def test_expiring_token_is_renewed(app, launches, course, client_):
    launch(launches, "p1")
    launch(launches, "t1", role="instructor")
    hand_in_and_review(app, course)
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        token_reply(mock, expires_in=30)  # less than the renewal margin
        mock.get(LINEITEMS, json=FOUND)
        mock.post(ITEM + "/scores", status=200)
        assert drain(app, client_).sent == 1
        hand_in_and_review(app, course, pupil="p1", assignment="assignment2", score="3")
        drain(app, client_)
        assert token_requests(mock) == 2  # the first token had less than a minute left: a new one


def test_a_score_answered_with_text_is_sent_and_a_redirect_is_not(app, launches, course, client_):
    """A platform's ``200 OK`` in plain text is a stored score (its status and answer kept on the row); a
    redirect the guard does not follow (a POST is never replayed) is no success: a dead letter."""
    launch(launches, "p1")
    launch(launches, "p2")
    launch(launches, "t1", role="instructor")
    hand_in_and_review(app, course, pupil="p1")
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        mock.post(TOKEN_URL, json={"access_token": "tok", "token_type": "Bearer"})  # no expires_in: an hour
        mock.get(LINEITEMS, json=FOUND)
        mock.post(ITEM + "/scores", status=200, body="OK", content_type="text/plain")
        assert drain(app, client_).sent == 1
        hand_in_and_review(app, course, pupil="p2")
        mock.replace(responses.POST, ITEM + "/scores", status=302, headers={"Location": "https://lms.example/"})
        assert drain(app, client_).dead == 1
        assert token_requests(mock) == 1
    with new_session(app) as session:
        rows = [(i.status, i.platform_status, i.platform_response) for i in session.scalars(
            select(OutboxItem).where(OutboxItem.status != "superseded").order_by(OutboxItem.id))]
    assert rows == [("sent", 200, "OK"), ("dead", 302, "")]


def test_a_token_answer_without_a_token_is_a_dead_letter(app, launches, course, client_):
    launch(launches, "p1")
    launch(launches, "t1", role="instructor")
    hand_in_and_review(app, course)
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        mock.post(TOKEN_URL, json={"error_description": "nothing for you"})
        assert drain(app, client_).dead == 1
    with new_session(app) as session:
        item = session.scalars(select(OutboxItem).where(OutboxItem.status == "dead")).one()
    assert item.last_error == "token response without access_token" and "nothing for you" in item.platform_response


def test_429_with_retry_after_then_sent(app, launches, course, client_):
    launch(launches, "p1")
    launch(launches, "t1", role="instructor")
    hand_in_and_review(app, course)
    start = datetime.now(timezone.utc)
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        token_reply(mock)
        mock.get(LINEITEMS, json=FOUND)
        mock.post(ITEM + "/scores", status=429, headers={"Retry-After": "120"})
        assert drain(app, client_).retried == 1
        with new_session(app) as session:
            item = session.scalars(select(OutboxItem).where(OutboxItem.status != "superseded")).one()
            assert item.status == "pending" and item.next_attempt_at >= start + timedelta(seconds=119)
        assert drain(app, client_).total() == 0  # not due yet
        mock.replace(responses.POST, ITEM + "/scores", status=503)
        later = start + timedelta(seconds=121)
        assert drain(app, client_, now=later).retried == 1
        mock.replace(responses.POST, ITEM + "/scores", status=200)
        assert drain(app, client_, now=later + timedelta(hours=2)).sent == 1
    assert outbox(app)[0][:2] == ("sent", 3)


def test_400_is_a_dead_letter_with_the_answer_kept_and_can_be_retried(app, runner, launches, course, client_):
    launch(launches, "p1")
    launch(launches, "t1", role="instructor")
    hand_in_and_review(app, course)
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        token_reply(mock)
        mock.get(LINEITEMS, json=FOUND)
        mock.post(ITEM + "/scores", status=400, json={"error": "user not in course"})
        assert drain(app, client_).dead == 1
        listing = runner.invoke(args=["outbox", "list", "--status", "dead"]).output
        assert "dead" in listing and "user not in course" in listing
        item_id = listing.split("\t")[0]
        assert "queued again" in runner.invoke(args=["outbox", "retry", item_id]).output
        mock.replace(responses.POST, ITEM + "/scores", status=200)
        assert drain(app, client_).sent == 1
    assert "no dead letter" in runner.invoke(args=["outbox", "retry", item_id]).output
    assert "0 dead letter(s)" in runner.invoke(args=["outbox", "retry-all-dead"]).output


def test_401_refreshes_the_token_once(app, launches, course, client_):
    launch(launches, "p1")
    launch(launches, "t1", role="instructor")
    hand_in_and_review(app, course)
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        mock.post(TOKEN_URL, json={"access_token": "old", "expires_in": 3600})
        mock.post(TOKEN_URL, json={"access_token": "new", "expires_in": 3600})
        mock.get(LINEITEMS, json=FOUND)
        mock.post(ITEM + "/scores", status=401)
        mock.post(ITEM + "/scores", status=200)
        assert drain(app, client_).sent == 1
        auths = [c.request.headers.get("Authorization") for c in mock.calls if c.request.url.endswith("/scores")]
    assert auths[0] == "Bearer old" and auths[1].startswith("Bearer new")


def test_newer_score_supersedes_an_unsent_older_one(app, launches, course, client_):
    launch(launches, "p1")
    launch(launches, "t1", role="instructor")
    hand_in_and_review(app, course, score="5")
    hand_in_and_review(app, course, score="9")
    assert [s for s, _a, _g in outbox(app)] == ["superseded", "pending"]
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        token_reply(mock)
        mock.get(LINEITEMS, json=FOUND)
        mock.post(ITEM + "/scores", status=200)
        assert drain(app, client_).sent == 1
        sent = [json.loads(c.request.body)["scoreGiven"] for c in mock.calls if c.request.url.endswith("/scores")]
    assert sent == [9.0]


def test_a_failing_older_score_gives_way_to_a_newer_one(app, launches, course, client_):
    """A score waiting out a backoff is superseded by a newer one for the same column: only the newer goes,
    and the older is never sent after it."""
    launch(launches, "p1")
    launch(launches, "t1", role="instructor")
    hand_in_and_review(app, course, score="5")
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        token_reply(mock)
        mock.get(LINEITEMS, json=FOUND)
        mock.post(ITEM + "/scores", status=503)
        drain(app, client_)
        hand_in_and_review(app, course, score="9")
        mock.replace(responses.POST, ITEM + "/scores", status=200)
        drain(app, client_, now=datetime.now(timezone.utc) + timedelta(hours=2))
        posted = [
            (json.loads(c.request.body)["scoreGiven"], c.response.status_code)
            for c in mock.calls
            if c.request.url.endswith("/scores") and c.response is not None
        ]
    assert posted == [(5.0, 503), (9.0, 200)]  # the older score is not tried again, before or after the newer
    assert outbox(app) == [("superseded", 1, 5.0), ("sent", 1, 9.0)]


def test_fault_drill_every_score_once_in_order(app, launches, course, client_):
    """The score endpoint fails the first attempts (and times out once); after the worker has run, every
    score is in the platform exactly once, in order."""
    users = [f"p{i}" for i in range(6)]
    for user in users:
        launch(launches, user)
    launch(launches, "t1", role="instructor")
    for user in users:
        hand_in_and_review(app, course, pupil=user, score="6")
    received: list[str] = []
    failures = {"left": 4, "timeout": True}

    def scores(request):
        if failures["timeout"]:
            failures["timeout"] = False
            raise requests.ReadTimeout("platform too slow")
        if failures["left"]:
            failures["left"] -= 1
            return (503, {}, "busy")
        received.append(json.loads(request.body)["userId"])
        return (200, {}, "{}")

    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        token_reply(mock)
        mock.get(LINEITEMS, json=FOUND)
        mock.add_callback(responses.POST, ITEM + "/scores", callback=scores)
        clock = datetime.now(timezone.utc)
        for _round in range(20):
            drain(app, client_, now=clock)
            clock += timedelta(hours=1)
    assert sorted(received) == sorted(users) and len(received) == len(set(received))
    with new_session(app) as session:
        assert {i.status for i in session.scalars(select(OutboxItem)) if "scoreGiven" in i.payload} == {"sent"}


def test_several_workers_at_once_send_each_score_once(app, launches, course):
    """Workers racing over the same outbox (SKIP LOCKED on PostgreSQL) never send a score twice."""
    from concurrent.futures import ThreadPoolExecutor

    users = [f"p{i}" for i in range(8)]
    for user in users:
        launch(launches, user)
    launch(launches, "t1", role="instructor")
    for user in users:
        hand_in_and_review(app, course, pupil=user)
    received = []

    def scores(request):
        received.append(json.loads(request.body)["userId"])
        return (200, {}, "{}")

    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        token_reply(mock)
        mock.get(LINEITEMS, json=FOUND)
        mock.add_callback(responses.POST, ITEM + "/scores", callback=scores)
        clients = [ServiceClient(get_lti(app).keys, timeout=2, policy=get_lti(app).outbound) for _ in range(4)]
        with ThreadPoolExecutor(max_workers=4) as pool:
            reports = list(pool.map(lambda c: grades.drain(app.extensions[SESSIONMAKER_KEY], c, batch=2), clients))
    assert sorted(received) == sorted(users)
    assert sum(r.sent for r in reports) == len(users)
