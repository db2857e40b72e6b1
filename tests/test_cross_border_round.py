"""The round is the classroom, end to end: pupils of three municipalities on two platforms (two registrations,
each with its own gradebook and token endpoint) launch into one round and hand in; the round's teacher, who
launches from a third platform, reviews them all through the teacher's pages, and a second round teacher who
signs in by e-mail reviews too; the grade outbox sends each score to the pupil's own platform and column. A
local teacher follows only their own municipality's pupils and cannot review; a teacher of another round sees
nothing. Also: the sandbox's second platform and the demo's ready-made round."""

from __future__ import annotations

import json
import re
import time
from html import unescape
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
import responses
from sqlalchemy import func, select

from lti_tool.db import SESSIONMAKER_KEY, new_session
from lti_tool.domain.claims import CLAIM_AGS, SCOPE_LINEITEM, SCOPE_LINEITEM_READONLY, SCOPE_SCORE
from lti_tool.lti import get_lti
from lti_tool.lti.ags import ServiceClient
from lti_tool.lti.keys import KeyStore
from lti_tool.models import CourseRound, OutboxItem, Review, Submission
from lti_tool.sandbox import (MOODLE, LaunchSpec, PlatformProfile, SandboxError, SandboxPlatform, get_platform,
                              get_platforms)
from lti_tool.services import grades, round_teachers, seats
from lti_tool.services.delivery import pupil_label

from .catalog_factory import add_content, add_course
from .conftest import LaunchActions, error_code, main_attrs, name_round_teacher
from .test_delivery import Person

COURSE = "GIT-AK-1"
KIRUNA, ARE, BORAS, STOCKHOLM = "SE-2584", "SE-2321", "SE-1490", "SE-0180"
# The platforms' gradebooks (AGS) for the municipalities' LMS courses: Canvas grants creating columns, one
# per assignment; Moodle grants only its placement's own column, which takes the course total.
CANVAS_LINEITEMS = {KIRUNA: "https://canvas.sandbox.example/api/lti/courses/71/line_items",
                    ARE: "https://canvas.sandbox.example/api/lti/courses/72/line_items"}
MOODLE_LINEITEMS = "https://moodle.sandbox.example/mod/lti/services.php/14/lineitems"
MOODLE_COLUMN = "https://moodle.sandbox.example/mod/lti/services.php/14/lineitems/9/lineitem?type_id=3"
TEACHERS_PLATFORM = PlatformProfile(key="", name="Providing school's platform", client_id="stockholm-lms",
                                    registration_name="Stockholms kulturskola")
TEACHERS_BASE = "http://localhost:5002"
EMAIL_TEACHER = "erik.ek@kulturskola.example"
IDP = "https://idp.example"
ANSWER = "Jag övade ackorden varje dag"


@pytest.fixture
def config(config):
    """The staff OpenID Connect provider configured: a round's teacher named by e-mail signs in through it."""
    return {**config, "STAFF_OIDC_ISSUER": IDP, "STAFF_OIDC_CLIENT_ID": "console", "STAFF_OIDC_CLIENT_SECRET": "s3cret",
            "STAFF_USERS": "nora@kulturskola.example"}


@pytest.fixture
def idp(tmp_path):
    return KeyStore(tmp_path / "idp")


def csrf_of(page) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', page.get_data(as_text=True)).group(1)


def sign_in_by_email(app, http, idp: KeyStore, email: str):
    """A browser of its own, signed in through the (faked) OpenID Connect provider with a verified e-mail, as
    tests/test_staff.py signs in national staff."""
    key = idp.ensure()
    http.get(IDP + "/.well-known/openid-configuration", json={
        "issuer": IDP, "authorization_endpoint": IDP + "/authorize", "token_endpoint": IDP + "/token",
        "jwks_uri": IDP + "/jwks", "response_types_supported": ["code"],
        "id_token_signing_alg_values_supported": ["RS256"]})
    http.get(IDP + "/jwks", json=idp.jwks())
    browser = app.test_client()
    start = browser.get("/staff/sign-in/oidc")
    assert start.status_code == 302 and start.headers["Location"].startswith(IDP + "/authorize")
    query = {k: v[0] for k, v in parse_qs(urlsplit(start.headers["Location"]).query).items()}
    now = int(time.time())
    claims = {"iss": IDP, "aud": "console", "iat": now, "exp": now + 300, "nonce": query["nonce"], "sub": "erik-1",
              "email": email, "email_verified": True, "name": "Erik Ek"}
    http.post(IDP + "/token", json={"access_token": "at", "token_type": "Bearer", "expires_in": 300,
                                    "id_token": jwt.encode(claims, key.private_pem, algorithm="RS256",
                                                           headers={"kid": key.kid})})
    back = browser.get("/staff/callback", query_string={"code": "c", "state": query["state"]})
    assert back.status_code == 302 and back.headers["Location"].endswith("/teach/rounds"), back.get_data(as_text=True)
    assert browser.get("/staff/").status_code == 302  # a teacher, not national staff
    return browser


