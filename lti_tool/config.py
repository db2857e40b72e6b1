"""Configuration: defaults for development, then environment variables prefixed ``LTI_TOOL_``.

Every setting can be given as ``LTI_TOOL_<NAME>``; values are parsed as JSON where they look like it
(``LTI_TOOL_COOKIE_SECURE=true``, ``LTI_TOOL_JWT_LEEWAY_SECONDS=30``), otherwise kept as strings.

``load_settings`` makes and checks them (``create_app`` puts them in ``app.config``); the application reads
them typed, as :class:`Settings` from :func:`settings` (``settings().http_timeout_seconds``), never by
casting ``app.config["..."]``.
"""

from __future__ import annotations

import os
from dataclasses import Field, dataclass, field, fields
from pathlib import Path
from types import MappingProxyType
from typing import Any, Callable, Mapping, get_type_hints
from urllib.parse import urlsplit, urlunsplit

from flask import Flask, current_app

from .domain.claims import INSTITUTION_ADMINISTRATOR

DEV_SECRET_KEY = "development-only-secret-key-do-not-use-in-production"

DEFAULTS: dict[str, Any] = {
    # "development" or "production"; production refuses the development secret and the sandbox.
    "ENV": "development",
    "SECRET_KEY": DEV_SECRET_KEY,
    # Filled in by create_app when empty: a SQLite file in the instance folder.
    "DATABASE_URL": "",
    # The public base URL of the tool, as platforms see it (scheme, host, optional port, no path).
    "BASE_URL": "http://127.0.0.1:5000",
    # Directory of the tool's own RSA keys; relative paths are taken from the working directory.
    "KEYS_DIR": "keys",
    # Optional Redis for one-time login states/nonces (database otherwise).
    "REDIS_URL": "",
    # Secure cookies (SameSite=None; Secure; Partitioned). Filled in by create_app when None:
    # on when BASE_URL is https or a loopback address (browsers keep Secure cookies of http://127.0.0.1 and
    # http://localhost), so a sandbox on another site can try the cross-site cookie path.
    "COOKIE_SECURE": None,
    # The sandbox platform's own base URL. Empty: the demo's cross-site default (http://localhost:PORT when
    # BASE_URL is http://127.0.0.1:PORT, and the other way round), else BASE_URL itself. A different site from
    # the tool puts the tool in a third-party iframe, as in a real LMS.
    "SANDBOX_BASE_URL": "",
    # Platform storage (lti.put_data / lti.get_data): how long the tool's page waits for the platform's answer,
    # and for an answer to lti.capabilities when the login named no storage target, before the next fallback.
    "PLATFORM_STORAGE_TIMEOUT_MS": 2000,
    "PLATFORM_CAPABILITIES_TIMEOUT_MS": 700,
    # The built-in sandbox platform. None: on in development, off in production (never allowed there).
    "SANDBOX": None,
    # Clock leeway for exp / iat of id_tokens, in seconds.
    "JWT_LEEWAY_SECONDS": 60,
    # How long a login (state + nonce) stays valid before the launch must arrive.
    "LOGIN_STATE_TTL_SECONDS": 600,
    # How long a launch token (carried in links and forms after the launch) stays valid.
    "LAUNCH_TOKEN_TTL_SECONDS": 4 * 3600,
    # Platform JWKS: cache lifetime when the platform sends no cache headers; an id_token's unknown kid fetches
    # the key set again at most once per JWKS_REFETCH_MIN_INTERVAL_SECONDS for that kid, and a key set is
    # fetched again at most JWKS_REFETCH_CAP times in that interval whatever the kids (so an attacker's made-up
    # kids neither flood the platform nor hold back the platform's genuine new key). 0: no throttle.
    "JWKS_DEFAULT_CACHE_SECONDS": 3600,
    "JWKS_REFETCH_MIN_INTERVAL_SECONDS": 10,
    "JWKS_REFETCH_CAP": 3,
    "HTTP_TIMEOUT_SECONDS": 10,
    # Every URL the tool fetches on someone else's say-so (openid-configuration, registration endpoint, JWKS,
    # token, AGS/NRPS, catalog feed) goes through one guard (lti_tool/outbound.py): https only in production,
    # no loopback, private or reserved address unless OUTBOUND_ALLOW_PRIVATE (link-local such as the cloud
    # metadata address, multicast and unspecified never), checked at connect time, redirects checked too.
    # None: on in development while the sandbox platform is on (it serves its JWKS and token on localhost),
    # off otherwise; production allows private addresses only when this is set explicitly.
    "OUTBOUND_ALLOW_PRIVATE": None,
    # The most time one outbound request may take, redirects and body included, however slowly the server
    # answers (each read also times out after HTTP_TIMEOUT_SECONDS). The catalog feed has 300 seconds.
    "OUTBOUND_DEADLINE_SECONDS": 30,
    # Key rotation: how long a retired key stays published.
    "KEY_GRACE_DAYS": 7,
    # Hand-in files: where they are kept (default: <instance>/uploads), the largest accepted, the kinds
    # accepted (checked by content).
    "UPLOAD_DIR": "",
    "UPLOAD_MAX_MB": 50,
    "UPLOAD_TYPES": "audio/*,video/*,image/*,application/pdf",
    # A larger (or smaller) largest hand-in file for named catalog courses (dance, film and music courses hand in
    # video): "COURSE=MB" pairs separated by commas ("DANS-1=800,FILM-2=1200") or a JSON object
    # ({"DANS-1": 800}). Course codes as the catalog spells them; every other course keeps UPLOAD_MAX_MB. At most
    # 2047 MB (file sizes are kept as 32-bit numbers).
    "UPLOAD_MAX_MB_BY_COURSE": "",
    # The pupil's page sends a file in pieces of this size (resumable after an interruption); a piece larger
    # than this is refused. An unfinished upload is kept UPLOAD_SESSION_HOURS after its last piece, then
    # `privacy purge` removes it with its partial data.
    "UPLOAD_CHUNK_MB": 5,
    "UPLOAD_SESSION_HOURS": 48,
    # Keep the name a pupil's launch carries (OpenID Connect name claims) on their seat, for the round's teachers
    # only, until the seat is anonymised (erasure, or purge RETENTION_DAYS after the round ended). Off: the launch's
    # name is never stored (and a stored one is cleared at the pupil's next launch and no longer shown).
    "LAUNCH_NAMES": True,
    # Keep pupils' names from the platform's member lists (NRPS) and school sign-ins for the teacher's view (off:
    # no names from there).
    "ROSTER_NAMES": False,
    # A teacher's page fetches the course roster again when the last sync is older than this.
    "ROSTER_MAX_AGE_SECONDS": 600,
    # National staff console: OpenID Connect provider, and who counts as staff (e-mails or subs, comma
    # separated; or a claim "name=value").
    "STAFF_OIDC_ISSUER": "",
    "STAFF_OIDC_CLIENT_ID": "",
    "STAFF_OIDC_CLIENT_SECRET": "",
    "STAFF_USERS": "",
    "STAFF_CLAIM": "",
    # The national catalog feed ("Sync now" in the staff console).
    "CATALOG_SOURCE": "",
    # Locale used when neither the launch nor the browser gives one we have.
    "DEFAULT_LOCALE": "sv",
    # Pupils' data: days after which `privacy purge` (daily from cron) deletes hand-ins (files and rows),
    # reviews, lesson marks, launch records, roster rows and finished grade messages, and replaces the
    # pupil id on seats of rounds that ended with an anonymous marker (invoices keep their counts).
    # 365: a school year and the following term's complaints; keep it longer than a course round.
    "RETENTION_DAYS": 365,
    # Where pupils and parents send a request for a copy of their data or for its erasure (an e-mail
    # address or a web address), shown on the privacy notice. Empty: the notice says to ask the school.
    "PRIVACY_CONTACT": "",
    # Logs: "json" (one object per line, with the request id) or "text". Empty: json in production, text
    # in development. The level of the tool's own loggers.
    "LOG_FORMAT": "",
    "LOG_LEVEL": "INFO",
    # /metrics answers loopback clients, and others that send "Authorization: Bearer <token>" with this
    # token (empty: loopback only). Everyone else gets a 404.
    "METRICS_TOKEN": "",
    # Proxies in front of the tool whose X-Forwarded-For/-Proto/-Host/-Port are trusted (0: none; 1 behind
    # one load balancer). The client address of rate limits and /metrics comes from there.
    "PROXY_FIX_HOPS": 0,
    # Rate limits of the LTI login and launch endpoints, requests per window and endpoint: per client
    # address and per registration (issuer and client id). 0 turns a limit off. Counted in Redis when
    # REDIS_URL is set, else in the database, so every worker and machine shares them.
    "RATE_LIMIT_PER_ADDRESS": 300,
    "RATE_LIMIT_PER_REGISTRATION": 6000,
    "RATE_LIMIT_WINDOW_SECONDS": 60,
    # The municipal console opens for an institution or system administrator (LIS v2 institution/person#
    # Administrator, system/person#Administrator or #SysAdmin) who is listed as the municipality's contact
    # (`municipalities add-contact`), or who also carries a role named here for the launch's registration:
    # {"<registration id>": [role URI, ...], "*": [...every registration...]}; a plain list is "*". Course
    # (context) roles are refused here. None: {} ({"sandbox": [institution Administrator]} with the sandbox on,
    # so the demo's administrator opens the console).
    "MUNICIPAL_ADMIN_ROLES": None,
    # The second door (school sign-in, seat invitations). How long an unused invitation stays valid when
    # issued without an expiry; how long a school sign-in keeps the pupil signed in to "My courses"; how long
    # a sign-in at the identity provider may take.
    "INVITATION_DAYS": 60,
    "SCHOOL_SESSION_HOURS": 8,
    "SIGN_IN_TTL_SECONDS": 600,
    # Skolverket's school unit register (Skolenhetsregistret v2): the municipality and owner of a Swedish school
    # unit, cached SCHOOL_UNIT_CACHE_DAYS. Empty: the public register (the sandbox points it at its own copy).
    "SCHOOL_UNIT_REGISTER_URL": "https://api.skolverket.se/skolenhetsregistret/v2/school-units",
    "SCHOOL_UNIT_CACHE_DAYS": 30,
    # Outgoing e-mail (the municipal contacts' weekly digest). Empty SMTP_HOST: no e-mail is sent.
    "SMTP_HOST": "",
    "SMTP_PORT": 587,
    "SMTP_USERNAME": "",
    "SMTP_PASSWORD": "",
    "SMTP_STARTTLS": True,
    "MAIL_FROM": "",
}

