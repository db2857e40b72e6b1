"""Rosters from the platform (Names and Role Provisioning Services): who is in each course.

Fetching is apart from saving: ``fetch_members`` follows every ``rel="next"`` page (URLs kept exactly as
given) and returns the ``rel="differences"`` link for the next sync; ``save_members`` stores only the user
id, roles and status (names only when configured) and withdraws learners who have left the course."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..domain.claims import map_role
from ..domain.errors import DomainError
from ..lti.ags import ServiceClient, ServiceError, lookup_registration
from ..models import SEAT_ACTIVE, Launch, LtiContext, RosterMember, Seat
from . import access, seats

MAX_PAGES = 1000
GONE = ("Inactive", "Deleted")


class RosterError(DomainError):
    code = "roster_invalid"


@dataclass
class Fetched:
    members: list[dict]
    differences_url: str | None
    full: bool  # a whole roster (not only the differences since the last sync)


def fetch_members(session: Session, client: ServiceClient, context: LtiContext) -> Fetched:
    registration = lookup_registration(session, context.registration_id)
    full = not context.nrps_differences_url
    url = context.nrps_differences_url or context.nrps_url
    if not url:
        raise RosterError("the platform gave no memberships URL for this course")
    nrps = client.names_roles(client.connector(session, registration), url)
    members: list[dict] = []
    differences = None
    seen = set()
    for _page in range(MAX_PAGES):
        if url in seen:
            raise RosterError(f"the roster's next link loops back to {url}")
        seen.add(url)
        body, links = nrps.members_page(url)
        if not isinstance(body, dict) or not isinstance(body.get("members"), list):
            raise RosterError("the roster response has no members array")
        members.extend(m for m in body["members"] if isinstance(m, dict) and m.get("user_id"))
        differences = links.get("differences", differences)
        url = links.get("next")
        if not url:
            break
    return Fetched(members, differences, full)


@dataclass
class RosterReport:
    members: int = 0
    gone: list[str] = field(default_factory=list)
    withdrawn: list[str] = field(default_factory=list)


def save_members(session: Session, context: LtiContext, fetched: Fetched, *, keep_names: bool = False,
                 today: date | None = None) -> RosterReport:
    report = RosterReport(members=len(fetched.members))
    existing = {m.user_id: m
                for m in session.scalars(select(RosterMember).where(RosterMember.context_pk == context.id))}
    listed = set()
    for member in fetched.members:
        user_id = str(member["user_id"])
        listed.add(user_id)
        row = existing.get(user_id) or RosterMember(context_pk=context.id, user_id=user_id)
        row.roles = [r for r in member.get("roles", []) if isinstance(r, str)]
        row.status = member.get("status") if member.get("status") in ("Active",) + GONE else "Active"
        row.name = (member.get("name") or None) if keep_names else None
        session.add(row)
        existing[user_id] = row
    if fetched.full:  # a whole roster: whoever is not in it has left the course
        for user_id, row in existing.items():
            if user_id not in listed and row.status == "Active":
                row.status = "Deleted"
        launched = set(session.scalars(select(Launch.sub).where(
            Launch.registration_id == context.registration_id, Launch.context_id == context.context_id,
            Launch.role == "learner")))
        for user_id in sorted(launched - set(existing)):  # pupils who launched from here but are not listed
            row = RosterMember(context_pk=context.id, user_id=user_id, roles=["Learner"], status="Deleted")
            session.add(row)
            existing[user_id] = row
    session.flush()
    for user_id, row in existing.items():
        if row.status in GONE and map_role(row.roles) == "learner":
            report.gone.append(user_id)
            report.withdrawn += _withdraw_gone(session, context, user_id, today)
    context.nrps_differences_url = fetched.differences_url
    context.roster_synced_at = datetime.now(timezone.utc)
    session.flush()
    return report


def _withdraw_gone(session: Session, context: LtiContext, sub: str, today: date | None) -> list[str]:
    """Seats the pupil took from this course: freed (and given to the first waiting pupil) before the
    withdrawal deadline; after it the seat stays, as it costs the municipality anyway."""
    rounds = set(session.scalars(select(Launch.round_pk).where(
        Launch.registration_id == context.registration_id, Launch.context_id == context.context_id,
        Launch.sub == sub, Launch.round_pk.is_not(None))))
    withdrawn = []
    for seat in session.scalars(select(Seat).where(Seat.registration_id == context.registration_id, Seat.sub == sub,
                                                   Seat.status == SEAT_ACTIVE, Seat.round_pk.in_(rounds))):
        try:
            seats.withdraw(session, round_pk=seat.round_pk, registration_id=seat.registration_id, sub=sub, today=today)
            withdrawn.append(f"{sub}@{seat.round_pk}")
        except DomainError:
            continue  # past the withdrawal deadline
    return withdrawn


def sync_roster(session: Session, client: ServiceClient, context: LtiContext, *,
                keep_names: bool = False) -> RosterReport:
    try:
        fetched = fetch_members(session, client, context)
    except ServiceError as error:
        raise RosterError(f"roster fetch failed: {error}") from error
    return save_members(session, context, fetched, keep_names=keep_names)


@dataclass(frozen=True)
class RosterLine:
    sub: str
    in_platform: str | None  # Active | Inactive | Deleted | None (never seen in the roster)
    has_seat: bool
    name: str | None


def roster_and_seats(session: Session, launch: Launch, *, launch_names: bool = False) -> list[RosterLine]:
    """The teacher's side-by-side view: LMS course members (learners) of the teacher's own context against
    seats in the round, for the pupils of the teacher's classroom (see .access). Each named as on the rest of the
    teacher's pages: the name on the pupil's seat in the round (``launch_names``, the ``LAUNCH_NAMES`` setting),
    else the member list's (kept only with ``ROSTER_NAMES``)."""
    viewer = access.require_classroom(launch)
    context = session.scalar(select(LtiContext).where(LtiContext.registration_id == viewer.registration_id,
                                                      LtiContext.context_id == viewer.context_id))
    members = {}
    if context is not None:
        members = {m.user_id: m
                   for m in session.scalars(select(RosterMember).where(RosterMember.context_pk == context.id))
                   if map_role(m.roles) == "learner"}
    launched = set(session.scalars(select(Launch.sub).where(access.classroom_launches(viewer))))
    seated = dict(session.execute(select(Seat.sub, Seat.name).where(Seat.round_pk == viewer.round_pk,
                                                                    Seat.registration_id == viewer.registration_id,
                                                                    Seat.status == SEAT_ACTIVE,
                                                                    Seat.sub.in_(launched | set(members)))).all())
    subs = sorted(set(members) | set(seated))
    return [RosterLine(sub, members[sub].status if sub in members else None, sub in seated,
                       (seated.get(sub) if launch_names else None) or (members[sub].name if sub in members else None))
            for sub in subs]


