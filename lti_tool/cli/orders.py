"""``orders``: municipal orders (avrop), a seat budget per municipality, course and round."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from ..db import new_session
from ..domain.errors import DomainError
from ..services import seats
from .common import BY_HELP, audit, fail


@click.group("orders", cls=AppGroup)
def orders_cli() -> None:
    """Municipal orders (avrop): a seat budget per municipality, course and round."""


@orders_cli.command("set")
@click.option("--municipality", required=True, help="SE-1490 or NO-0301")
@click.option("--course", required=True, help="Course code, e.g. GIT-AK-1")
@click.option("--round", "round_id", required=True, help="Round id, e.g. 2027-spring")
@click.option("--seats", "budget", type=click.IntRange(min=0), required=True, help="The seat budget")
@click.option("--by", help=BY_HELP)
def orders_set(municipality: str, course: str, round_id: str, budget: int, by: str | None) -> None:
    """Create an order or change its budget (never below the seats already taken). Audited, with the budget before
    and after."""
    from sqlalchemy import select

    from ..domain.resolution import parse_municipality_id
    from ..models import CourseRound, Order

    with new_session() as session:
        try:
            municipality_id = parse_municipality_id(municipality)
            before = session.scalar(select(Order.seats_budget).join(CourseRound, Order.round_pk == CourseRound.id)
                                    .where(Order.municipality_id == municipality_id, CourseRound.course_code == course,
                                           CourseRound.round_id == round_id))
            order = seats.set_order(session, municipality, course, round_id, budget)
        except (DomainError, ValueError) as error:
            fail(error)
        audit(session, by, "order.set", f"{course} {round_id}", municipality=order.municipality_id,
              seats_budget={"before": before, "after": order.seats_budget})
        session.commit()
        click.echo(f"{order.municipality_id} {course} {round_id}: budget {order.seats_budget}, "
                   f"{order.seats_taken} taken")


@orders_cli.command("list")
@click.option("--municipality", help="Only this municipality's orders")
def orders_list(municipality: str | None) -> None:
    """Every order with its budget and the seats taken."""
    with new_session() as session:
        try:
            orders = seats.list_orders(session, municipality)
        except ValueError as error:
            fail(error)
        for order in orders:
            click.echo(f"{order.municipality_id}\t{order.round.course_code}\t{order.round.round_id}\t"
                       f"budget {order.seats_budget}\ttaken {order.seats_taken}\t{order.round.status}")
        click.echo(f"{len(orders)} order(s)", err=True)
