"""``outbox`` and ``worker``: the grade outbox and the workers that drain it."""

from __future__ import annotations

import signal
import time

import click
from flask import current_app
from flask.cli import AppGroup, with_appcontext

from ..config import settings
from ..db import SESSIONMAKER_KEY, new_session
from ..lti import get_lti
from ..lti.ags import ServiceClient
from ..models import OUTBOX_DEAD, OUTBOX_PENDING, OUTBOX_SENDING, OUTBOX_SENT, OUTBOX_SUPERSEDED
from ..services import grades
from .common import BY_HELP, audit


def service_client() -> ServiceClient:
    """The AGS/NRPS client of the commands (signed with the tool's current key, outbound policy applied)."""
    return ServiceClient(get_lti().keys, timeout=settings().http_timeout_seconds,
                         policy=get_lti().outbound)


@click.command("worker")
@click.option("--interval", type=float, default=2.0, help="Seconds between looks at an empty outbox.")
@with_appcontext
def worker_command(interval: float) -> None:
    """Drain the grade outbox until stopped (SIGTERM/SIGINT). Run as many as you like, on many machines."""
    stopping = {"now": False}

    def stop(_signum, _frame):
        stopping["now"] = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    client = service_client()
    sessions = current_app.extensions[SESSIONMAKER_KEY]
    click.echo("worker: draining the outbox")
    while not stopping["now"]:
        report = grades.drain(sessions, client, max_items=200)
        if report.total():
            click.echo(f"worker: sent {report.sent}, retrying {report.retried}, dead {report.dead}")
        else:
            time.sleep(interval)
    click.echo("worker: stopped")


@click.group("outbox", cls=AppGroup)
def outbox_cli() -> None:
    """The grade outbox: scores waiting for, sent to or refused by the platforms."""


@outbox_cli.command("flush")
def outbox_flush() -> None:
    """Send everything due once, then stop (for cron)."""
    report = grades.drain(current_app.extensions[SESSIONMAKER_KEY], service_client())
    click.echo(f"sent {report.sent}, retrying {report.retried}, dead {report.dead}")


@outbox_cli.command("list")
@click.option("--status",
              type=click.Choice([OUTBOX_PENDING, OUTBOX_SENDING, OUTBOX_SENT, OUTBOX_DEAD, OUTBOX_SUPERSEDED]))
@click.option("--limit", type=click.IntRange(min=1), default=50)
def outbox_list(status: str | None, limit: int) -> None:
    """The newest rows: id, status, attempts, next try, last error (or the platform's answer)."""
    with new_session() as session:
        for item in grades.list_items(session, status, limit):
            answer = item.last_error or ""
            if item.status == OUTBOX_DEAD and item.platform_response:
                answer += f" | platform said: {item.platform_response[:200]}"
            click.echo(f"{item.id}\t{item.status}\t{item.kind}\tattempts {item.attempts}\t"
                       f"next {item.next_attempt_at:%Y-%m-%d %H:%M:%S}\t{answer}")


@outbox_cli.command("retry")
@click.argument("item_id", type=int)
@click.option("--by", help=BY_HELP)
def outbox_retry(item_id: int, by: str | None) -> None:
    """Put one dead letter back in the queue (audited, as in the console)."""
    with new_session() as session:
        report = grades.retry_dead(session, item_id)
        if report.queued or report.superseded:
            audit(session, by, "outbox.retry", f"outbox {item_id}", queued=report.queued,
                  superseded=report.superseded)
        session.commit()
    if report.superseded:
        click.echo(f"{item_id} superseded: a newer score for the same pupil and column has been sent or is queued")
        return
    if not report.queued:
        raise click.ClickException(f"no dead letter {item_id}")
    click.echo(f"{item_id} queued again")


@outbox_cli.command("retry-all-dead")
@click.option("--by", help=BY_HELP)
def outbox_retry_all(by: str | None) -> None:
    """Put every dead letter back in the queue (audited, as in the console)."""
    with new_session() as session:
        report = grades.retry_dead(session)
        if report.queued or report.superseded:
            audit(session, by, "outbox.retry", "outbox all dead", queued=report.queued, superseded=report.superseded)
        session.commit()
    click.echo(f"{report.queued} dead letter(s) queued again, {report.superseded} superseded by a newer score")


@outbox_cli.command("placements")
@click.option("--context", "context_id", default=None, help="Only this platform context id.")
def outbox_placements(context_id: str | None) -> None:
    """How each placement's scores reach its gradebook: one column per assignment, or the course total."""
    with new_session() as session:
        for view in grades.placements(session, context_id=context_id):
            maximum = f"\tmax {view.score_maximum}" if view.score_maximum is not None else ""
            click.echo(f"{view.context_id}\t{view.resource_link_id}\t{view.course_code}\t{view.mode}\t"
                       f"{view.columns} column(s)\t{view.language}{maximum}\t{view.lineitem_url or ''}")
