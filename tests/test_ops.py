"""Operations: health and readiness probes, Prometheus metrics (one process and several), JSON logs with
request ids and without launch tokens, trusted proxies."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import shutil
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import update

from lti_tool import metrics
from lti_tool.config import ConfigurationError, load_settings
from lti_tool.db import new_session
from lti_tool.logs import JsonFormatter, configure_logging, parse_request_id
from lti_tool.models import OutboxItem

from .test_grades import course, hand_in_and_review, launch  # noqa: F401 - the course fixture

REDIS_URL = os.environ.get("TEST_REDIS_URL", "")
UNREACHABLE_DB = "postgresql://postgres@127.0.0.1:1/nothing"


def sample(name: str, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


# -- probes ----------------------------------------------------------------------------------------------

def test_healthz_answers_without_the_database(config, app_factory):
    app = app_factory({**config, "DATABASE_URL": UNREACHABLE_DB})
    response = app.test_client().get("/healthz")
    assert response.status_code == 200 and response.get_json() == {"status": "ok"}
    assert response.headers["Cache-Control"] == "no-store"


def test_readyz_ok(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "ok"
    assert {name: check["status"] for name, check in body["checks"].items()} == {"database": "ok", "keys": "ok"}


def test_readyz_fails_without_the_database(config, app_factory):
    app = app_factory({**config, "DATABASE_URL": UNREACHABLE_DB})
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["status"] == "failing"
    assert body["checks"]["database"]["status"] == "failing"
    assert body["checks"]["database"]["error"] == "OperationalError"  # the class only, never the URL
    assert body["checks"]["keys"]["status"] == "ok"


def test_readyz_fails_without_signing_keys(app, client):
    assert client.get("/readyz").status_code == 200
    shutil.rmtree(app.config["KEYS_DIR"])
    response = client.get("/readyz")
    assert response.status_code == 503 and response.get_json()["checks"]["keys"]["status"] == "failing"


def test_readyz_fails_when_redis_is_unreachable(config, app_factory):
    app = app_factory({**config, "REDIS_URL": "redis://127.0.0.1:1/0"})
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["checks"]["redis"]["status"] == "failing"
    assert response.get_json()["checks"]["database"]["status"] == "ok"


@pytest.mark.redis
def test_readyz_checks_redis(config, app_factory):
    if not REDIS_URL:
        pytest.skip("TEST_REDIS_URL not set")
    response = app_factory({**config, "REDIS_URL": REDIS_URL}).test_client().get("/readyz")
    assert response.status_code == 200 and response.get_json()["checks"]["redis"]["status"] == "ok"


# -- metrics ---------------------------------------------------------------------------------------------

def test_metrics_after_a_launch(app, client, launches, course):  # noqa: F811
    granted = sample("lti_seat_decisions_total", decision="granted")
    held = sample("lti_seat_decisions_total", decision="already_held")
    launched = sample("lti_http_request_duration_seconds_count", endpoint="lti.launch", method="POST", status="303")
    launch(launches, "p1")
    launch(launches, "p1")
    metrics.count_launch("accepted", "cookie", "sandbox")

    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    text = response.get_data(as_text=True)
    assert 'lti_http_request_duration_seconds_count{endpoint="lti.launch",method="POST",status="303"}' in text
    assert 'lti_seat_decisions_total{decision="granted"}' in text
    assert 'lti_launches_total{outcome="accepted",path="cookie",platform="sandbox"}' in text
    assert "lti_outbox_depth 0.0" in text
    assert sample("lti_seat_decisions_total", decision="granted") == granted + 1
    assert sample("lti_seat_decisions_total", decision="already_held") == held + 1
    assert sample("lti_http_request_duration_seconds_count", endpoint="lti.launch", method="POST",
                  status="303") == launched + 2


def test_seat_refusals_are_counted_by_code(app, launches, course):  # noqa: F811
    before = sample("lti_seat_decisions_total", decision="course_unknown")
    response = launches.launch(launches.spec("SE-1490", user="p9", course="NO-SUCH-COURSE"))
    assert response.status_code == 403
    assert sample("lti_seat_decisions_total", decision="course_unknown") == before + 1


def test_outbox_gauges(app, client, launches, course):  # noqa: F811
    launch(launches, "p1")
    launch(launches, "teacher", role="instructor")
    hand_in_and_review(app, course)
    with new_session(app) as session:
        session.execute(update(OutboxItem).values(created_at=datetime.now(timezone.utc) - timedelta(minutes=5)))
        session.commit()
    text = client.get("/metrics").get_data(as_text=True)
    assert "lti_outbox_depth 1.0" in text and "lti_outbox_dead_items 0.0" in text
    age = float(re.search(r"^lti_outbox_oldest_pending_age_seconds (\S+)$", text, re.M).group(1))
    assert 300 <= age < 400
    with new_session(app) as session:
        session.execute(update(OutboxItem).where(OutboxItem.status == "pending").values(status="dead"))
        session.commit()
    text = client.get("/metrics").get_data(as_text=True)
    assert "lti_outbox_depth 0.0" in text and "lti_outbox_dead_items 1.0" in text
    assert "lti_outbox_oldest_pending_age_seconds 0.0" in text


def test_metrics_without_the_database_still_answer(config, app_factory):
    response = app_factory({**config, "DATABASE_URL": UNREACHABLE_DB}).test_client().get("/metrics")
    assert response.status_code == 200
    text = response.get_data(as_text=True)
    assert "lti_seat_decisions_total" in text and "lti_outbox_depth" not in text


def test_metrics_only_for_loopback_or_the_token(config, app_factory):
    app = app_factory({**config, "METRICS_TOKEN": "s3cret-token"})
    client = app.test_client()
    remote = {"REMOTE_ADDR": "203.0.113.7"}
    assert client.get("/metrics").status_code == 200
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "::1"}).status_code == 200
    refused = client.get("/metrics", environ_base=remote)
    assert refused.status_code == 404 and 'data-error-code="not_found"' in refused.get_data(as_text=True)
    assert client.get("/metrics", environ_base=remote, headers={"Authorization": "Bearer wrong"}).status_code == 404
    assert client.get("/metrics", environ_base=remote,
                      headers={"Authorization": "Bearer s3cret-token"}).status_code == 200


def test_metrics_token_unset_means_loopback_only(client):
    remote = {"REMOTE_ADDR": "203.0.113.7"}
    assert client.get("/metrics", environ_base=remote, headers={"Authorization": "Bearer "}).status_code == 404


def test_proxy_fix_takes_the_client_address_from_the_proxy(config, app_factory):
    forwarded = {"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https"}
    plain = app_factory(config).test_client()
    assert plain.get("/metrics", headers=forwarded).status_code == 200  # no trusted proxy: header ignored
    behind = app_factory({**config, "PROXY_FIX_HOPS": 1, "METRICS_TOKEN": "s3cret-token"}).test_client()
    assert behind.get("/metrics", headers=forwarded).status_code == 404


def test_metrics_behind_a_proxy_need_the_token(config, app_factory):
    """A proxy on the same machine makes every outside request arrive from loopback: loopback opens nothing."""
    behind = app_factory({**config, "PROXY_FIX_HOPS": 1, "METRICS_TOKEN": "s3cret-token"}).test_client()
    loopback = {"REMOTE_ADDR": "127.0.0.1"}
    assert behind.get("/metrics", environ_base=loopback).status_code == 404
    assert behind.get("/metrics", environ_base=loopback, headers={"X-Forwarded-For": "127.0.0.1"}).status_code == 404
    assert behind.get("/metrics", environ_base=loopback,
                      headers={"Authorization": "Bearer s3cret-token"}).status_code == 200
    without_token = app_factory({**config, "PROXY_FIX_HOPS": 1}).test_client()
    assert without_token.get("/metrics", environ_base=loopback).status_code == 404


def test_label_values_are_kept_plain():
    metrics.count_launch('bad"label\nvalue', "somewhere", "x" * 200)
    assert sample("lti_launches_total", outcome="bad_label_value", path="none", platform="x" * 64) == 1


def test_multiprocess_mode_adds_up_every_process(tmp_path):
    """Two worker processes count; a third serves the sum (PROMETHEUS_MULTIPROC_DIR)."""
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    root = Path(__file__).resolve().parents[1]
    count = "from lti_tool import metrics; metrics.count_seat_decision('granted'); " \
            "metrics.observe_request('lti.launch', 'POST', 303, 0.02)"
    workers = [subprocess.Popen([sys.executable, "-c", count], env=env, cwd=root) for _worker in range(2)]
    assert [worker.wait(timeout=60) for worker in workers] == [0, 0]
    scrape = "import sys; from lti_tool import metrics; sys.stdout.write(metrics.render()[0].decode())"
    text = subprocess.run([sys.executable, "-c", scrape], env=env, cwd=root, check=True, timeout=60,
                          capture_output=True, text=True).stdout
    assert 'lti_seat_decisions_total{decision="granted"} 2.0' in text
    assert re.search(r'lti_http_request_duration_seconds_count\{endpoint="lti.launch",method="POST",status="303"\} 2.0',
                     text)


def test_gunicorn_settings(tmp_path, monkeypatch):
    from lti_tool import gunicorn_conf

    assert gunicorn_conf.json_logs({"LTI_TOOL_ENV": "production"})
    assert not gunicorn_conf.json_logs({"LTI_TOOL_ENV": "production", "LTI_TOOL_LOG_FORMAT": "text"})
    assert not gunicorn_conf.json_logs({})
    assert gunicorn_conf.json_logconfig()["formatters"]["json"]["()"] == "lti_tool.logs.JsonFormatter"
    (tmp_path / "counter_123.db").write_bytes(b"old")
    (tmp_path / "keep.txt").write_text("not a sample file")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    gunicorn_conf.on_starting(None)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]


# -- logs ------------------------------------------------------------------------------------------------

@pytest.fixture
def json_log():
    """The tool's log records as the JSON lines production writes."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("lti_tool")
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.INFO)
    try:
        yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def test_json_logs_carry_the_request_id_and_no_launch_token(app, client, launches, course, json_log):  # noqa: F811
    response = launch(launches, "pupil-secret-sub")
    location = response.headers["Location"]
    assert "lt=" in location
    token = location.split("lt=", 1)[1]
    page = client.get(location, headers={"X-Request-ID": "lb-7f3a.2:1"})
    assert page.status_code == 200 and page.headers["X-Request-ID"] == "lb-7f3a.2:1"
    client.get("/nope", headers={"X-Request-ID": "bad id <script>"})

    lines = json_log()
    raw = json.dumps(lines)
    assert "lt=" not in raw and token not in raw and "pupil-secret-sub" not in raw and "bad id" not in raw
    access = [line for line in lines if line["logger"] == "lti_tool.access"]
    assert {"time", "level", "logger", "message", "request_id", "method", "path", "status",
            "duration_ms"} <= set(access[0])
    pupil = next(line for line in access if line["request_id"] == "lb-7f3a.2:1")
    assert pupil["method"] == "GET" and pupil["path"] == location.split("?")[0].replace("http://localhost", "")
    assert pupil["status"] == 200 and pupil["duration_ms"] >= 0
    launch_line = next(line for line in access if line["path"] == "/lti/launch")
    assert launch_line["status"] == 303 and re.fullmatch(r"[0-9a-f]{32}", launch_line["request_id"])
    refused = [line for line in lines if line["logger"] == "lti_tool.refused"]
    assert refused and all(re.fullmatch(r"[0-9a-f]{32}", line["request_id"]) for line in refused)
    assert all("\n" not in line["request_id"] for line in lines if "request_id" in line)


