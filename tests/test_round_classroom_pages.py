"""The round's classroom through the pages: a round teacher from another platform sees and reviews every pupil
of the round, grouped by municipality; a local teacher follows read-only; a teacher of another round sees
nothing; "Your rounds"; teaching invitations accepted from a launch; a teacher signed in by e-mail (the staff
OpenID Connect sign-in); national staff naming teachers and the providing school; the municipal contact's
read-only view of their own pupils' progress."""

from __future__ import annotations

import io
import re
import time
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
import responses
from sqlalchemy import func, select

from lti_tool import clock
from lti_tool.db import new_session
from lti_tool.domain.claims import CLAIM_AGS, CLAIM_CONTEXT, SCOPE_LINEITEM, SCOPE_SCORE
from lti_tool.models import (AuditEntry, Course, CourseRound, LessonProgress, OutboxItem, Review, RosterMember,
                             RoundTeacher, Submission)
from lti_tool.services import round_teachers
from lti_tool.services.delivery import pupil_label

from . import test_access, test_staff
from .conftest import error_code, main_attrs, name_round_teacher
from .sample_files import PNG
from .test_delivery import Person
from .test_staff import IDP, csrf_of, sign_in

# Fixtures of other test modules, used here by name.
content = test_access.content
other_platform = test_access.other_platform
idp = test_staff.idp

AGS = {CLAIM_AGS: {"scope": [SCOPE_SCORE, SCOPE_LINEITEM], "lineitems": "https://lms.example/lineitems"}}


def person(client, launches, user, *, role="learner", municipality="SE-1490", round_id=None, ags=False,
           context="sandbox-course-1", link="sandbox-link-1") -> Person:
    """A browser after a launch through the real login and launch endpoints (English pages)."""
    spec = launches.spec(municipality, user=user, role=role, course="GIT-AK-1", context_id=context,
                         resource_link_id=link, locale="en-GB", custom={"round": round_id} if round_id else {})
    response = launches.launch(spec, overrides=AGS if ags else None)
    assert response.status_code == 303, response.get_data(as_text=True)
    browser = Person.__new__(Person)
    browser.client, browser.home = client, response.headers["Location"]
    browser.token = re.search(r"lt=([^&]+)", browser.home).group(1)
    return browser


def round_pk(app, round_id="now") -> int:
    with new_session(app) as session:
        return session.scalar(select(CourseRound.id).where(CourseRound.course_code == "GIT-AK-1",
                                                          CourseRound.round_id == round_id))


def registration_of(app, platform) -> int:
    with new_session(app) as session:
        return platform.registration(session).id


def text_hand_in(pupil: Person, made, text="My answer") -> None:
    assert pupil.post(f"/assignment/{made['assignment2']}", {"text": text}).status_code == 303


def submission_of(app, sub) -> int:
    with new_session(app) as session:
        return session.scalar(select(Submission.id).where(Submission.sub == sub))


def count(app, model, *where) -> int:
    with new_session(app) as session:
        return session.scalar(select(func.count()).select_from(model).where(*where))


@pytest.fixture
def round_of_three(app, client, launches, content):
    """Three pupils of the "now" round from three municipalities (two countries) of the sandbox platform, each
    with a text handed in (Ale's first), their platform offering scores."""
    pupils = {sub: person(client, launches, sub, municipality=municipality, ags=True)
              for sub, municipality in (("p-ale", "SE-1440"), ("p-boras", "SE-1490"), ("p-oslo", "NO-0301"))}
    for sub in ("p-ale", "p-boras", "p-oslo"):
        text_hand_in(pupils[sub], content, f"Answer of {sub}")
    return pupils


# -- the round teacher ----------------------------------------------------------------------------------------