PREFIX = "LTI_TOOL_"


def _parse_env_value(raw: str) -> Any:
    import json

    try:
        return json.loads(raw)
    except ValueError:
        return raw


def load_settings(environ: Mapping[str, str] | None = None, overrides: Mapping[str, Any] | None = None,
                  instance_path: str | None = None) -> dict[str, Any]:
    """Defaults, then ``LTI_TOOL_*`` from the environment, then explicit overrides (tests)."""
    environ = os.environ if environ is None else environ
    settings = dict(DEFAULTS)
    for key, raw in environ.items():
        if key.startswith(PREFIX):
            name = key[len(PREFIX):]
            settings[name] = raw if name in ("SECRET_KEY", "DATABASE_URL", "BASE_URL", "KEYS_DIR", "REDIS_URL",
                                             "UPLOAD_DIR", "UPLOAD_TYPES", "STAFF_OIDC_ISSUER", "STAFF_OIDC_CLIENT_ID",
                                             "STAFF_OIDC_CLIENT_SECRET", "STAFF_USERS", "STAFF_CLAIM",
                                             "SANDBOX_BASE_URL", "CATALOG_SOURCE", "LOG_FORMAT", "LOG_LEVEL",
                                             "METRICS_TOKEN", "SCHOOL_UNIT_REGISTER_URL", "SMTP_HOST",
                                             "SMTP_USERNAME", "SMTP_PASSWORD", "MAIL_FROM") else _parse_env_value(raw)
    if overrides:
        settings.update(overrides)

    settings["BASE_URL"] = str(settings["BASE_URL"]).rstrip("/")
    if not settings["DATABASE_URL"]:
        folder = Path(instance_path or ".")
        settings["DATABASE_URL"] = f"sqlite:///{folder / 'lti_tool.db'}"
    settings["DATABASE_URL"] = normalise_database_url(settings["DATABASE_URL"])
    if not settings["UPLOAD_DIR"]:
        settings["UPLOAD_DIR"] = str(Path(instance_path or ".") / "uploads")
    if settings["COOKIE_SECURE"] is None:
        settings["COOKIE_SECURE"] = settings["BASE_URL"].startswith("https://") or _is_loopback(settings["BASE_URL"])
    settings["SANDBOX_BASE_URL"] = str(settings["SANDBOX_BASE_URL"] or "").rstrip("/") or \
        sandbox_default_url(settings["BASE_URL"])
    production = settings["ENV"] == "production"
    if settings["SANDBOX"] is None:
        settings["SANDBOX"] = not production
    settings["SANDBOX"] = bool(settings["SANDBOX"])
    if settings["OUTBOUND_ALLOW_PRIVATE"] is None:
        settings["OUTBOUND_ALLOW_PRIVATE"] = not production and settings["SANDBOX"]
    if not settings["LOG_FORMAT"]:
        settings["LOG_FORMAT"] = "json" if production else "text"
    settings["UPLOAD_MAX_MB_BY_COURSE"] = normalise_course_limits(settings.get("UPLOAD_MAX_MB_BY_COURSE"))
    settings["MUNICIPAL_ADMIN_ROLES"] = normalise_admin_roles(settings["MUNICIPAL_ADMIN_ROLES"],
                                                              sandbox=settings["SANDBOX"])
    check_settings(settings)
    return settings