@pytest.fixture
def round_content(app, demo):
    """The course with its round open for enrolment, and each municipality's order with seats."""
    with new_session(app) as session:
        add_course(session, COURSE)
        made = add_content(session, COURSE)
        for municipality in (KIRUNA, ARE, BORAS):
            seats.set_order(session, municipality, COURSE, "now", 5)
        session.commit()
    return made


@pytest.fixture
def moodle(app, demo, platform_http):
    """The sandbox's second platform (its own issuer, keys, registration and deployments)."""
    second = get_platform(app, MOODLE.key)
    platform_http.add_callback(responses.GET, second.jwks_url,
                               callback=lambda _request: (200, {}, json.dumps(second.jwks())),
                               content_type="application/json")
    return second


@pytest.fixture
def teachers_platform(app, demo, platform_http, tmp_path):
    """A third platform: the providing school's own, where the round's teacher launches from."""
    third = SandboxPlatform(TEACHERS_BASE, tmp_path / "teachers-platform", app.config["SECRET_KEY"],
                            tool_base_url=app.config["BASE_URL"], profile=TEACHERS_PLATFORM)
    with new_session(app) as session:
        registration_id = third.ensure_registration(session).id
        session.commit()
    platform_http.add_callback(responses.GET, third.jwks_url,
                               callback=lambda _request: (200, {}, json.dumps(third.jwks())),
                               content_type="application/json")
    return third, registration_id


def person(client, actions: LaunchActions, user, municipality, *, role="learner", context, link, ags=None,
           round_id=None) -> Person:
    """A launch through the tool's real login and launch endpoints from ``actions``' platform."""
    spec = actions.spec(municipality, user=user, role=role, course=COURSE, context_id=context, resource_link_id=link,
                        custom={"round": round_id} if round_id else {})
    response = actions.launch(spec, overrides={CLAIM_AGS: ags} if ags else None)
    assert response.status_code == 303, response.get_data(as_text=True)
    browser = Person.__new__(Person)
    browser.client, browser.home = client, response.headers["Location"]
    browser.token = re.search(r"lt=([^&]+)", browser.home).group(1)
    return browser


def hand_in(app, pupil: Person, content, sub: str) -> int:
    assert pupil.post(f"/assignment/{content['assignment2']}", {"text": f"{ANSWER} ({sub})"}).status_code == 303
    with new_session(app) as session:
        return session.scalar(select(Submission.id).where(Submission.sub == sub,
                                                          Submission.assignment_id == content["assignment2"]))


def review_page(teacher: Person, submission_id: int, sub: str):
    page = teacher.get(f"/teach/submission/{submission_id}")
    assert page.status_code == 200 and f"{ANSWER} ({sub})" in page.get_data(as_text=True)
    return page


def assert_sees_nothing(teacher: Person, pupils: dict[str, int]):
    dashboard = teacher.get("/teach/")
    assert dashboard.status_code == 200 and main_attrs(dashboard)["pupils"] == "0"
    queue = teacher.get("/teach/queue")
    assert queue.status_code == 200 and main_attrs(queue)["queue"] == "0"
    for sub, submission_id in pupils.items():
        assert pupil_label(sub) not in dashboard.get_data(as_text=True)
        assert teacher.get(f"/teach/pupil/{pupil_label(sub)}").status_code == 404
        for page in (teacher.get(f"/teach/submission/{submission_id}"),
                     teacher.post(f"/teach/submission/{submission_id}", {"feedback": "Bra", "score": "5"})):
            assert (page.status_code, error_code(page)) == (403, "forbidden")
            assert ANSWER not in page.get_data(as_text=True)


