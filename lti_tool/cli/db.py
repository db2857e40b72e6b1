"""``db``: the database schema (Alembic migrations)."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from ..config import settings
from ..db import alembic_config, get_engine, upgrade


@click.group("db", cls=AppGroup)
def db_cli() -> None:
    """Database schema (Alembic migrations)."""


@db_cli.command("upgrade")
@click.argument("revision", default="head")
def upgrade_command(revision: str) -> None:
    """Create the schema or upgrade it to REVISION (default: the newest)."""
    upgrade(revision=revision)
    click.echo(f"database at {revision}")


@db_cli.command("downgrade")
@click.argument("revision")
def downgrade_command(revision: str) -> None:
    """Downgrade the schema to REVISION (e.g. -1 or base)."""
    from alembic import command

    command.downgrade(alembic_config(settings().database_url), revision)
    click.echo(f"database at {revision}")


@db_cli.command("current")
def current_command() -> None:
    """Print the schema revision the database is at."""
    from alembic.migration import MigrationContext

    with get_engine().connect() as connection:
        click.echo(MigrationContext.configure(connection).get_current_revision() or "empty")
