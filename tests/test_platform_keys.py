"""Platform JWKS: cached as the HTTP cache headers say, fetched again once on an unknown kid."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
import requests
import responses

from lti_tool.db import new_session
from lti_tool.domain.errors import LaunchError
from lti_tool.lti.keys import KeyStore
from lti_tool.lti.platform_keys import PlatformKeys, _throttle_key, cache_lifetime

URL = "https://lms.example/jwks"
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize("headers, seconds", [
    ({"Cache-Control": "public, max-age=600"}, 600),
    ({"Cache-Control": "s-maxage=60, max-age=600"}, 60),
    ({"Cache-Control": "no-store"}, 0),
    ({"Cache-Control": "no-cache"}, 0),
    ({"Expires": "Sun, 22 Nov 2026 13:00:00 GMT"}, 3600),
    ({"Expires": "Sun, 22 Nov 2026 11:00:00 GMT"}, 0),
    ({"Expires": "garbage"}, 0),
    ({}, 1234),
])
def test_cache_lifetime(headers, seconds):
    assert cache_lifetime(headers, NOW, timedelta(seconds=1234)) == timedelta(seconds=seconds)


@pytest.fixture
def jwks_keys(tmp_path):
    store = KeyStore(tmp_path / "platform")
    return store, store.ensure()


class Keys:
    """PlatformKeys used as a request would: each lookup in its own committed transaction."""

    def __init__(self, app, min_interval):
        self.app = app
        self.keys = PlatformKeys(default_lifetime=timedelta(hours=1),
                                 refetch_min_interval=timedelta(seconds=min_interval), timeout=2)

    def get_key(self, url, kid):
        with new_session(self.app) as session:
            try:
                return self.keys.get_key(session, url, kid)
            finally:
                session.commit()


def make(app, min_interval=0):
    return Keys(app, min_interval)


def test_cached_by_max_age(app, jwks_keys):
    store, key = jwks_keys
    keys = make(app)
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        mock.get(URL, json=store.jwks(), headers={"Cache-Control": "max-age=600", "ETag": '"v1"'})
        assert keys.get_key(URL, key.kid) is not None
        assert keys.get_key(URL, key.kid) is not None
        assert len(mock.calls) == 1


def test_no_store_fetches_every_time_and_uses_etag(app, jwks_keys):
    store, key = jwks_keys
    keys = make(app)
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        mock.get(URL, json=store.jwks(), headers={"Cache-Control": "no-cache", "ETag": '"v1"'})
        keys.get_key(URL, key.kid)
        mock.replace(responses.GET, URL, status=304, headers={"Cache-Control": "no-cache", "ETag": '"v1"'})
        assert keys.get_key(URL, key.kid) is not None
        assert len(mock.calls) == 2 and mock.calls[1].request.headers["If-None-Match"] == '"v1"'


def test_unknown_kid_refetched_once(app, jwks_keys):
    store, key = jwks_keys
    keys = make(app)
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        mock.get(URL, json=store.jwks(), headers={"Cache-Control": "max-age=600"})
        keys.get_key(URL, key.kid)
        with pytest.raises(LaunchError) as caught:
            keys.get_key(URL, "rotated-away")
        assert caught.value.code == "key_unknown" and len(mock.calls) == 2


def test_refetch_is_throttled_per_kid_and_capped_per_key_set(app, jwks_keys):
    store, key = jwks_keys
    keys, other_worker = make(app, min_interval=60), make(app, min_interval=60)
    assert keys.keys.refetch_cap == 3
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        mock.get(URL, json=store.jwks(), headers={"Cache-Control": "max-age=600"})
        keys.get_key(URL, key.kid)
        for _ in range(3):
            with pytest.raises(LaunchError):
                keys.get_key(URL, "random-kid")
        assert len(mock.calls) == 2  # the same unknown kid: fetched again once in the interval
        for i in range(30):  # a flood of made-up kids, on two workers
            with pytest.raises(LaunchError) as caught:
                (keys if i % 2 else other_worker).get_key(URL, f"made-up-{i}")
            assert caught.value.code == "key_unknown"
        assert len(mock.calls) == 1 + 3  # the cap holds, whatever the kids and whichever worker
        assert keys.get_key(URL, key.kid) is not None and len(mock.calls) == 4


def test_an_attackers_unknown_kid_does_not_hold_back_the_platforms_new_key(app, jwks_keys, tmp_path):
    """The refetch throttle used to be per key set: one made-up kid blocked the platform's genuine new key
    for the whole interval. Now a kid nobody asked for yet is fetched on its first launch."""
    store, key = jwks_keys
    rotated = KeyStore(tmp_path / "rotated")
    new_key = rotated.ensure()
    keys = make(app, min_interval=60)
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        mock.get(URL, json=store.jwks(), headers={"Cache-Control": "max-age=600"})
        keys.get_key(URL, key.kid)
        with pytest.raises(LaunchError):
            keys.get_key(URL, "attackers-made-up-kid")
        mock.replace(responses.GET, URL, json={"keys": store.jwks()["keys"] + rotated.jwks()["keys"]},
                     headers={"Cache-Control": "max-age=600"})  # the platform rotates its key just after
        assert keys.get_key(URL, new_key.kid) is not None
        assert len(mock.calls) == 3


def test_the_platforms_new_key_is_accepted_on_its_first_launch_after_an_attackers_kid(config, launches_factory,
                                                                                     platform_http):
    from .conftest import error_code

    launches = launches_factory({**config, "JWKS_REFETCH_MIN_INTERVAL_SECONDS": 60})
    assert launches.launch().status_code == 303
    refused = launches.launch(headers={"kid": "attackers-made-up-kid"})
    assert refused.status_code == 400 and error_code(refused) == "key_unknown"
    launches.platform.keys.rotate()  # the platform's next launch is signed by a key the tool never saw
    fetched = len(platform_http.calls)
    assert launches.launch().status_code == 303
    assert len(platform_http.calls) == fetched + 1


def test_the_throttle_is_kept_in_the_database_and_old_rows_go(app, jwks_keys):
    from sqlalchemy import select

    from lti_tool.models import RateLimitCounter

    store, key = jwks_keys
    keys = make(app, min_interval=60)
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        mock.get(URL, json=store.jwks(), headers={"Cache-Control": "max-age=600"})
        keys.get_key(URL, key.kid)
        with pytest.raises(LaunchError):
            keys.get_key(URL, "made-up")
    with new_session(app) as session:
        rows = session.scalars(select(RateLimitCounter)).all()
        assert sorted(row.key[:7] for row in rows) == ["jwks:k:", "jwks:u:"]
        assert all(len(row.key) <= 64 and "made-up" not in row.key for row in rows)
        for row in rows:
            row.window_start -= timedelta(minutes=5)
        session.commit()
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        mock.get(URL, json=store.jwks(), headers={"Cache-Control": "max-age=600"})
        with pytest.raises(LaunchError):
            keys.get_key(URL, "made-up")  # the interval is over: fetched again
        with pytest.raises(LaunchError):
            keys.get_key(URL, "another-made-up")
        assert len(mock.calls) == 2
    with new_session(app) as session:
        for row in session.scalars(select(RateLimitCounter).where(RateLimitCounter.key.like("jwks:k:%"))):
            row.window_start -= timedelta(minutes=5)
        session.commit()
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        mock.get(URL, json=store.jwks(), headers={"Cache-Control": "max-age=600"})
        with pytest.raises(LaunchError):
            keys.get_key(URL, "a-third-made-up")
    with new_session(app) as session:  # the rows of kids whose interval is over are gone
        kid_rows = session.scalars(select(RateLimitCounter).where(RateLimitCounter.key.like("jwks:k:%"))).all()
        assert [row.key for row in kid_rows] == [_throttle_key("k", URL, "a-third-made-up")]


@pytest.mark.parametrize("reply", [
    {"body": requests.ConnectionError("down")},
    {"status": 500, "body": "oops"},
    {"status": 200, "body": "not json"},
    {"status": 200, "body": json.dumps({"no": "keys"})},
])
def test_platform_jwks_unavailable(app, reply):
    keys = make(app)
    with responses.RequestsMock() as mock:
        mock.get(URL, **reply)
        with pytest.raises(LaunchError) as caught:
            keys.get_key(URL, "kid")
    assert caught.value.code == "platform_keys_unavailable"


def test_non_rsa_or_non_signing_keys_are_ignored(app, jwks_keys):
    store, key = jwks_keys
    jwk = store.jwks()["keys"][0]
    keys = make(app)
    with responses.RequestsMock() as mock:
        mock.get(URL, json={"keys": [dict(jwk, use="enc")]})
        with pytest.raises(LaunchError):
            keys.get_key(URL, key.kid)


def test_launch_page_when_the_platform_jwks_is_down(app, client, demo, platform):
    from .conftest import LaunchActions, error_code

    with responses.RequestsMock() as mock:
        mock.get(platform.jwks_url, body=requests.ConnectTimeout("timeout"))
        response = LaunchActions(client, platform).launch()
    assert response.status_code == 400 and error_code(response) == "platform_keys_unavailable"


def test_a_fresh_key_is_kept_by_the_worker(app, jwks_keys):
    """While the platform's cache headers allow, a known kid needs neither the platform nor the database."""
    from sqlalchemy import delete

    from lti_tool.models import PlatformKeySet

    store, key = jwks_keys
    keys = make(app)
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        mock.get(URL, json=store.jwks(), headers={"Cache-Control": "max-age=600"})
        first = keys.get_key(URL, key.kid)
        with new_session(app) as session:
            session.execute(delete(PlatformKeySet))
            session.commit()
        assert keys.get_key(URL, key.kid) is first
        assert len(mock.calls) == 1
