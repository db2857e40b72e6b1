"""The second door, end to end, through the tool's real pages: a municipality's arts school issues a seat
invitation; a pupil whose school platform is not an LTI platform opens it, signs in with their school identity
(the sandbox's Feide-style OpenID Connect provider, real signed ID tokens; the sandbox's Skolfederation-style
SAML IdP, real signed responses), accepts the place, opens a lesson and hands in; the round's teacher (who
launches from their own LMS) gives feedback and a score; the pupil sees it, and it is a row of the municipality's
progress export. No score goes to a gradebook (there is none), and later visits start at "My courses"."""

from __future__ import annotations

import json
import re
import shutil
from html import unescape
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import responses
from sqlalchemy import func, select

from lti_tool.config import settings
from lti_tool.db import new_session
from lti_tool.models import (CHECK_MATCH, CHECK_MISMATCH, IdentityProvider, Launch, Order, OutboxItem, Seat,
                             SeatInvitation, Submission)
from lti_tool.sandbox import idp_oidc, idp_saml
from lti_tool.services import invitations, progress_export, seats

from .conftest import BASE_URL, error_code, main_attrs, name_round_teacher
from .test_cross_border_round import COURSE, KIRUNA, hand_in, person, review_page
from .test_cross_border_round import round_content  # noqa: F401  (fixture)
from .test_oidc_sign_in import IDP, IdPHttp, idp_key_template  # noqa: F401  (fixture)
from .test_saml_sign_in import saml_keys_template  # noqa: F401  (fixture)

OSLO = "NO-0301"
BORAS = "SE-1490"
_HIDDEN = re.compile(r'<input type="hidden" name="request" value="([^"]*)">')
_FIELDS = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)">')


@pytest.fixture
def config(config, idp_key_template, saml_keys_template):  # noqa: F811
    shutil.copytree(idp_key_template, Path(config["KEYS_DIR"]) / "sandbox-idp")
    shutil.copytree(saml_keys_template, config["KEYS_DIR"], dirs_exist_ok=True)
    return {**config, "ROSTER_NAMES": True}


@pytest.fixture
def feide(app, demo, round_content):  # noqa: F811
    """The sandbox's Feide-style provider, and Oslo's order of the round's places."""
    with app.app_context(), new_session(app) as session:
        provider = idp_oidc.ensure_sandbox_oidc_provider(session, settings(app).sandbox_base_url)
        seats.set_order(session, OSLO, COURSE, "now", 2)
        session.commit()
        return provider.id


@pytest.fixture
def feide_http(app, feide, platform_http):
    """The tool's outbound requests to the provider (discovery, keys, token, userinfo, Groups API) reach the
    sandbox provider, served by another test client of the same app (beside the sandbox platform's key set)."""
    http = IdPHttp(app, platform_http)
    pattern = re.compile(re.escape(IDP) + r"/.*")
    for method in (responses.GET, responses.POST):
        platform_http.add_callback(method, pattern, callback=http.forward, content_type=None)
    return http


@pytest.fixture
def skolfederation(app, demo, round_content, platform_http):  # noqa: F811
    """The sandbox's Skolfederation-style IdP, and Skolverket's school unit register (its sandbox copy) behind
    ``responses``."""
    with app.app_context(), new_session(app) as session:
        provider = idp_saml.ensure_sandbox_saml_provider(session, BASE_URL)
        session.commit()
        provider_id = provider.id

    def register(request):
        status, payload = idp_saml.register_answer(request.url.rsplit("/", 1)[-1])
        return status, {"Content-Type": "application/json"}, json.dumps(payload)

    # The sandbox points the register at its own copy (served by this app): reached through ``responses`` too.
    platform_http.add_callback(responses.GET, re.compile(r"http://[^/]+/sandbox/idp/skolverket/school-units/\d+"),
                               callback=register)
    return provider_id


