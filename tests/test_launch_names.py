"""Pupils' names from the launch: the name a pupil's platform sends with the launch (OpenID Connect ``name``, or
``given_name`` and ``family_name``) is kept on the pupil's seat for that round (``LAUNCH_NAMES``, on by default)
and shown to the round's teachers (dashboard, grade grid, queue, review, pupil page) and the municipality's
contact (progress page and export); a pseudonym where the platform sends none; replaced when it changes, cleared
when the platform stops sending it; never shown for another round; never on the launch record; exported,
erased and purged with the seat's pupil."""

from __future__ import annotations

import json
import re
from datetime import date, timedelta
from urllib.parse import unquote

import pytest
from sqlalchemy import select, update

from lti_tool.db import new_session
from lti_tool.domain.claims import parse_launch_claims, person_name
from lti_tool.models import CourseRound, Launch, Seat, Submission
from lti_tool.sandbox import demo_round
from lti_tool.services import privacy, seats
from lti_tool.services.delivery import pupil_label

from . import test_access
from .conftest import main_attrs, name_round_teacher
from .test_delivery import Person
from .test_round_classroom_pages import person, registration_of, text_hand_in

content = test_access.content
other_platform = test_access.other_platform

ALVA = "Alva Lind"


# -- the claims ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("claims, expected", [
    ({"name": "Alva Lind"}, "Alva Lind"),
    ({"name": "  Alva \t Lind\n"}, "Alva Lind"),
    ({"given_name": "Alva", "family_name": "Lind"}, "Alva Lind"),
    ({"name": "Alva Lind", "given_name": "Other", "family_name": "Person"}, "Alva Lind"),
    ({"given_name": "Alva"}, "Alva"),
    ({"family_name": "Lind"}, "Lind"),
    ({"name": "", "given_name": "Alva", "family_name": "Lind"}, "Alva Lind"),
    ({"name": "Alva\x00\x1bLind"}, "Alva Lind"),
    ({"name": ["Alva"], "given_name": 7}, None),
    ({"name": "   "}, None),
    ({}, None),
])
def test_the_persons_name_from_the_launch_claims(claims, expected):
    assert person_name(claims) == expected


def test_a_long_name_is_cut_to_the_column():
    assert person_name({"name": "A" * 300}) == "A" * 255


def test_the_typed_claims_carry_the_name():
    body = {"iss": "https://lms.example", "sub": "p1", "nonce": "n", "name": "Alva Lind",
            "https://purl.imsglobal.org/spec/lti/claim/version": "1.3.0",
            "https://purl.imsglobal.org/spec/lti/claim/message_type": "LtiResourceLinkRequest",
            "https://purl.imsglobal.org/spec/lti/claim/deployment_id": "d1",
            "https://purl.imsglobal.org/spec/lti/claim/target_link_uri": "https://tool.example/lti/launch",
            "https://purl.imsglobal.org/spec/lti/claim/roles": ["Learner"],
            "https://purl.imsglobal.org/spec/lti/claim/resource_link": {"id": "r1"}}
    assert parse_launch_claims(body, client_id="c", base_url="https://tool.example").name == "Alva Lind"
    del body["name"]
    assert parse_launch_claims(body, client_id="c", base_url="https://tool.example").name is None


# -- through the pages ---------------------------------------------------------------------------------------------

def named_pupil(client, launches, user, name=None, **kwargs):
    """A pupil's launch whose id_token carries ``name`` (none: the platform shares no name)."""
    overrides = kwargs.pop("overrides", {})
    if name is not None:
        overrides = {**overrides, "name": name}
    spec = launches.spec(kwargs.pop("municipality", "SE-1490"), user=user, course="GIT-AK-1", locale="en-GB",
                         custom={"round": kwargs["round_id"]} if kwargs.get("round_id") else {})
    response = launches.launch(spec, overrides=overrides or None)
    assert response.status_code == 303, response.get_data(as_text=True)
    browser = Person.__new__(Person)
    browser.client, browser.home = client, response.headers["Location"]
    browser.token = re.search(r"lt=([^&]+)", browser.home).group(1)
    return browser


def seat_name(app, sub, round_id="now"):
    with new_session(app) as session:
        return session.scalar(select(Seat.name).join(CourseRound, CourseRound.id == Seat.round_pk)
                              .where(Seat.sub == sub, CourseRound.round_id == round_id))


@pytest.fixture
def round_teacher(app, client, other_platform):
    """The "now" round's teacher, launching from another platform than the pupils'."""
    name_round_teacher(app, "rita", registration_id=registration_of(app, other_platform.platform), name="Rita Rund")
    return person(client, other_platform, "rita", role="instructor")


