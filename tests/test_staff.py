"""The national staff console: sign-in (OpenID Connect, local only with the sandbox), CSRF, approvals,
binding, orders, costs, outbox retries, catalog history, and the audit log."""

from __future__ import annotations

import re
import time
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
import responses
from sqlalchemy import select

from lti_tool.db import new_session
from lti_tool.lti.keys import KeyStore
from lti_tool.models import AuditEntry, Deployment, Registration

from .conftest import main_attrs

IDP = "https://idp.example"


def csrf_of(page) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', page.get_data(as_text=True)).group(1)


def sign_in(client, name="Nora Nationell"):
    page = client.get("/staff/sign-in")
    response = client.post("/staff/sign-in/local", data={"name": name, "csrf": csrf_of(page)})
    assert response.status_code == 302
    return csrf_of(client.get("/staff/"))


def test_console_needs_sign_in(client):
    response = client.get("/staff/registrations")
    assert response.status_code == 302 and "/staff/sign-in" in response.headers["Location"]


def test_local_sign_in_needs_csrf_and_the_sandbox(client, app_factory, config):
    assert client.post("/staff/sign-in/local", data={"name": "x"}).status_code == 400
    token = sign_in(client)
    page = client.get("/staff/")
    assert page.status_code == 200 and "Nora Nationell (local)" in page.get_data(as_text=True)
    assert client.post("/staff/sign-out", data={"csrf": token}).status_code == 302
    assert client.get("/staff/").status_code == 302
    production = app_factory({**config, "SANDBOX": False}).test_client()
    assert production.post("/staff/sign-in/local", data={"name": "x"}).status_code == 400  # no CSRF token
    with production.session_transaction() as staff_session:
        staff_session["csrf"] = "a-token-of-this-session"
    assert production.post("/staff/sign-in/local",
                           data={"name": "x", "csrf": "a-token-of-this-session"}).status_code == 404


def test_approve_bind_deactivate_and_audit(app, client, demo):
    with new_session(app) as session:
        registration = Registration(name="Moodle", issuer="https://moodle.example", client_id="m1",
                                    auth_login_url="https://moodle.example/auth", auth_token_url="https://moodle.example/token",
                                    jwks_url="https://moodle.example/jwks", status="pending")
        session.add(registration)
        session.flush()
        session.add(Deployment(registration_id=registration.id, deployment_id="1", status="pending"))
        session.commit()
        registration_id = registration.id
    token = sign_in(client)
    page = client.get("/staff/registrations")
    assert f'data-registration="{registration_id}" data-status="pending"' in page.get_data(as_text=True)
    assert client.post(f"/staff/registrations/{registration_id}/approve", data={}).status_code == 400  # no CSRF
    assert client.post(f"/staff/registrations/{registration_id}/approve", data={"csrf": token}).status_code == 302
    with new_session(app) as session:
        deployment_pk = session.scalar(select(Deployment.id).where(Deployment.deployment_id == "1",
                                                                   Deployment.registration_id == registration_id))
    bad = client.post(f"/staff/deployments/{deployment_pk}/bind",
                      data={"csrf": token, "municipality": ["SE-1490", "SE-1440"]})
    assert bad.status_code == 400  # several municipalities need the custom parameter
    assert client.post(f"/staff/deployments/{deployment_pk}/bind", data={
        "csrf": token, "municipality": ["SE-1490", "SE-1440"], "custom_param": "municipality_code"}).status_code == 303
    with new_session(app) as session:
        deployment = session.get(Deployment, deployment_pk)
        assert deployment.status == "active" and sorted(m.municipality_id for m in deployment.municipalities) == [
            "SE-1440", "SE-1490"]
        assert session.get(Registration, registration_id).status == "active"
    # Deactivating asks first; only the confirming POST turns it off.
    assert client.post(f"/staff/deployments/{deployment_pk}/deactivate", data={"csrf": token}).status_code == 200
    with new_session(app) as session:
        assert session.get(Deployment, deployment_pk).status == "active"
    assert client.post(f"/staff/deployments/{deployment_pk}/deactivate",
                       data={"csrf": token, "confirm": "yes"}).status_code == 303
    with new_session(app) as session:
        assert session.get(Deployment, deployment_pk).status == "inactive"
        actions = [e.action for e in session.scalars(select(AuditEntry).order_by(AuditEntry.id))]
        assert actions == ["registration.approve", "deployment.bind", "deployment.deactivate"]
        assert {e.actor for e in session.scalars(select(AuditEntry))} == {"Nora Nationell (local)"}
    assert 'data-entries="3"' in client.get("/staff/audit").get_data(as_text=True)


