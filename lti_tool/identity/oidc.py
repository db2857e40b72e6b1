"""OpenID Connect sign-in of the second door: Feide (profile ``feide``) or any OpenID Connect provider (``oidc``).

authlib's Flask client, one per provider (kept in ``current_app.extensions``), configured from the provider's
discovery document: authorization code with PKCE (S256), a nonce, the provider's scopes (Feide: ``openid
userid-feide userinfo-name groups-org``; ``userid-nin`` is never asked for). :func:`start` sends the browser to
the provider, :func:`finish` (in the callback request) checks the answer and gives the :class:`SchoolIdentity`.

Every request authlib makes (discovery, key set, token, userinfo) goes through the outbound guard: the client's
session class, :class:`GuardedOAuth2Session`, is authlib's requests ``OAuth2Session`` and an
``outbound.OutboundSession`` at once (addresses checked, no proxies from the environment, a deadline and a size
limit, redirects checked hop by hop), with the policy of the app's settings. Feide's Groups API too
(``feide.fetch_groups``). The staff console's sign-in uses the same client class (:func:`guarded_client_kwargs`).

What :func:`finish` checks: the answer belongs to a sign-in this browser started (``state``, kept in the Flask
session by authlib) within ``SIGN_IN_TTL_SECONDS``; the ID token's signature (the provider's key set, an
asymmetric algorithm), ``iss`` (the registration's issuer), ``aud`` (the registration's client id), ``nonce``,
``exp``/``iat`` (``JWT_LEEWAY_SECONDS``), and ``at_hash`` when present; each callback is taken once (a
``sign_in_requests`` row, written in the caller's transaction). Refusals are :class:`SignInError`:

- ``signin_refused``: the provider said no (``error=access_denied``, or another error);
- ``signin_not_activated``: Feide's answer when the person's organisation has not switched the service on. Feide
  mostly shows this in its own window ("Du har ikke tilgang til denne tjenesten") and the browser never comes
  back; when it does come back, it is ``access_denied`` with a description saying so, or ``unauthorized_client``;
- ``signin_invalid``: any failed check; ``signin_replayed``: a callback taken before; ``signin_expired``;
- ``signin_unavailable`` (503): the provider or its Groups API cannot be reached (``OutboundError``);
- ``signin_no_attributes``: no user id (Feide: no ``https://n.feide.no/claims/eduPersonPrincipalName``, i.e. the
  ``userid-feide`` attribute group is not released).

The subject is the Feide user id (eduPersonPrincipalName) for ``feide``, ``sub`` for ``oidc``. A Feide sign-in
without the Feide user id is refused rather than keyed by Feide's ``sub``: the same pupil would otherwise become
a second person once the attribute group is released. No national identity number is asked for, read or kept.
"""

from __future__ import annotations

import hashlib
import re
import time
from datetime import timedelta
from typing import Any

from authlib.integrations.base_client import OAuthError
from authlib.integrations.flask_client import FlaskIntegration, FlaskOAuth2App
from authlib.integrations.requests_client import OAuth2Session
from authlib.integrations.requests_client.utils import REQUESTS_SESSION_KWARGS
from flask import Response, current_app, g, redirect, request
from flask import session as web_session
from joserfc.errors import JoseError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from .. import outbound
from ..clock import now
from ..config import settings
from ..models import IdentityProvider, SignInRequest
from . import SchoolIdentity, SignInError, feide

EXTENSION_KEY = "lti_tool.identity.oidc"
STATE_DATA_KEY = "lti_tool_oidc_state_data"
FEIDE_USER_ID = "https://n.feide.no/claims/eduPersonPrincipalName"
DEFAULT_SCOPES = "openid"
NEVER_ASKED = frozenset({"userid-nin"})  # Feide's national identity number: never asked for
METADATA_MAX_AGE_SECONDS = 3600  # the discovery document (and key set) is read again after this
# Asymmetric signatures only: an ID token "signed" with the client secret (HS256) or not at all is refused.
SIGNING_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")
# What authlib may take from a discovery document. It hands the document's keys to the session class as
# arguments, so a document could otherwise set ``scope``, ``code_challenge_method`` or requests' ``verify``.
METADATA_KEYS = frozenset({"issuer", "authorization_endpoint", "token_endpoint", "userinfo_endpoint", "jwks_uri",
                           "end_session_endpoint", "scopes_supported", "response_types_supported",
                           "grant_types_supported", "subject_types_supported", "claims_supported",
                           "code_challenge_methods_supported", "token_endpoint_auth_methods_supported",
                           "id_token_signing_alg_values_supported", "_loaded_at"})
