"""The municipal console: only the launch's own municipality; ordering, budget changes never below the
seats taken, waiting lists and cost so far; contacts; audit."""

from __future__ import annotations

import re
from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from lti_tool.db import new_session
from lti_tool.domain.claims import CLAIM_ROLES
from lti_tool.models import AuditEntry, Course, CourseRound, Order, Registration
from lti_tool.services import seats

from .catalog_factory import TODAY, add_course
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
        budgets = {(o.municipality_id, o.round_pk): (o.seats_budget, o.seats_taken)
                   for o in session.scalars(select(Order))}
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
    assert 'data-taken="1" data-budget="1" data-waiting="1"' in page.get_data(as_text=True)


LIS = "http://purl.imsglobal.org/vocab/lis/v2/"
INSTITUTION_ADMIN = LIS + "institution/person#Administrator"
SYSTEM_ADMIN = LIS + "system/person#Administrator"
SYSADMIN = LIS + "system/person#SysAdmin"
CONTEXT_ADMIN = LIS + "membership#Administrator"
CONTEXT_SUB_ROLE = LIS + "membership/Administrator#Administrator"
INSTRUCTOR = LIS + "membership#Instructor"
CUSTOM_ROLE = "http://platform.example/roles#KulturskolaHead"


@pytest.fixture
def strict(config, launches_factory):
    """An app whose platforms name no municipal administrator role (the sandbox's default off): only listed
    contacts who are institution or system administrators open the console."""
    def make(named=None):
        actions = launches_factory({**config, "MUNICIPAL_ADMIN_ROLES": named if named is not None else {}})
        app = actions.client.application
        with new_session(app) as session:  # the apps made here share one database
            if session.get(Course, "GIT-AK-1") is None:
                add_course(session)
                seats.set_order(session, "SE-1490", "GIT-AK-1", "now", 1)
                session.commit()
        return app, actions
    return make


def add_contact(app, platform, municipality="SE-1490", sub="head-1"):
    result = app.test_cli_runner().invoke(args=["municipalities", "add-contact", "--municipality", municipality,
                                                "--issuer", platform.issuer, "--client-id", "kulturskola-sandbox",
                                                "--sub", sub])
    assert result.exit_code == 0, result.output


def launch_token(actions, roles, user="head-1", municipality="SE-1490", **spec):
    response = actions.launch(actions.spec(municipality, role="administrator", user=user, **spec),
                              overrides={CLAIM_ROLES: roles})
    assert response.status_code == 303, response.get_data(as_text=True)
    return re.search(r"lt=([^&\"]+)", response.headers["Location"]).group(1)


def console_answers(app, actions, token) -> set[int]:
    """The status of every municipal page, export and form for this launch."""
    client = actions.client
    with new_session(app) as session:
        orders = session.scalar(select(func.count()).select_from(Order))
    statuses = {client.get(f"/municipal/?lt={token}").status_code,
                client.get(f"/municipal/costs.csv?lt={token}").status_code}
    ordered = client.post(f"/municipal/orders?lt={token}", data={"round": round_pk(app, "later"), "seats": "2"})
    statuses.add(200 if ordered.status_code == 303 else ordered.status_code)
    if ordered.status_code != 303:
        assert error_code(ordered) == "municipal_console_forbidden"
        with new_session(app) as session:
            assert session.scalar(select(func.count()).select_from(Order)) == orders  # nothing ordered
    return statuses


@pytest.mark.parametrize("roles, listed, allowed", [
    ([CONTEXT_ADMIN], False, False),
    ([CONTEXT_ADMIN], True, False),             # a course's administrator: a course role, whoever lists them
    (["Administrator"], True, False),           # the short (context) form
    ([CONTEXT_SUB_ROLE], True, False),
    ([CONTEXT_ADMIN, INSTRUCTOR, "Administrator"], True, False),
    ([INSTRUCTOR], True, False),                # a listed contact teaching a course: no platform role
    ([INSTITUTION_ADMIN], False, False),        # a platform administrator, not the municipality's contact
    ([INSTITUTION_ADMIN], True, True),
    ([SYSTEM_ADMIN], False, False),
    ([SYSTEM_ADMIN], True, True),
    ([SYSADMIN], False, False),
    ([SYSADMIN, INSTRUCTOR], True, True),
])
def test_console_needs_a_platform_administrator_listed_as_contact(strict, roles, listed, allowed):
    app, actions = strict()
    if listed:
        add_contact(app, actions.platform)
    token = launch_token(actions, roles)
    assert console_answers(app, actions, token) == ({200} if allowed else {403})
    page = actions.client.get(f"/municipal/?lt={token}")
    if not allowed:
        assert error_code(page) == "municipal_console_forbidden"


