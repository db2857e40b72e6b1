"""Seat invitations: the second door's "the seat comes first". Never commits: the caller does.

A municipality's arts school issues single-use codes against an order's budget (``issue``), one per pupil or a
batch (with a CSV to send from its own admin system). A pupil redeems a code after a school sign-in (or from an
LTI launch): the invitation is claimed by a conditional UPDATE (issued, unexpired) and the seat taken by
``seats._take``, both inside one savepoint, so the same guarantees as a launch hold (never over the budget or the
round's capacity, one seat per pupil and round, a waiting-list refusal when the budget is used up) and a refused
seat leaves the invitation unredeemed. A pupil who already holds a seat in the round keeps it and the invitation
stays unused. Revoking or expiry frees nothing it did not take.

Only the sha256 of a code is stored (the code is shown once, when issued), with its last four characters as a
hint. Codes are 12 characters of an alphabet without look-alikes (no 0/O, 1/I/L), shown as ``XXXX-XXXX-XXXX``.

Cross-check, not a gate: the sign-in's school (``SchoolFacts``) is kept on the redeemed invitation; a school
owned by the invitation's municipality is a ``match``, any other known school a ``check`` shown to the
municipality, no school ``unknown``. An order's optional open pool lets pupils whose school the municipality owns
claim a seat without a code (``claim_open_pool``).
"""

from __future__ import annotations

import csv
import hashlib
import io
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import NamedTuple

from sqlalchemy import and_, case, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload

from flask_babel import force_locale, gettext

from .. import clock
from ..config import settings
from ..domain import calendar
from ..domain import seats as rules
from ..domain.errors import DomainError
from ..domain.resolution import parse_municipality_id
from ..domain.seats import SeatRefusedError
from ..domain.texts import pick_text
from ..identity import OWNER_MUNICIPALITY, SchoolFacts
from ..metrics import count_seat_decision
from ..models import (CHECK_MATCH, CHECK_MISMATCH, CHECK_UNKNOWN, COURSE_ACTIVE, INVITATION_ISSUED,
                      INVITATION_REDEEMED, INVITATION_REVOKED, SEAT_ACTIVE, AuditEntry, Course, CourseRound,
                      Municipality, Order, Seat, SeatInvitation)
from . import seats
from .errors import ConflictError, NotFoundError

ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I/L
CODE_LENGTH = 12
HINT_LENGTH = 4
MAX_PER_ISSUE = 1000
JOIN_PATH = "/join/"
POOL_PATH = "/join/pool/"
_DASHES = frozenset("-‐‑‒–—―−_")

# Statuses as a person sees them: an issued invitation past its expiry is expired.
STATUS_OPEN = "open"
STATUS_EXPIRED = "expired"
STATUSES = (STATUS_OPEN, INVITATION_REDEEMED, INVITATION_REVOKED, STATUS_EXPIRED)

OUTCOME_GRANTED = "granted"  # the invitation took a seat now
OUTCOME_HELD = "held"  # this invitation was already redeemed by the same pupil: its seat
OUTCOME_ALREADY_HELD = "already_held"  # the pupil had a seat in the round by another path: the invitation unused

ACTION_ISSUE = "invitations.issue"
ACTION_REVOKE = "invitation.revoke"
ACTION_OPEN_POOL = "order.open_pool"


def _now() -> datetime:
    """The tool's one clock (``clock.now``), through a hook a test replaces to move this module in time."""
    return clock.now()


# -- codes ----------------------------------------------------------------------------------------------------

def normalise_code(raw: str) -> str:
    """What a pupil typed or pasted (spaces, dashes, lower case, the whole link) as the canonical code."""
    text = unicodedata.normalize("NFKC", raw or "").strip()
    if "/" in text:  # a pasted link: its last path segment
        text = text.split("?", 1)[0].split("#", 1)[0].rstrip("/").rsplit("/", 1)[-1]
    return "".join(ch for ch in text if not ch.isspace() and ch not in _DASHES).upper()


