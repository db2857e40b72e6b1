"""Platform public keys (JWKS): fetched through the outbound guard, cached in the database as the platform's
cache headers allow, fetched again once when an id_token names a ``kid`` we do not have.

Each worker also keeps the key sets it has read, with their parsed keys, until the same expiry: a launch
whose ``kid`` is known and fresh there touches neither the database nor the platform. Anything else (an
unknown ``kid``, an expired set) goes through the database cache, so the refetch throttle is shared by every
worker.

The throttle of refetches forced by unknown kids is per (key set URL, kid), with a cap per key set URL: the
same made-up kid fetches nothing again within the interval, many made-up kids fetch at most ``refetch_cap``
times in it, and a kid nobody asked for yet (the platform's genuine new key, on its first launch after a
rotation) is fetched at once unless that cap is used up. Counted in ``rate_limit_counters`` (keys starting
``jwks:``), inside the caller's transaction, which the launch commits even when it refuses."""

from __future__ import annotations

import hashlib
import logging
import re
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any, Mapping, cast

import jwt
from sqlalchemy import Table, case, delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from .. import clock, outbound
from ..domain.errors import LaunchError
from ..models import PlatformKeySet, RateLimitCounter

if TYPE_CHECKING:
    from sqlalchemy.dialects import postgresql, sqlite

log = logging.getLogger(__name__)
USER_AGENT = "kulturskola-lti-tool/0.1 (+LTI 1.3 tool)"
JWKS_MAX_BYTES = 1024 * 1024  # a platform's key set is a few kB
DEFAULT_REFETCH_CAP = 3


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

    keys: dict[str, Any]
    expires_at: datetime
    parsed: dict[str, Any] = field(default_factory=dict)


class PlatformKeys:
    """Key sets are read and cached through the caller's session, inside its transaction."""

    def __init__(self, *, default_lifetime: timedelta, refetch_min_interval: timedelta, timeout: float,
                 http: outbound.OutboundSession | None = None, policy: outbound.OutboundPolicy | None = None,
                 refetch_cap: int = DEFAULT_REFETCH_CAP):
        self.default_lifetime = default_lifetime
        self.refetch_min_interval = refetch_min_interval
        self.refetch_cap = refetch_cap
        self.timeout = timeout
        self.http = http or outbound.session(policy)
        self.http.headers["User-Agent"] = USER_AGENT
        self._remembered: dict[str, _Remembered] = {}
        self._lock = threading.Lock()

    def _fetch(self, session: Session, url: str, cached: PlatformKeySet | None) -> PlatformKeySet:
        now = clock.now()
        headers = {"Accept": "application/json"}
        if cached is not None and cached.etag:
            headers["If-None-Match"] = cached.etag
        try:
            response = self.http.get(url, headers=headers, timeout=self.timeout, max_bytes=JWKS_MAX_BYTES)
        except outbound.OutboundError as exc:
            raise LaunchError(f"JWKS not fetched: {exc}", code="platform_keys_unavailable") from exc
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
        now = clock.now()
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
        if key is None and fetched_now:
            self._fetched_for(session, url, kid, now)  # fetched for this kid just now: not again in the interval
        elif key is None and self._may_refetch(session, url, kid, now):
            log.info("unknown kid %r, fetching %s again", kid[:100], url)
            cached = self._fetch(session, url, cached)
            key = _find(cached.keys, kid)
        if key is None:
            raise LaunchError(f"no key {kid[:100]!r} in {url}", code="key_unknown")
        self._remember(cached, kid, key)
        return key

    # -- the refetch throttle -------------------------------------------------------------------------------
    def _may_refetch(self, session: Session, url: str, kid: str, now: datetime) -> bool:
        """Whether an unknown ``kid`` may fetch ``url`` again now: not when this kid did within the interval,
        nor when ``refetch_cap`` refetches of ``url`` already happened in the interval (counted atomically, so
        the cap holds across workers); otherwise yes, and this kid's refetch is recorded."""
        interval = self.refetch_min_interval
        if interval <= timedelta(0):
            return True
        kid_key, url_key = _throttle_key("k", url, kid), _throttle_key("u", url)
        recent = session.scalar(select(RateLimitCounter.window_start).where(RateLimitCounter.key == kid_key))
        if recent is not None and recent > now - interval:
            log.info("unknown kid %r at %s: refetched for it less than %s ago", kid[:100], url, interval)
            return False
        if _count(session, url_key, now, interval) > self.refetch_cap:
            log.warning("unknown kid %r at %s: %s refetches in %s already", kid[:100], url, self.refetch_cap, interval)
            return False
        self._fetched_for(session, url, kid, now)
        return True

    def _fetched_for(self, session: Session, url: str, kid: str, now: datetime) -> None:
        """Record that ``url`` was fetched for the unknown ``kid`` now; rows whose interval is over go."""
        interval = self.refetch_min_interval
        if interval <= timedelta(0):
            return
        _count(session, _throttle_key("k", url, kid), now, interval)
        # Rows another launch holds are left for a later cleanup (SKIP LOCKED): no waiting, no deadlock.
        old = (select(RateLimitCounter.key).where(RateLimitCounter.key.like("jwks:%"),
                                                  RateLimitCounter.window_start < now - interval)
               .limit(200).with_for_update(skip_locked=True))
        session.execute(delete(RateLimitCounter).where(RateLimitCounter.key.in_(old.scalar_subquery())))


def _throttle_key(kind: str, *parts: str) -> str:
    digest = hashlib.sha256("\0".join(parts).encode("utf-8", "surrogatepass")).hexdigest()
    return f"jwks:{kind}:{digest}"[:64]


def _count(session: Session, key: str, now: datetime, interval: timedelta) -> int:
    """One more for ``key`` in its window (which starts at its first count and lasts ``interval``); the
    count so far. One atomic UPSERT on SQLite and PostgreSQL alike."""
    # A declarative model's __table__ is its Table; SQLAlchemy types it as any FromClause.
    table = cast(Table, RateLimitCounter.__table__)
    dialect = session.get_bind().dialect.name
    statement: postgresql.Insert | sqlite.Insert
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as postgresql_insert
        statement = postgresql_insert(table)
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert
        statement = sqlite_insert(table)
    current = table.c.window_start > now - interval
    statement = statement.values(key=key, window_start=now, hits=1)
    upsert = statement.on_conflict_do_update(
        index_elements=[table.c.key],
        set_={"hits": case((current, table.c.hits + 1), else_=1),
              "window_start": case((current, table.c.window_start), else_=statement.excluded.window_start)},
    ).returning(table.c.hits)
    return int(session.execute(upsert).scalar_one())


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
