"""End-to-end login -> launch through the sandbox platform emulator: success and every refusal."""

from __future__ import annotations

import time

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import func, select

from lti_tool.db import new_session
from lti_tool.domain.claims import (CLAIM_CUSTOM, CLAIM_DEPLOYMENT_ID, CLAIM_MESSAGE_TYPE, CLAIM_RESOURCE_LINK,
                                    CLAIM_TARGET_LINK_URI, CLAIM_VERSION)
from lti_tool.models import Deployment, Launch, LoginState
from lti_tool.sandbox import CLIENT_ID, SHARED_DEPLOYMENT

from .conftest import error_code, main_attrs


def count(app, model, *where) -> int:
    with new_session(app) as session:
        return session.scalar(select(func.count()).select_from(model).where(*where))


def follow(client, response):
    assert response.status_code == 303, response.get_data(as_text=True)
    return client.get(response.headers["Location"])


def other_pem() -> bytes:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


# -- success --------------------------------------------------------------------------------------

def test_pupil_launch_through_the_platform_lands_in_their_municipality(app, client, launches):
    from lti_tool.services.seats import set_order

    from .catalog_factory import add_course

    with new_session(app) as session:
        add_course(session)
        set_order(session, "SE-1490", "GIT-AK-1", "now", 3)
        session.commit()
    response = launches.launch_through_platform(launches.spec("SE-1490", course="GIT-AK-1"))
    page = follow(client, response)
    assert page.status_code == 200
    assert main_attrs(page) == {"municipality": "SE-1490", "role": "learner", "seat": "now"}
    body = page.get_data(as_text=True)
    assert "Borås" in body and 'lang="sv"' in body
    with new_session(app) as session:
        launch = session.scalars(select(Launch)).one()
        assert (launch.municipality_id, launch.resolution_method, launch.sub) == ("SE-1490", "deployment", "pupil-1")
        assert launch.custom == {"course": "GIT-AK-1"}


@pytest.mark.parametrize("role", ["instructor", "administrator"])
def test_staff_roles_are_carried_to_the_page(client, launches, role):
    page = follow(client, launches.launch(launches.spec("NO-0301", role=role, locale="nb-NO")))
    attrs = main_attrs(page)
    assert (attrs["municipality"], attrs["role"]) == ("NO-0301", role)
    assert attrs.get("console") == ("municipal" if role == "administrator" else None)
    assert 'lang="nb"' in page.get_data(as_text=True)


def test_pages_after_the_launch_need_no_cookie(app, launches):
    response = launches.launch()
    fresh = app.test_client()  # no cookie jar shared with the launch
    page = fresh.get(response.headers["Location"])
    assert page.status_code == 200 and main_attrs(page)["municipality"] == "SE-1490"


def test_tampered_or_missing_launch_token_is_refused(client, launches):
    location = launches.launch().headers["Location"]
    assert error_code(client.get(location[:-3] + "abc")) == "launch_expired"
    response = client.get("/home")
    assert response.status_code == 401 and error_code(response) == "launch_expired"


def test_shared_deployment_resolves_the_signed_custom_parameter(app, client, launches):
    spec = launches.spec(deployment_id=SHARED_DEPLOYMENT, municipality_code="SE-1440")
    page = follow(client, launches.launch(spec))
    assert main_attrs(page)["municipality"] == "SE-1440"
    with new_session(app) as session:
        assert session.scalars(select(Launch.resolution_method)).one() == "custom_parameter"


def test_several_audiences_with_matching_azp_are_accepted(client, launches):
    response = launches.launch(overrides={"aud": [CLIENT_ID, "another"], "azp": CLIENT_ID})
    assert response.status_code == 303


def test_iat_and_exp_within_the_leeway_are_accepted(client, launches):
    now = int(time.time())
    assert launches.launch(overrides={"iat": now + 30, "exp": now - 30}).status_code == 303