def test_a_round_teacher_from_another_platform_sees_the_whole_round_by_municipality_and_reviews(
        app, client, launches, content, other_platform, round_of_three):
    sandbox = registration_of(app, launches.platform)
    name_round_teacher(app, "rita", registration_id=registration_of(app, other_platform.platform), name="Rita Rund")
    with new_session(app) as session:  # one lesson done by the pupil from Borås
        session.add(LessonProgress(lesson_id=content["lesson1"], registration_id=sandbox, sub="p-boras"))
        session.commit()
    teacher = person(client, other_platform, "rita", role="instructor")
    dashboard = teacher.get("/teach/")
    attrs, body = main_attrs(dashboard), dashboard.get_data(as_text=True)
    assert dashboard.status_code == 200
    assert (attrs["classroom"], attrs["pupils"], attrs["waiting"]) == ("round", "3", "3")
    groups = re.findall(r'data-municipality-group="([^"]+)" data-group-pupils="(\d+)"', body)
    assert groups == [("SE-1440", "1"), ("SE-1490", "1"), ("NO-0301", "1")]  # by name: Ale, Borås, Oslo
    assert '">Ale <span class="code">(SE-1440)</span></h3>' in body and "Teachers: Rita Rund" in body
    assert "1 of 2 lessons" in body and "0 of 2 lessons" in body
    # the queue: oldest first, every municipality's work
    queue = teacher.get("/teach/queue")
    text = queue.get_data(as_text=True)
    assert main_attrs(queue)["queue"] == "3"
    assert text.index(pupil_label("p-ale")) < text.index(pupil_label("p-boras")) < text.index(pupil_label("p-oslo"))
    # review the Norwegian pupil's work, then change the review: the pupil's page keeps the history
    oslo = submission_of(app, "p-oslo")
    review = teacher.get(f"/teach/submission/{oslo}")
    assert main_attrs(review)["may-review"] == "1" and "Answer of p-oslo" in review.get_data(as_text=True)
    assert teacher.post(f"/teach/submission/{oslo}", {"feedback": "Good start", "score": "6"}).status_code == 303
    assert teacher.post(f"/teach/submission/{oslo}", {"feedback": "Even better", "score": "8"}).status_code == 303
    with new_session(app) as session:
        reviews = list(session.scalars(select(Review).order_by(Review.id)))
        assert [(r.sub, r.reviewer_sub, str(r.score)) for r in reviews] == [("p-oslo", "rita", "6.00"),
                                                                           ("p-oslo", "rita", "8.00")]
        # the scores go to the pupil's own platform and placement, not the teacher's
        scores = list(session.scalars(select(OutboxItem).where(OutboxItem.kind == "score", OutboxItem.sub == "p-oslo")))
        assert {s.registration_id for s in scores} == {sandbox}
        assert [s.payload.get("scoreGiven") for s in scores if s.payload.get("gradingProgress") == "FullyGraded"] \
            == [6.0, 8.0]
    pupil_page = teacher.get(f"/teach/pupil/{pupil_label('p-oslo')}")
    page = pupil_page.get_data(as_text=True)
    assert pupil_page.status_code == 200 and main_attrs(pupil_page)["hand-ins"] == "1"
    assert len(re.findall(r"data-review=", page)) == 2 and "Earlier feedback" in page and "Even better" in page
    # the grade grid: the score, "waiting" and "not handed in"
    grid = teacher.get("/teach/grades")
    cells = re.findall(r'<tr data-pupil="([^"]+)">.*?</tr>', grid.get_data(as_text=True), re.S)
    assert main_attrs(grid)["pupils"] == "3" and len(cells) == 3
    rows = {label: re.findall(r'data-cell="([a-z_]+)"', row) for label, row in re.findall(
        r'<tr data-pupil="([^"]+)">(.*?)</tr>', grid.get_data(as_text=True), re.S)}
    assert rows[pupil_label("p-oslo")] == ["missing", "reviewed"]
    assert rows[pupil_label("p-ale")] == ["missing", "waiting"]
    assert "8 of 10" in grid.get_data(as_text=True)


