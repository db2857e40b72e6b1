"""Faults the tool survives: the database or Redis unreachable (a 503 page with Retry-After, nothing half
written, recovery by itself), a catalog source that answers garbage or stalls (the catalog unchanged), a
platform's grade service down for days (every score kept and sent once it is back).

The database restarting under real load is drilled by ``benchmarks/fault_drills.py``."""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone

import pytest
import requests
import responses
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.exc import OperationalError

from lti_tool.db import SESSIONMAKER_KEY, get_engine, new_session
from lti_tool.lti import get_lti
from lti_tool.models import CatalogSync, Course, CourseRound, Launch, Order, OutboxItem, Seat
from lti_tool.services import seats

from .catalog_factory import add_course
from .conftest import error_code

PG = bool(os.environ.get("TEST_DATABASE_URL"))
REDIS_URL = os.environ.get("TEST_REDIS_URL", "")
CLOSED_PORT_DATABASE = "postgresql://postgres@127.0.0.1:1/unreachable"
CLOSED_PORT_REDIS = "redis://127.0.0.1:1/0"


def unavailable(response) -> bool:
    """The outage page: 503, ``service_unavailable``, a Retry-After, the pupil's language."""
    return (response.status_code == 503 and error_code(response) == "service_unavailable"
            and int(response.headers.get("Retry-After", "0")) > 0)


def seat_counts(app) -> tuple[int, int, int]:
    """(order counter, round counter, active seat rows): equal after any fault."""
    with new_session(app) as session:
        order = session.scalars(select(Order)).one()
        round_ = session.get(CourseRound, order.round_pk)
        rows = session.scalar(select(func.count()).select_from(Seat).where(Seat.status == "active"))
        return order.seats_taken, round_.seats_taken, rows


def replay_launch(actions, spec, auth):
    """The same login's id_token posted again by a browser that kept the state cookie (an attacker's replay,
    or a second tab): only the nonce can refuse it."""
    actions.client.set_cookie(f"lti_state_{auth['state']}", auth["state"], path="/lti/")
    return actions.launch(spec, auth=auth)


@pytest.fixture
def ordered(app, demo):
    with new_session(app) as session:
        add_course(session, capacity=50)
        seats.set_order(session, "SE-1490", "GIT-AK-1", "now", 3)
        session.commit()


# -- the database ----------------------------------------------------------------------------------------------

def test_an_unreachable_database_gives_the_outage_page_not_a_500(config, app_factory):
    app = app_factory({**config, "DATABASE_URL": CLOSED_PORT_DATABASE})
    client = app.test_client()
    response = client.get("/lti/login", query_string={"iss": "http://localhost/sandbox", "login_hint": "p1",
                                                      "target_link_uri": "http://localhost/lti/launch"},
                          headers={"Accept-Language": "sv-SE,sv;q=0.9", "Sec-Fetch-Dest": "document"})
    assert unavailable(response), response.get_data(as_text=True)
    page = response.get_data(as_text=True)
    assert "Kurskatalogen svarar inte just nu" in page and 'lang="sv"' in page
    from lti_tool.web.launch_token import issue_launch_token

    with app.test_request_context():
        token = issue_launch_token(str(uuid.uuid4()))
    response = client.get("/home", query_string={"lt": token}, headers={"Accept-Language": "nb-NO"})
    assert unavailable(response) and "Prøv igjen om et minutt" in response.get_data(as_text=True)


def test_the_outage_page_speaks_norwegian(config, app_factory):
    app = app_factory({**config, "DATABASE_URL": CLOSED_PORT_DATABASE})
    for language, words in (("nb-NO", "Kurskatalogen svarer ikke akkurat nå"),
                            ("nn-NO", "Kurskatalogen svarar ikkje akkurat no")):
        response = app.test_client().get("/lti/login", query_string={"iss": "x", "login_hint": "p1",
                                                                     "target_link_uri": "http://localhost/lti/launch"},
                                         headers={"Accept-Language": language, "Sec-Fetch-Dest": "document"})
        assert unavailable(response) and words in response.get_data(as_text=True)


def test_a_pupil_page_during_an_outage(app, launches, ordered, monkeypatch):
    response = launches.launch(launches.spec(course="GIT-AK-1", user="pupil-1"))
    assert response.status_code == 303
    home = response.headers["Location"]

    def down(*_args, **_kwargs):
        raise OperationalError("SELECT launches", {}, Exception("could not connect to server: Connection refused"))

    monkeypatch.setattr("sqlalchemy.orm.Session.get", down)
    assert unavailable(launches.client.get(home))
    monkeypatch.undo()
    assert launches.client.get(home).status_code == 200


