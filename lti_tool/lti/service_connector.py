"""pylti1p3's ``ServiceConnector`` for the tool: client-credentials tokens cached in the database, every request
through the outbound guard.

``DatabaseServiceConnector`` is made per database session and registration (a :class:`ToolRegistration`, so the
client assertion is signed with the tool's current key under the kid its JWKS publishes); the library's
``AssignmentsGradesService`` and ``NamesRolesProvisioningService`` call the platform through it. A token lives
in ``service_tokens`` (one row per registration and the library's scope key), shared by every worker and
process, and is handed out while it has more than a minute left; a token the connector was given serves all
of its calls (one score's delivery, one roster sync), however short its life. ``fresh`` says whether the token
``get_access_token`` handed out last was just issued (the grade outbox takes a 403 for an expired token only
when the token came from the cache); ``forget`` drops a token the platform refused.

Requests go through a ``ServiceSession`` (the library's ``requests_session``): the guarded
``outbound.OutboundSession`` with the tool's User-Agent (Canvas requires one). Every failure reaches the caller
as one ``ServiceError``: ``status`` None for no answer at all, else the platform's status, answer and
Retry-After.

Overrides of the library (name: what, why):

- ``_get_cached_access_token``, ``_cache_access_token``: the token cache is the ``service_tokens`` table (the
  library leaves both to the tool); a lifetime not given (the library passes 0) is an hour.
- ``encode_jwt``: the tool's assertion claims (``iat`` now, five minutes' lifetime, a random ``jti``): the
  library's expire after 60 s, refused by a platform whose clock runs a minute ahead.
- ``get_access_token``: failures as ``ServiceError`` (the library raises ``LtiServiceException``, and lets the
  guard's ``OutboundError`` and an answer without ``access_token`` through as they are).
- ``make_service_request``: failures as ``ServiceError`` with the platform's status, answer and Retry-After
  (the library's ``LtiServiceException`` carries only the response); a redirect the guard did not follow (it
  never replays a POST) is a failure, not the success ``requests``' ``ok`` takes it for; a successful answer
  that is not JSON (a score's ``200 OK``) is its text, where the library fails on it.
- ``ServiceSession.request`` (the session the library is given): the service calls' timeout and body limit
  (the library passes neither), and the last answer kept (``last_response``): the library hands back a call's
  parsed body, not its status nor its text, which the outbox keeps.
"""

from __future__ import annotations

import json
import time
import typing as t
import uuid
from datetime import timedelta
from typing import Any

from pylti1p3.exception import LtiServiceException
from pylti1p3.service_connector import ServiceConnector, TServiceConnectorResponse
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from .. import clock, outbound
from ..models import ServiceToken
from .platform_keys import USER_AGENT
from .tool_config import ToolRegistration

TOKEN_MARGIN = timedelta(seconds=60)  # a token is renewed this long before it expires
DEFAULT_TOKEN_LIFETIME = 3600  # seconds, when the token response gives no expires_in
ASSERTION_LIFETIME = 300  # seconds
SERVICE_MAX_BYTES = 8 * 1024 * 1024  # one answer of a platform's service (a roster page of a large course)
ANSWER_KEPT = 2000  # characters of a platform's answer kept on an error


class ServiceError(Exception):
    """A platform call failed: ``status`` is None for no answer (timeout, connection error, or an address the
    outbound guard refused); else the platform's status, its answer (``body``, at most 2000 characters) and
    its Retry-After."""

    def __init__(self, message: str, status: int | None = None, body: str = "", retry_after: str | None = None):
        super().__init__(message)
        self.status = status
        self.body = body
        self.retry_after = retry_after


def answered(what: str, response: outbound.Response) -> ServiceError:
    """The error for an answer the call cannot use: ``<what> answered <status>`` and the answer."""
    return ServiceError(f"{what} answered {response.status_code}", response.status_code,
                        response.text[:ANSWER_KEPT], response.headers.get("Retry-After"))


class ServiceSession(outbound.OutboundSession):
    """The guarded session of the service calls: the tool's User-Agent, ``timeout`` and ``max_bytes`` for every
    request (the library passes neither), and the last answer (``last_response``: the library hands back a
    call's parsed body, not its status nor its text). Like any ``requests`` session, one thread at a time."""

    def __init__(self, policy: outbound.OutboundPolicy | None = None, *, timeout: float = 10.0,
                 max_bytes: int = SERVICE_MAX_BYTES):
        super().__init__(policy or outbound.STRICT)
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.headers["User-Agent"] = USER_AGENT
        self.last_response: outbound.Response | None = None

    def request(self, method: Any, url: Any, *args: Any, **kwargs: Any) -> outbound.Response:
        kwargs.setdefault("max_bytes", self.max_bytes)
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout
        response = super().request(method, url, *args, **kwargs)
        self.last_response = response
        return response