def test_pupils_names_shown_where_their_platform_shared_them_and_names_are_kept(app, config, app_factory, client,
                                                                                launches, round_of_three):
    from lti_tool.models import LtiContext

    sandbox = registration_of(app, launches.platform)
    with new_session(app) as session:
        context = session.scalar(select(LtiContext).where(LtiContext.registration_id == sandbox,
                                                          LtiContext.context_id == "sandbox-course-1"))
        session.add(RosterMember(context_pk=context.id, user_id="p-boras", roles=["Learner"], name="Alva Andersson"))
        session.commit()
    name_round_teacher(app, "rita")
    teacher = person(client, launches, "rita", role="instructor")
    linked = f'Alva Andersson <span class="code">({pupil_label("p-boras")})</span></a>'
    assert linked not in teacher.get("/teach/").get_data(as_text=True)  # names not kept: pseudonyms
    named = app_factory({**config, "ROSTER_NAMES": True}).test_client()
    page = named.get(f"/teach/?lt={teacher.token}").get_data(as_text=True)
    assert linked in page and f"Pupil {pupil_label('p-ale')}</a>" in page


# -- the local teacher and the teacher of another round ----------------------------------------------------------

def test_a_local_teacher_follows_their_own_pupils_read_only(app, client, launches, round_of_three):
    local = person(client, launches, "lars", role="instructor", municipality="SE-1490")
    dashboard = local.get("/teach/")
    attrs, body = main_attrs(dashboard), dashboard.get_data(as_text=True)
    assert (attrs["classroom"], attrs["pupils"]) == ("local", "1")
    assert pupil_label("p-boras") in body and pupil_label("p-oslo") not in body and pupil_label("p-ale") not in body
    boras = submission_of(app, "p-boras")
    review = local.get(f"/teach/submission/{boras}")
    page = review.get_data(as_text=True)
    assert review.status_code == 200 and main_attrs(review)["may-review"] == "0"
    assert 'name="feedback"' not in page and 'data-follow-only="1"' in page
    refused = local.post(f"/teach/submission/{boras}", {"feedback": "Fine", "score": "5"})
    assert (refused.status_code, error_code(refused)) == (403, "review_forbidden")
    assert count(app, Review) == 0
    # the round's teacher gives the feedback; the local teacher sees it
    name_round_teacher(app, "rita")
    rita = person(client, launches, "rita", role="instructor", municipality="SE-1440")
    assert rita.post(f"/teach/submission/{boras}", {"feedback": "Well played", "score": "9"}).status_code == 303
    assert "Well played" in local.get(f"/teach/submission/{boras}").get_data(as_text=True)
    assert pupil_label("p-oslo") not in local.get("/teach/grades").get_data(as_text=True)
    assert local.get(f"/teach/rounds/{round_pk(app)}/").status_code == 200  # their own round, as a launch shows it


def test_a_teacher_of_another_round_sees_nothing_of_this_one(app, client, launches, round_of_three):
    name_round_teacher(app, "otto", round_id="later")
    otto = person(client, launches, "otto", role="instructor", round_id="later")
    dashboard = otto.get("/teach/")
    assert main_attrs(dashboard)["classroom"] == "round" and main_attrs(dashboard)["pupils"] == "0"
    now, oslo = round_pk(app), submission_of(app, "p-oslo")
    for path in (f"/teach/rounds/{now}/", f"/teach/rounds/{now}/queue", f"/teach/rounds/{now}/grades",
                 f"/teach/rounds/{now}/submission/{oslo}", f"/teach/rounds/{now}/files/{oslo}",
                 f"/teach/rounds/{now}/pupil/{pupil_label('p-oslo')}"):
        page = otto.get(path)
        assert (page.status_code, error_code(page)) == (403, "forbidden"), path
        assert "Answer of p-oslo" not in page.get_data(as_text=True)
    for path in (f"/teach/submission/{oslo}", f"/teach/rounds/{round_pk(app, 'later')}/submission/{oslo}"):
        assert otto.get(path).status_code == 403
    assert otto.post(f"/teach/rounds/{now}/submission/{oslo}", {"feedback": "x", "score": "1"}).status_code == 403
    # a pupil of the round neither
    pupil = round_of_three["p-ale"]
    assert pupil.get(f"/teach/rounds/{now}/").status_code == 403 and pupil.get("/teach/rounds").status_code == 403
    assert count(app, Review) == 0