def test_the_round_teacher_sees_the_launchs_name_on_every_page_and_a_pseudonym_without_one(
        app, client, launches, content, round_teacher):
    alva = named_pupil(client, launches, "p-alva", ALVA)
    anon = named_pupil(client, launches, "p-anon")
    text_hand_in(alva, content, "Alva's answer")
    text_hand_in(anon, content, "Anonymous answer")
    assert seat_name(app, "p-alva") == ALVA and seat_name(app, "p-anon") is None

    dashboard = round_teacher.get("/teach/").get_data(as_text=True)
    assert f'{ALVA} <span class="code">({pupil_label("p-alva")})</span>' in dashboard
    assert f"Pupil {pupil_label('p-anon')}" in dashboard
    grid = round_teacher.get("/teach/grades").get_data(as_text=True)
    assert ALVA in grid and f"Pupil {pupil_label('p-anon')}" in grid
    queue = round_teacher.get("/teach/queue").get_data(as_text=True)
    assert ALVA in queue and f"Pupil {pupil_label('p-anon')}" in queue
    with new_session(app) as session:
        submission = session.scalar(select(Submission.id).where(Submission.sub == "p-alva"))
    review = round_teacher.get(f"/teach/submission/{submission}")
    assert review.status_code == 200 and ALVA in review.get_data(as_text=True)
    pupil_page = round_teacher.get(f"/teach/pupil/{pupil_label('p-alva')}").get_data(as_text=True)
    assert f"<h1>{ALVA}" in pupil_page
    # the pupil's own page never needed it, and the launch record holds no name
    with new_session(app) as session:
        for launch in session.scalars(select(Launch).where(Launch.sub == "p-alva")):
            values = {column.key: getattr(launch, column.key) for column in Launch.__table__.columns}
            assert "Alva" not in json.dumps(values, default=str)


def test_a_given_and_family_name_and_a_name_that_changes_or_stops(app, client, launches, content, round_teacher):
    named_pupil(client, launches, "p-alva", overrides={"given_name": "Alva", "family_name": "Lind"})
    assert seat_name(app, "p-alva") == ALVA
    named_pupil(client, launches, "p-alva", "Alva Lind-Berg")  # the platform's name changed
    assert seat_name(app, "p-alva") == "Alva Lind-Berg"
    page = round_teacher.get("/teach/").get_data(as_text=True)
    assert "Alva Lind-Berg" in page and f"{ALVA} <span" not in page
    named_pupil(client, launches, "p-alva")  # the platform stopped sharing names
    assert seat_name(app, "p-alva") is None
    page = round_teacher.get("/teach/").get_data(as_text=True)
    assert "Alva Lind" not in page and f"Pupil {pupil_label('p-alva')}" in page
    with new_session(app) as session:  # one seat all along: the name follows the same seat
        assert len(session.scalars(select(Seat).where(Seat.sub == "p-alva")).all()) == 1


def test_a_teacher_of_another_round_never_sees_the_name(app, client, launches, content):
    with new_session(app) as session:
        seats.set_order(session, "SE-1490", "GIT-AK-1", "later", 10)
        session.commit()
    named_pupil(client, launches, "p-alva", ALVA)  # the "now" round, with the name
    named_pupil(client, launches, "p-alva", round_id="later")  # the same pupil in "later", without one
    assert seat_name(app, "p-alva", "now") == ALVA and seat_name(app, "p-alva", "later") is None
    name_round_teacher(app, "t-now", round_id="now")
    name_round_teacher(app, "t-later", round_id="later")
    later = person(client, launches, "t-later", role="instructor", round_id="later")
    page = later.get("/teach/").get_data(as_text=True)
    assert main_attrs(later.get("/teach/"))["pupils"] == "1"
    assert f"Pupil {pupil_label('p-alva')}" in page and "Alva" not in page
    assert "Alva" not in later.get("/teach/grades").get_data(as_text=True)
    now = person(client, launches, "t-now", role="instructor", round_id="now")
    assert ALVA in now.get("/teach/").get_data(as_text=True)


def test_the_setting_off_keeps_no_name_and_shows_none(app, client, launches, content, round_teacher):
    named_pupil(client, launches, "p-alva", ALVA)
    assert seat_name(app, "p-alva") == ALVA
    app.config["LAUNCH_NAMES"] = False
    try:
        assert "Alva" not in round_teacher.get("/teach/").get_data(as_text=True)  # a stored name is not shown
        named_pupil(client, launches, "p-alva", ALVA)  # and the next launch clears it
        assert seat_name(app, "p-alva") is None
        named_pupil(client, launches, "p-other", "Other Person")
        assert seat_name(app, "p-other") is None
    finally:
        app.config["LAUNCH_NAMES"] = True