# Words of an access_denied description that mean "your organisation has not activated this service".
_NOT_ACTIVATED = re.compile(r"activat|aktiver|not enabled|not allowed|ikke tilgang|ikkje tilgang|no access|"
                            r"not have access|not authori[sz]ed for|ikke godkjent", re.IGNORECASE)
_UNAVAILABLE = (outbound.OutboundError, OSError)  # OSError: requests' errors (raise_for_status) among them


# -- the guarded authlib client ---------------------------------------------------------------------------

class GuardedOAuth2Session(OAuth2Session, outbound.OutboundSession):
    """authlib's requests ``OAuth2Session`` whose every request goes through the outbound guard. Takes
    ``outbound_policy`` (``STRICT`` when not given) besides authlib's arguments; requests' own session settings
    (``verify``, ``proxies``, ``trust_env``, ...) are never taken from the arguments."""

    def __init__(self, *args: Any, outbound_policy: outbound.OutboundPolicy | None = None, **kwargs: Any):
        for name in REQUESTS_SESSION_KWARGS:
            kwargs.pop(name, None)
        OAuth2Session.__init__(self, *args, **kwargs)
        # requests' Session part again, guarded: adapters, no environment, no cookies, redirects checked.
        outbound.OutboundSession.__init__(self, outbound_policy or outbound.STRICT)


class GuardedOAuth2App(FlaskOAuth2App):
    """authlib's Flask OAuth 2 / OpenID Connect client over :class:`GuardedOAuth2Session`; the discovery document
    is read again after ``METADATA_MAX_AGE_SECONDS``, keeps only the keys of :data:`METADATA_KEYS`, and allows only
    asymmetric ID token signatures."""

    client_cls = GuardedOAuth2Session

    def load_server_metadata(self):  # type: ignore[no-untyped-def]
        loaded_at = self.server_metadata.get("_loaded_at")
        if isinstance(loaded_at, (int, float)) and time.time() - loaded_at > METADATA_MAX_AGE_SECONDS:
            self.server_metadata.clear()
        fresh = "_loaded_at" not in self.server_metadata
        metadata = super().load_server_metadata()
        if fresh and self._server_metadata_url:
            for key in [key for key in metadata if key not in METADATA_KEYS]:
                del metadata[key]
            offered = metadata.get("id_token_signing_alg_values_supported")
            allowed = [alg for alg in offered if alg in SIGNING_ALGORITHMS] if isinstance(offered, list) else []
            metadata["id_token_signing_alg_values_supported"] = allowed or ["RS256"]
        return metadata


def guarded_client_kwargs(**client_kwargs: Any) -> dict[str, Any]:
    """``client_kwargs`` for an authlib client of :class:`GuardedOAuth2App`: the outbound policy of the current
    app's settings added."""
    return {**client_kwargs, "outbound_policy": outbound.OutboundPolicy.from_settings(current_app.config)}


def requested_scopes(provider: IdentityProvider) -> str:
    """The provider's scopes, with ``openid`` and never ``userid-nin``."""
    scopes = [scope for scope in (provider.scopes or DEFAULT_SCOPES).split() if scope not in NEVER_ASKED]
    if "openid" not in scopes:
        scopes.insert(0, "openid")
    return " ".join(dict.fromkeys(scopes))


