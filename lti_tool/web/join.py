"""The second door: a pupil whose school platform is not an LTI platform comes with a seat invitation from their
arts school (``/join/<code>``) and signs in with their school identity (Feide, Skolfederation); a pupil of the
municipality's own schools may claim a seat of an open pool (``/join/pool/<order>``). Later visits start at
"My courses" (``/my``). Teachers and municipal contacts sign in the same way and reach their rounds and their
console from there.

The sign-in is kept in the tool's session cookie (first-party, ``SameSite=Lax``: these pages are opened in a
tab of their own, never in a frame) for ``SCHOOL_SESSION_HOURS``. Each course opened from here is recorded as
a visit (``services.school_door``) and its launch token carries the pupil through the course's pages, exactly
as after an LTI launch.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from urllib.parse import urlsplit

from flask import Blueprint, redirect, render_template, request, session as web_session, url_for
from flask_babel import get_locale

from ..config import settings
from ..db import get_session
from ..domain.errors import DomainError
from ..domain.seats import SeatRefusedError
from ..domain.texts import pick_text
from ..identity import SchoolFacts, SchoolIdentity
from ..models import (INVITATION_REDEEMED, PROTOCOL_OIDC, CourseRound, IdentityProvider, Municipality, Order,
                      SeatInvitation)
from ..services import identity as providers
from ..services import invitations, school_door
from .errors import render_error
from .launch_token import issue_launch_token, issue_waitlist_token
from .staff import csrf_token

bp = Blueprint("school", __name__)
PERSON_KEY = "school_person"
NEXT_KEY = "school_next"


# -- the signed-in person -----------------------------------------------------------------------------------

def signed_in_person() -> dict | None:
    """The school sign-in of this browser, while it lasts: provider, registration, subject, name, staff, school."""
    person = web_session.get(PERSON_KEY)
    if not isinstance(person, dict) or not isinstance(person.get("s"), str):
        return None
    if person.get("exp", 0) < time.time():
        web_session.pop(PERSON_KEY, None)
        return None
    return person


def _remember(identity: SchoolIdentity) -> None:
    """Sign the person in to this browser (a new session: nothing of an earlier sign-in is kept)."""
    web_session.clear()
    web_session[PERSON_KEY] = {
        "p": identity.provider_id, "r": identity.registration_id, "s": identity.subject, "n": identity.name,
        "staff": identity.is_staff, "school": asdict(identity.school) if identity.school else None,
        "exp": time.time() + settings().school_session_hours * 3600}


def _school(person: dict) -> SchoolFacts | None:
    facts = person.get("school")
    return SchoolFacts(**facts) if isinstance(facts, dict) else None


def _provider_of(person: dict) -> IdentityProvider:
    return providers.get_provider(get_session(), int(person["p"]))


def _require_person() -> dict:
    person = signed_in_person()
    if person is None:
        raise DomainError("no school sign-in", code="signin_required", status=401)
    return person


def _safe_next(target: str | None) -> str:
    """Only this tool's own second-door pages are followed after a sign-in (never another site)."""
    parts = urlsplit(target or "")
    if parts.scheme or parts.netloc or not parts.path.startswith(("/join/", "/my")):
        return url_for("school.my_courses")
    return parts.path + (f"?{parts.query}" if parts.query else "")


def _locale() -> str:
    return str(get_locale())


def _text(value) -> str:
    return pick_text(value, _locale())


def _open_launch(launch, endpoint: str = "pupil.home"):
    return redirect(url_for(endpoint, lt=issue_launch_token(launch.id)), code=303)


# -- invitations and the open pool ---------------------------------------------------------------------------

@bp.route("/join")
def enter_code():
    """Type the code from the arts school (or follow its link)."""
    code = request.args.get("code", "").strip()
    if code:
        return redirect(url_for("school.join", code=invitations.display_code(invitations.normalise_code(code))))
    return render_template("school/enter_code.html")


def _invitation_context(invitation: SeatInvitation) -> dict:
    round_ = invitation.round
    return {"invitation": invitation, "round": round_, "course": round_.course,
            "municipality": invitation.municipality, "text": _text}


