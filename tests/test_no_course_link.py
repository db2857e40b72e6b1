"""A launch on a resource link that names no course (no custom ``course``, nothing placed by deep linking): the
pupil and the teacher each get a page that says what is going on and what the municipality has ordered; the
teacher also what to ask the platform's administrator, and their rounds; nobody takes a seat."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from lti_tool.db import new_session
from lti_tool.models import Seat
from lti_tool.services import seats

from .catalog_factory import add_content, add_course
from .conftest import main_attrs, name_round_teacher


@pytest.fixture
def ordered(app, demo):
    with new_session(app) as session:
        add_course(session)
        add_content(session)
        seats.set_order(session, "SE-1490", "GIT-AK-1", "now", 10)
        session.commit()


def _open(client, launches, *, role: str, user: str, municipality: str = "SE-1490"):
    response = launches.launch(launches.spec(municipality, user=user, role=role, course=None,
                                                   locale="en-GB"))
    assert response.status_code == 303, response.get_data(as_text=True)
    page = client.get(response.headers["Location"])
    assert page.status_code == 200, page.get_data(as_text=True)
    return page, re.search(r"lt=([^&\"]+)", response.headers["Location"]).group(1)


def test_a_pupil_sees_what_the_municipality_has_ordered_and_whom_to_ask(app, client, launches, ordered):
    page, _token = _open(client, launches, role="learner", user="elev-utan-kurs")
    body = page.get_data(as_text=True)
    attrs = main_attrs(page)
    assert attrs["page"] == "no-course" and attrs["offers"] == "1" and "seat" not in attrs
    assert 'data-course="GIT-AK-1"' in body and 'data-round="now"' in body
    assert "Course GIT-AK-1" in body and "Sammanfattning" in body  # title and summary of the ordered course
    assert "data-no-course" in body and "Ask your teacher which course" in body
    assert "course=GIT-AK-1" not in body  # the custom parameter is the teacher's business
    assert "teach/rounds" not in body  # no teacher's links for a pupil
    with new_session(app) as session:
        assert session.scalar(select(func.count()).select_from(Seat)) == 0


def test_a_teacher_sees_what_to_ask_for_and_their_rounds(app, client, launches, ordered):
    name_round_teacher(app, "laerer-utan-kurs")
    page, token = _open(client, launches, role="instructor", user="laerer-utan-kurs")
    body = page.get_data(as_text=True)
    attrs = main_attrs(page)
    assert attrs["page"] == "no-course" and attrs["offers"] == "1" and attrs["rounds"] == "1"
    assert "course=GIT-AK-1" in body  # exactly what to set on the link
    round_link = re.search(r'href="(/teach/rounds/\d+/\?lt=[^"]+|/teach/rounds/\d+\?lt=[^"]+)"', body)
    assert round_link, body
    dashboard = client.get(round_link.group(1).replace("&amp;", "&"))
    assert dashboard.status_code == 200 and main_attrs(dashboard).get("pupils") == "0"
    rounds = client.get(f"/teach/rounds?lt={token}")
    assert rounds.status_code == 200 and main_attrs(rounds)["rounds"] == "1"


def test_a_teacher_of_no_round_is_told_so_and_where_invitations_go(client, launches, ordered):
    page, token = _open(client, launches, role="instructor", user="laerer-ny")
    attrs = main_attrs(page)
    assert attrs["rounds"] == "0" and attrs["offers"] == "1"
    assert f"/teach/rounds?lt={token}" in page.get_data(as_text=True)


def test_a_municipality_without_orders_says_so(client, launches, ordered):
    page, _token = _open(client, launches, role="learner", user="elev-oslo", municipality="NO-0301")
    attrs = main_attrs(page)
    assert attrs["page"] == "no-course" and attrs["offers"] == "0"


def test_an_administrator_still_goes_to_the_municipal_console(client, launches, ordered):
    response = launches.launch(launches.spec("SE-1490", user="admin-utan-kurs", role="administrator", course=None))
    assert response.status_code == 303 and "/municipal/" in response.headers["Location"]
