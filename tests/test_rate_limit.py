"""Rate limits of the LTI login and launch: per client address and per registration, shared by every worker
(database or Redis), 429 with Retry-After over the limit, and never an outage when the counter is down."""

from __future__ import annotations

import logging
import os
import uuid
from concurrent.futures import ThreadPoolExecutor

import jwt
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from prometheus_client import REGISTRY
from sqlalchemy import create_engine, func, select

from lti_tool.db import get_engine, new_session
from lti_tool.models import Base, RateLimitCounter
from lti_tool.rate_limit import Limit, RateLimiter, SqlCounter, get_limiter

from .conftest import error_code

REDIS_URL = os.environ.get("TEST_REDIS_URL", "")
ISSUER = "https://lms.example"


def limited(config, **settings):
    # A day's window: a test's requests never straddle two fixed windows (a minute's would now and then).
    return {**config, "RATE_LIMIT_PER_ADDRESS": 0, "RATE_LIMIT_PER_REGISTRATION": 0,
            "RATE_LIMIT_WINDOW_SECONDS": 86400, **settings}


def login(client, address="198.51.100.1", **params):
    return client.get("/lti/login", query_string=params, environ_base={"REMOTE_ADDR": address})


def id_token(issuer=ISSUER, audience="client-1") -> str:
    """An id_token as a platform would post it; the limiter reads it unverified, the launch then refuses it."""
    return jwt.encode({"iss": issuer, "aud": audience, "sub": "someone"}, "not-the-platform-key-" * 2,
                      algorithm="HS256")


def launch(client, address="198.51.100.1", token=None):
    return client.post("/lti/launch", data={"id_token": token or id_token(), "state": "s"},
                       environ_base={"REMOTE_ADDR": address})


@pytest.fixture(params=["database", pytest.param("redis", marks=pytest.mark.redis)])
def backend(request, config):
    """Settings for the app under test: the database counter, or Redis (with keys of its own)."""
    if request.param == "database":
        yield {}, None
        return
    if not REDIS_URL:
        pytest.skip("TEST_REDIS_URL not set")
    prefix = f"test:rl:{uuid.uuid4().hex}:"
    yield {"REDIS_URL": REDIS_URL}, prefix
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    for key in client.scan_iter(prefix + "*"):
        client.delete(key)
    client.close()


def make(app_factory, settings, prefix):
    app = app_factory(settings)
    if prefix:
        get_limiter(app).counter.prefix = prefix
    return app


def test_login_per_address(config, app_factory, backend):
    extra, prefix = backend
    app = make(app_factory, limited(config, RATE_LIMIT_PER_ADDRESS=3, **extra), prefix)
    client = app.test_client()
    assert [login(client).status_code for _ in range(3)] == [400, 400, 400]  # counted, then refused as invalid
    refused = login(client)
    assert refused.status_code == 429 and error_code(refused) == "rate_limited"
    assert 1 <= int(refused.headers["Retry-After"]) <= 86400
    assert login(client, address="198.51.100.2").status_code == 400  # another address has its own count
    assert launch(client).status_code != 429  # the launch is counted apart from the login


def test_login_per_registration(config, app_factory, backend):
    extra, prefix = backend
    app = make(app_factory, limited(config, RATE_LIMIT_PER_REGISTRATION=2, **extra), prefix)
    client = app.test_client()
    params = {"iss": ISSUER, "client_id": "client-1"}
    assert [login(client, address=f"198.51.100.{i}", **params).status_code for i in range(2)] == [400, 400]
    assert login(client, address="198.51.100.9", **params).status_code == 429
    assert login(client, address="198.51.100.9", iss=ISSUER, client_id="client-2").status_code == 400
    assert login(client, address="198.51.100.9", iss="https://other.example").status_code == 400


def test_launch_per_address_and_per_registration(config, app_factory, backend):
    extra, prefix = backend
    app = make(app_factory, limited(config, RATE_LIMIT_PER_ADDRESS=2, RATE_LIMIT_PER_REGISTRATION=3, **extra),
               prefix)
    client = app.test_client()
    assert [launch(client).status_code for _ in range(2)] == [400, 400]
    refused = launch(client)
    assert refused.status_code == 429 and error_code(refused) == "rate_limited" and refused.headers["Retry-After"]
    assert launch(client, address="198.51.100.2").status_code == 400  # 3rd of the registration
    assert launch(client, address="198.51.100.3").status_code == 429  # 4th: the registration's limit
    assert launch(client, address="198.51.100.3", token=id_token(audience="client-2")).status_code == 400


