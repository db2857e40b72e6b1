"""The tool's keys: created on first start, published as JWKS, rotated with a grace period."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import jwt
import pytest

from lti_tool.lti.keys import KeyStore


def verify_with_jwks(token: str, jwks: dict) -> dict:
    kid = jwt.get_unverified_header(token)["kid"]
    matches = [k for k in jwks["keys"] if k["kid"] == kid]
    if not matches:
        raise LookupError(f"{kid} not published")
    return jwt.decode(token, jwt.PyJWK(matches[0]).key, algorithms=["RS256"])


def test_first_start_creates_one_key(tmp_path):
    store = KeyStore(tmp_path / "keys")
    key = store.ensure()
    assert store.ensure().kid == key.kid  # the second start reuses it
    assert (tmp_path / "keys" / f"{key.kid}.pem").stat().st_mode & 0o777 == 0o600
    jwks = store.jwks()
    assert [k["kid"] for k in jwks["keys"]] == [key.kid]
    assert {"kty", "alg", "use", "kid", "n", "e"} <= set(jwks["keys"][0])
    assert "d" not in jwks["keys"][0]  # never the private part


def test_app_start_creates_keys_and_serves_jwks(client, app):
    for path in ("/lti/jwks", "/.well-known/jwks.json"):
        response = client.get(path)
        assert response.status_code == 200
        keys = response.get_json()["keys"]
        assert len(keys) == 1 and keys[0]["kid"]


def test_rotation_publishes_both_and_old_tokens_verify_during_grace(tmp_path):
    store = KeyStore(tmp_path, grace=timedelta(days=7))
    old = store.ensure()
    token = jwt.encode({"sub": "x"}, old.private_pem, algorithm="RS256", headers={"kid": old.kid})
    now = datetime.now(timezone.utc)
    new, removed = store.rotate(now)
    assert removed == [] and new.kid != old.kid and store.current().kid == new.kid
    jwks = store.jwks(now + timedelta(days=6))
    assert {k["kid"] for k in jwks["keys"]} == {old.kid, new.kid}
    assert verify_with_jwks(token, jwks)["sub"] == "x"
    # After the grace period the old key is no longer published, and the next rotation deletes it.
    later = now + timedelta(days=7, seconds=1)
    assert [k["kid"] for k in store.jwks(later)["keys"]] == [new.kid]
    with pytest.raises(LookupError):
        verify_with_jwks(token, store.jwks(later))
    newest, removed = store.rotate(later)
    assert removed == [old.kid] and not (tmp_path / f"{old.kid}.pem").exists()
    assert {k["kid"] for k in store.jwks(later)["keys"]} == {new.kid, newest.kid}


def test_purge_deletes_only_expired_keys(tmp_path):
    store = KeyStore(tmp_path, grace=timedelta(days=1))
    store.ensure()
    now = datetime.now(timezone.utc)
    store.rotate(now)
    assert store.purge(now) == []
    assert len(store.purge(now + timedelta(days=2))) == 1


def test_keys_cli_rotate_and_list(runner, client):
    before = client.get("/lti/jwks").get_json()["keys"]
    result = runner.invoke(args=["keys", "rotate"])
    assert result.exit_code == 0 and "new signing key" in result.output
    after = client.get("/lti/jwks").get_json()["keys"]
    assert len(after) == 2 and before[0]["kid"] in {k["kid"] for k in after}
    listing = runner.invoke(args=["keys", "list"]).output
    assert "current" in listing and "retired" in listing
    assert runner.invoke(args=["keys", "purge"]).output.startswith("removed 0")


def test_service_calls_sign_with_the_published_kid(app):
    """The client assertion of a service call (AGS, NRPS) names a kid the tool's JWKS publishes."""
    from urllib.parse import parse_qs

    import responses

    from lti_tool.db import new_session
    from lti_tool.lti import get_lti
    from lti_tool.lti.ags import ServiceClient
    from lti_tool.models import Registration

    store = get_lti(app).keys
    with new_session(app) as session, responses.RequestsMock() as mock:
        registration = Registration(name="c", issuer="https://lms.example", client_id="c-1",
                                    auth_login_url="https://lms.example/auth",
                                    auth_token_url="https://lms.example/token", jwks_url="https://lms.example/jwks")
        session.add(registration)
        session.flush()
        mock.post("https://lms.example/token", json={"access_token": "t", "expires_in": 3600})
        ServiceClient(store, policy=get_lti(app).outbound).connector(session, registration).get_access_token(["s"])
        assertion = parse_qs(mock.calls[0].request.body)["client_assertion"][0]
    kid = jwt.get_unverified_header(assertion)["kid"]
    assert kid == store.current().kid
    key = next(k for k in store.jwks()["keys"] if k["kid"] == kid)
    claims = jwt.decode(assertion, jwt.PyJWK(key).key, algorithms=["RS256"], audience="https://lms.example/token")
    assert claims["iss"] == claims["sub"] == "c-1" and claims["exp"] - claims["iat"] == 300 and claims["jti"]
