"""OIDC third-party initiated login and id_token validation: every check of LTI 1.3 Core and the
1EdTech Security Framework, each failing with a stable error code.

Order of the launch checks (the first that fails decides the code):
state present and bound to this browser (its cookie, or the same value read back from the platform's storage
by the tool's own page) -> login record known -> id_token well-formed (a compact JWS with JSON header and
claims; no ``crit`` extension, no unencoded payload) -> issuer and
audience of the login's registration -> RS256 with a known ``kid`` (JWKS fetched again once) ->
signature -> exp / iat / nbf within the leeway -> nonce issued for this state and not used -> LTI claims.
The nonce is consumed (atomically, once) by the caller only after the deployment and the home
municipality have been accepted too, so a refused launch leaves nothing behind.
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
from typing import Any, Callable, Mapping
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from jwt.algorithms import RSAAlgorithm
from jwt.utils import base64url_decode
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..domain.claims import LaunchClaims, check_audience, check_times, is_own_url, parse_launch_claims
from ..domain.errors import LaunchError
from ..models import REGISTRATION_ACTIVE, Registration
from .platform_keys import PlatformKeys
from .storage import LoginRecord, LoginStore

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


def find_login_registration(session: Session, params: Mapping[str, str],
                            registration_id: int | None) -> Registration:
    """The registration a login is for. Login parameters are unsigned: they route, never decide."""
    issuer = _param(params, "iss")
    client_id = _param(params, "client_id")
    if registration_id is not None:
        registration = session.get(Registration, registration_id)
        if registration is None or registration.issuer != issuer or (client_id and registration.client_id != client_id):
            raise LaunchError(f"registration {registration_id} does not match iss={issuer!r}",
                              code="registration_unknown")
        return _approved(registration)
    query = select(Registration).where(Registration.issuer == issuer)
    if client_id:
        query = query.where(Registration.client_id == client_id)
    candidates = session.scalars(query).all()
    if not candidates:
        raise LaunchError(f"no registration for iss={issuer!r} client_id={client_id!r}", code="registration_unknown")
    # Only active registrations route: a pending one (a dynamic registration, perhaps a look-alike or a
    # re-registration of an active one) never takes a login, nor makes the issuer's logins ambiguous.
    active = [c for c in candidates if c.status == REGISTRATION_ACTIVE]
    if len(active) > 1:
        raise LaunchError(f"iss={issuer!r} has several registrations; the login needs client_id or the "
                          f"registration-specific login URL", code="registration_ambiguous")
    return _approved(active[0] if active else candidates[0])


def _approved(registration: Registration) -> Registration:
    """Only an active registration takes part in a login or a launch."""
    if registration.status != REGISTRATION_ACTIVE:
        raise LaunchError(f"registration {registration.id} waits for approval", code="registration_pending",
                          status=403)
    return registration


def start_login(session: Session, store: LoginStore, params: Mapping[str, str], *, base_url: str,
                redirect_uri: str, ttl: timedelta, registration_id: int | None = None,
                relaunch: bool = False) -> LoginRedirect:
    """Check a login initiation request and build the authentication request to the platform.
    ``relaunch``: the same login started again at top level, in a new window."""
    missing = [name for name in ("iss", "login_hint", "target_link_uri") if not _param(params, name)]
    if missing:
        raise LaunchError(f"login without {', '.join(missing)}", code="login_invalid")
    target = _param(params, "target_link_uri")
    if not is_own_url(target, base_url):
        raise LaunchError(f"target_link_uri {target!r} is not this tool", code="target_link_uri_invalid")
    registration = find_login_registration(session, params, registration_id)

    state = secrets.token_urlsafe(32)
    nonce = secrets.token_urlsafe(32)
    storage_target = None if relaunch else parse_storage_target(_param(params, "lti_storage_target"))
    kept = {name: _param(params, name) for name in RELAUNCH_PARAMS if _param(params, name)}
    store.save(session, state, nonce, registration.id, ttl, storage_target=storage_target, relaunch=relaunch,
               params=kept)

    query = {
        "scope": "openid",
        "response_type": "id_token",
        "response_mode": "form_post",
        "prompt": "none",
        "client_id": registration.client_id,
        "redirect_uri": redirect_uri,
        "login_hint": _param(params, "login_hint"),
        "state": state,
        "nonce": nonce,
    }
    if _param(params, "lti_message_hint"):
        query["lti_message_hint"] = _param(params, "lti_message_hint")
    parts = urlsplit(registration.auth_login_url)
    existing = parse_qsl(parts.query, keep_blank_values=True)
    url = urlunsplit(parts._replace(query=urlencode(existing + list(query.items()))))
    return LoginRedirect(url=url, state=state, cookie_name=STATE_COOKIE_PREFIX + state, registration=registration,
                         storage_target=storage_target)


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


def _token_of(form: Mapping[str, str], parsed: ParsedToken | None) -> ParsedToken:
    """The form's id_token, decoded (``parsed`` when the caller already decoded this very token)."""
    id_token = _param(form, "id_token")
    if not id_token:
        raise LaunchError("launch without id_token", code="token_missing")
    if parsed is None or not parsed.is_of(id_token):
        parsed = parse_token(id_token)
    if parsed is None:
        raise LaunchError("id_token malformed: not a signed JWT with JSON header and claims",
                          code="token_malformed")
    return parsed


