"""The audit log as national staff read it: where each entry came from (the command line, the staff console, a
municipality's console, a teacher), its stored details in a readable order, and entries a page at a time. Also
the one way the command line writes an entry. Never commits: the caller does."""

from __future__ import annotations

import getpass
import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from ..domain.paging import pages_for
from ..models import AuditEntry

# Where an entry was made. The actor names it: the command line writes "cli <who>" (cli/common.py, ``--by`` or
# the operating-system user; the demo "flask demo"), a municipality's console "<municipality id> <role> <pseudonym>",
# a round's teacher "teacher …" or, from a launch, "<role> <registration>:<sub>"; the staff console the staff
# member's verified e-mail or provider sub.
ORIGIN_CLI = "cli"
ORIGIN_STAFF = "staff"
ORIGIN_MUNICIPAL = "municipal"
ORIGIN_TEACHER = "teacher"
ORIGINS = (ORIGIN_STAFF, ORIGIN_CLI, ORIGIN_MUNICIPAL, ORIGIN_TEACHER)

CLI_PREFIX = "cli "
DEMO_ACTOR = "flask demo"
_MUNICIPAL_ACTOR = re.compile(r"^(SE|NO)-\d{4} ")
_LAUNCH_ACTOR = re.compile(r"^\S+ \d+:")


def cli_actor(by: str | None) -> str:
    """The actor of a change made on the command line by ``by`` (``--by``), else by the operating-system user."""
    if not by:
        try:
            by = getpass.getuser()
        except (KeyError, OSError):
            by = "unknown"
    return f"{CLI_PREFIX}{by}"[:255]


def origin(actor: str) -> str:
    """Where the entry of this actor was made (one of :data:`ORIGINS`)."""
    if actor.startswith(CLI_PREFIX) or actor == DEMO_ACTOR:
        return ORIGIN_CLI
    if _MUNICIPAL_ACTOR.match(actor):
        return ORIGIN_MUNICIPAL
    if actor.startswith("teacher ") or _LAUNCH_ACTOR.match(actor):
        return ORIGIN_TEACHER
    return ORIGIN_STAFF


def who(actor: str) -> str:
    """The actor without the origin's marker: "cli alice" is alice on the command line."""
    return actor[len(CLI_PREFIX):] if actor.startswith(CLI_PREFIX) else actor


def record(session: Session, *, actor: str, action: str, target: str, **details: Any) -> AuditEntry:
    entry = AuditEntry(actor=actor[:255], action=action, target=target[:255], details=details)
    session.add(entry)
    return entry


# -- reading -------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Detail:
    """One stored detail, ready to show: ``kind`` is ``change`` (``value`` is (before, after)), ``fields`` (a
    list of (name, before, after) for two stored snapshots), ``list``, ``mapping`` (a list of (name, value) pairs)
    or ``value``."""

    name: str
    kind: str
    value: Any


# Details whose before and after are shown as one change, and the order names come in.
_FIRST = ("status", "before", "after", "added", "removed")


def details(entry: AuditEntry) -> list[Detail]:
    """The entry's details in a readable order: a top-level ``before``/``after`` pair (and any ``{"before": …,
    "after": …}`` value) as one change, lists as lists, other mappings as name-value pairs."""
    stored = dict(entry.details or {})
    shown: list[Detail] = []
    before, after = stored.get("before"), stored.get("after")
    if isinstance(before, dict) and isinstance(after, dict):
        del stored["before"], stored["after"]
        shown.append(Detail("change", "fields", [(name, before.get(name), after.get(name))
                                                 for name in sorted(set(before) | set(after))]))
    elif "before" in stored and "after" in stored and not isinstance(before, list) and not isinstance(after, list):
        del stored["before"], stored["after"]
        shown.append(Detail("change", "change", (before, after)))
    names = sorted(stored, key=lambda n: (_FIRST.index(n) if n in _FIRST else len(_FIRST), n))
    for name in names:
        value = stored[name]
        if isinstance(value, dict) and set(value) == {"before", "after"}:
            shown.append(Detail(name, "change", (value["before"], value["after"])))
        elif isinstance(value, dict):
            shown.append(Detail(name, "mapping", sorted(value.items())))
        elif isinstance(value, (list, tuple)):
            shown.append(Detail(name, "list", list(value)))
        else:
            shown.append(Detail(name, "value", value))
    return shown


@dataclass(frozen=True)
class AuditPage:
    entries: list[AuditEntry]
    total: int
    page: int
    pages: int


def page_of_entries(session: Session, *, page: int, page_size: int, action_prefix: str | None = None,
                    origin_only: str | None = None) -> AuditPage:
    """The newest entries first, ``page_size`` a page; only actions starting with ``action_prefix``, and only those
    made on the command line when ``origin_only`` is :data:`ORIGIN_CLI`."""
    query = select(AuditEntry)
    if action_prefix:
        query = query.where(AuditEntry.action.startswith(action_prefix))
    if origin_only == ORIGIN_CLI:
        query = query.where(or_(AuditEntry.actor.startswith(CLI_PREFIX), AuditEntry.actor == DEMO_ACTOR))
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    page, pages = pages_for(total, page, page_size)
    entries = session.scalars(query.order_by(AuditEntry.at.desc(), AuditEntry.id.desc())
                              .offset((page - 1) * page_size).limit(page_size)).all()
    return AuditPage(list(entries), total, page, pages)