def test_contact_of_another_municipality_or_platform_user_is_refused(strict):
    app, actions = strict()
    add_contact(app, actions.platform, municipality="NO-0301")
    assert console_answers(app, actions, launch_token(actions, [INSTITUTION_ADMIN])) == {403}
    add_contact(app, actions.platform, sub="someone-else")
    assert console_answers(app, actions, launch_token(actions, [INSTITUTION_ADMIN])) == {403}


def test_a_named_platform_role_stands_in_for_the_contact_listing(strict):
    app, actions = strict()
    with new_session(app) as session:
        registration = session.scalar(select(Registration.id))
    app, actions = strict({str(registration): [INSTITUTION_ADMIN]})
    assert console_answers(app, actions, launch_token(actions, [INSTITUTION_ADMIN])) == {200}
    assert console_answers(app, actions, launch_token(actions, [SYSADMIN], user="other")) == {403}
    assert console_answers(app, actions, launch_token(actions, [CONTEXT_ADMIN], user="other")) == {403}

    app, actions = strict({"*": [CUSTOM_ROLE]})
    assert console_answers(app, actions, launch_token(actions, [INSTITUTION_ADMIN, CUSTOM_ROLE])) == {200}
    assert console_answers(app, actions, launch_token(actions, [SYSTEM_ADMIN, CUSTOM_ROLE], user="b")) == {200}
    assert console_answers(app, actions, launch_token(actions, [INSTITUTION_ADMIN], user="c")) == {403}
    # the named role alone, or with a course role, is not a platform administrator; alone it is no role the
    # tool serves at all, so the launch itself is refused
    alone = actions.launch(actions.spec("SE-1490", role="administrator", user="d"),
                           overrides={CLAIM_ROLES: [CUSTOM_ROLE]})
    assert alone.status_code == 403 and error_code(alone) == "role_not_served"
    assert console_answers(app, actions, launch_token(actions, [CUSTOM_ROLE, CONTEXT_ADMIN], user="e")) == {403}


def test_another_registrations_named_role_does_not_count(strict):
    app, actions = strict({"999": [INSTITUTION_ADMIN]})
    assert console_answers(app, actions, launch_token(actions, [INSTITUTION_ADMIN])) == {403}


@pytest.mark.parametrize(
    "value",
    [
        {"*": [CONTEXT_ADMIN]},
        ["Administrator"],
        {"1": [CONTEXT_SUB_ROLE]},
        {"1": ["urn:lti:role:ims/lis/Administrator"]},
        {"canvas": [INSTITUTION_ADMIN]},
        {"1": [3]},
        "Administrator",
    ],
)
def test_a_course_role_or_a_malformed_value_is_refused_as_setting(config, value):
    from lti_tool.config import ConfigurationError, load_settings

    with pytest.raises(ConfigurationError):
        load_settings({}, {**config, "MUNICIPAL_ADMIN_ROLES": value})


def test_setting_from_the_environment(config):
    from lti_tool.config import load_settings

    environ = {"LTI_TOOL_MUNICIPAL_ADMIN_ROLES": f'{{"3": ["{INSTITUTION_ADMIN}"]}}'}
    assert load_settings(environ)["MUNICIPAL_ADMIN_ROLES"] == {"3": [INSTITUTION_ADMIN]}
    environ = {"LTI_TOOL_MUNICIPAL_ADMIN_ROLES": f"{SYSADMIN}, {CUSTOM_ROLE}"}
    assert load_settings(environ)["MUNICIPAL_ADMIN_ROLES"] == {"*": [SYSADMIN, CUSTOM_ROLE]}
    assert (
        load_settings(
            {"LTI_TOOL_ENV": "production", "LTI_TOOL_SECRET_KEY": "x" * 40, "LTI_TOOL_BASE_URL": "https://tool.example"}
        )["MUNICIPAL_ADMIN_ROLES"]
        == {}
    )
    assert load_settings({"LTI_TOOL_SANDBOX": "true"})["MUNICIPAL_ADMIN_ROLES"] == {"sandbox": [INSTITUTION_ADMIN]}


