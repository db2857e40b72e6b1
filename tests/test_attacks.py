"""Attacks over HTTP by an outsider, a pupil, a teacher and a municipal administrator (security review after
the fix of dynamic registration takeover, the outbound guard, access.py, municipal.py and csrf.py).

The first tests are findings of that review, fixed since (a learner with a teacher role elsewhere, a parent
taking a paid seat, a configuration URL escaping its issuer's path by dot segments, malformed numbers in forms);
the rest are attacks that failed from the start, kept as regression guards."""

from __future__ import annotations

import io
import re

import pytest
import responses
from sqlalchemy import func, select

from lti_tool.db import SESSIONMAKER_KEY, new_session
from lti_tool.domain.claims import CLAIM_AGS, CLAIM_NRPS, CLAIM_ROLES, SCOPE_NRPS, SCOPE_SCORE
from lti_tool.lti import get_lti
from lti_tool.lti.ags import ServiceClient
from lti_tool.models import Order, Registration, Seat, Submission
from lti_tool.sandbox import SHARED_DEPLOYMENT
from lti_tool.services import grades, seats
from lti_tool.services.delivery import pupil_label

from .catalog_factory import add_content, add_course
from .conftest import error_code, name_round_teacher
from .sample_files import PNG
from .test_access import SECRET_TEXT, browser, content, hand_in  # noqa: F401  (content: a fixture)

LIS = "http://purl.imsglobal.org/vocab/lis/v2/"
LEARNER = LIS + "membership#Learner"
STUDENT = LIS + "institution/person#Student"
INSTRUCTOR = LIS + "membership#Instructor"
FACULTY = LIS + "institution/person#Faculty"
INSTITUTION_INSTRUCTOR = LIS + "institution/person#Instructor"
MENTOR = LIS + "membership#Mentor"
INSTITUTION_ADMIN = LIS + "institution/person#Administrator"
CONTEXT_ADMIN = LIS + "membership#Administrator"


def token_of(response) -> str:
    assert response.status_code == 303, response.get_data(as_text=True)
    return re.search(r"lt=([^&\"]+)", response.headers["Location"]).group(1)


def launch_as(launches, user, roles, *, municipality="SE-1490", course="GIT-AK-1", link="sandbox-link-1",
              context="sandbox-course-1", overrides=None, **spec):
    """A real signed launch whose roles claim is exactly ``roles``; returns the response."""
    spec = launches.spec(municipality, user=user, role="learner", course=course, resource_link_id=link,
                         context_id=context, **spec)
    return launches.launch(spec, overrides={CLAIM_ROLES: roles, **(overrides or {})})


def seat_count(app) -> int:
    with new_session(app) as session:
        return session.scalar(select(func.count()).select_from(Seat).where(Seat.status == "active"))


# =====================================================================================================
# Findings (each fails today)
# =====================================================================================================

@pytest.mark.parametrize("institution_role", [FACULTY, INSTITUTION_INSTRUCTOR])
def test_learner_with_an_institution_teacher_role_reads_classmates_work(app, client, launches, content,
                                                                        institution_role):
    pupil = browser(client, launches, "pupil-a")
    text_id, file_id = hand_in(pupil, content)
    # A learner of the same LMS course whose platform account also carries an institution role (a parent who
    # teaches elsewhere in the municipality, an older pupil who assists at the arts school...).
    response = launch_as(launches, "classmate-b", [LEARNER, institution_role])
    token = token_of(response)
    dashboard = client.get(f"/teach/?lt={token}")
    review = client.get(f"/teach/submission/{text_id}?lt={token}")
    file_ = client.get(f"/files/{file_id}?lt={token}")
    assert dashboard.status_code == 403 and pupil_label("pupil-a") not in dashboard.get_data(as_text=True)
    assert review.status_code == 403 and SECRET_TEXT not in review.get_data(as_text=True)
    assert file_.status_code == 403 and PNG not in file_.data


@pytest.mark.parametrize("roles", [[MENTOR], [], [LIS + "system/person#None"]])
def test_observer_or_roleless_launch_does_not_take_a_paid_seat(app, client, launches, demo, roles):
    with new_session(app) as session:
        add_course(session)
        seats.set_order(session, "SE-1490", "GIT-AK-1", "now", 1)  # one paid seat
        session.commit()
    parent = launch_as(launches, "parent-of-pupil-a", roles)
    assert parent.status_code == 403 and error_code(parent) == "role_not_served"
    assert seat_count(app) == 0
    # the municipality's real pupil still gets the one seat it paid for
    pupil = launch_as(launches, "pupil-a", [LEARNER, STUDENT])
    assert pupil.status_code == 303 and seat_count(app) == 1


