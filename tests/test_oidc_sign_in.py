"""The Feide-style OpenID Connect sign-in (identity/oidc.py, identity/feide.py) driven against the sandbox
OpenID Connect provider (sandbox/idp_oidc.py) with real signed ID tokens: every outbound request the tool makes
(discovery, key set, token, userinfo, Groups API) goes through the outbound guard and ``responses`` hands it to
the app's sandbox provider, as a second test client."""

from __future__ import annotations

import json
import re
import shutil
import time
from dataclasses import asdict
from html import unescape
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
import requests
import responses
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from flask import jsonify, url_for

from lti_tool import outbound
from lti_tool.config import settings
from lti_tool.db import get_session, new_session
from lti_tool.identity import OWNER_COUNTY, OWNER_INDEPENDENT, OWNER_MUNICIPALITY, OWNER_OTHER, SignInError
from lti_tool.identity import feide, oidc
from lti_tool.lti.keys import KeyStore
from lti_tool.sandbox import idp_oidc
from lti_tool.services import identity as providers

from .conftest import BASE_URL

IDP = BASE_URL + idp_oidc.PATH
TEST_REDIRECT_PATH = "/test-oidc/{provider_id}/callback"
_HIDDEN = re.compile(r'<input type="hidden" name="request" value="([^"]*)">')


# -- fixtures -------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def idp_key_template(tmp_path_factory):
    """The sandbox provider's signing key, made once for the module and copied into each test's keys."""
    folder = tmp_path_factory.mktemp("idp-key")
    KeyStore(folder).ensure()
    return folder


@pytest.fixture
def config(config, idp_key_template):
    shutil.copytree(idp_key_template, Path(config["KEYS_DIR"]) / "sandbox-idp")
    return config


def _start_view(provider_id: int):
    session = get_session()
    provider = providers.get_provider(session, provider_id)
    try:
        return oidc.start(provider, url_for("test_oidc_callback", provider_id=provider_id, _external=True),
                          state_data="carried-through")
    except SignInError as error:
        return jsonify({"code": error.code}), error.status


def _callback_view(provider_id: int):
    session = get_session()
    provider = providers.get_provider(session, provider_id)
    try:
        identity = oidc.finish(session, provider)
    except SignInError as error:
        session.rollback()
        return jsonify({"code": error.code, "detail": str(error)}), error.status
    session.commit()
    return jsonify({"subject": identity.subject, "name": identity.name, "provider_id": identity.provider_id,
                    "registration_id": identity.registration_id, "affiliations": sorted(identity.affiliations),
                    "is_staff": identity.is_staff, "school": asdict(identity.school) if identity.school else None,
                    "state_data": oidc.returned_state_data()})


@pytest.fixture
def sign_in_app(app, demo, monkeypatch):
    """The app with two test-only routes that call ``oidc.start`` and ``oidc.finish`` (the pupil's real routes are
    web/join.py's), the sandbox provider registered with their callback as its redirect URI."""
    monkeypatch.setattr(idp_oidc, "REDIRECT_PATH", TEST_REDIRECT_PATH)
    app.add_url_rule("/test-oidc/<int:provider_id>/start", "test_oidc_start", _start_view)
    app.add_url_rule(TEST_REDIRECT_PATH.replace("{provider_id}", "<int:provider_id>"), "test_oidc_callback",
                     _callback_view)
    with app.app_context():
        session = new_session(app)
        provider = idp_oidc.ensure_sandbox_oidc_provider(session, settings(app).sandbox_base_url)
        session.commit()
        app.config["TEST_PROVIDER_ID"] = provider.id
        session.close()
    return app


