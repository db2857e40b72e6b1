"""``report``: reports for national staff and the municipalities (the cost report)."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from ..db import new_session
from ..services import seats
from .common import fail


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
            fail(error)
    if fmt == "csv":
        click.echo(seats.cost_csv(lines), nl=False)
        return
    click.echo(f"{'municipality':<26}{'course':<14}{'round':<14}{'seats':>6}{'price':>10}{'amount':>12}  currency")
    for line in lines:
        price = "-" if line.price_per_seat is None else f"{line.price_per_seat:.2f}"
        amount = "-" if line.amount is None else f"{line.amount:.2f}"
        click.echo(f"{line.municipality + ' ' + line.municipality_name:<26.25}{line.course:<14}{line.round:<14}"
                   f"{line.seats_taken:>6}{price:>10}{amount:>12}  {line.currency or '-'}")
