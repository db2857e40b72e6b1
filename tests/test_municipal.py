"""The municipal console: only the launch's own municipality; ordering, budget changes never below the
seats taken, waiting lists and cost so far; contacts; audit."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from lti_tool.db import new_session
from lti_tool.models import AuditEntry, CourseRound, Order
from lti_tool.services import seats

from .catalog_factory import add_course
from .conftest import error_code, main_attrs


@pytest.fixture
def catalog(app, demo):
    with new_session(app) as session:
        add_course(session)
        seats.set_order(session, "SE-1490", "GIT-AK-1", "now", 1)
        seats.set_order(session, "NO-0301", "GIT-AK-1", "now", 7)
        session.commit()


def console(client, launches, municipality="SE-1490", role="administrator", user="admin-1"):
    response = launches.launch(launches.spec(municipality, role=role, user=user))
    assert response.status_code == 303
    page = client.get(response.headers["Location"])
    token = re.search(r"lt=([^&\"]+)", response.headers["Location"]).group(1)
    return page, token


def round_pk(app, round_id="now"):
    with new_session(app) as session:
        return session.scalar(select(CourseRound.id).where(CourseRound.round_id == round_id))


def test_administrator_sees_only_their_municipality(app, client, launches, catalog):
    page, _token = console(client, launches)
    attrs = main_attrs(page)
    assert (attrs["console"], attrs["municipality"], attrs["orders"]) == ("municipal", "SE-1490", "1")
    body = page.get_data(as_text=True)
    assert 'data-taken="0" data-budget="1"' in body and 'data-budget="7"' not in body  # not Oslo's order


def test_order_and_change_budget_never_below_taken(app, client, launches, catalog):
    _page, token = console(client, launches)
    later = round_pk(app, "later")
    ordered = client.post(f"/municipal/orders?lt={token}", data={"round": later, "seats": "3"})
    assert ordered.status_code == 303
    # a pupil takes the one seat of the first order
    assert launches.launch(launches.spec("SE-1490", user="p1", course="GIT-AK-1")).status_code == 303
    refused = client.post(f"/municipal/orders?lt={token}", data={"round": round_pk(app), "seats": "0"})
    assert refused.status_code == 409 and error_code(refused) == "budget_below_taken"
    assert client.post(f"/municipal/orders?lt={token}", data={"round": round_pk(app), "seats": "x"}).status_code == 400
    assert client.post(f"/municipal/orders?lt={token}", data={"round": round_pk(app), "seats": "4"}).status_code == 303
    now = round_pk(app)
    with new_session(app) as session:
        budgets = {(o.municipality_id, o.round_pk): (o.seats_budget, o.seats_taken) for o in session.scalars(select(Order))}
        assert budgets[("SE-1490", now)] == (4, 1) and budgets[("SE-1490", later)] == (3, 0)
        assert budgets[("NO-0301", now)] == (7, 0)
        actions = [e.action for e in session.scalars(select(AuditEntry))]
        assert actions == ["order.set", "order.set"]
    page = client.get(f"/municipal/?lt={token}")
    assert "1\xa0900,00\xa0kr" in page.get_data(as_text=True)  # cost so far: one seat, in Swedish format


def test_waiting_list_is_shown(app, client, launches, catalog):
    launches.launch(launches.spec("SE-1490", user="p1", course="GIT-AK-1"))
    refused = launches.launch(launches.spec("SE-1490", user="p2", course="GIT-AK-1"))
    wt = re.search(r'name="wt" value="([^"]+)"', refused.get_data(as_text=True)).group(1)
    client.post("/waitlist", data={"wt": wt})
    page, _ = console(client, launches)
    assert re.search(r'data-taken="1" data-budget="1">.*?<td data-label="[^"]+">1</td>',
                     page.get_data(as_text=True).replace("\n", " "))


def test_pupils_and_ordinary_teachers_are_refused_contacts_allowed(app, client, runner, launches, catalog, platform):
    for role in ("learner", "instructor"):
        response = launches.launch(launches.spec("SE-1490", role=role, user=f"{role}-9"))
        token = re.search(r"lt=([^&]+)", response.headers["Location"]).group(1)
        assert client.get(f"/municipal/?lt={token}").status_code == 403
    result = runner.invoke(args=["municipalities", "add-contact", "--municipality", "SE-1490", "--issuer",
                                 platform.issuer, "--client-id", "kulturskola-sandbox", "--sub", "instructor-9"])
    assert result.exit_code == 0, result.output
    response = launches.launch(launches.spec("SE-1490", role="instructor", user="instructor-9"))
    token = re.search(r"lt=([^&]+)", response.headers["Location"]).group(1)
    assert client.get(f"/municipal/?lt={token}").status_code == 200


def test_another_municipalitys_pages_and_export_are_refused(app, client, launches, catalog):
    _page, token = console(client, launches, municipality="SE-1490")
    for path in (f"/municipal/?lt={token}&municipality=NO-0301", f"/municipal/costs.csv?lt={token}&municipality=NO-0301"):
        assert client.get(path).status_code == 403, path
    assert client.post(f"/municipal/orders?lt={token}", data={"round": round_pk(app), "seats": "2",
                                                                "municipality": "NO-0301"}).status_code == 403
    own = client.get(f"/municipal/costs.csv?lt={token}")
    text = own.get_data(as_text=True)
    assert own.status_code == 200 and "SE-1490" in text and "NO-0301" not in text
    assert client.get(f"/staff/costs?format=csv&lt={token}").status_code == 302  # the staff console needs staff


def test_security_headers(app, client, launches, catalog):
    page, token = console(client, launches)
    csp = page.headers["Content-Security-Policy"]
    assert "frame-ancestors 'self' http://localhost" in csp and "script-src 'self' 'nonce-" in csp
    staff = client.get("/staff/sign-in")
    assert "frame-ancestors 'none'" in staff.headers["Content-Security-Policy"] and staff.headers["X-Frame-Options"] == "DENY"
    assert page.headers["X-Content-Type-Options"] == "nosniff"