def issue(app, municipality: str, count: int = 1) -> list[str]:
    with app.app_context(), new_session(app) as session:
        issued = invitations.issue(session, municipality_id=municipality, course_code=COURSE, round_id="now",
                                   count=count, expires_at=None, created_by="Oslo kulturskole")
        session.commit()
        return [invitations.display_code(item.code) for item in issued]


def csrf_of(page) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', page.get_data(as_text=True)).group(1)


class Browser:
    """A pupil's own browser tab (no LMS frame): the tool's pages and the school's sign-in."""

    def __init__(self, app, provider_id: int):
        self.client = app.test_client()
        self.provider_id = provider_id
        self.token = ""

    def sign_in_with_feide(self, next_path: str, who: str):
        start = self.client.get(f"/sign-in/{self.provider_id}", query_string={"next": next_path})
        assert start.status_code == 302, start.get_data(as_text=True)
        location = urlsplit(start.headers["Location"])
        assert f"{location.scheme}://{location.netloc}{location.path}" == IDP + "/authorize"
        auth = {name: values[0] for name, values in parse_qs(location.query).items()}
        page = self.client.get("/sandbox/idp/oidc/authorize", query_string=auth)
        carried = unescape(_HIDDEN.search(page.get_data(as_text=True)).group(1))
        back = urlsplit(self.client.post("/sandbox/idp/oidc/authorize",
                                         data={"request": carried, "person": who}).headers["Location"])
        assert back.path == f"/sign-in/{self.provider_id}/callback"
        return self.client.get(back.path, query_string=back.query)

    def sign_in_with_skolfederation(self, next_path: str, who: str):
        start = self.client.get(f"/sign-in/{self.provider_id}", query_string={"next": next_path})
        assert start.status_code == 302, start.get_data(as_text=True)
        location = urlsplit(start.headers["Location"])
        page = self.client.get(location.path, query_string=location.query)  # the IdP's page: who signs in
        fields = {name: unescape(value) for name, value in _FIELDS.findall(page.get_data(as_text=True))}
        posted = self.client.post("/sandbox/idp/saml/respond", data={**fields, "person": who})
        form = {name: unescape(value) for name, value in _FIELDS.findall(posted.get_data(as_text=True))}
        assert set(form) >= {"SAMLResponse", "RelayState"}  # the browser posts it on to the tool's ACS
        return self.client.post(f"/sign-in/{self.provider_id}/acs", data=form)

    def accept(self, code: str):
        confirm = self.client.get(f"/join/{code}")
        assert confirm.status_code == 200 and main_attrs(confirm)["page"] == "confirm", confirm.get_data(as_text=True)
        answer = self.client.post(f"/join/{code}/accept", data={"csrf": csrf_of(confirm)})
        if answer.status_code == 303:
            self.token = re.search(r"lt=([^&]+)", answer.headers["Location"]).group(1)
        return answer

    def get(self, path):
        return self.client.get(path, query_string={"lt": self.token})

    def post(self, path, data):
        return self.client.post(path, query_string={"lt": self.token}, data=data)


