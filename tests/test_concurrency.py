"""Seat budgets never overrun under concurrency: many threads on the services (SQLite and PostgreSQL), and
the real launch served by several gunicorn worker processes (PostgreSQL)."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from html import unescape
from pathlib import Path

import pytest
import requests
from sqlalchemy import func, select

from lti_tool.db import new_session
from lti_tool.domain.seats import SeatRefusedError
from lti_tool.models import Order, Seat
from lti_tool.services import seats

from .catalog_factory import add_course

PG = bool(os.environ.get("TEST_DATABASE_URL"))


@pytest.fixture
def ordered(app, demo):
    with new_session(app) as session:
        add_course(session, capacity=500)
        seats.set_order(session, "SE-1490", "GIT-AK-1", "now", 10)
        session.commit()


def attempt(app, sub: str) -> str:
    with new_session(app) as session:
        try:
            result = seats.reserve_seat(session, registration_id=1, sub=sub, municipality_id="SE-1490",
                                        course_code="GIT-AK-1")
        except SeatRefusedError as refusal:
            session.rollback()
            return refusal.code
        session.commit()
        return result.outcome


def taken(app) -> tuple[int, int]:
    with new_session(app) as session:
        order = session.scalars(select(Order)).one()
        rows = session.scalar(select(func.count()).select_from(Seat).where(Seat.status == "active"))
        return order.seats_taken, rows


def test_distinct_pupils_never_overrun_the_budget(app, ordered):
    requests_count = 200 if PG else 60
    with ThreadPoolExecutor(max_workers=16) as pool:
        outcomes = list(pool.map(lambda i: attempt(app, f"pupil-{i}"), range(requests_count)))
    assert outcomes.count("granted") == 10
    assert outcomes.count("budget_used_up") == requests_count - 10
    assert taken(app) == (10, 10)


def test_one_pupil_launching_at_once_takes_one_seat(app, ordered):
    count = 50 if PG else 20
    with ThreadPoolExecutor(max_workers=16) as pool:
        outcomes = list(pool.map(lambda _i: attempt(app, "same-pupil"), range(count)))
    assert outcomes.count("granted") == 1 and outcomes.count("held") == count - 1
    assert taken(app) == (1, 1)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def gunicorn(config, tmp_path):
    """The tool under gunicorn with four worker processes (four threads each: the sandbox platform lives in
    the same server, and the tool fetches its JWKS over HTTP) on 127.0.0.1, on the test database."""
    if not PG:
        pytest.skip("the multi-process launch test runs on PostgreSQL (TEST_DATABASE_URL)")
    from lti_tool import create_app
    from lti_tool.cli import prepare_demo
    from lti_tool.db import get_engine

    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    settings = {**config, "BASE_URL": base, "SANDBOX_BASE_URL": base}
    app = create_app(settings)
    prepare_demo(app, catalog=False)
    with new_session(app) as session:
        add_course(session, capacity=500)
        seats.set_order(session, "SE-1490", "GIT-AK-1", "now", 10)
        session.commit()
    env = {**os.environ, **{f"LTI_TOOL_{k}": json.dumps(v) if isinstance(v, bool) else str(v)
                               for k, v in settings.items() if k != "SANDBOX"},
           "LTI_TOOL_SANDBOX": "1",
           # A plain HTTP client keeps no Secure cookie on http (browsers do on loopback).
           "LTI_TOOL_COOKIE_SECURE": "false"}
    log = open(tmp_path / "gunicorn.log", "w")
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--workers", "4", "--threads", "4", "--bind", f"127.0.0.1:{port}",
         "--timeout", "60", "lti_tool:create_app()"], env=env, stdout=log, stderr=subprocess.STDOUT,
        cwd=Path(__file__).resolve().parents[1])
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if requests.get(base + "/lti/jwks", timeout=5).status_code == 200:
                    break
            except requests.RequestException:
                time.sleep(0.2)
        else:
            pytest.fail("gunicorn did not start: " + (tmp_path / "gunicorn.log").read_text())
        yield app, base
    finally:
        process.terminate()
        process.wait(timeout=20)
        log.close()
        get_engine(app).dispose()


_HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)">')


def browser_launch(base: str, user: str, role: str = "learner") -> int:
    """A browser: the platform's login initiation, the tool's login, the platform's form post."""
    with requests.Session() as browser:
        page = browser.get(base + "/sandbox/start", params={"deployment": "sandbox-SE-1490|", "role": role,
                                                            "user": user, "course": "GIT-AK-1"}, timeout=30)
        fields = {name: unescape(value) for name, value in _HIDDEN.findall(page.text)}
        response = browser.post(base + "/lti/launch", data=fields, allow_redirects=False, timeout=30)
        return response.status_code


def test_real_launches_on_several_worker_processes(gunicorn):
    app, base = gunicorn
    # The platform's key set is fetched once, by a teacher's launch (which takes no seat), before the rush: the
    # sandbox platform is served by the same workers, and a rush of first launches that all fetch its key set
    # from them would wait on itself. A real platform is another server.
    assert browser_launch(base, "teacher-0", role="instructor") == 303
    assert taken(app) == (0, 0)
    with ThreadPoolExecutor(max_workers=12) as pool:
        statuses = list(pool.map(lambda i: browser_launch(base, f"pupil-{i}"), range(40)))
    assert statuses.count(303) == 10 and statuses.count(403) == 30
    assert taken(app) == (10, 10)
    with ThreadPoolExecutor(max_workers=12) as pool:
        again = list(pool.map(lambda _i: browser_launch(base, "pupil-0"), range(12)))
    assert set(again) == {303} or set(again) == {403}  # pupil-0 either holds a seat or never got one
    assert taken(app) == (10, 10)
