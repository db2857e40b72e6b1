"""Database lifecycle: one engine per app, one session per request, Alembic for the schema (the ``db``
commands are ``cli/db.py``)."""

from __future__ import annotations

import importlib.resources
import select
import time
from pathlib import Path

from flask import Flask, current_app, g
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import Session, sessionmaker

from .config import settings

ENGINE_KEY = "lti_tool.engine"
SESSIONMAKER_KEY = "lti_tool.sessionmaker"


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        # hide_parameters: a database error's message (logged with its traceback) never carries the bound
        # values, which may be a pupil's sub.
        engine = create_engine(url, connect_args={"timeout": 30}, hide_parameters=True)

        @event.listens_for(engine, "connect")
        def _sqlite_connect(dbapi_connection, _record):
            # SQLAlchemy, not the sqlite3 module, decides when a transaction begins (savepoints work).
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(connection):
            # IMMEDIATE: a transaction takes the write lock up front and waits for it (busy_timeout), so a
            # read followed by a write never fails half-way when another worker wrote in between.
            connection.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    engine = create_engine(url, pool_size=10, max_overflow=20, hide_parameters=True)
    _check_connections_on_checkout(engine)
    return engine


# A pooled connection idle for longer than this is pinged (one round trip) before it is used again.
PING_AFTER_IDLE_SECONDS = 30.0


def _check_connections_on_checkout(engine: Engine) -> None:
    """Pessimistic disconnect handling without a round trip per request: a connection the server has closed
    (a restart, an idle timeout, a terminated backend) has its socket readable at end of file, which a
    zero-timeout poll sees for free; only a connection idle for a while is pinged as well (``SELECT 1``,
    as ``pool_pre_ping`` would do on every checkout). Either failing discards the connection and the pool
    connects again, so a request after a database restart gets a fresh connection, not an error."""

    @event.listens_for(engine, "checkin")
    def _checked_in(_dbapi_connection, record):
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_connection, record, _proxy):
        try:
            poller = select.poll()
            poller.register(dbapi_connection.fileno(), select.POLLIN | select.POLLPRI)
            closed = bool(poller.poll(0))
        except Exception as exc:  # no socket any more
            raise DisconnectionError(f"database connection unusable: {exc}") from exc
        if closed:
            raise DisconnectionError("the database server closed this connection")
        idle_since = record.info.get("idle_since")
        if idle_since is not None and time.monotonic() - idle_since > PING_AFTER_IDLE_SECONDS:
            try:
                engine.dialect.do_ping(dbapi_connection)
            except Exception as exc:
                raise DisconnectionError(f"database ping failed: {exc}") from exc


def init_app(app: Flask) -> None:
    url = settings(app).database_url
    if url.startswith("sqlite:///") and not url.startswith("sqlite:///:memory:"):
        Path(url[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
    engine = make_engine(url)
    app.extensions[ENGINE_KEY] = engine
    app.extensions[SESSIONMAKER_KEY] = sessionmaker(bind=engine, expire_on_commit=False)
    app.teardown_appcontext(close_session)


def get_engine(app: Flask | None = None) -> Engine:
    return (app or current_app).extensions[ENGINE_KEY]


def new_session(app: Flask | None = None) -> Session:
    """A session outside the request cycle (CLI, workers). The caller closes it."""
    return (app or current_app).extensions[SESSIONMAKER_KEY]()


def get_session() -> Session:
    """The request's (or app context's) session, created on first use."""
    if "db_session" not in g:
        g.db_session = new_session()
    return g.db_session


def close_session(_exc: BaseException | None = None) -> None:
    session = g.pop("db_session", None)
    if session is not None:
        session.close()


def migrations_dir() -> Path:
    """The Alembic scripts: ``migrations/`` in a checkout, the ``lti_tool_migrations`` package when installed."""
    checkout = Path(__file__).resolve().parent.parent / "migrations"
    if (checkout / "env.py").exists():
        return checkout
    return Path(str(importlib.resources.files("lti_tool_migrations")))


def alembic_config(url: str):
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(app: Flask | None = None, revision: str = "head") -> None:
    from alembic import command

    command.upgrade(alembic_config(settings(app).database_url), revision)

