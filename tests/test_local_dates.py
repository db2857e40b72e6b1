"""Dates that decide enrolment and withdrawal are the municipality's own (Europe/Stockholm, Europe/Oslo), never
the server's local date."""

from __future__ import annotations

import os
import time
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from lti_tool.db import new_session
from lti_tool.domain import calendar
from lti_tool.domain.errors import DomainError
from lti_tool.domain.seats import SeatRefusedError
from lti_tool.models import CourseRound, Seat
from lti_tool.services import seats

from .catalog_factory import TODAY, add_course
from .conftest import error_code

LAST_DAY = date(2027, 1, 15)  # winter: Stockholm and Oslo are UTC+1
BEFORE_MIDNIGHT_THERE = datetime(2027, 1, 15, 22, 30, tzinfo=timezone.utc)  # 23:30 in Stockholm: still the 15th
AFTER_MIDNIGHT_THERE = datetime(2027, 1, 15, 23, 30, tzinfo=timezone.utc)   # 00:30 on the 16th in Stockholm


def test_local_date_of_a_municipality():
    assert calendar.local_date("SE-1490", AFTER_MIDNIGHT_THERE) == date(2027, 1, 16)
    assert calendar.local_date("NO-0301", AFTER_MIDNIGHT_THERE) == date(2027, 1, 16)
    assert calendar.local_date("SE-1490", BEFORE_MIDNIGHT_THERE) == LAST_DAY
    summer = datetime(2027, 6, 30, 22, 30, tzinfo=timezone.utc)  # UTC+2: 00:30 on 1 July
    assert calendar.local_date("SE", summer) == date(2027, 7, 1)
    assert calendar.national_date(AFTER_MIDNIGHT_THERE) == date(2027, 1, 16)
    with pytest.raises(ValueError):
        calendar.local_date("DK-0101", AFTER_MIDNIGHT_THERE)
    with pytest.raises(ValueError):
        calendar.local_date("SE-1490", datetime(2027, 1, 15, 23, 30))  # naive: which instant?


@pytest.fixture
def course(app, demo):
    """A round whose last day of enrolment is LAST_DAY and whose last day to withdraw is LAST_DAY + 3."""
    with new_session(app) as session:
        add_course(session, rounds=[{"round_id": "r", "closes_in": (LAST_DAY - TODAY).days,
                                     "withdraw_after_close": 3}])
        seats.set_order(session, "SE-1490", "GIT-AK-1", "r", 5, )
        seats.set_order(session, "NO-0301", "GIT-AK-1", "r", 5)
        session.commit()


def at(monkeypatch, instant: datetime) -> None:
    """The services' clock reads ``instant``."""
    monkeypatch.setattr(seats, "_now", lambda: instant)


def reserve(app, sub, municipality="SE-1490"):
    with new_session(app) as session:
        result = seats.reserve_seat(session, registration_id=1, sub=sub, municipality_id=municipality,
                                    course_code="GIT-AK-1")
        session.commit()
        return result.outcome


@pytest.mark.parametrize("municipality", ["SE-1490", "NO-0301"])
def test_enrolment_closes_at_midnight_in_the_municipality(app, course, monkeypatch, municipality):
    at(monkeypatch, BEFORE_MIDNIGHT_THERE)
    assert reserve(app, "p1", municipality) == "granted"
    at(monkeypatch, AFTER_MIDNIGHT_THERE)  # still the 15th in UTC (and on a server in UTC)
    with pytest.raises(SeatRefusedError) as caught:
        reserve(app, "p2", municipality)
    assert caught.value.code == "enrolment_closed"


def test_a_pupils_launch_after_midnight_in_stockholm_is_refused(app, client, launches, course, monkeypatch):
    at(monkeypatch, AFTER_MIDNIGHT_THERE)
    response = launches.launch(launches.spec("SE-1490", course="GIT-AK-1"))
    assert response.status_code == 403 and error_code(response) == "enrolment_closed"
    with new_session(app) as session:
        assert session.scalar(select(Seat.id)) is None


def test_withdrawal_deadline_is_the_municipalitys_day(app, course, monkeypatch):
    at(monkeypatch, BEFORE_MIDNIGHT_THERE)
    reserve(app, "p1")
    reserve(app, "p2")
    with new_session(app) as session:
        round_pk = session.scalar(select(CourseRound.id))
    deadline = datetime(2027, 1, 18, 22, 30, tzinfo=timezone.utc)  # 23:30 on the 18th, the last day to withdraw
    at(monkeypatch, deadline)
    with new_session(app) as session:
        seats.withdraw(session, round_pk=round_pk, registration_id=1, sub="p1")
        session.commit()
    at(monkeypatch, deadline + timedelta(hours=1))  # 00:30 on the 19th in Stockholm, 23:30 on the 18th in UTC
    with new_session(app) as session, pytest.raises(DomainError) as caught:
        seats.withdraw(session, round_pk=round_pk, registration_id=1, sub="p2")
    assert caught.value.code == "withdrawal_closed"


def test_close_enrolment_uses_the_countries_date(app, runner, course, monkeypatch):
    at(monkeypatch, BEFORE_MIDNIGHT_THERE + timedelta(days=1))  # 23:30 on the 16th there
    with new_session(app) as session:
        assert seats.close_enrolment(session).running == []  # the 15th was the last day: closes from the 16th on
        session.rollback()
    at(monkeypatch, AFTER_MIDNIGHT_THERE)  # the 16th there
    out = runner.invoke(args=["rounds", "close-enrolment"]).output
    assert "cancelled (below minimum): GIT-AK-1 r" in out


@pytest.fixture
def server_time_zone():
    """Set the process's TZ (as a server's environment would), and put it back afterwards."""
    before = os.environ.get("TZ")

    def set_zone(name: str) -> None:
        os.environ["TZ"] = name
        time.tzset()

    yield set_zone
    if before is None:
        os.environ.pop("TZ", None)
    else:
        os.environ["TZ"] = before
    time.tzset()


def test_the_servers_time_zone_does_not_matter(app, demo, server_time_zone):
    """Real clock, no patching: twelve hours behind UTC and fourteen ahead. At any moment the server's local date
    differs from Stockholm's in at least one of them; the decisions follow Stockholm in both."""
    stockholm_today = datetime.now(ZoneInfo("Europe/Stockholm")).date()
    with new_session(app) as session:
        add_course(session, rounds=[
            {"round_id": "closed", "closes_in": (stockholm_today - timedelta(days=1) - TODAY).days},
            {"round_id": "last-day", "closes_in": (stockholm_today - TODAY).days}])
        for round_id in ("closed", "last-day"):
            seats.set_order(session, "SE-1490", "GIT-AK-1", round_id, 5)
        session.commit()
    local_dates = set()
    for zone in ("Etc/GMT+12", "Etc/GMT-14"):
        server_time_zone(zone)
        local_dates.add(date.today())
        for round_id, open_ in (("closed", False), ("last-day", True)):
            with new_session(app) as session:
                try:
                    seats.reserve_seat(session, registration_id=1, sub=f"p-{zone}-{round_id}",
                                       municipality_id="SE-1490", course_code="GIT-AK-1", round_id=round_id)
                    outcome = True
                except SeatRefusedError as refusal:
                    assert refusal.code == "enrolment_closed"
                    outcome = False
                session.rollback()
            assert outcome is open_, (zone, round_id)
    assert local_dates != {stockholm_today}  # the server's dates were not Stockholm's