def test_a_database_failure_mid_launch_takes_no_seat_and_uses_no_nonce(app, launches, ordered, monkeypatch):
    """The connection drops after the seat counters were raised: the whole launch is rolled back (no seat
    counted without its row, the nonce not used), and the next launch after recovery works."""
    from lti_tool.services import admission as services

    spec = launches.spec(course="GIT-AK-1", user="pupil-1")
    real = services.record_launch

    def dropped(*_args, **_kwargs):
        raise OperationalError("INSERT INTO launches", {}, Exception("server closed the connection unexpectedly"))

    monkeypatch.setattr(services, "record_launch", dropped)
    auth = launches.login(spec)
    response = launches.launch(spec, auth=auth)
    assert unavailable(response), response.get_data(as_text=True)
    assert seat_counts(app) == (0, 0, 0)
    with new_session(app) as session:
        assert session.scalar(select(func.count()).select_from(Launch)) == 0

    monkeypatch.setattr(services, "record_launch", real)  # the database is back
    # the platform's form post, sent again (the browser's retry): the nonce was never used
    again = launches.launch(spec, auth=auth)
    assert again.status_code == 303, again.get_data(as_text=True)
    assert seat_counts(app) == (1, 1, 1)
    replay = replay_launch(launches, spec, auth)
    assert replay.status_code != 303 and error_code(replay) == "nonce_replayed"
    assert seat_counts(app) == (1, 1, 1)


def test_other_database_errors_are_still_errors(app, launches, ordered, monkeypatch):
    """A constraint or a broken query is a bug, not an outage: no 503 that would hide it."""
    from sqlalchemy.exc import IntegrityError

    from lti_tool.services import admission as services

    def broken(*_args, **_kwargs):
        raise IntegrityError("INSERT INTO launches", {}, Exception("duplicate key"))

    monkeypatch.setattr(services, "record_launch", broken)
    response = launches.launch(launches.spec(course="GIT-AK-1", user="pupil-1"))
    assert response.status_code == 500
    assert seat_counts(app) == (0, 0, 0)


@pytest.mark.postgres
def test_a_connection_closed_by_the_server_is_replaced_before_use(app, launches, ordered):
    """The database restarts (or an idle backend is terminated) between two requests: the pooled connection
    is dead, the pool notices at checkout and connects again; the request never sees it."""
    if not PG:
        pytest.skip("needs TEST_DATABASE_URL")
    engine = get_engine(app)
    response = launches.launch(launches.spec(course="GIT-AK-1", user="pupil-1"))
    assert response.status_code == 303
    home = response.headers["Location"]
    with engine.connect() as connection:
        pids = {connection.scalar(text("select pg_backend_pid()"))}
    assert engine.pool.checkedin() >= 1
    admin = create_engine(app.config["DATABASE_URL"], poolclass=__import__("sqlalchemy").pool.NullPool)
    with admin.connect() as connection:
        for pid in pids:
            connection.execute(text("select pg_terminate_backend(:pid)"), {"pid": pid})
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and connection.scalar(
                text("select count(*) from pg_stat_activity where pid = any(:pids)"), {"pids": list(pids)}):
            time.sleep(0.05)
    admin.dispose()
    response = launches.client.get(home)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert seat_counts(app) == (1, 1, 1)


# -- Redis -------------------------------------------------------------------------------------------------------

def test_login_with_redis_down_is_refused_with_503(config, app_factory, demo):
    app = app_factory({**config, "REDIS_URL": CLOSED_PORT_REDIS})
    from lti_tool.sandbox import LaunchSpec, get_platform, sandbox_deployment_id

    query = get_platform(app).login_initiation(LaunchSpec(deployment_id=sandbox_deployment_id("SE-1490")))
    response = app.test_client().get("/lti/login", query_string=query, headers={"Sec-Fetch-Dest": "document"})
    assert unavailable(response), (response.status_code, response.get_data(as_text=True)[:500])
    assert "lti_state_" not in response.headers.get("Set-Cookie", "")


@pytest.fixture
def redis_launches(config, launches_factory):
    if not REDIS_URL:
        pytest.skip("TEST_REDIS_URL not set")
    actions = launches_factory({**config, "REDIS_URL": REDIS_URL})
    app = actions.client.application
    with new_session(app) as session:
        add_course(session, capacity=50)
        seats.set_order(session, "SE-1490", "GIT-AK-1", "now", 3)
        session.commit()
    return actions


def _break_redis(store, monkeypatch):
    """Every later command of the store fails to connect, as when Redis is down."""
    import redis

    dead = redis.Redis.from_url(CLOSED_PORT_REDIS)
    monkeypatch.setattr(store, "_consume", dead.register_script(store._consume.script))
    monkeypatch.setattr(store, "client", dead)


