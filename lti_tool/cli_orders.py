"""Command line for orders (avrop), rounds and the cost report."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from .db import new_session
from .domain.errors import DomainError
from .services import seats


def _fail(error: Exception) -> None:
    raise click.ClickException(str(error))


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
            _fail(error)
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
            _fail(error)
        for order in orders:
            click.echo(f"{order.municipality_id}\t{order.round.course_code}\t{order.round.round_id}\t"
                       f"budget {order.seats_budget}\ttaken {order.seats_taken}\t{order.round.status}")
        click.echo(f"{len(orders)} order(s)", err=True)


@click.group("rounds", cls=AppGroup)
def rounds_cli() -> None:
    """Course rounds."""


@rounds_cli.command("close-enrolment")
@click.option("--today", type=click.DateTime(formats=["%Y-%m-%d"]),
              help="Run as of this date (default: today in Sweden and Norway, whatever the server's time zone)")
def rounds_close_enrolment(today) -> None:
    """Close rounds whose enrolment has closed (daily from cron, any time after midnight Swedish time): a round
    below its minimum number of participants is cancelled and its seats released at no cost; the others run."""
    with new_session() as session:
        report = seats.close_enrolment(session, today.date() if today else None)
        session.commit()
    for label in report.running:
        click.echo(f"running: {label}")
    for label in report.cancelled:
        click.echo(f"cancelled (below minimum): {label}")
    click.echo(f"{len(report.running)} running, {len(report.cancelled)} cancelled")


@click.group("report", cls=AppGroup)
def report_cli() -> None:
    """Reports for national staff and the municipalities."""


@report_cli.command("costs")
@click.option("--round", "round_id", help="Only this round id")
@click.option("--municipality", help="Only this municipality")
@click.option("--format", "fmt", type=click.Choice(["table", "csv"]), default="table")
def report_costs(round_id: str | None, municipality: str | None, fmt: str) -> None:
    """Seats taken, price per seat and amount per municipality and course round (no pupils, no cost)."""
    with new_session() as session:
        try:
            lines = seats.cost_report(session, round_id=round_id, municipality=municipality)
        except ValueError as error:
            _fail(error)
    if fmt == "csv":
        click.echo(seats.cost_csv(lines), nl=False)
        return
    click.echo(f"{'municipality':<26}{'course':<14}{'round':<14}{'seats':>6}{'price':>10}{'amount':>12}  currency")
    for line in lines:
        price = "-" if line.price_per_seat is None else f"{line.price_per_seat:.2f}"
        amount = "-" if line.amount is None else f"{line.amount:.2f}"
        click.echo(f"{line.municipality + ' ' + line.municipality_name:<26.25}{line.course:<14}{line.round:<14}"
                   f"{line.seats_taken:>6}{price:>10}{amount:>12}  {line.currency or '-'}")


def init_app(app) -> None:
    for group in (orders_cli, rounds_cli, report_cli):
        app.cli.add_command(group)