def display_code(code: str) -> str:
    """``XXXX-XXXX-XXXX``: the code in groups of four, as printed and in links."""
    code = normalise_code(code)
    return "-".join(code[i:i + 4] for i in range(0, len(code), 4))


def _well_formed(code: str) -> bool:
    return len(code) == CODE_LENGTH and all(ch in ALPHABET for ch in code)


def _hash(code: str) -> str:
    return hashlib.sha256(code.encode("ascii", "replace")).hexdigest()


def _new_code() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))


def join_url(code: str) -> str:
    """The link a pupil opens: ``BASE_URL/join/XXXX-XXXX-XXXX``."""
    return settings().base_url.rstrip("/") + JOIN_PATH + display_code(code)


def pool_url(order_id: int) -> str:
    """The link of an order's open pool (pupils of the municipality's own schools, no code)."""
    return f"{settings().base_url.rstrip('/')}{POOL_PATH}{order_id}"


# -- dates ------------------------------------------------------------------------------------------------------

def end_of_local_day(municipality_id: str, day: date) -> datetime:
    """The instant a day of the municipality ends (the next day's midnight there): an invitation valid
    "until 2027-03-01" is valid through that whole day where the pupil lives."""
    return datetime.combine(day + timedelta(days=1), time(0), tzinfo=calendar.time_zone(municipality_id))


def last_day(invitation: SeatInvitation) -> date:
    """The last day (the municipality's) on which the invitation can be redeemed."""
    return calendar.local_date(invitation.municipality_id, invitation.expires_at - timedelta(microseconds=1))


def status_of(invitation: SeatInvitation, now: datetime | None = None) -> str:
    """``open``, ``redeemed``, ``revoked`` or ``expired`` (issued, past its expiry)."""
    if invitation.status == INVITATION_ISSUED:
        return STATUS_EXPIRED if invitation.expires_at <= (now or _now()) else STATUS_OPEN
    return invitation.status


# -- issuing ------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class IssuedInvitation:
    code: str  # the canonical code: shown once, never stored
    invitation: SeatInvitation


def _order_for(session: Session, municipality_id: str, round_: CourseRound, *, lock: bool) -> Order:
    query = (select(Order).where(Order.municipality_id == municipality_id, Order.round_pk == round_.id)
             .execution_options(populate_existing=True))
    order = session.scalar(query.with_for_update() if lock else query)
    if order is None:
        raise NotFoundError(f"{municipality_id} has no order for {round_.course_code} {round_.round_id}",
                            code=rules.NOT_OFFERED)
    return order


def open_issued(session: Session, order_id: int, now: datetime | None = None) -> int:
    """Invitations of the order still waiting to be redeemed (issued, not expired)."""
    return int(session.scalar(select(func.count()).select_from(SeatInvitation).where(
        SeatInvitation.order_id == order_id, SeatInvitation.status == INVITATION_ISSUED,
        SeatInvitation.expires_at > (now or _now()))) or 0)


def _expiry(municipality_id: str, round_: CourseRound, expires_at: datetime | None, now: datetime) -> datetime:
    round_end = end_of_local_day(municipality_id, round_.ends_on)
    if expires_at is None:
        expires_at = now + timedelta(days=settings().invitation_days)
    if expires_at.tzinfo is None:
        raise DomainError("the expiry must be an aware datetime", code="invalid")
    if expires_at <= now:
        raise DomainError(f"the expiry {expires_at.isoformat()} has passed", code="invalid")
    return min(expires_at, round_end)


def _clean(value: str | None, limit: int) -> str | None:
    value = " ".join((value or "").split())[:limit]
    return value or None