def test_one_round_three_municipalities_two_platforms_each_score_home(app, client, launches, round_content, moodle,
                                                                      teachers_platform, platform_http, idp):
    canvas = launches.platform
    third, third_registration = teachers_platform
    on_canvas, on_moodle, on_third = launches, LaunchActions(client, moodle), LaunchActions(client, third)
    canvas_ags = {m: {"scope": [SCOPE_LINEITEM, SCOPE_SCORE], "lineitems": url} for m, url in CANVAS_LINEITEMS.items()}
    moodle_ags = {"scope": [SCOPE_LINEITEM_READONLY, SCOPE_SCORE], "lineitems": MOODLE_LINEITEMS,
                  "lineitem": MOODLE_COLUMN}

    # Pupils of three municipalities, on two platforms, each from their own municipality's LMS course. The same
    # course ids on both platforms, as happens: the registration tells them apart.
    kiruna = person(client, on_canvas, "pupil-kiruna", KIRUNA, context="course-71", link="link-gitarr",
                    ags=canvas_ags[KIRUNA])
    are = person(client, on_canvas, "pupil-are", ARE, context="course-72", link="link-gitarr", ags=canvas_ags[ARE])
    boras = person(client, on_moodle, "pupil-boras", BORAS, context="course-71", link="link-gitarr", ags=moodle_ags)
    handed_in = {"pupil-kiruna": hand_in(app, kiruna, round_content, "pupil-kiruna"),
                 "pupil-are": hand_in(app, are, round_content, "pupil-are"),
                 "pupil-boras": hand_in(app, boras, round_content, "pupil-boras")}
    with new_session(app) as session:
        round_pk, later_pk = (session.scalar(select(CourseRound.id).where(CourseRound.course_code == COURSE,
                                                                          CourseRound.round_id == round_id))
                              for round_id in ("now", "later"))
        registrations = {s.sub: s.registration_id for s in session.scalars(select(Submission))}
        assert {s.round_pk for s in session.scalars(select(Submission))} == {round_pk}
        assert {s.sub: s.municipality_id for s in session.scalars(select(Submission))} == {
            "pupil-kiruna": KIRUNA, "pupil-are": ARE, "pupil-boras": BORAS}
    canvas_registration = registrations["pupil-kiruna"]
    assert registrations["pupil-are"] == canvas_registration != registrations["pupil-boras"]
    assert len({canvas_registration, registrations["pupil-boras"], third_registration}) == 3

    # The round's teacher, named by national staff, launches from the providing school's own platform (a third
    # registration, Stockholm's deployment, another LMS course) and has the whole round.
    name_round_teacher(app, "teacher-sara", registration_id=third_registration, name="Sara Strand")
    sara = person(client, on_third, "teacher-sara", STOCKHOLM, role="instructor", context="distans-gitarr",
                  link="stockholm-link")
    dashboard = sara.get("/teach/")
    body = dashboard.get_data(as_text=True)
    assert dashboard.status_code == 200 and main_attrs(dashboard)["pupils"] == "3"
    assert all(pupil_label(sub) in body for sub in handed_in) and all(m in body for m in (KIRUNA, ARE, BORAS))
    assert main_attrs(sara.get("/teach/queue"))["queue"] == "3"
    for sub, submission_id in handed_in.items():
        assert f"/teach/submission/{submission_id}?" in sara.get(f"/teach/pupil/{pupil_label(sub)}").get_data(
            as_text=True)
    for sub, score in (("pupil-kiruna", "7"), ("pupil-are", "9,5")):
        review_page(sara, handed_in[sub], sub)
        saved = sara.post(f"/teach/submission/{handed_in[sub]}", {"feedback": f"Bra jobbat, {sub}!", "score": score})
        assert saved.status_code == 303, saved.get_data(as_text=True)
    assert main_attrs(sara.get("/teach/queue"))["queue"] == "1"

    # The round's second teacher, named by e-mail, signs in through the staff OpenID Connect provider (another
    # browser, no launch) and reviews the rest of the round through the same pages, the round in the address.
    with new_session(app) as session:
        round_teachers.add_email_teacher(session, round_pk, email=EMAIL_TEACHER, name="Erik Ek", actor="test")
        session.commit()
    erik = sign_in_by_email(app, platform_http, idp, EMAIL_TEACHER.upper())
    assert main_attrs(erik.get("/teach/rounds"))["rounds"] == "1"
    classroom = f"/teach/rounds/{round_pk}"
    dashboard = erik.get(f"{classroom}/")
    assert main_attrs(dashboard)["pupils"] == "3" and main_attrs(dashboard)["classroom"] == "round"
    queue = erik.get(f"{classroom}/queue")
    assert main_attrs(queue)["queue"] == "1"
    assert f"/submission/{handed_in['pupil-boras']}" in queue.get_data(as_text=True)
    page = erik.get(f"{classroom}/submission/{handed_in['pupil-boras']}")
    assert page.status_code == 200 and f"{ANSWER} (pupil-boras)" in page.get_data(as_text=True)
    assert erik.post(f"{classroom}/submission/{handed_in['pupil-boras']}",
                     data={"feedback": "Fint spelat!", "score": "8"}).status_code == 400  # no CSRF proof
    saved = erik.post(f"{classroom}/submission/{handed_in['pupil-boras']}",
                      data={"feedback": "Fint spelat!", "score": "8", "csrf": csrf_of(page)})
    assert saved.status_code == 303, saved.get_data(as_text=True)
    other_round = erik.get(f"/teach/rounds/{later_pk}/")  # the course's later round: not Erik's
    assert (other_round.status_code, error_code(other_round)) == (403, "forbidden")
    with new_session(app) as session:
        reviewers = {r.sub: r.reviewer_sub for r in session.scalars(select(Review))}
    assert reviewers == {"pupil-kiruna": "teacher-sara", "pupil-are": "teacher-sara",
                         "pupil-boras": f"email:{EMAIL_TEACHER}"}

    # A local teacher (Kiruna's, in Kiruna's LMS course on Canvas) follows Kiruna's pupils only, read-only.
    local = person(client, on_canvas, "teacher-kiruna", KIRUNA, role="instructor", context="course-71",
                   link="link-gitarr")
    dashboard = local.get("/teach/")
    body = dashboard.get_data(as_text=True)
    assert main_attrs(dashboard)["pupils"] == "1" and pupil_label("pupil-kiruna") in body
    assert pupil_label("pupil-are") not in body and pupil_label("pupil-boras") not in body
    review_page(local, handed_in["pupil-kiruna"], "pupil-kiruna")
    refused = local.post(f"/teach/submission/{handed_in['pupil-kiruna']}", {"feedback": "Hej", "score": "1"})
    assert (refused.status_code, error_code(refused)) == (403, "review_forbidden")
    for sub in ("pupil-are", "pupil-boras"):  # the same course ids on Moodle are another platform's course
        page = local.get(f"/teach/submission/{handed_in[sub]}")
        assert (page.status_code, error_code(page)) == (403, "forbidden") and ANSWER not in page.get_data(as_text=True)

    # A teacher of another round of the course (named for it, launching into it) sees nothing of this one.
    name_round_teacher(app, "teacher-later", round_id="later", registration_id=third_registration)
    other_round = person(client, on_third, "teacher-later", STOCKHOLM, role="instructor", context="distans-gitarr",
                         link="stockholm-link", round_id="later")
    assert_sees_nothing(other_round, handed_in)
    with new_session(app) as session:
        assert session.scalar(select(func.count()).select_from(Review)) == 3  # Sara's two and Erik's one

    # The outbox: each score to the pupil's own platform, with that platform's token, in the column of the
    # pupil's own placement.
    created = {}

    def create_column(request):
        column = f"{request.url.split('?')[0]}/{len(created) + 1}"
        created[column] = json.loads(request.body)
        return 201, {}, json.dumps({"id": column, **created[column]})

    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        mock.post(canvas.auth_token_url, json={"access_token": "canvas-token", "token_type": "Bearer",
                                               "expires_in": 3600})
        mock.post(moodle.auth_token_url, json={"access_token": "moodle-token", "token_type": "Bearer",
                                               "expires_in": 3600})
        for url in CANVAS_LINEITEMS.values():
            mock.get(url, json=[])
            mock.add_callback(responses.POST, url, callback=create_column, content_type="application/json")
        mock.add(responses.POST, re.compile(r"https://canvas\.sandbox\.example/.*/scores"), status=200)
        mock.post(MOODLE_COLUMN.replace("/lineitem?", "/lineitem/scores?"), status=200)
        client_ = ServiceClient(get_lti(app).keys, timeout=2, policy=get_lti(app).outbound)
        report = grades.drain(app.extensions[SESSIONMAKER_KEY], client_)
        calls = [(c.request.method, c.request.url, c.request) for c in mock.calls]
    assert report.sent == 3 and report.dead == 0

    token_urls = [url for _method, url, _ in calls if url in (canvas.auth_token_url, moodle.auth_token_url)]
    assert sorted(token_urls) == sorted([canvas.auth_token_url, moodle.auth_token_url])  # one token per platform
    tokens = {url: req for _method, url, req in calls if url in token_urls}
    for url, platform in ((canvas.auth_token_url, canvas), (moodle.auth_token_url, moodle)):
        form = {k: v[0] for k, v in parse_qs(tokens[url].body).items()}
        assertion = jwt.decode(form["client_assertion"], options={"verify_signature": False})
        assert assertion["iss"] == assertion["sub"] == platform.client_id  # the tool, as registered there
    scores = {url.split("?")[0]: (req.headers["Authorization"], json.loads(req.body))
              for method, url, req in calls if method == "POST" and "/scores" in url}
    kiruna_column, are_column = (next(c for c in created if c.startswith(CANVAS_LINEITEMS[m])) for m in (KIRUNA, ARE))
    moodle_scores = MOODLE_COLUMN.split("?")[0] + "/scores"
    assert set(scores) == {kiruna_column + "/scores", are_column + "/scores", moodle_scores}
    sent = {url: (auth, body["userId"], body["scoreGiven"], body["scoreMaximum"])
            for url, (auth, body) in scores.items()}
    assert sent == {kiruna_column + "/scores": ("Bearer canvas-token", "pupil-kiruna", 7.0, 10.0),
                    are_column + "/scores": ("Bearer canvas-token", "pupil-are", 9.5, 10.0),
                    moodle_scores: ("Bearer moodle-token", "pupil-boras", 8.0, 20.0)}  # Moodle: the course total
    assert [url for method, url, _ in calls if method == "POST" and url.startswith(MOODLE_LINEITEMS)] == [
        MOODLE_COLUMN.replace("/lineitem?", "/lineitem/scores?")]  # the type_id of the column kept
    assert {column["resourceLinkId"] for column in created.values()} == {"link-gitarr"}
    assert not any(url.startswith(TEACHERS_BASE) for _method, url, _ in calls)  # nothing to the teacher's platform
    with new_session(app) as session:
        rows = session.scalars(select(OutboxItem).where(OutboxItem.status == "sent")).all()
        assert sorted((r.sub, r.registration_id) for r in rows) == sorted(registrations.items())


