"""``launches``: accepted launches, counted per platform and path."""

from __future__ import annotations

from datetime import timedelta

import click
from flask.cli import AppGroup

from ..clock import now
from ..db import new_session
from ..services.reports import count_launch_paths


@click.group("launches", cls=AppGroup)
def launches_cli() -> None:
    """Accepted launches."""


@launches_cli.command("stats")
@click.option("--days", type=click.IntRange(min=1), help="Only launches of the last N days.")
def launches_stats(days: int | None) -> None:
    """Launches per platform and path: how the login state came back (cookie, platform_storage, new_window)."""
    since = now() - timedelta(days=days) if days else None
    with new_session() as session:
        rows = count_launch_paths(session, since)
    if not rows:
        click.echo("no launches")
        return
    width = max(len(f"{row.platform} ({row.registration_id})") for row in rows)
    click.echo(f"{'platform':<{width}}  {'path':<16}  launches")
    for row in rows:
        click.echo(f"{row.platform + f' ({row.registration_id})':<{width}}  {row.path:<16}  {row.launches:>8}")
    totals: dict[str, int] = {}
    for row in rows:
        totals[row.path] = totals.get(row.path, 0) + row.launches
    click.echo("total: " + ", ".join(f"{path} {count}" for path, count in sorted(totals.items())))
