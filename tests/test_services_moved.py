"""Rules moved out of the views into services (issue #13): each business fact in one place."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from types import SimpleNamespace

from lti_tool.domain.claims import MESSAGE_DATA_PRIVACY, ROLE_ADMINISTRATOR, ROLE_INSTRUCTOR, ROLE_LEARNER
from lti_tool.domain.errors import DomainError
from lti_tool.services import launch as launch_service
from lti_tool.services import roster, seats


def _launch(**values):
    base = {"message_type": "LtiResourceLinkRequest", "deep_linking": None, "role": ROLE_LEARNER,
            "course_code": "GIT-AK-1"}
    return SimpleNamespace(**{**base, **values})


def test_first_page_of_an_accepted_launch():
    assert launch_service.first_page(_launch()) == launch_service.DESTINATION_HOME
    assert launch_service.first_page(_launch(role=ROLE_INSTRUCTOR)) == launch_service.DESTINATION_HOME
    assert launch_service.first_page(_launch(message_type=MESSAGE_DATA_PRIVACY)) == launch_service.DESTINATION_PRIVACY
    assert (launch_service.first_page(_launch(role=ROLE_INSTRUCTOR, deep_linking={"accept_types": []}))
            == launch_service.DESTINATION_DEEP_LINKING)
    assert (launch_service.first_page(_launch(role=ROLE_ADMINISTRATOR, course_code=None))
            == launch_service.DESTINATION_MUNICIPAL_CONSOLE)
    assert launch_service.first_page(_launch(role=ROLE_ADMINISTRATOR)) == launch_service.DESTINATION_HOME


def test_launch_outcome_names_its_metric():
    assert launch_service.LaunchOutcome("cookie").result == "accepted"
    refused = launch_service.LaunchOutcome("cookie", refusal=DomainError("x", code="nonce_replayed"))
    assert not refused.accepted and refused.result == "nonce_replayed"


def test_the_cost_of_an_order_is_one_rule():
    price = SimpleNamespace(amount=Decimal("450.00"))
    order = SimpleNamespace(seats_taken=3)
    assert seats.order_cost(order, SimpleNamespace(status="open"), price) == Decimal("1350.00")
    assert seats.order_cost(order, SimpleNamespace(status="cancelled"), price) == 0
    assert seats.order_cost(order, SimpleNamespace(status="open"), None) is None


def test_withdrawal_until_the_deadline_on_the_municipalitys_day():
    round_ = SimpleNamespace(status="open", withdrawal_deadline=date(2027, 9, 15))
    seat = SimpleNamespace(municipality_id="SE-1490")
    assert seats.may_withdraw(round_, seat, date(2027, 9, 15))
    assert not seats.may_withdraw(round_, seat, date(2027, 9, 16))
    assert not seats.may_withdraw(SimpleNamespace(status="cancelled", withdrawal_deadline=date(2027, 9, 15)), seat,
                                  date(2027, 9, 1))


def test_a_roster_is_stale_when_never_synced_or_older_than_the_maximum_age():
    now = datetime(2027, 3, 1, 12, tzinfo=timezone.utc)
    hour = timedelta(hours=1)
    assert roster.roster_is_stale(SimpleNamespace(roster_synced_at=None), hour, now)
    assert not roster.roster_is_stale(SimpleNamespace(roster_synced_at=now - timedelta(minutes=59)), hour, now)
    assert roster.roster_is_stale(SimpleNamespace(roster_synced_at=now - hour), hour, now)
