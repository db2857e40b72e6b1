"""Rate limits of the LTI login and launch endpoints (and the launch's completion and relaunch after platform
storage or a new window) and of dynamic registration, per client address and per registration: the counters,
the limiter and the Flask hook, all here.

Fixed windows shared by every worker and machine: counted in Redis (``INCR`` and ``EXPIRE`` in one pipeline;
the app's client from ``redis_client.get_redis``) when it is configured, else in the database (one conditional
UPSERT per key, on SQLite and PostgreSQL alike).

Keys are keyed hashes (HMAC with the tool's secret) of what is limited, so neither Redis nor the database
keeps client addresses. A counter that cannot count (Redis or the database down) lets the request through
and says so in the log: a rate limit never turns into an outage.

The login's registration is the one named in its path, else its ``iss`` and ``client_id`` parameters; the
launch's is the ``iss`` and client id (``azp``, else the single ``aud``) read from the id_token *without
verification*, only to pick the counter; a dynamic registration's is the host of the platform configuration it
names (``/lti/register`` needs no sign-in, and each request makes the tool fetch from, and post to, a platform).
Over a limit: the error page with ``rate_limited``, status 429 and ``Retry-After``.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import random
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Callable, Protocol, Sequence

from flask import Flask, current_app, make_response, request
from sqlalchemy import case, delete
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from . import metrics
from .config import settings
from .db import get_engine
from .models import RateLimitCounter
from .redis_client import get_redis

log = logging.getLogger(__name__)


class CounterUnavailableError(RuntimeError):
    """The counter's backend did not answer."""


class Counter(Protocol):
    name: str

    def hit(self, keys: Sequence[str], window_start: int, window_seconds: int) -> list[int]:
        """Count one request against each key in the window starting at ``window_start`` (Unix seconds);
        return each key's count so far in that window."""
        ...


class RedisCounter:
    """One key per limited thing and window (``<prefix><key>:<window start>``), expiring after the window."""

    name = "redis"

    def __init__(self, client, prefix: str = "lti_tool:rl:"):
        self.client = client
        self.prefix = prefix

    def hit(self, keys: Sequence[str], window_start: int, window_seconds: int) -> list[int]:
        import redis

        pipe = self.client.pipeline(transaction=True)
        for key in keys:
            name = f"{self.prefix}{key}:{window_start}"
            pipe.incr(name)
            pipe.expire(name, window_seconds + 1)
        try:
            results = pipe.execute()
        except redis.RedisError as exc:
            raise CounterUnavailableError(exc.__class__.__name__) from exc
        return [int(count) for count in results[0::2]]


class SqlCounter:
    """One row per limited thing in ``rate_limit_counters``, in its own short transaction (not the request's):
    ``INSERT ... ON CONFLICT (key) DO UPDATE SET hits = CASE WHEN window_start = excluded.window_start
    THEN hits + 1 ELSE 1 END, window_start = excluded.window_start RETURNING hits``. Rows of keys not seen for
    a while are deleted now and then."""

    name = "database"
    PURGE_CHANCE = 0.01

    def __init__(self, engine: Engine):
        self.engine = engine
        if engine.dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        elif engine.dialect.name == "sqlite":
            from sqlalchemy.dialects.sqlite import insert
        else:  # pragma: no cover - the tool runs on SQLite or PostgreSQL
            raise ValueError(f"no UPSERT for {engine.dialect.name}")
        self._insert = insert

    def hit(self, keys: Sequence[str], window_start: int, window_seconds: int) -> list[int]:
        table = RateLimitCounter.__table__
        start = datetime.fromtimestamp(window_start, timezone.utc)
        counts: dict[str, int] = {}
        try:
            with self.engine.begin() as connection:
                for key in sorted(set(keys)):  # one order for every request: no deadlock between two of them
                    insert = self._insert(table).values(key=key, window_start=start, hits=1)
                    upsert = insert.on_conflict_do_update(
                        index_elements=[table.c.key],
                        set_={"hits": case((table.c.window_start == insert.excluded.window_start, table.c.hits + 1),
                                           else_=1),
                              "window_start": insert.excluded.window_start},
                    ).returning(table.c.hits)
                    counts[key] = int(connection.execute(upsert).scalar_one())
                if random.random() < self.PURGE_CHANCE:
                    connection.execute(delete(table).where(
                        table.c.window_start < start - timedelta(seconds=10 * window_seconds)))
        except SQLAlchemyError as exc:
            raise CounterUnavailableError(exc.__class__.__name__) from exc
        return [counts[key] for key in keys]


@dataclass(frozen=True)
class Limit:
    """At most ``limit`` requests per window for ``identity`` (a client address, a registration) under
    ``name`` (which limit, and where)."""

    name: str
    identity: str
    limit: int


@dataclass(frozen=True)
class Decision:
    allowed: bool
    retry_after: int = 0  # seconds until the window ends, when refused
    limit: str | None = None  # the name of the limit that refused


