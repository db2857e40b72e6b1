"""The LTI 1.3 protocol endpoints: OIDC login, launch (redirect URI) and the tool's JWKS."""

from __future__ import annotations

import logging
from datetime import timedelta

from flask import Blueprint, current_app, jsonify, redirect, request, url_for

from ..db import get_session
from ..domain.claims import locale_from_claims
from ..domain.errors import DomainError
from ..i18n import set_locale
from ..lti import get_lti
from ..lti.launch import start_login, unverified_claims
from .. import services
from ..domain.claims import ROLE_ADMINISTRATOR, ROLE_LEARNER
from ..domain.seats import SeatRefusedError
from ..services import seats
from .errors import render_domain_error, render_error
from .launch_token import issue_launch_token, issue_waitlist_token

bp = Blueprint("lti", __name__)
log = logging.getLogger(__name__)


def state_cookie_options() -> dict:
    """State cookies travel in the platform's cross-site form post: SameSite=None; Secure; Partitioned
    where the tool is on https, SameSite=Lax on a plain-http development host."""
    secure = bool(current_app.config["COOKIE_SECURE"])
    options = {"httponly": True, "secure": secure, "samesite": "None" if secure else "Lax", "path": "/lti/"}
    if secure:
        options["partitioned"] = True
    return options


@bp.route("/lti/login", methods=["GET", "POST"])
@bp.route("/lti/login/<int:registration_id>", methods=["GET", "POST"])
def login(registration_id: int | None = None):
    params = request.values.to_dict()
    config = current_app.config
    try:
        target = start_login(get_session(), get_lti().logins, params, base_url=config["BASE_URL"],
                             redirect_uri=config["BASE_URL"] + url_for("lti.launch"),
                             ttl=timedelta(seconds=int(config["LOGIN_STATE_TTL_SECONDS"])),
                             registration_id=registration_id)
    except DomainError as error:
        return render_domain_error(error)
    get_session().commit()
    response = redirect(target.url, code=302)
    response.set_cookie(target.cookie_name, target.state, max_age=int(config["LOGIN_STATE_TTL_SECONDS"]),
                        **state_cookie_options())
    return response


@bp.route("/lti/launch", methods=["POST"])
def launch():
    """Verify, admit, take a seat, use the nonce, record: all or nothing. A refused launch writes nothing but
    the platform key cache (kept, so a flood of unknown kids does not refetch every time) and, for an
    unknown deployment, that deployment, pending approval."""
    lti = get_lti()
    session = get_session()
    set_locale(locale_from_claims(unverified_claims(request.form.get("id_token", ""))))
    try:
        verified = lti.validator.verify(session, request.form, request.cookies)
        set_locale(verified.claims.locale)
        admission = services.admit_launch(session, verified.registration_id, verified.claims)
        with session.begin_nested():  # whatever fails below is undone, the key cache above is not
            record = _admit(session, verified, admission)
        session.commit()
    except SeatRefusedError as refusal:
        session.commit()
        return render_seat_refusal(refusal, verified, admission.resolution.municipality_id)
    except services.UnknownDeploymentError as error:
        services.store_pending_deployment(session, error.registration_id, error.deployment_id)
        session.commit()
        return render_domain_error(error)
    except DomainError as error:
        session.commit()
        return render_domain_error(error)
    log.info("launch accepted registration=%s municipality=%s method=%s role=%s", verified.registration_id,
             record.municipality_id, record.resolution_method, record.role)
    if record.deep_linking is not None:
        target = "deep_link.pick"
    elif record.role == ROLE_ADMINISTRATOR and not record.course_code:
        target = "municipal.console"
    else:
        target = "pupil.home"
    response = redirect(url_for(target, lt=issue_launch_token(record.id)), code=303)
    response.delete_cookie(f"lti_state_{verified.login.state}", **{
        k: v for k, v in state_cookie_options().items() if k in ("path", "secure", "samesite", "httponly",
                                                                  "partitioned")})
    return response


def _admit(session, verified, admission):
    lti = get_lti()
    claims = verified.claims
    course_code = (claims.custom.get("course") or "").strip() or None
    round_id = (claims.custom.get("round") or "").strip() or None
    round_pk = None
    if claims.deep_linking is not None and claims.role == ROLE_LEARNER:
        raise DomainError("a pupil cannot place courses", code="deep_linking_forbidden", status=403)
    if course_code and claims.role == ROLE_LEARNER:
        round_pk = seats.reserve_seat(session, registration_id=verified.registration_id, sub=claims.sub,
                                      municipality_id=admission.resolution.municipality_id,
                                      course_code=course_code, round_id=round_id).round.id
    elif course_code:
        staff_round = seats.round_for_staff(session, course_code, round_id)
        round_pk = staff_round.id if staff_round else None
    lti.validator.consume(session, verified)
    return services.record_launch(session, verified.registration_id, claims, admission, claims.locale,
                                  course_code=course_code, round_pk=round_pk)


def render_seat_refusal(refusal: SeatRefusedError, verified, municipality_id: str):
    """403 with the reason; where a seat may free up, the offer to join the waiting list (a signed token
    names the pupil and the order, so nothing is written until the pupil asks)."""
    token = None
    if refusal.waitlist and refusal.order_id is not None:
        token = issue_waitlist_token(verified.registration_id, verified.claims.sub, refusal.order_id,
                                     verified.claims.locale)
    return render_error(refusal.code, refusal.status, refusal.detail, waitlist_token=token,
                        municipality_id=municipality_id)


@bp.route("/lti/jwks")
@bp.route("/.well-known/jwks.json")
def jwks():
    response = jsonify(get_lti().keys.jwks())
    response.headers["Cache-Control"] = "public, max-age=300"
    return response