@pytest.mark.redis
def test_redis_down_never_accepts_a_replayed_nonce(redis_launches, monkeypatch):
    actions = redis_launches
    app = actions.client.application
    store = get_lti(app).logins
    spec = actions.spec(course="GIT-AK-1", user="pupil-1")
    auth = actions.login(spec)
    assert actions.launch(spec, auth=auth).status_code == 303
    _break_redis(store, monkeypatch)
    during = replay_launch(actions, spec, auth)  # the same id_token again, while Redis is down
    assert unavailable(during), during.get_data(as_text=True)[:500]
    monkeypatch.undo()
    after = replay_launch(actions, spec, auth)
    assert error_code(after) == "nonce_replayed"
    assert seat_counts(app) == (1, 1, 1)


@pytest.mark.redis
def test_redis_failing_when_the_nonce_is_used_takes_no_seat(redis_launches, monkeypatch):
    import redis

    actions = redis_launches
    app = actions.client.application
    store = get_lti(app).logins
    spec = actions.spec(course="GIT-AK-1", user="pupil-1")
    auth = actions.login(spec)

    def gone(*_args, **_kwargs):
        raise redis.exceptions.ConnectionError("Connection reset by peer")

    monkeypatch.setattr(store, "_consume", gone)
    response = actions.launch(spec, auth=auth)
    assert unavailable(response), response.get_data(as_text=True)[:500]
    assert seat_counts(app) == (0, 0, 0)
    monkeypatch.undo()
    assert actions.launch(spec, auth=auth).status_code == 303  # Redis back: the unused nonce works once
    assert seat_counts(app) == (1, 1, 1)


# -- the catalog source -----------------------------------------------------------------------------------------

CATALOG_URL = "https://catalog.example/feed.json"


def catalog_rows(app) -> list:
    from lti_tool.models import Assignment, CoursePrice, CourseModule, Lesson

    with new_session(app) as session:
        rows = []
        for model in (Course, CoursePrice, CourseRound, CourseModule, Lesson, Assignment):
            table = model.__table__
            rows += [tuple(row) for row in session.execute(select(table).order_by(*table.primary_key.columns))]
        return rows


def sync_results(app) -> list[str]:
    with new_session(app) as session:
        return list(session.scalars(select(CatalogSync.result).order_by(CatalogSync.id)))


@pytest.fixture
def synced(app):
    """A catalog already synced from the demo feed: what a bad source must leave as it is."""
    from catalog_sync.sync import sync_catalog
    from lti_tool.cli import demo_feed

    with new_session(app) as session:
        sync_catalog(session, demo_feed(datetime.now(timezone.utc).date()))
        session.commit()
    return catalog_rows(app)


@pytest.mark.parametrize("body, content_type", [
    (b'{"format": "kulturskola-catalog/1", "courses": [{"code": "GIT-', "application/json"),  # cut off
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "application/json"),  # bytes, not text
    (b"null", "application/json"),
    (b"[]", "application/json"),
    (b'"the catalog"', "application/json"),
    (b'{"format": "kulturskola-catalog/1", "generated_at": "2026-11-20T08:00:00Z", "courses": {}}',
     "application/json"),
    (b"", "application/json"),
])
def test_a_garbage_feed_changes_nothing(app, synced, body, content_type):
    from catalog_sync.sync import sync_catalog_from_source

    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        mock.get(CATALOG_URL, body=body, content_type=content_type)
        report = sync_catalog_from_source(app.extensions[SESSIONMAKER_KEY], CATALOG_URL, sleep=lambda _s: None)
    assert report.result == "rejected" and report.errors
    assert catalog_rows(app) == synced and sync_results(app) == ["rejected"]


class StallingSource:
    """A catalog source on 127.0.0.1 that sends the headers and the start of the body, then nothing more."""

    def __init__(self):
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen()
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}/feed.json"
        self.requests = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        self.listener.settimeout(0.1)
        held = []
        while not self.stop.is_set():
            try:
                connection, _ = self.listener.accept()
            except OSError:
                continue
            self.requests += 1
            connection.recv(65536)
            connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n"
                               b'{"format": "kulturskola-catalog/1", "courses": [')
            held.append(connection)  # never finished, never closed while the test runs
        for connection in held:
            connection.close()

    def close(self):
        self.stop.set()
        self.thread.join()
        self.listener.close()


def test_a_source_that_stalls_mid_feed_changes_nothing_and_is_recorded(app, synced):
    from catalog_sync.sync import run_sync

    source = StallingSource()
    waits: list[float] = []
    try:
        started = time.monotonic()
        report = run_sync(app.extensions[SESSIONMAKER_KEY], source.url, timeout=0.3, sleep=waits.append,
                          policy=get_lti(app).outbound)
        elapsed = time.monotonic() - started
    finally:
        source.close()
    assert report.result == "failed" and "timed out" in report.errors[0].lower(), report.errors
    assert source.requests == 3 and waits == [1.0, 2.0]  # retried like any other timeout
    assert elapsed < 10
    assert catalog_rows(app) == synced and sync_results(app) == ["failed"]


