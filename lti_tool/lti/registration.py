"""LTI Dynamic Registration 1.0: the platform opens our registration page with its openid-configuration
URL (and perhaps a registration token); we fetch the configuration, check it, and register ourselves.
The new registration stays pending until national staff approve it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..domain.claims import (MESSAGE_DATA_PRIVACY, MESSAGE_DEEP_LINKING, MESSAGE_RESOURCE_LINK, SCOPE_LINEITEM,
                             SCOPE_LINEITEM_READONLY, SCOPE_NRPS, SCOPE_SCORE)
from ..domain.errors import DomainError
from ..models import DEPLOYMENT_PENDING, Deployment, Registration
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
                                 http: requests.Session | None = None) -> dict:
    """The platform's openid-configuration. The registration token is sent only when the platform gave one
    (Brightspace gives none); the configuration URL must start with the issuer it names."""
    parts = urlsplit(url or "")
    if parts.scheme not in ("https", "http") or not parts.netloc:
        raise RegistrationError("openid_configuration is not a URL", code="registration_invalid")
    headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        response = (http or requests).get(url, headers=headers, timeout=timeout)
    except requests.RequestException as exc:
        raise RegistrationError(f"cannot fetch {url}: {exc.__class__.__name__}", code="registration_config_unavailable") from exc
    if response.status_code != 200:
        raise RegistrationError(f"{url} answered {response.status_code}", code="registration_config_unavailable")
    try:
        config = response.json()
    except ValueError as exc:
        raise RegistrationError(f"{url} is not JSON", code="registration_config_unavailable") from exc
    issuer = config.get("issuer") if isinstance(config, dict) else None
    if not isinstance(issuer, str) or not issuer.startswith(("https://", "http://")):
        raise RegistrationError("the configuration names no issuer", code="registration_config_invalid")
    if not url.startswith(issuer):
        raise RegistrationError(f"configuration URL {url} does not start with its issuer {issuer}",
                                code="registration_issuer_mismatch")
    for name in ("registration_endpoint", "authorization_endpoint", "token_endpoint", "jwks_uri"):
        if not isinstance(config.get(name), str) or not config[name].startswith(("https://", "http://")):
            raise RegistrationError(f"the configuration has no {name}", code="registration_config_invalid")
    return config


def client_registration(config: dict, urls: ToolUrls) -> dict[str, Any]:
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


def _errors_of(response: requests.Response) -> str:
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


def register_with_platform(config: dict, token: str | None, urls: ToolUrls, *, timeout: float,
                           http: requests.Session | None = None) -> dict:
    headers = {"Accept": "application/json", "Content-Type": "application/json", "User-Agent": USER_AGENT}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        response = (http or requests).post(config["registration_endpoint"], json=client_registration(config, urls),
                                           headers=headers, timeout=timeout)
    except requests.RequestException as exc:
        raise RegistrationError(f"registration request failed: {exc.__class__.__name__}",
                                code="registration_refused") from exc
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


def store_registration(session: Session, config: dict, answer: dict) -> Registered:
    """A pending registration (and its deployment, when the platform named one) for staff to approve."""
    platform = config.get(PLATFORM_CONFIGURATION) if isinstance(config.get(PLATFORM_CONFIGURATION), dict) else {}
    product = platform.get("product_family_code")
    client_id = str(answer["client_id"])
    registration = session.scalar(select(Registration).where(Registration.issuer == config["issuer"],
                                                             Registration.client_id == client_id))
    if registration is None:
        registration = Registration(issuer=config["issuer"], client_id=client_id)
        session.add(registration)
    registration.name = f"{product or urlsplit(config['issuer']).netloc} (dynamic registration)"[:200]
    registration.auth_login_url = config["authorization_endpoint"]
    registration.auth_token_url = config["token_endpoint"]
    registration.jwks_url = config["jwks_uri"]
    # Brightspace wants the token audience of its authorization server, not the token URL.
    audience = config.get("authorization_server")
    registration.token_audience = audience if isinstance(audience, str) and audience else None
    registration.status = "pending"
    registration.product = product
    session.flush()
    tool = answer.get(TOOL_CONFIGURATION) if isinstance(answer.get(TOOL_CONFIGURATION), dict) else {}
    deployment_id = tool.get("deployment_id")
    if isinstance(deployment_id, str) and deployment_id and len(deployment_id) <= 255:
        exists = session.scalar(select(Deployment).where(Deployment.registration_id == registration.id,
                                                         Deployment.deployment_id == deployment_id))
        if exists is None:
            session.add(Deployment(registration_id=registration.id, deployment_id=deployment_id,
                                   status=DEPLOYMENT_PENDING))
    else:
        deployment_id = None
    session.flush()
    return Registered(registration, deployment_id, product)
