"""Command line of the catalog: ``flask --app lti_tool catalog sync|history|list``.

Click only, never Flask: the application (``lti_tool/cli``) makes the group with :func:`make_catalog_cli`,
handing in how to reach its sessions and settings and its group class (Flask's ``AppGroup``, so that each
command runs in the app's context). Names, options and output are the CLI's contract.
"""

from __future__ import annotations

import sys
from typing import Any, Callable, Iterable, Iterator, Mapping

import click
from sqlalchemy.orm import Session, sessionmaker


def make_catalog_cli(sessions: Callable[[], sessionmaker[Session]], config: Callable[[], Mapping[str, Any]],
                     group_cls: type[click.Group] = click.Group) -> click.Group:
    """The ``catalog`` group: ``sessions()`` gives the app's session factory, ``config()`` its settings (the
    feed's timeout and outbound policy), both called when a command runs."""

    @click.group("catalog", cls=group_cls)
    def catalog_cli() -> None:
        """The national course catalog (synced from the feed, never edited here)."""

    @catalog_cli.command("sync")
    @click.option("--source", required=True, help="An https URL or a file path of the feed (kulturskola-catalog/1).")
    @click.option("--dry-run", is_flag=True, help="Show what would change; change nothing.")
    @click.option("--by", help="Who syncs, for the audit log (default: the operating-system user).")
    def catalog_sync_command(source: str, dry_run: bool, by: str | None) -> None:
        """Fetch, validate and apply the feed in one transaction. A feed with any error changes nothing.

        Over HTTP(S) the last successful sync's ETag / Last-Modified are sent: a 304 does nothing.
        """
        from .sync import sync_catalog_from_source

        def with_bar(courses: Iterable[Any]) -> Iterator[Any]:
            with click.progressbar(courses, label="courses", item_show_func=lambda c: c and c.get("code")) as bar:
                yield from bar

        report = sync_catalog_from_source(sessions(), source, dry_run=dry_run, config=config(),
                                          progress=with_bar if sys.stdout.isatty() else None)
        if not dry_run:
            # In the audit log the staff console shows, as its "Sync now" is.
            from lti_tool.services import audit_log

            with sessions()() as session:
                audit_log.record(session, actor=audit_log.cli_actor(by), action="catalog.sync", target=source,
                                 result=report.result, summary=report.summary())
                session.commit()
        if not report.ok:
            for line in report.errors:
                click.echo(line, err=True)
            raise click.ClickException(report.summary())
        for line in report.diff_lines() if dry_run else ():
            click.echo(line)
        click.echo(report.summary())

    @catalog_cli.command("history")
    @click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True)
    def catalog_history(limit: int) -> None:
        """The latest syncs: when, result, counts (added/updated/retired/unchanged), source, first errors."""
        from .sync import history

        with sessions()() as session:
            runs = history(session, limit)
        if not runs:
            click.echo("no syncs yet")
            return
        click.echo(f"{'when (UTC)':<19}  {'result':<12}  {'add':>4} {'upd':>4} {'ret':>4} {'same':>4}  source")
        for run in runs:
            click.echo(f"{run.started_at:%Y-%m-%d %H:%M:%S}  {run.result:<12}  {run.added:>4} {run.updated:>4} "
                       f"{run.retired:>4} {run.unchanged:>4}  {run.source}")
            for error in run.errors[:3]:
                click.echo(f"    {error}")
            if len(run.errors) > 3:
                click.echo(f"    ... and {len(run.errors) - 3} more")

    @catalog_cli.command("list")
    def catalog_list() -> None:
        """The courses with status, version and rounds (id, status, seats taken / capacity)."""
        from .sync import list_courses

        with sessions()() as session:
            courses = list_courses(session)
            for course in courses:
                rounds = ", ".join(f"{r.round_id} ({r.status}, {r.seats_taken}/{r.capacity})" for r in course.rounds)
                title = course.title.get("sv") or course.title.get("nb") or ""
                click.echo(f"{course.code}\tv{course.version}\t{course.status}\t{title}\t{rounds or '-'}")
        click.echo(f"{len(courses)} course(s)", err=True)

    return catalog_cli


__all__ = ["make_catalog_cli"]
