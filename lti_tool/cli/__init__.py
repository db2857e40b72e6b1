"""Command line: ``flask --app lti_tool <group> <command>``. Groups are nouns, commands verbs.

One module per group, each a click group of ``AppGroup`` (its commands run in the app's context):
``db``, ``municipalities``, ``platforms``, ``keys``, ``logins``, ``launches``, ``demo`` (a command),
``orders``, ``rounds``, ``report`` (``reports.py``), ``outbox`` and ``worker`` (``grades.py``), ``roster``,
``privacy``, ``identity-providers`` (the second door's school sign-in), ``invitations`` (its seat invitations);
``common`` has what they share. The
``catalog`` group lives beside the catalog code (``catalog_sync/cli.py``, which knows no Flask) and is given the
app's sessions and settings here.

:func:`init_app` adds every group to the app; :func:`prepare_demo` (and :func:`demo_feed`) set up the demo,
as the tests do.
"""

from __future__ import annotations

from flask import Flask, current_app
from flask.cli import AppGroup

from ..db import SESSIONMAKER_KEY
from .db import db_cli
from .demo import demo_command, demo_feed, prepare_demo
from .grades import outbox_cli, worker_command
from .identity_providers import identity_providers_cli
from .invitations import invitations_cli
from .keys import keys_cli
from .launches import launches_cli
from .logins import logins_cli
from .municipalities import municipalities_cli
from .orders import orders_cli
from .platforms import platforms_cli
from .privacy import privacy_cli
from .reports import report_cli
from .roster import roster_cli
from .rounds import rounds_cli


def _catalog_cli():
    from catalog_sync.cli import make_catalog_cli

    return make_catalog_cli(sessions=lambda: current_app.extensions[SESSIONMAKER_KEY],
                            config=lambda: current_app.config, group_cls=AppGroup)


def init_app(app: Flask) -> None:
    """Add every command group to ``app.cli``."""
    for command in (db_cli, municipalities_cli, platforms_cli, _catalog_cli(), keys_cli, logins_cli, launches_cli,
                    demo_command, orders_cli, rounds_cli, report_cli, worker_command, outbox_cli, roster_cli,
                    privacy_cli, identity_providers_cli, invitations_cli):
        app.cli.add_command(command)


__all__ = ["demo_feed", "init_app", "prepare_demo"]