def test_state_cookie_is_secure_partitioned_on_https(config, app_factory):
    from lti_tool.cli import prepare_demo
    from lti_tool.sandbox import LaunchSpec
    from lti_tool.sandbox import get_platform

    app = app_factory({**config, "BASE_URL": "https://tool.example"})
    prepare_demo(app, catalog=False)
    query = get_platform(app).login_initiation(LaunchSpec(deployment_id="sandbox-SE-1490"))
    response = app.test_client().get("/lti/login", query_string=query, base_url="https://tool.example")
    cookie = response.headers["Set-Cookie"]
    assert "Secure" in cookie and "SameSite=None" in cookie and "Partitioned" in cookie and "HttpOnly" in cookie


# -- refusals ---------------------------------------------------------------------------------------

def refused(app, response, code, status=None):
    assert error_code(response) == code, response.get_data(as_text=True)[:2000]
    assert 400 <= response.status_code < 500
    if status:
        assert response.status_code == status
    assert count(app, Launch) == 0, "a refused launch must not be recorded"


def test_bad_signature(app, launches):
    refused(app, launches.launch(signing_pem=other_pem()), "signature_invalid")


def test_alg_other_than_rs256(app, launches):
    refused(app, launches.launch(headers={"alg": "RS512"}), "signature_invalid")


def test_unknown_kid_is_refetched_once_then_refused(app, launches, platform_http, platform):
    assert launches.launch().status_code == 303  # the key set is cached now
    before = len([c for c in platform_http.calls if c.request.url == platform.jwks_url])
    assert before == 1
    response = launches.launch(headers={"kid": "not-a-key-we-publish"})
    assert error_code(response) == "key_unknown" and response.status_code == 400
    after = len([c for c in platform_http.calls if c.request.url == platform.jwks_url])
    assert after - before == 1  # exactly one refetch for the unknown kid, then refused


def test_rotated_platform_key_is_found_by_refetching(app, client, launches, platform_http, platform):
    assert launches.launch().status_code == 303  # key set cached now
    new_key, _removed = platform.keys.rotate()
    calls = len(platform_http.calls)
    assert launches.launch().status_code == 303
    assert len(platform_http.calls) == calls + 1


def test_wrong_issuer(app, launches):
    refused(app, launches.launch(overrides={"iss": "https://evil.example"}), "issuer_invalid")


def test_wrong_audience(app, launches):
    refused(app, launches.launch(overrides={"aud": "someone-else"}), "audience_invalid")


def test_several_audiences_without_azp(app, launches):
    refused(app, launches.launch(overrides={"aud": [CLIENT_ID, "another"]}), "azp_invalid")


def test_expired(app, launches):
    now = int(time.time())
    refused(app, launches.launch(overrides={"iat": now - 600, "exp": now - 120}), "token_expired")


def test_iat_in_the_future_beyond_leeway(app, launches):
    now = int(time.time())
    refused(app, launches.launch(overrides={"iat": now + 600, "exp": now + 900}), "token_not_yet_valid")


def test_nbf_in_the_future_beyond_leeway(app, launches):
    now = int(time.time())
    refused(app, launches.launch(overrides={"nbf": now + 600}), "token_not_yet_valid")
    refused(app, launches.launch(overrides={"nbf": "soon"}), "token_not_yet_valid")


def test_nbf_in_the_past_or_within_the_leeway_is_accepted(app, launches):
    now = int(time.time())
    assert launches.launch(overrides={"nbf": now - 30}).status_code == 303
    assert launches.launch(overrides={"nbf": now + 30}).status_code == 303


def seats_taken(app) -> int:
    from lti_tool.models import Seat

    return count(app, Seat)


def with_header(platform, token: str, header: dict) -> str:
    """The same claims signed again by the platform's key under exactly ``header`` (added to ``alg`` and
    ``kid``), the payload base64url-encoded as usual whatever the header says."""
    import base64
    import json

    from jwt.algorithms import RSAAlgorithm

    def b64(raw: bytes) -> bytes:
        return base64.urlsafe_b64encode(raw).rstrip(b"=")

    key = platform.keys.ensure()
    fields = {"alg": "RS256", "kid": key.kid, "typ": "JWT", **header}
    signing_input = b64(json.dumps(fields).encode()) + b"." + token.split(".")[1].encode()
    algorithm = RSAAlgorithm(RSAAlgorithm.SHA256)
    signature = algorithm.sign(signing_input, algorithm.prepare_key(key.private_pem))
    return (signing_input + b"." + b64(signature)).decode()


