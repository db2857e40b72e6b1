"""Platform public keys (JWKS): fetched over HTTP, cached in the database as the platform's cache
headers allow, fetched again once when an id_token names a ``kid`` we do not have.

Each worker also keeps the key sets it has read, with their parsed keys, until the same expiry: a launch
whose ``kid`` is known and fresh there touches neither the database nor the platform. Anything else (an
unknown ``kid``, an expired set) goes through the database cache, so the refetch throttle is shared by every
worker."""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from typing import Any, Mapping

import jwt
import requests
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..domain.errors import LaunchError
from ..models import PlatformKeySet

log = logging.getLogger(__name__)
USER_AGENT = "kulturskola-lti-tool/0.1 (+LTI 1.3 tool)"


def cache_lifetime(headers: Mapping[str, str], now: datetime, default: timedelta) -> timedelta:
    """How long a response may be reused, from ``Cache-Control`` (no-store/no-cache/max-age) or
    ``Expires``; ``default`` when the platform says nothing."""
    control = headers.get("Cache-Control", "").lower()
    if "no-store" in control or "no-cache" in control:
        return timedelta(0)
    match = re.search(r"(?:s-maxage|max-age)\s*=\s*(\d+)", control)
    if match:
        return timedelta(seconds=int(match.group(1)))
    expires = headers.get("Expires")
    if expires:
        try:
            when = parsedate_to_datetime(expires)
        except (TypeError, ValueError):
            return timedelta(0)
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        return max(timedelta(0), when - now)
    return default


@dataclass
class _Remembered:
    """A key set as this worker last read it, and the keys parsed from it so far."""

    keys: dict
    expires_at: datetime
    parsed: dict[str, Any] = field(default_factory=dict)


class PlatformKeys:
    """Key sets are read and cached through the caller's session, inside its transaction."""

    def __init__(self, *, default_lifetime: timedelta, refetch_min_interval: timedelta, timeout: float,
                 http: requests.Session | None = None):
        self.default_lifetime = default_lifetime
        self.refetch_min_interval = refetch_min_interval
        self.timeout = timeout
        self.http = http or requests.Session()
        self.http.headers.setdefault("User-Agent", USER_AGENT)
        self._remembered: dict[str, _Remembered] = {}
        self._lock = threading.Lock()

    def _fetch(self, session: Session, url: str, cached: PlatformKeySet | None) -> PlatformKeySet:
        now = datetime.now(timezone.utc)
        headers = {"Accept": "application/json"}
        if cached is not None and cached.etag:
            headers["If-None-Match"] = cached.etag
        try:
            response = self.http.get(url, headers=headers, timeout=self.timeout)
        except requests.RequestException as exc:
            raise LaunchError(f"JWKS {url} unreachable: {exc}", code="platform_keys_unavailable") from exc
        lifetime = cache_lifetime(response.headers, now, self.default_lifetime)
        if response.status_code == 304 and cached is not None:
            keys = cached.keys
        elif response.status_code == 200:
            try:
                keys = response.json()
            except ValueError as exc:
                raise LaunchError(f"JWKS {url} is not JSON", code="platform_keys_unavailable") from exc
            if not isinstance(keys, dict) or not isinstance(keys.get("keys"), list):
                raise LaunchError(f"JWKS {url} has no keys array", code="platform_keys_unavailable")
        else:
            raise LaunchError(f"JWKS {url} answered {response.status_code}", code="platform_keys_unavailable")
        etag = response.headers.get("ETag")
        if cached is None:
            try:
                with session.begin_nested():  # another worker may cache the same set at the same moment
                    cached = PlatformKeySet(jwks_url=url, keys=keys, fetched_at=now, expires_at=now + lifetime,
                                            etag=etag)
                    session.add(cached)
                return cached
            except IntegrityError:
                cached = session.get(PlatformKeySet, url, populate_existing=True)
                assert cached is not None
        cached.keys, cached.fetched_at, cached.expires_at, cached.etag = keys, now, now + lifetime, etag
        session.flush()
        return cached

    def get_key(self, session: Session, url: str, kid: str) -> Any:
        """The public key for ``kid`` at ``url``: from the cache while it is fresh; otherwise, or when
        the kid is unknown, fetched again (once)."""
        now = datetime.now(timezone.utc)
        remembered = self._remembered.get(url)
        if remembered is not None and remembered.expires_at > now:
            key = remembered.parsed.get(kid)
            if key is None:
                key = _find(remembered.keys, kid)
                if key is not None:
                    remembered.parsed[kid] = key
            if key is not None:
                return key
        return self._get_key_from_database(session, url, kid, now)

    def _remember(self, cached: PlatformKeySet, kid: str, key: Any) -> None:
        with self._lock:
            self._remembered[cached.jwks_url] = _Remembered(cached.keys, cached.expires_at, {kid: key})

    def _get_key_from_database(self, session: Session, url: str, kid: str, now: datetime) -> Any:
        cached = session.get(PlatformKeySet, url)
        fetched_now = False
        if cached is None or cached.expires_at <= now:
            cached = self._fetch(session, url, cached)
            fetched_now = True
        key = _find(cached.keys, kid)
        if key is None and not fetched_now and now - cached.fetched_at >= self.refetch_min_interval:
            log.info("unknown kid %s, fetching %s again", kid, url)
            cached = self._fetch(session, url, cached)
            key = _find(cached.keys, kid)
        if key is None:
            raise LaunchError(f"no key {kid!r} in {url}", code="key_unknown")
        self._remember(cached, kid, key)
        return key


def _find(jwks: Mapping[str, Any], kid: str) -> Any:
    for entry in jwks.get("keys", []):
        if isinstance(entry, dict) and entry.get("kid") == kid:
            if entry.get("kty") != "RSA" or entry.get("alg", "RS256") != "RS256" or entry.get("use", "sig") != "sig":
                continue
            try:
                return jwt.PyJWK(entry, algorithm="RS256").key
            except jwt.PyJWKError:
                log.warning("unusable key %s in platform JWKS", kid)
                return None
    return None
