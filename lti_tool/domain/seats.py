"""Seats (platser): which round a launch is for, and why a seat cannot be given.

Pure rules; the atomic counting happens in the database (services.reserve_seat).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Iterable

from .errors import DomainError

ROUND_OPEN = "open"
ROUND_RUNNING = "running"
ROUND_CANCELLED = "cancelled"
ROUND_RETIRED = "retired"

OUTCOME_GRANTED = "granted"        # a seat was taken now
OUTCOME_HELD = "held"              # the pupil already had one: nothing taken twice

# Refusal codes, most telling first.
COURSE_UNKNOWN = "course_unknown"
REFUSAL_COURSE_RETIRED = "course_retired"  # the course is retired (models.COURSE_RETIRED)
ROUND_UNKNOWN = "round_unknown"
NOT_OFFERED = "course_not_offered"
ENROLMENT_CLOSED = "enrolment_closed"
BUDGET_USED = "budget_used_up"
COURSE_FULL = "course_full"
# Refusals after which a waiting list makes sense: a seat may free up in this municipality's order.
WAITLIST_CODES = frozenset({BUDGET_USED, COURSE_FULL})


class SeatRefusedError(DomainError):
    """No seat for this pupil; ``code`` says why. Nothing was taken."""

    status = 403

    def __init__(self, detail: str = "", *, code: str, waitlist: bool = False, round_pk: int | None = None,
                 order_id: int | None = None):
        super().__init__(detail, code=code)
        self.waitlist = waitlist
        self.round_pk = round_pk
        self.order_id = order_id


@dataclass(frozen=True)
class RoundView:
    pk: int
    round_id: str
    starts_on: date
    ends_on: date
    enrolment_closes_on: date
    status: str


def enrolment_open(round_: RoundView, today: date) -> bool:
    return round_.status == ROUND_OPEN and today <= round_.enrolment_closes_on


def choose_round(rounds: Iterable[RoundView], today: date, *, requested: str | None = None,
                 held: Iterable[int] = ()) -> RoundView:
    """The round a launch is for: the one named in the launch; else one the pupil holds a seat in that has
    not ended; else the open round whose enrolment closes first; else the round running now (so the pupil
    is told enrolment is closed). Cancelled and retired rounds are never chosen unless named."""
    rounds = list(rounds)
    if requested:
        for candidate in rounds:
            if candidate.round_id == requested:
                return candidate
        raise SeatRefusedError(f"no round {requested!r}", code=ROUND_UNKNOWN)
    held = set(held)
    live = [r for r in rounds if r.status in (ROUND_OPEN, ROUND_RUNNING)]
    mine = sorted((r for r in live if r.pk in held and today <= r.ends_on), key=lambda r: r.starts_on)
    if mine:
        return mine[0]
    open_rounds = sorted((r for r in live if enrolment_open(r, today)), key=lambda r: r.enrolment_closes_on)
    if open_rounds:
        return open_rounds[0]
    current = sorted((r for r in live if r.starts_on <= today <= r.ends_on), key=lambda r: r.starts_on)
    if current:
        return current[0]
    upcoming = sorted((r for r in live if today < r.starts_on), key=lambda r: r.starts_on)
    if upcoming:
        return upcoming[0]
    raise SeatRefusedError("the course has no round open or running", code=ENROLMENT_CLOSED)


def check_before_counting(*, has_order: bool, round_: RoundView, today: date) -> None:
    """The refusals decided before the counters are touched: not offered, enrolment closed."""
    if not has_order:
        raise SeatRefusedError("the municipality has not ordered this round", code=NOT_OFFERED, round_pk=round_.pk)
    if not enrolment_open(round_, today):
        raise SeatRefusedError(f"enrolment for {round_.round_id} closed", code=ENROLMENT_CLOSED, round_pk=round_.pk)


def budget_check(new_budget: int, seats_taken: int) -> None:
    """A budget is never below the seats already taken."""
    if new_budget < 0:
        raise DomainError("a seat budget is 0 or more", code="budget_invalid")
    if new_budget < seats_taken:
        raise DomainError(f"{seats_taken} seats are already taken: the budget cannot go below that",
                          code="budget_below_taken", status=409)


def can_withdraw(round_status: str, withdrawal_deadline: date, today: date) -> bool:
    """A pupil may withdraw (and the seat is freed at no cost) until the round's withdrawal deadline."""
    return round_status in (ROUND_OPEN, ROUND_RUNNING) and today <= withdrawal_deadline


def should_cancel(seats_taken: int, min_participants: int) -> bool:
    """At enrolment close, a round below its minimum number of participants does not start."""
    return seats_taken < min_participants
