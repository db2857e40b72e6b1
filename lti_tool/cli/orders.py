"""``orders``: municipal orders (avrop), a seat budget per municipality, course and round."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from ..db import new_session
from ..domain.errors import DomainError
from ..services import seats
from .common import fail


@click.group("orders", cls=AppGroup)
def orders_cli() -> None:
    """Municipal orders (avrop): a seat budget per municipality, course and round."""


@orders_cli.command("set")
@click.option("--municipality", required=True, help="SE-1490 or NO-0301")
@click.option("--course", required=True, help="Course code, e.g. GIT-AK-1")
@click.option("--round", "round_id", required=True, help="Round id, e.g. 2027-spring")
@click.option("--seats", "budget", type=click.IntRange(min=0), required=True, help="The seat budget")
def orders_set(municipality: str, course: str, round_id: str, budget: int) -> None:
    """Create an order or change its budget (never below the seats already taken)."""
    with new_session() as session:
        try:
            order = seats.set_order(session, municipality, course, round_id, budget)
        except (DomainError, ValueError) as error:
            fail(error)
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
