"""``report``: reports for national staff and the municipalities (the cost report)."""

from __future__ import annotations

import click
from flask.cli import AppGroup
from sqlalchemy import select

from ..db import new_session
from ..services import seats
from .common import actor, fail


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


@report_cli.command("digest")
@click.option("--send", is_flag=True, help="Send each digest to its municipality's address (else print them)")
@click.option("--municipality", help="Only this municipality (printed even without an address)")
def report_digest(send: bool, municipality: str | None) -> None:
    """The week's e-mail digest of every municipality with a digest address (counts and a link, no personal
    data), in its language; weekly from cron with --send. Exit status 1 when any digest could not be sent."""
    from .. import clock
    from ..domain.resolution import parse_municipality_id
    from ..mail import mail_configured
    from ..models import Municipality
    from ..services import digest

    with new_session() as session:
        try:
            only = parse_municipality_id(municipality) if municipality else None
        except ValueError as error:
            fail(error)
        if only is not None and session.get(Municipality, only) is None:
            fail(ValueError(f"unknown municipality {only}"))
        if send:
            if not mail_configured():
                fail(RuntimeError("SMTP_HOST is not set: no digest sent"))
            run = digest.deliver_digests(session, municipality_id=only)
            click.echo(f"digests sent: {run.sent}, failed: {run.failed}" +
                       (f" ({', '.join(run.failures)})" if run.failures else ""))
            if run.failed:
                raise click.exceptions.Exit(1)
            return
        now = clock.now()
        query = select(Municipality).order_by(Municipality.id)
        query = query.where(Municipality.id == only) if only else query.where(Municipality.digest_email.is_not(None))
        for place in session.scalars(query).all():
            made = digest.digest_for(session, place.id, since=now - digest.PERIOD, until=now,
                                     locale=digest.municipality_locale(place))
            click.echo(f"To: {place.digest_email or '-'}\nSubject: {made.subject}\n\n{made.text}")


@report_cli.command("progress")
@click.option("--municipality", required=True, help="SE-1490 or NO-0301")
@click.option("--course", "course_code", help="Only this course code")
@click.option("--format", "fmt", type=click.Choice(["csv", "xlsx"]), required=True)
@click.option("--output", type=click.Path(dir_okay=False, writable=True), required=True, help="The file to write")
@click.option("--locale", type=click.Choice(["sv", "nb", "nn", "en"]),
              help="Language of the columns (default: the municipality's, sv or nb)")
@click.option("--by", help="Who exports (for the audit log; default: the OS user)")
def report_progress(municipality: str, course_code: str | None, fmt: str, output: str, locale: str | None,
                    by: str | None) -> None:
    """The municipality's pupils' progress per course round (as its console's export): CSV or XLSX."""
    from ..config import settings
    from ..domain.resolution import parse_municipality_id
    from ..models import AuditEntry, Course, Municipality
    from ..services import digest, progress_export

    with new_session() as session:
        try:
            municipality_id = parse_municipality_id(municipality)
        except ValueError as error:
            fail(error)
        place = session.get(Municipality, municipality_id)
        if place is None:
            fail(ValueError(f"unknown municipality {municipality_id}"))
        if course_code and session.get(Course, course_code) is None:
            fail(ValueError(f"unknown course {course_code}"))
        locale = locale or digest.municipality_locale(place)
        rows = progress_export.progress_rows(session, municipality_id=municipality_id, course_code=course_code,
                                             locale=locale, keep_names=settings().roster_names,
                                             launch_names=settings().launch_names)
        data = (progress_export.progress_csv(rows, locale).encode("utf-8") if fmt == "csv"
                else progress_export.progress_xlsx(rows, locale))
        with open(output, "wb") as handle:
            handle.write(data)
        session.add(AuditEntry(actor=actor(by), action=progress_export.ACTION_EXPORT, target=municipality_id,
                               details={k: v for k, v in {"course": course_code, "format": fmt,
                                                          "rows": len(rows)}.items() if v is not None}))
        session.commit()
    click.echo(f"{len(rows)} pupils' progress written to {output}")