class ConfigurationError(RuntimeError):
    """The configuration is unsafe or incomplete; the tool refuses to start."""


def check_settings(settings: Mapping[str, Any]) -> None:
    if settings["ENV"] not in ("development", "production"):
        raise ConfigurationError("LTI_TOOL_ENV must be 'development' or 'production'")
    retention = settings.get("RETENTION_DAYS")
    if isinstance(retention, bool) or not isinstance(retention, int) or retention < 1:
        raise ConfigurationError("LTI_TOOL_RETENTION_DAYS must be a whole number of days, at least 1")
    if settings["LOG_FORMAT"] not in ("json", "text"):
        raise ConfigurationError("LTI_TOOL_LOG_FORMAT must be 'json' or 'text'")
    for name in ("PROXY_FIX_HOPS", "RATE_LIMIT_PER_ADDRESS", "RATE_LIMIT_PER_REGISTRATION"):
        if not isinstance(settings[name], int) or isinstance(settings[name], bool) or settings[name] < 0:
            raise ConfigurationError(f"LTI_TOOL_{name} must be a whole number, 0 or more")
    if not isinstance(settings["RATE_LIMIT_WINDOW_SECONDS"], int) or settings["RATE_LIMIT_WINDOW_SECONDS"] < 1:
        raise ConfigurationError("LTI_TOOL_RATE_LIMIT_WINDOW_SECONDS must be a whole number, 1 or more")
    if not isinstance(settings.get("OUTBOUND_ALLOW_PRIVATE", False), bool):
        raise ConfigurationError("LTI_TOOL_OUTBOUND_ALLOW_PRIVATE must be true or false")
    deadline = settings.get("OUTBOUND_DEADLINE_SECONDS", 30)
    if isinstance(deadline, bool) or not isinstance(deadline, (int, float)) or deadline <= 0:
        raise ConfigurationError("LTI_TOOL_OUTBOUND_DEADLINE_SECONDS must be a number of seconds, more than 0")
    cap = settings.get("JWKS_REFETCH_CAP", 3)
    if isinstance(cap, bool) or not isinstance(cap, int) or cap < 1:
        raise ConfigurationError("LTI_TOOL_JWKS_REFETCH_CAP must be a whole number, 1 or more")
    _check_uploads(settings)
    if settings["ENV"] == "production":
        secret = str(settings["SECRET_KEY"] or "")
        if not secret or secret == DEV_SECRET_KEY or len(secret) < 32:
            raise ConfigurationError(
                "Refusing to start in production with the default or a short secret: "
                "set LTI_TOOL_SECRET_KEY to at least 32 random characters")
        if settings["SANDBOX"]:
            raise ConfigurationError("The sandbox platform is never enabled in production")
        if not str(settings["BASE_URL"]).startswith("https://"):
            raise ConfigurationError("LTI_TOOL_BASE_URL must be https in production")


