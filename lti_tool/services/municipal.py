"""Who may open the municipal console (orders and seat budgets, which cost the municipality money): one rule,
asked by every municipal page, form and export, and by the pages that link to the console.

An institution or system administrator of the platform (never a course role such as ``membership#Administrator``
or the short ``Administrator``), who is also

- listed as the arts-school contact of the launch's own municipality (``municipalities add-contact``: the
  registration and the person's ``sub``), or
- carries a role that ``MUNICIPAL_ADMIN_ROLES`` names as this platform's municipal administrator role (for the
  launch's registration, for every registration with ``*``, and for the built-in sandbox with ``sandbox``).

The municipality is always the launch's own (from the signed launch), never one a request names.

And what the console shows and changes: the municipality's orders with their seats, waiting lists and costs
(:func:`order_lines`), the totals per calendar year and course (:func:`yearly_totals`), seats taken against
budget per round of each course over time (:func:`course_charts`), and an order or a budget change
(:func:`save_order`), refused once the round's enrolment (for a new order) or its last day to leave (for a budget
change) has passed in the municipality's own calendar.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Mapping, Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..config import ANY_REGISTRATION_KEY, SANDBOX_REGISTRATION_KEY
from ..domain import seats as rules
from ..domain.claims import may_open_municipal_console
from ..domain.errors import DomainError
from ..models import (COURSE_ACTIVE, WAITING, Course, CoursePrice, CourseRound, Launch, Municipality,
                      MunicipalContact, Order, WaitlistEntry)
from . import seats
from .errors import ConflictError, NotFoundError


class ConsoleForbiddenError(DomainError):
    """This launch may not open the municipal console."""

    code = "municipal_console_forbidden"
    status = 403


def named_admin_roles(setting: Mapping[str, Sequence[str]], registration_id: int, *,
                      sandbox: bool = False) -> frozenset[str]:
    """The roles ``MUNICIPAL_ADMIN_ROLES`` names for this registration (``sandbox``: it is the built-in sandbox
    platform's registration, and the sandbox is on)."""
    keys = [str(registration_id), ANY_REGISTRATION_KEY] + ([SANDBOX_REGISTRATION_KEY] if sandbox else [])
    return frozenset(role for key in keys for role in setting.get(key, ()))


def is_listed_contact(session: Session, launch: Launch) -> bool:
    return session.scalar(select(MunicipalContact.id).where(
        MunicipalContact.municipality_id == launch.municipality_id,
        MunicipalContact.registration_id == launch.registration_id, MunicipalContact.sub == launch.sub)
        .limit(1)) is not None


def may_open_console(session: Session, launch: Launch, named_roles: frozenset[str]) -> bool:
    roles = [role for role in (launch.roles or []) if isinstance(role, str)]
    return may_open_municipal_console(roles, named_roles=named_roles,
                                      is_listed_contact=lambda: is_listed_contact(session, launch))


def check_console_access(session: Session, launch: Launch, named_roles: frozenset[str]) -> None:
    """Raise :class:`ConsoleForbiddenError` unless the launch may open its municipality's console."""
    if not may_open_console(session, launch, named_roles):
        raise ConsoleForbiddenError(f"launch {launch.id} ({launch.role}) of registration {launch.registration_id} "
                                    f"is no listed administrator of {launch.municipality_id}")


# -- what the console shows ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class OrderLine:
    """One order of the municipality: its round and course, the seats, the waiting pupils and the money.
    ``cost``: the seats charged at the price (:func:`.seats.order_cost`); ``committed``: the whole budget at the
    price (as the cost report has it); both ``None`` without a price for the municipality's country.
    ``budget_open``: the budget may still be changed (:func:`budget_open`)."""

    order: Order
    round: CourseRound
    course: Course
    price: CoursePrice | None
    waiting: int
    cost: Decimal | None
    committed: Decimal | None
    budget_open: bool

    @property
    def year(self) -> int:
        """The calendar year the round starts in: the year its cost belongs to."""
        return self.round.starts_on.year


def budget_open(round_: CourseRound, today: date) -> bool:
    """An order's budget may be changed while a pupil may still come in through it: the round not cancelled or
    retired, and today (the municipality's day) no later than the round's last day of enrolment or, for pupils
    on the waiting list whom a raised budget admits, its last day to leave."""
    return (round_.status in (rules.ROUND_OPEN, rules.ROUND_RUNNING)
            and today <= max(round_.enrolment_closes_on, round_.withdrawal_deadline))


def order_lines(session: Session, municipality: Municipality, today: date) -> list[OrderLine]:
    """The municipality's orders, by course and then by the round's start."""
    rows = session.execute(select(Order, CourseRound, Course).join(CourseRound, Order.round_pk == CourseRound.id)
                           .join(Course, Course.code == CourseRound.course_code)
                           .where(Order.municipality_id == municipality.id)
                           .order_by(Course.code, CourseRound.starts_on, CourseRound.round_id)).all()
    waiting = dict(session.execute(select(WaitlistEntry.order_id, func.count()).where(
        WaitlistEntry.status == WAITING, WaitlistEntry.order_id.in_([o.id for o, _r, _c in rows]))
        .group_by(WaitlistEntry.order_id)).all()) if rows else {}
    prices = country_prices(session, municipality.country)
    lines = []
    for order, round_, course in rows:
        price = prices.get(course.code)
        lines.append(OrderLine(order, round_, course, price, waiting.get(order.id, 0),
                               seats.order_cost(order, round_, price),
                               price.amount * order.seats_budget if price is not None else None,
                               budget_open(round_, today)))
    return lines


def country_prices(session: Session, country: str) -> dict[str, CoursePrice]:
    """Each course's price per seat for the municipality's country."""
    return {p.course_code: p for p in session.scalars(select(CoursePrice).where(CoursePrice.country == country))}


def orderable_rounds(session: Session, municipality: Municipality, today: date) -> list[tuple[CourseRound, Course]]:
    """Rounds the municipality may still order: an active course, a round whose enrolment is open today (the
    municipality's day) and that it has not ordered yet."""
    ordered = select(Order.round_pk).where(Order.municipality_id == municipality.id)
    rows = session.execute(select(CourseRound, Course).join(Course, Course.code == CourseRound.course_code)
                           .where(Course.status == COURSE_ACTIVE, CourseRound.status == rules.ROUND_OPEN,
                                  CourseRound.enrolment_closes_on >= today, CourseRound.id.not_in(ordered))
                           .order_by(Course.code, CourseRound.starts_on)).all()
    return [(round_, course) for round_, course in rows]


@dataclass
class Totals:
    """Seats and money added up; money per currency (a municipality pays in its country's currency, but a price
    in another one is added up on its own, never converted)."""

    budget: int = 0
    taken: int = 0
    cost: dict[str, Decimal] = field(default_factory=dict)
    committed: dict[str, Decimal] = field(default_factory=dict)

    def add(self, line: OrderLine) -> None:
        self.budget += line.order.seats_budget
        self.taken += line.order.seats_taken
        if line.price is not None:
            currency = line.price.currency
            self.cost[currency] = self.cost.get(currency, Decimal(0)) + (line.cost or Decimal(0))
            self.committed[currency] = self.committed.get(currency, Decimal(0)) + (line.committed or Decimal(0))


@dataclass
class CourseTotals:
    course: Course
    totals: Totals
    rounds: int = 0


@dataclass
class YearTotals:
    year: int
    courses: list[CourseTotals]
    total: Totals


def yearly_totals(lines: Sequence[OrderLine]) -> list[YearTotals]:
    """Per calendar year of the rounds' start (oldest first) and per course: the budget, the seats taken, the cost
    so far and the committed cost, with the year's total."""
    years: dict[int, YearTotals] = {}
    courses: dict[tuple[int, str], CourseTotals] = {}
    for line in sorted(lines, key=lambda item: (item.year, item.course.code)):
        year = years.setdefault(line.year, YearTotals(line.year, [], Totals()))
        entry = courses.get((line.year, line.course.code))
        if entry is None:
            entry = courses[line.year, line.course.code] = CourseTotals(line.course, Totals())
            year.courses.append(entry)
        entry.totals.add(line)
        entry.rounds += 1
        year.total.add(line)
    return list(years.values())


@dataclass
class CourseChart:
    """One course's rounds in time order, for a chart of seats taken against budget; ``scale``: the largest
    budget (or seats taken) of its rounds, the full length of a bar."""

    course: Course
    lines: list[OrderLine]
    scale: int


def course_charts(lines: Sequence[OrderLine]) -> list[CourseChart]:
    charts: dict[str, list[OrderLine]] = {}
    for line in lines:
        charts.setdefault(line.course.code, []).append(line)
    return [CourseChart(rounds[0].course, sorted(rounds, key=lambda item: (item.round.starts_on, item.round.round_id)),
                        max(max(item.order.seats_budget, item.order.seats_taken) for item in rounds))
            for rounds in charts.values()]


# -- what the console changes -----------------------------------------------------------------------------------

def _view(round_: CourseRound) -> rules.RoundView:
    return rules.RoundView(round_.id, round_.round_id, round_.starts_on, round_.ends_on, round_.enrolment_closes_on,
                           round_.status)


def save_order(session: Session, municipality_id: str, round_pk: int, budget: int, today: date) -> Order:
    """Order a round for the municipality with a seat budget, or change the budget of its order (never below the
    seats taken: :func:`.seats.set_order`). Today is the municipality's day."""
    round_ = session.get(CourseRound, round_pk)
    if round_ is None:
        raise NotFoundError(f"no round {round_pk}")
    order = session.scalar(select(Order).where(Order.municipality_id == municipality_id, Order.round_pk == round_pk))
    if order is None:
        if round_.status in (rules.ROUND_OPEN, rules.ROUND_RUNNING) and not rules.enrolment_open(_view(round_), today):
            raise ConflictError(f"enrolment for {round_.course_code} {round_.round_id} closed on "
                                f"{round_.enrolment_closes_on}: it cannot be ordered", code=rules.ENROLMENT_CLOSED)
    elif round_.status not in (rules.ROUND_OPEN, rules.ROUND_RUNNING):
        raise ConflictError(f"round {round_.round_id} is {round_.status}", code="round_closed")
    elif not budget_open(round_, today):
        raise ConflictError(f"the budget of {round_.course_code} {round_.round_id} is settled since "
                            f"{round_.withdrawal_deadline}", code=rules.ENROLMENT_CLOSED)
    return seats.set_order(session, municipality_id, round_.course_code, round_.round_id, budget)