def test_a_round_teacher_opens_their_other_rounds_from_their_launch(app, client, launches, round_of_three):
    name_round_teacher(app, "rita")
    name_round_teacher(app, "rita", round_id="later")
    rita = person(client, launches, "rita", role="instructor")
    later = round_pk(app, "later")
    dashboard = rita.get("/teach/").get_data(as_text=True)
    assert f'/teach/rounds/{later}/?lt=' in dashboard and 'data-other-rounds="1"' in dashboard
    rounds = rita.get("/teach/rounds")
    assert main_attrs(rounds)["rounds"] == "2"
    other = rita.get(f"/teach/rounds/{later}/")
    assert other.status_code == 200 and main_attrs(other)["round"] == str(later)
    assert main_attrs(other)["pupils"] == "0" and main_attrs(other)["classroom"] == "round"
    # links inside the other round keep it
    assert f"/teach/rounds/{later}/queue?lt=" in other.get_data(as_text=True)
    # a launch that shows no classroom of its own (no context, and not a teacher of its round) still reaches the
    # teacher's rounds; without any round it is the refusal that says why
    for user, rounds in (("nils", "1"), ("nobody", None)):
        if rounds:
            name_round_teacher(app, user, round_id="later")
        blind = launches.launch(launches.spec("SE-1490", user=user, role="instructor", course="GIT-AK-1",
                                              locale="en-GB"), overrides={CLAIM_CONTEXT: None})
        dashboard = client.get(client.get(blind.headers["Location"]).headers["Location"])
        if rounds is None:
            assert (dashboard.status_code, error_code(dashboard)) == (403, "context_missing")
            continue
        assert dashboard.status_code == 303 and "/teach/rounds?lt=" in dashboard.headers["Location"]
        assert main_attrs(client.get(dashboard.headers["Location"]))["rounds"] == rounds


# -- invitations ---------------------------------------------------------------------------------------------------

def invitation(app, round_id="now", name="Ina Inbjuden", days=14) -> tuple[int, str]:
    pk = round_pk(app, round_id)
    with new_session(app) as session:
        teacher, token = round_teachers.invite(session, pk, name=name, actor="test", days=days)
        session.commit()
        return teacher.id, token


def test_a_teacher_accepts_an_invitation_from_their_own_platform(app, client, launches, content,
                                                                 other_platform, round_of_three):
    teacher_id, token = invitation(app)
    link = round_teachers.invitation_url(app.config["BASE_URL"], token)
    page = client.get(f"/teach/join/{token}", headers={"Accept-Language": "en"})
    body = page.get_data(as_text=True)
    assert page.status_code == 200 and main_attrs(page)["page"] == "teacher-invitation"
    assert "Course GIT-AK-1" in body and "Ina Inbjuden" in body and "Accept a teaching invitation" in body
    assert "<form" not in body  # no launch: how to accept, no button
    ina = person(client, other_platform, "ina", role="instructor", municipality="NO-0301")
    dashboard = ina.get("/teach/")
    assert main_attrs(dashboard)["classroom"] == "local" and 'name="invitation"' in dashboard.get_data(as_text=True)
    # opened with the launch token: the button itself
    assert 'name="invitation" value="' in ina.get(f"/teach/join/{token}").get_data(as_text=True)
    accepted = ina.post("/teach/invitations/accept", {"invitation": f"  {link}  "})
    assert accepted.status_code == 303 and f"/teach/rounds/{round_pk(app)}/?lt=" in accepted.headers["Location"]
    other = registration_of(app, other_platform.platform)
    with new_session(app) as session:
        bound = session.get(RoundTeacher, teacher_id)
        assert (bound.registration_id, bound.sub, bound.invite_hash) == (other, "ina", None)
        assert "round_teacher_bind" in set(session.scalars(select(AuditEntry.action)))
    classroom = client.get(accepted.headers["Location"])
    assert main_attrs(classroom)["classroom"] == "round" and main_attrs(classroom)["pupils"] == "3"
    assert "You are now a teacher of this round." in classroom.get_data(as_text=True)
    # the link is spent
    again = ina.post("/teach/invitations/accept", {"invitation": token})
    assert (again.status_code, error_code(again)) == (400, "invitation_invalid")
    assert error_code(client.get(f"/teach/join/{token}")) == "invitation_invalid"