# The largest hand-in file any setting may allow: sizes are kept as 32-bit numbers.
MAX_UPLOAD_MB = 2047


def _check_uploads(settings: Mapping[str, Any]) -> None:
    for name in ("UPLOAD_MAX_MB", "UPLOAD_CHUNK_MB", "UPLOAD_SESSION_HOURS"):
        value = settings.get(name, DEFAULTS[name])
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise ConfigurationError(f"LTI_TOOL_{name} must be a number, more than 0")
    if settings.get("UPLOAD_MAX_MB", 0) > MAX_UPLOAD_MB:
        raise ConfigurationError(f"LTI_TOOL_UPLOAD_MAX_MB must be at most {MAX_UPLOAD_MB}")


def normalise_course_limits(value: Any) -> dict[str, float]:
    """``UPLOAD_MAX_MB_BY_COURSE`` as ``{course code: MB}``, from "CODE=MB,CODE=MB" or a JSON object (already
    parsed, or given as a dict by a test). Each limit a number of MB, more than 0 and at most
    :data:`MAX_UPLOAD_MB`."""
    if value is None or value == "":
        return {}
    if isinstance(value, str):
        pairs = []
        for part in (p.strip() for p in value.split(",")):
            if not part:
                continue
            code, sep, number = part.partition("=")
            if not sep:
                raise ConfigurationError("LTI_TOOL_UPLOAD_MAX_MB_BY_COURSE: pairs COURSE=MB separated by commas, "
                                         f"not {part!r}")
            pairs.append((code, number))
    elif isinstance(value, Mapping):
        pairs = list(value.items())
    else:
        raise ConfigurationError("LTI_TOOL_UPLOAD_MAX_MB_BY_COURSE: pairs COURSE=MB separated by commas, or a JSON "
                                 "object of course code to MB")
    limits: dict[str, float] = {}
    for code, number in pairs:
        code = str(code).strip()
        try:
            megabytes = float(number)
        except (TypeError, ValueError):
            megabytes = -1.0
        if not code or isinstance(number, bool) or not 0 < megabytes <= MAX_UPLOAD_MB:
            raise ConfigurationError(f"LTI_TOOL_UPLOAD_MAX_MB_BY_COURSE: {code!r} needs a number of MB, more than 0 "
                                     f"and at most {MAX_UPLOAD_MB}, not {number!r}")
        limits[code] = megabytes
    return limits


