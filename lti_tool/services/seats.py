"""Orders (avrop), seats and waiting lists. Never commits: the caller does.

Counting is race-free on SQLite and PostgreSQL alike: a seat is taken by two conditional UPDATEs
(``orders.seats_taken < seats_budget`` and ``course_rounds.seats_taken < capacity``) and one INSERT
guarded by a unique constraint, all inside one savepoint. Whatever fails rolls the three back together.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import and_, bindparam, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from .. import clock
from ..domain import calendar
from ..domain import seats as rules
from ..domain.errors import DomainError
from ..domain.resolution import parse_municipality_id
from ..domain.seats import RoundView, SeatRefusedError
from ..metrics import count_seat_decision
from ..models import (COURSE_ACTIVE, SEAT_ACTIVE, SEAT_CANCELLED, SEAT_WITHDRAWN, WAITING, WAITING_ADMITTED,
                      WAITING_LEFT, Course, CoursePrice, CourseRound, Municipality, Order, Seat, WaitlistEntry)
from .errors import NotFoundError


def _now() -> datetime:
    """The tool's one clock (``clock.now``), through a hook a test replaces to move this module in time."""
    return clock.now()


def municipal_today(municipality_id: str) -> date:
    """Today in the municipality's own time zone (Europe/Stockholm, Europe/Oslo): the day that decides its pupils'
    enrolment and withdrawal, whatever the server's time zone."""
    return calendar.local_date(municipality_id, _now())


def national_today() -> date:
    """Today for a round shared by every country's pupils: no country's day has ended before it."""
    return calendar.national_date(_now())


def _view(round_: CourseRound) -> RoundView:
    return RoundView(round_.id, round_.round_id, round_.starts_on, round_.ends_on, round_.enrolment_closes_on,
                     round_.status)


# -- orders ------------------------------------------------------------------------------------------

def get_round(session: Session, course_code: str, round_id: str) -> CourseRound:
    round_ = session.scalar(select(CourseRound).where(CourseRound.course_code == course_code,
                                                      CourseRound.round_id == round_id))
    if round_ is None:
        raise NotFoundError(f"course {course_code} has no round {round_id}")
    return round_


def set_order(session: Session, municipality: str, course_code: str, round_id: str, seats: int) -> Order:
    """Create an order or change its budget; never below the seats already taken. A raised budget admits
    waiting pupils in order."""
    municipality_id = parse_municipality_id(municipality)
    if session.get(Municipality, municipality_id) is None:
        raise NotFoundError(f"unknown municipality {municipality_id}")
    course = session.get(Course, course_code)
    if course is None:
        raise NotFoundError(f"unknown course {course_code}")
    round_ = get_round(session, course_code, round_id)
    order = session.scalar(select(Order).where(Order.municipality_id == municipality_id, Order.round_pk == round_.id)
                           .with_for_update())
    if order is None:
        if course.status != COURSE_ACTIVE:
            raise DomainError(f"course {course_code} is retired: it cannot be ordered",
                              code=rules.REFUSAL_COURSE_RETIRED, status=409)
        if round_.status not in (rules.ROUND_OPEN, rules.ROUND_RUNNING):
            raise DomainError(f"round {round_id} is {round_.status}: it cannot be ordered", code="round_closed",
                              status=409)
        rules.budget_check(seats, 0)
        order = Order(municipality_id=municipality_id, round_pk=round_.id, seats_budget=seats, seats_taken=0)
        session.add(order)
        session.flush()
        return order
    # The conditional UPDATE is the guard: a seat taken meanwhile by a launch cannot be undercut.
    rules.budget_check(seats, 0)
    result = session.execute(update(Order).where(Order.id == order.id, Order.seats_taken <= seats)
                             .values(seats_budget=seats, updated_at=_now()))
    if result.rowcount != 1:
        session.refresh(order)
        rules.budget_check(seats, order.seats_taken)
    session.refresh(order)
    admit_waiting(session, order)
    return order


def list_orders(session: Session, municipality: str | None = None) -> list[Order]:
    query = select(Order).join(CourseRound).order_by(Order.municipality_id, CourseRound.course_code,
                                                     CourseRound.starts_on)
    if municipality:
        query = query.where(Order.municipality_id == parse_municipality_id(municipality))
    return list(session.scalars(query))