@bp.route("/join/<code>")
def join(code: str):
    """The invitation: the course, the municipality's name, and the ways to sign in; once signed in, the
    confirmation with Accept."""
    session = get_session()
    invitation = invitations.get_invitation(session, code)
    person = signed_in_person()
    if person is not None:
        invitations.check_redeemable(invitation, registration_id=int(person["r"]), sub=person["s"])
        return render_template("school/confirm.html", code=invitations.display_code(invitations.normalise_code(code)),
                               person=person, csrf=csrf_token(), **_invitation_context(invitation))
    if invitation.status != INVITATION_REDEEMED:  # a used code: its pupil signs in to open the course again
        invitations.check_redeemable(invitation, registration_id=-1, sub="")
    country = invitation.municipality.country
    return render_template("school/join.html", providers=providers.list_providers(session, country=country,
                                                                                   active_only=True),
                           next_path=request.path, used=invitation.status == INVITATION_REDEEMED,
                           **_invitation_context(invitation))


@bp.route("/join/<code>/accept", methods=["POST"])
def accept(code: str):
    """Take the place: the seat is the invitation's municipality's, whatever school the sign-in names."""
    session = get_session()
    person = _require_person()
    provider = _provider_of(person)
    try:
        redemption = invitations.redeem(session, code, registration_id=provider.registration_id, sub=person["s"],
                                        school=_school(person), pupil_name=person.get("n"))
    except SeatRefusedError as refusal:
        session.rollback()
        return _seat_refusal(refusal, provider, person)
    launch = school_door.visit_for_seat(session, provider, sub=person["s"], seat=redemption.seat,
                                        method=school_door.BY_INVITATION, locale=_locale())
    session.commit()
    return _open_launch(launch)


def _seat_refusal(refusal: SeatRefusedError, provider: IdentityProvider, person: dict):
    order_id = getattr(refusal, "order_id", None)
    token = (issue_waitlist_token(provider.registration_id, person["s"], order_id, _locale())
             if getattr(refusal, "waitlist", False) and order_id else None)
    return render_error(refusal.code, refusal.status, refusal.detail, waitlist_token=token)


def _pool_order(order_id: int) -> Order:
    order = get_session().get(Order, order_id)
    if order is None or not order.open_pool:
        raise DomainError(f"order {order_id} has no open pool", code="open_pool_closed", status=403)
    return order


@bp.route("/join/pool/<int:order_id>")
def pool(order_id: int):
    """An open pool: pupils of the municipality's own schools claim a place after signing in, without a code."""
    session = get_session()
    order = _pool_order(order_id)
    round_ = session.get(CourseRound, order.round_pk)
    municipality = session.get(Municipality, order.municipality_id)
    person = signed_in_person()
    context = {"order": order, "round": round_, "course": round_.course, "municipality": municipality,
               "text": _text}
    if person is not None:
        return render_template("school/confirm.html", pool=True, person=person, csrf=csrf_token(), **context)
    return render_template("school/join.html", pool=True, next_path=request.path,
                           providers=providers.list_providers(session, country=municipality.country,
                                                              active_only=True), **context)


@bp.route("/join/pool/<int:order_id>/claim", methods=["POST"])
def claim(order_id: int):
    session = get_session()
    person = _require_person()
    provider = _provider_of(person)
    _pool_order(order_id)
    try:
        result = invitations.claim_open_pool(session, order_id=order_id, registration_id=provider.registration_id,
                                             sub=person["s"], school=_school(person))
    except SeatRefusedError as refusal:
        session.rollback()
        return _seat_refusal(refusal, provider, person)
    launch = school_door.visit_for_seat(session, provider, sub=person["s"], seat=result.seat,
                                        method=school_door.BY_OPEN_POOL, locale=_locale())
    session.commit()
    return _open_launch(launch)


# -- signing in ------------------------------------------------------------------------------------------------

@bp.route("/sign-in/school")
def choose_provider():
    """For a later visit: pick the school sign-in, then "My courses"."""
    return render_template("school/sign_in.html", next_path=url_for("school.my_courses"),
                           providers=providers.list_providers(get_session(), active_only=True))