def test_an_invitations_token_is_never_written_to_the_access_log(app, client, round_of_three, caplog):
    _id, token = invitation(app)
    with caplog.at_level("INFO", logger="lti_tool.access"):
        assert client.get(f"/teach/join/{token}").status_code == 200
    assert "/teach/join/<token>" in caplog.text and token not in caplog.text


def test_invitation_refusals(app, client, launches, round_of_three):
    _id, expired = invitation(app)
    with new_session(app) as session:
        row = session.scalar(select(RoundTeacher).where(RoundTeacher.invite_hash.is_not(None)))
        row.invite_expires_at = clock.now() - timedelta(minutes=1)
        session.commit()
    teacher = person(client, launches, "tove", role="instructor")
    refused = teacher.post("/teach/invitations/accept", {"invitation": expired})
    assert (refused.status_code, error_code(refused)) == (400, "invitation_expired")
    assert error_code(client.get(f"/teach/join/{expired}")) == "invitation_expired"
    _id, fresh = invitation(app)
    pupil = round_of_three["p-ale"]
    refused = pupil.post("/teach/invitations/accept", {"invitation": fresh})
    assert (refused.status_code, error_code(refused)) == (403, "invitation_not_teacher")
    for wrong in ("", "not-a-token", "http://localhost/teach/join/"):
        refused = teacher.post("/teach/invitations/accept", {"invitation": wrong})
        assert (refused.status_code, error_code(refused)) == (400, "invitation_invalid"), wrong
    # without the launch token the form is refused before anything else
    forged = client.post("/teach/invitations/accept", data={"invitation": fresh})
    assert (forged.status_code, error_code(forged)) == (400, "csrf_invalid")
    assert count(app, RoundTeacher, RoundTeacher.sub.is_not(None)) == 0


# -- the teacher signed in by e-mail ---------------------------------------------------------------------------------

def oidc_sign_in(app, client, store, key, claims) -> object:
    """The staff OpenID Connect sign-in, the provider faked as tests/test_staff.py does."""
    metadata = {"issuer": IDP, "authorization_endpoint": IDP + "/authorize", "token_endpoint": IDP + "/token",
                "jwks_uri": IDP + "/jwks", "response_types_supported": ["code"],
                "id_token_signing_alg_values_supported": ["RS256"]}
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.get(IDP + "/.well-known/openid-configuration", json=metadata)
        mock.get(IDP + "/jwks", json=store.jwks())
        start = client.get("/staff/sign-in/oidc")
        query = {k: v[0] for k, v in parse_qs(urlsplit(start.headers["Location"]).query).items()}
        now = int(time.time())
        id_token = jwt.encode({"iss": IDP, "aud": "console", "iat": now, "exp": now + 300, "nonce": query["nonce"],
                               **claims}, key.private_pem, algorithm="RS256", headers={"kid": key.kid})
        mock.post(IDP + "/token", json={"access_token": "at", "token_type": "Bearer", "expires_in": 300,
                                        "id_token": id_token})
        return client.get("/staff/callback", query_string={"code": "c", "state": query["state"]})


RITA = "rita@kulturskola.example"