def issue(session: Session, *, municipality_id: str, course_code: str, round_id: str, count: int,
          expires_at: datetime | None, created_by: str, label: str | None = None,
          batch: str | None = None) -> list[IssuedInvitation]:
    """``count`` single-use invitations against the municipality's order for the round, valid until
    ``expires_at`` (default ``INVITATION_DAYS`` from now; never after the round's last day). Refused
    (``invitations_over_budget``) when the order has fewer free seats than that: its budget less the seats taken
    and the invitations still open. ``batch``: a name for this issue (a form's one-time value: issuing the same
    batch twice is a conflict). Audited as ``created_by``."""
    municipality_id = parse_municipality_id(municipality_id)
    if not 1 <= count <= MAX_PER_ISSUE:
        raise DomainError(f"issue 1 to {MAX_PER_ISSUE} invitations, not {count}", code="invalid")
    round_ = seats.get_round(session, course_code, round_id)
    order = _order_for(session, municipality_id, round_, lock=True)  # issues of the same order one at a time
    course = session.get(Course, round_.course_code)
    if course is None or course.status != COURSE_ACTIVE:
        raise DomainError(f"course {course_code} is retired", code=rules.REFUSAL_COURSE_RETIRED, status=409)
    if not rules.enrolment_open(seats._view(round_), seats.municipal_today(municipality_id)):
        raise DomainError(f"enrolment for {course_code} {round_id} is closed", code=rules.ENROLMENT_CLOSED,
                          status=409)
    now = _now()
    expiry = _expiry(municipality_id, round_, expires_at, now)
    batch = _clean(batch, 40) or secrets.token_hex(8)
    if session.scalar(select(SeatInvitation.id).where(SeatInvitation.order_id == order.id,
                                                      SeatInvitation.batch == batch).limit(1)) is not None:
        raise ConflictError(f"batch {batch} was issued already")
    free = order.seats_budget - order.seats_taken - open_issued(session, order.id, now)
    if count > free:
        raise DomainError(f"{count} invitations asked, {max(free, 0)} seats free in the order",
                          code="invitations_over_budget", status=409)
    label = _clean(label, 200)
    issued: list[IssuedInvitation] = []
    codes: set[str] = set()
    while len(issued) < count:
        code = _new_code()
        if code in codes:
            continue
        codes.add(code)
        invitation = SeatInvitation(code_hash=_hash(code), code_hint=code[-HINT_LENGTH:], order_id=order.id,
                                    round_pk=round_.id, municipality_id=municipality_id, batch=batch, label=label,
                                    status=INVITATION_ISSUED, expires_at=expiry, created_by=created_by[:200],
                                    created_at=now)
        session.add(invitation)
        issued.append(IssuedInvitation(code, invitation))
    session.flush()
    _audit(session, created_by, ACTION_ISSUE, f"{municipality_id} {round_.course_code} {round_.round_id}",
           order=order.id, count=count, batch=batch, label=label, expires_at=expiry.isoformat(),
           invitations=[item.invitation.id for item in issued])
    return issued


def _audit(session: Session, actor: str, action: str, target: str, **details: object) -> None:
    session.add(AuditEntry(actor=actor[:255], action=action, target=target[:255], details=details))


# -- looking up and redeeming -----------------------------------------------------------------------------------

def get_invitation(session: Session, code: str) -> SeatInvitation:
    """The invitation of a code as typed (any case, spaces, dashes); ``code_unknown`` (404) otherwise."""
    code = normalise_code(code)
    invitation = None
    if _well_formed(code):
        invitation = session.scalar(select(SeatInvitation).where(SeatInvitation.code_hash == _hash(code)))
    if invitation is None:
        raise DomainError("no invitation has this code", code="code_unknown", status=404)
    return invitation


def _same_identity(invitation: SeatInvitation, registration_id: int, sub: str) -> bool:
    return invitation.registration_id == registration_id and invitation.sub == sub