def test_orders_costs_csv_catalog_and_outbox_pages(app, client, demo, tmp_path):
    from lti_tool.services import seats

    from .catalog_factory import add_course

    with new_session(app) as session:
        add_course(session)
        seats.set_order(session, "SE-1490", "GIT-AK-1", "now", 4)
        session.commit()
    sign_in(client)
    orders = client.get("/staff/orders").get_data(as_text=True)
    assert "GIT-AK-1" in orders and "0 / 4" in orders
    csv = client.get("/staff/costs?format=csv")
    assert csv.mimetype == "text/csv" and csv.get_data(as_text=True).startswith("\ufeffmunicipality,course,round")
    assert csv.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert client.get("/staff/costs").status_code == 200
    assert client.get("/staff/catalog").status_code == 200
    assert main_attrs(client.get("/staff/outbox"))["console"] == "staff"


def test_catalog_sync_now(app, client, config, app_factory):
    from pathlib import Path

    feed = Path(__file__).parent / "data" / "catalog" / "feed-small.json"
    console = app_factory({**config, "CATALOG_SOURCE": str(feed)}).test_client()
    token = sign_in(console)
    assert console.post("/staff/catalog/sync", data={"csrf": token}).status_code == 302
    assert "applied" in console.get("/staff/catalog").get_data(as_text=True)


@pytest.fixture
def idp(tmp_path):
    store = KeyStore(tmp_path / "idp")
    key = store.ensure()
    return store, key


def test_oidc_sign_in(app_factory, config, idp):
    store, key = idp
    app = app_factory({**config, "STAFF_OIDC_ISSUER": IDP, "STAFF_OIDC_CLIENT_ID": "console",
                       "STAFF_OIDC_CLIENT_SECRET": "s3cret",
                       "STAFF_USERS": "nora@kulturskola.example, listed-subject"})
    client = app.test_client()
    metadata = {"issuer": IDP, "authorization_endpoint": IDP + "/authorize", "token_endpoint": IDP + "/token",
                "jwks_uri": IDP + "/jwks", "response_types_supported": ["code"],
                "id_token_signing_alg_values_supported": ["RS256"]}

    def sign(claims, nonce):
        now = int(time.time())
        return jwt.encode({"iss": IDP, "aud": "console", "iat": now, "exp": now + 300, "nonce": nonce, **claims},
                          key.private_pem, algorithm="RS256", headers={"kid": key.kid})

    nora = "nora@kulturskola.example"
    cases = (
        ({"sub": "u-1", "email": nora, "email_verified": True}, True),
        ({"sub": "u-2", "email": "someone@else.example", "email_verified": True}, False),
        # An e-mail the provider has not verified proves nothing, whatever it says.
        ({"sub": "u-3", "email": nora}, False),
        ({"sub": "u-4", "email": nora, "email_verified": False}, False),
        # No e-mail at all: a clean refusal (not an error), unless the subject itself is listed.
        ({"sub": "u-5"}, False),
        ({"sub": "u-6", "email": None}, False),
        ({"sub": "listed-subject"}, True),
    )
    for claims, allowed in cases:
        client = app.test_client()
        with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
            mock.get(IDP + "/.well-known/openid-configuration", json=metadata)
            mock.get(IDP + "/jwks", json=store.jwks())
            start = client.get("/staff/sign-in/oidc")
            assert start.status_code == 302 and start.headers["Location"].startswith(IDP + "/authorize")
            query = {k: v[0] for k, v in parse_qs(urlsplit(start.headers["Location"]).query).items()}
            mock.post(IDP + "/token", json={"access_token": "at", "token_type": "Bearer", "expires_in": 300,
                                            "id_token": sign(claims, query["nonce"])})
            back = client.get("/staff/callback", query_string={"code": "c", "state": query["state"]})
        if allowed:
            assert back.status_code == 302 and client.get("/staff/").status_code == 200, claims
        else:
            assert back.status_code == 403 and 'data-error-code="staff_refused"' in back.get_data(as_text=True), claims
            assert client.get("/staff/").status_code == 302, claims
    bad_state = client.get("/staff/callback", query_string={"code": "c", "state": "forged"})
    assert bad_state.status_code == 403
