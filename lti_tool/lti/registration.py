"""LTI Dynamic Registration 1.0: the platform opens our registration page with its openid-configuration
URL (and perhaps a registration token); we fetch the configuration, check it, and register ourselves.
The new registration stays pending until national staff approve it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from pylti1p3.dynamic_registration import DynamicRegistration
from sqlalchemy.orm import Session

from ..domain.claims import (MESSAGE_DATA_PRIVACY, MESSAGE_DEEP_LINKING, MESSAGE_RESOURCE_LINK, SCOPE_LINEITEM,
                             SCOPE_LINEITEM_READONLY, SCOPE_NRPS, SCOPE_SCORE)
from .. import outbound
from ..domain.errors import DomainError
from ..models import DEPLOYMENT_PENDING, REGISTRATION_PENDING, Deployment, Registration
from .platform_keys import USER_AGENT

TOOL_CONFIGURATION = "https://purl.imsglobal.org/spec/lti-tool-configuration"
PLATFORM_CONFIGURATION = "https://purl.imsglobal.org/spec/lti-platform-configuration"
SCOPES = [SCOPE_LINEITEM, SCOPE_LINEITEM_READONLY, SCOPE_SCORE, SCOPE_NRPS]
TOOL_NAME = "Kulturskola distance courses"
TOOL_DESCRIPTION = "National distance courses for municipal arts schools (kulturskola / kulturskole)."


class RegistrationError(DomainError):
    status = 400


@dataclass(frozen=True)
class ToolUrls:
    base: str

    @property
    def login(self) -> str:
        return self.base + "/lti/login"

    @property
    def launch(self) -> str:
        return self.base + "/lti/launch"

    @property
    def jwks(self) -> str:
        return self.base + "/lti/jwks"

    @property
    def privacy(self) -> str:
        """The public privacy notice (what is stored about pupils, why, for how long)."""
        return self.base + "/privacy"

    @property
    def domain(self) -> str:
        return urlsplit(self.base).netloc


def fetch_platform_configuration(url: str, token: str | None, *, timeout: float,
                                 http: outbound.OutboundSession | None = None, allow_http: bool = False,
                                 policy: outbound.OutboundPolicy | None = None) -> dict[str, Any]:
    """The platform's openid-configuration. The registration token is sent only when the platform gave one
    (Brightspace gives none); the configuration URL must be at its issuer (:func:`check_platform_configuration`).
    ``allow_http``: plain http URLs are accepted too (development only; production wants https)."""
    check_configuration_url(url, allow_http=allow_http)
    headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    # One code, whatever went wrong (an address the outbound guard refuses, no answer, another status, not
    # JSON): the page must not tell whether some address answered. The detail goes to the log.
    try:
        if http is not None:
            response = http.get(url, headers=headers, timeout=timeout)
        else:
            with outbound.session(policy) as client:
                response = client.get(url, headers=headers, timeout=timeout)
    except outbound.OutboundError as exc:
        raise RegistrationError(f"cannot fetch the configuration: {exc}",
                                code="registration_config_unavailable") from exc
    if response.status_code != 200:
        raise RegistrationError(f"{url} answered {response.status_code}", code="registration_config_unavailable")
    try:
        config: dict[str, Any] = response.json()  # a JSON object: check_platform_configuration refuses all else
    except ValueError as exc:
        raise RegistrationError(f"{url} is not JSON", code="registration_config_unavailable") from exc
    check_platform_configuration(url, config, allow_http=allow_http)
    return config


# -- what the platform's URLs must be ------------------------------------------------------------------------

_URL_CHARACTERS = re.compile(r"[!-~]+")  # printable ASCII: no spaces, control characters or look-alike letters
_DEFAULT_PORTS = {"https": 443, "http": 80}
PLATFORM_ENDPOINTS = ("registration_endpoint", "authorization_endpoint", "token_endpoint", "jwks_uri")


def _origin(url: Any, what: str, *, allow_http: bool, invalid_code: str) -> tuple[str, str, int]:
    """(scheme, host, port) of a URL the tool will fetch, post to or send a browser to, parsed (never compared
    as text). Refused (``registration_url_unsafe``): a user name or password (``https://a.example@b.example``
    goes to b.example), plain http unless ``allow_http``, anything but printable ASCII, backslashes, a bad port.
    Not an http(s) URL at all: ``invalid_code``."""
    if not isinstance(url, str) or not url:
        raise RegistrationError(f"{what} is missing", code=invalid_code)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise RegistrationError(f"{what} {url!r} has an invalid host or port", code="registration_url_unsafe") from exc
    if parts.scheme not in _DEFAULT_PORTS or not parts.netloc:
        raise RegistrationError(f"{what} {url!r} is not an http(s) URL", code=invalid_code)
    if not _URL_CHARACTERS.fullmatch(url) or "\\" in url:
        raise RegistrationError(f"{what} {url!r} has characters a URL must not have", code="registration_url_unsafe")
    if "@" in parts.netloc:
        raise RegistrationError(f"{what} {url!r} carries a user name or password", code="registration_url_unsafe")
    if any(unquote(segment) in (".", "..") for segment in parts.path.split("/")):
        # The HTTP client (or the platform's server) resolves dot segments: /issuer/../other/ is another path
        # than the text suggests, so a path compared as text could escape the issuer's.
        raise RegistrationError(f"{what} {url!r} has a . or .. path segment", code="registration_url_unsafe")
    if parts.scheme != "https" and not allow_http:
        raise RegistrationError(f"{what} {url!r} is not https", code="registration_url_unsafe")
    if not parts.hostname:
        raise RegistrationError(f"{what} {url!r} names no host", code=invalid_code)
    return parts.scheme, parts.hostname, port or _DEFAULT_PORTS[parts.scheme]


def check_configuration_url(url: str, *, allow_http: bool = False) -> None:
    """The ``openid_configuration`` a registration starts from, before anything is fetched from it."""
    _origin(url, "openid_configuration", allow_http=allow_http, invalid_code="registration_invalid")


def check_platform_configuration(url: str, config: Any, *, allow_http: bool = False) -> None:
    """The configuration fetched from ``url`` belongs to the issuer it names: same scheme, host and port
    (after parsing, default ports made explicit), and the URL's path is the issuer's path or below it (on a
    ``/`` boundary). Its endpoints may be on other hosts (Canvas: issuer canvas.instructure.com, endpoints on
    sso.canvaslms.com), but each must be a safe URL too (:func:`_origin`)."""
    issuer = config.get("issuer") if isinstance(config, dict) else None
    if not isinstance(issuer, str) or not issuer:
        raise RegistrationError("the configuration names no issuer", code="registration_config_invalid")
    issuer_origin = _origin(issuer, "issuer", allow_http=allow_http, invalid_code="registration_config_invalid")
    issuer_parts = urlsplit(issuer)
    if issuer_parts.query or issuer_parts.fragment:
        raise RegistrationError(f"issuer {issuer!r} has a query or fragment", code="registration_config_invalid")
    config_origin = _origin(url, "openid_configuration", allow_http=allow_http, invalid_code="registration_invalid")
    issuer_path = issuer_parts.path.rstrip("/")
    path = urlsplit(url).path
    if config_origin != issuer_origin or (issuer_path and path != issuer_path
                                          and not path.startswith(issuer_path + "/")):
        raise RegistrationError(f"configuration URL {url} is not at its issuer {issuer}",
                                code="registration_issuer_mismatch")
    for name in PLATFORM_ENDPOINTS:
        _origin(config.get(name), name, allow_http=allow_http, invalid_code="registration_config_invalid")


def _errors_of(response: outbound.Response) -> str:
    """Canvas answers a refused registration with 422 and ``{"errors": [...]}``; others with
    ``error``/``error_description``."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:500]
    if isinstance(body, dict) and isinstance(body.get("errors"), list):
        messages = []
        for error in body["errors"]:
            if isinstance(error, dict):
                messages.append(str(error.get("message") or error.get("field") or error))
            else:
                messages.append(str(error))
        return "; ".join(messages)
    if isinstance(body, dict) and (body.get("error") or body.get("error_description")):
        return " ".join(str(body.get(k)) for k in ("error", "error_description") if body.get(k))
    return response.text[:500]