@pytest.mark.parametrize("header", [
    {"crit": ["exp"]},                              # a claim name is no JWS extension
    {"crit": ["https://example.com/ext"], "https://example.com/ext": 1},  # an extension we do not understand
    {"crit": []},                                   # empty: forbidden by RFC 7515
    {"crit": "b64"},                                # not a list
    {"crit": [1]},                                  # not strings
    {"crit": ["b64"], "b64": False},                # RFC 7797 unencoded payload
    {"b64": False},                                 # the same without crit
])
def test_crit_and_unencoded_payload_headers_are_refused(app, client, launches, header):
    from lti_tool.services.seats import set_order

    from .catalog_factory import add_course

    with new_session(app) as session:
        add_course(session)
        set_order(session, "SE-1490", "GIT-AK-1", "now", 3)
        session.commit()
    spec = launches.spec("SE-1490", course="GIT-AK-1")
    auth = launches.login(spec)
    token = launches.platform.build_id_token(spec, auth["nonce"])
    response = client.post("/lti/launch", data={"id_token": with_header(launches.platform, token, header),
                                                 "state": auth["state"]})
    refused(app, response, "token_malformed", status=400)
    assert seats_taken(app) == 0
    # the refusal shows inside the login's platform only (its registration was known before the header check)
    assert response.headers["Content-Security-Policy"].endswith("frame-ancestors 'self' http://localhost")
    # the same token signed under a plain header is accepted and takes the seat
    response = client.post("/lti/launch", data={"id_token": with_header(launches.platform, token, {}),
                                                 "state": auth["state"]})
    assert response.status_code == 303, response.get_data(as_text=True)
    assert seats_taken(app) == 1


def test_id_token_is_parsed_once_per_request_and_never_kept(app, client, launches, monkeypatch):
    from lti_tool.lti import launch as lti_launch

    assert not hasattr(lti_launch.parse_token, "cache_info"), "no cache may keep pupils' id_tokens between requests"
    parsed = []
    real = lti_launch.parse_token

    def spy(id_token):
        parsed.append(real(id_token))
        return parsed[-1]

    monkeypatch.setattr(lti_launch, "parse_token", spy)
    spec = launches.spec()
    auth = launches.login(spec)
    form = {"id_token": launches.platform.build_id_token(spec, auth["nonce"]), "state": auth["state"]}
    assert client.post("/lti/launch", data=form).status_code == 303
    assert len(parsed) == 1  # rate limit, error page language and the checks share one parse
    assert client.post("/lti/launch", data=form).status_code == 400  # the same token again: refused
    assert len(parsed) == 2
    first, second = parsed
    assert first is not second and first.header is not second.header  # nothing shared between requests
    with pytest.raises(TypeError):
        first.header["alg"] = "none"  # type: ignore[index]
    with pytest.raises(TypeError):
        first.body["sub"] = "someone-else"  # type: ignore[index]


def test_missing_nonce(app, launches):
    refused(app, launches.launch(overrides={"nonce": None}), "nonce_missing")


def test_nonce_not_issued_for_this_login(app, launches):
    refused(app, launches.launch(overrides={"nonce": "made-up"}), "nonce_invalid")


def test_replayed_id_token_is_refused(app, client, launches):
    spec = launches.spec()
    auth = launches.login(spec)
    token = launches.platform.build_id_token(spec, auth["nonce"])
    first = client.post("/lti/launch", data={"id_token": token, "state": auth["state"]})
    assert first.status_code == 303
    client.set_cookie(f"lti_state_{auth['state']}", auth["state"], path="/lti/")
    second = client.post("/lti/launch", data={"id_token": token, "state": auth["state"]})
    assert error_code(second) == "nonce_replayed" and second.status_code == 400
    assert count(app, Launch) == 1


