"""The app's one Redis client, made from ``REDIS_URL`` (``LTI_TOOL_REDIS_URL``) and kept in ``app.extensions``.

:func:`get_redis` gives it to everything that talks to Redis (the readiness probe in ``web/ops.py``, the rate
limiter in ``rate_limit.py``), or ``None`` when no Redis is configured. The client holds a connection pool,
so every thread of a worker shares it. Short timeouts: a Redis that does not answer fails the call within a
second (the callers then refuse, or let through, as each one decides), it never holds a request.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from flask import Flask, current_app

from .config import settings

if TYPE_CHECKING:
    import redis

EXTENSION_KEY = "lti_tool.redis"
CONNECT_TIMEOUT_SECONDS = 1.0
SOCKET_TIMEOUT_SECONDS = 1.0


def get_redis(app: Flask | None = None) -> "redis.Redis | None":
    """The app's Redis client, made on first use; ``None`` when ``REDIS_URL`` is empty."""
    app = app or current_app
    url = settings(app).redis_url
    if not url:
        return None
    made = app.extensions.get(EXTENSION_KEY)
    if made is not None and made[0] == url:
        kept: redis.Redis = made[1]
        return kept
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=CONNECT_TIMEOUT_SECONDS,
                                  socket_timeout=SOCKET_TIMEOUT_SECONDS)
    app.extensions[EXTENSION_KEY] = (url, client)
    return client


__all__ = ["get_redis"]