def test_the_second_sandbox_platform_launches_through_its_own_endpoints(app, client, demo, round_content, moodle):
    """Sandbox Moodle: its own issuer, client id and deployments; the sandbox start page's choice goes through
    the tool's login to Moodle's authorization endpoint, signed with Moodle's key."""
    canvas = get_platform(app)
    assert set(get_platforms(app)) == {"", MOODLE.key}
    assert (canvas.issuer, canvas.client_id) == ("http://localhost/sandbox", "kulturskola-sandbox")
    assert (moodle.issuer, moodle.client_id) == ("http://localhost/sandbox/moodle", MOODLE.client_id)
    assert moodle.jwks()["keys"][0]["kid"] != canvas.jwks()["keys"][0]["kid"]
    assert client.get("/sandbox/moodle/jwks").get_json() == moodle.jwks()
    assert client.get("/sandbox/nowhere/jwks").status_code == 404
    page = client.get("/sandbox/").get_data(as_text=True)
    assert 'label="Sandbox Canvas"' in page and 'label="Sandbox Moodle"' in page
    assert 'value="sandbox-SE-1490|"' in page and 'value="sandbox-SE-1490||moodle"' in page
    assert 'value="sandbox-region|SE-1490|moodle"' not in page  # Moodle has no regional deployment

    start = client.get("/sandbox/start", query_string={
        "deployment": "sandbox-SE-1490||moodle", "role": "learner", "user": "pupil-boras", "course": COURSE,
        "round": "now", "context": "boras-kulturskola", "link": "boras-gitarr"})
    login = urlsplit(start.headers["Location"])
    query = {k: v[0] for k, v in parse_qs(login.query).items()}
    assert (login.path, query["iss"], query["client_id"]) == ("/lti/login", moodle.issuer, moodle.client_id)
    to_platform = client.get("/lti/login", query_string=query)
    auth = urlsplit(to_platform.headers["Location"])
    assert f"{auth.scheme}://{auth.netloc}{auth.path}" == moodle.auth_login_url == "http://localhost/sandbox/moodle/auth"
    form = client.get(auth.path, query_string=auth.query)
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', form.get_data(as_text=True)))
    fields = {name: unescape(value) for name, value in fields.items()}
    header = jwt.get_unverified_header(fields["id_token"])
    claims = jwt.decode(fields["id_token"], options={"verify_signature": False})
    assert header["kid"] == moodle.jwks()["keys"][0]["kid"] and claims["aud"] == moodle.client_id
    assert claims["iss"] == moodle.issuer and claims["https://purl.imsglobal.org/spec/lti/claim/custom"] == {
        "round": "now", "course": COURSE}
    launched = client.post("/lti/launch", data=fields)
    assert launched.status_code == 303, launched.get_data(as_text=True)
    home = client.get(launched.headers["Location"])
    assert main_attrs(home)["municipality"] == "SE-1490" and main_attrs(home)["seat"] == "now"
    # Canvas's authorization endpoint refuses Moodle's login (another client id).
    refused = client.get("/sandbox/auth", query_string=auth.query)
    assert refused.status_code == 400


