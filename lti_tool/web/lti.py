"""The LTI 1.3 protocol endpoints: OIDC login, launch (redirect URI) and the tool's JWKS."""

from __future__ import annotations

import logging
from datetime import timedelta

from flask import Blueprint, g, jsonify, make_response, redirect, render_template, request, url_for

from ..config import settings
from ..db import get_session
from ..domain.claims import locale_from_claims
from ..domain.errors import DomainError
from ..i18n import set_locale
from ..lti import get_lti
from ..lti import launch as lti_launch
from ..lti.launch import (STATE_COOKIE_PREFIX, STORAGE_KEY_PREFIX, ParsedToken, parse_storage_target, start_login,
                          state_cookie_matches)
from ..models import STATE_PATH_COOKIE, STATE_PATH_STORAGE, Registration
from .. import metrics
from ..domain.seats import SeatRefusedError
from ..services import launch as launch_service
from .errors import render_error
from .launch_token import issue_launch_token, issue_waitlist_token
from .security import allow_framing_by, origin_of

bp = Blueprint("lti", __name__)
log = logging.getLogger(__name__)


def state_cookie_options() -> dict:
    """State cookies travel in the platform's cross-site form post: SameSite=None; Secure; Partitioned
    where the tool is on https or loopback, SameSite=Lax on another plain-http development host."""
    secure = settings().cookie_secure
    options = {"httponly": True, "secure": secure, "samesite": "None" if secure else "Lax", "path": "/lti/"}
    if secure:
        options["partitioned"] = True
    return options


def request_id_token() -> ParsedToken | None:
    """The id_token this request posted, split and decoded once for the whole request (the rate limit's
    registration, the error page's language, the launch's checks) and kept on ``g`` only: nothing holding a
    pupil's ``sub`` outlives the request."""
    token = (request.form.get("id_token") or "").strip()
    kept = g.get("_id_token")
    if kept is None or kept[0] != token:
        kept = g._id_token = (token, lti_launch.parse_token(token) if token else None)
    return kept[1]


def request_claims() -> dict:
    """The posted id_token's claims, unverified: only to choose the language of a page or route a limit."""
    parsed = request_id_token()
    return dict(parsed.body) if parsed is not None else {}


def _storage_config(mode: str, registration: Registration, state: str, **fields) -> dict:
    """What ``lti-storage.js`` needs: ``put`` on the login page, ``get`` on the launch page. Messages go to the
    origin of the platform's authorization endpoint only."""
    config = settings()
    return {"mode": mode, "origin": origin_of(registration.auth_login_url), "key": STORAGE_KEY_PREFIX + state,
            "timeout": config.platform_storage_timeout_ms,
            "capabilitiesTimeout": config.platform_capabilities_timeout_ms, **fields}


def _login_response(target, *, ask_storage: bool):
    """The answer to a login: a plain redirect to the platform, or, inside a frame, a page that first keeps the
    state in the platform's storage (``lti.put_data``). The state cookie is set either way, as the fallback."""
    allow_framing_by(target.registration)
    if ask_storage:
        page = render_template("lti/login_storage.html", storage_config=_storage_config(
            "put", target.registration, target.state, target=target.storage_target, value=target.state,
            redirect=target.url,
            cookieCheck=None if target.storage_target else url_for("lti.cookie_check", state=target.state)),
            redirect_url=target.url)
        response = make_response(page)
        response.headers["Cache-Control"] = "no-store"
    else:
        response = redirect(target.url, code=302)
    response.set_cookie(target.cookie_name, target.state, max_age=settings().login_state_ttl_seconds,
                        **state_cookie_options())
    return response


def _begin_login(params, registration_id: int | None, *, relaunch: bool = False):
    config = settings()
    return start_login(get_session(), get_lti().logins, params, base_url=config.base_url,
                       redirect_uri=config.base_url + url_for("lti.launch"),
                       ttl=timedelta(seconds=config.login_state_ttl_seconds),
                       registration_id=registration_id, relaunch=relaunch)


@bp.route("/lti/login", methods=["GET", "POST"])
@bp.route("/lti/login/<int:registration_id>", methods=["GET", "POST"])
def login(registration_id: int | None = None):
    """OIDC login initiation. With ``lti_storage_target`` (Canvas, Brightspace, Sakai), or inside a frame
    whose platform may offer storage through ``lti.capabilities`` (Blackboard), the answer is a page that keeps
    the state in the platform's storage before it goes on; at top level, a plain redirect."""
    target = _begin_login(request.values.to_dict(), registration_id)
    get_session().commit()
    return _login_response(target, ask_storage=bool(target.storage_target) or _in_frame())


@bp.route("/lti/login/cookie")
def cookie_check():
    """Did the state cookie set by the login page come back? (Then the login page need not use platform
    storage.) Answers only yes or no."""
    state = request.args.get("state", "")
    response = jsonify({"cookie": state_cookie_matches(request.cookies, state)})
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/lti/relaunch/<state>")
def relaunch(state: str):
    """The launch opened in a new window, after neither platform storage nor cookies worked in the frame: the
    same login, started again at top level, where the tool's cookie is first-party."""
    session = get_session()
    login_record = get_lti().logins.get(session, state)
    if login_record is None or not login_record.params:
        raise DomainError("relaunch of an unknown or expired login", code="state_invalid")
    target = _begin_login(login_record.params, login_record.registration_id, relaunch=True)
    session.commit()
    return _login_response(target, ask_storage=False)


