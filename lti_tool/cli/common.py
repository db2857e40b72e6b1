"""What the command groups share: a refusal as a click error, and who runs a command (for the audit log)."""

from __future__ import annotations

import getpass
from typing import NoReturn

import click


def fail(error: Exception) -> NoReturn:
    """A refused command: the error's text, exit status 1."""
    raise click.ClickException(str(error))


def actor(by: str | None) -> str:
    """Who runs the command, for the audit log: ``--by``, else the operating-system user."""
    if not by:
        try:
            by = getpass.getuser()
        except (KeyError, OSError):
            by = "unknown"
    return f"cli {by}"
