"""When the database or Redis is unreachable (a restart, a failover, a full connection pool), a request gets
the error page with ``service_unavailable``, status 503 and ``Retry-After``, in the pupil's language, instead
of a 500. The request's transaction is rolled back, so nothing is half written: no seat counted without its
row, no nonce used without its launch.

A database error that is not about reaching the database (a constraint, a bug in a query) is not an outage
and still fails as an error.
"""

from __future__ import annotations

import logging

from flask import Flask, g
from sqlalchemy import exc as sa_exc

from .errors import render_error

log = logging.getLogger("lti_tool.outage")

RETRY_AFTER_SECONDS = 30
CODE = "service_unavailable"


def is_outage(error: BaseException) -> bool:
    """Errors that mean a backing service cannot be reached (or answer) right now."""
    if isinstance(error, (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.DisconnectionError,
                          sa_exc.TimeoutError)):
        return True
    if isinstance(error, sa_exc.DBAPIError) and error.connection_invalidated:
        return True
    try:
        import redis
    except ImportError:  # pragma: no cover - redis is a dependency
        return False
    return isinstance(error, (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError))


def _forget_session() -> None:
    """Roll back and drop the request's session; the pool replaces a broken connection by itself."""
    session = g.pop("db_session", None)
    if session is None:
        return
    try:
        session.close()
    except Exception:  # the connection is gone: closing may fail as well
        log.debug("closing the session after an outage failed", exc_info=True)


def render_unavailable(error: BaseException):
    log.warning("service unavailable: %s: %s", error.__class__.__name__, str(error).splitlines()[0][:300]
                if str(error) else "")
    _forget_session()
    return render_error(CODE, 503, detail=error.__class__.__name__)


def init_app(app: Flask) -> None:
    def _handle(error: Exception):
        if not is_outage(error):
            raise error
        return render_unavailable(error)

    for error_class in (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.DisconnectionError,
                        sa_exc.TimeoutError, sa_exc.DBAPIError):
        app.register_error_handler(error_class, _handle)
    try:
        import redis
    except ImportError:  # pragma: no cover
        pass
    else:
        app.register_error_handler(redis.exceptions.ConnectionError, _handle)
        app.register_error_handler(redis.exceptions.TimeoutError, _handle)

    @app.after_request
    def _retry_after(response):
        if response.status_code == 503:
            response.headers.setdefault("Retry-After", str(RETRY_AFTER_SECONDS))
        return response
