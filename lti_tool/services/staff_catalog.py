"""What national staff read of the catalog and the orders: courses (searched), a course with its rounds and its
content, orders filtered and paged, and each round's national capacity against the seats municipalities have
ordered and taken. Reads only."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from decimal import Decimal

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session, selectinload

from ..domain.paging import pages_for
from ..models import Assignment, Course, CourseModule, CoursePrice, CourseRound, Lesson, Municipality, Order
from .errors import NotFoundError
from .seats import order_cost

ORDERS_PAGE_SIZE = 50
COURSES_PAGE_SIZE = 50
COUNTRY_ORDER = {"SE": 0, "NO": 1}


def fold(text: str) -> str:
    """Lower case without accents, for matching what staff type ("malmo" finds Malmö)."""
    return "".join(c for c in unicodedata.normalize("NFKD", text.casefold()) if not unicodedata.combining(c))


# -- rounds: national capacity against what municipalities ordered ----------------------------------------------

@dataclass(frozen=True)
class RoundTotals:
    round: CourseRound
    orders: int  # municipalities with an order
    seats_budget: int  # their seat budgets together
    seats_taken: int  # seats taken in the round, every municipality together

    @property
    def capacity(self) -> int:
        return self.round.capacity

    @property
    def over_capacity(self) -> int:
        """Seats ordered beyond the round's places (0 when the budgets fit): pupils who would find the course full
        while their municipality's budget still has seats."""
        return max(0, self.seats_budget - self.round.capacity)


def round_totals(session: Session, round_pks) -> list[RoundTotals]:
    """Capacity, budgets and seats taken of these rounds, by course and start."""
    round_pks = list(round_pks)
    if not round_pks:
        return []
    rows = session.execute(
        select(CourseRound, func.count(Order.id), func.coalesce(func.sum(Order.seats_budget), 0))
        .outerjoin(Order, Order.round_pk == CourseRound.id)
        .where(CourseRound.id.in_(round_pks))
        .group_by(CourseRound.id)
        .order_by(CourseRound.course_code, CourseRound.starts_on, CourseRound.id)).all()
    return [RoundTotals(round_, orders, int(budget), round_.seats_taken) for round_, orders, budget in rows]


# -- the catalog ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class CourseLine:
    course: Course
    rounds: int
    prices: list[CoursePrice]


def _matches(course: Course, folded: str) -> bool:
    texts = [course.code, course.subject or "", *(course.title or {}).values()]
    return any(folded in fold(text) for text in texts if isinstance(text, str))


def _by_country(prices) -> list[CoursePrice]:
    return sorted(prices, key=lambda p: (COUNTRY_ORDER.get(p.country, 9), p.country))


@dataclass(frozen=True)
class CoursePage:
    lines: list[CourseLine]
    total: int
    page: int
    pages: int


def list_courses(session: Session, query: str = "", *, page: int = 1,
                 page_size: int = COURSES_PAGE_SIZE) -> CoursePage:
    """Courses by code (active and retired), ``query`` matching the code, the subject or a title in any language
    (case and accents ignored), ``page_size`` a page."""
    courses = session.scalars(select(Course).options(selectinload(Course.prices)).order_by(Course.code)).all()
    folded = fold(query.strip())
    if folded:
        courses = [c for c in courses if _matches(c, folded)]
    page, pages = pages_for(len(courses), page, page_size)
    shown = courses[(page - 1) * page_size: page * page_size]
    counts = dict(session.execute(select(CourseRound.course_code, func.count(CourseRound.id))
                                  .where(CourseRound.course_code.in_([c.code for c in shown]))
                                  .group_by(CourseRound.course_code)).all()) if shown else {}
    return CoursePage([CourseLine(c, counts.get(c.code, 0), _by_country(c.prices)) for c in shown], len(courses),
                      page, pages)


@dataclass(frozen=True)
class ModuleContent:
    """A module as pupils see it: its lessons and assignments still in the feed, in order."""

    module: CourseModule
    lessons: list[Lesson]
    assignments: list[Assignment]


@dataclass
class CourseDetail:
    course: Course
    prices: list[CoursePrice]
    rounds: list[RoundTotals]
    modules: list[ModuleContent] = field(default_factory=list)

    @property
    def over_capacity(self) -> list[RoundTotals]:
        return [r for r in self.rounds if r.over_capacity]


