"""``roster``: course rosters from the platforms (NRPS)."""

from __future__ import annotations

import click
from flask.cli import AppGroup
from sqlalchemy import select

from ..config import settings
from ..db import new_session
from ..models import LtiContext
from .grades import service_client


@click.group("roster", cls=AppGroup)
def roster_cli() -> None:
    """Course rosters from the platforms (NRPS)."""


@roster_cli.command("sync")
@click.option(
    "--context", "context_id", help="Only this platform context id (default: every course with a roster URL)."
)
def roster_sync(context_id: str | None) -> None:
    """Fetch the memberships of each course (every page; the differences since last time when the platform
    offers them); learners who have left are withdrawn from their round."""
    from ..services.roster import RosterError, sync_roster

    client = service_client()
    failed = 0
    with new_session() as session:
        query = select(LtiContext).where(LtiContext.nrps_url.is_not(None)).order_by(LtiContext.id)
        if context_id:
            query = query.where(LtiContext.context_id == context_id)
        contexts = session.scalars(query).all()
        if context_id and not contexts:
            raise click.ClickException(f"no course with context id {context_id} and a roster URL")
        for context in contexts:
            try:
                report = sync_roster(session, client, context, keep_names=settings().roster_names)
                session.commit()
            except RosterError as error:
                session.rollback()
                failed += 1
                click.echo(f"{context.context_id}: {error}", err=True)
                continue
            click.echo(
                f"{context.context_id}: {report.members} member(s) listed, {len(report.gone)} gone, "
                f"{len(report.withdrawn)} seat(s) freed"
            )
    if failed:
        raise click.ClickException(f"{failed} roster(s) could not be synced")