# -- seats at launch ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class SeatResult:
    outcome: str  # granted | held
    seat: Seat
    round: CourseRound


class _AlreadyHeld(Exception):
    """Another launch of the same pupil took the seat first."""


_UNKNOWN = -1
_ORDERS, _ROUNDS = Order.__table__, CourseRound.__table__
# The two guarded counters, built once (plain table statements: no ORM bookkeeping on the hot path; the
# caller refreshes an Order or CourseRound it keeps in the session and reads again).
_COUNT_IN_BUDGET = (update(_ORDERS).where(_ORDERS.c.id == bindparam("order_id"),
                                          _ORDERS.c.seats_taken < _ORDERS.c.seats_budget)
                    .values(seats_taken=_ORDERS.c.seats_taken + 1))
_COUNT_IN_ROUND = (update(_ROUNDS).where(_ROUNDS.c.id == bindparam("round_pk"),
                                         _ROUNDS.c.seats_taken < _ROUNDS.c.capacity)
                   .values(seats_taken=_ROUNDS.c.seats_taken + 1))


def _take(session: Session, order_id: int, round_pk: int, municipality_id: str, registration_id: int,
          sub: str, existing: int | None = _UNKNOWN) -> Seat:
    """Both counters and the seat row, all or nothing: :class:`SeatRefusedError` when the budget or the
    capacity is used up, ``_AlreadyHeld`` or ``IntegrityError`` when the same pupil got there first.
    ``existing``: the id of the pupil's released seat row in the round, or None when there is none, as the
    caller has just read them in this transaction (looked up here otherwise)."""
    with session.begin_nested():  # an exception inside rolls all three back
        taken = session.execute(_COUNT_IN_BUDGET, {"order_id": order_id})
        if taken.rowcount != 1:
            raise SeatRefusedError("the municipality's seat budget is used up", code=rules.BUDGET_USED,
                                   waitlist=True, round_pk=round_pk, order_id=order_id)
        placed = session.execute(_COUNT_IN_ROUND, {"round_pk": round_pk})
        if placed.rowcount != 1:
            raise SeatRefusedError("the round's national group is full", code=rules.COURSE_FULL, waitlist=True,
                                   round_pk=round_pk, order_id=order_id)
        if existing == _UNKNOWN:
            existing = session.scalar(select(Seat.id).where(Seat.round_pk == round_pk,
                                                            Seat.registration_id == registration_id, Seat.sub == sub))
        if existing is None:
            seat = Seat(round_pk=round_pk, order_id=order_id, municipality_id=municipality_id,
                        registration_id=registration_id, sub=sub, status=SEAT_ACTIVE)
            session.add(seat)
            session.flush()  # a concurrent launch of the same pupil: IntegrityError on the unique constraint
        else:
            # Withdrawn or cancelled earlier: the same row is taken again, unless another launch of the same
            # pupil has just done so (then this one takes nothing).
            again = session.execute(update(Seat).where(Seat.id == existing, Seat.registration_id == registration_id,
                                                       Seat.sub == sub, Seat.status != SEAT_ACTIVE)
                                    .values(status=SEAT_ACTIVE, order_id=order_id, municipality_id=municipality_id,
                                            taken_at=_now(), released_at=None))
            if again.rowcount != 1:
                raise _AlreadyHeld()
            seat = session.get(Seat, existing, populate_existing=True)
    return seat


def _active_seat(session: Session, round_pk: int, registration_id: int, sub: str) -> Seat | None:
    return session.scalar(select(Seat).where(Seat.round_pk == round_pk, Seat.registration_id == registration_id,
                                             Seat.sub == sub, Seat.status == SEAT_ACTIVE))