def test_replayed_id_token_with_a_fresh_login_is_refused(app, client, launches):
    spec = launches.spec()
    auth = launches.login(spec)
    token = launches.platform.build_id_token(spec, auth["nonce"])
    assert client.post("/lti/launch", data={"id_token": token, "state": auth["state"]}).status_code == 303
    fresh = launches.login(spec)
    replay = client.post("/lti/launch", data={"id_token": token, "state": fresh["state"]})
    assert error_code(replay) == "nonce_invalid"


def test_replay_on_another_worker_is_refused(app, config, launches, app_factory):
    """Nonces live in the shared store: a second app (another worker) refuses the same id_token."""
    spec = launches.spec()
    auth = launches.login(spec)
    token = launches.platform.build_id_token(spec, auth["nonce"])
    cookie = (f"lti_state_{auth['state']}", auth["state"])
    assert launches.client.post("/lti/launch", data={"id_token": token, "state": auth["state"]}).status_code == 303
    other = app_factory(config).test_client()
    other.set_cookie(*cookie, path="/lti/")
    response = other.post("/lti/launch", data={"id_token": token, "state": auth["state"]})
    assert error_code(response) == "nonce_replayed"


def test_wrong_state(app, launches):
    refused(app, launches.launch(form={"state": "not-the-state"}), "state_invalid")


def test_missing_state(app, launches):
    refused(app, launches.launch(form={"state": None}), "state_missing")


def test_state_from_another_browser(app, launches, client):
    spec = launches.spec()
    auth = launches.login(spec)
    client.delete_cookie(f"lti_state_{auth['state']}", path="/lti/")
    refused(app, launches.launch(spec, auth=auth), "state_invalid")


def test_missing_id_token(app, launches):
    refused(app, launches.launch(form={"id_token": None}), "token_missing")


def test_garbage_id_token(app, launches):
    refused(app, launches.launch(form={"id_token": "abc.def.ghi"}), "token_malformed")


def test_wrong_version(app, launches):
    refused(app, launches.launch(overrides={CLAIM_VERSION: "1.1"}), "version_invalid")


def test_unknown_message_type(app, launches):
    refused(app, launches.launch(overrides={CLAIM_MESSAGE_TYPE: "LtiTeleportRequest"}), "message_type_unknown")


def test_missing_resource_link_id(app, launches):
    refused(app, launches.launch(overrides={CLAIM_RESOURCE_LINK: {"title": "x"}}), "resource_link_missing")


def test_missing_sub(app, launches):
    refused(app, launches.launch(overrides={"sub": None}), "sub_missing")


def test_foreign_target_link_uri(app, launches):
    refused(app, launches.launch(overrides={CLAIM_TARGET_LINK_URI: "https://evil.example/lti"}),
            "target_link_uri_invalid")


def test_unknown_deployment_is_stored_pending_and_refused(app, launches):
    spec = launches.spec(deployment_id="brand-new-install")
    response = launches.launch(spec)
    refused(app, response, "deployment_pending", 403)
    assert "approval" in response.get_data(as_text=True) or "godk" in response.get_data(as_text=True)
    with new_session(app) as session:
        row = session.scalar(select(Deployment).where(Deployment.deployment_id == "brand-new-install"))
        assert row is not None and row.status == "pending"
    refused(app, launches.launch(spec), "deployment_pending", 403)
    assert count(app, Deployment, Deployment.deployment_id == "brand-new-install") == 1


def test_inactive_deployment(app, runner, launches, platform):
    result = runner.invoke(args=["platforms", "deactivate-deployment", "--issuer", platform.issuer,
                                 "--client-id", CLIENT_ID, "--deployment-id", "sandbox-SE-1490"])
    assert result.exit_code == 0, result.output
    refused(app, launches.launch(), "deployment_inactive", 403)


def test_shared_deployment_with_a_municipality_not_allowed(app, launches):
    spec = launches.spec(deployment_id=SHARED_DEPLOYMENT, municipality_code="NO-0301")
    refused(app, launches.launch(spec), "municipality_not_allowed", 403)


