"""``keys``: the tool's signing keys (JWKS at /lti/jwks)."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from ..db import new_session
from ..lti import get_lti
from .common import BY_HELP, audit


def _audit(by: str | None, action: str, target: str, **details) -> None:
    with new_session() as session:
        audit(session, by, action, target, **details)
        session.commit()


@click.group("keys", cls=AppGroup)
def keys_cli() -> None:
    """The tool's signing keys (JWKS at /lti/jwks)."""


@keys_cli.command("list")
def keys_list() -> None:
    """The published keys: the current one and retired ones in their grace period."""
    for key in get_lti().keys.published():
        state = "current" if key.retired_at is None else f"retired {key.retired_at:%Y-%m-%d %H:%M} UTC"
        click.echo(f"{key.kid}\t{state}")


@keys_cli.command("rotate")
@click.option("--by", help=BY_HELP)
def keys_rotate(by: str | None) -> None:
    """Make a new key that signs from now on; the old one stays published for the grace period. Audited."""
    store = get_lti().keys
    key, removed = store.rotate()
    _audit(by, "keys.rotate", f"key {key.kid}", removed=list(removed))
    click.echo(f"new signing key {key.kid}; retired keys stay published for {store.grace.days} day(s)")
    for kid in removed:
        click.echo(f"removed expired key {kid}")


@keys_cli.command("purge")
@click.option("--by", help=BY_HELP)
def keys_purge(by: str | None) -> None:
    """Delete retired keys whose grace period is over (also done by every rotation). Audited when any goes."""
    removed = get_lti().keys.purge()
    if removed:
        _audit(by, "keys.purge", "keys", removed=list(removed))
    click.echo(f"removed {len(removed)} expired key(s)")