def reserve_seat(session: Session, *, registration_id: int, sub: str, municipality_id: str, course_code: str,
                 round_id: str | None = None, today: date | None = None) -> SeatResult:
    """A pupil's launch on a course: straight in with a seat already held; else a seat from the home
    municipality's budget when every condition holds at once; else :class:`SeatRefusedError`. Each
    decision is counted in the metrics (``granted``, ``already_held`` or the refusal code)."""
    try:
        result = _reserve_seat(session, registration_id=registration_id, sub=sub, municipality_id=municipality_id,
                               course_code=course_code, round_id=round_id, today=today)
    except SeatRefusedError as refusal:
        count_seat_decision(refusal.code)
        raise
    count_seat_decision("granted" if result.outcome == rules.OUTCOME_GRANTED else "already_held")
    return result


# Built once (statement construction and its cache key cost as much as the query itself on this path).
_LAUNCH_SEAT_QUERY = (
    select(Course, CourseRound, Seat, Order, WaitlistEntry.status)
    .outerjoin(CourseRound, CourseRound.course_code == Course.code)
    .outerjoin(Seat, and_(Seat.round_pk == CourseRound.id, Seat.registration_id == bindparam("registration_id"),
                          Seat.sub == bindparam("sub")))
    .outerjoin(Order, and_(Order.round_pk == CourseRound.id, Order.municipality_id == bindparam("municipality_id")))
    .outerjoin(WaitlistEntry, and_(WaitlistEntry.round_pk == CourseRound.id,
                                   WaitlistEntry.registration_id == bindparam("registration_id"),
                                   WaitlistEntry.sub == bindparam("sub")))
    .where(Course.code == bindparam("course_code")))


def _reserve_seat(session: Session, *, registration_id: int, sub: str, municipality_id: str, course_code: str,
                  round_id: str | None, today: date | None) -> SeatResult:
    today = today or municipal_today(municipality_id)
    # One statement: the course, its rounds, the pupil's seat row in each (any status), the home
    # municipality's order for each and the pupil's place on its waiting list. What is read here only decides
    # what to try: the counters are changed by conditional UPDATEs and the seat row is guarded by its unique
    # constraint.
    rows = session.execute(_LAUNCH_SEAT_QUERY, {"course_code": course_code, "registration_id": registration_id,
                                                "sub": sub, "municipality_id": municipality_id}).all()
    if not rows:
        raise SeatRefusedError(f"unknown course {course_code!r}", code=rules.COURSE_UNKNOWN)
    course = rows[0][0]
    rounds = [round_ for _, round_, _, _, _ in rows if round_ is not None]
    mine = {round_.id: seat for _, round_, seat, _, _ in rows if round_ is not None and seat is not None}
    orders = {round_.id: order for _, round_, _, order, _ in rows if round_ is not None and order is not None}
    waiting = {round_.id for _, round_, _, _, status in rows if round_ is not None and status == WAITING}
    held = {pk for pk, seat in mine.items() if seat.status == SEAT_ACTIVE}
    chosen = rules.choose_round([_view(r) for r in rounds], today, requested=round_id, held=held)
    round_ = next(r for r in rounds if r.id == chosen.pk)

    seat = mine.get(round_.id)
    if seat is not None and seat.status == SEAT_ACTIVE:
        return SeatResult(rules.OUTCOME_HELD, seat, round_)
    if course.status != COURSE_ACTIVE:
        raise SeatRefusedError(f"course {course_code} retired", code=rules.REFUSAL_COURSE_RETIRED, round_pk=round_.id)
    order = orders.get(round_.id)
    rules.check_before_counting(has_order=order is not None, round_=chosen, today=today)
    assert order is not None
    try:
        seat = _take(session, order.id, round_.id, municipality_id, registration_id, sub,
                     existing=seat.id if seat is not None else None)
    except (IntegrityError, _AlreadyHeld):
        # The same pupil launched twice at the same moment: the other launch took the seat.
        seat = _active_seat(session, round_.id, registration_id, sub)
        if seat is None:
            raise
        return SeatResult(rules.OUTCOME_HELD, seat, round_)
    if round_.id in waiting:
        _leave_waitlist(session, round_.id, registration_id, sub)
    return SeatResult(rules.OUTCOME_GRANTED, seat, round_)


