"""The LTI 1.3 protocol layer, on pylti1p3 (PyPI ``pylti1p3next``), extended where it falls short.

``tool_config`` is the library's tool configuration on the database (registrations and deployments as rows);
``launch`` holds the library's login (``ToolOIDCLogin``) and message launch (``ToolMessageLaunch``) with the
tool's state binding, nonce store (``storage``) and platform-key cache (``platform_keys``);
``service_connector``, ``ags`` and ``nrps`` make the AGS and NRPS calls through the library's services with a
token cache in the database; ``deep_linking`` signs deep-linking responses with the library's ``DeepLink``;
``registration`` is LTI Dynamic Registration on the library's ``DynamicRegistration``; ``keys`` holds the
tool's own signing keys and their JWKS. The launch's claim names and their parsing live in
``domain.claims``. This package never imports the web layer or the services. Every override of the library
is listed, with its reason, in the README ("pylti1p3 and where the tool extends it").

``init_app`` builds the key store, the login store (SQL, or Redis when ``REDIS_URL`` is set), the platform-key
cache and the launch validator from the settings, and keeps them in ``app.extensions``; ``get_lti`` returns them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from flask import Flask, current_app

from ..config import settings
from ..outbound import STRICT, OutboundPolicy
from ..redis_client import get_redis
from .keys import KeyStore
from .launch import LaunchValidator
from .platform_keys import PlatformKeys
from .storage import LoginStore, RedisLoginStore, SqlLoginStore

EXTENSION_KEY = "lti_tool.lti"


@dataclass
class Lti:
    keys: KeyStore
    logins: LoginStore
    platform_keys: PlatformKeys
    validator: LaunchValidator
    outbound: OutboundPolicy = STRICT  # the app's outbound-request policy, for every client that fetches


def init_app(app: Flask) -> Lti:
    config = settings(app)
    keys = KeyStore(Path(config.keys_dir).resolve(), grace=timedelta(days=config.key_grace_days))
    keys.ensure()  # first start: create the tool's key
    client = get_redis(app)
    logins: LoginStore = RedisLoginStore(client) if client is not None else SqlLoginStore()
    policy = OutboundPolicy.from_settings(app.config)
    platform_keys = PlatformKeys(
        default_lifetime=timedelta(seconds=config.jwks_default_cache_seconds),
        refetch_min_interval=timedelta(seconds=config.jwks_refetch_min_interval_seconds),
        refetch_cap=config.jwks_refetch_cap,
        timeout=config.http_timeout_seconds,
        policy=policy,
    )
    validator = LaunchValidator(logins, platform_keys, base_url=config.base_url, leeway=config.jwt_leeway_seconds)
    lti = Lti(keys=keys, logins=logins, platform_keys=platform_keys, validator=validator, outbound=policy)
    app.extensions[EXTENSION_KEY] = lti
    return lti


def get_lti(app: Flask | None = None) -> Lti:
    lti: Lti = (app or current_app).extensions[EXTENSION_KEY]
    return lti
