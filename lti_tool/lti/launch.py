"""OIDC third-party initiated login and id_token validation on pylti1p3 (``ToolOIDCLogin``,
``ToolMessageLaunch``): every check of LTI 1.3 Core and the 1EdTech Security Framework, each failing with a
stable error code.

Order of the launch checks (the library's ``MessageLaunch.validate``; the first that fails decides the code):
state present and bound to this browser (its cookie, or the same value read back from the platform's storage
by the tool's own page) and its login record known -> id_token well-formed (a compact JWS with JSON header and
claims) -> nonce issued for this login and not used -> the login's registration, active; no ``crit``
extension, no unencoded payload; issuer and audience (``azp`` when several) -> RS256 with a known ``kid``
(key set fetched again once) -> signature -> exp / iat / nbf within the leeway -> LTI claims, then the
library's message validators. The nonce is consumed (atomically, once) by the caller only after the
deployment and the home municipality have been accepted too, so a refused launch leaves nothing behind.
"""

from __future__ import annotations

import binascii
import json
import logging
import re
import secrets
import time
from dataclasses import dataclass, field
from datetime import timedelta
from types import MappingProxyType
from typing import Any, Callable, Mapping, cast

from jwt.utils import base64url_decode
from pylti1p3.cookie import CookieService
from pylti1p3.exception import LtiException
from pylti1p3.message_launch import MessageLaunch
from pylti1p3.message_validators import get_validators
from pylti1p3.oidc_login import OIDCLogin
from pylti1p3.redirect import Redirect
from pylti1p3.registration import Registration as LibraryRegistration
from pylti1p3.request import Request
from pylti1p3.session import SessionService
from sqlalchemy.orm import Session

from ..domain.claims import LaunchClaims, check_audience, check_times, is_own_url, parse_launch_claims
from ..domain.errors import ClaimError, LaunchError
from ..models import Registration
from .platform_keys import PlatformKeys
from .storage import LoginRecord, LoginStore
from .tool_config import DatabaseToolConf, ToolRegistration, require_active

log = logging.getLogger(__name__)

STATE_COOKIE_PREFIX = "lti_state_"
STORAGE_KEY_PREFIX = "state_"
# The login parameters kept to start the same login again in a new window (routing only, no personal data
# beyond the platform's opaque hints).
RELAUNCH_PARAMS = ("iss", "login_hint", "target_link_uri", "lti_message_hint", "client_id", "lti_deployment_id")
_FRAME_NAME = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")


@dataclass(frozen=True)
class LoginRedirect:
    url: str
    state: str
    cookie_name: str
    registration: Registration
    storage_target: str | None = None


def state_cookie_matches(cookies: Mapping[str, str], state: str) -> bool:
    """Does this browser hold the state cookie its login set?"""
    return bool(state) and secrets.compare_digest(cookies.get(STATE_COOKIE_PREFIX + state, "").encode(),
                                                  state.encode())


def parse_storage_target(value: str | None) -> str | None:
    """``lti_storage_target``: a frame name (``_parent`` or a named frame of the platform), nothing else."""
    value = (value or "").strip()
    return value if _FRAME_NAME.match(value) else None


@dataclass(frozen=True)
class VerifiedLaunch:
    registration_id: int
    claims: LaunchClaims
    login: LoginRecord


def _param(params: Mapping[str, str], name: str) -> str:
    value = params.get(name)
    return value.strip() if isinstance(value, str) else ""


# -- pylti1p3's services, on the tool's request, cookies and login store ------------------------------------
class ToolRequest(Request):
    """The request as pylti1p3 reads it: the login's or launch's parameters (query or form), stripped."""

    def __init__(self, params: Mapping[str, str], *, secure: bool = True):
        super().__init__()
        self._params = params
        self._secure = secure

    @property
    def session(self) -> Any:
        raise NotImplementedError("the tool keeps no launch data in a framework session")

    def is_secure(self) -> bool:
        return self._secure

    def get_param(self, key: str) -> str:
        return _param(self._params, key)


class StateCookies(CookieService):
    """pylti1p3's cookie service: the state cookie is read from the request; the one the login sets is
    collected (``to_set``) for the web layer, which sets it with the tool's attributes (Secure, HttpOnly,
    SameSite=None, Partitioned) and the login's lifetime."""

    def __init__(self, cookies: Mapping[str, str]):
        self.cookies = cookies
        self.to_set: dict[str, str] = {}

    def get_cookie(self, name: str) -> str | None:
        return self.cookies.get(STATE_COOKIE_PREFIX + name)

    def set_cookie(self, name: str, value: str | int, exp: int | None = 3600) -> None:
        self.to_set[STATE_COOKIE_PREFIX + name] = str(value)