def check_redeemable(invitation: SeatInvitation, *, registration_id: int, sub: str) -> None:
    """Passes for an issued, unexpired invitation, and for one this same identity (registration and ``sub``)
    redeemed. Otherwise: ``code_revoked`` (410), ``code_other_account`` (409, another identity redeemed it),
    ``code_used`` (409, redeemed, asked without an identity: ``registration_id`` below 1 or an empty ``sub``),
    ``code_expired`` (410)."""
    if invitation.status == INVITATION_REVOKED:
        raise DomainError("the invitation was revoked", code="code_revoked", status=410)
    if invitation.status == INVITATION_REDEEMED:
        if _same_identity(invitation, registration_id, sub):
            return
        if registration_id is None or registration_id < 1 or not sub:
            raise DomainError("the invitation was redeemed", code="code_used", status=409)
        raise DomainError("the invitation was redeemed by another account", code="code_other_account", status=409)
    if invitation.expires_at <= _now():
        raise DomainError("the invitation has expired", code="code_expired", status=410)


@dataclass(frozen=True)
class Redemption:
    outcome: str  # granted | held | already_held
    seat: Seat
    invitation: SeatInvitation
    round: CourseRound


def cross_check(school: SchoolFacts | None, municipality_id: str) -> str:
    """``match``: the school is owned by the invitation's municipality; ``check``: another known school (a county
    or independent school, another municipality's); ``unknown``: the sign-in named no school."""
    if school is None or not any((school.name, school.code, school.owner_name, school.owner_org_number,
                                  school.owner_kind, school.municipality_id)):
        return CHECK_UNKNOWN
    if school.owner_kind == OWNER_MUNICIPALITY and school.municipality_id == municipality_id:
        return CHECK_MATCH
    return CHECK_MISMATCH


def _school_values(school: SchoolFacts | None, municipality_id: str) -> dict[str, object]:
    def cut(value: str | None, limit: int) -> str | None:
        return value[:limit] if value else None

    owner = (school.owner_name or school.owner_org_number) if school else None
    return {"school_name": cut(school.name if school else None, 300),
            "school_code": cut(school.code if school else None, 40), "school_owner": cut(owner, 300),
            "school_municipality_id": cut(school.municipality_id if school else None, 8),
            "cross_check": cross_check(school, municipality_id)}


class _Lost(Exception):
    """The conditional claim found the invitation no longer issued and unexpired."""


def redeem(session: Session, code: str, *, registration_id: int, sub: str, school: SchoolFacts | None,
           pupil_name: str | None = None) -> Redemption:
    """Take the invitation's seat for this pupil (registration and ``sub``), in one savepoint: the invitation
    claimed (issued, unexpired), then the seat from the order's budget and the round's capacity. A refusal
    (:class:`SeatRefusedError`) leaves the invitation issued and nothing changed. ``school``: the sign-in's school,
    kept as the cross-check. ``pupil_name`` is kept only with ``ROSTER_NAMES``. Each decision is counted in the
    metrics as a launch's is."""
    invitation = get_invitation(session, code)
    check_redeemable(invitation, registration_id=registration_id, sub=sub)
    round_ = session.get(CourseRound, invitation.round_pk)
    if invitation.status == INVITATION_REDEEMED:
        return _held(session, invitation, round_, registration_id, sub)
    already = seats._active_seat(session, round_.id, registration_id, sub)
    if already is not None:
        count_seat_decision("already_held")
        return Redemption(OUTCOME_ALREADY_HELD, already, invitation, round_)
    try:
        _check_round(session, invitation, round_)
        seat = _claim_and_take(session, invitation, round_, registration_id=registration_id, sub=sub, school=school,
                               pupil_name=pupil_name)
    except SeatRefusedError as refusal:
        count_seat_decision(refusal.code)
        raise
    except _Lost:
        # Another redemption (or a revocation) got there first: say why, or this pupil's own seat.
        session.refresh(invitation)
        check_redeemable(invitation, registration_id=registration_id, sub=sub)
        if invitation.status == INVITATION_REDEEMED:
            return _held(session, invitation, round_, registration_id, sub)
        raise DomainError("the invitation could not be claimed", code="code_used", status=409) from None
    except (IntegrityError, seats._AlreadyHeld):
        # The same pupil took a seat in the round at the same moment by another path (a launch): the
        # savepoint undid the claim, the invitation stays unused.
        session.refresh(invitation)
        held = seats._active_seat(session, round_.id, registration_id, sub)
        if held is None:
            raise
        count_seat_decision("already_held")
        return Redemption(OUTCOME_ALREADY_HELD, held, invitation, round_)
    seats._leave_waitlist(session, round_.id, registration_id, sub)
    count_seat_decision("granted")
    return Redemption(OUTCOME_GRANTED, seat, invitation, round_)