class DatabaseServiceConnector(ServiceConnector):
    """The library's connector for one registration, with its tokens in the caller's database session (the
    session's transaction; the caller commits)."""

    def __init__(self, session: Session, registration: ToolRegistration, http: ServiceSession):
        super().__init__(registration, requests_session=http)
        self.session = session
        self.registration = registration
        self.http = http
        self.fresh = False  # the token get_access_token handed out last was just issued (not from the cache)
        self._issued: dict[str, str] = {}  # scope key -> the token this connector was given

    # -- the token cache ----------------------------------------------------------------------------------
    def _token_row(self, scope_key: str) -> ServiceToken | None:
        return self.session.get(ServiceToken, (self.registration.id, scope_key))

    def _get_cached_access_token(self, scope_key: str) -> str | None:
        """The token this connector was given (for all its calls, however short its life), else a cached one
        with more than a minute left."""
        if scope_key in self._issued:
            self.fresh = True
            return self._issued[scope_key]
        row = self._token_row(scope_key)
        usable = row is not None and row.expires_at - TOKEN_MARGIN > clock.now()
        self.fresh = not usable
        return row.access_token if row is not None and usable else None

    def _cache_access_token(self, scope_key: str, access_token: str, expires_in: float) -> None:
        try:
            lifetime = float(expires_in or DEFAULT_TOKEN_LIFETIME)
        except (TypeError, ValueError) as exc:
            raise self._unusable_token_answer() from exc
        expires = clock.now() + timedelta(seconds=lifetime)
        row = self._token_row(scope_key)
        if row is None:
            try:
                with self.session.begin_nested():
                    self.session.add(ServiceToken(registration_id=self.registration.id, scopes=scope_key,
                                                  access_token=str(access_token), expires_at=expires))
            except IntegrityError:  # another worker cached one first: ours replaces it
                row = self.session.get(ServiceToken, (self.registration.id, scope_key), populate_existing=True)
        if row is not None:
            row.access_token, row.expires_at = str(access_token), expires
        self.session.flush()
        self._issued[scope_key] = str(access_token)

    def forget(self, scopes: t.Sequence[str]) -> None:
        """Drop the cached token for these scopes (the platform refused it): the next call asks for a new one."""
        scope_key = self._scope_key(scopes)
        self._issued.pop(scope_key, None)
        row = self._token_row(scope_key)
        if row is not None:
            self.session.delete(row)
            self.session.flush()

    # -- the token request --------------------------------------------------------------------------------
    def encode_jwt(self, message: t.Dict[str, t.Union[str, int]], private_key: str,
                   headers: t.Dict[str, str]) -> str:
        """The tool's claims: the library's assertion lives 60 s (and is dated 5 s back)."""
        now = int(time.time())
        claims: t.Dict[str, t.Union[str, int]] = {
            **message, "iat": now, "exp": now + ASSERTION_LIFETIME, "jti": uuid.uuid4().hex}
        return super().encode_jwt(claims, private_key, headers)

    def get_access_token(self, scopes: t.Sequence[str]) -> str:
        """The library's, its failures as ``ServiceError``."""
        try:
            return super().get_access_token(scopes)
        except LtiServiceException as exc:
            if 200 <= exc.response.status_code < 300:  # an answer that is not JSON
                raise self._unusable_token_answer() from exc
            raise answered("token request", exc.response) from exc
        except outbound.OutboundError as exc:
            raise ServiceError(f"token request failed: {exc.reason}") from exc
        except (KeyError, TypeError) as exc:  # response["access_token"] of an answer without one
            raise self._unusable_token_answer() from exc

    def _unusable_token_answer(self) -> ServiceError:
        response = self.http.last_response
        return ServiceError("token response without access_token",
                            response.status_code if response is not None else None,
                            response.text[:ANSWER_KEPT] if response is not None else "")

    # -- service calls ------------------------------------------------------------------------------------
    def make_service_request(
        self,
        scopes: t.Sequence[str],
        url: str,
        *,
        is_post: bool = False,
        data: t.Optional[str] = None,
        content_type: str = "application/json",
        accept: str = "application/json",
        case_insensitive_headers: bool = False,
    ) -> TServiceConnectorResponse:
        """The library's, its failures as ``ServiceError``; a redirect not followed is one; a successful
        answer that is not JSON is its text."""
        what = f"{'POST' if is_post else 'GET'} {url}"
        self.http.last_response = None
        try:
            answer = super().make_service_request(
                scopes, url, is_post=is_post, data=data, content_type=content_type, accept=accept,
                case_insensitive_headers=case_insensitive_headers)
        except LtiServiceException as exc:
            raise answered(what, exc.response) from exc
        except outbound.OutboundError as exc:
            raise ServiceError(f"{what}: {exc.reason}") from exc
        except json.JSONDecodeError:  # r.json() of an answer that is not JSON (requests' error is one)
            response = self.http.last_response
            if response is None:
                raise
            if not 200 <= response.status_code < 300:
                raise answered(what, response) from None
            return {"headers": response.headers if case_insensitive_headers else dict(response.headers),
                    "body": response.text, "next_page_url": None}
        response = self.http.last_response
        assert response is not None  # the call's answer
        if not 200 <= response.status_code < 300:
            raise answered(what, response)
        return answer