class LoginRecords(SessionService):
    """pylti1p3's session service over the tool's login store (database or Redis, shared by every worker):
    the nonce the library makes and the state parameters it passes become one login record. The launch reads
    that record itself (``ToolMessageLaunch.validate_state``) and consumes its nonce only after admission, so
    the library's session-based state and nonce checks are not used."""

    def __init__(self, session: Session, store: LoginStore, ttl: timedelta):
        self.session = session
        self.store = store
        self.ttl = ttl
        self.nonce: str | None = None
        self.state: str | None = None

    def save_nonce(self, nonce: str) -> None:
        self.nonce = nonce

    def save_state_params(self, state: str, params: dict[str, object]) -> None:
        assert self.nonce is not None, "the library saves the nonce before the state"
        self.state = state
        kept = params.get("params")
        target = params.get("storage_target")
        self.store.save(self.session, state, self.nonce, int(cast(int, params["registration_id"])), self.ttl,
                        storage_target=target if isinstance(target, str) else None,
                        relaunch=bool(params.get("relaunch")),
                        params=cast(dict[str, str], kept) if isinstance(kept, dict) else None)

    def check_nonce(self, nonce: str) -> bool:
        raise NotImplementedError("the launch checks the nonce against its login record")

    def check_state_is_valid(self, state: str, id_token_hash: str) -> bool:
        raise NotImplementedError("the launch binds the state by cookie or platform storage")


class _Redirect(Redirect[str]):
    """The authentication request's URL; the web layer answers with a redirect or a platform-storage page."""

    def __init__(self, url: str):
        self.url = url

    def do_redirect(self) -> str:
        return self.url

    def do_js_redirect(self) -> str:
        return self.url

    def set_redirect_url(self, location: str) -> None:
        self.url = location

    def get_redirect_url(self) -> str:
        return self.url


class ToolOIDCLogin(OIDCLogin[ToolRequest, DatabaseToolConf, LoginRecords, StateCookies, str]):
    """The library's third-party initiated login. Overrides: the login is checked further (``target_link_uri``
    is this tool; a registration-specific login URL picks its registration; only an active registration
    logs in), state and nonce are 256-bit ``secrets`` tokens, and the login record keeps the platform-storage
    target and the routing parameters for a relaunch in a new window."""

    def __init__(self, request: ToolRequest, tool_config: DatabaseToolConf, *, session_service: LoginRecords,
                 cookie_service: StateCookies, base_url: str, registration_id: int | None = None,
                 relaunch: bool = False):
        super().__init__(request, tool_config, session_service=session_service, cookie_service=cookie_service)
        self.base_url = base_url
        self.registration_id = registration_id
        self.relaunch = relaunch
        self.storage_target: str | None = None
        self.registration_row: Registration | None = None

    def get_redirect(self, url: str) -> Redirect[str]:
        return _Redirect(url)

    def _get_uuid(self) -> str:
        return secrets.token_urlsafe(32)

    def _generate_nonce(self) -> str:
        return secrets.token_urlsafe(32)

    def validate_oidc_login(self) -> LibraryRegistration:
        params = self._request
        missing = [name for name in ("iss", "login_hint", "target_link_uri") if not params.get_param(name)]
        if missing:
            raise LaunchError(f"login without {', '.join(missing)}", code="login_invalid")
        target = params.get_param("target_link_uri")
        if not is_own_url(target, self.base_url):
            raise LaunchError(f"target_link_uri {target!r} is not this tool", code="target_link_uri_invalid")
        if self.registration_id is not None:
            registration = self._registration_by_id(self.registration_id)
        else:
            registration = cast(ToolRegistration, super().validate_oidc_login())
        self.registration_row = registration.row
        self.storage_target = None if self.relaunch else parse_storage_target(params.get_param("lti_storage_target"))
        kept = {name: params.get_param(name) for name in RELAUNCH_PARAMS if params.get_param(name)}
        self.pass_params_to_launch({"registration_id": registration.id, "storage_target": self.storage_target,
                                    "relaunch": self.relaunch, "params": kept})
        return registration

    def _registration_by_id(self, registration_id: int) -> ToolRegistration:
        """The registration of a registration-specific login URL, if the login's issuer (and client id) are its:
        login parameters are unsigned, they route, never decide."""
        issuer, client_id = self._request.get_param("iss"), self._request.get_param("client_id")
        row = self._tool_config.session.get(Registration, registration_id)
        if row is None or row.issuer != issuer or (client_id and row.client_id != client_id):
            raise LaunchError(f"registration {registration_id} does not match iss={issuer!r}",
                              code="registration_unknown")
        return self._tool_config.registration(require_active(row))