def test_sandbox_administrator_opens_the_demo_console(app, client, launches, catalog):
    """The demo: the sandbox platform names its institution Administrator (whoever the user) by default."""
    for user in ("administrator-1", "rektor-1"):
        page, token = console(client, launches, user=user)
        assert page.status_code == 200 and main_attrs(page)["console"] == "municipal"
    # a course role from the same sandbox platform is refused even so
    token = launch_token(launches, [CONTEXT_ADMIN], user="teacher-admin")
    page = client.get(f"/municipal/?lt={token}")
    assert page.status_code == 403 and error_code(page) == "municipal_console_forbidden"


def test_console_link_only_for_who_may_open_it(strict):
    app, actions = strict()
    add_contact(app, actions.platform)
    for roles, shown in (([INSTITUTION_ADMIN], True), ([CONTEXT_ADMIN], False)):
        token = launch_token(actions, roles, course="GIT-AK-1")
        page = actions.client.get(f"/home?lt={token}", follow_redirects=True)  # a course admin: the teacher page
        assert page.status_code == 200
        assert ("/municipal/?lt=" in page.get_data(as_text=True)) is shown, roles


def test_another_municipalitys_pages_and_export_are_refused(app, client, launches, catalog):
    _page, token = console(client, launches, municipality="SE-1490")
    for path in (
        f"/municipal/?lt={token}&municipality=NO-0301",
        f"/municipal/costs.csv?lt={token}&municipality=NO-0301",
    ):
        assert client.get(path).status_code == 403, path
    assert (
        client.post(
            f"/municipal/orders?lt={token}", data={"round": round_pk(app), "seats": "2", "municipality": "NO-0301"}
        ).status_code
        == 403
    )
    own = client.get(f"/municipal/costs.csv?lt={token}")
    text = own.get_data(as_text=True)
    assert own.status_code == 200 and "SE-1490" in text and "NO-0301" not in text
    assert client.get(f"/staff/costs?format=csv&lt={token}").status_code == 302  # the staff console needs staff


def test_security_headers(app, client, launches, catalog):
    page, token = console(client, launches)
    csp = page.headers["Content-Security-Policy"]
    assert "frame-ancestors 'self' http://localhost" in csp and "script-src 'self' 'nonce-" in csp
    staff = client.get("/staff/sign-in")
    assert "frame-ancestors 'none'" in staff.headers["Content-Security-Policy"]
    assert staff.headers["X-Frame-Options"] == "DENY"
    assert page.headers["X-Content-Type-Options"] == "nosniff"


def test_costs_csv_is_for_the_readers_spreadsheet(app, client, launches, catalog):
    _page, token = console(client, launches, municipality="SE-1490")
    answer = client.get(f"/municipal/costs.csv?lt={token}", headers={"Accept-Language": "sv"})
    assert answer.headers["Content-Type"] == "text/csv; charset=utf-8"
    lines = answer.get_data(as_text=True).lstrip("\ufeff").splitlines()
    header = lines[0].split(";")
    assert header[0] == "Kommun" and len(header) == 9 and "Platsbudget" in header
    assert all(line.count(";") == 8 for line in lines[1:]) and len(lines) > 1


# -- the order list, yearly totals, messages on the row ----------------------------------------------------------

YEAR = TODAY.year


def _round(session, course, round_id, starts, *, weeks=16, closes_before=12, withdraw_after=14, status="open",
           capacity=16):
    from lti_tool.models import CourseRound as Round

    round_ = Round(course_code=course, round_id=round_id, starts_on=starts, ends_on=starts + timedelta(weeks=weeks),
                   enrolment_closes_on=starts - timedelta(days=closes_before),
                   withdrawal_deadline=starts + timedelta(days=withdraw_after), capacity=capacity,
                   min_participants=1, seats_taken=0, status=status)
    session.add(round_)
    session.flush()
    return round_