def test_a_teachers_own_name_is_never_kept(app, client, launches, content):
    name_round_teacher(app, "t-named")
    named_pupil(client, launches, "p-alva", ALVA)
    spec = launches.spec("SE-1490", user="t-named", role="instructor", course="GIT-AK-1", locale="en-GB")
    assert launches.launch(spec, overrides={"name": "Tess Teacher"}).status_code == 303
    with new_session(app) as session:
        assert session.scalars(select(Seat.name).where(Seat.name.is_not(None))).all() == [ALVA]


def test_the_municipal_contact_sees_their_own_pupils_names_in_the_progress_page_and_export(
        app, client, launches, content):
    named_pupil(client, launches, "p-alva", ALVA)
    named_pupil(client, launches, "p-oslo", "Ola Nordmann", municipality="NO-0301")
    admin = person(client, launches, "admin-1", role="administrator", municipality="SE-1490")
    page = admin.get("/municipal/progress").get_data(as_text=True)
    assert ALVA in page and "Ola Nordmann" not in page
    export = admin.get("/municipal/progress.csv").get_data().decode("utf-8-sig")
    assert ALVA in export and "Ola Nordmann" not in export


# -- export, erasure, purge ------------------------------------------------------------------------------------------

def test_the_pupils_export_lists_the_name_and_erasure_removes_it(app, runner, client, launches, content):
    named_pupil(client, launches, "p-alva", ALVA)
    named_pupil(client, launches, "p-bo", "Bo Ek")
    exported = runner.invoke(args=["privacy", "export", "--pupil", "p-alva"])
    assert exported.exit_code == 0, exported.output
    assert [seat["name"] for seat in json.loads(exported.output)["seats"]] == [ALVA]
    assert runner.invoke(args=["privacy", "erase", "--pupil", "p-alva", "--yes"]).exit_code == 0
    with new_session(app) as session:
        assert session.scalars(select(Seat.name).where(Seat.name.is_not(None))).all() == ["Bo Ek"]
        assert all(privacy.is_anonymous(sub) for sub in session.scalars(select(Seat.sub).where(Seat.name.is_(None))))


def test_the_purge_removes_the_name_with_the_seats_pupil_after_the_round(app, runner, client, launches, content):
    named_pupil(client, launches, "p-alva", ALVA)
    assert runner.invoke(args=["privacy", "purge"]).exit_code == 0
    assert seat_name(app, "p-alva") == ALVA  # the round has not ended: the teacher still needs it
    with new_session(app) as session:
        session.execute(update(CourseRound).where(CourseRound.round_id == "now")
                        .values(ends_on=date.today() - timedelta(days=400),
                                starts_on=date.today() - timedelta(days=500)))
        session.commit()
    assert runner.invoke(args=["privacy", "purge"]).exit_code == 0
    with new_session(app) as session:
        assert session.scalars(select(Seat.name)).all() == [None]
        assert privacy.is_anonymous(session.scalar(select(Seat.sub)))


# -- the sandbox and the demo ----------------------------------------------------------------------------------------

def test_the_demos_pupils_launch_with_names():
    pupils = [launch for launch in demo_round.LAUNCHES if launch.kind == demo_round.PUPIL]
    assert {launch.user: launch.query()["name"] for launch in pupils} == {
        "pupil-kiruna": "Alva Lind", "pupil-are": "Elias Berg", "pupil-boras": "Maja Holm"}


def test_the_sandbox_form_sends_a_name_only_when_one_is_given(app, client, launches, content):
    platform = launches.platform
    start = client.get("/sandbox/start", query_string={"deployment": f"{launches.spec().deployment_id}|",
                                                        "user": "p-form", "course": "GIT-AK-1",
                                                        "name": "  Maja   Holm "})
    hint = re.search(r"lti_message_hint=([^&]+)", start.headers["Location"])
    assert platform.decode_hint(unquote(hint.group(1))).name == "Maja Holm"
    assert platform.claims(platform.decode_hint(unquote(hint.group(1))), "n")["name"] == "Maja Holm"
    bare = client.get("/sandbox/start", query_string={"deployment": f"{launches.spec().deployment_id}|",
                                                       "user": "p-form", "course": "GIT-AK-1"})
    spec = platform.decode_hint(unquote(re.search(r"lti_message_hint=([^&]+)", bare.headers["Location"]).group(1)))
    assert spec.name is None and "name" not in platform.claims(spec, "n")
    page = client.get("/sandbox/", base_url=platform.base_url).get_data(as_text=True)
    assert 'name="name"' in page


