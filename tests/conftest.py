"""Fixtures: an app on a fresh database (SQLite file, or PostgreSQL when TEST_DATABASE_URL is set), the
sandbox platform as the launching emulator, and ``LaunchActions`` for whole login -> launch flows."""

from __future__ import annotations

import json
import os
import re
import shutil
from html import unescape
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import responses
from sqlalchemy import create_engine, text

from lti_tool import create_app
from lti_tool.config import normalise_database_url
from lti_tool.db import alembic_config, new_session
from lti_tool.models import Base
from lti_tool.sandbox import LaunchSpec, sandbox_deployment_id

BASE_URL = "http://localhost"
DATA = Path(__file__).parent / "data"
PG_URL = os.environ.get("TEST_DATABASE_URL", "")


@pytest.fixture(scope="session")
def database_template(tmp_path_factory):
    """Migrate once per test session: a SQLite file copied per test, or a PostgreSQL schema truncated per test."""
    from alembic import command

    if PG_URL:
        url = normalise_database_url(PG_URL)
        engine = create_engine(url)
        with engine.begin() as connection:
            connection.execute(text("DROP SCHEMA public CASCADE"))
            connection.execute(text("CREATE SCHEMA public"))
        engine.dispose()
        command.upgrade(alembic_config(url), "head")
        return url
    path = tmp_path_factory.mktemp("db") / "template.db"
    command.upgrade(alembic_config(f"sqlite:///{path}"), "head")
    return path


@pytest.fixture
def database_url(database_template, tmp_path):
    if PG_URL:
        engine = create_engine(database_template)
        with engine.begin() as connection:
            names = ", ".join(t.name for t in Base.metadata.sorted_tables)
            connection.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        engine.dispose()
        return database_template
    path = tmp_path / "tool.db"
    shutil.copy(database_template, path)
    return f"sqlite:///{path}"


@pytest.fixture(scope="session")
def keys_template(tmp_path_factory):
    """RSA keys made once per test session (tool and sandbox platform), copied into each test."""
    from lti_tool.lti.keys import KeyStore

    folder = tmp_path_factory.mktemp("keys")
    KeyStore(folder).ensure()
    KeyStore(folder / "sandbox-platform").ensure()
    return folder


@pytest.fixture
def config(database_url, tmp_path, keys_template):
    shutil.copytree(keys_template, tmp_path / "keys")
    return {
        "DATABASE_URL": database_url,
        "BASE_URL": BASE_URL,
        "SANDBOX_BASE_URL": BASE_URL,
        "KEYS_DIR": str(tmp_path / "keys"),
        "SECRET_KEY": "test-secret-key-that-is-long-enough-for-tests",
        "SANDBOX": True,
        "REDIS_URL": "",
        "JWKS_REFETCH_MIN_INTERVAL_SECONDS": 0,
        # The sandbox platform, the fault drills' sources and the browser tests serve on 127.0.0.1; the
        # outbound guard's own tests (test_outbound.py) turn this off.
        "OUTBOUND_ALLOW_PRIVATE": True,
        "UPLOAD_DIR": str(tmp_path / "uploads"),
    }


@pytest.fixture
def app_factory():
    """Make more apps (other settings, "another worker"); their connections are closed afterwards."""
    from lti_tool.db import get_engine

    made = []

    def make(settings):
        app = create_app(settings)
        made.append(app)
        return app

    yield make
    for app in made:
        get_engine(app).dispose()


@pytest.fixture
def app(config, app_factory):
    return app_factory(config)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def platform(app):
    from lti_tool.sandbox import get_platform

    return get_platform(app)


@pytest.fixture
def demo(app, platform):
    """The demo municipalities and the sandbox registration with its deployments."""
    from lti_tool.cli import prepare_demo

    prepare_demo(app, catalog=False)
    with new_session(app) as session:
        return platform.ensure_registration(session).id


@pytest.fixture
def content(app, demo):
    """The test course with its content (tests/catalog_factory.py), its round "now" ordered by Borås with ten seats;
    the ids of what was made. A module that needs other orders defines its own."""
    from lti_tool.services import seats

    from .catalog_factory import add_content, add_course

    with new_session(app) as session:
        add_course(session)
        made = add_content(session)
        seats.set_order(session, "SE-1490", "GIT-AK-1", "now", 10)
        session.commit()
    return made


