"""``logins``: one-time login states and nonces."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from ..db import new_session
from ..lti import get_lti


@click.group("logins", cls=AppGroup)
def logins_cli() -> None:
    """One-time login states and nonces."""


@logins_cli.command("purge")
def logins_purge() -> None:
    """Delete expired login states (run from cron; Redis expires them by itself)."""
    with new_session() as session:
        count = get_lti().logins.purge_expired(session)
        session.commit()
    click.echo(f"removed {count} expired login state(s)")
