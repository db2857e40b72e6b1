"""``rounds``: course rounds (closing enrolment, daily from cron)."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from ..db import new_session
from ..services import seats


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