class IdPHttp:
    """``responses`` handing the tool's outbound requests to the sandbox provider (another test client of the
    same app). ``down``: paths that cannot be reached; ``discovery_patch``: keys changed in the discovery
    document; ``calls``: the paths asked, in order."""

    def __init__(self, app, mock):
        self.backend = app.test_client()
        self.mock = mock
        self.down: set[str] = set()
        self.discovery_patch: dict = {}
        self.calls: list[str] = []

    def forward(self, prepared):
        parts = urlsplit(prepared.url)
        self.calls.append(parts.path)
        if parts.path in self.down:
            return requests.ConnectionError(f"{parts.path} is down")
        headers = {name: value for name, value in prepared.headers.items()
                   if name.lower() in ("authorization", "content-type", "accept")}
        answer = self.backend.open(parts.path, method=prepared.method, query_string=parts.query,
                                   headers=headers, data=prepared.body)
        body = answer.get_data()
        if parts.path.endswith("/openid-configuration") and self.discovery_patch:
            body = json.dumps({**json.loads(body), **self.discovery_patch}).encode()
        return answer.status_code, {"Content-Type": answer.headers.get("Content-Type", "")}, body


@pytest.fixture
def idp_http(sign_in_app):
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        http = IdPHttp(sign_in_app, mock)
        pattern = re.compile(re.escape(IDP) + r"/.*")
        for method in (responses.GET, responses.POST):
            mock.add_callback(method, pattern, callback=http.forward, content_type=None)
        yield http


class Flow:
    """A pupil's browser: the tool's start, the sandbox provider's page and form, the tool's callback."""

    def __init__(self, client, provider_id: int):
        self.client = client
        self.provider_id = provider_id

    def start(self) -> dict[str, str]:
        """The authorization request the tool sent the browser to."""
        response = self.client.get(f"/test-oidc/{self.provider_id}/start")
        assert response.status_code == 302, response.get_data(as_text=True)
        location = urlsplit(response.headers["Location"])
        assert f"{location.scheme}://{location.netloc}{location.path}" == IDP + "/authorize"
        return {name: values[0] for name, values in parse_qs(location.query).items()}

    def pick(self, auth: dict[str, str], person: str = "oslo-pupil") -> str:
        """The provider's page, then the person picked: where the provider sends the browser back to."""
        page = self.client.get("/sandbox/idp/oidc/authorize", query_string=auth)
        assert page.status_code == 200, page.get_data(as_text=True)
        carried = unescape(_HIDDEN.search(page.get_data(as_text=True)).group(1))
        answer = self.client.post("/sandbox/idp/oidc/authorize", data={"request": carried, "person": person})
        assert answer.status_code == 303, answer.get_data(as_text=True)
        return answer.headers["Location"]

    def callback(self, location: str, client=None):
        parts = urlsplit(location)
        assert parts.path == TEST_REDIRECT_PATH.format(provider_id=self.provider_id)
        return (client or self.client).get(parts.path, query_string=parts.query)

    def sign_in(self, person: str = "oslo-pupil"):
        return self.callback(self.pick(self.start(), person))


@pytest.fixture
def flow(sign_in_app, idp_http):
    return Flow(sign_in_app.test_client(), sign_in_app.config["TEST_PROVIDER_ID"])


def _code(response) -> str:
    return response.get_json()["code"]


def _tamper_id_token(monkeypatch, app, *, overrides=None, signing_pem=None, headers=None, algorithm="RS256"):
    """The sandbox provider's token endpoint answers with an ID token changed after it was made (and signed again,
    by the provider's key unless ``signing_pem``)."""
    idp = idp_oidc.get_idp(app)
    exchange = idp.exchange

    def tampered(form, authorization):
        answer = exchange(form, authorization)
        claims = jwt.decode(answer["id_token"], options={"verify_signature": False})
        for name, value in (overrides or {}).items():
            if value is None:
                claims.pop(name, None)
            else:
                claims[name] = value
        header = {"kid": idp.keys.current().kid, **(headers or {})}
        answer["id_token"] = jwt.encode(claims, signing_pem or idp.keys.current().private_pem, algorithm=algorithm,
                                        headers=header)
        return answer

    monkeypatch.setattr(idp, "exchange", tampered)


def _other_key_pem() -> bytes:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


# -- the whole sign-in ----------------------------------------------------------------------------------------

