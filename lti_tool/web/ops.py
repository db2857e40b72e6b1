"""Operations: liveness and readiness probes, Prometheus metrics, request ids and access logs, and the trusted
proxy setting. (The rate limits of the LTI endpoints are ``lti_tool/rate_limit.py``.)

- ``GET /healthz``: the process answers (no database, no Redis).
- ``GET /readyz``: the database answers ``SELECT 1``, Redis answers ``PING`` (when configured), the tool's
  signing key loads; 200 with each check, 503 when any fails.
- ``GET /metrics``: Prometheus text, for loopback clients or a bearer token equal to
  ``LTI_TOOL_METRICS_TOKEN``; a 404 page for everyone else.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import time

from flask import Blueprint, Flask, Response, abort, current_app, g, jsonify, request
from sqlalchemy import text

from .. import metrics
from ..config import settings
from ..db import get_engine, new_session
from ..logs import ACCESS_LOGGER, REQUEST_ID_HEADER, parse_request_id
from ..redis_client import get_redis

bp = Blueprint("ops", __name__)
log = logging.getLogger(__name__)
access_log = logging.getLogger(ACCESS_LOGGER)

PROBES = frozenset({"ops.healthz", "ops.readyz", "ops.metrics"})
KEY_CHECKED = "lti_tool.ops.key_checked"


@bp.route("/healthz")
def healthz():
    return _no_store(jsonify(status="ok"))


@bp.route("/readyz")
def readyz():
    checks = {"database": _check(_database), "keys": _check(_keys)}
    if settings().redis_url:
        checks["redis"] = _check(_redis)
    ready = all(check["status"] == "ok" for check in checks.values())
    response = jsonify(status="ok" if ready else "failing", checks=checks)
    response.status_code = 200 if ready else 503
    return _no_store(response)


def _check(probe) -> dict:
    started = time.perf_counter()
    try:
        probe()
    except Exception as exc:  # any failure makes the instance not ready; the class name says which
        log.warning("readiness check %s failed: %s", probe.__name__.strip("_"), exc.__class__.__name__)
        return {"status": "failing", "error": exc.__class__.__name__,
                "duration_ms": round((time.perf_counter() - started) * 1000, 1)}
    return {"status": "ok", "duration_ms": round((time.perf_counter() - started) * 1000, 1)}


def _database() -> None:
    with get_engine().connect() as connection:
        connection.execute(text("SELECT 1")).scalar_one()


def _redis() -> None:
    client = get_redis()
    if client is None or not client.ping():
        raise ConnectionError("no PONG")


def _keys() -> None:
    """The current signing key is there and parses (parsed once per key and process: RSA checks are slow)."""
    from ..lti import get_lti

    key = get_lti().keys.current()
    if current_app.extensions.get(KEY_CHECKED) != (key.kid, key.private_pem):
        key.private_key  # noqa: B018 - parsing is the check
        current_app.extensions[KEY_CHECKED] = (key.kid, key.private_pem)


def _no_store(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    return response


def metrics_view():
    if not _metrics_allowed():
        abort(404)
    from ..services.grades import outbox_stats

    def read_outbox() -> metrics.OutboxStats:
        with new_session() as session:
            return outbox_stats(session)

    collector = metrics.OutboxCollector(read_outbox)
    try:
        body, content_type = metrics.render([collector])
    except Exception as exc:  # the database is down: the process's own metrics still answer
        log.warning("outbox metrics unavailable: %s", exc.__class__.__name__)
        body, content_type = metrics.render()
    return _no_store(Response(body, content_type=content_type))


bp.add_url_rule("/metrics", endpoint="metrics", view_func=metrics_view)


def _metrics_allowed() -> bool:
    token = settings().metrics_token
    header = request.headers.get("Authorization", "")
    if token and header.startswith("Bearer ") and hmac.compare_digest(header[len("Bearer "):].encode(), token.encode()):
        return True
    if settings().proxy_fix_hops > 0:
        # Behind a proxy every outside request may arrive from a loopback address (a proxy on the same machine),
        # and the forwarded address is the client's say-so: only the token opens the metrics.
        return False
    try:
        return ipaddress.ip_address(request.remote_addr or "").is_loopback
    except ValueError:
        return False


# -- every request ---------------------------------------------------------------------------------------

def _start() -> None:
    g.request_started = time.perf_counter()
    g.request_id = parse_request_id(request.headers.get(REQUEST_ID_HEADER))


# Addresses whose path itself is a secret (a teaching invitation's token): logged as their rule, not the path.
SECRET_PATH_ENDPOINTS = frozenset({"teacher.join"})


def _logged_path() -> str:
    if request.endpoint in SECRET_PATH_ENDPOINTS and request.url_rule is not None:
        return request.url_rule.rule
    return request.path


def _finish(response: Response) -> Response:
    started = g.get("request_started")
    duration = time.perf_counter() - started if started is not None else 0.0
    request_id = g.get("request_id")
    if request_id:
        response.headers[REQUEST_ID_HEADER] = request_id
    metrics.observe_request(request.endpoint, request.method, response.status_code, duration)
    # No query string (launch tokens), no body, no cookies: method, path, status and time only.
    path = _logged_path()
    access_log.log(logging.DEBUG if request.endpoint in PROBES else logging.INFO,
                   "%s %s %s %.1fms", request.method, path, response.status_code, duration * 1000,
                   extra={"method": request.method, "path": path, "status": response.status_code,
                          "duration_ms": round(duration * 1000, 1)})
    return response


def init_app(app: Flask) -> None:
    """Register the probes and metrics, the request-id and access-log hooks (first, so they see every
    request) and the trusted proxies."""
    hops = settings(app).proxy_fix_hops
    if hops > 0:
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops, x_port=hops)
    app.before_request(_start)
    app.after_request(_finish)
    app.register_blueprint(bp)
