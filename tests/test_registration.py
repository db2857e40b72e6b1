"""Dynamic registration against a fake platform (generic, Canvas and Brightspace variants), the pending
state until approval, and the pages for registering by hand."""

from __future__ import annotations

import json
import re

import responses
from sqlalchemy import select

from lti_tool.db import new_session
from lti_tool.models import Deployment, Registration

from .conftest import error_code, main_attrs

ISSUER = "https://lms.example"
CONFIG_URL = ISSUER + "/api/lti/security/openid-configuration"
REG_ENDPOINT = ISSUER + "/api/lti/registrations"


def platform_config(issuer=ISSUER, **extra):
    config = {"issuer": issuer, "authorization_endpoint": issuer + "/auth", "token_endpoint": issuer + "/token",
              "jwks_uri": issuer + "/jwks", "registration_endpoint": REG_ENDPOINT,
              "scopes_supported": ["openid", "https://purl.imsglobal.org/spec/lti-ags/scope/score",
                                   "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem",
                                   "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"],
              "https://purl.imsglobal.org/spec/lti-platform-configuration": {"product_family_code": "canvas"}}
    config.update(extra)
    return config


def register(client, token="reg-token"):
    query = {"openid_configuration": CONFIG_URL}
    if token:
        query["registration_token"] = token
    page = client.get("/lti/register", query_string=query)
    if page.status_code != 200:
        return page, None
    carried = re.search(r'name="carried" value="([^"]+)"', page.get_data(as_text=True)).group(1)
    return page, client.post("/lti/register", data={"carried": carried})


def test_dynamic_registration_end_to_end(app, client):
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        mock.get(CONFIG_URL, json=platform_config())
        mock.get(CONFIG_URL, json=platform_config())
        mock.post(REG_ENDPOINT, status=201, json={
            "client_id": "10000000000042",
            "https://purl.imsglobal.org/spec/lti-tool-configuration": {"deployment_id": "7:abc"}})
        page, done = register(client)
        assert main_attrs(page)["registration"] == "confirm"
        assert mock.calls[0].request.headers["Authorization"] == "Bearer reg-token"
        request = mock.calls[2].request
        body = json.loads(request.body)
    assert request.headers["Authorization"] == "Bearer reg-token" and request.headers["Content-Type"] == "application/json"
    assert body["initiate_login_uri"] == "http://localhost/lti/login"
    assert body["redirect_uris"] == ["http://localhost/lti/launch"] and body["jwks_uri"] == "http://localhost/lti/jwks"
    assert body["token_endpoint_auth_method"] == "private_key_jwt" and body["response_types"] == ["id_token"]
    assert set(body["grant_types"]) == {"implicit", "client_credentials"} and body["application_type"] == "web"
    assert "lineitem.readonly" not in body["scope"]  # not offered by this platform
    tool = body["https://purl.imsglobal.org/spec/lti-tool-configuration"]
    assert {m["type"] for m in tool["messages"]} == {"LtiResourceLinkRequest", "LtiDeepLinkingRequest",
                                                     "LtiDataPrivacyLaunchRequest"}
    assert tool["domain"] == "localhost" and "email" not in tool["claims"] and "name" not in tool["claims"]
    assert done.status_code == 200 and main_attrs(done)["registration"] == "pending"
    assert "org.imsglobal.lti.close" in done.get_data(as_text=True)
    with new_session(app) as session:
        registration = session.scalars(select(Registration)).one()
        assert (registration.issuer, registration.client_id, registration.status, registration.product) == (
            ISSUER, "10000000000042", "pending", "canvas")
        assert registration.auth_login_url == ISSUER + "/auth" and registration.jwks_url == ISSUER + "/jwks"
        deployment = session.scalars(select(Deployment)).one()
        assert (deployment.deployment_id, deployment.status) == ("7:abc", "pending")


def test_issuer_not_matching_the_configuration_url_is_refused(app, client):
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        mock.get(CONFIG_URL, json=platform_config(issuer="https://evil.example"))
        page, _done = register(client)
    assert page.status_code == 400 and error_code(page) == "registration_issuer_mismatch"
    with new_session(app) as session:
        assert session.scalars(select(Registration)).all() == []


def test_canvas_422_errors_are_shown(app, client):
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        mock.get(CONFIG_URL, json=platform_config())
        mock.get(CONFIG_URL, json=platform_config())
        mock.post(REG_ENDPOINT, status=422, json={"errors": [{"field": "redirect_uris", "message": "must be https"}]})
        _page, done = register(client)
    assert done.status_code == 400 and error_code(done) == "registration_refused"
    with new_session(app) as session:
        assert session.scalars(select(Registration)).all() == []


def test_brightspace_without_a_registration_token(app, client):
    config = platform_config(authorization_server="https://api.brightspace.com/auth/token")
    config["https://purl.imsglobal.org/spec/lti-platform-configuration"] = {"product_family_code": "desire2learn"}
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        mock.get(CONFIG_URL, json=config)
        mock.get(CONFIG_URL, json=config)
        mock.post(REG_ENDPOINT, json={"client_id": "b-123"})
        _page, done = register(client, token=None)
        assert all("Authorization" not in c.request.headers for c in mock.calls)
    assert main_attrs(done)["registration"] == "pending"
    with new_session(app) as session:
        registration = session.scalars(select(Registration)).one()
        assert registration.token_audience == "https://api.brightspace.com/auth/token"


def test_configuration_unavailable(app, client):
    with responses.RequestsMock() as mock:
        mock.get(CONFIG_URL, status=500)
        page, _ = register(client)
    assert error_code(page) == "registration_config_unavailable"
    assert error_code(client.get("/lti/register")) == "registration_invalid"


def test_pending_registration_cannot_launch_until_approved(app, client, runner, demo, platform):
    from lti_tool.sandbox import LaunchSpec

    with new_session(app) as session:
        session.get(Registration, demo).status = "pending"
        session.commit()
    query = platform.login_initiation(LaunchSpec(deployment_id="sandbox-SE-1490"))
    response = client.get("/lti/login", query_string=query)
    assert response.status_code == 403 and error_code(response) == "registration_pending"
    assert "approved" in runner.invoke(args=["platforms", "approve", str(demo)]).output
    assert client.get("/lti/login", query_string=query).status_code == 302


def test_manual_configuration_and_canvas_json(client):
    page = client.get("/lti/config", headers={"Accept-Language": "en"})
    body = page.get_data(as_text=True)
    assert page.status_code == 200 and "http://localhost/lti/login" in body and "http://localhost/lti/jwks" in body
    canvas = client.get("/lti/config/canvas.json").get_json()
    assert canvas["oidc_initiation_url"] == "http://localhost/lti/login"
    assert canvas["target_link_uri"] == "http://localhost/lti/launch"
    assert canvas["public_jwk_url"] == "http://localhost/lti/jwks"
    assert canvas["extensions"][0]["privacy_level"] == "anonymous"
    assert "https://purl.imsglobal.org/spec/lti-ags/scope/score" in canvas["scopes"]