# Keys of MUNICIPAL_ADMIN_ROLES besides registration ids: every registration, and the built-in sandbox's.
ANY_REGISTRATION_KEY = "*"
SANDBOX_REGISTRATION_KEY = "sandbox"
# Roles of a course (context), never enough for the municipal console: LIS v2 membership roles and their
# sub-roles, LIS v1 context roles, and the short forms LTI 1.3 allows for context roles ("Administrator").
_CONTEXT_ROLE_PREFIXES = ("http://purl.imsglobal.org/vocab/lis/v2/membership", "urn:lti:role:")


def normalise_admin_roles(value: Any, *, sandbox: bool) -> dict[str, list[str]]:
    """``MUNICIPAL_ADMIN_ROLES`` as ``{key: [role, ...]}`` (key: a registration id, ``*`` or ``sandbox``).
    Accepts the JSON object, a JSON list or a comma/space separated string (both for every registration)."""
    if value is None:
        return {SANDBOX_REGISTRATION_KEY: [INSTITUTION_ADMINISTRATOR]} if sandbox else {}
    if isinstance(value, str):
        value = [part for part in value.replace(",", " ").split() if part]
    if isinstance(value, (list, tuple)):
        value = {ANY_REGISTRATION_KEY: list(value)}
    if not isinstance(value, Mapping):
        raise ConfigurationError("LTI_TOOL_MUNICIPAL_ADMIN_ROLES must be a JSON object of registration id -> roles")
    normalised: dict[str, list[str]] = {}
    for key, roles in value.items():
        key = str(key).strip()
        if isinstance(roles, str):
            roles = [roles]
        if not (key.isdigit() or key in (ANY_REGISTRATION_KEY, SANDBOX_REGISTRATION_KEY)) \
                or not isinstance(roles, (list, tuple)) \
                or not all(isinstance(role, str) and role.strip() for role in roles):
            raise ConfigurationError("LTI_TOOL_MUNICIPAL_ADMIN_ROLES: keys are registration ids (or * or sandbox), "
                                     f"values lists of role URIs; not {key!r}: {roles!r}")
        for role in roles:
            role = role.strip()
            if ":" not in role or role.startswith(_CONTEXT_ROLE_PREFIXES):
                raise ConfigurationError(f"LTI_TOOL_MUNICIPAL_ADMIN_ROLES: {role!r} is a course (context) role; "
                                         "only a platform's own roles (full URIs) may open the municipal console")
        normalised[key] = [role.strip() for role in roles]
    return normalised


