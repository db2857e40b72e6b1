"""A course round's plan: which weeks of the round belong to which module, and when each module's assignments are
due. The round's span (its first to its last day) is cut into weeks counted from its first day, and the weeks
are shared among the catalog's modules in their order, as evenly as whole weeks allow (earlier modules get the
shorter share); a module's assignments are due on the last day of its weeks (the last module's on the round's
last day). A round with fewer weeks than modules gives several modules the same week.

A hand-in is late when the day it was handed in, where the pupil lives, is after its module's due day.

Pure: standard library only. Both the pupil's course page and the teacher's pages use :func:`module_schedule`,
so they always agree.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TypeVar

from .calendar import local_date, national_date

K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True)
class ModuleWeeks:
    """One module's share of a round: weeks ``first_week``..``last_week`` (1 is the round's first week), from
    ``starts_on`` to ``due_on``, the day its assignments are due."""

    first_week: int
    last_week: int
    starts_on: date
    due_on: date


def round_weeks(starts_on: date, ends_on: date) -> int:
    """How many weeks (counted from the first day; the last may be short) the round spans: at least one."""
    if ends_on < starts_on:
        raise ValueError("a round cannot end before it starts")
    return ((ends_on - starts_on).days + 1 + 6) // 7


def module_schedule(starts_on: date, ends_on: date, modules: Sequence[K]) -> dict[K, ModuleWeeks]:
    """The weeks and due day of each module (``modules``: their keys, in the catalog's order) in a round from
    ``starts_on`` to ``ends_on``."""
    weeks = round_weeks(starts_on, ends_on)
    count = len(modules)
    plan: dict[K, ModuleWeeks] = {}
    for index, key in enumerate(modules):
        first = index * weeks // count + 1
        last = max(first, (index + 1) * weeks // count)
        plan[key] = ModuleWeeks(first, last, min(starts_on + timedelta(days=7 * (first - 1)), ends_on),
                                min(starts_on + timedelta(days=7 * last - 1), ends_on))
    return plan


def is_late(due_on: date | None, handed_in_at: datetime, municipality_or_country: str) -> bool:
    """Whether work handed in at ``handed_in_at`` (an aware moment) was handed in after the day it was due, as
    the day is counted where the pupil lives (their municipality, ``SE-1490``, or country; for any other, the
    earliest day among the countries', so no one is late sooner). Nothing is late without a due day."""
    if due_on is None:
        return False
    try:
        day = local_date(municipality_or_country, handed_in_at)
    except ValueError:
        if handed_in_at.tzinfo is None:
            raise
        day = national_date(handed_in_at)
    return day > due_on