def test_invitation_feide_seat_lesson_hand_in_feedback_export(app, client, launches, round_content,  # noqa: F811
                                                              feide, feide_http):
    [code] = issue(app, OSLO)
    pupil = Browser(app, feide)

    # The invitation: the course, the municipality, and the country's school sign-in.
    page = pupil.client.get(f"/join/{code}")
    body = page.get_data(as_text=True)
    assert page.status_code == 200 and main_attrs(page)["page"] == "join" and "Oslo" in body
    assert f'href="/sign-in/{feide}?next=/join/{code}"' in body.replace("%2F", "/")

    # Feide-style sign-in, back to the invitation, accepted: the seat is Oslo's, from Oslo's budget.
    back = pupil.sign_in_with_feide(f"/join/{code}", "oslo-pupil")
    assert back.status_code == 303 and back.headers["Location"] == f"/join/{code}"
    accepted = pupil.accept(code)
    assert accepted.status_code == 303 and urlsplit(accepted.headers["Location"]).path == "/home"
    home = pupil.get("/home")
    assert home.status_code == 200 and main_attrs(home)["seat"] == "now"
    with new_session(app) as session:
        seat = session.scalars(select(Seat).where(Seat.municipality_id == OSLO)).one()
        invitation = session.scalars(select(SeatInvitation)).one()
        subject = seat.sub
        assert (invitation.status, invitation.seat_id, invitation.cross_check) == ("redeemed", seat.id, CHECK_MATCH)
        assert invitation.pupil_name == "Ola Nordmann" and invitation.school_municipality_id == OSLO
        launch = session.scalars(select(Launch).where(Launch.sub == subject)).one()
        assert (launch.message_type, launch.resolution_method, launch.municipality_id) == (
            "SchoolSignIn", "invitation", OSLO)
        assert launch.context_id is None

    # A lesson, a hand-in.
    lesson = round_content["lesson1"]
    assert pupil.post(f"/lesson/{lesson}", {}).status_code == 303
    submission_id = hand_in(app, pupil, round_content, subject)

    # The round's teacher launches from their own LMS and reviews the Feide pupil with the others.
    name_round_teacher(app, "teacher-sara", course=COURSE, round_id="now", name="Sara Strand")
    sara = person(client, launches, "teacher-sara", KIRUNA, role="instructor", context="kiruna-gitarr",
                  link="kiruna-link")
    dashboard = sara.get("/teach/").get_data(as_text=True)
    assert "Ola Nordmann" in dashboard and "Oslo" in dashboard
    review_page(sara, submission_id, subject)
    saved = sara.post(f"/teach/submission/{submission_id}", {"feedback": "Fint spelat, Ola!", "score": "8"})
    assert saved.status_code == 303, saved.get_data(as_text=True)

    # The pupil sees it; no gradebook is there to send it to.
    answer = pupil.get(f"/assignment/{round_content['assignment2']}").get_data(as_text=True)
    assert "Fint spelat, Ola!" in answer
    with new_session(app) as session:
        assert session.scalar(select(func.count()).select_from(OutboxItem).where(OutboxItem.sub == subject)) == 0
        assert session.get(Submission, submission_id).status == "reviewed"

    # The municipality's progress export has the row.
    with app.test_request_context(), new_session(app) as session:
        [row] = progress_export.progress_rows(session, municipality_id=OSLO, course_code=COURSE, locale="nb",
                                              keep_names=True)
    assert (row.pupil, row.lessons_done, row.hand_ins, row.reviewed, row.score) == ("Ola Nordmann", 1, 1, 1, 8)
    assert row.door == "Sandbox Feide" and row.last_feedback is not None

    # A later visit: "My courses" opens the course again, without the code.
    my = pupil.client.get("/my")
    assert my.status_code == 200 and main_attrs(my)["seats"] == "1"
    opened = pupil.client.get(f"/my/seats/{seat.id}")
    assert opened.status_code == 303 and urlsplit(opened.headers["Location"]).path == "/home"


def test_a_used_code_is_refused_to_another_account_and_kept_for_its_own(app, feide, feide_http):
    [code] = issue(app, OSLO)
    first = Browser(app, feide)
    first.sign_in_with_feide(f"/join/{code}", "oslo-pupil")
    assert first.accept(code).status_code == 303

    other = Browser(app, feide)
    other.sign_in_with_feide(f"/join/{code}", "bergen-pupil")
    refused = other.client.get(f"/join/{code}")
    assert (refused.status_code, error_code(refused)) == (409, "code_other_account")
    assert other.client.post(f"/join/{code}/accept", data={"csrf": "x"}).status_code == 400  # no CSRF token

    again = Browser(app, feide)  # the same pupil on another device: the same seat, nothing more taken
    again.sign_in_with_feide(f"/join/{code}", "oslo-pupil")
    assert again.accept(code).status_code == 303
    with new_session(app) as session:
        assert session.scalar(select(func.count()).select_from(Seat).where(Seat.municipality_id == OSLO)) == 1