def test_registration_configuration_url_with_dot_segments_escapes_the_issuer_path(app, client):
    issuer = "https://lms.example/moodle"
    fetched = "https://lms.example/moodle-other/openid-configuration"  # another tenant on the same host
    config = {"issuer": issuer, "authorization_endpoint": "https://lms.example/moodle-other/auth",
              "token_endpoint": "https://lms.example/moodle-other/token",
              "jwks_uri": "https://lms.example/moodle-other/jwks",
              "registration_endpoint": "https://lms.example/moodle-other/register"}
    for url in ("https://lms.example/moodle/../moodle-other/openid-configuration",
                "https://lms.example/moodle/%2e%2E/moodle-other/openid-configuration",
                "https://lms.example/moodle/./../moodle-other/openid-configuration"):
        with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
            mock.get(fetched, json=config)
            page = client.get("/lti/register", query_string={"openid_configuration": url},
                              headers={"Accept-Language": "en"})
            assert not mock.calls, url  # refused before anything is fetched
        assert page.status_code == 400 and error_code(page) == "registration_url_unsafe", url


def test_score_goes_to_its_own_resource_links_column_not_another_courses(app, client, launches, demo):
    """Regression guard. At HEAD (6dc35eb) services/grades.py _fallback_lineitem took the LMS course's first
    resource-link column whatever course the hand-in belonged to (the piano score went to the guitar column);
    the grade-passback refactor in progress in the working tree sends it to its own placement's column."""
    with new_session(app) as session:
        add_course(session, "GIT-AK-1")
        add_content(session, "GIT-AK-1")
        add_course(session, "PIANO-1")
        piano = add_content(session, "PIANO-1")
        for code in ("GIT-AK-1", "PIANO-1"):
            seats.set_order(session, "SE-1490", code, "now", 10)
        session.commit()
    guitar_column = "https://lms.example/api/lti/courses/7/line_items/1"
    piano_column = "https://lms.example/api/lti/courses/7/line_items/2"

    def ags(column):  # the platform declined line-item management: only the placement's own column
        return {CLAIM_AGS: {"scope": [SCOPE_SCORE], "lineitem": column}}

    # one LMS course (context) where both catalog courses are placed, each with its own column
    token_of(launch_as(launches, "pupil-a", [LEARNER], course="GIT-AK-1", link="link-guitar",
                       overrides=ags(guitar_column)))
    pupil = token_of(launch_as(launches, "pupil-a", [LEARNER], course="PIANO-1", link="link-piano",
                               overrides=ags(piano_column)))
    teacher = token_of(launch_as(launches, "teacher-t", [INSTRUCTOR], course="PIANO-1", link="link-piano",
                                 overrides=ags(piano_column)))
    name_round_teacher(app, "teacher-t", course="PIANO-1")
    assert client.post(f"/assignment/{piano['assignment2']}?lt={pupil}", data={"text": "Piano"}).status_code == 303
    with new_session(app) as session:
        submission_id = session.scalar(select(Submission.id).where(Submission.assignment_id == piano["assignment2"]))
    assert client.post(f"/teach/submission/{submission_id}?lt={teacher}",
                       data={"feedback": "Bra", "score": "7"}).status_code == 303
    service = ServiceClient(get_lti(app).keys, timeout=2, policy=get_lti(app).outbound)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.post("http://localhost/sandbox/token", json={"access_token": "t", "expires_in": 3600})
        mock.post(guitar_column + "/scores", status=200)
        mock.post(piano_column + "/scores", status=200)
        grades.drain(app.extensions[SESSIONMAKER_KEY], service)
        posted = [call.request.url for call in mock.calls if call.request.url.endswith("/scores")]
    assert posted == [piano_column + "/scores"]