class RateLimiter:
    WARNING_INTERVAL = 60.0

    def __init__(self, counter: Counter, secret: str | bytes, window_seconds: int = 60,
                 clock: Callable[[], float] = time.time):
        self.counter = counter
        self.secret = secret.encode("utf-8") if isinstance(secret, str) else secret
        self.window_seconds = int(window_seconds)
        self.clock = clock
        self._warned_at = -math.inf
        self._lock = threading.Lock()

    def key(self, limit: Limit) -> str:
        message = f"{limit.name}\0{limit.identity}".encode("utf-8")
        return hmac.new(self.secret, message, hashlib.sha256).hexdigest()[:40]

    def check(self, limits: Sequence[Limit]) -> Decision:
        """Count this request against the limits in order; refused by the first one that is over, and then
        not counted against the later ones (an address refused by its own limit does not use up its
        registration's)."""
        now = self.clock()
        window_start = int(now // self.window_seconds) * self.window_seconds
        for limit in limits:
            if limit.limit <= 0:
                continue
            try:
                [count] = self.counter.hit([self.key(limit)], window_start, self.window_seconds)
            except CounterUnavailableError as exc:
                metrics.count_rate_limit_error(self.counter.name)
                self._warn(f"rate limits not counted ({self.counter.name} unavailable: {exc}); request let through")
                return Decision(True)
            if count > limit.limit:
                retry_after = max(1, math.ceil(window_start + self.window_seconds - now))
                return Decision(False, retry_after=retry_after, limit=limit.name)
        return Decision(True)

    def _warn(self, message: str) -> None:
        """At most one warning a minute per process while the backend is down."""
        now = time.monotonic()
        with self._lock:
            if now - self._warned_at < self.WARNING_INTERVAL:
                return
            self._warned_at = now
        log.warning(message)


# -- the Flask hook ----------------------------------------------------------------------------------

EXTENSION_KEY = "lti_tool.rate_limiter"
REGISTER_ENDPOINTS = frozenset({"register.start", "register.finish"})
LIMITED_ENDPOINTS = frozenset({"lti.login", "lti.launch", "lti.launch_complete", "lti.relaunch"}) | REGISTER_ENDPOINTS
ADDRESS, REGISTRATION = "address", "registration"


def init_app(app: Flask) -> None:
    """Count the limited endpoints' requests before their views (nothing to do when both limits are 0)."""
    config = settings(app)
    if not config.rate_limit_per_address and not config.rate_limit_per_registration:
        return
    client = get_redis(app)
    counter: Counter = RedisCounter(client) if client is not None else SqlCounter(get_engine(app))
    app.extensions[EXTENSION_KEY] = RateLimiter(counter, config.secret_key,
                                                window_seconds=config.rate_limit_window_seconds)
    app.before_request(_limit)


def get_limiter(app: Flask | None = None) -> RateLimiter | None:
    return (app or current_app).extensions.get(EXTENSION_KEY)


def _claims_registration(claims: dict) -> str | None:
    issuer = claims.get("iss")
    if not isinstance(issuer, str) or not issuer:
        return None
    audience = claims.get("aud")
    client_id = claims.get("azp")
    if not isinstance(client_id, str):
        if isinstance(audience, list) and len(audience) == 1:
            audience = audience[0]
        client_id = audience if isinstance(audience, str) else ""
    return f"{issuer}\0{client_id}"


def _registration() -> str | None:
    """What identifies the registration this request is for, as the request says (unverified)."""
    if request.endpoint in REGISTER_ENDPOINTS:
        from .web.register import platform_host

        host = platform_host()
        return f"register\0{host}" if host else None
    if request.endpoint == "lti.login":
        registration_id = (request.view_args or {}).get("registration_id")
        if registration_id is not None:
            return f"id\0{registration_id}"
        issuer = request.values.get("iss")
        return f"{issuer}\0{request.values.get('client_id', '')}" if issuer else None
    from .domain.claims import locale_from_claims
    from .i18n import set_locale
    from .web.lti import request_claims

    claims = request_claims()  # parsed once for the whole request
    set_locale(locale_from_claims(claims))  # a refusal page in the pupil's language
    return _claims_registration(claims)


def _limit():
    endpoint = request.endpoint
    if endpoint not in LIMITED_ENDPOINTS:
        return None
    limiter = get_limiter()
    assert limiter is not None  # the hook is registered with its limiter
    config = settings()
    limits = [Limit(ADDRESS, f"{endpoint}\0{request.remote_addr or ''}", config.rate_limit_per_address)]
    registration = _registration()
    if config.rate_limit_per_registration:
        if registration is not None:
            limits.append(Limit(REGISTRATION, f"{endpoint}\0{registration}", config.rate_limit_per_registration))
    decision = limiter.check(limits)
    if decision.allowed:
        return None
    metrics.count_rate_limited(endpoint, decision.limit or "")
    from .web.errors import render_error

    body, status = render_error("rate_limited", 429, detail=f"{endpoint}: {decision.limit} limit reached")
    response = make_response(body, status)
    response.headers["Retry-After"] = str(decision.retry_after)
    return response