def start_login(session: Session, store: LoginStore, params: Mapping[str, str], *, base_url: str,
                redirect_uri: str, ttl: timedelta, registration_id: int | None = None,
                relaunch: bool = False) -> LoginRedirect:
    """Check a login initiation request and build the authentication request to the platform, through
    :class:`ToolOIDCLogin`. ``relaunch``: the same login started again at top level, in a new window."""
    records = LoginRecords(session, store, ttl)
    cookies = StateCookies({})
    login = ToolOIDCLogin(ToolRequest(params), DatabaseToolConf(session), session_service=records,
                          cookie_service=cookies, base_url=base_url, registration_id=registration_id,
                          relaunch=relaunch)
    url = login.get_redirect_object(redirect_uri).get_redirect_url()
    assert records.state is not None and login.registration_row is not None
    return LoginRedirect(url=url, state=records.state, cookie_name=STATE_COOKIE_PREFIX + records.state,
                         registration=login.registration_row, storage_target=login.storage_target)


@dataclass(frozen=True)
class ParsedToken:
    """An id_token split and decoded: header, claims, and what the signature covers. Made anew by every
    :func:`parse_token` call and never cached here (it holds a pupil's ``sub``): the web layer keeps one for
    the request that carried the token. ``header`` and ``body`` are read-only views of the call's own dicts."""

    header: Mapping[str, Any]
    body: Mapping[str, Any]
    signing_input: bytes
    signature: bytes
    token: str = field(repr=False, default="")

    def is_of(self, id_token: str) -> bool:
        return secrets.compare_digest(self.token.encode("ascii"), id_token.encode("ascii", "replace"))


def parse_token(id_token: str) -> ParsedToken | None:
    """Split and decode a compact JWS without any check (None when it is not one)."""
    try:
        header_b64, body_b64, signature_b64 = id_token.encode("ascii").split(b".")
        header = json.loads(base64url_decode(header_b64))
        body = json.loads(base64url_decode(body_b64))
        signature = base64url_decode(signature_b64)
    except (ValueError, UnicodeError, binascii.Error):
        return None
    if not isinstance(header, dict) or not isinstance(body, dict):
        return None
    return ParsedToken(MappingProxyType(header), MappingProxyType(body), header_b64 + b"." + body_b64, signature,
                       id_token)


def check_header(header: Mapping[str, Any]) -> None:
    """The JOSE header. RFC 7515 (4.1.11): a ``crit`` naming an extension the recipient does not understand
    makes the JWS invalid, and this tool understands none, so any ``crit`` is refused (a malformed one too:
    not a non-empty list of names). RFC 7797's ``b64: false`` (an unencoded payload) changes what the signature
    covers: refused."""
    if "crit" in header:
        crit = header["crit"]
        if not isinstance(crit, list) or not crit or not all(isinstance(name, str) and name for name in crit):
            raise LaunchError(f"id_token header has a malformed crit {crit!r}", code="token_malformed")
        raise LaunchError(f"id_token header names extensions this tool does not support: {crit!r}",
                          code="token_malformed")
    if "b64" in header and header["b64"] is not True:
        raise LaunchError(f"id_token header has b64={header['b64']!r} (unencoded payload)", code="token_malformed")


def check_nonce(body: Mapping[str, Any], login: LoginRecord) -> None:
    """The token's nonce is the one issued for this login, and that login has not launched yet."""
    nonce = body.get("nonce")
    if not isinstance(nonce, str) or not nonce:
        raise LaunchError("id_token without nonce", code="nonce_missing")
    if not secrets.compare_digest(nonce, login.nonce):
        raise LaunchError("nonce was not issued for this login", code="nonce_invalid")
    if login.used:
        raise LaunchError("nonce already used (replayed id_token)", code="nonce_replayed")


# Claims the launch checks itself, with its own error codes (``check_times``, ``check_audience``,
# ``parse_launch_claims``): PyJWT verifies the signature only.
_SIGNATURE_ONLY: dict[str, Any] = {"verify_signature": True, "verify_aud": False, "verify_exp": False,
                                   "verify_iat": False, "verify_nbf": False, "verify_iss": False,
                                   "verify_sub": False, "verify_jti": False}


