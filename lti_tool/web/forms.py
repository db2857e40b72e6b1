"""Numbers in forms and query strings, parsed one way everywhere: ASCII digits only (``"²".isdigit()`` is
true, ``int("²")`` fails), bounded in length so a database column never overflows, and refused with a domain
error (an error page with its code) instead of a crash."""

from __future__ import annotations

import re

from ..domain.errors import DomainError

_ID = re.compile(r"[0-9]{1,15}")
MAX_WHOLE_NUMBER = 1_000_000


def parse_id(value: str | None, *, what: str = "id") -> int:
    """A row id named by a form: anything else is ``not_found`` (404), as an id that names no row is."""
    text = (value or "").strip()
    if not _ID.fullmatch(text):
        raise DomainError(f"{what} {text[:40]!r} is not an id", code="not_found", status=404)
    return int(text)


def parse_ids(values: list[str]) -> set[int]:
    """The ids of a multiple choice (checkboxes); values that are not ids are left out."""
    return {int(v.strip()) for v in values if _ID.fullmatch((v or "").strip())}


def parse_whole_number(value: str | None, *, code: str, maximum: int = MAX_WHOLE_NUMBER) -> int:
    """A count typed by a person (a seat budget): 0 up to ``maximum``, else ``code`` (400)."""
    text = (value or "").strip()
    if not re.fullmatch(r"[0-9]{1,7}", text) or int(text) > maximum:
        raise DomainError(f"{text[:40]!r} is not a whole number from 0 to {maximum}", code=code)
    return int(text)
