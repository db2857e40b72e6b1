"""Rosters (NRPS): every page followed, differences kept, missing members refused, leavers withdrawn."""

from __future__ import annotations

import re

import pytest
import responses
from sqlalchemy import select

from lti_tool.db import new_session
from lti_tool.domain.claims import CLAIM_NRPS
from lti_tool.lti import get_lti
from lti_tool.lti.ags import ServiceClient
from lti_tool.models import LtiContext, RosterMember, Seat
from lti_tool.services import seats
from lti_tool.services.roster import RosterError, sync_roster

from .catalog_factory import add_content, add_course
from .conftest import main_attrs

MEMBERS = "https://lms.example/api/lti/courses/7/names_and_roles"
TOKEN_URL = "http://localhost/sandbox/token"
LEARNER = ["http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"]
MEDIA = "application/vnd.ims.lti-nrps.v2.membershipcontainer+json"


@pytest.fixture
def course(app, demo):
    with new_session(app) as session:
        add_course(session)
        add_content(session)
        seats.set_order(session, "SE-1490", "GIT-AK-1", "now", 1)
        session.commit()


def launch(launches, user, role="learner"):
    spec = launches.spec("SE-1490", user=user, role=role, course="GIT-AK-1")
    return launches.launch(spec, overrides={CLAIM_NRPS: {"context_memberships_url": MEMBERS,
                                                         "service_versions": ["2.0"]}})


def page(members, link=None):
    return {"body": __import__("json").dumps({"id": MEMBERS, "context": {"id": "sandbox-course-1"},
                                              "members": members}),
            "content_type": MEDIA, "headers": {"Link": link} if link else {}}


def member(user, status="Active", roles=LEARNER, name=None):
    data = {"user_id": user, "roles": roles, "status": status}
    if name:
        data["name"] = name
    return data


def sync(app, names=False):
    with new_session(app) as session:
        context = session.scalars(select(LtiContext)).one()
        client = ServiceClient(get_lti(app).keys, timeout=2, policy=get_lti(app).outbound)
        report = sync_roster(session, client, context, keep_names=names)
        session.commit()
        return report


def test_three_pages_with_a_case_sensitive_next_url_and_differences(app, launches, course):
    launch(launches, "t1", role="instructor")
    page2 = "https://lms.example/api/lti/courses/7/names_and_roles?Page=2&Cursor=AbCdEf"
    page3 = "https://lms.example/api/lti/courses/7/names_and_roles?Page=3&Cursor=GhIjKl"
    differences = "https://lms.example/api/lti/courses/7/names_and_roles?since=XyZ"
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        mock.post(TOKEN_URL, json={"access_token": "tok", "expires_in": 3600})
        mock.get(MEMBERS, match=[responses.matchers.query_string_matcher("")],
                 **page([member("a"), member("b")], f'<{page2}>; rel="next"'))
        mock.get(page2, match=[responses.matchers.query_string_matcher("Page=2&Cursor=AbCdEf")],
                 **page([member("c")], f'<{page3}>; rel="next"'))
        mock.get(page3, match=[responses.matchers.query_string_matcher("Page=3&Cursor=GhIjKl")],
                 **page([member("t1", roles=["http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"],
                                name="Lena Lärare")], f'<{differences}>; rel="differences"'))
        report = sync(app)
        assert mock.calls[1].request.headers["Accept"] == MEDIA
        assert mock.calls[1].request.headers["Authorization"] == "Bearer tok"
    assert report.members == 4
    with new_session(app) as session:
        context = session.scalars(select(LtiContext)).one()
        assert context.nrps_differences_url == differences
        rows = {m.user_id: (m.status, m.name) for m in session.scalars(select(RosterMember))}
    assert rows == {"a": ("Active", None), "b": ("Active", None), "c": ("Active", None), "t1": ("Active", None)}

    # The next sync asks only for the differences: b has left (Inactive).
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        mock.get(differences, match=[responses.matchers.query_string_matcher("since=XyZ")],
                 **page([member("b", status="Inactive")], f'<{differences}2>; rel="differences"'))
        report = sync(app)
    assert report.gone == ["b"]
    with new_session(app) as session:
        assert session.scalars(select(LtiContext)).one().nrps_differences_url == differences + "2"
        assert session.scalar(select(RosterMember.status).where(RosterMember.user_id == "a")) == "Active"