@pytest.mark.parametrize("path, form", [
    ("/municipal/orders", {"round": "abc", "seats": "1"}),
    ("/municipal/orders", {"round": "99999999999999999999999", "seats": "1"}),
    ("/municipal/orders", {"round": "\u00b2", "seats": "1"}),
    ("/municipal/orders", {"round": "1", "seats": "99999999999999999999999"}),
    ("/municipal/orders", {"round": "1", "seats": "\u00b2"}),
    ("/deep-link/", {"order": "\u00b2"}),  # "²".isdigit() is True, int("²") raises
    ("/withdraw", {"round": "\u00b2"}),
])
def test_malformed_numbers_in_forms_are_refused_with_an_error_code(app, client, launches, demo, path, form):
    from lti_tool.domain.claims import MESSAGE_DEEP_LINKING

    with new_session(app) as session:
        add_course(session)
        seats.set_order(session, "SE-1490", "GIT-AK-1", "now", 1)
        session.commit()
    if path == "/withdraw":
        response = launches.launch(launches.spec("SE-1490", user="p1", course="GIT-AK-1"))
    elif path.startswith("/deep-link"):
        response = launches.launch(launches.spec("SE-1490", user="t1", role="instructor",
                                                 message_type=MESSAGE_DEEP_LINKING))
    else:
        response = launches.launch(launches.spec("SE-1490", user="admin-1", role="administrator"))
    token = token_of(response)
    answer = client.post(f"{path}?lt={token}", data=form)
    assert 400 <= answer.status_code < 500 and error_code(answer) is not None


# =====================================================================================================
# Attacks that held (regression guards)
# =====================================================================================================

def test_pupil_launch_token_opens_no_teacher_municipal_or_placing_page(app, client, launches, content):
    victim = browser(client, launches, "pupil-a")
    text_id, file_id = hand_in(victim, content)
    attacker = browser(client, launches, "pupil-b")
    token = attacker.token
    for path in ("/teach/", "/teach/queue", f"/teach/pupil/{pupil_label('pupil-a')}", f"/teach/submission/{text_id}",
                 "/municipal/", "/municipal/costs.csv", "/deep-link/"):
        page = client.get(f"{path}?lt={token}")
        assert page.status_code in (403, 404), path
        assert SECRET_TEXT not in page.get_data(as_text=True)
    assert client.get(f"/files/{file_id}?lt={token}").status_code == 403
    reviewed = client.post(f"/teach/submission/{text_id}?lt={token}", data={"feedback": "x", "score": "1"})
    ordered = client.post(f"/municipal/orders?lt={token}", data={"round": "1", "seats": "100"})
    assert reviewed.status_code == 403 and ordered.status_code == 403
    assert error_code(ordered) == "municipal_console_forbidden"
    # the pupil's own review page (their own hand-in, but not a teacher): refused
    own = browser(client, launches, "pupil-a")
    assert client.get(f"/teach/submission/{text_id}?lt={own.token}").status_code == 403


def test_pupil_cannot_open_another_courses_lesson_or_assignment(app, client, launches, content):
    with new_session(app) as session:
        add_course(session, "PIANO-1")
        piano = add_content(session, "PIANO-1")
        session.commit()
    pupil = browser(client, launches, "pupil-a")
    for path in (f"/lesson/{piano['lesson1']}", f"/assignment/{piano['assignment2']}"):
        assert pupil.get(path).status_code == 403
    assert pupil.post(f"/assignment/{piano['assignment2']}", {"text": "x"}).status_code == 403
    with new_session(app) as session:
        assert session.scalar(select(func.count()).select_from(Submission)) == 0


def test_teacher_of_another_municipalitys_deployment_sees_nothing(app, client, launches, content):
    pupil = browser(client, launches, "pupil-a")
    text_id, file_id = hand_in(pupil, content)
    teacher = browser(client, launches, "teacher-x", role="instructor", municipality="SE-1440")
    assert teacher.get(f"/teach/submission/{text_id}").status_code == 403
    assert teacher.get(f"/files/{file_id}").status_code == 403
    assert teacher.post(f"/teach/submission/{text_id}", {"feedback": "x", "score": "1"}).status_code == 403
    assert pupil_label("pupil-a") not in teacher.get("/teach/").get_data(as_text=True)


