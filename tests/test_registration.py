"""Dynamic registration against a fake platform (generic, Canvas and Brightspace variants), the pending
state until approval, and the pages for registering by hand."""

from __future__ import annotations

import json
import re

import pytest
import responses
from sqlalchemy import func, select

from lti_tool.db import new_session
from lti_tool.models import AuditEntry, Deployment, Registration

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
    assert request.headers["Authorization"] == "Bearer reg-token"
    assert request.headers["Content-Type"] == "application/json"
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


# -- the configuration URL must be at its issuer; the platform's URLs must be safe ------------------------------

CANVAS = "https://canvas.instructure.com"
CANVAS_PATH = "/api/lti/security/openid-configuration"


def canvas_config(issuer=CANVAS, **extra):
    """Canvas cloud: the issuer is canvas.instructure.com, the endpoints are on sso.canvaslms.com."""
    return platform_config(issuer, **{"authorization_endpoint": "https://sso.canvaslms.com/api/lti/authorize_redirect",
                                      "token_endpoint": "https://sso.canvaslms.com/login/oauth2/token",
                                      "jwks_uri": "https://sso.canvaslms.com/api/lti/security/jwks", **extra})


def open_registration(client, url, token="reg-token", **kwargs):
    return client.get("/lti/register", query_string={"openid_configuration": url, "registration_token": token},
                      headers={"Accept-Language": "en"}, **kwargs)


def assert_nothing_registered(app):
    with new_session(app) as session:
        assert session.scalars(select(Registration)).all() == []


@pytest.mark.parametrize("url, issuer", [
    ("https://canvas.instructure.com.attacker.example" + CANVAS_PATH, CANVAS),  # look-alike host
    ("https://canvas.instructure.com:8443" + CANVAS_PATH, CANVAS),  # another port
    ("http://canvas.instructure.com" + CANVAS_PATH, CANVAS),  # another scheme (http allowed outside production)
    ("https://lms.example/moodle-other/openid-configuration", "https://lms.example/moodle"),  # not below its path
])
def test_configuration_url_not_at_its_issuer_is_refused(app, client, url, issuer):
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        mock.get(url, json=canvas_config(issuer))
        page = open_registration(client, url)
    body = page.get_data(as_text=True)
    assert page.status_code == 400 and error_code(page) == "registration_issuer_mismatch"
    assert "The tool could not be registered" in body and "For safety the tool was not registered" in body
    assert_nothing_registered(app)


@pytest.mark.parametrize("url", [
    "https://canvas.instructure.com@attacker.example" + CANVAS_PATH,
    "https://canvas.instructure.com:pw@attacker.example" + CANVAS_PATH,
    "https://canvas.instructure.com\\@attacker.example" + CANVAS_PATH,
])
def test_configuration_url_with_a_user_name_is_never_fetched(app, client, url):
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.get(url, json=canvas_config())
        page = open_registration(client, url)
        assert len(mock.calls) == 0
    assert page.status_code == 400 and error_code(page) == "registration_url_unsafe"
    assert_nothing_registered(app)


@pytest.mark.parametrize("url, issuer", [
    ("https://canvas.instructure.com:443" + CANVAS_PATH, CANVAS),  # the default port, written out
    ("https://Canvas.Instructure.com" + CANVAS_PATH, CANVAS + "/"),  # host names are case-insensitive
    ("https://lms.example/moodle/openid-configuration", "https://lms.example/moodle"),
])
def test_configuration_at_its_issuer_with_endpoints_elsewhere_is_accepted(app, client, url, issuer):
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        mock.get(url, json=canvas_config(issuer))
        page = open_registration(client, url)
    assert page.status_code == 200 and main_attrs(page)["registration"] == "confirm"


@pytest.mark.parametrize("endpoint", ["authorization_endpoint", "token_endpoint", "jwks_uri", "registration_endpoint"])
def test_platform_endpoint_with_a_user_name_is_refused(app, client, endpoint):
    url = CANVAS + CANVAS_PATH
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        mock.get(url, json=canvas_config(**{endpoint: "https://sso.canvaslms.com@attacker.example/x"}))
        page = open_registration(client, url)
    assert page.status_code == 400 and error_code(page) == "registration_url_unsafe"
    assert_nothing_registered(app)