def test_a_teacher_signed_in_by_email_sees_their_round_and_reviews(app, config, app_factory, idp, launches,
                                                                   content, round_of_three):
    store, key = idp
    console = app_factory({**config, "STAFF_OIDC_ISSUER": IDP, "STAFF_OIDC_CLIENT_ID": "console",
                           "STAFF_OIDC_CLIENT_SECRET": "s3cret", "STAFF_USERS": "nora@kulturskola.example"})
    now, later = round_pk(app), round_pk(app, "later")
    with new_session(app) as session:
        round_teachers.add_email_teacher(session, now, email=RITA.upper(), name="Rita Rund", actor="test")
        session.commit()
    # not verified, or not a teacher: refused as before
    for claims in ({"sub": "u-1", "email": RITA}, {"sub": "u-2", "email": "else@x.example", "email_verified": True}):
        refused = oidc_sign_in(console, console.test_client(), store, key, claims)
        assert refused.status_code == 403 and 'data-error-code="staff_refused"' in refused.get_data(as_text=True)
    browser = console.test_client()
    signed_in = oidc_sign_in(console, browser, store, key, {"sub": "u-3", "email": RITA, "email_verified": True})
    assert signed_in.status_code == 302 and signed_in.headers["Location"].endswith("/teach/rounds")
    rounds = browser.get("/teach/rounds", headers={"Accept-Language": "en"})
    assert main_attrs(rounds)["rounds"] == "1" and f"/teach/rounds/{now}/" in rounds.get_data(as_text=True)
    # the teacher session opens nothing of the staff console
    for path in ("/staff/", "/staff/rounds", "/staff/audit"):
        assert browser.get(path).status_code == 302, path
    dashboard = browser.get(f"/teach/rounds/{now}/")
    assert main_attrs(dashboard)["classroom"] == "round" and main_attrs(dashboard)["pupils"] == "3"
    assert browser.get("/teach/").status_code == 302  # no round named: their rounds
    assert browser.get(f"/teach/rounds/{later}/").status_code == 403  # not their round
    ale = submission_of(app, "p-ale")
    review = browser.get(f"/teach/rounds/{now}/submission/{ale}")
    assert main_attrs(review)["may-review"] == "1"
    token = csrf_of(review)
    forged = browser.post(f"/teach/rounds/{now}/submission/{ale}", data={"feedback": "x", "score": "1"})
    assert (forged.status_code, error_code(forged)) == (400, "csrf_invalid")
    saved = browser.post(f"/teach/rounds/{now}/submission/{ale}",
                         data={"feedback": "Lovely phrasing", "score": "7", "csrf": token})
    assert saved.status_code == 303 and f"/teach/rounds/{now}/submission/" in saved.headers["Location"]
    sandbox = registration_of(app, launches.platform)
    with new_session(app) as session:
        review_row = session.scalars(select(Review)).one()
        assert (review_row.sub, review_row.reviewer_sub) == ("p-ale", f"email:{RITA}")
        item = session.scalars(select(OutboxItem).where(OutboxItem.kind == "score", OutboxItem.sub == "p-ale")
                               .order_by(OutboxItem.id.desc())).first()
        assert (item.registration_id, item.sub, item.status) == (sandbox, "p-ale", "pending")
        assert (item.payload["scoreGiven"], item.payload["gradingProgress"]) == (7.0, "FullyGraded")
        actors = set(session.scalars(select(AuditEntry.actor).where(AuditEntry.action.startswith("pupil_work."))))
        assert actors == {f"teacher email:{RITA}"}
    assert "Lovely phrasing" in round_of_three["p-ale"].get(f"/assignment/{content['assignment2']}").get_data(
        as_text=True)
    # a handed-in file, through the teacher's own address of the round
    oslo = round_of_three["p-oslo"]
    assert oslo.post(f"/assignment/{content['assignment1']}", {"file": (io.BytesIO(PNG), "take.png")},
                     content_type="multipart/form-data").status_code == 303
    with new_session(app) as session:
        file_id = session.scalar(select(Submission.id).where(Submission.sub == "p-oslo",
                                                             Submission.file_key.is_not(None)))
    review = browser.get(f"/teach/rounds/{now}/submission/{file_id}")
    assert f"/teach/rounds/{now}/files/{file_id}" in review.get_data(as_text=True)
    served = browser.get(f"/teach/rounds/{now}/files/{file_id}")
    assert served.status_code == 200 and served.data == PNG and served.headers["Cache-Control"] == "private, no-store"
    served.close()
    # signing out ends it
    assert browser.post("/staff/sign-out", data={"csrf": token}).status_code == 302
    assert browser.get(f"/teach/rounds/{now}/").status_code == 302


