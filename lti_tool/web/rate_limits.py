"""Rate limits of the LTI login and launch endpoints (and the launch's completion and relaunch after platform
storage or a new window) and of dynamic registration, per client address and per registration.

The login's registration is the one named in its path, else its ``iss`` and ``client_id`` parameters; the
launch's is the ``iss`` and client id (``azp``, else the single ``aud``) read from the id_token *without
verification*, only to pick the counter; a dynamic registration's is the host of the platform configuration it
names (``/lti/register`` needs no sign-in, and each request makes the tool fetch from, and post to, a platform).
Over a limit: the error page with ``rate_limited``, status 429 and ``Retry-After``.
"""

from __future__ import annotations

from flask import Flask, current_app, make_response, request

from .. import metrics
from ..db import get_engine
from ..rate_limit import Limit, RateLimiter, RedisCounter, SqlCounter
from .errors import render_error

EXTENSION_KEY = "lti_tool.rate_limiter"
REGISTER_ENDPOINTS = frozenset({"register.start", "register.finish"})
LIMITED_ENDPOINTS = frozenset({"lti.login", "lti.launch", "lti.launch_complete", "lti.relaunch"}) | REGISTER_ENDPOINTS
ADDRESS, REGISTRATION = "address", "registration"


def init_app(app: Flask) -> None:
    config = app.config
    if not int(config["RATE_LIMIT_PER_ADDRESS"]) and not int(config["RATE_LIMIT_PER_REGISTRATION"]):
        return
    if config["REDIS_URL"]:
        import redis

        client = redis.Redis.from_url(config["REDIS_URL"], socket_connect_timeout=1, socket_timeout=1)
        counter = RedisCounter(client)
    else:
        counter = SqlCounter(get_engine(app))
    app.extensions[EXTENSION_KEY] = RateLimiter(counter, config["SECRET_KEY"],
                                                window_seconds=int(config["RATE_LIMIT_WINDOW_SECONDS"]))
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
        from .register import platform_host

        host = platform_host()
        return f"register\0{host}" if host else None
    if request.endpoint == "lti.login":
        registration_id = (request.view_args or {}).get("registration_id")
        if registration_id is not None:
            return f"id\0{registration_id}"
        issuer = request.values.get("iss")
        return f"{issuer}\0{request.values.get('client_id', '')}" if issuer else None
    from ..domain.claims import locale_from_claims
    from ..i18n import set_locale
    from .lti import request_claims

    claims = request_claims()  # parsed once for the whole request
    set_locale(locale_from_claims(claims))  # a refusal page in the pupil's language
    return _claims_registration(claims)


def _limit():
    endpoint = request.endpoint
    if endpoint not in LIMITED_ENDPOINTS:
        return None
    limiter = get_limiter()
    config = current_app.config
    limits = [Limit(ADDRESS, f"{endpoint}\0{request.remote_addr or ''}", int(config["RATE_LIMIT_PER_ADDRESS"]))]
    registration = _registration()
    if int(config["RATE_LIMIT_PER_REGISTRATION"]):
        if registration is not None:
            limits.append(Limit(REGISTRATION, f"{endpoint}\0{registration}",
                                int(config["RATE_LIMIT_PER_REGISTRATION"])))
    decision = limiter.check(limits)
    if decision.allowed:
        return None
    metrics.count_rate_limited(endpoint, decision.limit or "")
    body, status = render_error("rate_limited", 429, detail=f"{endpoint}: {decision.limit} limit reached")
    response = make_response(body, status)
    response.headers["Retry-After"] = str(decision.retry_after)
    return response