def test_request_ids():
    assert parse_request_id("abc-123") == "abc-123"
    assert parse_request_id("x" * 128) == "x" * 128
    for unsafe in ("", None, "x" * 129, "a b", "a\nb", "<script>", "-leading"):
        assert re.fullmatch(r"[0-9a-f]{32}", parse_request_id(unsafe))


def test_development_server_request_lines_lose_their_query_string():
    configure_logging("text")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    werkzeug = logging.getLogger("werkzeug")
    werkzeug.addHandler(handler)
    try:
        werkzeug.warning('127.0.0.1 - - [date] "%s" %s %s', "GET /pupil/?lt=abc.def HTTP/1.1", "200", "-")
    finally:
        werkzeug.removeHandler(handler)
    assert "lt=" not in stream.getvalue() and '"GET /pupil/ HTTP/1.1" 200' in stream.getvalue()


def test_log_format_follows_the_environment(tmp_path):
    secret = {"LTI_TOOL_SECRET_KEY": "p" * 40, "LTI_TOOL_BASE_URL": "https://kurser.example.se"}
    assert load_settings({}, instance_path=str(tmp_path))["LOG_FORMAT"] == "text"
    assert load_settings({"LTI_TOOL_ENV": "production", **secret}, instance_path=str(tmp_path))["LOG_FORMAT"] == "json"
    settings = load_settings({"LTI_TOOL_LOG_FORMAT": "json", "LTI_TOOL_METRICS_TOKEN": "12345",
                              "LTI_TOOL_PROXY_FIX_HOPS": "1"}, instance_path=str(tmp_path))
    assert settings["LOG_FORMAT"] == "json" and settings["METRICS_TOKEN"] == "12345" and settings["PROXY_FIX_HOPS"] == 1
    with pytest.raises(ConfigurationError):
        load_settings({"LTI_TOOL_LOG_FORMAT": "xml"}, instance_path=str(tmp_path))
    with pytest.raises(ConfigurationError):
        load_settings({"LTI_TOOL_RATE_LIMIT_PER_ADDRESS": "-1"}, instance_path=str(tmp_path))


def test_database_errors_in_the_log_do_not_carry_the_values(app):
    """The engine hides bound values; PostgreSQL's DETAIL line, which quotes the row, is dropped from logs."""
    from sqlalchemy import insert
    from sqlalchemy.exc import IntegrityError

    from lti_tool.db import get_engine
    from lti_tool.logs import TextFormatter
    from lti_tool.models import RateLimitCounter

    row = {"key": "pupil-secret-sub", "window_start": datetime.now(timezone.utc), "hits": 1}
    with pytest.raises(IntegrityError) as error:
        with get_engine(app).begin() as connection:
            connection.execute(insert(RateLimitCounter).values(**row))
            connection.execute(insert(RateLimitCounter).values(**row))
    assert "[SQL parameters hidden" in str(error.value)
    record = logging.LogRecord("lti_tool", logging.ERROR, __file__, 1, "failed: %s", (str(error.value),),
                               (IntegrityError, error.value, error.tb))
    for formatter in (JsonFormatter(), TextFormatter()):
        line = formatter.format(record)
        assert "pupil-secret-sub" not in line and "IntegrityError" in line