def test_production_refuses_plain_http_platform_urls(app_factory, config):
    production = app_factory({**config, "ENV": "production", "SANDBOX": False,
                              "BASE_URL": "https://tool.example"}).test_client()
    url = CANVAS + CANVAS_PATH
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        page = open_registration(production, "http://canvas.instructure.com" + CANVAS_PATH,
                                 base_url="https://tool.example")
        assert error_code(page) == "registration_url_unsafe" and len(mock.calls) == 0
        mock.get(url, json=canvas_config(jwks_uri="http://sso.canvaslms.com/api/lti/security/jwks"))
        page = open_registration(production, url, base_url="https://tool.example")
    assert page.status_code == 400 and error_code(page) == "registration_url_unsafe"


def test_register_is_rate_limited_per_address_and_per_platform(app_factory, config):
    url = CANVAS + CANVAS_PATH
    per_address = app_factory({**config, "RATE_LIMIT_PER_ADDRESS": 2, "RATE_LIMIT_PER_REGISTRATION": 0,
                              "RATE_LIMIT_WINDOW_SECONDS": 86400}).test_client()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.get(url, json=canvas_config())
        statuses = [open_registration(per_address, url).status_code for _ in range(3)]
        assert statuses == [200, 200, 429] and len(mock.calls) == 2  # the refused request fetched nothing
        refused = open_registration(per_address, url)
        assert error_code(refused) == "rate_limited" and int(refused.headers["Retry-After"]) >= 1
        assert per_address.post("/lti/register", data={"carried": "x"}).status_code != 429  # counted apart
    per_platform = app_factory({**config, "RATE_LIMIT_PER_ADDRESS": 0, "RATE_LIMIT_PER_REGISTRATION": 1,
                              "RATE_LIMIT_WINDOW_SECONDS": 86400}).test_client()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.get(url, json=canvas_config())
        first = open_registration(per_platform, url, environ_base={"REMOTE_ADDR": "203.0.113.1"})
        second = open_registration(per_platform, url, environ_base={"REMOTE_ADDR": "203.0.113.2"})
        other = open_registration(per_platform, "https://lms.example/x", environ_base={"REMOTE_ADDR": "203.0.113.3"})
    assert (first.status_code, second.status_code) == (200, 429) and error_code(other) != "rate_limited"


# -- a re-registration never changes an active registration -------------------------------------------------------

HOSTILE = "https://attacker.example"


@pytest.fixture
def platform_at_lms(launches_factory, config):
    """The sandbox platform served at https://lms.example (issuer https://lms.example/sandbox), registered and
    active, launching through the real endpoints."""
    return launches_factory({**config, "SANDBOX_BASE_URL": "https://lms.example"})


def reregister(actions, mock, client_id=None, deployment_id="evil-deployment"):
    """A platform configuration under the issuer's URL (the issuer check passes) whose endpoints and keys are
    someone else's, answering with the client id of the active registration."""
    from lti_tool.sandbox import CLIENT_ID

    issuer = actions.platform.issuer
    url = issuer + "/.well-known/openid-configuration"
    config = {"issuer": issuer, "authorization_endpoint": HOSTILE + "/auth", "token_endpoint": HOSTILE + "/token",
              "jwks_uri": HOSTILE + "/jwks", "registration_endpoint": HOSTILE + "/register",
              "https://purl.imsglobal.org/spec/lti-platform-configuration": {"product_family_code": "canvas"}}
    mock.get(url, json=config)
    mock.post(HOSTILE + "/register", status=201, json={
        "client_id": client_id or CLIENT_ID,
        "https://purl.imsglobal.org/spec/lti-tool-configuration": {"deployment_id": deployment_id}})
    page = open_registration(actions.client, url, token=None)
    assert page.status_code == 200, page.get_data(as_text=True)
    carried = re.search(r'name="carried" value="([^"]+)"', page.get_data(as_text=True)).group(1)
    done = actions.client.post("/lti/register", data={"carried": carried})
    assert done.status_code == 200 and main_attrs(done)["registration"] == "pending"
    with new_session(actions.client.application) as session:
        return session.scalar(select(func.max(Registration.id)))


def registration_values(app, registration_id):
    with new_session(app) as session:
        r = session.get(Registration, registration_id)
        return {"status": r.status, "auth_login_url": r.auth_login_url, "auth_token_url": r.auth_token_url,
                "jwks_url": r.jwks_url, "token_audience": r.token_audience, "product": r.product,
                "deployments": sorted((d.deployment_id, d.status) for d in r.deployments)}