def test_a_launch_spec_of_one_sandbox_platform_is_refused_by_the_other(app, demo, moodle):
    canvas = get_platform(app)
    hint = canvas.encode_hint(LaunchSpec(deployment_id="sandbox-SE-1490"))
    with pytest.raises(SandboxError, match="not one of ours"):
        moodle.decode_hint(hint)


def test_the_demo_sets_up_the_cross_border_round_with_ready_made_launches(app, runner):
    from lti_tool.models import Order, RoundTeacher
    from lti_tool.sandbox import demo_round

    for _ in range(2):  # idempotent
        result = runner.invoke(args=["demo", "--no-serve"])
        assert result.exit_code == 0, result.output
    assert "pupil from Kiruna (Sandbox Canvas)" in result.output
    assert "pupil from Borås (Sandbox Moodle)" in result.output
    assert "the round's teacher, Sara Strand (Sandbox Moodle, Stockholm)" in result.output
    assert "http://localhost/sandbox/start?deployment=sandbox-SE-1490%7C&" in result.output
    with new_session(app) as session:
        course_round = session.scalar(select(CourseRound).where(CourseRound.course_code == demo_round.COURSE,
                                                                CourseRound.round_id == demo_round.ROUND))
        teachers = session.scalars(select(RoundTeacher).where(RoundTeacher.round_pk == course_round.id)).all()
        moodle = get_platform(app, MOODLE.key).registration(session)
        assert sorted((t.name, t.registration_id, t.sub, t.email) for t in teachers) == [
            ("Erik Ek", None, None, demo_round.EMAIL_TEACHER),
            ("Sara Strand", moodle.id, demo_round.TEACHER_SUB, None)]
        ordered = {o.municipality_id for o in session.scalars(select(Order).where(Order.round_pk == course_round.id))}
        assert set(demo_round.MUNICIPALITIES) <= ordered
        assert {launch.platform for launch in demo_round.LAUNCHES if launch.kind == demo_round.PUPIL} == {"", "moodle"}
    page = app.test_client().get("/sandbox/", headers={"Accept-Language": "en"})
    body = unescape(page.get_data(as_text=True))
    assert page.status_code == 200 and 'data-demo-links="5"' in body
    assert "pupil from Kiruna (Sandbox Canvas)" in body and "pupil from Borås (Sandbox Moodle)" in body
    assert "platform=moodle" in body