def _order(session, municipality, round_, budget, taken):
    order = Order(municipality_id=municipality, round_pk=round_.id, seats_budget=budget, seats_taken=taken)
    round_.seats_taken += taken
    session.add(order)
    session.flush()
    return order


@pytest.fixture
def years(app, demo):
    """Borås's orders over two calendar years and two courses (a year ago, and next year), another municipality's
    order of the same round, a round whose enrolment closed without Borås ordering it and one still open to order."""
    with new_session(app) as session:
        add_course(session, "GIT-AK-1", rounds=[])
        add_course(session, "PIANO-1", rounds=[], prices=(("SE", "2500", "SEK"), ("NO", "2600", "NOK")))
        made = {
            "git-old": _round(session, "GIT-AK-1", f"{YEAR - 1}-autumn", date(YEAR - 1, 9, 1), status="running"),
            "git-new": _round(session, "GIT-AK-1", f"{YEAR + 1}-spring", date(YEAR + 1, 2, 1)),
            "piano-old": _round(session, "PIANO-1", f"{YEAR - 1}-spring", date(YEAR - 1, 2, 1), status="running"),
            "piano-new": _round(session, "PIANO-1", f"{YEAR + 1}-autumn", date(YEAR + 1, 9, 1)),
            "piano-closed": _round(session, "PIANO-1", f"{YEAR - 1}-autumn", date(YEAR - 1, 9, 1)),
            "git-next": _round(session, "GIT-AK-1", f"{YEAR + 1}-autumn", date(YEAR + 1, 9, 1)),
        }
        orders = {
            "git-old": _order(session, "SE-1490", made["git-old"], 4, 3),
            "git-new": _order(session, "SE-1490", made["git-new"], 5, 2),
            "piano-old": _order(session, "SE-1490", made["piano-old"], 2, 2),
            "piano-new": _order(session, "SE-1490", made["piano-new"], 6, 0),
            "oslo": _order(session, "NO-0301", made["git-new"], 9, 7),
        }
        session.commit()
        return {"rounds": {key: r.id for key, r in made.items()}, "orders": {key: o.id for key, o in orders.items()}}


def _english_console(client, launches):
    response = launches.launch(launches.spec("SE-1490", role="administrator", user="head-1", locale="en-GB"))
    token = re.search(r"lt=([^&\"]+)", response.headers["Location"]).group(1)
    return client.get(f"/municipal/?lt={token}"), token


def _row(body: str, order_id: int) -> str:
    match = re.search(rf'<tr id="order-{order_id}".*?</tr>', body, re.S)
    assert match, order_id
    return match.group(0)


def _sek(amount: str) -> str:
    from babel.numbers import format_currency

    return format_currency(Decimal(amount), "SEK", locale="en_GB")


def test_order_list_shows_round_dates_seats_waiting_price_and_costs(app, client, launches, years):
    page, _token = _english_console(client, launches)
    body = page.get_data(as_text=True)
    assert main_attrs(page)["orders"] == "4"  # Borås's four, never Oslo's
    row = _row(body, years["orders"]["git-new"])
    assert "Course GIT-AK-1" in row and f"Spring {YEAR + 1}" in row and f"{YEAR + 1}-spring" in row
    assert f"1 Feb {YEAR + 1}" in row  # the start, and the end 16 weeks later
    assert (date(YEAR + 1, 2, 1) + timedelta(weeks=16)).strftime("%-d %b %Y") in row
    assert f"Enrolment closes 20 Jan {YEAR + 1}" in row
    assert 'data-taken="2" data-budget="5" data-waiting="0"' in row
    assert _sek("1900") in row and _sek("3800") in row and _sek("9500") in row  # price, 2 × price, 5 × price
    assert 'data-cost="3800.00"' in row and 'data-committed="9500.00"' in row
    assert 'name="seats" value="5"' in row  # enrolment still open: the budget can be changed
    closed = _row(body, years["orders"]["git-old"])
    assert 'name="seats"' not in closed and "closed" in closed  # its last day to leave is long gone