def test_a_county_school_is_marked_for_checking_and_still_gets_the_place(app, feide, feide_http):
    [code] = issue(app, OSLO)
    pupil = Browser(app, feide)
    pupil.sign_in_with_feide(f"/join/{code}", "vestland-pupil")
    assert pupil.accept(code).status_code == 303
    with new_session(app) as session:
        invitation = session.scalars(select(SeatInvitation)).one()
        assert invitation.cross_check == CHECK_MISMATCH and invitation.status == "redeemed"


@pytest.mark.parametrize("who, code", [("tromso-pupil", "signin_not_activated")])
def test_refusals_of_the_school_sign_in_are_clear_pages(app, feide, feide_http, who, code):
    [invitation] = issue(app, OSLO)
    pupil = Browser(app, feide)
    refused = pupil.sign_in_with_feide(f"/join/{invitation}", who)
    assert (refused.status_code, error_code(refused)) == (403, code)
    with new_session(app) as session:
        assert session.scalar(select(func.count()).select_from(Seat).where(Seat.municipality_id == OSLO)) == 0


def test_codes_unknown_expired_revoked_and_no_seats_left(app, feide, feide_http):
    assert error_code(app.test_client().get("/join/ABCD-EFGH-JKMN")) == "code_unknown"
    codes = issue(app, OSLO, 2)
    with new_session(app) as session:
        first, second = session.scalars(select(SeatInvitation).order_by(SeatInvitation.id)).all()
        invitations.revoke(session, first.id, actor="test")
        session.commit()
    refused = app.test_client().get(f"/join/{codes[0]}")
    assert (refused.status_code, error_code(refused)) == (410, "code_revoked")
    # Oslo's two places go to LTI pupils meanwhile: the invitation finds none left, and offers the waiting list.
    with new_session(app) as session:
        for sub in ("lti-1", "lti-2"):
            seats.reserve_seat(session, registration_id=1, sub=sub, municipality_id=OSLO, course_code=COURSE,
                               round_id="now")
        session.commit()
    pupil = Browser(app, feide)
    pupil.sign_in_with_feide(f"/join/{codes[1]}", "oslo-pupil")
    full = pupil.accept(codes[1])
    assert (full.status_code, error_code(full)) == (403, "budget_used_up")
    assert 'name="wt"' in full.get_data(as_text=True)
    with new_session(app) as session:
        assert session.get(SeatInvitation, second.id).status == "issued"


def test_the_second_doors_pages_are_in_the_pupils_language(app, feide):
    [code] = issue(app, OSLO)
    page = app.test_client().get(f"/join/{code}", headers={"Accept-Language": "nb-NO"})
    assert "Logg inn med Feide" in page.get_data(as_text=True)
    assert BASE_URL  # the invitation's link is on the tool's own address


def test_invitation_skolfederation_seat_hand_in_feedback_export(app, client, launches, round_content,  # noqa: F811
                                                                skolfederation):
    [code] = issue(app, BORAS)
    pupil = Browser(app, skolfederation)
    page = pupil.client.get(f"/join/{code}").get_data(as_text=True)
    assert 'data-provider="skolfederation"' in page and "Borås" in page

    back = pupil.sign_in_with_skolfederation(f"/join/{code}", "boras-pupil")
    assert back.status_code == 303 and back.headers["Location"] == f"/join/{code}"
    assert pupil.accept(code).status_code == 303
    with new_session(app) as session:
        invitation = session.scalars(select(SeatInvitation)).one()
        assert (invitation.cross_check, invitation.school_code, invitation.school_municipality_id) == (
            CHECK_MATCH, "99149001", BORAS)
        subject = invitation.sub
        assert subject == "omar.haddad@boras.sandbox.test"
    submission_id = hand_in(app, pupil, round_content, subject)

    name_round_teacher(app, "teacher-sara", course=COURSE, round_id="now", name="Sara Strand")
    sara = person(client, launches, "teacher-sara", KIRUNA, role="instructor", context="kiruna-gitarr",
                  link="kiruna-link")
    saved = sara.post(f"/teach/submission/{submission_id}", {"feedback": "Snyggt, Omar!", "score": "6"})
    assert saved.status_code == 303
    assert "Snyggt, Omar!" in pupil.get(f"/assignment/{round_content['assignment2']}").get_data(as_text=True)
    with app.test_request_context(), new_session(app) as session:
        rows = progress_export.progress_rows(session, municipality_id=BORAS, course_code=COURSE, locale="sv",
                                             keep_names=True)
    [row] = [r for r in rows if r.pupil == "Omar Haddad"]
    assert (row.score, row.door, row.school) == (6, "Sandbox Skolfederation", "Sandboxskolan Borås")