def _is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    return host in ("localhost", "::1") or host.startswith("127.")


def sandbox_default_url(base_url: str) -> str:
    """The other loopback name for the sandbox platform, so that it is a different site from the tool."""
    parts = urlsplit(base_url)
    other = {"127.0.0.1": "localhost", "localhost": "127.0.0.1"}.get(parts.hostname or "")
    if other is None or parts.scheme != "http":
        return base_url
    netloc = other + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def normalise_database_url(url: str) -> str:
    """Pick the project's driver for plain PostgreSQL URLs (``postgresql://`` -> psycopg 3)."""
    for plain in ("postgresql://", "postgres://"):
        if url.startswith(plain):
            return "postgresql+psycopg://" + url[len(plain):]
    return url


# -- typed settings ----------------------------------------------------------------------------------

def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _comma_list(value: Any) -> tuple[str, ...]:
    return tuple(part.strip() for part in _text(value).split(",") if part.strip())


def _course_limits(value: Any) -> Mapping[str, float]:
    return MappingProxyType(normalise_course_limits(value))


def _admin_roles(value: Any) -> Mapping[str, tuple[str, ...]]:
    return MappingProxyType({str(key): tuple(roles) for key, roles in dict(value or {}).items()})


@dataclass(frozen=True)
class Settings:
    """The settings, each with its type, read from the app's configuration (``app.config`` keeps the values
    ``load_settings`` made; this is their typed reading). Field ``x_y`` is setting ``X_Y`` (``LTI_TOOL_X_Y``);
    see ``DEFAULTS`` for what each one means. Reach it with :func:`settings`. Secrets (and URLs that may carry
    a password) stay out of its ``repr``."""

    env: str
    secret_key: str = field(repr=False)
    database_url: str = field(repr=False)
    base_url: str
    keys_dir: str
    redis_url: str = field(repr=False)
    cookie_secure: bool
    sandbox_base_url: str
    platform_storage_timeout_ms: int
    platform_capabilities_timeout_ms: int
    sandbox: bool
    jwt_leeway_seconds: float
    login_state_ttl_seconds: int
    launch_token_ttl_seconds: int
    jwks_default_cache_seconds: float
    jwks_refetch_min_interval_seconds: float
    jwks_refetch_cap: int
    http_timeout_seconds: float
    outbound_allow_private: bool
    outbound_deadline_seconds: float
    key_grace_days: float
    upload_dir: str
    upload_max_mb: float
    upload_types: tuple[str, ...] = field(metadata={"parse": _comma_list})  # "audio/*,video/*" -> a tuple
    upload_max_mb_by_course: Mapping[str, float] = field(metadata={"parse": _course_limits})
    upload_chunk_mb: float
    upload_session_hours: float
    launch_names: bool
    roster_names: bool
    roster_max_age_seconds: float
    staff_oidc_issuer: str
    staff_oidc_client_id: str
    staff_oidc_client_secret: str = field(repr=False)
    staff_users: str
    staff_claim: str
    catalog_source: str
    default_locale: str
    retention_days: int
    privacy_contact: str
    log_format: str
    log_level: str
    metrics_token: str = field(repr=False)
    proxy_fix_hops: int
    rate_limit_per_address: int
    rate_limit_per_registration: int
    rate_limit_window_seconds: int
    municipal_admin_roles: Mapping[str, tuple[str, ...]] = field(metadata={"parse": _admin_roles})
    invitation_days: int
    school_session_hours: float
    sign_in_ttl_seconds: int
    school_unit_register_url: str
    school_unit_cache_days: float
    smtp_host: str
    smtp_port: int
    smtp_username: str
    smtp_password: str = field(repr=False)
    smtp_starttls: bool
    mail_from: str

    @property
    def production(self) -> bool:
        return self.env == "production"

    @property
    def upload_max_bytes(self) -> int:
        return int(self.upload_max_mb * 1024 * 1024)

    def upload_max_mb_for(self, course_code: str | None) -> float:
        """The largest hand-in file of a course: its own limit (``UPLOAD_MAX_MB_BY_COURSE``), else the default."""
        return self.upload_max_mb_by_course.get(course_code or "", self.upload_max_mb)

    def upload_max_bytes_for(self, course_code: str | None) -> int:
        return int(self.upload_max_mb_for(course_code) * 1024 * 1024)

    @property
    def upload_chunk_bytes(self) -> int:
        """The size of the pieces a file is uploaded in (at least 1 KiB)."""
        return max(1024, int(self.upload_chunk_mb * 1024 * 1024))

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> "Settings":
        """Each setting of ``config`` (``app.config``, or what ``load_settings`` returned) cast to its type."""
        values: dict[str, Any] = {}
        for name, parse in _PARSERS.items():
            values[name] = parse(config.get(name.upper(), DEFAULTS.get(name.upper())))
        return cls(**values)