def test_yearly_totals_per_course_and_year(app, client, launches, years):
    page, _token = _english_console(client, launches)
    body = page.get_data(as_text=True)
    tables = dict(re.findall(r'<table class="cards totals"[^>]*data-year="(\d+)">(.*?)</table>', body, re.S))
    assert sorted(tables) == [str(YEAR - 1), str(YEAR + 1)]  # the year each round starts in
    old, new = tables[str(YEAR - 1)], tables[str(YEAR + 1)]
    assert 'data-course="GIT-AK-1" data-budget="4" data-taken="3"' in old
    assert 'data-course="PIANO-1" data-budget="2" data-taken="2"' in old
    assert f'data-total="{YEAR - 1}" data-budget="6" data-taken="5"' in old
    assert 'data-cost="10700.00 SEK"' in old and 'data-committed="12600.00 SEK"' in old  # 3×1900+2×2500, 4×1900+2×2500
    assert _sek("10700") in old and _sek("12600") in old
    assert f'data-total="{YEAR + 1}" data-budget="11" data-taken="2"' in new
    assert 'data-cost="3800.00 SEK"' in new and 'data-committed="24500.00 SEK"' in new  # 5×1900 + 6×2500
    assert "NO-0301" not in body and "data-budget=\"9\"" not in body  # Oslo's order of the same round counts nowhere


def test_chart_per_course_round_by_round(app, client, launches, years):
    page, _token = _english_console(client, launches)
    body = page.get_data(as_text=True)
    chart = re.search(r'<figure class="chart" data-chart="PIANO-1".*?</figure>', body, re.S).group(0)
    assert re.findall(r'data-round="([^"]+)"', chart) == [f"{YEAR - 1}-spring", f"{YEAR + 1}-autumn"]  # in time
    assert "2 of 2 seats taken" in chart and "0 of 6 seats taken" in chart  # the text beside each bar
    # bars against the course's largest budget (6): the spring round's budget and seats are a third of it
    assert 'class="chart-budget" style="width: 33.3%"' in chart and 'class="chart-taken" style="width: 33.3%"' in chart
    assert 'class="chart-budget" style="width: 100.0%"' in chart and 'class="chart-taken" style="width: 0.0%"' in chart


def _audited(app) -> int:
    with new_session(app) as session:
        return session.scalar(select(func.count()).select_from(AuditEntry))


@pytest.mark.parametrize("typed, code, status, reason", [
    ("1", "budget_below_taken", 409, "cannot be lower than the 2 seats already taken"),
    ("-3", "budget_invalid", 400, "whole number, 0 or more"),
    ("2.5", "budget_invalid", 400, "whole number, 0 or more"),
    ("", "budget_invalid", 400, "whole number, 0 or more"),
])
def test_a_refused_budget_names_its_row_and_keeps_what_was_typed(app, client, launches, years, typed, code, status,
                                                                 reason):
    _page, token = _english_console(client, launches)
    order_id = years["orders"]["git-new"]
    refused = client.post(f"/municipal/orders?lt={token}", data={"round": years["rounds"]["git-new"], "seats": typed})
    assert refused.status_code == status and error_code(refused) == code
    body = refused.get_data(as_text=True)
    alert = re.search(r'<div class="notice error" role="alert"[^>]*>(.*?)</div>', body, re.S).group(1)
    assert f"Not saved: Course GIT-AK-1, spring {YEAR + 1} (1 Feb {YEAR + 1}" in alert and reason in alert
    assert f'href="#seats-{order_id}"' in alert
    row = _row(body, order_id)
    assert f'data-refused="{code}"' in row and reason in row
    field = re.search(r'<input type="number"[^>]*name="seats"[^>]*>', row).group(0)
    assert f'value="{typed}"' in field and 'aria-invalid="true"' in field and "data-focus" in field
    assert f'aria-describedby="seats-{order_id}-error"' in field and f'id="seats-{order_id}-error"' in row
    assert f'#order-{order_id}"' in row  # the form comes back to its own row
    assert body.count("data-focus") == 1 and body.count("data-refused=") == 1  # no other row is marked
    assert 'name="seats" value="6"' in _row(body, years["orders"]["piano-new"])  # other rows as stored
    assert _audited(app) == 0
    with new_session(app) as session:
        assert session.get(Order, order_id).seats_budget == 5


