"""Placing courses by Deep Linking: the municipality's ordered courses, a signed response, data echoed."""

from __future__ import annotations

import re
from html import unescape

import jwt
import pytest

from lti_tool.db import new_session
from lti_tool.domain.claims import CLAIM_DEEP_LINKING_SETTINGS, MESSAGE_DEEP_LINKING
from lti_tool.lti import get_lti
from lti_tool.sandbox import CLIENT_ID
from lti_tool.services import seats

from .catalog_factory import add_content, add_course
from .conftest import error_code, main_attrs

DL = "https://purl.imsglobal.org/spec/lti-dl/claim/"


@pytest.fixture
def ordered(app, demo):
    with new_session(app) as session:
        add_course(session)
        add_content(session)
        add_course(session, "DANS-1")
        seats.set_order(session, "SE-1490", "GIT-AK-1", "now", 4)
        seats.set_order(session, "SE-1490", "DANS-1", "later", 2)
        seats.set_order(session, "NO-0301", "DANS-1", "now", 2)
        session.commit()


def dl_launch(client, launches, role="instructor", municipality="SE-1490", overrides=None, multiple=False):
    spec = launches.spec(municipality, role=role, message_type=MESSAGE_DEEP_LINKING, accept_multiple=multiple)
    response = launches.launch(spec, overrides=overrides)
    if response.status_code != 303:
        return response, None
    page = client.get(response.headers["Location"])
    return page, response.headers["Location"]


def pick(client, url, *order_ids):
    return client.post(url, data={"order": [str(i) for i in order_ids]})


def response_claims(app, page):
    token = unescape(re.search(r'name="JWT" value="([^"]+)"', page.get_data(as_text=True)).group(1))
    header = jwt.get_unverified_header(token)
    key = next(k for k in get_lti(app).keys.jwks()["keys"] if k["kid"] == header["kid"])
    return jwt.decode(token, jwt.PyJWK(key).key, algorithms=["RS256"], audience="http://localhost/sandbox")


def test_teacher_sees_the_municipalitys_orders_and_places_one(app, client, launches, ordered, platform):
    page, url = dl_launch(client, launches)
    assert main_attrs(page)["offers"] == "2" and main_attrs(page)["municipality"] == "SE-1490"
    body = page.get_data(as_text=True)
    assert "Kurs GIT-AK-1" in body and "4 platser kvar" in body and "2 platser kvar" in body
    order_id = re.search(r'name="order" value="(\d+)"', body).group(1)
    posted = pick(client, url, order_id)
    assert 'action="http://localhost/sandbox/deep-link-return"' in posted.get_data(as_text=True)
    claims = response_claims(app, posted)
    assert claims["iss"] == CLIENT_ID and claims["aud"] == ["http://localhost/sandbox"] and claims["nonce"]
    assert claims["https://purl.imsglobal.org/spec/lti/claim/message_type"] == "LtiDeepLinkingResponse"
    assert claims["https://purl.imsglobal.org/spec/lti/claim/version"] == "1.3.0"
    assert claims["https://purl.imsglobal.org/spec/lti/claim/deployment_id"] == "sandbox-SE-1490"
    assert claims[DL + "data"] == "sandbox-sandbox-course-1"  # echoed unchanged
    (item,) = claims[DL + "content_items"]
    assert item["type"] == "ltiResourceLink" and item["url"] == "http://localhost/lti/launch"
    assert item["custom"] in ({"course": "GIT-AK-1", "round": "now"}, {"course": "DANS-1", "round": "later"})
    assert item["lineItem"]["resourceId"] == item["custom"]["course"] and item["lineItem"]["tag"] == "kulturskola"
    # The sandbox platform verifies the response with the tool's published keys and shows what was placed.
    returned = client.post("/sandbox/deep-link-return", data={"JWT": re.search(
        r'name="JWT" value="([^"]+)"', posted.get_data(as_text=True)).group(1)})
    assert returned.status_code == 200 and main_attrs(returned)["placed"] == "1"


def test_one_item_unless_multiple_accepted(app, client, launches, ordered):
    page, url = dl_launch(client, launches)
    ids = re.findall(r'name="order" value="(\d+)"', page.get_data(as_text=True))
    assert len(response_claims(app, pick(client, url, *ids))[DL + "content_items"]) == 1
    page, url = dl_launch(client, launches, multiple=True)
    assert 'type="checkbox"' in page.get_data(as_text=True)
    assert len(response_claims(app, pick(client, url, *ids))[DL + "content_items"]) == 2


def test_nothing_picked(client, launches, ordered):
    _page, url = dl_launch(client, launches)
    response = pick(client, url)
    assert response.status_code == 400 and error_code(response) == "nothing_picked"


def test_no_line_item_when_the_platform_refuses_them(app, client, launches, ordered):
    settings = {"deep_link_return_url": "http://localhost/sandbox/deep-link-return",
                "accept_types": ["ltiResourceLink"], "accept_lineitem": False}
    page, url = dl_launch(client, launches, overrides={CLAIM_DEEP_LINKING_SETTINGS: settings})
    order_id = re.search(r'name="order" value="(\d+)"', page.get_data(as_text=True)).group(1)
    claims = response_claims(app, pick(client, url, order_id))
    assert "lineItem" not in claims[DL + "content_items"][0] and DL + "data" not in claims


def test_only_accepted_types(client, launches, ordered):
    settings = {"deep_link_return_url": "http://localhost/x", "accept_types": ["file", "html"]}
    page, url = dl_launch(client, launches, overrides={CLAIM_DEEP_LINKING_SETTINGS: settings})
    assert "does not accept" in page.get_data(as_text=True) or "tar inte emot" in page.get_data(as_text=True)
    assert 'name="JWT"' not in pick(client, url, 1).get_data(as_text=True)


def test_municipality_without_orders_sees_a_clear_page(client, launches, ordered):
    page, _url = dl_launch(client, launches, municipality="SE-2584")
    assert main_attrs(page)["offers"] == "0" and 'data-error-code="no_orders"' in page.get_data(as_text=True)


def test_pupils_cannot_place_courses(client, launches, ordered):
    page, _url = dl_launch(client, launches, role="learner")
    assert page.status_code == 403 and error_code(page) == "deep_linking_forbidden"


def test_deep_linking_without_settings_is_refused(client, launches, ordered):
    page, _url = dl_launch(client, launches, overrides={CLAIM_DEEP_LINKING_SETTINGS: {"accept_types": []}})
    assert error_code(page) == "deep_linking_settings_missing"


def test_placed_link_launches_into_the_course(app, client, launches, ordered):
    """The custom parameters of the placed link take a pupil into that course and round."""
    page, url = dl_launch(client, launches)
    ids = re.findall(r'name="order" value="(\d+)"', page.get_data(as_text=True))
    item = response_claims(app, pick(client, url, ids[0]))[DL + "content_items"][0]
    spec = launches.spec("SE-1490", user="pupil-9", custom=item["custom"])
    home = client.get(launches.launch(spec).headers["Location"])
    assert main_attrs(home)["seat"] == item["custom"]["round"]