def test_development_sign_in_as_a_teacher_only_with_the_sandbox(app, client, config, app_factory, round_of_three):
    now = round_pk(app)
    with new_session(app) as session:
        round_teachers.add_email_teacher(session, now, email=RITA, name=None, actor="test")
        session.commit()
    page = client.get("/staff/sign-in")
    assert 'data-sign-in="teacher"' in page.get_data(as_text=True)
    assert client.post("/staff/sign-in/local-teacher", data={"email": RITA}).status_code == 400  # no CSRF
    signed_in = client.post("/staff/sign-in/local-teacher", data={"email": RITA, "csrf": csrf_of(page)})
    assert signed_in.status_code == 302 and signed_in.headers["Location"].endswith("/teach/rounds")
    assert main_attrs(client.get("/teach/rounds"))["rounds"] == "1"
    assert client.get("/staff/").status_code == 302
    production = app_factory({**config, "SANDBOX": False}).test_client()
    with production.session_transaction() as web_session:
        web_session["csrf"] = "a-token-of-this-session"
    assert production.post("/staff/sign-in/local-teacher",
                           data={"email": RITA, "csrf": "a-token-of-this-session"}).status_code == 404


# -- national staff: the round's teachers and the providing school ---------------------------------------------------

def test_staff_add_invite_remove_teachers_and_name_the_school_audited(app, client, runner, round_of_three):
    now = round_pk(app)
    token = sign_in(client)
    rounds = client.get("/staff/rounds").get_data(as_text=True)
    assert f"/staff/rounds/{now}" in rounds
    assert client.post(f"/staff/rounds/{now}/teachers", data={"email": RITA, "name": "Rita"}).status_code == 400
    added = client.post(f"/staff/rounds/{now}/teachers", data={"email": RITA, "name": "Rita Rund", "csrf": token})
    assert added.status_code == 303
    twice = client.post(f"/staff/rounds/{now}/teachers", data={"email": RITA, "csrf": token})
    assert (twice.status_code, error_code(twice)) == (409, "conflict")
    bad = client.post(f"/staff/rounds/{now}/teachers", data={"email": "no address", "csrf": token})
    assert (bad.status_code, error_code(bad)) == (400, "invalid")
    invited = client.post(f"/staff/rounds/{now}/invitations", data={"name": "Ina", "days": "7", "csrf": token})
    link = re.search(r'id="invitation-link" value="([^"]+)"', invited.get_data(as_text=True)).group(1)
    assert invited.status_code == 200 and link.startswith("http://localhost/teach/join/")
    assert link not in client.get(f"/staff/rounds/{now}").get_data(as_text=True)  # shown once
    assert client.get(link.replace("http://localhost", "")).status_code == 200
    page = client.get(f"/staff/rounds/{now}").get_data(as_text=True)
    assert 'data-teachers="2"' in page and "Rita Rund" in page
    with new_session(app) as session:
        rita = session.scalar(select(RoundTeacher.id).where(RoundTeacher.email == RITA))
    assert client.post(f"/staff/rounds/{round_pk(app, 'later')}/teachers/{rita}/remove",
                       data={"csrf": token}).status_code == 404  # not this round's
    assert client.post(f"/staff/rounds/{now}/teachers/{rita}/remove", data={"csrf": token}).status_code == 303
    school = client.post("/staff/courses/GIT-AK-1/school", data={"school": " Kulturskolan  Kiruna ", "round": now,
                                                                 "csrf": token})
    assert school.status_code == 303
    with new_session(app) as session:
        assert session.get(Course, "GIT-AK-1").providing_school == "Kulturskolan Kiruna"
        entries = list(session.scalars(select(AuditEntry).where(AuditEntry.actor == "Nora Nationell (local)")
                                       .order_by(AuditEntry.id)))
    assert [e.action for e in entries] == ["round_teacher_add", "round_teacher_invite", "round_teacher_remove",
                                           "course_providing_school"]
    assert 'data-teachers="1"' in client.get(f"/staff/rounds/{now}").get_data(as_text=True)
    # the CLI sets and clears it too
    result = runner.invoke(args=["rounds", "school", "--course", "GIT-AK-1", "--school", "Piteå kulturskola"])
    assert result.exit_code == 0 and "Piteå kulturskola" in result.output
    assert "Piteå kulturskola" in client.get("/staff/rounds").get_data(as_text=True)
    assert runner.invoke(args=["rounds", "school", "--course", "GIT-AK-1"]).exit_code == 0
    with new_session(app) as session:
        assert session.get(Course, "GIT-AK-1").providing_school is None
    assert runner.invoke(args=["rounds", "school", "--course", "NOPE", "--school", "x"]).exit_code == 1