def test_an_independent_school_is_marked_for_checking(app, skolfederation):
    [code] = issue(app, BORAS)
    pupil = Browser(app, skolfederation)
    pupil.sign_in_with_skolfederation(f"/join/{code}", "independent-pupil")
    assert pupil.accept(code).status_code == 303
    with new_session(app) as session:
        assert session.scalars(select(SeatInvitation)).one().cross_check == CHECK_MISMATCH


def test_a_school_that_releases_no_attributes_gets_a_clear_page(app, skolfederation):
    [code] = issue(app, BORAS)
    refused = Browser(app, skolfederation).sign_in_with_skolfederation(f"/join/{code}", "no-attributes")
    assert (refused.status_code, error_code(refused)) == (403, "signin_no_attributes")


def test_a_replayed_saml_response_is_refused(app, skolfederation):
    [code] = issue(app, BORAS)
    pupil = Browser(app, skolfederation)
    start = pupil.client.get(f"/sign-in/{skolfederation}", query_string={"next": f"/join/{code}"})
    location = urlsplit(start.headers["Location"])
    page = pupil.client.get(location.path, query_string=location.query)
    fields = {name: unescape(value) for name, value in _FIELDS.findall(page.get_data(as_text=True))}
    posted = pupil.client.post("/sandbox/idp/saml/respond", data={**fields, "person": "boras-pupil"})
    form = {name: unescape(value) for name, value in _FIELDS.findall(posted.get_data(as_text=True))}
    assert pupil.client.post(f"/sign-in/{skolfederation}/acs", data=form).status_code == 303
    replayed = app.test_client().post(f"/sign-in/{skolfederation}/acs", data=form)
    assert (replayed.status_code, error_code(replayed)) == (400, "signin_replayed") or \
        error_code(replayed) == "signin_replayed"


def test_the_open_pool_lets_a_pupil_of_the_municipalitys_own_schools_in_without_a_code(app, skolfederation):
    with new_session(app) as session:
        order = session.scalars(select(Order).where(Order.municipality_id == BORAS)).one()
        order_id = order.id
    closed = app.test_client().get(f"/join/pool/{order_id}")
    assert (closed.status_code, error_code(closed)) == (403, "open_pool_closed")
    with new_session(app) as session:
        session.get(Order, order_id).open_pool = True
        session.commit()
    outsider = Browser(app, skolfederation)
    outsider.sign_in_with_skolfederation(f"/join/pool/{order_id}", "independent-pupil")
    confirm = outsider.client.get(f"/join/pool/{order_id}")
    refused = outsider.client.post(f"/join/pool/{order_id}/claim", data={"csrf": csrf_of(confirm)})
    assert (refused.status_code, error_code(refused)) == (403, "open_pool_closed")
    pupil = Browser(app, skolfederation)
    back = pupil.sign_in_with_skolfederation(f"/join/pool/{order_id}", "boras-pupil")
    assert back.headers["Location"] == f"/join/pool/{order_id}"
    confirm = pupil.client.get(f"/join/pool/{order_id}")
    assert main_attrs(confirm)["page"] == "confirm"
    claimed = pupil.client.post(f"/join/pool/{order_id}/claim", data={"csrf": csrf_of(confirm)})
    assert claimed.status_code == 303 and urlsplit(claimed.headers["Location"]).path == "/home"
    with new_session(app) as session:
        assert session.scalar(select(func.count()).select_from(Seat).where(Seat.municipality_id == BORAS)) == 1


