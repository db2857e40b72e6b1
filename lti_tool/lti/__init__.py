"""The LTI 1.3 protocol layer, on PyJWT (no pylti1p3 at run time; only ``benchmarks/reference_tool.py`` uses it).

``launch`` validates the id_token (signature against the platform's JWKS from ``platform_keys``, claims,
one-time state and nonce from ``storage``); ``keys`` holds the tool's own signing keys and their JWKS;
``deep_linking`` signs deep-linking responses; ``ags`` makes the AGS and NRPS service calls with
client-credentials tokens; ``registration`` is LTI Dynamic Registration. The launch's claim names and their
parsing live in ``domain.claims``. Outside this package only the development sandbox platform
(``lti_tool/sandbox.py``) signs JWTs.

``init_app`` builds the key store, the login store (SQL, or Redis when ``REDIS_URL`` is set), the platform-key
cache and the launch validator from the settings, and keeps them in ``app.extensions``; ``get_lti`` returns them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from flask import Flask, current_app

from ..outbound import STRICT, OutboundPolicy
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
    config = app.config
    keys = KeyStore(Path(config["KEYS_DIR"]).resolve(), grace=timedelta(days=float(config["KEY_GRACE_DAYS"])))
    keys.ensure()  # first start: create the tool's key
    if config["REDIS_URL"]:
        import redis

        logins: LoginStore = RedisLoginStore(redis.Redis.from_url(config["REDIS_URL"], socket_connect_timeout=2,
                                                                    socket_timeout=2))
    else:
        logins = SqlLoginStore()
    policy = OutboundPolicy.from_settings(config)
    platform_keys = PlatformKeys(
        default_lifetime=timedelta(seconds=float(config["JWKS_DEFAULT_CACHE_SECONDS"])),
        refetch_min_interval=timedelta(seconds=float(config["JWKS_REFETCH_MIN_INTERVAL_SECONDS"])),
        refetch_cap=int(config["JWKS_REFETCH_CAP"]),
        timeout=float(config["HTTP_TIMEOUT_SECONDS"]),
        policy=policy,
    )
    validator = LaunchValidator(logins, platform_keys, base_url=config["BASE_URL"],
                                leeway=float(config["JWT_LEEWAY_SECONDS"]))
    lti = Lti(keys=keys, logins=logins, platform_keys=platform_keys, validator=validator, outbound=policy)
    app.extensions[EXTENSION_KEY] = lti
    return lti


def get_lti(app: Flask | None = None) -> Lti:
    lti: Lti = (app or current_app).extensions[EXTENSION_KEY]
    return lti