def active_id(app, platform):
    with new_session(app) as session:
        return session.scalar(select(Registration.id).where(Registration.issuer == platform.issuer,
                                                            Registration.status == "active"))


def test_reregistration_is_a_new_pending_registration_and_launches_go_on(platform_at_lms, platform_http):
    from lti_tool.sandbox import CLIENT_ID

    actions = platform_at_lms
    app = actions.client.application
    old = active_id(app, actions.platform)
    before = registration_values(app, old)
    new = reregister(actions, platform_http)
    lookalike = reregister(actions, platform_http, client_id="another-client")
    assert registration_values(app, old) == before  # URLs, status and deployments untouched
    assert new != old and registration_values(app, new) == {
        "status": "pending", "auth_login_url": HOSTILE + "/auth", "auth_token_url": HOSTILE + "/token",
        "jwks_url": HOSTILE + "/jwks", "token_audience": None, "product": "canvas",
        "deployments": [("evil-deployment", "pending")]}
    with new_session(app) as session:
        assert session.get(Registration, lookalike).status == "pending"
    # Launches from the platform go on, by its active registration; pending ones route nothing, so a login
    # without client_id is not ambiguous.
    assert actions.launch_through_platform().status_code == 303
    spec = actions.spec()
    auth = actions.login(spec, client_id=None)
    assert auth["client_id"] == CLIENT_ID and "/attacker.example" not in json.dumps(auth)
    assert actions.launch(spec, auth=auth).status_code == 303
    assert actions.launch_through_platform(actions.spec(deployment_id="evil-deployment")).status_code == 403


def test_pending_registration_never_routes_nor_launches(app, client, demo, platform, launches):
    from lti_tool.sandbox import CLIENT_ID

    with new_session(app) as session:  # a look-alike pending registration of the same issuer
        session.add(Registration(name="look-alike", issuer=platform.issuer, client_id="look-alike", status="pending",
                                 auth_login_url=HOSTILE + "/auth", auth_token_url=HOSTILE + "/token",
                                 jwks_url=HOSTILE + "/jwks"))
        session.commit()
    spec = launches.spec()
    auth = launches.login(spec, client_id=None)
    assert auth["client_id"] == CLIENT_ID
    with new_session(app) as session:  # the registration is no longer active between login and launch
        session.get(Registration, demo).status = "pending"
        session.commit()
    refused = launches.launch(spec, auth=auth)
    assert refused.status_code == 403 and error_code(refused) == "registration_pending"
    with new_session(app) as session:
        session.get(Registration, demo).status = "active"
        session.add(Registration(name="second", issuer=platform.issuer, client_id="second", auth_login_url="x",
                                 auth_token_url="y", jwks_url="z"))
        session.commit()
    query = {k: v for k, v in platform.login_initiation(spec).items() if k != "client_id"}
    assert error_code(client.get("/lti/login", query_string=query)) == "registration_ambiguous"  # two active ones


def test_only_one_active_registration_per_issuer_and_client_id(app):
    from sqlalchemy.exc import IntegrityError

    values = {"issuer": ISSUER, "client_id": "c1", "auth_login_url": "a", "auth_token_url": "t", "jwks_url": "j"}
    with new_session(app) as session:
        session.add_all([Registration(name="one", **values), Registration(name="two", status="pending", **values),
                         Registration(name="three", status="pending", **values)])
        session.commit()
        session.add(Registration(name="four", **values))
        with pytest.raises(IntegrityError):
            session.commit()


