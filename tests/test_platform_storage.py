"""The server side of launches without third-party cookies: the login page that keeps the state in the
platform's storage, the launch page that reads it back, the completion post, the relaunch in a new window,
and the count of launches per path. (The browser side: tests/test_third_party_cookies.py and
tests/test_lti_storage_js.py.)"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from html import unescape
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import func, select

from lti_tool.db import new_session
from lti_tool.models import Launch, Seat

from .conftest import BASE_URL, error_code
from .test_staff import sign_in

SAME_ORIGIN = {"Sec-Fetch-Site": "same-origin"}
IN_FRAME = {"Sec-Fetch-Dest": "iframe"}


def storage_config(response) -> dict:
    match = re.search(r'<script type="application/json" id="lti-storage-config">(.*?)</script>',
                      response.get_data(as_text=True), re.S)
    assert match, response.get_data(as_text=True)[:1500]
    return json.loads(unescape(match.group(1)))


def hidden_fields(response) -> dict:
    return {name: unescape(value) for name, value in
            re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', response.get_data(as_text=True))}


def launches_by_path(app) -> list:
    with new_session(app) as session:
        return [(launch.sub, launch.state_path) for launch in session.scalars(select(Launch))]


def login_with_storage(launches, spec, target="_parent", headers=None):
    """The login as Canvas or Brightspace start it: with lti_storage_target."""
    storage = {"_parent": "parent", "post_message_forwarding": "frame"}.get(target)
    query = launches.platform.login_initiation(replace(spec, storage=storage or "none"))
    query["lti_storage_target"] = target
    return launches.client.get("/lti/login", query_string=query, headers=headers or {})


def auth_from(config: dict) -> dict:
    return {k: v[0] for k, v in parse_qs(urlsplit(config["redirect"]).query).items()}


def test_login_with_a_storage_target_keeps_the_state_in_the_platform(app, launches):
    spec = launches.spec(user="elev-1", course=None)
    response = login_with_storage(launches, spec, "post_message_forwarding")
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    config = storage_config(response)
    auth = auth_from(config)
    # Messages go to the origin of the platform's authorization endpoint, never "*".
    assert config["mode"] == "put" and config["origin"] == "http://localhost"
    assert config["target"] == "post_message_forwarding" and config["cookieCheck"] is None
    assert config["key"] == "state_" + auth["state"] and config["value"] == auth["state"]
    assert config["redirect"].startswith(launches.platform.auth_login_url + "?")
    # The cookie is set too: it is the fallback where the platform's storage fails.
    assert f"lti_state_{auth['state']}=" in response.headers["Set-Cookie"]
    # The tool's page may be framed by the platform only.
    assert "frame-ancestors 'self' http://localhost" in response.headers["Content-Security-Policy"]


def test_a_frame_name_that_is_not_a_name_is_ignored(launches):
    response = login_with_storage(launches, launches.spec(), "javascript:alert(1)")
    assert response.status_code == 302  # at top level, no storage asked for


def test_login_inside_a_frame_without_target_checks_the_cookie_first(launches):
    query = launches.platform.login_initiation(launches.spec())
    response = launches.client.get("/lti/login", query_string=query, headers=IN_FRAME)
    config = storage_config(response)
    assert config["target"] is None and config["cookieCheck"].startswith("/lti/login/cookie?state=")
    state = auth_from(config)["state"]
    assert launches.client.get(config["cookieCheck"]).get_json() == {"cookie": True}
    launches.client.delete_cookie(f"lti_state_{state}", path="/lti/")
    assert launches.client.get(config["cookieCheck"]).get_json() == {"cookie": False}


def storage_launch(launches, spec, *, keep_cookie=False):
    """Login with a storage target, the platform's form post, and the launch page the tool answers with."""
    config = storage_config(login_with_storage(launches, spec))
    auth = auth_from(config)
    if not keep_cookie:
        launches.client.delete_cookie(f"lti_state_{auth['state']}", path="/lti/")
    fields = launches.platform.auth_response(auth)
    assert fields["lti_storage_target"] == "_parent"
    return auth, launches.client.post("/lti/launch", data=fields, headers=IN_FRAME)


def test_launch_page_reads_the_state_back_then_completes(app, launches):
    spec = launches.spec(user="elev-2", course=None)
    auth, page = storage_launch(launches, spec)
    assert page.status_code == 200 and page.headers["Referrer-Policy"] == "same-origin"
    config = storage_config(page)
    assert config == {"mode": "get", "target": "_parent", "origin": "http://localhost",
                      "key": "state_" + auth["state"], "expected": auth["state"], "cookieBound": False,
                      "timeout": 2000, "capabilitiesTimeout": 700}
    assert launches_by_path(app) == []  # nothing before the state is confirmed
    fields = hidden_fields(page)
    assert fields["proof"] == "cookie" and fields["state"] == auth["state"]
    done = launches.client.post("/lti/launch/complete", headers=SAME_ORIGIN,
                                data={**fields, "proof": "platform_storage", "storage_value": auth["state"]})
    assert done.status_code == 303, done.get_data(as_text=True)[:1500]
    assert launches_by_path(app) == [("elev-2", "platform_storage")]


@pytest.mark.parametrize("value", ["another-state", ""])
def test_a_value_from_storage_that_is_not_the_state_is_refused(app, launches, value):
    auth, page = storage_launch(launches, launches.spec())
    fields = hidden_fields(page)
    refused = launches.client.post("/lti/launch/complete", headers=SAME_ORIGIN,
                                   data={**fields, "proof": "platform_storage", "storage_value": value})
    assert refused.status_code == 400 and error_code(refused) == "state_invalid"
    assert launches_by_path(app) == []