def _held(session: Session, invitation: SeatInvitation, round_: CourseRound, registration_id: int,
          sub: str) -> Redemption:
    """This pupil redeemed the invitation before: its seat, while it is active (a seat given up since is gone:
    the code gave one place)."""
    seat = seats._active_seat(session, round_.id, registration_id, sub)
    if seat is None:
        raise DomainError("the invitation's seat was given up", code="code_used", status=409)
    count_seat_decision("already_held")
    return Redemption(OUTCOME_HELD, seat, invitation, round_)


def _check_round(session: Session, invitation: SeatInvitation, round_: CourseRound) -> None:
    """The refusals a launch makes before counting: a retired course, enrolment closed (the municipality's day)."""
    course = session.get(Course, round_.course_code)
    if course is None or course.status != COURSE_ACTIVE:
        raise SeatRefusedError(f"course {round_.course_code} retired", code=rules.REFUSAL_COURSE_RETIRED,
                               round_pk=round_.id, order_id=invitation.order_id)
    today = seats.municipal_today(invitation.municipality_id)
    if not rules.enrolment_open(seats._view(round_), today):
        raise SeatRefusedError(f"enrolment for {round_.round_id} closed", code=rules.ENROLMENT_CLOSED,
                               round_pk=round_.id, order_id=invitation.order_id)


def _claim_and_take(session: Session, invitation: SeatInvitation, round_: CourseRound, *, registration_id: int,
                    sub: str, school: SchoolFacts | None, pupil_name: str | None) -> Seat:
    now = _now()
    values = {"status": INVITATION_REDEEMED, "registration_id": registration_id, "sub": sub, "redeemed_at": now,
              **_school_values(school, invitation.municipality_id)}
    if pupil_name and settings().roster_names:
        values["pupil_name"] = " ".join(pupil_name.split())[:255] or None
    with session.begin_nested():  # the claim, both counters and the seat: all or nothing
        claimed = session.execute(update(SeatInvitation).where(
            SeatInvitation.id == invitation.id, SeatInvitation.code_hash == invitation.code_hash,
            SeatInvitation.status == INVITATION_ISSUED, SeatInvitation.expires_at > now).values(**values)
            .execution_options(synchronize_session=False))
        if claimed.rowcount != 1:
            raise _Lost()
        seat = seats._take(session, invitation.order_id, round_.id, invitation.municipality_id, registration_id, sub)
        session.execute(update(SeatInvitation).where(SeatInvitation.id == invitation.id).values(seat_id=seat.id)
                        .execution_options(synchronize_session=False))
    session.refresh(invitation)
    return seat


# -- the open pool ----------------------------------------------------------------------------------------------