def test_authorization_request_is_code_with_pkce_nonce_and_feide_scopes(sign_in_app, flow):
    auth = flow.start()
    assert auth["response_type"] == "code"
    assert auth["client_id"] == idp_oidc.CLIENT_ID
    assert auth["code_challenge_method"] == "S256" and len(auth["code_challenge"]) >= 43
    assert auth["nonce"] and auth["state"]
    assert auth["scope"].split() == ["openid", "userid-feide", "userinfo-name", "groups-org"]
    assert auth["redirect_uri"] == BASE_URL + TEST_REDIRECT_PATH.format(provider_id=flow.provider_id)


def test_userid_nin_is_never_asked_for(sign_in_app, flow):
    with sign_in_app.app_context():
        session = new_session(sign_in_app)
        provider = providers.get_provider(session, flow.provider_id)
        provider.scopes = "userid-nin openid userid-feide groups-org"
        session.commit()
        session.close()
    assert "userid-nin" not in flow.start()["scope"].split()


def test_pupil_of_a_municipal_school_signs_in(flow, idp_http):
    response = flow.sign_in("oslo-pupil")
    assert response.status_code == 200, response.get_data(as_text=True)
    person = response.get_json()
    assert person["subject"] == "ola.nordmann@oslo.kommune.no"
    assert person["name"] == "Ola Nordmann"
    assert person["affiliations"] == ["member", "student"] and person["is_staff"] is False
    assert person["state_data"] == "carried-through"
    assert person["provider_id"] == flow.provider_id
    assert person["school"] == {"name": "Fjellstua skole", "code": "910000301", "owner_name": "Oslo kommune",
                                "owner_org_number": "900000301", "owner_kind": OWNER_MUNICIPALITY,
                                "municipality_id": "NO-0301"}
    # Discovery, key set, token and Groups API were asked; userinfo was not needed (the ID token had it all).
    assert [path.rsplit("/", 1)[-1] for path in idp_http.calls] == ["openid-configuration", "token", "jwks",
                                                                     "groups"]


def test_pupil_in_bergen_and_a_teacher(flow):
    bergen = flow.sign_in("bergen-pupil").get_json()
    assert bergen["school"]["municipality_id"] == "NO-4601"
    assert bergen["school"]["owner_name"] == "Bergen kommune"
    teacher = flow.sign_in("oslo-teacher").get_json()
    assert teacher["is_staff"] is True
    assert teacher["affiliations"] == ["employee", "faculty", "member"]


def test_upper_secondary_pupil_has_a_county_owned_school(flow):
    person = flow.sign_in("vestland-pupil").get_json()
    assert person["school"]["owner_kind"] == OWNER_COUNTY
    assert person["school"]["owner_name"] == "Vestland fylkeskommune"
    assert person["school"]["municipality_id"] is None
    assert person["school"]["name"] == "Fjordane vidaregåande skule"


def test_municipality_that_has_not_activated_the_service(flow):
    response = flow.sign_in("tromso-pupil")
    assert response.status_code == 403 and _code(response) == "signin_not_activated"


def test_person_who_says_no_is_refused(flow):
    auth = flow.start()
    response = flow.client.get(urlsplit(auth["redirect_uri"]).path,
                               query_string={"error": "access_denied", "error_description": "The user cancelled",
                                             "state": auth["state"]})
    assert response.status_code == 403 and _code(response) == "signin_refused"


def test_provider_errors_map_to_codes():
    assert oidc.provider_refusal("access_denied", None).code == "signin_refused"
    assert oidc.provider_refusal("access_denied", "Du har ikke tilgang til denne tjenesten").code == \
        "signin_not_activated"
    assert oidc.provider_refusal("access_denied", "service not enabled for this organization").code == \
        "signin_not_activated"
    assert oidc.provider_refusal("unauthorized_client", None).code == "signin_not_activated"
    unavailable = oidc.provider_refusal("temporarily_unavailable", None)
    assert (unavailable.code, unavailable.status) == ("signin_unavailable", 503)
    assert oidc.provider_refusal("invalid_scope", None).code == "signin_refused"


