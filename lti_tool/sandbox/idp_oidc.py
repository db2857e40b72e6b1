"""The sandbox OpenID Connect provider ("Sandbox Feide"), for development, the demo and the test suite; never in
production (``views.init_app`` registers it only while the sandbox is on).

Served at ``<sandbox base URL>/sandbox/idp/oidc/`` (its issuer), in the shape of Feide: the discovery document
(``.well-known/openid-configuration``), ``authorize`` (a page of test people: pick one), ``token`` (authorization
code with PKCE S256 and client credentials -> access token and an RS256 ID token with Feide's claims), ``jwks``,
``userinfo`` and Feide's Groups API (``groups/me/groups``: the school owner group and the school group of the
signed-in test person, as docs.feide.no shows them). :func:`ensure_sandbox_oidc_provider` adds it to the tool as an
identity provider (profile ``feide``, client id :data:`CLIENT_ID`).

The test people are pupils and a teacher of the demo's Norwegian municipalities (Oslo, Bergen), a pupil of an
upper-secondary school owned by a county (Vestland fylkeskommune) and a pupil of a municipality (Tromsø) that has
not activated the service, whose sign-in is answered as Feide does: ``error=access_denied``.

Nothing here keeps state in a process or touches the database while the tool waits for it: the tool asks
discovery, token, key set, userinfo and Groups API from inside its own requests, and with SQLite the tool's
request already holds the database's write lock. So the authorization request, the code and the access token are
signed values (itsdangerous, the app's secret), the client secret is derived from the app's secret, and a code is
taken once by creating its marker file (``O_EXCL``) under the keys directory, which every worker shares. The signing
key is created on first use under ``<keys dir>/sandbox-idp/`` (PEM, named by kid).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import unquote_plus, urlencode

import jwt
from flask import Blueprint, Flask, current_app, jsonify, redirect, render_template, request
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..config import settings
from ..db import get_session
from ..lti.keys import KeyStore
from ..models import REGISTRATION_KIND_SCHOOL, IdentityProvider, Registration
from ..services import identity as providers

bp = Blueprint("sandbox_idp_oidc", __name__, url_prefix="/sandbox/idp/oidc")
PATH = "/sandbox/idp/oidc"
EXTENSION_KEY = "lti_tool.sandbox.idp_oidc"
CLIENT_ID = "kulturskola-sandbox"
PROVIDER_NAME = "Sandbox Feide"
# Where the tool takes the answer: the redirect URI registered for the sandbox provider (on the tool's base URL).
REDIRECT_PATH = "/sign-in/{provider_id}/callback"
REQUEST_SECONDS = 600  # the person-picking page
CODE_SECONDS = 120
ACCESS_SECONDS = 3600
ID_TOKEN_SECONDS = 600
SCOPES = ("openid", "userid-feide", "userinfo-name", "groups-org")  # what it grants of what is asked (never NIN)
FEIDE_USER_ID = "https://n.feide.no/claims/eduPersonPrincipalName"
FEIDE_USER_ID_SEC = "https://n.feide.no/claims/userid_sec"
NOT_ACTIVATED = ("The service is not activated for your organization "
                 "(Du har ikke tilgang til denne tjenesten: tjenesten er ikke aktivert for din organisasjon)")


@dataclass(frozen=True)
class TestOrg:
    """A school owner (vertsorganisasjon) in Feide."""

    realm: str
    legal_name: str
    org_number: str  # norEduOrgNIN without "NO"; made up
    org_types: tuple[str, ...]
    activated: bool = True  # has its Feide administrator switched the service on?


@dataclass(frozen=True)
class TestSchool:
    org_number: str  # made up
    name: str
    org_types: tuple[str, ...]


@dataclass(frozen=True)
class TestPerson:
    key: str
    name: str
    user_id: str  # the Feide user id (eduPersonPrincipalName)
    affiliation: tuple[str, ...]
    primary_affiliation: str
    owner: TestOrg
    school: TestSchool

    @property
    def sub(self) -> str:
        """Feide's ``sub``: an opaque id, the same in every sign-in."""
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"sandbox-feide:{self.user_id}"))

    @property
    def is_staff(self) -> bool:
        return self.primary_affiliation != "student"


