"""Dates in the municipality's own time zone. A round's dates (last day of enrolment, last day to withdraw) are
calendar days where the pupil lives: 23:30 UTC on the last day of enrolment is already the next day in
Stockholm, so enrolment is closed there. Never the server's local date, whatever its ``TZ``.

Pure: standard library only (``zoneinfo``; the zone data comes from the system, or the ``tzdata`` package).
"""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

# Each country's official time zone; a municipality id is "<country>-<code>" (SE-1490, NO-0301).
TIME_ZONES = {"SE": "Europe/Stockholm", "NO": "Europe/Oslo"}


def time_zone(municipality_or_country: str) -> ZoneInfo:
    """The time zone of a municipality (``SE-1490``) or a country (``NO``)."""
    country = municipality_or_country.strip().upper()[:2]
    try:
        return ZoneInfo(TIME_ZONES[country])
    except KeyError:
        raise ValueError(f"no time zone for {municipality_or_country!r}") from None


def local_date(municipality_or_country: str, now: datetime) -> date:
    """The calendar day it is in the municipality at the instant ``now`` (an aware datetime)."""
    if now.tzinfo is None:
        raise ValueError("now must be an aware datetime")
    return now.astimezone(time_zone(municipality_or_country)).date()


def national_date(now: datetime) -> date:
    """For decisions about a round that pupils of every country share (closing its enrolment): the earliest
    calendar day among the countries' time zones, so no municipality's last day is cut short."""
    return min(local_date(country, now) for country in TIME_ZONES)
