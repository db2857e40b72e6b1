"""The least an LTI 1.3 tool can do: pylti1p3's own Flask login and validated launch, nothing else.

The reference that ``benchmarks/launch_load.py`` measures the tool's full launch against, served by the same
gunicorn settings. Login: ``FlaskOIDCLogin`` (registration found in a ``ToolConfDict``, state cookie, nonce
kept in Redis). Launch: ``FlaskMessageLaunch`` (state, JWT format, nonce present, registration, RS256
signature with the platform JWKS cached in Redis, deployment, message claims) answering a few bytes of HTML.
No database, no seat, no first page.

Settings from the environment: ``REFERENCE_TOOL_CONF`` (a JSON file in ``ToolConfDict`` form),
``REFERENCE_TOOL_REDIS_URL`` and ``REFERENCE_TOOL_KEY_PREFIX`` (the Redis keys it writes).

    gunicorn --chdir benchmarks 'reference_tool:create_app()'
"""

from __future__ import annotations

import json
import os
from html import escape

import redis
from flask import Flask, request
from pylti1p3.contrib.flask import FlaskCacheDataStorage, FlaskMessageLaunch, FlaskOIDCLogin, FlaskRequest
from pylti1p3.exception import LtiException, OIDCException, ToolConfException
from pylti1p3.tool_config import ToolConfDict


class RedisCache:
    """The small ``get``/``set`` interface pylti1p3's cache storage expects, on Redis (JSON values)."""

    def __init__(self, client: redis.Redis, prefix: str):
        self.client = client
        self.prefix = prefix

    def get(self, key: str):
        raw = self.client.get(self.prefix + key)
        return None if raw is None else json.loads(raw)

    def set(self, key: str, value, exp: int | None = None) -> None:
        self.client.set(self.prefix + key, json.dumps(value), ex=exp or None)


def create_app() -> Flask:
    app = Flask(__name__)
    with open(os.environ["REFERENCE_TOOL_CONF"], encoding="utf-8") as handle:
        tool_conf = ToolConfDict(json.load(handle))
    cache = RedisCache(redis.Redis.from_url(os.environ.get("REFERENCE_TOOL_REDIS_URL", "redis://127.0.0.1:6379/0")),
                       os.environ.get("REFERENCE_TOOL_KEY_PREFIX", "reference-tool:"))

    @app.route("/lti/login", methods=["GET", "POST"])
    def login():
        target = request.values.get("target_link_uri")
        if not target:
            return "target_link_uri missing", 400
        oidc = FlaskOIDCLogin(FlaskRequest(), tool_conf, launch_data_storage=FlaskCacheDataStorage(cache))
        try:
            return oidc.redirect(target)
        except (LtiException, OIDCException, ToolConfException) as exc:
            return escape(str(exc)), 400

    @app.route("/lti/launch", methods=["POST"])
    def launch():
        storage = FlaskCacheDataStorage(cache)
        message = FlaskMessageLaunch(FlaskRequest(), tool_conf, launch_data_storage=storage)
        message.set_public_key_caching(storage, cache_lifetime=300)
        try:
            data = message.get_launch_data()
        except (LtiException, ToolConfException) as exc:
            return escape(str(exc)), 400
        return f"<!doctype html><title>ok</title><main>launched {escape(str(data.get('sub')))}</main>"

    return app