@pytest.mark.parametrize("overrides", [
    pytest.param({"nonce": "another-nonce"}, id="wrong nonce"),
    pytest.param({"nonce": None}, id="no nonce"),
    pytest.param({"iss": "https://auth.dataporten.no"}, id="wrong issuer"),
    pytest.param({"aud": "another-client"}, id="wrong audience"),
    pytest.param({"aud": ["another-client"], "azp": idp_oidc.CLIENT_ID}, id="another audience, our azp"),
    pytest.param({"exp": int(time.time()) - 3600, "iat": int(time.time()) - 4000}, id="expired"),
    pytest.param({"iat": int(time.time()) + 3600}, id="issued in the future"),
    pytest.param({"at_hash": "AAAAAAAAAAAAAAAAAAAAAA"}, id="wrong at_hash"),
])
def test_id_token_failing_a_check_is_refused(sign_in_app, flow, monkeypatch, overrides):
    _tamper_id_token(monkeypatch, sign_in_app, overrides=overrides)
    response = flow.sign_in()
    assert response.status_code == 403 and _code(response) == "signin_invalid"


def test_id_token_signed_by_another_key_is_refused(sign_in_app, flow, monkeypatch):
    _tamper_id_token(monkeypatch, sign_in_app, signing_pem=_other_key_pem())  # the provider's kid, another key
    response = flow.sign_in()
    assert _code(response) == "signin_invalid"


def test_id_token_macd_with_the_client_secret_is_refused(sign_in_app, flow, monkeypatch):
    secret = idp_oidc.get_idp(sign_in_app).client_secret.encode()
    _tamper_id_token(monkeypatch, sign_in_app, signing_pem=secret, algorithm="HS256")
    assert _code(flow.sign_in()) == "signin_invalid"


def test_answer_from_another_browser_is_refused(sign_in_app, flow):
    """Login CSRF: the code and state of a sign-in started in one browser, delivered to another."""
    location = flow.pick(flow.start())
    response = flow.callback(location, client=sign_in_app.test_client())
    assert response.status_code == 403 and _code(response) == "signin_invalid"


def test_callback_is_taken_once(sign_in_app, flow, monkeypatch):
    location = flow.pick(flow.start())
    assert flow.callback(location).status_code == 200
    assert _code(flow.callback(location)) == "signin_invalid"  # the browser's state is gone


def test_replay_with_the_old_session_is_refused(sign_in_app, flow, monkeypatch):
    """Even against a provider that lets a code be exchanged twice, the same answer is taken once."""
    monkeypatch.setattr(idp_oidc.get_idp(sign_in_app), "_take_code", lambda jti: None)
    location = flow.pick(flow.start())
    cookie = flow.client.get_cookie("kulturskola_staff")
    assert flow.callback(location).status_code == 200
    flow.client.set_cookie(cookie.key, cookie.value, domain=cookie.domain, path=cookie.path)
    response = flow.callback(location)
    assert response.status_code == 403 and _code(response) == "signin_replayed"


def test_sign_in_that_took_too_long(sign_in_app, flow):
    location = flow.pick(flow.start())
    sign_in_app.config["SIGN_IN_TTL_SECONDS"] = 0
    time.sleep(0.01)
    assert _code(flow.callback(location)) == "signin_expired"


def test_answer_naming_another_issuer_is_refused(flow):
    location = flow.pick(flow.start()).replace("iss=", "iss=https%3A%2F%2Fevil.example&was=")
    assert _code(flow.callback(location)) == "signin_invalid"


def test_missing_feide_user_id(sign_in_app, flow, idp_http):
    """Without the userid-feide attribute group neither the ID token nor userinfo has the Feide user id."""
    with sign_in_app.app_context():
        session = new_session(sign_in_app)
        providers.get_provider(session, flow.provider_id).scopes = "openid userinfo-name groups-org"
        session.commit()
        session.close()
    response = flow.sign_in()
    assert response.status_code == 403 and _code(response) == "signin_no_attributes"
    assert any(path.endswith("/userinfo") for path in idp_http.calls)


# -- the provider cannot be reached, and the outbound guard -------------------------------------------------