_RS256 = RSAAlgorithm(RSAAlgorithm.SHA256)


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
        """``storage_value``: the state as the tool's page read it back from the platform's storage, which
        binds the state to this browser in place of the cookie. ``login``: the login record of the form's
        state when the caller has read it already. ``parsed``: the form's id_token as the caller has parsed it
        for this request already. ``on_registration``: called with the login's registration as soon as it is
        known (before the token's own checks), e.g. to let that platform frame the answer, refusals too."""
        if _param(form, "error"):
            raise LaunchError(f"platform returned error {form.get('error')!r}: {form.get('error_description')!r}",
                              code="platform_error")
        login = self._bound_login(session, form, cookies, storage_value, login)
        parsed = _token_of(form, parsed)
        header, body = parsed.header, dict(parsed.body)

        registration = session.get(Registration, login.registration_id)
        if registration is None:
            raise LaunchError("registration removed since login", code="registration_unknown")
        _approved(registration)
        if on_registration is not None:
            on_registration(registration)
        check_header(header)
        if body.get("iss") != registration.issuer:
            raise LaunchError(f"iss {body.get('iss')!r} is not {registration.issuer!r}", code="issuer_invalid")
        check_audience(body.get("aud"), body.get("azp"), registration.client_id)
        self._check_signature(session, registration, parsed)
        check_times(body, time.time(), self.leeway)
        check_nonce(body, login)

        claims = parse_launch_claims(body, client_id=registration.client_id, base_url=self.base_url)
        log.debug("verified id_token: %s", json.dumps({"iss": claims.issuer, "deployment_id": claims.deployment_id,
                                                        "message_type": claims.message_type}))
        return VerifiedLaunch(registration_id=registration.id, claims=claims, login=login)

    def _bound_login(self, session: Session, form: Mapping[str, str], cookies: Mapping[str, str],
                     storage_value: str | None, login: LoginRecord | None) -> LoginRecord:
        """The login record of the form's state, once the state is shown to belong to this browser (the value
        read back from the platform's storage, else the state cookie)."""
        state = _param(form, "state")
        if not state:
            raise LaunchError("launch without state", code="state_missing")
        if storage_value is not None:
            if not secrets.compare_digest(storage_value.encode(), state.encode()):
                raise LaunchError("state not bound to this browser (platform storage holds another value)",
                                  code="state_invalid")
        elif not state_cookie_matches(cookies, state):
            raise LaunchError("state not bound to this browser (no matching cookie)", code="state_invalid")
        if login is None or login.state != state:
            login = self.store.get(session, state)
        if login is None:
            raise LaunchError("state unknown or expired", code="state_invalid")
        return login

    def _check_signature(self, session: Session, registration: Registration, parsed: ParsedToken) -> None:
        """RS256 only, with the platform key the header's ``kid`` names."""
        header = parsed.header
        if header.get("alg") != "RS256":
            raise LaunchError(f"alg {header.get('alg')!r} is not RS256", code="signature_invalid")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise LaunchError("id_token header has no kid", code="key_unknown")
        key = self.keys.get_key(session, registration.jwks_url, kid)
        try:
            valid = _RS256.verify(parsed.signing_input, key, parsed.signature)
        except (TypeError, ValueError) as exc:
            raise LaunchError(f"id_token rejected: {exc}", code="token_malformed") from exc
        if not valid:
            raise LaunchError("id_token signature does not verify", code="signature_invalid")

    def consume(self, session: Session, verified: VerifiedLaunch) -> None:
        """Use the nonce, once: a second launch with the same id_token, on any worker, is refused."""
        if not self.store.consume(session, verified.login.state, verified.login.nonce):
            raise LaunchError("nonce already used (replayed id_token)", code="nonce_replayed")