# -- the municipal contact -------------------------------------------------------------------------------------------

def test_the_municipal_progress_page_shows_only_the_municipalitys_own_pupils(app, client, launches, round_of_three):
    name_round_teacher(app, "rita")
    rita = person(client, launches, "rita", role="instructor")
    boras = submission_of(app, "p-boras")
    assert rita.post(f"/teach/submission/{boras}", {"feedback": "Nice", "score": "9"}).status_code == 303
    admin = person(client, launches, "admin-1", role="administrator", municipality="SE-1490")
    console = admin.get("/municipal/")
    assert "/municipal/progress?lt=" in console.get_data(as_text=True)
    page = admin.get("/municipal/progress")
    body = page.get_data(as_text=True)
    assert page.status_code == 200 and main_attrs(page)["rounds"] == "1"
    assert pupil_label("p-boras") in body and "9 of 10" in body
    assert pupil_label("p-ale") not in body and pupil_label("p-oslo") not in body
    oslo = person(client, launches, "admin-2", role="administrator", municipality="NO-0301").get("/municipal/progress")
    text = oslo.get_data(as_text=True)
    assert pupil_label("p-oslo") in text and pupil_label("p-boras") not in text and "9 of 10" not in text
    # a teacher's or a pupil's launch: no console
    for browser in (rita, round_of_three["p-boras"]):
        refused = browser.get("/municipal/progress")
        assert (refused.status_code, error_code(refused)) == (403, "municipal_console_forbidden")


def test_the_pupils_course_page_names_the_school_and_the_teachers(app, client, launches, round_of_three):
    pupil = round_of_three["p-boras"]
    assert "Kulturskolan Kiruna" not in client.get(pupil.home).get_data(as_text=True)
    with new_session(app) as session:
        round_teachers.set_providing_school(session, "GIT-AK-1", "Kulturskolan Kiruna", actor="test")
        session.commit()
    name_round_teacher(app, "rita", name="Rita Rund")
    _id, _token = invitation(app, name="Ina Inbjuden")  # not a teacher until accepted
    page = client.get(pupil.home).get_data(as_text=True)
    assert "<dd>Kulturskolan Kiruna</dd>" in page and "<dd>Rita Rund</dd>" in page and "Ina Inbjuden" not in page


def test_a_teacher_launching_on_a_link_without_a_course_is_shown_the_way_to_their_rounds(client, launches):
    response = launches.launch(launches.spec("SE-1490", user="t-nocourse", role="instructor", course=None))
    assert response.status_code == 303
    page = client.get(response.headers["Location"])
    assert page.status_code == 200 and "/teach/rounds?lt=" in page.get_data(as_text=True)
    rounds = client.get(re.search(r'href="(/teach/rounds\?lt=[^"]+)"', page.get_data(as_text=True)).group(1))
    assert rounds.status_code == 200