def test_discovery_unreachable_at_start(flow, idp_http):
    idp_http.down.add(idp_oidc.PATH + "/.well-known/openid-configuration")
    response = flow.client.get(f"/test-oidc/{flow.provider_id}/start")
    assert response.status_code == 503 and _code(response) == "signin_unavailable"


@pytest.mark.parametrize("path", ["/token", "/jwks", "/groups/me/groups"])
def test_provider_unreachable_during_the_callback(flow, idp_http, path):
    location = flow.pick(flow.start())
    idp_http.down.add(idp_oidc.PATH + path)
    response = flow.callback(location)
    assert response.status_code == 503 and _code(response) == "signin_unavailable"


def test_key_set_at_a_link_local_address_is_refused_by_the_guard(flow, idp_http, sign_in_app):
    """A discovery document whose jwks_uri is the cloud metadata address: the guard refuses it before anything is
    sent, although that address would even answer with the right keys."""
    metadata_url = "http://169.254.169.254/latest/meta-data/jwks"
    idp_http.mock.add(responses.GET, metadata_url, json=idp_oidc.get_idp(sign_in_app).jwks())
    idp_http.discovery_patch = {"jwks_uri": metadata_url}
    response = flow.sign_in()
    assert response.status_code == 503 and _code(response) == "signin_unavailable"
    assert not any("169.254.169.254" in call.request.url for call in idp_http.mock.calls)


def test_discovery_cannot_set_the_clients_own_settings(flow, idp_http):
    """authlib hands the discovery document's keys to its session: a document cannot turn PKCE off, change the
    scopes or requests' certificate checks."""
    idp_http.discovery_patch = {"code_challenge_method": None, "scope": "openid userid-nin", "verify": False,
                                "proxies": {"http": "http://proxy.example"}}
    auth = flow.start()
    assert auth["code_challenge_method"] == "S256"
    assert "userid-nin" not in auth["scope"]
    response = flow.callback(flow.pick(auth))
    assert response.status_code == 200, response.get_data(as_text=True)


def test_strict_policy_refuses_the_sandbox_on_localhost(sign_in_app, flow, idp_http):
    sign_in_app.config["OUTBOUND_ALLOW_PRIVATE"] = False
    response = flow.client.get(f"/test-oidc/{flow.provider_id}/start")
    assert response.status_code == 503 and _code(response) == "signin_unavailable"
    assert idp_http.calls == []


def test_authlib_clients_use_the_guarded_session(sign_in_app):
    from lti_tool.web.staff import oidc_client

    sign_in_app.config.update(STAFF_OIDC_ISSUER="https://staff-idp.example", STAFF_OIDC_CLIENT_ID="tool")
    with sign_in_app.test_request_context():
        staff = oidc_client()
        assert staff.client_cls is oidc.GuardedOAuth2Session
        session = staff._get_session()  # what authlib uses for discovery and the key set
        assert isinstance(session, outbound.OutboundSession)
        assert all(isinstance(adapter, outbound._GuardedAdapter) for adapter in session.adapters.values())
        session.close()


def test_groups_api_at_a_link_local_address_is_refused(sign_in_app):
    provider = SimpleNamespace(groups_api_url="http://169.254.169.254/groups/me/groups")
    with sign_in_app.app_context(), pytest.raises(outbound.OutboundError) as raised:
        feide.fetch_groups(provider, "token")
    assert raised.value.kind == outbound.REFUSED


# -- the sandbox provider itself ------------------------------------------------------------------------------

def test_sandbox_provider_is_added_once(sign_in_app):
    with sign_in_app.app_context():
        session = new_session(sign_in_app)
        again = idp_oidc.ensure_sandbox_oidc_provider(session, settings(sign_in_app).sandbox_base_url)
        assert again.id == sign_in_app.config["TEST_PROVIDER_ID"]
        assert (again.profile, again.country, again.name) == ("feide", "NO", "Sandbox Feide")
        assert again.registration.issuer == IDP and again.registration.client_id == idp_oidc.CLIENT_ID
        assert again.discovery_url == IDP + "/.well-known/openid-configuration"
        assert again.groups_api_url == IDP + "/groups/me/groups"
        assert again.scopes == providers.FEIDE_SCOPES
        assert again.client_secret == idp_oidc.get_idp(sign_in_app).client_secret
        session.close()