def test_shared_deployment_without_the_parameter(app, launches):
    spec = launches.spec(deployment_id=SHARED_DEPLOYMENT)
    refused(app, launches.launch(spec), "municipality_unresolved", 403)


def test_deployment_claim_too_long(app, launches):
    refused(app, launches.launch(overrides={CLAIM_DEPLOYMENT_ID: "x" * 256}), "deployment_id_invalid")


def test_refusals_are_localized(app, launches):
    sv = launches.launch(launches.spec(locale="sv-SE"), signing_pem=other_pem()).get_data(as_text=True)
    nb = launches.launch(launches.spec(locale="nb-NO"), signing_pem=other_pem()).get_data(as_text=True)
    en = launches.launch(launches.spec(locale="en-GB"), signing_pem=other_pem()).get_data(as_text=True)
    assert 'lang="sv"' in sv and 'lang="nb"' in nb and 'lang="en"' in en
    assert len({sv, nb, en}) == 3
    assert "learning platform" in en and "lärplattform" in sv and "læringsplattform" in nb


def test_nothing_but_the_log_for_a_refused_launch(app, launches):
    refused(app, launches.launch(overrides={CLAIM_CUSTOM: {"x": "y"}}, signing_pem=other_pem()),
            "signature_invalid")
    with new_session(app) as session:
        assert session.scalar(select(func.count()).select_from(LoginState).where(LoginState.used_at.is_not(None))) == 0


# -- login --------------------------------------------------------------------------------------------

def test_login_redirects_with_every_oidc_parameter(launches, platform):
    auth = launches.login(launches.spec())
    assert {k: auth[k] for k in ("scope", "response_type", "response_mode", "prompt", "client_id", "redirect_uri")} == {
        "scope": "openid", "response_type": "id_token", "response_mode": "form_post", "prompt": "none",
        "client_id": CLIENT_ID, "redirect_uri": "http://localhost/lti/launch"}
    assert auth["login_hint"] == "pupil-1" and auth["lti_message_hint"] and auth["state"] and auth["nonce"]


def test_login_by_post_and_by_registration_url(client, launches, platform, demo):
    query = platform.login_initiation(launches.spec())
    assert client.post("/lti/login", data=query).status_code == 302
    assert client.get(f"/lti/login/{demo}", query_string=query).status_code == 302
    response = client.get(f"/lti/login/{demo + 99}", query_string=query)
    assert error_code(response) == "registration_unknown"


@pytest.mark.parametrize("missing", ["iss", "login_hint", "target_link_uri"])
def test_login_without_a_required_parameter(client, launches, platform, missing):
    query = platform.login_initiation(launches.spec())
    del query[missing]
    response = client.get("/lti/login", query_string=query)
    assert response.status_code == 400 and error_code(response) == "login_invalid"


def test_login_from_an_unknown_platform(client, launches, platform):
    query = platform.login_initiation(launches.spec())
    query["iss"] = "https://unknown.example"
    assert error_code(client.get("/lti/login", query_string=query)) == "registration_unknown"


def test_login_with_a_foreign_target(client, launches, platform):
    query = platform.login_initiation(launches.spec())
    query["target_link_uri"] = "https://evil.example/"
    assert error_code(client.get("/lti/login", query_string=query)) == "target_link_uri_invalid"


def test_flood_of_unknown_kids_refetches_the_platform_keys_at_most_once_per_interval(app, config, app_factory,
                                                                                       platform_http, platform):
    """The key cache written while refusing a launch is kept (and with it the refetch throttle)."""
    from lti_tool.cli import prepare_demo

    from .conftest import LaunchActions

    throttled = app_factory({**config, "JWKS_REFETCH_MIN_INTERVAL_SECONDS": 60})
    prepare_demo(throttled, catalog=False)
    actions = LaunchActions(throttled.test_client(), platform)
    for _ in range(4):
        assert error_code(actions.launch(headers={"kid": "random"})) == "key_unknown"
    assert len([c for c in platform_http.calls if c.request.url == platform.jwks_url]) == 1