def test_refusal_page_is_in_the_pupils_language(config, app_factory):
    client = app_factory(limited(config, RATE_LIMIT_PER_ADDRESS=1)).test_client()
    token = jwt.encode({"iss": ISSUER, "aud": "c", "https://purl.imsglobal.org/spec/lti/claim/launch_presentation":
                        {"locale": "nb-NO"}}, "not-the-platform-key-" * 2, algorithm="HS256")
    launch(client, token=token)
    page = launch(client, token=token)
    assert page.status_code == 429 and "For mange forsøk" in page.get_data(as_text=True)


def test_real_launches_pass_under_the_defaults(app, launches):
    for user in ("p1", "p2", "p3"):
        assert launches.launch(launches.spec(user=user)).status_code == 303


def test_limits_off(config, app_factory):
    app = app_factory(limited(config))
    assert get_limiter(app) is None
    client = app.test_client()
    assert {login(client).status_code for _ in range(5)} == {400}


def test_refusals_are_counted_in_the_metrics(config, app_factory):
    client = app_factory(limited(config, RATE_LIMIT_PER_ADDRESS=1)).test_client()
    labels = {"endpoint": "lti.login", "limit": "address"}
    before = REGISTRY.get_sample_value("lti_rate_limited_total", labels) or 0
    login(client)
    login(client)
    assert REGISTRY.get_sample_value("lti_rate_limited_total", labels) == before + 1


# -- the counters ----------------------------------------------------------------------------------------

def test_database_window_rolls_over_and_keeps_no_addresses(app):
    now = [1_000_040.0]  # 20 s into a window
    limiter = RateLimiter(SqlCounter(get_engine(app)), "secret", window_seconds=60, clock=lambda: now[0])
    limit = [Limit("address", "lti.login\x00198.51.100.1", 2)]
    assert [limiter.check(limit).allowed for _ in range(3)] == [True, True, False]
    assert limiter.check(limit).retry_after == 60 - 20
    now[0] += 60
    assert limiter.check(limit).allowed
    with new_session(app) as session:
        rows = session.scalars(select(RateLimitCounter)).all()
        assert len(rows) == 1 and rows[0].hits == 1 and "198.51" not in rows[0].key


def test_database_counts_every_concurrent_request(app):
    limiter = RateLimiter(SqlCounter(get_engine(app)), "secret", window_seconds=3600, clock=lambda: 7200.0)
    limit = [Limit("address", "x", 1000)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda _i: limiter.check(limit), range(40)))
    with new_session(app) as session:
        assert session.scalar(select(func.sum(RateLimitCounter.hits))) == 40


def test_old_rows_are_purged(app):
    engine = get_engine(app)
    counter = SqlCounter(engine)
    counter.hit(["old"], 0, 60)
    counter.PURGE_CHANCE = 1.0
    counter.hit(["new"], 100_000, 60)
    with new_session(app) as session:
        assert session.scalars(select(RateLimitCounter.key)).all() == ["new"]


def test_database_down_fails_open(caplog):
    engine = create_engine("postgresql+psycopg://postgres@127.0.0.1:1/nothing")
    limiter = RateLimiter(SqlCounter(engine), "secret")
    with caplog.at_level(logging.WARNING, logger="lti_tool.rate_limit"):
        assert limiter.check([Limit("address", "x", 1)]).allowed
        assert limiter.check([Limit("address", "x", 1)]).allowed
    assert len([r for r in caplog.records if "rate limits not counted" in r.getMessage()]) == 1  # once a minute
    engine.dispose()


def test_redis_down_fails_open(config, app_factory, caplog):
    app = app_factory(limited(config, RATE_LIMIT_PER_ADDRESS=1, REDIS_URL="redis://127.0.0.1:1/0"))
    client = app.test_client()
    before = REGISTRY.get_sample_value("lti_rate_limit_errors_total", {"backend": "redis"}) or 0
    with caplog.at_level(logging.WARNING, logger="lti_tool.rate_limit"):
        statuses = [login(client).status_code for _ in range(3)]
    assert statuses == [400, 400, 400]  # login_invalid from the view: let through, never 429 or 500
    assert any("redis unavailable" in r.getMessage() for r in caplog.records)
    assert REGISTRY.get_sample_value("lti_rate_limit_errors_total", {"backend": "redis"}) == before + 3


def test_migration_matches_the_model(app):
    with get_engine(app).connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert not [d for d in differences if "rate_limit_counters" in repr(d)]