@bp.route("/lti/launch", methods=["POST"])
def launch():
    """The platform's form post. When the login's state is bound by a cookie (and the platform was not asked
    to keep it), the launch completes here. Otherwise a page of the tool reads the state back from the
    platform's storage and posts it to :func:`launch_complete`, or offers to open the launch in a new window:
    when the login asked for platform storage, or when the cookie is missing inside a frame."""
    form = request.form
    set_locale(locale_from_claims(request_claims()))
    state = (form.get("state") or "").strip()
    cookie_bound = state_cookie_matches(request.cookies, state)
    login_record = None
    if state and not form.get("error"):
        login_record = get_lti().logins.get(get_session(), state)
    use_storage = login_record is not None and not login_record.used and (
        login_record.storage_target or (not cookie_bound and _in_frame()))
    if not use_storage:
        return _complete(form, path=STATE_PATH_COOKIE, login=login_record)
    return _storage_page(form, login_record, cookie_bound)


def _in_frame() -> bool:
    """Is the browser showing us in a frame? Browsers say so (``Sec-Fetch-Dest``) on secure origins; where they
    do not (plain http), an HTML page decides in the browser itself."""
    destination = request.headers.get("Sec-Fetch-Dest")
    if destination is None:
        return "text/html" in request.headers.get("Accept", "")
    return destination in ("iframe", "frame")


@bp.route("/lti/launch/complete", methods=["POST"])
def launch_complete():
    """The launch as posted by the tool's own launch page, with the state read back from the platform's storage
    (``proof=platform_storage``) or the cookie (``proof=cookie``). Only the tool's own pages may post here."""
    set_locale(locale_from_claims(request_claims()))
    if not _same_origin_request():
        raise DomainError("launch completion posted from another site", code="state_invalid")
    proof = request.form.get("proof")
    if proof == STATE_PATH_STORAGE:
        return _complete(request.form, path=STATE_PATH_STORAGE, storage_value=request.form.get("storage_value", ""))
    return _complete(request.form, path=STATE_PATH_COOKIE)


def _same_origin_request() -> bool:
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None:
        return site == "same-origin"
    return request.headers.get("Origin") == origin_of(settings().base_url)


def _storage_page(form, login_record, cookie_bound: bool):
    registration = get_session().get(Registration, login_record.registration_id)
    if registration is None:
        return _complete(form, path=STATE_PATH_COOKIE)
    allow_framing_by(registration)
    page = render_template("lti/launch_storage.html", fields={
        "id_token": form.get("id_token", ""), "state": form.get("state", "")}, storage_config=_storage_config(
        "get", registration, login_record.state,
        target=login_record.storage_target or parse_storage_target(form.get("lti_storage_target")),
        expected=login_record.state, cookieBound=cookie_bound),
        relaunch_url=url_for("lti.relaunch", state=login_record.state))
    response = make_response(page)
    response.headers["Cache-Control"] = "no-store"
    # The completion post must carry this page's Origin (no-referrer would send "Origin: null").
    response.headers["Referrer-Policy"] = "same-origin"
    return response


# Where an accepted launch goes first (services.launch names the page, this layer its endpoint).
FIRST_PAGES = {launch_service.DESTINATION_PRIVACY: "privacy.notice",
               launch_service.DESTINATION_DEEP_LINKING: "deep_link.pick",
               launch_service.DESTINATION_MUNICIPAL_CONSOLE: "municipal.console",
               launch_service.DESTINATION_HOME: "pupil.home"}


def _complete(form, *, path: str, storage_value: str | None = None, login=None):
    """Parse (done by the caller), run the launch (:func:`services.launch.complete_launch`), commit what it
    leaves in the session (all of an accepted launch; of a refused one only the platform key cache and a
    pending deployment), count it, then render the refusal or redirect to the first page."""
    session = get_session()
    # The launch's pages, refusals too, may be framed by the login's platform.
    outcome = launch_service.complete_launch(session, get_lti().validator, form, request.cookies, path=path,
                                             storage_value=storage_value, login=login, parsed=request_id_token(),
                                             on_registration=allow_framing_by)
    set_locale(outcome.locale)
    session.commit()
    metrics.count_launch(outcome.result, outcome.path, outcome.platform)
    if not outcome.accepted:
        return render_launch_refusal(outcome)
    record = outcome.launch
    log.info("launch accepted registration=%s municipality=%s method=%s role=%s path=%s", record.registration_id,
             record.municipality_id, record.resolution_method, record.role, outcome.path)
    response = redirect(url_for(FIRST_PAGES[outcome.destination], lt=issue_launch_token(record.id)), code=303)
    response.delete_cookie(STATE_COOKIE_PREFIX + outcome.login_state, **{
        k: v for k, v in state_cookie_options().items() if k in ("path", "secure", "samesite", "httponly",
                                                                  "partitioned")})
    return response


def render_launch_refusal(outcome: launch_service.LaunchOutcome):
    """A seat refusal: 403 with the reason and, where a seat may free up, the offer to join the waiting list
    (a signed token names the pupil and the order, so nothing is written until the pupil asks). Any other
    refusal: the error page."""
    refusal = outcome.refusal
    if not isinstance(refusal, SeatRefusedError):
        return render_error(refusal.code, refusal.status, refusal.detail, return_url=outcome.return_url)
    offer = outcome.waitlist_offer
    token = (issue_waitlist_token(offer.registration_id, offer.sub, offer.order_id, offer.locale)
             if offer is not None else None)
    return render_error(refusal.code, refusal.status, refusal.detail, waitlist_token=token,
                        municipality_id=outcome.municipality_id, return_url=outcome.return_url)


@bp.route("/lti/jwks")
@bp.route("/.well-known/jwks.json")
def jwks():
    response = jsonify(get_lti().keys.jwks())
    response.headers["Cache-Control"] = "public, max-age=300"
    return response