def test_completion_posted_from_another_site_is_refused(app, launches):
    """A page of another site cannot finish someone else's launch in this browser, even knowing the state."""
    auth, page = storage_launch(launches, launches.spec())
    data = {**hidden_fields(page), "proof": "platform_storage", "storage_value": auth["state"]}
    for headers in ({"Sec-Fetch-Site": "cross-site"}, {"Origin": "https://evil.example"}, {"Origin": "null"}, {}):
        refused = launches.client.post("/lti/launch/complete", headers=headers, data=data)
        assert refused.status_code == 400 and error_code(refused) == "state_invalid", headers
    assert launches_by_path(app) == []
    accepted = launches.client.post("/lti/launch/complete", headers={"Origin": BASE_URL}, data=data)
    assert accepted.status_code == 303


def test_cookie_proof_when_the_platform_storage_fails(app, launches):
    auth, page = storage_launch(launches, launches.spec(user="elev-3", course=None), keep_cookie=True)
    assert storage_config(page)["cookieBound"] is True
    done = launches.client.post("/lti/launch/complete", headers=SAME_ORIGIN, data=hidden_fields(page))
    assert done.status_code == 303
    assert launches_by_path(app) == [("elev-3", "cookie")]


def test_the_id_token_is_still_checked_after_the_storage_step(app, launches):
    auth, page = storage_launch(launches, launches.spec())
    fields = hidden_fields(page)
    fields["id_token"] = fields["id_token"][:-4] + "AAAA"
    refused = launches.client.post("/lti/launch/complete", headers=SAME_ORIGIN,
                                   data={**fields, "proof": "platform_storage", "storage_value": auth["state"]})
    assert error_code(refused) == "signature_invalid"


def test_completion_is_used_once(app, launches):
    auth, page = storage_launch(launches, launches.spec())
    data = {**hidden_fields(page), "proof": "platform_storage", "storage_value": auth["state"]}
    assert launches.client.post("/lti/launch/complete", headers=SAME_ORIGIN, data=data).status_code == 303
    again = launches.client.post("/lti/launch/complete", headers=SAME_ORIGIN, data=data)
    assert error_code(again) == "nonce_replayed"


def test_missing_cookie_inside_a_frame_offers_the_new_window(app, launches):
    from lti_tool.services import seats

    from .catalog_factory import add_course

    with new_session(app) as session:
        add_course(session)
        seats.set_order(session, "SE-1490", "GIT-AK-1", "now", 3)
        session.commit()
    spec = launches.spec(user="elev-4", course="GIT-AK-1")
    auth = launches.login(spec)
    launches.client.delete_cookie(f"lti_state_{auth['state']}", path="/lti/")
    page = launches.client.post("/lti/launch", data=launches.platform.auth_response(auth), headers=IN_FRAME)
    assert page.status_code == 200
    config = storage_config(page)
    assert config["target"] is None and config["cookieBound"] is False
    body = page.get_data(as_text=True)
    relaunch = re.search(r'id="new-window-link" class="button" href="([^"]+)" target="_blank"', body).group(1)
    assert relaunch == f"/lti/relaunch/{auth['state']}"
    # The new window starts the same login again at top level, with a new state and its cookie.
    again = launches.client.get(relaunch)
    assert again.status_code == 302
    new_auth = {k: v[0] for k, v in parse_qs(urlsplit(again.headers["Location"]).query).items()}
    assert new_auth["state"] != auth["state"] and new_auth["login_hint"] == "elev-4"
    assert launches.platform.decode_hint(new_auth["lti_message_hint"]) == spec and "lti_storage_target" not in new_auth
    done = launches.client.post("/lti/launch", data=launches.platform.auth_response(new_auth))
    assert done.status_code == 303
    # Twice: the pupil keeps one seat.
    again = launches.client.get(relaunch)
    second = {k: v[0] for k, v in parse_qs(urlsplit(again.headers["Location"]).query).items()}
    assert launches.client.post("/lti/launch", data=launches.platform.auth_response(second)).status_code == 303
    assert launches_by_path(app) == [("elev-4", "new_window"), ("elev-4", "new_window")]
    with new_session(app) as session:
        assert session.scalar(select(func.count()).select_from(Seat).where(Seat.sub == "elev-4")) == 1


def test_relaunch_of_an_unknown_login_is_refused(launches):
    response = launches.client.get("/lti/relaunch/not-a-state")
    assert response.status_code == 400 and error_code(response) == "state_invalid"


def test_a_missing_cookie_at_top_level_is_refused_at_once(app, launches):
    auth = launches.login(launches.spec())
    launches.client.delete_cookie(f"lti_state_{auth['state']}", path="/lti/")
    refused = launches.client.post("/lti/launch", data=launches.platform.auth_response(auth),
                                   headers={"Sec-Fetch-Dest": "document"})
    assert error_code(refused) == "state_invalid"


def test_launch_stats_per_platform_and_path(app, launches, runner, client):
    launches.launch_through_platform(launches.spec(user="a", course=None))
    auth, page = storage_launch(launches, launches.spec(user="b", course=None))
    launches.client.post("/lti/launch/complete", headers=SAME_ORIGIN,
                         data={**hidden_fields(page), "proof": "platform_storage", "storage_value": auth["state"]})
    result = runner.invoke(args=["launches", "stats"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert re.match(r"Sandbox platform \(\d+\)\s+cookie\s+1$", lines[1])
    assert re.match(r"Sandbox platform \(\d+\)\s+platform_storage\s+1$", lines[2])
    assert lines[-1] == "total: cookie 1, platform_storage 1"
    assert runner.invoke(args=["launches", "stats", "--days", "1"]).output == result.output
    sign_in(client)
    page = client.get("/staff/launches").get_data(as_text=True)
    assert 'data-path="cookie">1<' in page and 'data-path="platform_storage">1<' in page
