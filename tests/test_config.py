from __future__ import annotations

import pytest

from lti_tool import create_app
from lti_tool.config import DEV_SECRET_KEY, ConfigurationError, load_settings, normalise_database_url


def test_development_defaults(tmp_path):
    settings = load_settings({}, instance_path=str(tmp_path))
    assert settings["DATABASE_URL"] == f"sqlite:///{tmp_path}/lti_tool.db"
    assert settings["SANDBOX"] is True
    assert settings["BASE_URL"] == "http://127.0.0.1:5000"
    # Browsers keep Secure cookies of loopback hosts: the state cookie can be SameSite=None there too.
    assert settings["COOKIE_SECURE"] is True
    # The sandbox platform is another site than the tool, so the tool runs in a third-party iframe.
    assert settings["SANDBOX_BASE_URL"] == "http://localhost:5000"


def test_cookie_and_sandbox_defaults_by_host(tmp_path):
    plain = load_settings({"LTI_TOOL_BASE_URL": "http://tool.lan:8000"}, instance_path=str(tmp_path))
    assert plain["COOKIE_SECURE"] is False and plain["SANDBOX_BASE_URL"] == "http://tool.lan:8000"
    local = load_settings({"LTI_TOOL_BASE_URL": "http://localhost:8000"}, instance_path=str(tmp_path))
    assert local["COOKIE_SECURE"] is True and local["SANDBOX_BASE_URL"] == "http://127.0.0.1:8000"
    chosen = load_settings({"LTI_TOOL_SANDBOX_BASE_URL": "http://platform.test:9000/"}, instance_path=str(tmp_path))
    assert chosen["SANDBOX_BASE_URL"] == "http://platform.test:9000"


def test_environment_with_prefix(tmp_path):
    settings = load_settings({"LTI_TOOL_BASE_URL": "https://tool.example/", "LTI_TOOL_JWT_LEEWAY_SECONDS": "30",
                              "LTI_TOOL_DATABASE_URL": "postgresql://u@db/lti", "OTHER": "x",
                              "LTI_TOOL_REDIS_URL": "redis://127.0.0.1:6379/0"}, instance_path=str(tmp_path))
    assert settings["BASE_URL"] == "https://tool.example"
    assert settings["JWT_LEEWAY_SECONDS"] == 30
    assert settings["DATABASE_URL"] == "postgresql+psycopg://u@db/lti"
    assert settings["COOKIE_SECURE"] is True  # https
    assert settings["REDIS_URL"] == "redis://127.0.0.1:6379/0"


@pytest.mark.parametrize("secret", [None, DEV_SECRET_KEY, "short"])
def test_production_refuses_a_default_or_weak_secret(secret):
    env = {"LTI_TOOL_ENV": "production", "LTI_TOOL_BASE_URL": "https://tool.example"}
    if secret:
        env["LTI_TOOL_SECRET_KEY"] = secret
    with pytest.raises(ConfigurationError, match="secret"):
        load_settings(env)


def test_production_never_runs_the_sandbox():
    env = {"LTI_TOOL_ENV": "production", "LTI_TOOL_BASE_URL": "https://tool.example",
           "LTI_TOOL_SECRET_KEY": "x" * 40, "LTI_TOOL_SANDBOX": "1"}
    with pytest.raises(ConfigurationError, match="sandbox"):
        load_settings(env)
    env.pop("LTI_TOOL_SANDBOX")
    assert load_settings(env)["SANDBOX"] is False


def test_production_app_has_no_sandbox_routes(config, app_factory):
    app = app_factory({**config, "ENV": "production", "SANDBOX": False, "BASE_URL": "https://tool.example",
                      "SECRET_KEY": "p" * 40})
    client = app.test_client()
    assert client.get("/sandbox/").status_code == 404
    assert client.get("/lti/jwks").status_code == 200


def test_create_app_refuses_production_with_the_default_secret(config):
    with pytest.raises(ConfigurationError):
        create_app({**config, "ENV": "production", "SANDBOX": False, "BASE_URL": "https://tool.example",
                    "SECRET_KEY": DEV_SECRET_KEY})


def test_plain_postgres_urls_get_the_driver():
    assert normalise_database_url("postgres://a@b/c") == "postgresql+psycopg://a@b/c"
    assert normalise_database_url("postgresql+psycopg://a@b/c") == "postgresql+psycopg://a@b/c"
    assert normalise_database_url("sqlite:///x.db") == "sqlite:///x.db"


def test_every_setting_has_one_typed_field(tmp_path):
    """``Settings`` declares each setting of ``DEFAULTS`` once, with its type; the values are cast to it."""
    from dataclasses import fields

    from lti_tool.config import DEFAULTS, Settings

    assert sorted(f.name.upper() for f in fields(Settings)) == sorted(DEFAULTS)
    typed = Settings.from_config(load_settings({"LTI_TOOL_HTTP_TIMEOUT_SECONDS": "3", "LTI_TOOL_UPLOAD_MAX_MB": "2",
                                                "LTI_TOOL_UPLOAD_TYPES": "audio/*, application/pdf"},
                                               instance_path=str(tmp_path)))
    assert typed.http_timeout_seconds == 3.0 and isinstance(typed.http_timeout_seconds, float)
    assert typed.upload_max_bytes == 2 * 1024 * 1024
    assert typed.upload_types == ("audio/*", "application/pdf")
    assert typed.sandbox is True and typed.retention_days == 365 and typed.base_url == "http://127.0.0.1:5000"
    assert typed.secret_key not in repr(typed)


def test_settings_follow_the_app_config(config, app_factory):
    from lti_tool.config import settings

    app = app_factory({**config, "RETENTION_DAYS": 30})
    assert settings(app) is settings(app) and settings(app).retention_days == 30
    with app.app_context():
        assert settings() is settings(app)
    app.config["UPLOAD_MAX_MB"] = 0.5  # a test (or an operator's hook) changes a setting: the typed reading follows
    assert settings(app).upload_max_bytes == 512 * 1024 and app.config["UPLOAD_MAX_MB"] == 0.5
