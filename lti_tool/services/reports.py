"""Reports over accepted launches: how many, per platform and per way the login state came back."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..models import Launch, Registration


@dataclass(frozen=True)
class LaunchPathCount:
    registration_id: int
    platform: str
    path: str
    launches: int


def count_launch_paths(session: Session, since: datetime | None = None) -> list[LaunchPathCount]:
    """Accepted launches per platform (registration) and the way their login state was bound to the browser:
    ``cookie``, ``platform_storage`` or ``new_window`` (``unknown`` for launches recorded before paths were)."""
    query = (select(Launch.registration_id, Registration.name, Launch.state_path, func.count())
             .join(Registration, Registration.id == Launch.registration_id)
             .group_by(Launch.registration_id, Registration.name, Launch.state_path)
             .order_by(Registration.name, Launch.registration_id, Launch.state_path))
    if since is not None:
        query = query.where(Launch.created_at >= since)
    return [LaunchPathCount(registration_id, name, path or "unknown", count)
            for registration_id, name, path, count in session.execute(query)]
