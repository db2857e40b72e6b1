"""LTI Advantage service calls: OAuth 2 client-credentials tokens (cached per registration and scopes),
Assignment and Grade Services line items and scores, Names and Role Provisioning memberships."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit, parse_qsl

import jwt
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from .. import outbound
from ..models import Registration, ServiceToken
from .keys import KeyStore
from .platform_keys import USER_AGENT

MEDIA_LINEITEM = "application/vnd.ims.lis.v2.lineitem+json"
MEDIA_LINEITEMS = "application/vnd.ims.lis.v2.lineitemcontainer+json"
MEDIA_SCORE = "application/vnd.ims.lis.v1.score+json"
MEDIA_MEMBERSHIPS = "application/vnd.ims.lti-nrps.v2.membershipcontainer+json"
TOKEN_MARGIN = timedelta(seconds=60)  # a token is renewed this long before it expires
SERVICE_MAX_BYTES = 8 * 1024 * 1024  # one answer of a platform's service (a roster page of a large course)


class ServiceError(Exception):
    """A platform call failed: ``status`` is None for no answer (timeout, connection error, or an address the
    outbound guard refused)."""

    def __init__(self, message: str, status: int | None = None, body: str = "", retry_after: str | None = None):
        super().__init__(message)
        self.status = status
        self.body = body
        self.retry_after = retry_after


def scores_url(lineitem_url: str) -> str:
    """``<lineitem>/scores`` built by URL parsing: a line-item URL may carry a query string."""
    parts = urlsplit(lineitem_url)
    return urlunsplit(parts._replace(path=parts.path.rstrip("/") + "/scores"))


def with_query(url: str, **params: str) -> str:
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True) + list(params.items())
    return urlunsplit(parts._replace(query=urlencode(query)))


@dataclass
class ServiceClient:
    """Calls the platforms' services through the outbound guard: ``policy`` is the app's
    (``get_lti().outbound``); without one, ``outbound.STRICT``."""

    keys: KeyStore
    timeout: float = 10.0
    http: outbound.OutboundSession | None = None
    token_requests: int = 0  # new tokens asked for; grades.deliver reads it to know a token came from the cache
    policy: outbound.OutboundPolicy | None = None

    def __post_init__(self) -> None:
        if self.http is None:
            self.http = outbound.session(self.policy)
        self.http.headers["User-Agent"] = USER_AGENT  # Canvas requires one on service calls

    def _session(self) -> outbound.OutboundSession:
        assert self.http is not None  # made in __post_init__
        return self.http

    # -- tokens -----------------------------------------------------------------------------------------
    def _assertion(self, registration: Registration) -> str:
        key = self.keys.current()
        now = int(time.time())
        claims = {"iss": registration.client_id, "sub": registration.client_id,
                  "aud": registration.token_audience or registration.auth_token_url,
                  "iat": now, "exp": now + 300, "jti": uuid.uuid4().hex}
        return jwt.encode(claims, key.private_pem, algorithm="RS256", headers={"kid": key.kid})

    def token(self, session: Session, registration: Registration, scopes: list[str]) -> str:
        """An access token for exactly these scopes: from the cache while it has a minute left, else new."""
        scope = " ".join(sorted(set(scopes)))
        now = datetime.now(timezone.utc)
        cached = session.get(ServiceToken, (registration.id, scope))
        if cached is not None and cached.expires_at - TOKEN_MARGIN > now:
            return cached.access_token
        self.token_requests += 1
        try:
            response = self._session().post(registration.auth_token_url, data={
                "grant_type": "client_credentials",
                "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                "client_assertion": self._assertion(registration), "scope": scope}, timeout=self.timeout,
                max_bytes=SERVICE_MAX_BYTES)
        except outbound.OutboundError as exc:
            raise ServiceError(f"token request failed: {exc.reason}") from exc
        if response.status_code != 200:
            raise ServiceError(f"token request answered {response.status_code}", response.status_code,
                               response.text[:2000], response.headers.get("Retry-After"))
        try:
            body = response.json()
            access_token = str(body["access_token"])
            lifetime = int(body.get("expires_in", 3600))
        except (ValueError, KeyError, TypeError) as exc:
            raise ServiceError(
                "token response without access_token", response.status_code, response.text[:2000]
            ) from exc
        expires = now + timedelta(seconds=lifetime)
        if cached is None:
            try:
                with session.begin_nested():
                    session.add(
                        ServiceToken(
                            registration_id=registration.id, scopes=scope, access_token=access_token, expires_at=expires
                        )
                    )
            except IntegrityError:
                cached = session.get(ServiceToken, (registration.id, scope), populate_existing=True)
        if cached is not None:
            cached.access_token, cached.expires_at = access_token, expires
        session.flush()
        return access_token

    def forget_token(self, session: Session, registration: Registration, scopes: list[str]) -> None:
        cached = session.get(ServiceToken, (registration.id, " ".join(sorted(set(scopes)))))
        if cached is not None:
            session.delete(cached)
            session.flush()

    # -- calls ------------------------------------------------------------------------------------------
    def call(
        self,
        method: str,
        url: str,
        token: str,
        *,
        accept: str | None = None,
        content_type: str | None = None,
        json_body: dict[str, Any] | None = None,
    ) -> outbound.Response:
        headers = {"Authorization": f"Bearer {token}"}
        if accept:
            headers["Accept"] = accept
        if content_type:
            headers["Content-Type"] = content_type
        try:
            data = json.dumps(json_body) if json_body is not None else None
            response = self._session().request(
                method, url, headers=headers, data=data, timeout=self.timeout, max_bytes=SERVICE_MAX_BYTES
            )
        except outbound.OutboundError as exc:
            raise ServiceError(f"{method} {url}: {exc.reason}") from exc
        if not 200 <= response.status_code < 300:
            raise ServiceError(
                f"{method} {url} answered {response.status_code}",
                response.status_code,
                response.text[:2000],
                response.headers.get("Retry-After"),
            )
        return response

    def find_lineitem(
        self, token: str, lineitems_url: str, resource_id: str, resource_link_id: str | None = None
    ) -> str | None:
        """A column with this resourceId (and, when given, this resourceLinkId: a platform that ignores the
        filter may list another placement's column, or an unattached one, of the same assignment: never
        taken)."""
        params = {"resource_id": resource_id}
        if resource_link_id:
            params["resource_link_id"] = resource_link_id
        response = self.call("GET", with_query(lineitems_url, **params), token, accept=MEDIA_LINEITEMS)
        try:
            items = response.json()
        except ValueError:
            return None
        for item in items if isinstance(items, list) else []:
            if not (isinstance(item, dict) and item.get("resourceId") == resource_id and item.get("id")):
                continue
            if resource_link_id and item.get("resourceLinkId") != resource_link_id:
                continue
            return str(item["id"])
        return None

    def create_lineitem(
        self,
        token: str,
        lineitems_url: str,
        *,
        label: str,
        score_maximum: float,
        resource_id: str,
        tag: str,
        resource_link_id: str | None = None,
        start: str | None = None,
        end: str | None = None,
    ) -> str:
        body = {"label": label, "scoreMaximum": score_maximum, "resourceId": resource_id, "tag": tag}
        if resource_link_id:
            body["resourceLinkId"] = resource_link_id
        if start:
            body["startDateTime"] = start
        if end:
            body["endDateTime"] = end
        response = self.call(
            "POST", lineitems_url, token, accept=MEDIA_LINEITEM, content_type=MEDIA_LINEITEM, json_body=body
        )
        try:
            return str(response.json()["id"])
        except (ValueError, KeyError, TypeError) as exc:
            raise ServiceError("line item created without an id", response.status_code, response.text[:2000]) from exc

    def post_score(self, token: str, lineitem_url: str, score: dict[str, Any]) -> outbound.Response:
        return self.call("POST", scores_url(lineitem_url), token, content_type=MEDIA_SCORE, json_body=score)

    def memberships_page(self, token: str, url: str) -> tuple[dict[str, Any], dict[str, str]]:
        """One page of a roster and its Link relations (``next``, ``differences``), URLs kept exactly."""
        response = self.call("GET", url, token, accept=MEDIA_MEMBERSHIPS)
        try:
            body = response.json()
        except ValueError as exc:
            raise ServiceError("roster is not JSON", response.status_code, response.text[:2000]) from exc
        links = {rel: link["url"] for rel, link in response.links.items() if "url" in link}
        return body, links


def lookup_registration(session: Session, registration_id: int) -> Registration:
    registration = session.scalar(select(Registration).where(Registration.id == registration_id))
    if registration is None:
        raise ServiceError(f"registration {registration_id} removed")
    return registration