_PRIMARY_OWNER, _UPPER_OWNER = "primary_and_lower_secondary_owner", "upper_secondary_owner"
OSLO = TestOrg("oslo.kommune.no", "Oslo kommune", "900000301", (_PRIMARY_OWNER, _UPPER_OWNER))
BERGEN = TestOrg("bergen.kommune.no", "Bergen kommune", "900004601", (_PRIMARY_OWNER,))
VESTLAND = TestOrg("vlfk.no", "Vestland fylkeskommune", "900000046", (_UPPER_OWNER,))
TROMSO = TestOrg("tromso.kommune.no", "Tromsø kommune", "900005501", (_PRIMARY_OWNER,), activated=False)
_PUPIL, _TEACHER = ("member", "student"), ("member", "employee", "faculty")
PEOPLE = (
    TestPerson("oslo-pupil", "Ola Nordmann", "ola.nordmann@oslo.kommune.no", _PUPIL, "student", OSLO,
               TestSchool("910000301", "Fjellstua skole", ("primary_and_lower_secondary",))),
    TestPerson("oslo-teacher", "Kari Nordmann", "kari.nordmann@oslo.kommune.no", _TEACHER, "employee", OSLO,
               TestSchool("910000301", "Fjellstua skole", ("primary_and_lower_secondary",))),
    TestPerson("bergen-pupil", "Nora Berge", "nora.berge@bergen.kommune.no", _PUPIL, "student", BERGEN,
               TestSchool("910004601", "Bryggen skule", ("primary_and_lower_secondary",))),
    TestPerson("vestland-pupil", "Emil Fjordheim", "emil.fjordheim@vlfk.no", _PUPIL, "student", VESTLAND,
               TestSchool("910000046", "Fjordane vidaregåande skule", ("upper_secondary",))),
    TestPerson("tromso-pupil", "Sara Nordlys", "sara.nordlys@tromso.kommune.no", _PUPIL, "student", TROMSO,
               TestSchool("910005501", "Nordlys skole", ("primary_and_lower_secondary",))),
)
PEOPLE_BY_KEY = {person.key: person for person in PEOPLE}


class AuthorizeError(ValueError):
    """The authorization request is refused on the provider's own page (no client or redirect URI to trust)."""


class OAuthErrorAnswer(ValueError):
    """An OAuth error answer (RFC 6749 5.2 / RFC 6750 3.1)."""

    def __init__(self, error: str, description: str = "", status: int = 400):
        super().__init__(description or error)
        self.error = error
        self.description = description
        self.status = status


def client_secret(secret_key: str) -> str:
    """The sandbox client's secret: derived from the app's secret, so the token endpoint checks it without the
    database."""
    return hmac.new(secret_key.encode(), b"lti_tool.sandbox-idp.client-secret", hashlib.sha256).hexdigest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _append_query(url: str, params: Mapping[str, str]) -> str:
    return url + ("&" if "?" in url else "?") + urlencode({k: v for k, v in params.items() if v})


