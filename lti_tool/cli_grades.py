"""Command line for the grade outbox and its workers."""

from __future__ import annotations

import signal
import time

import click
from flask import current_app
from flask.cli import AppGroup, with_appcontext

from .db import SESSIONMAKER_KEY, new_session
from .lti import get_lti
from .lti.ags import ServiceClient
from .models import OUTBOX_DEAD
from .services import grades


def service_client() -> ServiceClient:
    return ServiceClient(get_lti().keys, timeout=float(current_app.config["HTTP_TIMEOUT_SECONDS"]))


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
@click.option("--status", type=click.Choice(["pending", "sending", "sent", "dead", "superseded"]))
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
def outbox_retry(item_id: int) -> None:
    """Put one dead letter back in the queue."""
    with new_session() as session:
        count = grades.retry_dead(session, item_id)
        session.commit()
    if not count:
        raise click.ClickException(f"no dead letter {item_id}")
    click.echo(f"{item_id} queued again")


@outbox_cli.command("retry-all-dead")
def outbox_retry_all() -> None:
    """Put every dead letter back in the queue."""
    with new_session() as session:
        count = grades.retry_dead(session)
        session.commit()
    click.echo(f"{count} dead letter(s) queued again")


def init_app(app) -> None:
    app.cli.add_command(worker_command)
    app.cli.add_command(outbox_cli)