def test_a_response_without_members_is_an_error(app, launches, course):
    launch(launches, "t1", role="instructor")
    with responses.RequestsMock() as mock:
        mock.post(TOKEN_URL, json={"access_token": "tok", "expires_in": 3600})
        mock.get(MEMBERS, json={"id": MEMBERS, "context": {"id": "x"}}, content_type=MEDIA)
        with pytest.raises(RosterError, match="no members"):
            sync(app)
    with new_session(app) as session:
        assert session.scalars(select(RosterMember)).all() == []


def test_names_only_when_configured(app, launches, course):
    launch(launches, "t1", role="instructor")
    with responses.RequestsMock() as mock:
        mock.post(TOKEN_URL, json={"access_token": "tok", "expires_in": 3600})
        mock.get(MEMBERS, **page([member("a", name="Alva Elev")]))
        sync(app, names=True)
    with new_session(app) as session:
        assert session.scalar(select(RosterMember.name)) == "Alva Elev"


def test_a_pupil_who_left_is_withdrawn_and_the_seat_goes_to_the_waiting_pupil(app, client, launches, course):
    assert launch(launches, "p1").status_code == 303
    refused = launch(launches, "p2")
    token = re.search(r'name="wt" value="([^"]+)"', refused.get_data(as_text=True)).group(1)
    client.post("/waitlist", data={"wt": token})
    launch(launches, "t1", role="instructor")
    with responses.RequestsMock() as mock:
        mock.post(TOKEN_URL, json={"access_token": "tok", "expires_in": 3600})
        mock.get(MEMBERS, **page([member("p2")]))  # a whole roster without p1: p1 has left the course
        report = sync(app)
    assert report.gone == ["p1"] and len(report.withdrawn) == 1
    with new_session(app) as session:
        assert dict(session.execute(select(Seat.sub, Seat.status)).all()) == {"p1": "withdrawn", "p2": "active"}


def test_teacher_view_shows_roster_and_seats_side_by_side(app, client, launches, course):
    launch(launches, "p1")
    teacher = launch(launches, "t1", role="instructor")
    with responses.RequestsMock() as mock:
        mock.post(TOKEN_URL, json={"access_token": "tok", "expires_in": 3600})
        mock.get(MEMBERS, **page([member("p1"), member("p9")]))
        page_ = client.get(teacher.headers["Location"], follow_redirects=True)
    body = page_.get_data(as_text=True)
    from lti_tool.services.delivery import pupil_label

    assert main_attrs(page_)["role"] == "instructor"
    row = re.search(rf"Elev {pupil_label('p9')}</th>\s*<td[^>]*>([^<]+)</td>\s*<td[^>]*>([^<]+)</td>", body)
    assert row and row.groups() == ("Ja", "Ingen plats")  # in the LMS course without a seat
    row = re.search(rf"Elev {pupil_label('p1')}</th>\s*<td[^>]*>([^<]+)</td>\s*<td[^>]*>([^<]+)</td>", body)
    assert row and row.groups() == ("Ja", "Ja")


def test_teacher_view_survives_a_failing_roster(app, client, launches, course):
    teacher = launch(launches, "t1", role="instructor")
    with responses.RequestsMock() as mock:
        mock.post(TOKEN_URL, status=503)
        page_ = client.get(teacher.headers["Location"], follow_redirects=True)
    assert page_.status_code == 200 and "senast kända" in page_.get_data(as_text=True)


def test_roster_sync_cli(app, runner, launches, course):
    launch(launches, "t1", role="instructor")
    with responses.RequestsMock() as mock:
        mock.post(TOKEN_URL, json={"access_token": "tok", "expires_in": 3600})
        mock.get(MEMBERS, **page([member("a")]))
        out = runner.invoke(args=["roster", "sync", "--context", "sandbox-course-1"]).output
    assert "sandbox-course-1: 1 member(s) listed" in out
    result = runner.invoke(args=["roster", "sync", "--context", "nope"])
    assert result.exit_code == 1 and "no course" in result.output


def test_a_platform_without_a_member_list_is_said_so_instead_of_marking_pupils_missing(app, client, launches, demo):
    from .catalog_factory import add_course

    with new_session(app) as session:
        add_course(session)
        seats.set_order(session, "SE-1490", "GIT-AK-1", "now", 5)
        session.commit()
    pupil = launches.launch(launches.spec("SE-1490", user="p1", course="GIT-AK-1"))
    assert pupil.status_code == 303
    teacher = launches.launch(launches.spec("SE-1490", user="t1", role="instructor", course="GIT-AK-1"))
    page = client.get(teacher.headers["Location"], follow_redirects=True)
    body = page.get_data(as_text=True)
    assert page.status_code == 200 and 'data-roster="none"' in body
    assert "Inte med i listan" not in body and "Not listed" not in body