def get_client(provider: IdentityProvider) -> GuardedOAuth2App:
    """The provider's authlib client, made once per app (again when the provider's settings change)."""
    registration = provider.registration
    policy = outbound.OutboundPolicy.from_settings(current_app.config)
    scope = requested_scopes(provider)
    fingerprint = hashlib.sha256(repr((provider.discovery_url, registration.client_id, provider.client_secret,
                                       scope, policy)).encode()).hexdigest()
    clients: dict[int, tuple[str, GuardedOAuth2App]] = current_app.extensions.setdefault(EXTENSION_KEY, {})
    kept = clients.get(provider.id)
    if kept is not None and kept[0] == fingerprint:
        return kept[1]
    if not provider.discovery_url:
        raise SignInError(f"identity provider {provider.id} has no discovery document", code="signin_unavailable",
                          status=503)
    name = f"school-{provider.id}"
    client = GuardedOAuth2App(FlaskIntegration(name), name, client_id=registration.client_id,
                              client_secret=provider.client_secret or None,
                              server_metadata_url=provider.discovery_url,
                              client_kwargs={"scope": scope, "code_challenge_method": "S256",
                                             "outbound_policy": policy})
    clients[provider.id] = (fingerprint, client)
    return client


# -- the sign-in ------------------------------------------------------------------------------------------

def start(provider: IdentityProvider, redirect_uri: str, *, state_data: str | None = None) -> Response:
    """Send the browser to the provider (authorization code, PKCE S256, a nonce). ``state_data``: an opaque string
    the caller gets back after :func:`finish` (:func:`returned_state_data`). The state, the PKCE verifier and the
    nonce are kept in the Flask session (authlib's ``authorize_redirect``), nothing in the database."""
    client = get_client(provider)
    try:
        found = client.create_authorization_url(redirect_uri)
    except (*_UNAVAILABLE, ValueError, RuntimeError) as error:
        raise _unavailable(provider, error) from error
    client.save_authorize_data(redirect_uri=redirect_uri, state_data=state_data, started=time.time(), **found)
    return redirect(found["url"])


def finish(session: Session, provider: IdentityProvider) -> SchoolIdentity:
    """The provider's answer in the callback request, checked, as a :class:`SchoolIdentity` (raises
    :class:`SignInError`). ``session``: the database session, for the municipalities and the record that this
    callback was taken (the caller commits)."""
    client = get_client(provider)
    params = request.args if request.method == "GET" else request.form
    state = params.get("state") or ""
    data = client.framework.get_state_data(web_session, state) if state else None
    setattr(g, STATE_DATA_KEY, data.get("state_data") if isinstance(data, dict) else None)
    refused = params.get("error")
    if refused:
        if data is not None:
            client.framework.clear_state_data(web_session, state)
        raise provider_refusal(refused, params.get("error_description"))
    if data is None:
        raise SignInError("the answer belongs to no sign-in started in this browser (state)")
    started = data.get("started")
    if not isinstance(started, (int, float)) or time.time() - started > settings().sign_in_ttl_seconds:
        client.framework.clear_state_data(web_session, state)
        raise SignInError("the sign-in took too long", code="signin_expired")
    answered_by = params.get("iss")
    if answered_by is not None and answered_by != provider.registration.issuer:
        client.framework.clear_state_data(web_session, state)
        raise SignInError("the answer names another issuer (iss)")
    token = _token(client, provider)
    _take_once(session, provider, state, started)
    claims = _with_userinfo(client, provider, token, dict(token["userinfo"]))
    subject = _subject(provider, claims)
    name = claims.get("name") if isinstance(claims.get("name"), str) else None
    school, affiliations = None, frozenset[str]()
    if provider.groups_api_url:
        try:
            groups = feide.fetch_groups(provider, str(token.get("access_token") or ""))
        except outbound.OutboundError as error:
            raise _unavailable(provider, error) from error
        school, affiliations = feide.parse_groups(groups, feide.municipality_names(session))
    return SchoolIdentity(provider_id=provider.id, registration_id=provider.registration_id, subject=subject,
                          name=(name or "").strip()[:200] or None, affiliations=affiliations, school=school)


def returned_state_data() -> str | None:
    """The ``state_data`` given to :func:`start`, in the callback request (after :func:`finish`)."""
    value = g.get(STATE_DATA_KEY)
    return value if isinstance(value, str) else None


