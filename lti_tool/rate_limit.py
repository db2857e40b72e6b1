"""Fixed-window rate limits shared by every worker and machine: counted in Redis (``INCR`` and ``EXPIRE`` in one
pipeline) when it is configured, else in the database (one conditional UPSERT per key, on SQLite and
PostgreSQL alike).

Keys are keyed hashes (HMAC with the tool's secret) of what is limited, so neither Redis nor the database
keeps client addresses. A counter that cannot count (Redis or the database down) lets the request through
and says so in the log: a rate limit never turns into an outage.
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

from sqlalchemy import case, delete
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from .metrics import count_rate_limit_error
from .models import RateLimitCounter

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
                count_rate_limit_error(self.counter.name)
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