def test_a_name_typed_on_the_sandbox_page_reaches_the_round_teacher(app, client, launches, content):
    """The whole way a newcomer takes it: the sandbox's start (its form's name field), the tool's login, the
    sandbox platform's own authorization endpoint (which signs the name claim), the tool's launch."""
    from .test_cross_border_round import through_the_sandbox

    deployment = f"{launches.spec().deployment_id}|"
    pupil = through_the_sandbox(client, deployment=deployment, user="p-sandbox", course="GIT-AK-1", round="now",
                                name="Maja Holm", locale="en-GB")
    assert pupil.get(pupil.home).status_code == 200
    assert seat_name(app, "p-sandbox") == "Maja Holm"
    name_round_teacher(app, "t-sandbox")
    teacher = through_the_sandbox(client, deployment=deployment, user="t-sandbox", role="instructor",
                                  course="GIT-AK-1", round="now", locale="en-GB")
    assert f'Maja Holm <span class="code">({pupil_label("p-sandbox")})</span>' in teacher.get("/teach/").get_data(
        as_text=True)


def test_the_privacy_notice_says_the_name_is_kept_for_the_round_only_when_it_is(config, app_factory):
    kept = app_factory(config).test_client().get("/privacy", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert "if the platform sends it, your name for your teachers" in kept
    assert "kept with your place in that course round only" in kept and "never your name" not in kept
    off = app_factory({**config, "LAUNCH_NAMES": False}).test_client().get(
        "/privacy", headers={"Accept-Language": "sv"}).get_data(as_text=True)
    assert "aldrig ditt namn, din e-postadress eller ditt personnummer" in off and "course round only" not in off


def test_launch_name_first_then_the_member_lists_also_beside_the_roster(app, client, launches):
    """With ROSTER_NAMES on too: the launch's name wins over the member list's; a pupil whose launch carries none
    is named by the member list; the side-by-side view of members and places names pupils the same way."""
    import responses

    from lti_tool.domain.claims import CLAIM_NRPS

    from .catalog_factory import add_content, add_course
    from .test_roster import MEMBERS, TOKEN_URL, member, page

    with new_session(app) as session:
        add_course(session)
        add_content(session)
        seats.set_order(session, "SE-1490", "GIT-AK-1", "now", 5)
        session.commit()
    nrps = {CLAIM_NRPS: {"context_memberships_url": MEMBERS, "service_versions": ["2.0"]}}
    named_pupil(client, launches, "p1", ALVA, overrides=nrps)
    named_pupil(client, launches, "p2", overrides=nrps)
    name_round_teacher(app, "t1")
    spec = launches.spec("SE-1490", user="t1", role="instructor", course="GIT-AK-1", locale="en-GB")
    teacher = launches.launch(spec, overrides=nrps)
    app.config["ROSTER_NAMES"] = True
    try:
        with responses.RequestsMock() as mock:
            mock.post(TOKEN_URL, json={"access_token": "tok", "expires_in": 3600})
            mock.get(MEMBERS, **page([member("p1", name="Alva R. Lind"), member("p2", name="Bo Berg"),
                                      member("p9", name="Nils Nilsson")]))
            body = client.get(teacher.headers["Location"], follow_redirects=True).get_data(as_text=True)
    finally:
        app.config["ROSTER_NAMES"] = False
    assert f'{ALVA} <span class="code">({pupil_label("p1")})</span>' in body and "Alva R. Lind" not in body
    assert f'Bo Berg <span class="code">({pupil_label("p2")})</span>' in body
    assert re.search(rf"<th scope=\"row\">{ALVA}</th>\s*<td[^>]*>Yes</td>\s*<td[^>]*>Yes</td>", body)
    assert re.search(r"<th scope=\"row\">Nils Nilsson</th>\s*<td[^>]*>Yes</td>\s*<td[^>]*>No place</td>", body)


def test_the_dashboards_queue_and_the_conversations_on_hand_ins_name_the_pupil(app, client, launches, content,
                                                                             round_teacher):
    alva = named_pupil(client, launches, "p-alva", ALVA)
    text_hand_in(alva, content, "Alva's answer")
    assert alva.post(f"/assignment/{content['assignment2']}/message", {"body": "Is this right?"}).status_code == 303
    named = f'{ALVA} <span class="code">({pupil_label("p-alva")})</span>'
    dashboard = round_teacher.get("/teach/").get_data(as_text=True)
    queue_part = dashboard[dashboard.index('<ol class="queue">'):]
    assert named in queue_part[:queue_part.index("</ol>")]
    messages = round_teacher.get("/classroom/messages").get_data(as_text=True)
    assert named in messages
    with new_session(app) as session:
        submission = session.scalar(select(Submission.id).where(Submission.sub == "p-alva"))
    talk = round_teacher.get(f"/classroom/hand-in/{submission}").get_data(as_text=True)
    assert f"<h1>{named}" in talk and f"<strong>{ALVA}</strong>" in talk
    review = round_teacher.get(f"/teach/submission/{submission}").get_data(as_text=True)
    assert f"<strong>{ALVA}</strong>" in review  # the conversation on the review page
    assert "Is this right?" in review