def keep_launch_name(seat: Seat, name: str | None, *, keep: bool) -> None:
    """The pupil's name as their launch into the seat's round carries it (``LaunchClaims.name``), kept on the seat
    for the round's teachers when the tool keeps launch names (``keep``: the ``LAUNCH_NAMES`` setting). Every
    launch sets it again: a changed name replaces the old one, and a launch without a name (the platform stopped
    sharing it), or with ``keep`` off, clears it. Never on the launch record, which holds pseudonyms only."""
    wanted = name if keep and name else None
    if seat.name != wanted:
        seat.name = wanted


def round_for_staff(session: Session, course_code: str, round_id: str | None = None,
                    today: date | None = None, municipality_id: str | None = None) -> CourseRound | None:
    """The round a teacher's or administrator's launch on a course shows (no seat is involved); the day is the
    launch's municipality's."""
    course = session.get(Course, course_code)
    if course is None:
        raise SeatRefusedError(f"unknown course {course_code!r}", code=rules.COURSE_UNKNOWN)
    rounds = list(session.scalars(select(CourseRound).where(CourseRound.course_code == course_code)
                                  .order_by(CourseRound.starts_on)))
    try:
        today = today or (municipal_today(municipality_id) if municipality_id else national_today())
        chosen = rules.choose_round([_view(r) for r in rounds], today, requested=round_id)
    except SeatRefusedError as refusal:
        if refusal.code == rules.ROUND_UNKNOWN or not rounds:
            raise
        return rounds[-1]  # nothing live: the latest round, for its pupils' work
    return next(r for r in rounds if r.id == chosen.pk)


def active_seat(session: Session, round_pk: int, registration_id: int, sub: str) -> tuple[Seat | None, bool]:
    """The pupil's active seat in the round, and whether it came from the waiting list (one statement)."""
    row = session.execute(_ACTIVE_SEAT_QUERY, {"round_pk": round_pk, "registration_id": registration_id,
                                               "sub": sub}).first()
    return (row[0], row[1] is not None) if row is not None else (None, False)


_ACTIVE_SEAT_QUERY = (
    select(Seat, WaitlistEntry.id)
    .outerjoin(WaitlistEntry, and_(WaitlistEntry.round_pk == Seat.round_pk,
                                   WaitlistEntry.registration_id == Seat.registration_id,
                                   WaitlistEntry.sub == Seat.sub, WaitlistEntry.status == WAITING_ADMITTED))
    .where(Seat.round_pk == bindparam("round_pk"), Seat.registration_id == bindparam("registration_id"),
           Seat.sub == bindparam("sub"), Seat.status == SEAT_ACTIVE))


def _leave_waitlist(session: Session, round_pk: int, registration_id: int, sub: str) -> None:
    session.execute(update(WaitlistEntry).where(
        WaitlistEntry.round_pk == round_pk, WaitlistEntry.registration_id == registration_id,
        WaitlistEntry.sub == sub, WaitlistEntry.status == WAITING).values(status=WAITING_LEFT))


# -- waiting list ---------------------------------------------------------------------------------------

def join_waitlist(session: Session, *, order_id: int, registration_id: int, sub: str) -> tuple[WaitlistEntry, int]:
    """Put the pupil on the order's waiting list (once); returns the entry and its place (1 = next)."""
    order = session.get(Order, order_id)
    if order is None:
        raise NotFoundError(f"no order {order_id}")
    entry = session.scalar(select(WaitlistEntry).where(WaitlistEntry.round_pk == order.round_pk,
                                                       WaitlistEntry.registration_id == registration_id,
                                                       WaitlistEntry.sub == sub))
    if entry is None:
        try:
            with session.begin_nested():
                entry = WaitlistEntry(order_id=order.id, round_pk=order.round_pk, registration_id=registration_id,
                                      sub=sub, status=WAITING)
                session.add(entry)
        except IntegrityError:
            entry = session.scalar(select(WaitlistEntry).where(WaitlistEntry.round_pk == order.round_pk,
                                                               WaitlistEntry.registration_id == registration_id,
                                                               WaitlistEntry.sub == sub))
    elif entry.status == WAITING_LEFT:
        entry.status, entry.created_at, entry.order_id = WAITING, _now(), order.id
        session.flush()
    return entry, waitlist_position(session, entry)


