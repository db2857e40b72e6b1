"""The sandbox platforms themselves (no Flask): development platforms that register themselves with the tool
and launch it through the real ``/lti/login`` and ``/lti/launch`` with real signed id_tokens.

The sandbox serves two platforms (:data:`PROFILES`), so that one round's pupils can come from two platforms as
they do in real life: "Sandbox Canvas", the first, whose issuer is ``<sandbox base URL>/sandbox`` and client id
:data:`CLIENT_ID`, and "Sandbox Moodle", issuer ``<sandbox base URL>/sandbox/moodle``. Each has its own key
pair, client id, registration, deployments, key set, authorization and token URLs.

Never enabled in production. The same emulator drives the test suite's end-to-end flows: its
``build_id_token`` takes overrides, so a test can tamper with any claim, header or signing key.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import quote, urlencode

import jwt
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..domain.claims import (CLAIM_AGS, CLAIM_CONTEXT, CLAIM_CUSTOM, CLAIM_DEEP_LINKING_SETTINGS, CLAIM_DEPLOYMENT_ID,
                            CLAIM_LAUNCH_PRESENTATION, CLAIM_MESSAGE_TYPE, CLAIM_RESOURCE_LINK, CLAIM_ROLES,
                            CLAIM_TARGET_LINK_URI, CLAIM_TOOL_PLATFORM, CLAIM_VERSION, MESSAGE_DEEP_LINKING,
                            MESSAGE_RESOURCE_LINK)
from ..lti.keys import KeyStore
from ..models import REGISTRATION_ACTIVE, Municipality, Registration
from ..services.platforms import add_registration, bind_deployment
from .gradebook import GRANTED, Gradebook

CLIENT_ID = "kulturskola-sandbox"  # the first sandbox platform's (Sandbox Canvas)
STORAGE_FRAME = "post_message_forwarding"
STORAGE_MODES = ("parent", "frame", "capabilities", "none")
SHARED_DEPLOYMENT = "sandbox-region"
SHARED_PARAM = "municipality_code"
ROLES = {
    "learner": ["http://purl.imsglobal.org/vocab/lis/v2/membership#Learner",
                "http://purl.imsglobal.org/vocab/lis/v2/institution/person#Student"],
    "instructor": ["http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor",
                   "http://purl.imsglobal.org/vocab/lis/v2/institution/person#Faculty"],
    "administrator": ["http://purl.imsglobal.org/vocab/lis/v2/institution/person#Administrator"],
}


@dataclass(frozen=True)
class PlatformProfile:
    """Who a sandbox platform is. ``key``: empty for the first platform (its URLs are ``/sandbox/auth``,
    ``/sandbox/jwks``, ...), else the path segment of its URLs (``/sandbox/<key>/auth``, ...) and its issuer."""

    key: str
    name: str  # shown to people on the sandbox page
    client_id: str
    registration_name: str  # the registration's name in the tool (console, reports)
    regional: bool = True  # a regional deployment shared by the Swedish municipalities, besides their own

    @property
    def path(self) -> str:
        return "/sandbox" + (f"/{self.key}" if self.key else "")


# The first keeps the sandbox's original issuer, client id, URLs and registration name.
CANVAS = PlatformProfile(key="", name="Sandbox Canvas", client_id=CLIENT_ID, registration_name="Sandbox platform")
MOODLE = PlatformProfile(key="moodle", name="Sandbox Moodle", client_id="kulturskola-sandbox-moodle",
                         registration_name="Sandbox Moodle", regional=False)
PROFILES = (CANVAS, MOODLE)


class SandboxError(ValueError):
    """The sandbox platform refuses an authentication request (as a real platform would)."""


@dataclass(frozen=True)
class LaunchSpec:
    """What the person chose on the sandbox page; travels as the opaque ``lti_message_hint``."""

    deployment_id: str
    role: str = "learner"
    user: str = "pupil-1"
    locale: str = "sv-SE"
    municipality_code: str | None = None  # sent as custom parameter on the shared deployment
    course: str | None = None
    context_id: str = "sandbox-course-1"
    resource_link_id: str = "sandbox-link-1"
    custom: dict[str, str] = field(default_factory=dict)
    message_type: str = MESSAGE_RESOURCE_LINK
    accept_multiple: bool = False
    # Platform storage offered to the tool: "none", "parent" (lti_storage_target=_parent), "frame" (a named
    # forwarding frame, as Canvas's post_message_forwarding) or "capabilities" (no target in the login; the
    # platform answers lti.capabilities, as Blackboard).
    storage: str = "none"
    # Offer the platform's gradebook (the AGS claim: columns of the launch's context, scores) with a course link.
    gradebook: bool = False
    # The person's name, sent as the OpenID Connect ``name`` claim (none: the platform shares no name, as an
    # anonymous Canvas developer key).
    name: str | None = None


def sandbox_deployment_id(municipality_id: str) -> str:
    return f"sandbox-{municipality_id}"


class SandboxPlatform:
    def __init__(self, base_url: str, keys_dir: str | Path, secret: str, tool_base_url: str | None = None,
                 profile: PlatformProfile = CANVAS):
        """``base_url``: where the platform itself is served (another site from the tool, to try launches in a
        third-party iframe); ``tool_base_url``: the tool's BASE_URL; ``profile``: which sandbox platform."""
        self.profile = profile
        self.base_url = base_url.rstrip("/")
        self.tool_base_url = (tool_base_url or base_url).rstrip("/")
        self.issuer = self.base_url + profile.path
        folder = "sandbox-platform" + (f"-{profile.key}" if profile.key else "")
        self.keys = KeyStore(Path(keys_dir) / folder, grace=timedelta(days=1))
        salt = "lti_tool.sandbox-hint" + (f".{profile.key}" if profile.key else "")
        self._hints = URLSafeTimedSerializer(secret, salt=salt)
        self.gradebook = Gradebook(Path(keys_dir) / folder / "gradebook.json")

    @property
    def key(self) -> str:
        return self.profile.key

    @property
    def name(self) -> str:
        return self.profile.name

    @property
    def client_id(self) -> str:
        return self.profile.client_id

    # -- URLs ---------------------------------------------------------------------------------------
    @property
    def auth_login_url(self) -> str:
        return self.issuer + "/auth"

    @property
    def auth_token_url(self) -> str:
        return self.issuer + "/token"

    @property
    def jwks_url(self) -> str:
        return self.issuer + "/jwks"

    @property
    def tool_login_url(self) -> str:
        return self.tool_base_url + "/lti/login"

    @property
    def tool_launch_url(self) -> str:
        return self.tool_base_url + "/lti/launch"

    @property
    def target_link_uri(self) -> str:
        return self.tool_base_url + "/lti/launch"

    @property
    def deep_link_return_url(self) -> str:
        return self.issuer + "/deep-link-return"

    def lineitems_url(self, context_id: str) -> str:
        """The gradebook columns of one LMS course (AGS line items container)."""
        return f"{self.issuer}/courses/{quote(context_id, safe='')}/line_items"

    def lineitem_url(self, context_id: str, column_id: str) -> str:
        return f"{self.lineitems_url(context_id)}/{column_id}"

    # -- registration with the tool -----------------------------------------------------------------
    def registration(self, session: Session) -> Registration | None:
        """This platform's active registration with the tool, if it is registered."""
        return session.scalar(select(Registration).where(Registration.issuer == self.issuer,
                                                         Registration.client_id == self.client_id,
                                                         Registration.status == REGISTRATION_ACTIVE))

    def is_registration(self, registration: Registration) -> bool:
        return (registration.issuer, registration.client_id) == (self.issuer, self.client_id)

    def ensure_registration(self, session: Session) -> Registration:
        """Register the sandbox platform with the tool and give every known municipality its own deployment,
        plus (unless the profile has none) one regional deployment shared by the Swedish ones (picked by the
        custom parameter)."""
        registration = self.registration(session)
        if registration is None:
            registration = add_registration(
                session, name=self.profile.registration_name, issuer=self.issuer, client_id=self.client_id,
                auth_login_url=self.auth_login_url, auth_token_url=self.auth_token_url, jwks_url=self.jwks_url)
        municipalities = list(session.scalars(select(Municipality).order_by(Municipality.id)))
        for municipality in municipalities:
            bind_deployment(session, registration, sandbox_deployment_id(municipality.id), [municipality.id])
        swedish = [m.id for m in municipalities if m.country == "SE"]
        if self.profile.regional and len(swedish) >= 2:
            bind_deployment(session, registration, SHARED_DEPLOYMENT, swedish, custom_param=SHARED_PARAM)
        return registration

    # -- login initiation (platform -> tool) --------------------------------------------------------
    def encode_hint(self, spec: LaunchSpec) -> str:
        return self._hints.dumps(asdict(spec))

    def decode_hint(self, hint: str) -> LaunchSpec:
        try:
            data = self._hints.loads(hint, max_age=3600)
        except BadSignature as exc:
            raise SandboxError("lti_message_hint is not one of ours") from exc
        return LaunchSpec(**data)

    def login_initiation(self, spec: LaunchSpec) -> dict[str, str]:
        params = {"iss": self.issuer, "login_hint": spec.user, "target_link_uri": self.target_link_uri,
                  "lti_message_hint": self.encode_hint(spec), "client_id": self.client_id,
                  "lti_deployment_id": spec.deployment_id}
        target = {"parent": "_parent", "frame": STORAGE_FRAME}.get(spec.storage)
        if target:
            params["lti_storage_target"] = target
        return params

    def login_initiation_url(self, spec: LaunchSpec) -> str:
        return self.tool_login_url + "?" + urlencode(self.login_initiation(spec))

    # -- authentication response (platform -> tool) -------------------------------------------------
    def check_auth_request(self, params: Mapping[str, str]) -> LaunchSpec:
        """Validate the tool's authentication request as the OIDC spec asks a platform to."""
        expected = {"scope": "openid", "response_type": "id_token", "response_mode": "form_post",
                    "prompt": "none", "client_id": self.client_id, "redirect_uri": self.tool_launch_url}
        for name, value in expected.items():
            if params.get(name) != value:
                raise SandboxError(f"{name} must be {value!r}, got {params.get(name)!r}")
        for name in ("state", "nonce", "login_hint", "lti_message_hint"):
            if not params.get(name):
                raise SandboxError(f"{name} missing")
        spec = self.decode_hint(params["lti_message_hint"])
        if params["login_hint"] != spec.user:
            raise SandboxError("login_hint does not match the launch")
        return spec

    def claims(self, spec: LaunchSpec, nonce: str) -> dict[str, Any]:
        now = int(time.time())
        custom = dict(spec.custom)
        if spec.course:
            custom["course"] = spec.course
        if spec.municipality_code:
            custom[SHARED_PARAM] = spec.municipality_code
        claims = {
            "iss": self.issuer,
            "aud": self.client_id,
            "sub": spec.user,
            "iat": now,
            "exp": now + 300,
            "nonce": nonce,
            CLAIM_VERSION: "1.3.0",
            CLAIM_MESSAGE_TYPE: MESSAGE_RESOURCE_LINK,
            CLAIM_DEPLOYMENT_ID: spec.deployment_id,
            CLAIM_TARGET_LINK_URI: self.target_link_uri,
            CLAIM_RESOURCE_LINK: {"id": spec.resource_link_id, "title": spec.course or "Kulturskola"},
            CLAIM_ROLES: ROLES[spec.role],
            CLAIM_CONTEXT: {"id": spec.context_id, "title": "Sandbox course",
                            "type": ["http://purl.imsglobal.org/vocab/lis/v2/course#CourseOffering"]},
            CLAIM_CUSTOM: custom,
            CLAIM_LAUNCH_PRESENTATION: {"locale": spec.locale, "document_target": "iframe",
                                        "return_url": self.base_url + "/sandbox/"},
            CLAIM_TOOL_PLATFORM: {"guid": "sandbox-platform" + (f"-{self.key}" if self.key else ""),
                                  "name": self.profile.registration_name,
                                  "product_family_code": "kulturskola-sandbox"},
        }
        if spec.name:
            claims["name"] = spec.name
        if spec.gradebook:
            claims[CLAIM_AGS] = {"scope": list(GRANTED), "lineitems": self.lineitems_url(spec.context_id)}
        if spec.message_type == MESSAGE_DEEP_LINKING:
            claims[CLAIM_MESSAGE_TYPE] = MESSAGE_DEEP_LINKING
            del claims[CLAIM_RESOURCE_LINK]
            claims[CLAIM_DEEP_LINKING_SETTINGS] = {
                "deep_link_return_url": self.deep_link_return_url, "accept_types": ["ltiResourceLink"],
                "accept_presentation_document_targets": ["iframe", "window"], "accept_multiple": spec.accept_multiple,
                "accept_lineitem": True, "data": f"sandbox-{spec.context_id}"}
        return claims

    def build_id_token(self, spec: LaunchSpec, nonce: str, *, overrides: Mapping[str, Any] | None = None,
                       headers: Mapping[str, Any] | None = None, signing_pem: bytes | None = None) -> str:
        """Sign an id_token for ``spec``. ``overrides`` replace claims (``None`` removes one);
        ``headers`` replace header fields; ``signing_pem`` signs with another key (tests)."""
        body = self.claims(spec, nonce)
        for name, value in (overrides or {}).items():
            if value is None:
                body.pop(name, None)
            else:
                body[name] = value
        key = self.keys.ensure()
        header = {"kid": key.kid, "typ": "JWT"}
        header.update(headers or {})
        return jwt.encode(body, signing_pem or key.private_pem, algorithm=header.pop("alg", "RS256"), headers=header)

    def auth_response(self, params: Mapping[str, str]) -> dict[str, str]:
        """The form the platform posts back to the tool's redirect URI."""
        spec = self.check_auth_request(params)
        fields = {"id_token": self.build_id_token(spec, params["nonce"]), "state": params["state"]}
        target = {"parent": "_parent", "frame": STORAGE_FRAME}.get(spec.storage)
        if target:
            fields["lti_storage_target"] = target  # as Canvas sends it with the launch too
        return fields

    def read_deep_link_response(self, token: str, tool_jwks: dict) -> dict:
        """Verify the tool's LtiDeepLinkingResponse as a platform would: by the tool's published keys."""
        kid = jwt.get_unverified_header(token).get("kid")
        keys = [k for k in tool_jwks.get("keys", []) if k.get("kid") == kid]
        if not keys:
            raise SandboxError("the response is signed with a key the tool does not publish")
        try:
            return jwt.decode(token, jwt.PyJWK(keys[0]).key, algorithms=["RS256"], audience=self.issuer,
                              issuer=self.client_id)
        except jwt.PyJWTError as exc:
            raise SandboxError(f"deep-linking response refused: {exc}") from exc

    def jwks(self) -> dict:
        self.keys.ensure()
        return self.keys.jwks()