class ToolMessageLaunch(MessageLaunch[ToolRequest, DatabaseToolConf, LoginRecords, StateCookies]):
    """The library's message launch: its ``validate()`` runs state -> format -> nonce -> registration ->
    signature -> deployment -> message -> save. Each step is overridden only where the library falls short:

    - ``validate_state``: the state is bound to this browser by its cookie or by the value read back from the
      platform's storage (LTI client-side OIDC), and names a login record of the shared store;
    - ``validate_jwt_format``: a compact JWS with JSON header and claims, no ``crit``, no unencoded payload;
    - ``validate_nonce``: the nonce is the one issued for this login and not used (it is used, once, after
      admission: :meth:`LaunchValidator.consume`);
    - ``validate_registration``: the login's registration (not a second lookup), active, its issuer, and an
      ``aud`` with several values needs ``azp``;
    - ``get_public_key``: RS256 only, the platform's key set cached by its headers with a per-kid refetch
      (:mod:`.platform_keys`), the parsed key kept per worker;
    - ``validate_jwt_signature``: the library's signature check, then ``exp``/``iat``/``nbf`` with leeway;
    - ``validate_deployment``: left to the admission (an unknown deployment is kept pending for staff);
    - ``validate_message``: the tool's typed claims (:func:`parse_launch_claims`) before the library's
      message validators (not for deep linking, whose settings the tool judges itself, nor the data privacy
      launch, which the library knows only by an older name);
    - ``save_launch_data``: nothing kept in a session (a pupil's claims are not stored beyond the launch).
    Every failure is a :class:`LaunchError` with the tool's stable code."""

    def __init__(self, request: ToolRequest, tool_config: DatabaseToolConf, *, validator: "LaunchValidator",
                 cookies: StateCookies, storage_value: str | None, login: LoginRecord | None,
                 parsed: ParsedToken | None, on_registration: Callable[[Registration], None] | None):
        super().__init__(request, tool_config, session_service=LoginRecords(tool_config.session, validator.store,
                                                                            timedelta(0)),
                         cookie_service=cookies, requests_session=validator.keys.http)
        self.validator = validator
        self.storage_value = storage_value
        self.login = login
        self.parsed = parsed
        self.on_registration = on_registration
        self.claims: LaunchClaims | None = None
        self.set_jwt_verify_options(cast(Any, _SIGNATURE_ONLY))

    def _get_request_param(self, key: str) -> str:
        return self._request.get_param(key)

    def _body(self) -> dict[str, Any]:
        return cast(dict[str, Any], self._jwt.get("body", {}))

    def validate_state(self) -> "ToolMessageLaunch":
        if self._get_request_param("error"):
            raise LaunchError(f"platform returned error {self._get_request_param('error')!r}: "
                              f"{self._get_request_param('error_description')!r}", code="platform_error")
        state = self._get_request_param("state")
        if not state:
            raise LaunchError("launch without state", code="state_missing")
        if self.storage_value is not None:
            if not secrets.compare_digest(self.storage_value.encode(), state.encode()):
                raise LaunchError("state not bound to this browser (platform storage holds another value)",
                                  code="state_invalid")
        elif not secrets.compare_digest((self._cookie_service.get_cookie(state) or "").encode(), state.encode()):
            raise LaunchError("state not bound to this browser (no matching cookie)", code="state_invalid")
        if self.login is None or self.login.state != state:
            self.login = self.validator.store.get(self._tool_config.session, state)
        if self.login is None:
            raise LaunchError("state unknown or expired", code="state_invalid")
        return self

    def validate_jwt_format(self) -> "ToolMessageLaunch":
        id_token = self._get_request_param("id_token")
        if not id_token:
            raise LaunchError("launch without id_token", code="token_missing")
        if self.parsed is None or not self.parsed.is_of(id_token):
            self.parsed = parse_token(id_token)
        if self.parsed is None:
            raise LaunchError("id_token malformed: not a signed JWT with JSON header and claims",
                              code="token_malformed")
        self._jwt = cast(Any, {"header": dict(self.parsed.header), "body": dict(self.parsed.body)})
        return self

    def validate_nonce(self) -> "ToolMessageLaunch":
        assert self.login is not None  # validate_state found it
        check_nonce(self._body(), self.login)
        return self

    def validate_registration(self) -> "ToolMessageLaunch":
        assert self.login is not None and self.parsed is not None
        registration = self._tool_config.registration_by_id(self.login.registration_id)
        require_active(registration.row)
        self._registration = registration
        if self.on_registration is not None:
            self.on_registration(registration.row)
        check_header(self.parsed.header)
        body = self._body()
        if body.get("iss") != registration.row.issuer:
            raise LaunchError(f"iss {body.get('iss')!r} is not {registration.row.issuer!r}", code="issuer_invalid")
        check_audience(body.get("aud"), body.get("azp"), registration.row.client_id)
        return self

    def get_public_key(self) -> tuple[Any, str]:
        assert self.parsed is not None and isinstance(self._registration, ToolRegistration)
        header = self.parsed.header
        if header.get("alg") != "RS256":
            raise LaunchError(f"alg {header.get('alg')!r} is not RS256", code="signature_invalid")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise LaunchError("id_token header has no kid", code="key_unknown")
        key = self.validator.keys.get_key(self._tool_config.session, self._registration.row.jwks_url, kid)
        return key, "RS256"

    def validate_jwt_signature(self) -> "ToolMessageLaunch":
        try:
            super().validate_jwt_signature()
        except LtiException as exc:
            raise LaunchError(f"id_token rejected: {exc}", code="signature_invalid") from exc
        check_times(self._body(), time.time(), self.validator.leeway)
        return self

    def validate_deployment(self) -> "ToolMessageLaunch":
        """The deployment is the admission's to judge (``services.admission``): an unknown one is kept pending
        for national staff, an inactive one refused, each with its own code."""
        return self

    def validate_message(self) -> "ToolMessageLaunch":
        assert self._registration is not None
        client_id = self._registration.get_client_id() or ""
        self.claims = parse_launch_claims(self._body(), client_id=client_id, base_url=self.validator.base_url)
        if self.claims.deep_linking is not None or not any(
                validator.can_validate(self._body()) for validator in get_validators()):  # type: ignore[no-untyped-call]
            # The deep-linking settings are the tool's to judge (a platform that takes no resource links gets a
            # page saying so, not a refusal); the library knows the data privacy launch by an older name.
            return self
        try:
            super().validate_message()
        except LtiException as exc:
            raise ClaimError(f"message refused: {exc}", code="claim_invalid") from exc
        return self

    def save_launch_data(self) -> "ToolMessageLaunch":
        """Nothing is kept in a session: the launch is recorded by the service, pseudonymously."""
        return self