@pytest.fixture
def platform_http(platform):
    """Outbound HTTP faked: the sandbox platform's JWKS is served to the tool through ``responses``."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add_callback(responses.GET, platform.jwks_url,
                          callback=lambda _request: (200, {"Cache-Control": "max-age=300"},
                                                     json.dumps(platform.jwks())),
                          content_type="application/json")
        yield mock


_HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)">')


class LaunchActions:
    """Whole flows through the real endpoints: the platform's login initiation, the tool's login, the
    platform's authentication response and the tool's launch."""

    def __init__(self, client, platform):
        self.client = client
        self.platform = platform

    @staticmethod
    def spec(municipality: str = "SE-1490", **kwargs) -> LaunchSpec:
        kwargs.setdefault("deployment_id", sandbox_deployment_id(municipality))
        return LaunchSpec(**kwargs)

    def login(self, spec: LaunchSpec, **params) -> dict[str, str]:
        """Start the login; returns the authentication request the tool sent the browser to."""
        query = self.platform.login_initiation(spec)
        query.update(params)
        response = self.client.get("/lti/login", query_string={k: v for k, v in query.items() if v is not None})
        assert response.status_code == 302, response.get_data(as_text=True)
        location = urlsplit(response.headers["Location"])
        return {k: v[0] for k, v in parse_qs(location.query).items()}

    def launch(self, spec: LaunchSpec | None = None, *, overrides=None, headers=None, signing_pem=None,
               form=None, auth=None):
        """Log in and post a (possibly tampered) id_token to the tool's launch URL."""
        spec = spec or self.spec()
        auth = auth or self.login(spec)
        token = self.platform.build_id_token(spec, auth["nonce"], overrides=overrides, headers=headers,
                                             signing_pem=signing_pem)
        data = {"id_token": token, "state": auth["state"]}
        data.update(form or {})
        return self.client.post("/lti/launch", data={k: v for k, v in data.items() if v is not None})

    def launch_through_platform(self, spec: LaunchSpec | None = None):
        """The unmodified way: the sandbox platform's own authorization endpoint answers the login."""
        spec = spec or self.spec()
        auth = self.login(spec)
        page = self.client.get("/sandbox/auth", query_string=auth)
        assert page.status_code == 200, page.get_data(as_text=True)
        fields = {name: unescape(value) for name, value in _HIDDEN.findall(page.get_data(as_text=True))}
        return self.client.post("/lti/launch", data=fields)


@pytest.fixture
def launches(client, platform, demo, platform_http):
    return LaunchActions(client, platform)


@pytest.fixture
def launches_factory(platform_http, app_factory):
    """LaunchActions on an app made with other settings (e.g. Redis), sharing the faked HTTP."""
    from lti_tool.cli import prepare_demo
    from lti_tool.sandbox import get_platform

    def make(settings):
        app = app_factory(settings)
        prepare_demo(app, catalog=False)
        platform = get_platform(app)
        platform_http.add_callback(responses.GET, platform.jwks_url,
                                   callback=lambda _r: (200, {}, json.dumps(platform.jwks())),
                                   content_type="application/json")
        return LaunchActions(app.test_client(), platform)

    return make


def error_code(response) -> str | None:
    match = re.search(r'data-error-code="([^"]+)"', response.get_data(as_text=True))
    return match.group(1) if match else None


def main_attrs(response) -> dict[str, str]:
    match = re.search(r"<main([^>]*)>", response.get_data(as_text=True))
    return dict(re.findall(r'data-([a-z-]+)="([^"]*)"', match.group(1))) if match else {}


def name_round_teacher(app, sub: str, *, course: str = "GIT-AK-1", round_id: str | None = None,
                       registration_id: int | None = None, name: str | None = None) -> int:
    """National staff name the platform user ``sub`` (of the sandbox registration unless ``registration_id``) a
    teacher of the course's round (its first round unless ``round_id``), as ``rounds teachers add`` does; a
    teacher already named stays as they are."""
    from sqlalchemy import select

    from lti_tool.models import CourseRound, Registration, RoundTeacher
    from lti_tool.sandbox import CLIENT_ID
    from lti_tool.services import round_teachers

    with new_session(app) as session:
        query = select(Registration)
        query = (query.where(Registration.id == registration_id) if registration_id is not None
                 else query.where(Registration.client_id == CLIENT_ID))
        registration = session.scalars(query.order_by(Registration.id)).first()
        rounds = select(CourseRound).where(CourseRound.course_code == course)
        if round_id is not None:
            rounds = rounds.where(CourseRound.round_id == round_id)
        course_round = session.scalars(rounds.order_by(CourseRound.starts_on, CourseRound.id)).first()
        assert registration is not None and course_round is not None, "no such registration or round"
        named = session.scalar(select(RoundTeacher.id).where(RoundTeacher.round_pk == course_round.id,
                                                             RoundTeacher.registration_id == registration.id,
                                                             RoundTeacher.sub == sub))
        if named is not None:
            return named
        teacher = round_teachers.add_launch_teacher(session, course_round.id, issuer=registration.issuer,
                                                    client_id=registration.client_id, sub=sub, name=name,
                                                    actor="test")
        session.commit()
        return teacher.id