def through_the_sandbox(client, **query) -> Person:
    """A launch as a person makes it on the sandbox page: ``/sandbox/start``, the tool's login, the platform's
    own authorization endpoint, the tool's launch."""
    login = client.get("/sandbox/start", query_string=query)
    to_platform = client.get(login.headers["Location"])
    auth = urlsplit(to_platform.headers["Location"])
    form = client.get(auth.path, query_string=auth.query).get_data(as_text=True)
    fields = {name: unescape(value)
              for name, value in re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', form)}
    launched = client.post("/lti/launch", data=fields)
    assert launched.status_code == 303, launched.get_data(as_text=True)
    browser = Person.__new__(Person)
    browser.client, browser.home = client, launched.headers["Location"]
    browser.token = re.search(r"lt=([^&]+)", browser.home).group(1)
    return browser


def test_the_sandbox_gradebooks_take_each_score_on_its_own_platform(app, client, demo, round_content, moodle,
                                                                      platform_http):
    """The demo's path with nothing faked but the network: the sandbox platforms' own token endpoints and
    gradebooks (AGS) answer the tool's grade outbox, each score in the pupil's own platform."""
    canvas = get_platform(app)

    def into_the_app(request):  # the tool's outbound calls to the sandbox, answered by the sandbox's views
        parts = urlsplit(request.url)
        answer = client.open(parts.path, method=request.method, query_string=parts.query, data=request.body,
                             headers={k: v for k, v in request.headers.items() if k.lower() != "content-length"})
        return answer.status_code, {"Content-Type": answer.content_type or "text/plain"}, answer.get_data()

    for method in (responses.GET, responses.POST):
        platform_http.add_callback(method, re.compile(r"http://localhost/sandbox/(moodle/)?(token|courses/.*)"),
                                   callback=into_the_app)
    common = {"course": COURSE, "round": "now", "link": "gitarr", "gradebook": "1"}
    kiruna = through_the_sandbox(client, deployment=f"sandbox-{KIRUNA}|", user="pupil-kiruna", context="kiruna",
                                 **common)
    boras = through_the_sandbox(client, deployment=f"sandbox-{BORAS}||moodle", user="pupil-boras", context="boras",
                                **common)
    handed_in = {sub: hand_in(app, pupil, round_content, sub) for sub, pupil in (("pupil-kiruna", kiruna),
                                                                               ("pupil-boras", boras))}
    name_round_teacher(app, "teacher-sara")  # on Sandbox Canvas
    sara = through_the_sandbox(client, deployment=f"sandbox-{STOCKHOLM}|", user="teacher-sara", role="instructor",
                               context="stockholm", **common)
    for sub, score in (("pupil-kiruna", "7"), ("pupil-boras", "6")):
        assert sara.post(f"/teach/submission/{handed_in[sub]}", {"feedback": "Bra!", "score": score}).status_code == 303

    client_ = ServiceClient(get_lti(app).keys, timeout=2, policy=get_lti(app).outbound)
    report = grades.drain(app.extensions[SESSIONMAKER_KEY], client_)
    assert (report.sent, report.dead) == (2, 0)

    def scores(platform):
        return {(course["context"], column["resourceLinkId"], score["user"], score["scoreGiven"])
                for course in platform.gradebook.view() for column in course["columns"] for score in column["scores"]}

    assert scores(canvas) == {("kiruna", "gitarr", "pupil-kiruna", 7.0)}
    assert scores(moodle) == {("boras", "gitarr", "pupil-boras", 6.0)}
    page = client.get("/sandbox/gradebook")
    assert page.status_code == 200 and main_attrs(page)["gradebook-scores"] == "2"
    # The gradebooks answer only the tool's tokens, each platform its own.
    assert client.get(canvas.lineitems_url("kiruna").removeprefix("http://localhost")).status_code == 401
    refused = client.post(moodle.auth_token_url.removeprefix("http://localhost"),
                          data={"grant_type": "client_credentials"})
    assert refused.status_code == 400 and refused.get_json()["error"] == "unsupported_grant_type"


def test_without_the_sandbox_no_sandbox_platform_is_served(config, app_factory):
    """Production (the sandbox never on there): neither platform's pages, keys, token endpoint or gradebook."""
    from lti_tool.sandbox import is_sandbox_registration
    from lti_tool.models import Registration

    app = app_factory({**config, "ENV": "production", "SANDBOX": False, "BASE_URL": "https://tool.example",
                       "SECRET_KEY": "p" * 40})
    client = app.test_client()
    for path in ("/sandbox/", "/sandbox/moodle/jwks", "/sandbox/jwks", "/sandbox/gradebook",
                 "/sandbox/start?deployment=sandbox-SE-1490||moodle"):
        assert client.get(path).status_code == 404, path
    for path in ("/sandbox/token", "/sandbox/moodle/token", "/sandbox/moodle/courses/c/line_items"):
        assert client.post(path).status_code == 404, path
    with app.app_context():
        assert not is_sandbox_registration(Registration(issuer="https://tool.example/sandbox",
                                                        client_id="kulturskola-sandbox"))