class LaunchValidator:
    def __init__(self, store: LoginStore, keys: PlatformKeys, *, base_url: str, leeway: float):
        self.store = store
        self.keys = keys
        self.base_url = base_url
        self.leeway = leeway

    def verify(self, session: Session, form: Mapping[str, str], cookies: Mapping[str, str], *,
               storage_value: str | None = None, login: LoginRecord | None = None,
               parsed: ParsedToken | None = None,
               on_registration: Callable[[Registration], None] | None = None) -> VerifiedLaunch:
        """Validate a launch with :class:`ToolMessageLaunch`. ``storage_value``: the state as the tool's page
        read it back from the platform's storage, which binds the state to this browser in place of the
        cookie. ``login``: the login record of the form's state when the caller has read it already.
        ``parsed``: the form's id_token as the caller has parsed it for this request already.
        ``on_registration``: called with the login's registration as soon as it is known (before the token's
        own checks), e.g. to let that platform frame the answer, refusals too."""
        launch = ToolMessageLaunch(ToolRequest(form), DatabaseToolConf(session), validator=self,
                                   cookies=StateCookies(cookies), storage_value=storage_value, login=login,
                                   parsed=parsed, on_registration=on_registration)
        try:
            launch.validate()
        except LtiException as exc:  # a library check the overrides do not cover
            raise LaunchError(f"launch refused: {exc}", code="launch_invalid") from exc
        assert launch.claims is not None and launch.login is not None and launch._registration is not None
        claims = launch.claims
        log.debug("verified id_token: %s", json.dumps({"iss": claims.issuer, "deployment_id": claims.deployment_id,
                                                        "message_type": claims.message_type}))
        return VerifiedLaunch(registration_id=cast(ToolRegistration, launch._registration).id, claims=claims,
                              login=launch.login)

    def consume(self, session: Session, verified: VerifiedLaunch) -> None:
        """Use the nonce, once: a second launch with the same id_token, on any worker, is refused."""
        if not self.store.consume(session, verified.login.state, verified.login.nonce):
            raise LaunchError("nonce already used (replayed id_token)", code="nonce_replayed")