def test_discovery_document_and_key_set(sign_in_app):
    client = sign_in_app.test_client()
    document = client.get("/sandbox/idp/oidc/.well-known/openid-configuration").get_json()
    assert document["issuer"] == IDP
    assert document["code_challenge_methods_supported"] == ["S256"]
    assert document["id_token_signing_alg_values_supported"] == ["RS256"]
    keys = client.get("/sandbox/idp/oidc/jwks").get_json()["keys"]
    assert [key["kty"] for key in keys] == ["RSA"] and keys[0]["kid"]


def test_signing_key_is_made_on_first_use_on_disk(app_factory, config, tmp_path):
    keys = tmp_path / "fresh-keys"
    shutil.copytree(config["KEYS_DIR"], keys)
    shutil.rmtree(keys / "sandbox-idp")
    app = app_factory({**config, "KEYS_DIR": str(keys)})
    kid = app.test_client().get("/sandbox/idp/oidc/jwks").get_json()["keys"][0]["kid"]
    assert (keys / "sandbox-idp" / f"{kid}.pem").read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")


def test_authorize_refuses_an_unregistered_redirect_uri_on_its_own_page(flow):
    auth = flow.start()
    for changed in ({"redirect_uri": "https://evil.example/callback"}, {"client_id": "someone-else"}):
        page = flow.client.get("/sandbox/idp/oidc/authorize", query_string={**auth, **changed})
        assert page.status_code == 400 and "Location" not in page.headers


def test_authorize_sends_other_errors_back_to_the_client(flow):
    auth = flow.start()
    without_pkce = {k: v for k, v in auth.items() if not k.startswith("code_challenge")}
    answer = flow.client.get("/sandbox/idp/oidc/authorize", query_string=without_pkce)
    assert answer.status_code == 303
    back = parse_qs(urlsplit(answer.headers["Location"]).query)
    assert back["error"] == ["invalid_request"] and back["state"] == [auth["state"]]


def _code_and_verifier(flow) -> tuple[str, str, str]:
    auth = flow.start()
    location = flow.pick(auth)
    code = parse_qs(urlsplit(location).query)["code"][0]
    with flow.client.session_transaction() as browser:
        verifier = browser[f"_state_school-{flow.provider_id}_{auth['state']}"]["data"]["code_verifier"]
    return code, verifier, auth["redirect_uri"]


def test_token_endpoint_checks_pkce_client_and_single_use(sign_in_app, flow):
    idp = idp_oidc.get_idp(sign_in_app)
    code, verifier, redirect_uri = _code_and_verifier(flow)
    tool = sign_in_app.test_client()
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri,
            "code_verifier": verifier, "client_id": idp.client_id, "client_secret": idp.client_secret}
    wrong_verifier = tool.post("/sandbox/idp/oidc/token", data={**form, "code_verifier": "x" * 43})
    assert wrong_verifier.status_code == 400 and wrong_verifier.get_json()["error"] == "invalid_grant"
    wrong_secret = tool.post("/sandbox/idp/oidc/token", data={**form, "client_secret": "guess"})
    assert wrong_secret.status_code == 401 and wrong_secret.get_json()["error"] == "invalid_client"
    other_redirect = tool.post("/sandbox/idp/oidc/token", data={**form, "redirect_uri": BASE_URL + "/elsewhere"})
    assert other_redirect.get_json()["error"] == "invalid_grant"
    granted = tool.post("/sandbox/idp/oidc/token", data=form)
    assert granted.status_code == 200 and granted.headers["Cache-Control"] == "no-store"
    answer = granted.get_json()
    claims = jwt.decode(answer["id_token"], jwt.PyJWK(idp.jwks()["keys"][0]).key, algorithms=["RS256"],
                        audience=idp.client_id, issuer=IDP)
    assert claims[oidc.FEIDE_USER_ID] == "ola.nordmann@oslo.kommune.no"
    assert not any("nin" in name.lower() for name in claims)
    assert tool.post("/sandbox/idp/oidc/token", data=form).get_json()["error"] == "invalid_grant"  # used
    groups = tool.get("/sandbox/idp/oidc/groups/me/groups",
                      headers={"Authorization": f"Bearer {answer['access_token']}"}).get_json()
    assert {group["id"] for group in groups} == {"fc:org:oslo.kommune.no",
                                                 "fc:org:oslo.kommune.no:unit:NO910000301"}
    assert tool.get("/sandbox/idp/oidc/groups/me/groups").status_code == 401
    info = tool.get("/sandbox/idp/oidc/userinfo", headers={"Authorization": f"Bearer {answer['access_token']}"})
    assert info.get_json()["sub"] == claims["sub"]


