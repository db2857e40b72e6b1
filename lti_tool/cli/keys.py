"""``keys``: the tool's signing keys (JWKS at /lti/jwks)."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from ..lti import get_lti


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
def keys_rotate() -> None:
    """Make a new key that signs from now on; the old one stays published for the grace period."""
    store = get_lti().keys
    key, removed = store.rotate()
    click.echo(f"new signing key {key.kid}; retired keys stay published for {store.grace.days} day(s)")
    for kid in removed:
        click.echo(f"removed expired key {kid}")


@keys_cli.command("purge")
def keys_purge() -> None:
    """Delete retired keys whose grace period is over (also done by every rotation)."""
    removed = get_lti().keys.purge()
    click.echo(f"removed {len(removed)} expired key(s)")