@dataclass(frozen=True)
class Registered:
    registration: Registration
    deployment_id: str | None
    product: str | None


def store_registration(session: Session, config: dict[str, Any], answer: dict[str, Any]) -> Registered:
    """A NEW pending registration (and its deployment, when the platform named one) for staff to approve.

    It never changes an existing registration: a platform that registers again with the client id of an
    active registration (or of one still pending) gets a second, separate pending row, which staff see side by
    side with the active one and may approve as its replacement (``services.registrations``), or reject.
    Pending rows take no part in logins or launches, so nothing changes for the platform's users meanwhile."""
    platform = config.get(PLATFORM_CONFIGURATION)
    if not isinstance(platform, dict):
        platform = {}
    product = platform.get("product_family_code")
    product = product[:100] if isinstance(product, str) and product else None
    client_id = answer["client_id"]
    if not isinstance(client_id, (str, int)) or isinstance(client_id, bool) or not 0 < len(str(client_id)) <= 255:
        raise RegistrationError("the platform's client_id is not a short string", code="registration_refused")
    client_id = str(client_id)
    if len(config["issuer"]) > 500 or any(len(config[name]) > 1000 for name in PLATFORM_ENDPOINTS):
        raise RegistrationError("the configuration's URLs are too long", code="registration_config_invalid")
    # Brightspace wants the token audience of its authorization server, not the token URL.
    audience = config.get("authorization_server")
    registration = Registration(
        issuer=config["issuer"], client_id=client_id, status=REGISTRATION_PENDING, product=product,
        name=f"{product or urlsplit(config['issuer']).netloc} (dynamic registration)"[:200],
        auth_login_url=config["authorization_endpoint"], auth_token_url=config["token_endpoint"],
        jwks_url=config["jwks_uri"],
        token_audience=audience if isinstance(audience, str) and 0 < len(audience) <= 1000 else None)
    session.add(registration)
    session.flush()
    tool = answer.get(TOOL_CONFIGURATION)
    if not isinstance(tool, dict):
        tool = {}
    deployment_id = tool.get("deployment_id")
    if isinstance(deployment_id, str) and deployment_id and len(deployment_id) <= 255:
        session.add(Deployment(registration_id=registration.id, deployment_id=deployment_id,
                               status=DEPLOYMENT_PENDING))
    else:
        deployment_id = None
    session.flush()
    return Registered(registration, deployment_id, product)


