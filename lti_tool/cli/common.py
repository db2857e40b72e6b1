"""What the command groups share: a refusal as a click error, and who runs a command (for the audit log)."""

from __future__ import annotations

from typing import NoReturn

import click

from ..services import audit_log


def fail(error: Exception) -> NoReturn:
    """A refused command: the error's text, exit status 1."""
    raise click.ClickException(str(error))


def actor(by: str | None) -> str:
    """Who runs the command, for the audit log: ``--by``, else the operating-system user."""
    return audit_log.cli_actor(by)


def audit(session, by: str | None, action: str, target: str, **details) -> None:
    """Write a change made on the command line to the audit log the staff console shows (actor ``cli <who>``),
    in the command's transaction."""
    audit_log.record(session, actor=actor(by), action=action, target=target, **details)


BY_HELP = "Who makes the change, for the audit log (default: the operating-system user)."