def waitlist_position(session: Session, entry: WaitlistEntry) -> int:
    if entry.status != WAITING:
        return 0
    ahead = session.scalar(select(func.count()).select_from(WaitlistEntry).where(
        WaitlistEntry.order_id == entry.order_id, WaitlistEntry.status == WAITING,
        (WaitlistEntry.created_at < entry.created_at)
        | and_(WaitlistEntry.created_at == entry.created_at, WaitlistEntry.id < entry.id)))
    return int(ahead or 0) + 1


def admit_waiting(session: Session, order: Order, today: date | None = None) -> list[Seat]:
    """Give free seats of the order to its waiting pupils, first come first served, while the budget,
    the round's capacity and the withdrawal deadline allow (the municipality's day)."""
    today = today or municipal_today(order.municipality_id)
    round_ = session.get(CourseRound, order.round_pk)
    if round_ is None or not rules.can_withdraw(round_.status, round_.withdrawal_deadline, today):
        return []
    admitted = []
    waiting = list(session.scalars(select(WaitlistEntry).where(
        WaitlistEntry.order_id == order.id, WaitlistEntry.status == WAITING)
        .order_by(WaitlistEntry.created_at, WaitlistEntry.id)))
    for entry in waiting:
        try:
            seat = _take(session, order.id, order.round_pk, order.municipality_id, entry.registration_id, entry.sub)
        except SeatRefusedError:
            break
        entry.status, entry.admitted_at = WAITING_ADMITTED, _now()
        admitted.append(seat)
    session.flush()
    if admitted:  # the counters were raised by table statements
        session.refresh(order)
        session.refresh(round_)
    return admitted


# -- withdrawal and cancellation -------------------------------------------------------------------------

def _release(session: Session, seat: Seat, status: str) -> None:
    session.execute(update(Order).where(Order.id == seat.order_id, Order.seats_taken > 0)
                    .values(seats_taken=Order.seats_taken - 1))
    session.execute(update(CourseRound).where(CourseRound.id == seat.round_pk, CourseRound.seats_taken > 0)
                    .values(seats_taken=CourseRound.seats_taken - 1))
    seat.status, seat.released_at = status, _now()


def may_withdraw(round_: CourseRound, seat: Seat, today: date | None = None) -> bool:
    """Can this seat still be given up at no cost? Until the round's withdrawal deadline, a day of the seat's
    municipality (the same rule :func:`withdraw` applies)."""
    return rules.can_withdraw(round_.status, round_.withdrawal_deadline, today or municipal_today(seat.municipality_id))


def withdraw(session: Session, *, round_pk: int, registration_id: int, sub: str,
             today: date | None = None) -> Seat:
    """The pupil leaves the round before its withdrawal deadline: the seat is freed at no cost and the
    first waiting pupil of the same municipality gets it. The deadline is a day of the seat's municipality."""
    round_ = session.get(CourseRound, round_pk)
    seat = session.scalar(select(Seat).where(Seat.round_pk == round_pk, Seat.registration_id == registration_id,
                                             Seat.sub == sub, Seat.status == SEAT_ACTIVE).with_for_update())
    if round_ is None or seat is None:
        raise NotFoundError("no seat to withdraw from")
    today = today or municipal_today(seat.municipality_id)
    if not may_withdraw(round_, seat, today):
        raise DomainError(f"the withdrawal deadline {round_.withdrawal_deadline} has passed",
                          code="withdrawal_closed", status=409)
    _release(session, seat, SEAT_WITHDRAWN)
    session.flush()
    order = session.get(Order, seat.order_id)
    session.refresh(order)
    admit_waiting(session, order, today)
    return seat


@dataclass(frozen=True)
class CloseReport:
    running: list[str]
    cancelled: list[str]