class ToolDynamicRegistration(DynamicRegistration):
    """pylti1p3next's dynamic registration (``register()``: fetch the platform's configuration, post the tool's
    registration, complete it). Overrides, each because the library falls short for this tool:

    - ``get_request_session``: every request through the outbound guard (https, no private addresses, a
      deadline), not a bare ``requests.Session``;
    - ``get_openid_configuration``: the configuration URL must be at its issuer and the configuration checked
      (:func:`fetch_platform_configuration`), with one neutral code whatever went wrong;
    - ``lti_registration_data``: the library's request plus the privacy notice (``policy_uri``), only the
      scopes and claims the platform supports, and no logo;
    - ``register``: the same flow, but an answer without the tool configuration (Brightspace) is accepted and
      the platform's refusal (Canvas's 422 ``errors`` list, ``error_description``) becomes
      ``registration_refused``;
    - ``complete_registration``: a new pending registration for national staff (:func:`store_registration`).
    """

    client_name = TOOL_NAME
    description = TOOL_DESCRIPTION

    def __init__(self, session: Session, url: str, token: str | None, urls: ToolUrls, *, timeout: float,
                 policy: outbound.OutboundPolicy | None = None, allow_http: bool = False):
        self.session = session
        self.url = url
        self.token = token
        self.urls = urls
        self.timeout = timeout
        self.policy = policy
        self.allow_http = allow_http
        self.configuration: dict[str, Any] = {}

    def get_request_session(self) -> outbound.OutboundSession:
        http = outbound.session(self.policy)
        http.headers["User-Agent"] = USER_AGENT
        return http

    def get_openid_configuration_endpoint(self) -> str:
        return self.url

    def get_registration_token(self) -> str | None:  # type: ignore[override]
        return self.token or None

    def get_openid_configuration(self) -> dict[str, Any]:
        with self.get_request_session() as http:
            self.configuration = fetch_platform_configuration(self.url, self.token, timeout=self.timeout, http=http,
                                                              allow_http=self.allow_http)
        return self.configuration

    def get_initiate_login_uri(self) -> str:
        return self.urls.login

    def get_jwks_uri(self) -> str:
        return self.urls.jwks

    def get_redirect_uris(self) -> list[str]:
        return [self.urls.launch]

    def get_target_link_uri(self) -> str:
        return self.urls.launch

    def get_domain(self) -> str:
        return self.urls.domain

    def get_scopes(self) -> list[str]:
        supported = self.configuration.get("scopes_supported")
        return [s for s in SCOPES if not isinstance(supported, list) or s in supported]

    def get_claims(self) -> list[str]:
        supported = self.configuration.get("claims_supported")
        return [c for c in ("iss", "sub", "locale") if not isinstance(supported, list) or c in supported]

    def get_messages(self) -> list[dict[str, str]]:
        return [{"type": MESSAGE_RESOURCE_LINK, "target_link_uri": self.urls.launch},
                {"type": MESSAGE_DEEP_LINKING, "target_link_uri": self.urls.launch, "label": TOOL_NAME},
                {"type": MESSAGE_DATA_PRIVACY, "target_link_uri": self.urls.launch}]

    def lti_registration_data(self) -> dict[str, Any]:
        """What we are and what we need, nothing more (no names or e-mail)."""
        data = {name: value for name, value in super().lti_registration_data().items() if name != "logo_uri"}
        data["policy_uri"] = self.urls.privacy
        return data

    def get_logo_uri(self) -> str:
        return ""

    def register(self) -> Registered:  # type: ignore[override]
        """The library's flow (configuration, registration request, completion) with the tool's error codes.
        Not the library's ``register``: it asserts that the platform's answer repeats the tool configuration,
        which Brightspace's does not, and it raises on a refusal instead of reading the platform's reasons."""
        configuration = self.get_openid_configuration()
        headers = {"Accept": "application/json", "Content-Type": "application/json"}
        token = self.get_registration_token()
        if token:
            headers["Authorization"] = f"Bearer {token}"
        try:
            with self.get_request_session() as http:
                response = http.post(configuration["registration_endpoint"], json=self.lti_registration_data(),
                                     headers=headers, timeout=self.timeout)
        except outbound.OutboundError as exc:
            raise RegistrationError(f"registration request failed: {exc}", code="registration_refused") from exc
        if response.status_code not in (200, 201):
            raise RegistrationError(f"the platform refused the registration ({response.status_code}): "
                                    f"{_errors_of(response)}", code="registration_refused")
        try:
            answer = response.json()
        except ValueError as exc:
            raise RegistrationError("the platform's answer is not JSON", code="registration_refused") from exc
        return self.complete_registration(configuration, answer)

    def complete_registration(self, openid_configuration: dict[str, Any],
                              openid_registration: dict[str, Any]) -> Registered:
        if not isinstance(openid_registration, dict) or not openid_registration.get("client_id"):
            raise RegistrationError("the platform's answer has no client_id", code="registration_refused")
        return store_registration(self.session, openid_configuration, openid_registration)
