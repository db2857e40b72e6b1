"""The launch use case: the platform's signed id_token in, an accepted launch (or a refusal) out.

:func:`complete_launch` runs verify → admission → seat (a pupil) or staff round (a teacher, an administrator)
→ nonce → record, all or nothing, and owns the launch's transaction rules:

- an accepted launch leaves the seat, the used nonce, the launch and its context in the session;
- a refused launch leaves only the platform key cache (kept, so a flood of unknown kids does not refetch the
  platform's JWKS every time) and, for an unknown deployment, that deployment, pending approval. Everything
  else was undone with a savepoint.

Either way the caller commits (the session then holds exactly what may be written), counts the outcome
(:func:`lti_tool.metrics.count_launch` with ``outcome.result``) and renders: the first page
(``outcome.destination``) or the refusal (``outcome.refusal``). A :class:`DomainError` never leaves this
function; anything else (a database outage) does, with nothing committed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from sqlalchemy.orm import Session

from ..config import settings
from . import admission as launch_records  # admission and the launch record (the fault tests patch them)
from ..domain.claims import MESSAGE_DATA_PRIVACY, ROLE_ADMINISTRATOR, ROLE_LEARNER, ROLE_OTHER, may_place_courses
from ..domain.errors import DomainError
from ..domain.seats import SeatRefusedError
from ..lti.launch import LaunchValidator, LoginRecord, ParsedToken, VerifiedLaunch
from ..models import STATE_PATH_NEW_WINDOW, Launch, Registration
from . import seats

# Where an accepted launch goes first (the web layer maps each to its page).
DESTINATION_PRIVACY = "privacy"  # the platform asks how data is handled
DESTINATION_DEEP_LINKING = "deep_linking"  # a teacher or administrator places courses
DESTINATION_MUNICIPAL_CONSOLE = "municipal_console"  # an administrator's launch without a course
DESTINATION_HOME = "home"  # the course (a pupil's page; a teacher is sent on to the dashboard)


@dataclass(frozen=True)
class WaitlistOffer:
    """The offer a seat refusal may carry: this pupil may join this order's waiting list. Nothing is written
    until the pupil asks (the web layer signs it into a token)."""

    registration_id: int
    sub: str
    order_id: int
    locale: str | None


@dataclass(frozen=True)
class LaunchOutcome:
    """What the view needs after :func:`complete_launch`.

    ``path``: how the login state came back (``cookie``, ``platform_storage``, ``new_window``). ``platform``:
    the metrics label of the platform (its registration id, ``unknown`` before it is known). ``registration``:
    the login's registration once known (it may frame the answer, refusals too). ``login_state``: the state
    whose cookie the accepted launch clears. ``municipality_id``: the admitted home municipality (shown on a
    seat refusal).
    """

    path: str
    platform: str = "unknown"
    registration: Registration | None = None
    launch: Launch | None = None
    destination: str | None = None
    login_state: str | None = None
    locale: str | None = None
    municipality_id: str | None = None
    refusal: DomainError | None = None
    waitlist_offer: WaitlistOffer | None = None
    return_url: str | None = None  # the platform's way back (its launch_presentation.return_url), on a refusal

    @property
    def accepted(self) -> bool:
        return self.refusal is None

    @property
    def result(self) -> str:
        """``accepted`` or the refusal's code (the metrics' outcome label)."""
        return "accepted" if self.refusal is None else self.refusal.code


def complete_launch(session: Session, validator: LaunchValidator, form: Mapping[str, str],
                    cookies: Mapping[str, str], *, path: str, storage_value: str | None = None,
                    login: LoginRecord | None = None, parsed: ParsedToken | None = None,
                    on_registration: Callable[[Registration], None] | None = None) -> LaunchOutcome:
    """Verify, admit, take a seat, use the nonce, record: all or nothing (see the module's docstring).

    ``path``: how the state came back (a relaunch in a new window becomes ``new_window``); ``storage_value``:
    the state read back from the platform's storage; ``login``/``parsed``: the login record and the parsed
    id_token when the caller has them already; ``on_registration``: called as soon as the login's registration
    is known, before the token's own checks (e.g. to let that platform frame the answer)."""
    registration: Registration | None = None

    def known(found: Registration) -> None:
        nonlocal registration
        registration = found
        if on_registration is not None:
            on_registration(found)

    platform = "unknown"
    verified = admission = None
    try:
        verified = validator.verify(session, form, cookies, storage_value=storage_value, login=login,
                                    parsed=parsed, on_registration=known)
        if verified.login.relaunch:
            path = STATE_PATH_NEW_WINDOW  # the login started again in a new window
        platform = str(verified.registration_id)
        admission = launch_records.admit_launch(session, verified.registration_id, verified.claims)
        with session.begin_nested():  # whatever fails below is undone, the key cache above is not
            record = _admit(session, validator, verified, admission, path)
    except SeatRefusedError as refusal:
        assert verified is not None and admission is not None  # a seat is asked for after admission only
        offer = None
        if refusal.waitlist and refusal.order_id is not None:
            offer = WaitlistOffer(verified.registration_id, verified.claims.sub, refusal.order_id,
                                  verified.claims.locale)
        return LaunchOutcome(path, platform, registration, locale=verified.claims.locale,
                             municipality_id=admission.resolution.municipality_id, refusal=refusal,
                             waitlist_offer=offer, return_url=verified.claims.return_url)
    except launch_records.UnknownDeploymentError as error:
        launch_records.store_pending_deployment(session, error.registration_id, error.deployment_id)
        return _refused(path, platform, registration, verified, error)
    except DomainError as error:
        # only the platform key cache stays: everything else was undone with the savepoint
        return _refused(path, platform, registration, verified, error)
    return LaunchOutcome(path, platform, registration, launch=record, destination=first_page(record),
                         login_state=verified.login.state, locale=verified.claims.locale,
                         municipality_id=record.municipality_id)


def _refused(path: str, platform: str, registration: Registration | None, verified: VerifiedLaunch | None,
             error: DomainError) -> LaunchOutcome:
    return LaunchOutcome(path, platform, registration, locale=verified.claims.locale if verified else None,
                         refusal=error, return_url=verified.claims.return_url if verified else None)


def _admit(session: Session, validator: LaunchValidator, verified: VerifiedLaunch, admission, path: str) -> Launch:
    """Inside the savepoint: the role's rules, the seat or the staff round, the nonce, the launch's record."""
    claims = verified.claims
    course_code = (claims.custom.get("course") or "").strip() or None
    round_id = (claims.custom.get("round") or "").strip() or None
    round_pk = None
    if claims.deep_linking is not None and not may_place_courses(claims.role):
        raise DomainError("a pupil cannot place courses", code="deep_linking_forbidden", status=403)
    if claims.message_type == MESSAGE_DATA_PRIVACY:
        course_code = round_id = None  # the platform asks how data is handled: no course, no seat
    elif claims.role == ROLE_OTHER:
        # A parent (Mentor), an observer or a launch without a course role: no paid seat, no pupils' work.
        raise DomainError(f"roles {list(claims.roles)!r} are neither a course's pupil nor its teacher",
                          code="role_not_served", status=403)
    if course_code and claims.role == ROLE_LEARNER:
        taken = seats.reserve_seat(session, registration_id=verified.registration_id, sub=claims.sub,
                                   municipality_id=admission.resolution.municipality_id,
                                   course_code=course_code, round_id=round_id)
        seats.keep_launch_name(taken.seat, claims.name, keep=settings().launch_names)
        round_pk = taken.round.id
    elif course_code:
        staff_round = seats.round_for_staff(session, course_code, round_id,
                                            municipality_id=admission.resolution.municipality_id)
        round_pk = staff_round.id if staff_round else None
    validator.consume(session, verified)
    return launch_records.record_launch(session, verified.registration_id, claims, admission, claims.locale,
                                        course_code=course_code, round_pk=round_pk, state_path=path)


def first_page(record: Launch) -> str:
    """Where an accepted launch goes first."""
    if record.message_type == MESSAGE_DATA_PRIVACY:
        return DESTINATION_PRIVACY
    if record.deep_linking is not None:
        return DESTINATION_DEEP_LINKING
    if record.role == ROLE_ADMINISTRATOR and not record.course_code:
        return DESTINATION_MUNICIPAL_CONSOLE
    return DESTINATION_HOME

