"""One-time login states: a nonce is consumed once, across workers, in the database or in Redis."""

from __future__ import annotations

import os
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest

from lti_tool.db import new_session
from lti_tool.lti.storage import RedisLoginStore, SqlLoginStore

REDIS_URL = os.environ.get("TEST_REDIS_URL", "")


@pytest.fixture(params=["sql", pytest.param("redis", marks=pytest.mark.redis)])
def store(request, app):
    if request.param == "sql":
        yield SqlLoginStore()
        return
    if not REDIS_URL:
        pytest.skip("TEST_REDIS_URL not set")
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    store = RedisLoginStore(client)
    store.prefix = f"test:{uuid.uuid4().hex}:"
    yield store
    for key in client.scan_iter(store.prefix + "*"):
        client.delete(key)
    client.close()


def call(app, method, *args):
    """One call in its own committed transaction, as one request of one worker."""
    with new_session(app) as session:
        result = method(session, *args)
        session.commit()
        return result


def test_save_get_consume_once(app, store):
    call(app, store.save, "s1", "n1", 7, timedelta(minutes=5))
    record = call(app, store.get, "s1")
    assert (record.nonce, record.registration_id, record.used) == ("n1", 7, False)
    assert call(app, store.consume, "s1", "wrong-nonce") is False
    assert call(app, store.consume, "s1", "n1") is True
    assert call(app, store.consume, "s1", "n1") is False
    assert call(app, store.get, "s1").used is True
    assert call(app, store.get, "unknown") is None


def test_expired_states_are_gone(app, store):
    call(app, store.save, "old", "n-old", 1, timedelta(seconds=-1))
    assert call(app, store.get, "old") is None
    assert call(app, store.consume, "old", "n-old") is False


def test_concurrent_consumers_one_winner(app, store):
    call(app, store.save, "race", "n-race", 1, timedelta(minutes=5))
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda _i: call(app, store.consume, "race", "n-race"), range(16)))
    assert results.count(True) == 1


def test_purge_expired_sql(app):
    store = SqlLoginStore()
    call(app, store.save, "a", "na", 1, timedelta(seconds=-1))
    call(app, store.save, "b", "nb", 1, timedelta(minutes=5))
    assert call(app, store.purge_expired) == 1
    assert call(app, store.get, "b") is not None


def test_logins_purge_cli(runner):
    assert runner.invoke(args=["logins", "purge"]).output.startswith("removed 0")


@pytest.mark.redis
def test_launch_with_redis_store(config, launches_factory):
    if not REDIS_URL:
        pytest.skip("TEST_REDIS_URL not set")
    launches = launches_factory({**config, "REDIS_URL": REDIS_URL})
    spec = launches.spec()
    auth = launches.login(spec)
    token = launches.platform.build_id_token(spec, auth["nonce"])
    assert launches.client.post("/lti/launch", data={"id_token": token, "state": auth["state"]}).status_code == 303
    launches.client.set_cookie(f"lti_state_{auth['state']}", auth["state"], path="/lti/")
    again = launches.client.post("/lti/launch", data={"id_token": token, "state": auth["state"]})
    assert again.status_code == 400 and 'data-error-code="nonce_replayed"' in again.get_data(as_text=True)
