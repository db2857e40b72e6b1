"""Seat invitations under concurrency on PostgreSQL: pupils racing for the same codes and for the last seats of a
budget, each in its own session and thread, never take a seat over the budget nor redeem a code twice."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select

from lti_tool.db import new_session
from lti_tool.domain.errors import DomainError
from lti_tool.models import CourseRound, Order, Seat, SeatInvitation
from lti_tool.services import invitations, seats

from .catalog_factory import add_course

pytestmark = [pytest.mark.postgres,
              pytest.mark.skipif(not os.environ.get("TEST_DATABASE_URL"), reason="needs TEST_DATABASE_URL")]


@pytest.fixture
def codes(app, demo):
    """Borås orders GIT-AK-1 "now" with 10 seats and issues 10 invitations (the round holds 500)."""
    with app.app_context(), new_session(app) as session:
        add_course(session, capacity=500)
        seats.set_order(session, "SE-1490", "GIT-AK-1", "now", 10)
        issued = invitations.issue(session, municipality_id="SE-1490", course_code="GIT-AK-1", round_id="now",
                                   count=10, expires_at=None, created_by="test")
        session.commit()
        return [item.code for item in issued]


def attempt(app, code: str, sub: str) -> str:
    with app.app_context(), new_session(app) as session:
        try:
            result = invitations.redeem(session, code, registration_id=1, sub=sub, school=None)
        except DomainError as error:
            session.rollback()
            return error.code
        session.commit()
        return result.outcome


def launch(app, sub: str) -> str:
    with new_session(app) as session:
        result = seats.reserve_seat(session, registration_id=1, sub=sub, municipality_id="SE-1490",
                                    course_code="GIT-AK-1", round_id="now")
        session.commit()
        return result.outcome


def state(app) -> tuple[int, int, int, dict[str, int]]:
    """The order's seats taken, the round's, the active seat rows, and the invitations by status."""
    with new_session(app) as session:
        order = session.scalars(select(Order)).one()
        round_ = session.get(CourseRound, order.round_pk)
        rows = session.scalar(select(func.count()).select_from(Seat).where(Seat.status == "active"))
        by_status = dict(session.execute(select(SeatInvitation.status, func.count())
                                         .group_by(SeatInvitation.status)).all())
        return order.seats_taken, round_.seats_taken, rows, by_status


def test_thirty_pupils_racing_for_ten_codes_take_ten_seats(app, codes):
    tries = [(codes[i % 10], f"pupil-{i}") for i in range(30)]  # three pupils per code
    with ThreadPoolExecutor(max_workers=30) as pool:
        outcomes = list(pool.map(lambda t: attempt(app, *t), tries))
    assert outcomes.count("granted") == 10
    assert outcomes.count("code_other_account") == 20
    assert state(app) == (10, 10, 10, {"redeemed": 10})
    with new_session(app) as session:
        redeemed = list(session.scalars(select(SeatInvitation)))
        assert len({i.sub for i in redeemed}) == 10 and all(i.seat_id for i in redeemed)
        assert {i.seat_id for i in redeemed} == set(session.scalars(select(Seat.id).where(Seat.status == "active")))
    winners = {sub for (code, sub), outcome in zip(tries, outcomes, strict=True) if outcome == "granted"}
    assert len({code for (code, sub) in tries if sub in winners}) == 10  # each code redeemed once


def test_a_budget_lowered_below_the_codes_is_never_overrun(app, codes):
    with new_session(app) as session:
        seats.set_order(session, "SE-1490", "GIT-AK-1", "now", 8)
        session.commit()
    with ThreadPoolExecutor(max_workers=10) as pool:
        outcomes = list(pool.map(lambda i: attempt(app, codes[i], f"pupil-{i}"), range(10)))
    assert outcomes.count("granted") == 8 and outcomes.count("budget_used_up") == 2
    assert state(app) == (8, 8, 8, {"redeemed": 8, "issued": 2})


def test_one_pupil_launching_and_redeeming_at_once_holds_one_seat(app, codes):
    def one(i: int) -> str:
        return launch(app, "same-pupil") if i % 2 else attempt(app, codes[i // 2], "same-pupil")

    with ThreadPoolExecutor(max_workers=10) as pool:
        outcomes = list(pool.map(one, range(10)))
    assert outcomes.count("granted") == 1, outcomes
    assert state(app)[:3] == (1, 1, 1)
    redeemed = state(app)[3].get("redeemed", 0)
    assert redeemed <= 1 and state(app)[3]["issued"] == 10 - redeemed