class SandboxIdP:
    def __init__(self, base_url: str, keys_dir: str | Path, secret: str, tool_base_url: str | None = None):
        """``base_url``: where the sandbox is served (its issuer is ``<base_url>/sandbox/idp/oidc``);
        ``tool_base_url``: the tool's BASE_URL (where the registered redirect URI is)."""
        self.base_url = base_url.rstrip("/")
        self.tool_base_url = (tool_base_url or base_url).rstrip("/")
        self.issuer = self.base_url + PATH
        self.keys = KeyStore(Path(keys_dir) / "sandbox-idp", grace=timedelta(days=1))
        self.used_codes = Path(keys_dir) / "sandbox-idp" / "used-codes"
        self.client_id = CLIENT_ID
        self.client_secret = client_secret(secret)
        self._requests = URLSafeTimedSerializer(secret, salt="lti_tool.sandbox-idp.request")
        self._codes = URLSafeTimedSerializer(secret, salt="lti_tool.sandbox-idp.code")
        self._tokens = URLSafeTimedSerializer(secret, salt="lti_tool.sandbox-idp.access-token")

    # -- URLs ---------------------------------------------------------------------------------------
    @property
    def discovery_url(self) -> str:
        return self.issuer + "/.well-known/openid-configuration"

    @property
    def authorization_endpoint(self) -> str:
        return self.issuer + "/authorize"

    @property
    def token_endpoint(self) -> str:
        return self.issuer + "/token"

    @property
    def userinfo_endpoint(self) -> str:
        return self.issuer + "/userinfo"

    @property
    def jwks_uri(self) -> str:
        return self.issuer + "/jwks"

    @property
    def groups_api_url(self) -> str:
        return self.issuer + "/groups/me/groups"

    def redirect_uri(self, provider_id: int) -> str:
        """The redirect URI registered for the sandbox provider (as a Feide service registers its own)."""
        return self.tool_base_url + REDIRECT_PATH.format(provider_id=provider_id)

    def discovery(self) -> dict[str, Any]:
        return {"issuer": self.issuer, "authorization_endpoint": self.authorization_endpoint,
                "token_endpoint": self.token_endpoint, "userinfo_endpoint": self.userinfo_endpoint,
                "jwks_uri": self.jwks_uri, "response_types_supported": ["code"],
                "subject_types_supported": ["public"], "id_token_signing_alg_values_supported": ["RS256"],
                "scopes_supported": list(SCOPES), "grant_types_supported": ["authorization_code"],
                "code_challenge_methods_supported": ["S256"],
                "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
                "claims_supported": ["sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "name",
                                     FEIDE_USER_ID, FEIDE_USER_ID_SEC]}

    def jwks(self) -> dict[str, Any]:
        self.keys.ensure()
        return self.keys.jwks()

    # -- authorization (the browser) ----------------------------------------------------------------
    def check_authorization_request(self, params: Mapping[str, str], registered_redirect_uri: str | None) -> str:
        """The request checked and carried, signed, through the person-picking page. An unknown client or redirect
        URI is refused on the page (``AuthorizeError``); anything else wrong goes back to the client
        (``OAuthErrorAnswer``, after :meth:`error_redirect`)."""
        if params.get("client_id") != self.client_id:
            raise AuthorizeError(f"unknown client_id {params.get('client_id')!r}")
        if registered_redirect_uri is None:
            raise AuthorizeError("the sandbox provider is not registered with the tool (run flask demo)")
        if params.get("redirect_uri") != registered_redirect_uri:
            raise AuthorizeError(f"redirect_uri must be the registered {registered_redirect_uri!r}, "
                                 f"not {params.get('redirect_uri')!r}")
        if params.get("response_type") != "code":
            raise OAuthErrorAnswer("unsupported_response_type", "only the authorization code flow")
        asked = (params.get("scope") or "").split()
        if "openid" not in asked:
            raise OAuthErrorAnswer("invalid_scope", "openid is required")
        if params.get("code_challenge_method") != "S256" or not params.get("code_challenge"):
            raise OAuthErrorAnswer("invalid_request", "PKCE with code_challenge_method S256 is required")
        return self._requests.dumps({"client_id": self.client_id, "redirect_uri": params["redirect_uri"],
                                     "state": params.get("state", ""), "nonce": params.get("nonce", ""),
                                     "scope": " ".join(scope for scope in asked if scope in SCOPES),
                                     "code_challenge": params["code_challenge"]})

    def read_request(self, carried: str) -> dict[str, str]:
        try:
            data: dict[str, str] = self._requests.loads(carried, max_age=REQUEST_SECONDS)
        except BadSignature as exc:
            raise AuthorizeError("the sign-in page is too old or not ours: start again") from exc
        return data

    def error_redirect(self, redirect_uri: str, state: str, error: str, description: str) -> str:
        return _append_query(redirect_uri, {"error": error, "error_description": description, "state": state,
                                            "iss": self.issuer})

    def answer(self, carried: str, person_key: str) -> str:
        """Where the browser goes after the person was picked: the code, or Feide's refusal when the person's
        organisation has not activated the service."""
        data = self.read_request(carried)
        person = PEOPLE_BY_KEY.get(person_key)
        if person is None:
            raise AuthorizeError(f"no test person {person_key!r}")
        if not person.owner.activated:
            return self.error_redirect(data["redirect_uri"], data["state"], "access_denied", NOT_ACTIVATED)
        code = self._codes.dumps({**{k: data[k] for k in ("client_id", "redirect_uri", "nonce", "scope",
                                                            "code_challenge")},
                                  "person": person.key, "jti": secrets.token_urlsafe(16),
                                  "auth_time": int(time.time())})
        return _append_query(data["redirect_uri"], {"code": code, "state": data["state"], "iss": self.issuer})

    # -- token (the tool, server to server) ---------------------------------------------------------
    def _client_of(self, form: Mapping[str, str], authorization: str | None) -> str:
        client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
        if authorization and authorization.lower().startswith("basic "):
            try:
                decoded = base64.b64decode(authorization[6:].strip(), validate=True).decode("utf-8")
            except (ValueError, UnicodeDecodeError):
                raise OAuthErrorAnswer("invalid_client", "malformed Basic credentials", 401) from None
            client_id, _, secret = (unquote_plus(part) for part in decoded.partition(":"))
        if client_id != self.client_id or not hmac.compare_digest(secret.encode(), self.client_secret.encode()):
            raise OAuthErrorAnswer("invalid_client", "unknown client or wrong secret", 401)
        return client_id

    def exchange(self, form: Mapping[str, str], authorization: str | None) -> dict[str, Any]:
        """The token response for an authorization code (PKCE, client credentials, single use)."""
        if form.get("grant_type") != "authorization_code":
            raise OAuthErrorAnswer("unsupported_grant_type")
        client_id = self._client_of(form, authorization)
        try:
            code = self._codes.loads(form.get("code", ""), max_age=CODE_SECONDS)
        except BadSignature:
            raise OAuthErrorAnswer("invalid_grant", "unknown or expired code") from None
        if code["client_id"] != client_id or code["redirect_uri"] != form.get("redirect_uri"):
            raise OAuthErrorAnswer("invalid_grant", "the code was issued to another client or redirect_uri")
        verifier = form.get("code_verifier", "")
        if not verifier or not hmac.compare_digest(_b64(hashlib.sha256(verifier.encode()).digest()),
                                                   code["code_challenge"]):
            raise OAuthErrorAnswer("invalid_grant", "PKCE verification failed")
        self._take_code(code["jti"])
        person = PEOPLE_BY_KEY[code["person"]]
        access_token = self._tokens.dumps({"person": person.key, "scope": code["scope"], "client_id": client_id})
        id_token = self.build_id_token(person, client_id=client_id, nonce=code["nonce"], scope=code["scope"],
                                       access_token=access_token, auth_time=code["auth_time"])
        return {"access_token": access_token, "token_type": "Bearer", "expires_in": ACCESS_SECONDS,
                "scope": code["scope"], "id_token": id_token}

    def _take_code(self, jti: str) -> None:
        """A code is exchanged once: its marker file is created exclusively (old markers are swept away)."""
        self.used_codes.mkdir(parents=True, exist_ok=True)
        cutoff = time.time() - 2 * CODE_SECONDS
        for marker in self.used_codes.iterdir():
            try:
                if marker.stat().st_mtime < cutoff:
                    marker.unlink()
            except FileNotFoundError:
                pass
        try:
            os.close(os.open(self.used_codes / hashlib.sha256(jti.encode()).hexdigest(),
                             os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        except FileExistsError:
            raise OAuthErrorAnswer("invalid_grant", "the code was used before") from None

    def claims(self, person: TestPerson, *, client_id: str, nonce: str, scope: str, auth_time: int | None = None,
               access_token: str | None = None) -> dict[str, Any]:
        """The ID token's claims: Feide's, for the scopes granted (never a national identity number)."""
        issued = int(time.time())
        claims: dict[str, Any] = {"iss": self.issuer, "aud": client_id, "sub": person.sub, "iat": issued,
                                  "exp": issued + ID_TOKEN_SECONDS, "auth_time": auth_time or issued}
        if nonce:
            claims["nonce"] = nonce
        if access_token:
            claims["at_hash"] = _b64(hashlib.sha256(access_token.encode("ascii")).digest()[:16])
        return {**claims, **self.person_claims(person, scope.split())}

    @staticmethod
    def person_claims(person: TestPerson, scopes: list[str]) -> dict[str, Any]:
        claims: dict[str, Any] = {}
        if "userinfo-name" in scopes:
            claims["name"] = person.name
        if "userid-feide" in scopes:
            claims[FEIDE_USER_ID] = person.user_id
            claims[FEIDE_USER_ID_SEC] = [f"feide:{person.user_id}"]
        return claims

    def build_id_token(self, person: TestPerson, *, client_id: str, nonce: str, scope: str = " ".join(SCOPES),
                       auth_time: int | None = None, access_token: str | None = None,
                       overrides: Mapping[str, Any] | None = None, headers: Mapping[str, Any] | None = None,
                       signing_pem: bytes | None = None) -> str:
        """Sign an ID token for ``person`` (RS256, the provider's key). ``overrides`` replace claims (``None``
        removes one), ``headers`` header fields, ``signing_pem`` signs with another key (tests)."""
        body = self.claims(person, client_id=client_id, nonce=nonce, scope=scope, auth_time=auth_time,
                           access_token=access_token)
        for name, value in (overrides or {}).items():
            if value is None:
                body.pop(name, None)
            else:
                body[name] = value
        key = self.keys.ensure()
        header = {"kid": key.kid, "typ": "JWT"}
        header.update(headers or {})
        return jwt.encode(body, signing_pem or key.private_pem, algorithm=header.pop("alg", "RS256"), headers=header)

    # -- resources (the tool, with the access token) ------------------------------------------------
    def bearer(self, authorization: str | None) -> tuple[TestPerson, list[str]]:
        """The test person and granted scopes of a Bearer access token."""
        if not authorization or not authorization.lower().startswith("bearer "):
            raise OAuthErrorAnswer("invalid_request", "a Bearer access token is required", 401)
        try:
            data = self._tokens.loads(authorization[7:].strip(), max_age=ACCESS_SECONDS)
        except BadSignature:
            raise OAuthErrorAnswer("invalid_token", "unknown or expired access token", 401) from None
        return PEOPLE_BY_KEY[data["person"]], str(data["scope"]).split()

    def userinfo(self, person: TestPerson, scopes: list[str]) -> dict[str, Any]:
        return {"sub": person.sub, **self.person_claims(person, scopes)}

    @staticmethod
    def groups(person: TestPerson, scopes: list[str]) -> list[dict[str, Any]]:
        """The person's groups as Feide's Groups API gives them with ``groups-org``: the school owner group and
        the school group (none without the scope)."""
        if "groups-org" not in scopes:
            return []
        owner, school = person.owner, person.school
        owner_id = f"fc:org:{owner.realm}"
        role = {"student": "Elev", "employee": "Lærer"}.get(person.primary_affiliation, "Ansatt")
        return [
            {"id": owner_id, "type": "fc:org", "displayName": owner.legal_name,
             "membership": {"basic": "admin" if person.is_staff else "member", "displayName": role,
                            "affiliation": list(person.affiliation),
                            "primaryAffiliation": person.primary_affiliation},
             "public": False, "orgType": list(owner.org_types), "eduOrgLegalName": owner.legal_name,
             "norEduOrgNIN": f"NO{owner.org_number}", "mail": f"post@{owner.realm}"},
            {"id": f"{owner_id}:unit:NO{school.org_number}", "type": "fc:org", "displayName": school.name,
             "membership": {"basic": "admin" if person.is_staff else "member", "primarySchool": True},
             "public": False, "orgType": list(school.org_types), "parent": owner_id},
        ]


# -- the tool's identity provider row -----------------------------------------------------------------------

def ensure_sandbox_oidc_provider(session: Session, base_url: str) -> IdentityProvider:
    """The sandbox provider as one of the tool's identity providers (profile ``feide``, country NO), added once;
    ``base_url``: the sandbox's base URL (``settings().sandbox_base_url``). Its client secret follows the app's."""
    issuer = base_url.rstrip("/") + PATH
    secret = client_secret(settings().secret_key)
    registration_id = session.scalar(select(Registration.id).where(Registration.kind == REGISTRATION_KIND_SCHOOL,
                                                                   Registration.issuer == issuer,
                                                                   Registration.client_id == CLIENT_ID))
    if registration_id is not None:
        provider = providers.provider_of_registration(session, registration_id)
        if provider is not None:
            if provider.client_secret != secret:
                provider.client_secret = secret
                session.flush()
            return provider
    return providers.add_provider(session, profile="feide", name=PROVIDER_NAME, country="NO", issuer=issuer,
                                  client_id=CLIENT_ID, discovery_url=issuer + "/.well-known/openid-configuration",
                                  client_secret=secret, scopes=providers.FEIDE_SCOPES,
                                  groups_api_url=issuer + "/groups/me/groups", auth_url=issuer + "/authorize",
                                  token_url=issuer + "/token", jwks_url=issuer + "/jwks")


def get_idp(app: Flask | None = None) -> SandboxIdP:
    idp: SandboxIdP = (app or current_app).extensions[EXTENSION_KEY]
    return idp


def _registered_redirect_uri(idp: SandboxIdP) -> str | None:
    registration_id = get_session().scalar(select(Registration.id).where(
        Registration.kind == REGISTRATION_KIND_SCHOOL, Registration.issuer == idp.issuer,
        Registration.client_id == idp.client_id))
    provider = providers.provider_of_registration(get_session(), registration_id) if registration_id else None
    return idp.redirect_uri(provider.id) if provider is not None else None


# -- the pages and endpoints --------------------------------------------------------------------------------

def _oauth_error(error: OAuthErrorAnswer):
    response = jsonify({"error": error.error, **({"error_description": error.description} if error.description
                                                  else {})})
    response.status_code = error.status
    if error.status == 401:
        response.headers["WWW-Authenticate"] = f'Bearer error="{error.error}"'
    response.headers["Cache-Control"] = "no-store"
    return response


def _refused_page(error: AuthorizeError):
    return render_template("sandbox/auth_error.html", message=str(error)), 400


@bp.route("/.well-known/openid-configuration")
def discovery():
    return jsonify(get_idp().discovery())


@bp.route("/jwks")
def jwks():
    return jsonify(get_idp().jwks())


@bp.route("/authorize", methods=["GET"])
def authorize():
    """The test people; an unknown client or redirect URI is refused here, other errors go back to the client."""
    idp = get_idp()
    params = request.args.to_dict()
    try:
        carried = idp.check_authorization_request(params, _registered_redirect_uri(idp))
    except AuthorizeError as error:
        return _refused_page(error)
    except OAuthErrorAnswer as error:
        return redirect(idp.error_redirect(params["redirect_uri"], params.get("state", ""), error.error,
                                           error.description), code=303)
    return render_template("sandbox/idp_oidc_authorize.html", carried=carried, people=PEOPLE,
                           provider_name=PROVIDER_NAME)


@bp.route("/authorize", methods=["POST"])
def authorize_person():
    try:
        target = get_idp().answer(request.form.get("request", ""), request.form.get("person", ""))
    except AuthorizeError as error:
        return _refused_page(error)
    return redirect(target, code=303)


@bp.route("/token", methods=["POST"])
def token():
    try:
        answer = get_idp().exchange(request.form.to_dict(), request.headers.get("Authorization"))
    except OAuthErrorAnswer as error:
        return _oauth_error(error)
    response = jsonify(answer)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/userinfo", methods=["GET", "POST"])
def userinfo():
    idp = get_idp()
    try:
        person, scopes = idp.bearer(request.headers.get("Authorization"))
    except OAuthErrorAnswer as error:
        return _oauth_error(error)
    return jsonify(idp.userinfo(person, scopes))


@bp.route("/groups/me/groups")
def my_groups():
    """Feide's Groups API, ``GET /groups/me/groups``."""
    idp = get_idp()
    try:
        person, scopes = idp.bearer(request.headers.get("Authorization"))
    except OAuthErrorAnswer as error:
        return _oauth_error(error)
    return jsonify(idp.groups(person, scopes))


def make(app: Flask) -> None:
    """Make the app's sandbox OpenID Connect provider on the sandbox's current address."""
    config = settings(app)
    app.extensions[EXTENSION_KEY] = SandboxIdP(config.sandbox_base_url, config.keys_dir, config.secret_key,
                                               tool_base_url=config.base_url)




__all__ = ["CLIENT_ID", "PEOPLE", "PEOPLE_BY_KEY", "PROVIDER_NAME", "REDIRECT_PATH", "SandboxIdP", "TestOrg",
           "TestPerson", "TestSchool", "bp", "client_secret", "ensure_sandbox_oidc_provider", "get_idp", "make"]
