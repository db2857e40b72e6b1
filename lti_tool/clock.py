"""The tool's one clock: :func:`now`, the current time as a timezone-aware UTC ``datetime``.

Every "now" of the application (column defaults in ``models``, services, the CLI, catalog sync) comes from
here, never from ``datetime.now(timezone.utc)`` or the naive ``datetime.utcnow()``. Services that tests move
in time keep a module-level hook bound to it (``services/seats.py: _now``), which a test replaces.
"""

from __future__ import annotations

from datetime import datetime, timezone


def now() -> datetime:
    """The current time, timezone-aware, in UTC."""
    return datetime.now(timezone.utc)


__all__ = ["now"]