def test_sandbox_provider_is_not_served_without_the_sandbox(app_factory, config):
    app = app_factory({**config, "SANDBOX": False})
    assert app.test_client().get("/sandbox/idp/oidc/.well-known/openid-configuration").status_code == 404


# -- the Groups API's answer ----------------------------------------------------------------------------------

NAMES = {"Oslo": "NO-0301", "Bergen": "NO-4601", "Tromsø": "NO-5501", "Porsanger - Porsáŋgu - Porsanki": "NO-5636",
         "Herøy (Nordland)": "NO-1818", "Herøy (Møre og Romsdal)": "NO-1515"}

# As docs.feide.no shows them ("School owner group", "School group"), with Bergen's values.
BERGEN_OWNER = {
    "id": "fc:org:bergen.kommune.no",
    "type": "fc:org",
    "displayName": "Bergen kommune",
    "membership": {"basic": "member", "displayName": "Elev", "affiliation": ["member", "student"],
                   "primaryAffiliation": "student"},
    "public": False,
    "orgType": ["primary_and_lower_secondary_owner"],
    "eduOrgLegalName": "Bergen kommune",
    "norEduOrgNIN": "NO964338531",
    "mail": "post@bergen.kommune.no",
}
BERGEN_SCHOOL = {
    "id": "fc:org:bergen.kommune.no:unit:NO974600951",
    "type": "fc:org",
    "displayName": "Eksempelskolen",
    "membership": {"basic": "member", "primarySchool": True},
    "public": False,
    "orgType": ["primary_and_lower_secondary"],
    "parent": "fc:org:bergen.kommune.no",
}
COUNTY_OWNER = {
    "id": "fc:org:vlfk.no", "type": "fc:org", "displayName": "Vestland fylkeskommune",
    "membership": {"basic": "admin", "displayName": "Lærer", "affiliation": ["member", "employee", "faculty"]},
    "public": False, "orgType": ["upper_secondary_owner"], "eduOrgLegalName": "Vestland fylkeskommune",
    "norEduOrgNIN": "NO821311632",
}
COUNTY_SCHOOL = {
    "id": "fc:org:vlfk.no:unit:NO974557746", "type": "fc:org", "displayName": "Eksempel vidaregåande skule",
    "membership": {"basic": "admin", "primarySchool": True}, "public": False, "orgType": ["upper_secondary"],
    "parent": "fc:org:vlfk.no",
}


def test_parse_groups_of_a_municipal_school():
    school, affiliations = feide.parse_groups([BERGEN_OWNER, BERGEN_SCHOOL], NAMES)
    assert affiliations == {"member", "student"}
    assert school.name == "Eksempelskolen" and school.code == "974600951"
    assert (school.owner_name, school.owner_org_number) == ("Bergen kommune", "964338531")
    assert (school.owner_kind, school.municipality_id) == (OWNER_MUNICIPALITY, "NO-4601")


def test_parse_groups_of_a_county_school():
    school, affiliations = feide.parse_groups([COUNTY_SCHOOL, COUNTY_OWNER], NAMES)
    assert affiliations == {"member", "employee", "faculty"}
    assert (school.owner_kind, school.municipality_id) == (OWNER_COUNTY, None)
    assert school.code == "974557746" and school.name == "Eksempel vidaregåande skule"