def course_content(session: Session, code: str) -> list[ModuleContent]:
    """The course's current modules with their lessons and assignments, in course order: what its pupils see (the
    staff console's course page, the round teacher's course content)."""
    modules = session.scalars(select(CourseModule)
                              .where(CourseModule.course_code == code, CourseModule.current.is_(True))
                              .options(selectinload(CourseModule.lessons), selectinload(CourseModule.assignments))
                              .order_by(CourseModule.position, CourseModule.id)).all()
    # Only what pupils see: lessons and assignments gone from the feed stay in the database for pupils' work.
    return [ModuleContent(m, [lesson for lesson in m.lessons if lesson.current],
                          [a for a in m.assignments if a.current]) for m in modules]


def course_detail(session: Session, code: str) -> CourseDetail:
    """A course with its prices, its rounds (capacity against budgets and seats) and its current modules with
    their lessons and assignments, in course order."""
    course = session.scalar(select(Course).where(Course.code == code).options(selectinload(Course.prices)))
    if course is None:
        raise NotFoundError(f"no course {code!r}")
    content = course_content(session, code)
    round_pks = session.scalars(select(CourseRound.id).where(CourseRound.course_code == code)).all()
    return CourseDetail(course, _by_country(course.prices), round_totals(session, round_pks), content)


# -- orders ---------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class OrderFilter:
    course: str = ""
    round_id: str = ""
    municipality: str = ""  # a name or code, case and accents ignored
    country: str = ""  # SE or NO

    @property
    def active(self) -> bool:
        return bool(self.course or self.round_id or self.municipality or self.country)


@dataclass(frozen=True)
class OrderLine:
    order: Order
    round: CourseRound
    municipality: Municipality
    price: CoursePrice | None

    @property
    def committed(self) -> Decimal | None:
        """The budget at the price: what the order commits the municipality to."""
        return self.price.amount * self.order.seats_budget if self.price is not None else None

    @property
    def cost(self) -> Decimal | None:
        """What it costs so far (seats charged at the price; the one rule of ``seats.order_cost``)."""
        return order_cost(self.order, self.round, self.price)


@dataclass(frozen=True)
class OrderPage:
    lines: list[OrderLine]
    total: int
    page: int
    pages: int
    rounds: list[RoundTotals]  # every round of the filtered orders, national figures


def _matching_municipalities(session: Session, text: str) -> set[str]:
    folded = fold(text)
    return {row.id for row in session.execute(select(Municipality.id, Municipality.name))
            if folded in fold(row.name) or folded in row.id.casefold()}


def order_page(session: Session, wanted: OrderFilter, *, page: int = 1,
               page_size: int = ORDERS_PAGE_SIZE) -> OrderPage:
    """Orders by course, round and municipality code, filtered, ``page_size`` a page; with the totals of every
    round the filtered orders belong to (capacity, all municipalities' budgets and seats taken)."""
    conditions = []
    if wanted.course:
        conditions.append(CourseRound.course_code == wanted.course)
    if wanted.round_id:
        conditions.append(CourseRound.round_id == wanted.round_id)
    if wanted.country:
        conditions.append(Municipality.country == wanted.country)
    if wanted.municipality.strip():
        conditions.append(Order.municipality_id.in_(_matching_municipalities(session, wanted.municipality.strip())))
    base = (select(Order, CourseRound, Municipality, CoursePrice)
            .join(CourseRound, Order.round_pk == CourseRound.id)
            .join(Municipality, Order.municipality_id == Municipality.id)
            .outerjoin(CoursePrice, and_(CoursePrice.course_code == CourseRound.course_code,
                                         CoursePrice.country == Municipality.country))
            .where(*conditions))
    total = session.scalar(select(func.count(Order.id)).join(CourseRound, Order.round_pk == CourseRound.id)
                           .join(Municipality, Order.municipality_id == Municipality.id).where(*conditions)) or 0
    page, pages = pages_for(total, page, page_size)
    rows = session.execute(base.order_by(CourseRound.course_code, CourseRound.starts_on, CourseRound.id,
                                         Order.municipality_id)
                           .offset((page - 1) * page_size).limit(page_size)).all()
    round_pks = session.scalars(select(Order.round_pk).distinct().join(CourseRound, Order.round_pk == CourseRound.id)
                                .join(Municipality, Order.municipality_id == Municipality.id).where(*conditions)).all()
    return OrderPage([OrderLine(*row) for row in rows], total, page, pages, round_totals(session, round_pks))


def filter_choices(session: Session, course: str = "") -> tuple[list[Course], list[str]]:
    """The courses that have rounds, and the round ids (of ``course`` when given), for the orders' filters."""
    courses = session.scalars(select(Course).where(Course.code.in_(select(CourseRound.course_code)))
                              .order_by(Course.code)).all()
    rounds = select(CourseRound.round_id).distinct().order_by(CourseRound.round_id)
    if course:
        rounds = rounds.where(CourseRound.course_code == course)
    return list(courses), list(session.scalars(rounds))