def shares_roster(session: Session, launch: Launch) -> bool:
    """Does the platform share a member list (NRPS) for the launch's LMS course? Without one, the side-by-side
    view would mark every pupil "not listed": the page says the platform shares none instead."""
    return session.scalar(select(LtiContext.id).where(LtiContext.registration_id == launch.registration_id,
                                                      LtiContext.context_id == launch.context_id,
                                                      LtiContext.nrps_url.is_not(None))) is not None


# -- staleness: the teacher's dashboard fetches the roster again when it is older than a maximum age --------

def roster_is_stale(context: LtiContext, max_age: timedelta, now: datetime | None = None) -> bool:
    """Never synced, or synced longer than ``max_age`` ago (``ROSTER_MAX_AGE_SECONDS``)."""
    if context.roster_synced_at is None:
        return True
    return (now or datetime.now(timezone.utc)) - context.roster_synced_at >= max_age


@dataclass(frozen=True)
class RosterRefresh:
    fresh: bool  # the roster shown is current (or the platform offers none); False: the last known one
    synced: bool  # fetched and saved just now: the caller commits


def refresh_stale_roster(session: Session, launch: Launch, client: Callable[[], ServiceClient], *,
                         max_age: timedelta, keep_names: bool = False) -> RosterRefresh:
    """Fetch the launch's course roster again when it is stale. ``client`` makes the NRPS client, only when a
    fetch is due. A failed fetch is undone (savepoint) and reported (``fresh=False``): the last known roster
    is shown. Never commits."""
    context = session.scalar(select(LtiContext).where(LtiContext.registration_id == launch.registration_id,
                                                      LtiContext.context_id == launch.context_id))
    if context is None or not context.nrps_url or not roster_is_stale(context, max_age):
        return RosterRefresh(fresh=True, synced=False)
    try:
        with session.begin_nested():
            sync_roster(session, client(), context, keep_names=keep_names)
    except DomainError:
        return RosterRefresh(fresh=False, synced=False)
    return RosterRefresh(fresh=True, synced=True)