def claim_open_pool(session: Session, *, order_id: int, registration_id: int, sub: str,
                    school: SchoolFacts | None) -> seats.SeatResult:
    """A seat of an order's open pool without a code: only while the pool is on and for a pupil whose school is
    owned by the order's municipality; otherwise ``open_pool_closed`` (403). Then exactly a launch's seat
    (``seats.reserve_seat``: held, or taken within the budget and the capacity, or refused)."""
    order = session.get(Order, order_id)
    if order is None:
        raise NotFoundError(f"no order {order_id}")
    if not (order.open_pool and school is not None and school.owner_kind == OWNER_MUNICIPALITY
            and school.municipality_id == order.municipality_id):
        raise DomainError(f"order {order_id} has no open pool for this school", code="open_pool_closed",
                          status=403)
    round_ = session.get(CourseRound, order.round_pk)
    return seats.reserve_seat(session, registration_id=registration_id, sub=sub, municipality_id=order.municipality_id,
                              course_code=round_.course_code, round_id=round_.round_id)


def set_open_pool(session: Session, order_id: int, enabled: bool, *, actor: str,
                  municipality_id: str | None = None) -> Order:
    """Switch an order's open pool on or off (audited). ``municipality_id``: the order must be this one's."""
    order = session.get(Order, order_id)
    if order is None or (municipality_id is not None and order.municipality_id != municipality_id):
        raise NotFoundError(f"no order {order_id}")
    if order.open_pool != enabled:
        order.open_pool = enabled
        round_ = session.get(CourseRound, order.round_pk)
        _audit(session, actor, ACTION_OPEN_POOL, f"{order.municipality_id} {round_.course_code} {round_.round_id}",
               order=order.id, open_pool=enabled)
        session.flush()
    return order


# -- revoking, listing, counting ------------------------------------------------------------------------------------

def revoke(session: Session, invitation_id: int, *, actor: str, municipality_id: str | None = None) -> SeatInvitation:
    """Revoke an unredeemed invitation (audited); revoking one twice changes nothing. A redeemed one is a
    :class:`ConflictError`: its seat is the pupil's (withdraw the seat instead). Frees nothing: an unredeemed
    invitation took nothing. ``municipality_id``: the invitation must be this one's."""
    invitation = session.get(SeatInvitation, invitation_id)
    if invitation is None or (municipality_id is not None and invitation.municipality_id != municipality_id):
        raise NotFoundError(f"no invitation {invitation_id}")
    now = _now()
    revoked = session.execute(update(SeatInvitation).where(SeatInvitation.id == invitation_id,
                                                           SeatInvitation.status == INVITATION_ISSUED)
                              .values(status=INVITATION_REVOKED, revoked_at=now)
                              .execution_options(synchronize_session=False))
    session.refresh(invitation)
    if revoked.rowcount != 1:
        if invitation.status == INVITATION_REDEEMED:
            raise ConflictError(f"invitation {invitation_id} was redeemed: withdraw the pupil's seat instead")
        return invitation
    _audit(session, actor, ACTION_REVOKE, f"invitation {invitation.id}", invitation=invitation.id,
           hint=invitation.code_hint, order=invitation.order_id, municipality=invitation.municipality_id,
           label=invitation.label)
    return invitation


def list_invitations(session: Session, *, municipality_id: str | None = None, course_code: str | None = None,
                     round_id: str | None = None, status: str | None = None,
                     order_id: int | None = None) -> list[SeatInvitation]:
    """Invitations, newest first, with their round, course and municipality loaded. ``status``: ``open`` (or
    ``issued``: issued and unexpired), ``expired``, ``redeemed`` or ``revoked``."""
    query = (select(SeatInvitation).join(CourseRound, SeatInvitation.round_pk == CourseRound.id)
             .options(joinedload(SeatInvitation.round).joinedload(CourseRound.course),
                      joinedload(SeatInvitation.municipality))
             .order_by(SeatInvitation.created_at.desc(), SeatInvitation.id.desc()))
    if municipality_id:
        query = query.where(SeatInvitation.municipality_id == parse_municipality_id(municipality_id))
    if course_code:
        query = query.where(CourseRound.course_code == course_code)
    if round_id:
        query = query.where(CourseRound.round_id == round_id)
    if order_id is not None:
        query = query.where(SeatInvitation.order_id == order_id)
    if status:
        query = query.where(_status_filter(status, _now()))
    return list(session.scalars(query))