@pytest.mark.parametrize("roles", [
    [CONTEXT_ADMIN], ["Administrator"], [LIS + "membership/Administrator#Administrator"],
    ["urn:lti:instrole:ims/lis/Administrator"], ["urn:lti:sysrole:ims/lis/SysAdmin"],
    ["http://purl.imsglobal.org/vocab/lis/v2/institution/person#administrator"],  # case
    [INSTITUTION_ADMIN + " "],  # trailing space
])
def test_lookalike_administrator_roles_never_open_the_console(config, launches_factory, roles):
    actions = launches_factory({**config, "MUNICIPAL_ADMIN_ROLES": {"*": [INSTITUTION_ADMIN]}})
    launched = actions.launch(actions.spec("SE-1490", role="administrator", user="head-1"),
                              overrides={CLAIM_ROLES: roles})
    if launched.status_code == 403:  # no course role the tool serves: refused at the launch itself
        assert error_code(launched) == "role_not_served"
        return
    page = actions.client.get(f"/municipal/?lt={token_of(launched)}")
    assert page.status_code == 403 and error_code(page) == "municipal_console_forbidden"


def test_contact_of_one_municipality_cannot_reach_another_through_the_shared_deployment(config, launches_factory):
    actions = launches_factory({**config, "MUNICIPAL_ADMIN_ROLES": {}})
    app = actions.client.application
    with new_session(app) as session:
        add_course(session)
        seats.set_order(session, "SE-1440", "GIT-AK-1", "now", 2)
        session.commit()
    result = app.test_cli_runner().invoke(args=["municipalities", "add-contact", "--municipality", "SE-1490",
                                                "--issuer", actions.platform.issuer, "--client-id",
                                                "kulturskola-sandbox", "--sub", "head-1"])
    assert result.exit_code == 0, result.output
    spec = actions.spec("SE-1490", role="administrator", user="head-1", deployment_id=SHARED_DEPLOYMENT,
                        municipality_code="SE-1440")
    token = token_of(actions.launch(spec, overrides={CLAIM_ROLES: [INSTITUTION_ADMIN]}))
    assert actions.client.get(f"/municipal/?lt={token}").status_code == 403
    with new_session(app) as session:
        round_pk = session.scalar(select(Order.round_pk).where(Order.municipality_id == "SE-1440"))
    changed = actions.client.post(f"/municipal/orders?lt={token}&municipality=SE-1440",
                                  data={"round": round_pk, "seats": "0", "municipality": "SE-1440"})
    assert changed.status_code == 403
    with new_session(app) as session:
        assert session.scalar(select(Order.seats_budget).where(Order.municipality_id == "SE-1440")) == 2


def test_own_console_never_changes_another_municipalitys_order(app, client, launches, demo):
    with new_session(app) as session:
        add_course(session)
        seats.set_order(session, "SE-1440", "GIT-AK-1", "now", 5)
        session.commit()
        round_pk = session.scalar(select(Order.round_pk))
    token = token_of(launches.launch(launches.spec("SE-1490", role="administrator", user="admin-1")))
    answer = client.post(f"/municipal/orders?lt={token}", data={"round": round_pk, "seats": "0",
                                                                 "municipality": "SE-1440"})
    assert answer.status_code == 403  # a form naming another municipality is refused
    answer = client.post(f"/municipal/orders?lt={token}", data={"round": round_pk, "seats": "0"})
    assert answer.status_code == 303  # an order of its own, for its own municipality
    with new_session(app) as session:
        budgets = dict(session.execute(select(Order.municipality_id, Order.seats_budget)).all())
    assert budgets == {"SE-1440": 5, "SE-1490": 0}


def test_waiting_list_offer_cannot_be_altered_for_another_pupil_or_order(app, client, launches, demo):
    from itsdangerous import URLSafeTimedSerializer

    with new_session(app) as session:
        add_course(session)
        seats.set_order(session, "SE-1490", "GIT-AK-1", "now", 1)
        session.commit()
    launches.launch(launches.spec("SE-1490", user="p1", course="GIT-AK-1"))
    refused = launches.launch(launches.spec("SE-1490", user="p2", course="GIT-AK-1"))
    wt = re.search(r'name="wt" value="([^"]+)"', refused.get_data(as_text=True)).group(1)
    forged = URLSafeTimedSerializer("another-secret", salt="lti_tool.waitlist-offer").dumps(
        {"r": 1, "s": "p3", "o": 1, "l": "sv"})
    from itsdangerous.encoding import base64_decode, base64_encode

    payload, stamp, signature = wt.split(".")
    other_pupil = base64_encode(base64_decode(payload).replace(b'"p2"', b'"p3"')).decode()
    assert other_pupil != payload
    for token in (forged, f"{payload}.{stamp}.AAAA", f"{other_pupil}.{stamp}.{signature}"):
        answer = client.post("/waitlist", data={"wt": token})
        assert answer.status_code == 400
    # a launch token is not a waiting-list offer (another salt)
    teacher = token_of(launches.launch(launches.spec("SE-1490", user="t1", role="instructor", course="GIT-AK-1")))
    assert client.post("/waitlist", data={"wt": teacher}).status_code == 400
    assert client.post("/waitlist", data={"wt": wt}).status_code == 200