def close_enrolment(session: Session, today: date | None = None) -> CloseReport:
    """Rounds whose enrolment has closed: below the minimum number of participants they are cancelled
    (every seat released, no cost, waiting lists emptied); otherwise they run. Without ``today``: the day in
    the countries' time zones (a round's last day of enrolment is over only when it is over everywhere)."""
    today = today or national_today()
    report = CloseReport([], [])
    due = session.scalars(select(CourseRound).where(CourseRound.status == rules.ROUND_OPEN,
                                                    CourseRound.enrolment_closes_on < today)
                          .order_by(CourseRound.course_code, CourseRound.round_id).with_for_update())
    for round_ in due:
        label = f"{round_.course_code} {round_.round_id}"
        if rules.should_cancel(round_.seats_taken, round_.min_participants):
            round_.status = rules.ROUND_CANCELLED
            for seat in session.scalars(select(Seat).where(Seat.round_pk == round_.id, Seat.status == SEAT_ACTIVE)):
                _release(session, seat, SEAT_CANCELLED)
            session.execute(update(WaitlistEntry).where(WaitlistEntry.round_pk == round_.id,
                                                        WaitlistEntry.status == WAITING).values(status=WAITING_LEFT))
            report.cancelled.append(label)
        else:
            round_.status = rules.ROUND_RUNNING
            report.running.append(label)
    session.flush()
    return report


# -- cost ---------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class CostLine:
    municipality: str
    municipality_name: str
    course: str
    round: str
    seats_taken: int
    price_per_seat: Decimal | None
    amount: Decimal | None
    currency: str | None
    seats_budget: int = 0
    committed: Decimal | None = None  # the budget at the price: what the order commits the municipality to


COST_COLUMNS = ["municipality", "course", "round", "seats_taken", "price_per_seat", "amount", "currency",
                "seats_budget", "committed"]


def seats_charged(order: Order, round_: CourseRound) -> int:
    """The seats an order is charged for: its active seats (a pupil who withdrew in time costs nothing), none
    when the round was cancelled."""
    return 0 if round_.status == rules.ROUND_CANCELLED else order.seats_taken


def order_cost(order: Order, round_: CourseRound, price: CoursePrice | None) -> Decimal | None:
    """What an order costs the municipality: the seats charged at the course's price for the municipality's
    country (``None`` without a price). The one rule behind the municipal console, the staff's cost page and
    the cost reports."""
    return price.amount * seats_charged(order, round_) if price is not None else None


def cost_report(session: Session, *, round_id: str | None = None, municipality: str | None = None) -> list[CostLine]:
    """Per municipality and course round: seats taken (active seats; withdrawn in time and cancelled cost
    nothing), the price per seat for the municipality's country, and the amount."""
    query = (select(Order, CourseRound, Municipality, CoursePrice)
             .join(CourseRound, Order.round_pk == CourseRound.id)
             .join(Municipality, Order.municipality_id == Municipality.id)
             .outerjoin(CoursePrice, and_(CoursePrice.course_code == CourseRound.course_code,
                                          CoursePrice.country == Municipality.country))
             .order_by(Order.municipality_id, CourseRound.course_code, CourseRound.starts_on))
    if round_id:
        query = query.where(CourseRound.round_id == round_id)
    if municipality:
        query = query.where(Order.municipality_id == parse_municipality_id(municipality))
    lines = []
    for order, round_, place, price in session.execute(query):
        amount = order_cost(order, round_, price)
        lines.append(CostLine(place.id, place.name, round_.course_code, round_.round_id, seats_charged(order, round_),
                              price.amount if price else None, amount, price.currency if price else None,
                              order.seats_budget, price.amount * order.seats_budget if price else None))
    return lines


def cost_csv(lines: list[CostLine], header: list[str] | None = None, *, decimal_comma: bool = False) -> str:
    """CSV that opens cleanly in a spreadsheet: UTF-8 with BOM, CRLF line ends. By default the column names of
    :data:`COST_COLUMNS`, ',' between fields and decimal points (for programs); ``header`` (the same columns in
    the reader's language) and ``decimal_comma`` for a Swedish or Norwegian spreadsheet, which wants ';' between
    fields and a decimal comma."""
    def money(value: Decimal | None) -> str:
        text = "" if value is None else f"{value:.2f}"
        return text.replace(".", ",") if decimal_comma else text

    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";" if decimal_comma else ",", lineterminator="\r\n")
    writer.writerow(header or COST_COLUMNS)
    for line in lines:
        writer.writerow([line.municipality, line.course, line.round, line.seats_taken, money(line.price_per_seat),
                         money(line.amount), line.currency or "", line.seats_budget, money(line.committed)])
    return "\ufeff" + buffer.getvalue()
