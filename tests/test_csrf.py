"""Cross-site request forgery: every state-changing request of every blueprint is refused unless it carries
the proof its rule asks for; an endpoint with no rule is refused (default deny)."""

from __future__ import annotations

import re

from flask import Blueprint
from sqlalchemy import func, select

from lti_tool import create_app
from lti_tool.db import new_session
from lti_tool.models import LessonProgress, Order
from lti_tool.web.csrf import rule_for

from .conftest import error_code
from .test_delivery import Person, content  # noqa: F401  (fixture)
from .test_staff import csrf_of, sign_in

UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}


def test_every_state_changing_endpoint_has_a_rule(app):
    """A new form must say what proves it came from the tool's own page; the check refuses it otherwise."""
    for rule in app.url_map.iter_rules():
        if rule.methods & UNSAFE:
            blueprint = rule.endpoint.rsplit(".", 1)[0] if "." in rule.endpoint else None
            assert rule_for(rule.endpoint, blueprint) is not None, rule.endpoint


def test_an_endpoint_without_a_rule_is_refused(config):
    app = create_app(config)
    extra = Blueprint("extra", __name__)

    @extra.route("/extra/change", methods=["POST"])
    def change():
        return "changed"

    app.register_blueprint(extra)
    response = app.test_client().post("/extra/change", data={"csrf": "-", "lt": "x"})
    assert response.status_code == 400 and error_code(response) == "csrf_invalid"
    assert "changed" not in response.get_data(as_text=True)


def test_staff_session_without_a_token_proves_nothing(client, demo, app):
    """Right after sign-in the session may hold no token yet: neither "-" nor an empty value passes."""
    with client.session_transaction() as staff_session:
        staff_session.clear()
        staff_session["staff"] = {"name": "someone", "via": "local"}
    with new_session(app) as session:
        from lti_tool.models import Registration

        registration = session.scalars(select(Registration)).first()
        status = registration.status
    for forged in ({"csrf": "-"}, {"csrf": ""}, {}):
        response = client.post(f"/staff/registrations/{registration.id}/approve", data=forged)
        assert response.status_code == 400 and error_code(response) == "csrf_invalid"
    with new_session(app) as session:
        assert session.get(Registration, registration.id).status == status


def test_staff_token_of_another_session_is_refused(app, client, demo):
    token = sign_in(client)
    other = app.test_client()
    other_token = sign_in(other, "Otto Other")
    assert token != other_token
    response = client.post("/staff/sign-out", data={"csrf": other_token})
    assert response.status_code == 400 and error_code(response) == "csrf_invalid"
    assert client.post("/staff/sign-out", data={"csrf": csrf_of(client.get("/staff/"))}).status_code == 302


def test_pupil_forms_need_the_launch_token(app, client, launches, content):
    pupil = Person(client, launches, "p1")
    lesson = f"/lesson/{content['lesson1']}"
    for query in ("", "?lt=", "?lt=forged.token.value", f"?lt={pupil.token[:-2]}xx"):
        response = client.post(lesson + query, data={})
        assert response.status_code == 400 and error_code(response) == "csrf_invalid", query
    with new_session(app) as session:
        assert session.scalar(select(func.count()).select_from(LessonProgress)) == 0
    assert pupil.post(lesson, {}).status_code == 303
    assert client.post("/withdraw", data={"round": "1"}).status_code == 400
    assert client.post("/waitlist", data={"wt": "forged"}).status_code == 400


def test_teacher_review_and_municipal_order_need_the_launch_token(app, client, launches, content):
    response = client.post("/teach/submission/1", data={"feedback": "x", "score": "1"})
    assert response.status_code == 400 and error_code(response) == "csrf_invalid"
    admin = launches.launch(launches.spec(role="administrator", user="admin-1"))
    token = re.search(r"lt=([^&\"]+)", admin.headers["Location"]).group(1)
    with new_session(app) as session:
        orders = session.scalar(select(func.count()).select_from(Order))
    response = client.post("/municipal/orders", data={"round": "1", "seats": "99"})
    assert response.status_code == 400 and error_code(response) == "csrf_invalid"
    response = client.post("/municipal/orders?lt=" + token[:-3] + "abc", data={"round": "1", "seats": "99"})
    assert response.status_code == 400 and error_code(response) == "csrf_invalid"
    with new_session(app) as session:
        assert session.scalar(select(func.count()).select_from(Order)) == orders


def test_registration_form_needs_its_signed_form(client):
    response = client.post("/lti/register", data={"carried": "forged"})
    assert response.status_code == 400 and error_code(response) == "csrf_invalid"