def test_a_source_that_timed_out_serves_the_next_sync(app, synced, tmp_path):
    """After a failed run the next sync (the source is back) applies normally."""
    from catalog_sync.sync import sync_catalog_from_source
    from lti_tool.cli import demo_feed

    feed = demo_feed(datetime.now(timezone.utc).date())
    feed["courses"][0]["title"]["sv"] = "Akustisk gitarr, nivå 1 (ny)"
    feed["courses"][0]["version"] += 1
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        mock.get(CATALOG_URL, body=requests.ReadTimeout("read timed out"))
        mock.get(CATALOG_URL, body=requests.ReadTimeout("read timed out"))
        mock.get(CATALOG_URL, body=requests.ReadTimeout("read timed out"))
        failed = sync_catalog_from_source(app.extensions[SESSIONMAKER_KEY], CATALOG_URL, sleep=lambda _s: None)
        mock.get(CATALOG_URL, json=feed)
        applied = sync_catalog_from_source(app.extensions[SESSIONMAKER_KEY], CATALOG_URL, sleep=lambda _s: None)
    assert failed.result == "failed" and applied.result == "applied" and applied.updated == 1
    with new_session(app) as session:
        assert session.get(Course, feed["courses"][0]["code"]).title["sv"].endswith("(ny)")


# -- a platform's grade service down for days --------------------------------------------------------------------

def test_grade_service_down_for_days_keeps_every_score_and_sends_them_after(app, launches, monkeypatch):
    """Three days of 503s and refused connections from the whole LMS (token endpoint included), the worker
    running every few minutes of a clock moved forward: nothing is lost, nothing becomes a dead letter, the
    retries stay at most an hour apart, and once the platform is back every score arrives exactly once."""
    from .catalog_factory import add_content
    from .test_grades import LINEITEMS, ITEM, TOKEN_URL, drain, hand_in_and_review, launch as ags_launch

    from lti_tool.lti.ags import ServiceClient

    with new_session(app) as session:
        add_course(session)
        made = add_content(session)
        seats.set_order(session, "SE-1490", "GIT-AK-1", "now", 10)
        session.commit()
    pupils = [f"p{i}" for i in range(5)]
    for pupil in pupils:
        ags_launch(launches, pupil)
    ags_launch(launches, "t1", role="instructor")
    for pupil in pupils:
        hand_in_and_review(app, made, pupil=pupil, score="7")
    client = ServiceClient(get_lti(app).keys, timeout=2, policy=get_lti(app).outbound)
    received: list[str] = []
    platform = {"up": False}
    tries = {"n": 0}

    def token(_request):
        if not platform["up"]:
            tries["n"] += 1
            if tries["n"] % 3 == 0:
                raise requests.ConnectionError("connection refused")
            return (503, {"Retry-After": "600"}, "maintenance")
        return (200, {}, json.dumps({"access_token": "tok", "token_type": "Bearer", "expires_in": 3600}))

    def scores(request):
        if not platform["up"]:
            return (503, {}, "maintenance")
        received.append(json.loads(request.body)["userId"])
        return (200, {}, "{}")

    clock = {"now": datetime.now(timezone.utc)}
    gaps: list[timedelta] = []
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add_callback(responses.POST, TOKEN_URL, callback=token)
        mock.get(LINEITEMS, json=[{"id": ITEM, "resourceId": "GIT-AK-1:GIT-AK-1-m2-a1",
                                   "resourceLinkId": "sandbox-link-1"}])
        mock.add_callback(responses.POST, ITEM + "/scores", callback=scores)
        end_of_outage = clock["now"] + timedelta(days=3)
        while clock["now"] < end_of_outage:
            drain(app, client, now=clock["now"])
            with new_session(app) as session:
                # a hand-in's "needs grading" row is superseded by its review's score
                items = session.scalars(select(OutboxItem).where(OutboxItem.status != "superseded")).all()
                assert {i.status for i in items} == {"pending"}  # kept, waiting, never dead
                gaps += [i.next_attempt_at - clock["now"] for i in items]
            clock["now"] += timedelta(minutes=10)
        platform["up"] = True
        for _ in range(12):  # the worker keeps running for up to two hours after the platform is back
            drain(app, client, now=clock["now"])
            clock["now"] += timedelta(minutes=10)
    assert sorted(received) == sorted(pupils)  # every score, exactly once
    assert max(gaps) <= timedelta(hours=1)
    with new_session(app) as session:
        items = session.scalars(select(OutboxItem)).all()
        items = [i for i in items if i.status != "superseded"]  # hand-ins' rows, replaced by the scores
        assert {i.status for i in items} == {"sent"} and min(i.attempts for i in items) > 10