def _status_filter(status: str, now: datetime):
    if status in (STATUS_OPEN, INVITATION_ISSUED):
        return and_(SeatInvitation.status == INVITATION_ISSUED, SeatInvitation.expires_at > now)
    if status == STATUS_EXPIRED:
        return and_(SeatInvitation.status == INVITATION_ISSUED, SeatInvitation.expires_at <= now)
    if status in (INVITATION_REDEEMED, INVITATION_REVOKED):
        return SeatInvitation.status == status
    raise DomainError(f"status must be one of {', '.join(STATUSES)}, not {status!r}", code="invalid")


class Counts(NamedTuple):
    open: int
    redeemed: int
    revoked: int
    expired: int


def order_counts(session: Session, municipality_id: str) -> dict[int, Counts]:
    """Per order of the municipality (that has invitations): open, redeemed, revoked and expired invitations."""
    now = _now()
    shown = case((and_(SeatInvitation.status == INVITATION_ISSUED, SeatInvitation.expires_at <= now), STATUS_EXPIRED),
                 (SeatInvitation.status == INVITATION_ISSUED, STATUS_OPEN), else_=SeatInvitation.status)
    rows = session.execute(select(SeatInvitation.order_id, shown, func.count())
                           .where(SeatInvitation.municipality_id == municipality_id)
                           .group_by(SeatInvitation.order_id, shown)).all()
    found: dict[int, dict[str, int]] = {}
    for order_id, status, number in rows:
        found.setdefault(order_id, {})[status] = int(number)
    return {order_id: Counts(*(by.get(status, 0) for status in STATUSES)) for order_id, by in found.items()}


# -- the CSV to send from the arts school's own admin system --------------------------------------------------------

_SEMICOLON_LOCALES = ("sv", "nb", "nn")


def invitations_csv(issued: list[IssuedInvitation], locale: str) -> str:
    """The codes just issued as CSV (UTF-8 with BOM, CRLF): code, link, course, round, municipality and the last
    day it is valid (ISO date). Column names in ``locale``; ``;`` between columns for sv/nb/nn (their spreadsheets'
    decimal comma), ``,`` for en."""
    language = (locale or "en").split("_")[0].split("-")[0].lower()
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";" if language in _SEMICOLON_LOCALES else ",", lineterminator="\r\n")
    with force_locale(language):
        writer.writerow([gettext("Code"), gettext("Link"), gettext("Course"), gettext("Round"),
                         gettext("Municipality"), gettext("Valid until")])
    for item in issued:
        invitation = item.invitation
        round_ = invitation.round
        writer.writerow([display_code(item.code), join_url(item.code), str(pick_text(round_.course.title, language)),
                         round_.round_id, _municipality_name(invitation), last_day(invitation).isoformat()])
    return "\ufeff" + buffer.getvalue()


def _municipality_name(invitation: SeatInvitation) -> str:
    municipality: Municipality | None = invitation.municipality
    return municipality.name if municipality is not None else invitation.municipality_id


def issued_again(session: Session, codes: list[str], *, municipality_id: str) -> list[IssuedInvitation]:
    """The invitations of codes shown a moment ago (the console's CSV download posts them back): each must be
    the municipality's, else ``code_unknown``."""
    found = []
    for code in codes:
        invitation = get_invitation(session, code)
        if invitation.municipality_id != municipality_id:
            raise DomainError("no invitation of this municipality has this code", code="code_unknown", status=404)
        found.append(IssuedInvitation(normalise_code(code), invitation))
    return found


def active_seat_of(session: Session, invitation: SeatInvitation) -> Seat | None:
    """The seat a redeemed invitation took, while it is active."""
    if invitation.seat_id is None:
        return None
    seat = session.get(Seat, invitation.seat_id)
    return seat if seat is not None and seat.status == SEAT_ACTIVE else None