def test_a_settled_round_or_a_closed_enrolment_is_refused_on_its_row(app, client, launches, years):
    _page, token = _english_console(client, launches)
    order_id = years["orders"]["git-old"]
    refused = client.post(f"/municipal/orders?lt={token}", data={"round": years["rounds"]["git-old"], "seats": "9"})
    assert refused.status_code == 409 and error_code(refused) == "enrolment_closed"
    body = refused.get_data(as_text=True)
    assert f"Not saved: Course GIT-AK-1, autumn {YEAR - 1}" in body and "can no longer be changed" in body
    assert 'value="9"' in _row(body, order_id) and 'data-refused="enrolment_closed"' in _row(body, order_id)
    # a round Borås never ordered whose enrolment has closed: not offered, and refused if posted anyway
    assert f'<option value="{years["rounds"]["piano-closed"]}"' not in body
    ordered = client.post(f"/municipal/orders?lt={token}", data={"round": years["rounds"]["piano-closed"],
                                                                 "seats": "3"})
    assert ordered.status_code == 409 and error_code(ordered) == "enrolment_closed"
    text = ordered.get_data(as_text=True)
    assert f"Not saved: Course PIANO-1, autumn {YEAR - 1}" in text and "can no longer be ordered" in text
    form = text[text.index('id="order-form"'):]
    assert 'id="seats-error"' in form and 'value="3"' in form and "data-focus" in form
    assert f'<option value="{years["rounds"]["git-next"]}"' in form  # what may still be ordered
    with new_session(app) as session:
        assert session.scalar(select(func.count()).select_from(Order).where(Order.municipality_id == "SE-1490")) == 4
        assert session.get(Order, order_id).seats_budget == 4
    assert _audited(app) == 0


def test_saved_is_shown_on_the_row_that_was_saved(app, client, launches, years):
    _page, token = _english_console(client, launches)
    order_id = years["orders"]["piano-new"]
    saved = client.post(f"/municipal/orders?lt={token}", data={"round": years["rounds"]["piano-new"], "seats": "8"})
    assert saved.status_code == 303 and saved.headers["Location"].endswith(f"#order-{order_id}")
    assert f"saved={order_id}" in saved.headers["Location"]
    body = client.get(saved.headers["Location"]).get_data(as_text=True)
    row = _row(body, order_id)
    assert 'data-saved="1"' in row and "✓ Saved" in row and 'data-budget="8"' in row
    assert body.count('data-saved="1"') == 1 and body.count("✓ Saved") == 1  # only that row
    banner = re.search(r'<p class="notice" role="status"[^>]*>(.*?)</p>', body, re.S).group(1)
    assert f"Course PIANO-1, autumn {YEAR + 1}" in banner and "seat budget 8" in banner
    with new_session(app) as session:
        assert session.get(Order, order_id).seats_budget == 8
        assert [e.target for e in session.scalars(select(AuditEntry))] == [f"PIANO-1 {YEAR + 1}-autumn"]
    # an order of another municipality named in ?saved= marks nothing
    other = client.get(f"/municipal/?lt={token}&saved={years['orders']['oslo']}").get_data(as_text=True)
    assert 'data-saved="1"' not in other and "✓ Saved" not in other


def test_a_cancelled_rounds_budget_is_refused_on_its_row(app, client, launches, years):
    from sqlalchemy import update

    with new_session(app) as session:
        session.execute(update(CourseRound).where(CourseRound.id == years["rounds"]["piano-new"])
                        .values(status="cancelled"))
        session.commit()
    page, token = _english_console(client, launches)
    order_id = years["orders"]["piano-new"]
    assert 'name="seats"' not in _row(page.get_data(as_text=True), order_id)  # nothing to change any more
    refused = client.post(f"/municipal/orders?lt={token}", data={"round": years["rounds"]["piano-new"], "seats": "7"})
    assert refused.status_code == 409 and error_code(refused) == "round_closed"
    row = _row(refused.get_data(as_text=True), order_id)
    assert 'data-refused="round_closed"' in row and 'value="7"' in row and "cancelled" in row
    with new_session(app) as session:
        assert session.get(Order, order_id).seats_budget == 6