def provider_refusal(error: str, description: str | None) -> SignInError:
    """The provider's error answer (RFC 6749 4.1.2.1) as a refusal."""
    detail = f"the identity provider answered {error}" + (f": {description}" if description else "")
    if error == "unauthorized_client" or (error == "access_denied" and _NOT_ACTIVATED.search(description or "")):
        return SignInError(detail, code="signin_not_activated")
    if error in ("temporarily_unavailable", "server_error"):
        return SignInError(detail, code="signin_unavailable", status=503)
    return SignInError(detail, code="signin_refused")


def _unavailable(provider: IdentityProvider, error: BaseException) -> SignInError:
    current_app.logger.warning("identity provider %s unreachable: %s", provider.id, error)
    return SignInError(f"identity provider {provider.id} cannot be reached", code="signin_unavailable", status=503)


def _token(client: GuardedOAuth2App, provider: IdentityProvider) -> dict:
    """The token request (code, PKCE verifier, client credentials) and the ID token's checks (authlib's
    ``authorize_access_token``/``parse_id_token``, with the issuer and audience of the registration)."""
    registration = provider.registration
    options = {"iss": {"essential": True, "value": registration.issuer},
               "aud": {"essential": True, "value": registration.client_id},
               "sub": {"essential": True}}
    try:
        token = client.authorize_access_token(claims_options=options, leeway=int(settings().jwt_leeway_seconds))
    except _UNAVAILABLE as error:
        raise _unavailable(provider, error) from error
    except (OAuthError, JoseError, ValueError, KeyError, TypeError) as error:
        current_app.logger.info("sign-in at identity provider %s refused: %s: %s", provider.id,
                                error.__class__.__name__, error)
        raise SignInError(f"the identity provider's answer failed a check ({error.__class__.__name__})") from error
    if not isinstance(token, dict) or not token.get("userinfo"):
        raise SignInError("the identity provider sent no ID token")
    return token


def _take_once(session: Session, provider: IdentityProvider, state: str, started: float) -> None:
    """Record the callback (its state) as taken: a second one is a replay. In a savepoint of the caller's
    transaction, written after the provider's answer (never while the provider is being asked)."""
    record = SignInRequest(id=f"oidc:{state}"[:100], provider_id=provider.id, used_at=now(),
                           expires_at=now() + timedelta(seconds=settings().sign_in_ttl_seconds))
    try:
        with session.begin_nested():
            session.add(record)
    except IntegrityError:
        raise SignInError("this sign-in was answered before", code="signin_replayed") from None


def _with_userinfo(client: GuardedOAuth2App, provider: IdentityProvider, token: dict, claims: dict) -> dict:
    """The user id and name from the userinfo endpoint when the ID token has not got them (same ``sub`` only)."""
    missing = [claim for claim in ((FEIDE_USER_ID,) if provider.profile == "feide" else ()) + ("name",)
               if not isinstance(claims.get(claim), str) or not claims[claim]]
    if not missing or not client.load_server_metadata().get("userinfo_endpoint"):
        return claims
    try:
        info = client.userinfo(token=token)
    except _UNAVAILABLE as error:
        raise _unavailable(provider, error) from error
    except (OAuthError, ValueError, KeyError, TypeError) as error:
        raise SignInError(f"the userinfo answer failed a check ({error.__class__.__name__})") from error
    if info.get("sub") != claims.get("sub"):
        raise SignInError("the userinfo answer is about another person (sub)")
    for claim in missing:
        if isinstance(info.get(claim), str) and info[claim]:
            claims[claim] = info[claim]
    return claims


def _subject(provider: IdentityProvider, claims: dict) -> str:
    value = claims.get(FEIDE_USER_ID) if provider.profile == "feide" else claims.get("sub")
    if not isinstance(value, str) or not value.strip() or len(value) > 255:
        raise SignInError("the identity provider released no user id", code="signin_no_attributes")
    return value.strip()


__all__ = ["FEIDE_USER_ID", "GuardedOAuth2App", "GuardedOAuth2Session", "finish", "get_client",
           "guarded_client_kwargs", "provider_refusal", "requested_scopes", "returned_state_data", "start"]