def test_launch_token_is_not_accepted_as_another_signed_value(app, client, launches, demo):
    token = token_of(launches.launch(launches.spec("SE-1490", user="p1")))
    finished = client.post("/lti/register", data={"carried": token})
    assert finished.status_code == 400 and error_code(finished) == "csrf_invalid"


def test_state_changing_requests_without_their_proof_are_refused(app, client, launches, content):
    pupil = browser(client, launches, "pupil-a")
    text_id, _file_id = hand_in(pupil, content)
    for path, data in ((f"/teach/submission/{text_id}", {"feedback": "x", "score": "1"}),
                       ("/municipal/orders", {"round": "1", "seats": "1"}),
                       ("/withdraw", {"round": "1"}), (f"/lesson/{content['lesson1']}", {}),
                       ("/deep-link/", {"order": "1"}), ("/staff/outbox/retry", {}),
                       ("/staff/deployments/1/deactivate", {}), ("/staff/registrations/1/approve", {}),
                       ("/healthz", {}), ("/privacy", {})):
        answer = client.post(path, data={**data, "lt": "forged"})
        assert answer.status_code in (400, 405), path
        if answer.status_code == 400:
            assert error_code(answer) == "csrf_invalid", path


def test_staff_console_is_closed_without_a_sign_in(app, client, demo):
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("staff.") and "GET" in rule.methods and not rule.arguments:
            if rule.endpoint in ("staff.sign_in", "staff.sign_in_oidc", "staff.callback"):
                continue
            page = client.get(rule.rule)
            assert page.status_code == 302 and "/staff/sign-in" in page.headers["Location"], rule.rule
    sign_in = client.get("/staff/sign-in?next=https://evil.example/")
    assert "evil.example" not in sign_in.headers.get("Location", "")
    assert "frame-ancestors 'none'" in sign_in.headers["Content-Security-Policy"]
    assert sign_in.headers["X-Frame-Options"] == "DENY"
    # the local sign-in needs the page's CSRF token (no login CSRF)
    assert client.post("/staff/sign-in/local", data={"name": "x"}).status_code == 400


def test_login_never_redirects_to_a_url_the_request_names(app, client, launches, platform):
    spec = launches.spec("SE-1490")
    query = platform.login_initiation(spec)
    for target in ("https://evil.example/lti/launch", "//evil.example/lti/launch", "http://localhost.evil.example/",
                   "http://localhost@evil.example/lti/launch", "javascript:alert(1)"):
        answer = client.get("/lti/login", query_string={**query, "target_link_uri": target})
        assert answer.status_code == 400 and error_code(answer) == "target_link_uri_invalid", target
    answer = client.get("/lti/login", query_string={**query, "redirect_uri": "https://evil.example/"})
    assert answer.status_code == 302 and answer.headers["Location"].startswith(platform.auth_login_url)
    assert "evil.example" not in answer.headers["Location"]
    assert client.get("/lti/relaunch/not-a-state").status_code == 400


def test_pages_after_a_launch_are_framed_only_by_the_launching_platform(app, client, launches, content):
    pupil = browser(client, launches, "pupil-a")
    page = client.get(pupil.home)
    csp = page.headers["Content-Security-Policy"]
    ancestors = re.search(r"frame-ancestors ([^;]+)", csp).group(1).split()
    assert "*" not in ancestors and set(ancestors) <= {"'self'", "http://localhost"}
    assert "script-src 'self' 'nonce-" in csp and "'unsafe-inline'" not in csp.split("script-src")[1].split(";")[0]
    assert page.headers["Referrer-Policy"] == "no-referrer"


