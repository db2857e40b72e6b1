"""LTI Dynamic Registration 1.0: the platform opens our registration page with its openid-configuration
URL (and perhaps a registration token); we fetch the configuration, check it, and register ourselves.
The new registration stays pending until national staff approve it."""

from __future__ import annotations

import re
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

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
        with _client(http, policy) as client:
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


def client_registration(config: dict[str, Any], urls: ToolUrls) -> dict[str, Any]:
    """The registration request: what we are and what we need, nothing more (no names or e-mail)."""
    supported = config.get("scopes_supported")
    scopes = [s for s in SCOPES if not isinstance(supported, list) or s in supported]
    claims_supported = config.get("claims_supported")
    claims = [c for c in ("iss", "sub", "locale") if not isinstance(claims_supported, list) or c in claims_supported]
    return {
        "application_type": "web",
        "response_types": ["id_token"],
        "grant_types": ["implicit", "client_credentials"],
        "initiate_login_uri": urls.login,
        "redirect_uris": [urls.launch],
        "client_name": TOOL_NAME,
        "jwks_uri": urls.jwks,
        "policy_uri": urls.privacy,
        "token_endpoint_auth_method": "private_key_jwt",
        "scope": " ".join(scopes),
        TOOL_CONFIGURATION: {
            "domain": urls.domain,
            "description": TOOL_DESCRIPTION,
            "target_link_uri": urls.launch,
            "claims": claims,
            "messages": [
                {"type": MESSAGE_RESOURCE_LINK, "target_link_uri": urls.launch},
                {"type": MESSAGE_DEEP_LINKING, "target_link_uri": urls.launch, "label": TOOL_NAME},
                {"type": MESSAGE_DATA_PRIVACY, "target_link_uri": urls.launch},
            ],
        },
    }


def _client(http: outbound.OutboundSession | None,
            policy: outbound.OutboundPolicy | None) -> AbstractContextManager[outbound.OutboundSession]:
    """The caller's guarded session, or one of our own (closed afterwards) with ``policy``."""
    return nullcontext(http) if http is not None else outbound.session(policy)


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


def register_with_platform(config: dict[str, Any], token: str | None, urls: ToolUrls, *, timeout: float,
                           http: outbound.OutboundSession | None = None,
                           policy: outbound.OutboundPolicy | None = None) -> dict[str, Any]:
    headers = {"Accept": "application/json", "Content-Type": "application/json", "User-Agent": USER_AGENT}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        with _client(http, policy) as client:
            response = client.post(config["registration_endpoint"], json=client_registration(config, urls),
                                   headers=headers, timeout=timeout)
    except outbound.OutboundError as exc:
        raise RegistrationError(f"registration request failed: {exc}", code="registration_refused") from exc
    if response.status_code not in (200, 201):
        raise RegistrationError(f"the platform refused the registration ({response.status_code}): "
                                f"{_errors_of(response)}", code="registration_refused")
    try:
        body = response.json()
    except ValueError as exc:
        raise RegistrationError("the platform's answer is not JSON", code="registration_refused") from exc
    if not isinstance(body, dict) or not body.get("client_id"):
        raise RegistrationError("the platform's answer has no client_id", code="registration_refused")
    return body


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