_PARSERS_BY_TYPE: dict[Any, Callable[[Any], Any]] = {str: _text, bool: bool, int: int, float: float}


def _parser(spec: Field[Any], kind: Any) -> Callable[[Any], Any]:
    """A field's own ``parse`` (metadata), else the cast of its declared type."""
    parse: Callable[[Any], Any] | None = spec.metadata.get("parse") or _PARSERS_BY_TYPE.get(kind)
    if parse is None:
        raise TypeError(f"Settings.{spec.name}: no parser for {kind!r}")
    return parse


_HINTS = get_type_hints(Settings)
_PARSERS: dict[str, Callable[[Any], Any]] = {spec.name: _parser(spec, _HINTS[spec.name]) for spec in fields(Settings)}
_SETTING_NAMES = tuple(name.upper() for name in _PARSERS)
SETTINGS_KEY = "lti_tool.settings"


def settings(app: Flask | None = None) -> Settings:
    """The app's typed settings (the current app by default), made from ``app.config`` and kept in
    ``app.extensions``; made again when ``app.config`` has changed since (a test that changes a setting)."""
    app = app or current_app
    snapshot = tuple(app.config.get(name) for name in _SETTING_NAMES)
    kept = app.extensions.get(SETTINGS_KEY)
    if kept is None or kept[0] != snapshot:
        kept = (snapshot, Settings.from_config(app.config))
        app.extensions[SETTINGS_KEY] = kept
    made: Settings = kept[1]
    return made