def test_the_sp_metadata_is_published_for_the_federation(app, skolfederation):
    metadata = app.test_client().get(f"/sign-in/{skolfederation}/metadata")
    assert metadata.status_code == 200 and b"AssertionConsumerService" in metadata.data
    assert b"sign-in/%d/acs" % skolfederation in metadata.data


def test_a_teacher_and_a_municipal_contact_sign_in_with_feide_too(app, runner, feide, feide_http):
    """The round's teacher and Oslo's arts-school contact, named by their Feide user ids, reach their rounds and
    their console from "My courses", as after a launch."""
    with new_session(app) as session:
        provider = session.get(IdentityProvider, feide)
        issuer, client_id = provider.registration.issuer, provider.registration.client_id
    teacher_id = idp_oidc.PEOPLE_BY_KEY["oslo-teacher"].user_id  # the Feide user id
    named = runner.invoke(args=["rounds", "teachers", "add", "--course", COURSE, "--round", "now", "--issuer", issuer,
                                "--client-id", client_id, "--sub", teacher_id, "--name", "Kari Nordmann"])
    assert named.exit_code == 0, named.output
    listed = runner.invoke(args=["municipalities", "add-contact", "--municipality", OSLO, "--issuer", issuer,
                                 "--client-id", client_id, "--sub", teacher_id])
    assert listed.exit_code == 0, listed.output

    teacher = Browser(app, feide)
    teacher.sign_in_with_feide("/my", "oslo-teacher")
    my = teacher.client.get("/my").get_data(as_text=True)
    assert "/my/teach" in my and f"/my/console/{OSLO}" in my
    rounds = teacher.client.get("/my/teach")
    assert rounds.status_code == 303 and urlsplit(rounds.headers["Location"]).path == "/teach/rounds"
    page = teacher.client.get(rounds.headers["Location"])
    assert page.status_code == 200 and "/teach/rounds/" in page.get_data(as_text=True)
    console = teacher.client.get(f"/my/console/{OSLO}")
    assert console.status_code == 303 and urlsplit(console.headers["Location"]).path == "/municipal/"
    opened = teacher.client.get(console.headers["Location"])
    assert opened.status_code == 200 and main_attrs(opened)["municipality"] == OSLO
    assert teacher.client.get("/my/console/SE-1490").status_code == 404  # not their municipality


def test_a_federation_asks_the_pupil_to_pick_their_school_owner(app, skolfederation):
    """A federation's metadata lists many IdPs (one per school owner): the pupil picks theirs, then signs in."""
    from .test_saml_sign_in import _federation

    with app.app_context(), new_session(app) as session:
        provider = session.get(IdentityProvider, skolfederation)
        provider.metadata_xml = _federation(app, [("https://idp.orebro.test/idp", "Örebro kommun")], with_sandbox=True)
        session.commit()
    [code] = issue(app, BORAS)
    browser = app.test_client()
    picker = browser.get(f"/sign-in/{skolfederation}", query_string={"next": f"/join/{code}"})
    body = picker.get_data(as_text=True)
    assert picker.status_code == 200 and main_attrs(picker)["page"] == "pick-school"
    assert "Örebro kommun" in body and "Sandbox Skolfederation" in body
    entity_id = idp_saml.get_idp(app).entity_id
    chosen = browser.get(f"/sign-in/{skolfederation}", query_string={"next": f"/join/{code}", "idp": entity_id})
    assert chosen.status_code == 302 and urlsplit(chosen.headers["Location"]).path == "/sandbox/idp/saml/sso"
    unknown = browser.get(f"/sign-in/{skolfederation}", query_string={"idp": "https://idp.nowhere.test/idp"})
    assert unknown.status_code == 200 and main_attrs(unknown)["page"] == "pick-school"