def test_staff_compare_side_by_side_and_approve_only_as_explicit_replacement(platform_at_lms, platform_http):
    from .test_staff import sign_in

    actions = platform_at_lms
    app, client = actions.client.application, actions.client
    old = active_id(app, actions.platform)
    before = registration_values(app, old)
    new = reregister(actions, platform_http)
    token = sign_in(client)
    page = client.get("/staff/registrations", headers={"Accept-Language": "en"}).get_data(as_text=True)
    section = re.search(rf'<section[^>]*data-registration="{new}"[^>]*>(.*?)</section>', page, re.S)
    assert f'data-status="pending" data-replaces="{old}"' in section.group(0)
    rows = dict(re.findall(r'<tr data-field="([a-z_]+)" data-differs="(true|false)"', section.group(1)))
    assert rows == {"auth_login_url": "true", "auth_token_url": "true", "jwks_url": "true", "token_audience": "false",
                    "product": "true", "deployments": "true"}
    assert HOSTILE + "/jwks" in section.group(1) and actions.platform.jwks_url in section.group(1)
    assert f"Approve as replacement of registration {old}" in section.group(1)
    assert "<mark>+ evil-deployment</mark>" in section.group(1)  # the active deployments stay; this one is added

    # Approving as a separate registration, or as the replacement of another one, is refused.
    assert client.post(f"/staff/registrations/{new}/approve", data={"csrf": token}).status_code == 409
    assert client.post(f"/staff/registrations/{new}/approve", data={"csrf": token, "replaces": new}).status_code == 409
    assert registration_values(app, old) == before
    assert client.post(f"/staff/registrations/{new}/approve", data={"replaces": old}).status_code == 400  # no CSRF
    assert registration_values(app, old) == before

    replaced = client.post(f"/staff/registrations/{new}/approve", data={"csrf": token, "replaces": old})
    assert replaced.status_code == 302
    after = registration_values(app, old)
    assert after["status"] == "active" and after["jwks_url"] == HOSTILE + "/jwks"
    assert after["deployments"] == sorted(before["deployments"] + [("evil-deployment", "pending")])
    with new_session(app) as session:
        assert session.get(Registration, new) is None
        entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "registration.replace")).one()
    assert entry.actor == "Nora Nationell (local)" and entry.target == f"registration {old}"
    assert entry.details["replaced_by"] == new and entry.details["before"]["jwks_url"] == actions.platform.jwks_url
    assert entry.details["after"]["jwks_url"] == HOSTILE + "/jwks"
    assert entry.details["deployments_moved"] == ["evil-deployment"]


def test_staff_reject_deletes_only_the_pending_registration(platform_at_lms, platform_http):
    from .test_staff import sign_in

    actions = platform_at_lms
    app, client = actions.client.application, actions.client
    old = active_id(app, actions.platform)
    before = registration_values(app, old)
    new = reregister(actions, platform_http)
    token = sign_in(client)
    assert client.post(f"/staff/registrations/{old}/reject", data={"csrf": token}).status_code == 409  # active
    assert client.post(f"/staff/registrations/{new}/reject", data={"csrf": token}).status_code == 302
    assert registration_values(app, old) == before
    with new_session(app) as session:
        assert session.get(Registration, new) is None
        entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "registration.reject")).one()
    assert entry.details["values"]["jwks_url"] == HOSTILE + "/jwks" and entry.details["replaces"] == old


def test_cli_approves_through_the_same_rules(platform_at_lms, platform_http):
    actions = platform_at_lms
    app = actions.client.application
    runner = app.test_cli_runner()
    old = active_id(app, actions.platform)
    before = registration_values(app, old)
    new = reregister(actions, platform_http, deployment_id="sandbox-SE-1490")  # a deployment the active one has
    shown = runner.invoke(args=["platforms", "show", str(new)])
    assert f"re-registration of active registration {old}" in shown.output
    assert f" * jwks_url: {actions.platform.jwks_url} -> {HOSTILE}/jwks" in shown.output
    refused = runner.invoke(args=["platforms", "approve", str(new)])
    assert refused.exit_code != 0 and f"replacement of registration {old}" in refused.output
    assert registration_values(app, old)["jwks_url"] == actions.platform.jwks_url
    done = runner.invoke(args=["platforms", "approve", str(new), "--replaces", str(old), "--by", "Ola"])
    assert done.exit_code == 0, done.output
    after = registration_values(app, old)
    assert after["jwks_url"] == HOSTILE + "/jwks" and after["deployments"] == before["deployments"]  # still bound
    other = reregister(actions, platform_http)
    assert runner.invoke(args=["platforms", "reject", str(other), "--by", "Ola"]).exit_code == 0
    with new_session(app) as session:
        entries = session.scalars(select(AuditEntry).order_by(AuditEntry.id)).all()
        assert [(e.actor, e.action) for e in entries] == [("cli Ola", "registration.replace"),
                                                          ("cli Ola", "registration.reject")]
        assert entries[0].details["deployments_dropped"] == ["sandbox-SE-1490"]
        assert session.get(Registration, other) is None