def test_oslo_owns_both_kinds_of_school_and_is_a_municipality():
    owner = {**BERGEN_OWNER, "id": "fc:org:oslo.kommune.no", "displayName": "Oslo kommune",
             "eduOrgLegalName": "Oslo kommune", "orgType": ["primary_and_lower_secondary_owner",
                                                            "upper_secondary_owner"]}
    school, _ = feide.parse_groups([owner], NAMES)
    assert (school.owner_kind, school.municipality_id, school.name) == (OWNER_MUNICIPALITY, "NO-0301", None)


def test_independent_school_owner():
    owner = {**BERGEN_OWNER, "id": "fc:org:steinerskolen.no", "displayName": "Steinerskolen i Bergen",
             "eduOrgLegalName": "Steinerskolen i Bergen AS", "norEduOrgNIN": "NO971234567"}
    school, _ = feide.parse_groups([owner, {**BERGEN_SCHOOL, "parent": "fc:org:steinerskolen.no"}], NAMES)
    assert (school.owner_kind, school.municipality_id) == (OWNER_INDEPENDENT, None)


@pytest.mark.parametrize(("legal_name", "group_id", "expected"), [
    ("BERGEN KOMMUNE", "fc:org:x.no", "NO-4601"),
    ("Kommunen Bergen", "fc:org:x.no", "NO-4601"),
    ("Porsanger kommune – Porsáŋgu gielda – Porsanginkunta", "fc:org:porsanger.kommune.no", "NO-5636"),
    ("Herøy kommune", "fc:org:heroy.kommune.no", None),  # two municipalities are called Herøy
    ("Eksempel kommune", "fc:org:eksempel.kommune.no", None),  # not in the register
    (None, "fc:org:tromso.kommune.no", "NO-5501"),  # no legal name: the realm of a kommune's Feide
])
def test_municipality_of_the_owner(legal_name, group_id, expected):
    owner = {**BERGEN_OWNER, "id": group_id, "eduOrgLegalName": legal_name, "displayName": legal_name}
    school, _ = feide.parse_groups([owner], NAMES)
    assert school.municipality_id == expected
    assert school.owner_kind == OWNER_MUNICIPALITY


def test_primary_school_and_affiliation_as_one_string():
    other = {**BERGEN_SCHOOL, "id": "fc:org:bergen.kommune.no:unit:NO111111111", "displayName": "Other school",
             "membership": {"basic": "member"}}
    owner = {**BERGEN_OWNER, "membership": {"basic": "member", "affiliation": "Student"}}
    school, affiliations = feide.parse_groups([other, BERGEN_SCHOOL, owner], NAMES)
    assert school.name == "Eksempelskolen"
    assert affiliations == {"student"}


def test_university_is_another_kind_of_owner():
    university = {"id": "fc:org:example.org", "type": "fc:org", "displayName": "Eksempeluniversitetet",
                  "membership": {"basic": "admin", "affiliation": ["member", "employee", "faculty"],
                                 "primaryAffiliation": "employee"},
                  "public": False, "orgType": ["higher_education"], "eduOrgLegalName": "Eksempeluniversitetet",
                  "norEduOrgNIN": "NO123456789"}
    school, affiliations = feide.parse_groups([university], NAMES)
    assert school.owner_kind == OWNER_OTHER and school.municipality_id is None
    assert "employee" in affiliations


@pytest.mark.parametrize("groups", [[], [None, "x", 3], [{"type": "fc:gogroup", "id": "fc:gogroup:x"}],
                                    [{"type": "fc:org"}]])
def test_nothing_usable_gives_no_school(groups):
    assert feide.parse_groups(groups, NAMES) == (None, frozenset())


def test_municipality_names_of_the_register(sign_in_app):
    with sign_in_app.app_context():
        session = new_session(sign_in_app)
        names = feide.municipality_names(session)
        session.close()
    assert names["Oslo"] == "NO-0301" and names["Bergen"] == "NO-4601"
    assert all(value.startswith("NO-") for value in names.values())