def test_nrps_url_from_a_launch_at_a_link_local_address_is_never_fetched(app, client, launches, content):
    metadata = "http://169.254.169.254/latest/meta-data/iam/security-credentials/"
    nrps = {CLAIM_NRPS: {"context_memberships_url": metadata, "service_versions": ["2.0"]},
            CLAIM_AGS: {"scope": [SCOPE_NRPS]}}
    pupil = launch_as(launches, "pupil-a", [LEARNER], overrides=nrps)
    assert pupil.status_code == 303
    token = token_of(launch_as(launches, "teacher-t", [INSTRUCTOR], overrides=nrps))
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.post("http://localhost/sandbox/token", json={"access_token": "t", "expires_in": 3600})
        mock.get(metadata, json={"members": []})
        page = client.get(f"/teach/?lt={token}")
        assert all("169.254" not in call.request.url for call in mock.calls)
    assert page.status_code == 200  # the last known roster, no error leaked


def test_lineitems_url_at_a_link_local_address_is_never_fetched(app, client, launches, content):
    lineitems = "http://169.254.169.254/latest/meta-data/"
    ags = {CLAIM_AGS: {"scope": [SCOPE_SCORE, "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem"],
                       "lineitems": lineitems}}
    pupil = token_of(launch_as(launches, "pupil-a", [LEARNER], overrides=ags))
    teacher = token_of(launch_as(launches, "teacher-t", [INSTRUCTOR], overrides=ags))
    name_round_teacher(app, "teacher-t")
    assert client.post(f"/assignment/{content['assignment2']}?lt={pupil}", data={"text": "x"}).status_code == 303
    with new_session(app) as session:
        submission_id = session.scalar(select(Submission.id))
    assert client.post(f"/teach/submission/{submission_id}?lt={teacher}",
                       data={"feedback": "Bra", "score": "7"}).status_code == 303
    service = ServiceClient(get_lti(app).keys, timeout=2, policy=get_lti(app).outbound)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.post("http://localhost/sandbox/token", json={"access_token": "t", "expires_in": 3600})
        mock.get(re.compile(r"http://169\.254\.169\.254/.*"), json=[])
        mock.post(re.compile(r"http://169\.254\.169\.254/.*"), json={"id": lineitems + "1"})
        grades.drain(app.extensions[SESSIONMAKER_KEY], service)
        assert all("169.254" not in call.request.url for call in mock.calls)


def test_hand_in_file_is_served_as_a_sandboxed_attachment_under_the_tools_name(app, client, launches, content):
    pupil = browser(client, launches, "pupil-a")
    answer = pupil.post(f"/assignment/{content['assignment1']}",
                        {"file": (io.BytesIO(PNG), 'x.html"; filename*=UTF-8\'\'evil.html')},
                        content_type="multipart/form-data")
    assert answer.status_code == 303
    with new_session(app) as session:
        file_id = session.scalar(select(Submission.id).where(Submission.file_key.is_not(None)))
    download = pupil.get(f"/files/{file_id}")
    assert download.headers["Content-Disposition"].startswith("attachment; filename=")
    assert "html" not in download.headers["Content-Disposition"] and download.headers["Content-Type"] == "image/png"
    assert "sandbox" in download.headers["Content-Security-Policy"]
    download.close()


@pytest.mark.parametrize("body", [
    b"<html><script>alert(1)</script></html>",
    b"GIF89a<svg onload=alert(1)>",
    b"%PDF-1.4\n<html><script>alert(1)</script>",
    PNG[:8] + b"<script>alert(1)</script>",
])
def test_polyglot_hand_ins_are_refused(app, client, launches, content, body):
    pupil = browser(client, launches, "pupil-a")
    answer = pupil.post(f"/assignment/{content['assignment1']}", {"file": (io.BytesIO(body), "a.png")},
                        content_type="multipart/form-data")
    assert answer.status_code == 400 and error_code(answer) == "upload_type"
    with new_session(app) as session:
        assert session.scalar(select(func.count()).select_from(Submission)) == 0


def test_pending_registration_id_in_the_login_url_is_refused(app, client, launches, platform):
    with new_session(app) as session:
        pending = Registration(issuer=platform.issuer, client_id="kulturskola-sandbox", status="pending",
                               name="look-alike", auth_login_url="https://evil.example/auth",
                               auth_token_url="https://evil.example/token", jwks_url="https://evil.example/jwks")
        session.add(pending)
        session.commit()
        pending_id = pending.id
    query = platform.login_initiation(launches.spec("SE-1490"))
    answer = client.get(f"/lti/login/{pending_id}", query_string=query)
    assert answer.status_code == 403 and error_code(answer) == "registration_pending"
    routed = client.get("/lti/login", query_string=query)  # the active one still routes, never the pending
    assert routed.status_code == 302 and routed.headers["Location"].startswith(platform.auth_login_url)