@bp.route("/sign-in/<int:provider_id>")
def sign_in(provider_id: int):
    """Off to the school identity provider. A SAML federation with many school owners first asks which."""
    session = get_session()
    provider = providers.get_provider(session, provider_id)
    next_path = _safe_next(request.args.get("next"))
    if provider.protocol == PROTOCOL_OIDC:
        from ..identity import oidc

        web_session[NEXT_KEY] = next_path
        return oidc.start(provider, url_for("school.callback", provider_id=provider.id, _external=True))
    from ..identity import saml

    choices = saml.list_idps(provider)
    idp = request.args.get("idp") or (choices[0][0] if len(choices) == 1 else None)
    if idp is None or idp not in {entity_id for entity_id, _ in choices}:
        return render_template("school/pick_school.html", provider=provider, choices=choices, next_path=next_path)
    response = saml.start(session, provider, idp_entity_id=idp, relay_state=next_path)
    session.commit()
    return response


@bp.route("/sign-in/<int:provider_id>/callback")
def callback(provider_id: int):
    """The OpenID Connect provider's answer (authorization code with PKCE)."""
    from ..identity import oidc

    session = get_session()
    provider = providers.get_provider(session, provider_id)
    next_path = _safe_next(web_session.pop(NEXT_KEY, None))
    identity = oidc.finish(session, provider)
    session.commit()
    _remember(identity)
    return redirect(next_path, code=303)


@bp.route("/sign-in/<int:provider_id>/acs", methods=["POST"])
def acs(provider_id: int):
    """The SAML assertion consumer service: the signed response, posted by the browser from the IdP."""
    from ..identity import saml

    session = get_session()
    provider = providers.get_provider(session, provider_id)
    identity, relay_state = saml.finish(session, provider, request.form)
    session.commit()
    _remember(identity)
    return redirect(_safe_next(relay_state), code=303)


@bp.route("/sign-in/<int:provider_id>/metadata")
def metadata(provider_id: int):
    """The tool's SAML service provider metadata, for the federation's registry."""
    from ..identity import saml

    provider = providers.get_provider(get_session(), provider_id)
    if provider.protocol == PROTOCOL_OIDC:
        raise DomainError("an OpenID Connect provider has no SAML metadata", code="not_found", status=404)
    return saml.sp_metadata(provider), 200, {"Content-Type": "application/samlmetadata+xml"}


@bp.route("/sign-out", methods=["POST"])
def sign_out():
    web_session.pop(PERSON_KEY, None)
    return redirect(url_for("school.choose_provider"), code=303)


# -- later visits ----------------------------------------------------------------------------------------------

@bp.route("/my")
def my_courses():
    """My courses: the places the signed-in person holds; for a teacher, their rounds; for a municipal contact,
    their console."""
    person = signed_in_person()
    if person is None:
        return redirect(url_for("school.choose_provider"))
    session = get_session()
    registration_id = int(person["r"])
    return render_template("school/my.html", person=person, csrf=csrf_token(), text=_text,
                           seats=school_door.my_seats(session, registration_id, person["s"]),
                           rounds=school_door.taught_rounds(session, registration_id, person["s"]),
                           consoles=school_door.contact_municipalities(session, registration_id, person["s"]))


@bp.route("/my/seats/<int:seat_id>")
def open_course(seat_id: int):
    session = get_session()
    person = _require_person()
    launch = school_door.open_seat(session, _provider_of(person), sub=person["s"], seat_id=seat_id,
                                   locale=_locale())
    session.commit()
    return _open_launch(launch)


@bp.route("/my/teach")
def teach():
    """A teacher's rounds (and a teaching invitation to accept), as after a teacher's LTI launch."""
    session = get_session()
    person = _require_person()
    school = _school(person)
    launch = school_door.teacher_visit(session, _provider_of(person), sub=person["s"],
                                       school_municipality_id=school.municipality_id if school else None,
                                       locale=_locale())
    session.commit()
    return _open_launch(launch, "teacher.rounds")


@bp.route("/my/console/<municipality_id>")
def console(municipality_id: str):
    session = get_session()
    person = _require_person()
    launch = school_door.contact_visit(session, _provider_of(person), sub=person["s"],
                                       municipality_id=municipality_id, locale=_locale())
    session.commit()
    return _open_launch(launch, "municipal.console")
