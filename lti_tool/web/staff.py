"""The national staff console (/staff): sign-in with OpenID Connect (or, with the sandbox on, a local
sign-in for development), registrations and deployments, orders and seats, course rounds with their teachers
and the providing arts school, costs, the grade outbox, the catalog sync history. Every change is written to
the audit log.

The same sign-in lets a round's teacher named by e-mail in: a signed-in person who is not staff but whose
verified e-mail is a round teacher's gets a teacher session (``session["teacher"]``, see web/teacher.py) and
their rounds, and nothing of this console."""

from __future__ import annotations

import secrets
import unicodedata
from datetime import timedelta
from functools import wraps
from zoneinfo import ZoneInfo

from babel.dates import format_datetime

from flask import (Blueprint, Response, abort, current_app, redirect, render_template, request, session,
                   url_for)
from flask_babel import gettext as _
from sqlalchemy import func, or_, select
from sqlalchemy.orm import selectinload

from ..clock import now
from ..config import settings
from ..db import get_session
from ..domain.calendar import TIME_ZONES
from ..domain.claims import SUPPORTED_LOCALES
from ..domain.errors import DomainError
from ..domain.paging import page_numbers, pages_for
from ..domain.resolution import parse_municipality_id
from ..domain.texts import pick_text
from ..i18n import formatting_locale, select_locale
from ..models import (COURSE_ACTIVE, COURSE_RETIRED, DEPLOYMENT_ACTIVE, DEPLOYMENT_INACTIVE, DEPLOYMENT_PENDING,
                      OUTBOX_DEAD, OUTBOX_PENDING, REGISTRATION_KIND_LTI, REGISTRATION_PENDING, STATE_PATH_COOKIE,
                      STATE_PATH_NEW_WINDOW, STATE_PATH_STORAGE, AuditEntry, Course, CourseRound, Deployment,
                      DeploymentMunicipality, Municipality, OutboxItem, Registration, RoundTeacher)
from ..services import audit_log as audit_log_service
from ..services import grades, round_teachers, staff_catalog
from ..services import platforms as platform_service
from ..services import registrations as registration_service
from ..services import seats as seat_service
from ..services.privacy import ACCESS_ACTION_PREFIX
from ..services.reports import count_launch_paths
from .forms import parse_id, parse_whole_number
from .teacher import TEACHER_SESSION_KEY

bp = Blueprint("staff", __name__, url_prefix="/staff")
SESSION_KEY = "staff"


# -- sign-in ------------------------------------------------------------------------------------------

def oidc_client():
    """The configured OpenID Connect provider (authlib), or None when none is configured."""
    config = settings()
    if not config.staff_oidc_issuer:
        return None
    oauth = current_app.extensions.get("lti_tool.staff_oauth")
    if oauth is None:
        from authlib.integrations.flask_client import OAuth

        from ..identity.oidc import GuardedOAuth2App, guarded_client_kwargs

        oauth = OAuth(current_app)
        # Every request of the client (discovery, key set, token, userinfo) goes through the outbound guard.
        oauth.register("staff", client_cls=GuardedOAuth2App, client_id=config.staff_oidc_client_id,
                       client_secret=config.staff_oidc_client_secret,
                       server_metadata_url=(config.staff_oidc_issuer.rstrip("/")
                                            + "/.well-known/openid-configuration"),
                       client_kwargs=guarded_client_kwargs(scope="openid email profile"))
        current_app.extensions["lti_tool.staff_oauth"] = oauth
    return oauth.staff


def verified_email(claims: dict) -> str | None:
    """The e-mail address of the sign-in, lower-cased, only when the provider says it verified it
    (``email_verified``); an unverified address proves nothing about who signed in."""
    email = claims.get("email")
    if not isinstance(email, str) or "@" not in email:
        return None
    return email.strip().lower() if claims.get("email_verified") in (True, "true") else None


def is_staff(claims: dict) -> bool:
    """Staff are those listed in LTI_TOOL_STAFF_USERS (a verified e-mail, or the provider's ``sub``) or holding
    LTI_TOOL_STAFF_CLAIM (``name=value``; a list claim matches when it contains the value)."""
    config = settings()
    allowed = {u.strip().lower() for u in config.staff_users.split(",") if u.strip()}
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub:
        return False
    email = verified_email(claims)
    if sub.lower() in allowed or (email is not None and email in allowed):
        return True
    wanted = config.staff_claim
    if "=" in wanted:
        name, value = wanted.split("=", 1)
        have = claims.get(name)
        return have == value or (isinstance(have, list) and value in have)
    return False


def staff_required(view):
    @wraps(view)
    def wrapper(*args, **kwargs):
        if not session.get(SESSION_KEY):
            return redirect(url_for("staff.sign_in", next=request.path))
        return view(*args, **kwargs)

    return wrapper


def csrf_token() -> str:
    """The session's CSRF token, put in every console form; web/csrf.py checks it before every POST."""
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(32)
    return session["csrf"]


def audit(action: str, target: str, **details) -> None:
    get_session().add(AuditEntry(actor=session[SESSION_KEY]["name"], action=action, target=target, details=details))


@bp.route("/sign-in")
def sign_in():
    client = oidc_client()
    return render_template("staff/sign_in.html", oidc=client is not None, dev=settings().sandbox,
                           csrf=csrf_token())


@bp.route("/sign-in/oidc")
def sign_in_oidc():
    client = oidc_client()
    if client is None:
        abort(404)
    return client.authorize_redirect(url_for("staff.callback", _external=True))


@bp.route("/callback")
def callback():
    client = oidc_client()
    if client is None:
        abort(404)
    try:
        token = client.authorize_access_token()
    except Exception as exc:  # authlib raises several kinds; every one is a refused sign-in
        current_app.logger.warning("staff sign-in refused: %s", exc.__class__.__name__)
        return render_template("staff/sign_in.html", oidc=True, dev=settings().sandbox, refused=True,
                               csrf=csrf_token()), 403
    claims = dict(token.get("userinfo") or {})
    if not is_staff(claims):
        email = verified_email(claims)
        if email is not None and isinstance(claims.get("sub"), str) and claims["sub"] \
                and round_teachers.rounds_of_email(get_session(), email):
            return _teacher_signed_in(email, claims.get("name"), "oidc")
        return render_template("staff/sign_in.html", oidc=True, dev=settings().sandbox, refused=True,
                               csrf=csrf_token()), 403
    session.clear()
    session[SESSION_KEY] = {"name": verified_email(claims) or claims["sub"], "via": "oidc"}
    return redirect(url_for("staff.overview"))


def _teacher_signed_in(email: str, name: object, via: str):
    """A round's teacher signed in by e-mail: a teacher session (no staff session), on to their rounds."""
    session.clear()
    session[TEACHER_SESSION_KEY] = {"email": email, "name": name.strip()[:200] if isinstance(name, str) else None,
                                    "via": via}
    return redirect(url_for("teacher.rounds"))


@bp.route("/sign-in/local", methods=["POST"])
def sign_in_local():
    """Development only: works only while the sandbox is on (never in production)."""
    if not settings().sandbox:
        abort(404)
    name = (request.form.get("name") or "").strip()[:100] or "developer"
    session.clear()
    session[SESSION_KEY] = {"name": f"{name} (local)", "via": "local"}
    return redirect(url_for("staff.overview"))


@bp.route("/sign-in/local-teacher", methods=["POST"])
def sign_in_local_teacher():
    """Development only, as the local sign-in above: sign in as the round teacher with this e-mail (what the
    OpenID Connect provider would have verified)."""
    if not settings().sandbox:
        abort(404)
    email = (request.form.get("email") or "").strip().lower()[:320]
    if "@" not in email or any(c.isspace() for c in email):
        return render_template("staff/sign_in.html", oidc=oidc_client() is not None, dev=True, csrf=csrf_token(),
                               teacher_error=True), 400
    return _teacher_signed_in(email, None, "local")


@bp.route("/sign-out", methods=["POST"])
def sign_out():
    session.clear()
    return redirect(url_for("staff.sign_in"))


@bp.context_processor
def _console():
    return {"staff_user": session.get(SESSION_KEY), "csrf": csrf_token()}


# -- pages ----------------------------------------------------------------------------------------------

@bp.route("/")
@staff_required
def overview():
    db = get_session()
    counts = {
        "registrations": db.scalar(select(func.count()).select_from(Registration)),
        "pending_registrations": db.scalar(select(func.count()).select_from(Registration)
                                           .where(Registration.status == REGISTRATION_PENDING)),
        "pending_deployments": db.scalar(select(func.count()).select_from(Deployment)
                                         .where(Deployment.status == DEPLOYMENT_PENDING)),
        "municipalities": db.scalar(select(func.count()).select_from(Municipality)),
        "courses": db.scalar(select(func.count()).select_from(Course).where(Course.status == COURSE_ACTIVE)),
        "dead_letters": db.scalar(select(func.count()).select_from(OutboxItem).where(OutboxItem.status == OUTBOX_DEAD)),
    }
    return render_template("staff/overview.html", counts=counts)


@bp.route("/launches")
@staff_required
def launches():
    """Launches per platform and path (cookie, platform storage, new window): which platforms' pupils meet
    blocked third-party cookies."""
    days = request.args.get("days", type=int)
    since = now() - timedelta(days=days) if days and days > 0 else None
    rows = count_launch_paths(get_session(), since)
    paths = sorted({row.path for row in rows})
    table: dict[tuple[int, str], dict[str, int]] = {}
    for row in rows:
        table.setdefault((row.registration_id, row.platform), {})[row.path] = row.launches
    labels = {STATE_PATH_COOKIE: _("Cookie"), STATE_PATH_STORAGE: _("Platform storage"),
              STATE_PATH_NEW_WINDOW: _("New window"), "unknown": _("Not recorded")}
    return render_template("staff/launches.html", paths=paths, table=table, days=days, path_labels=labels)


# -- registrations and deployments --------------------------------------------------------------------------
#
# The registrations page lists 25 registrations a page, searchable, each deployment's municipalities folded
# away; a deployment's municipalities are chosen on a page of its own (one checkbox per municipality, grouped
# by country and county). Nothing is ever removed from a deployment, and no deployment is turned off, without a
# page that shows what changes and a second, confirming POST (``confirm=yes``); the audit entry holds the
# values before and after.

PAGE_SIZE = 25
SUMMARY_NAMES = 3  # names shown beside a deployment's municipality count before it is unfolded

# The official Swedish list (SCB) gives a municipality's county by its code only.
SWEDISH_COUNTIES = {
    "01": "Stockholms län", "03": "Uppsala län", "04": "Södermanlands län", "05": "Östergötlands län",
    "06": "Jönköpings län", "07": "Kronobergs län", "08": "Kalmar län", "09": "Gotlands län", "10": "Blekinge län",
    "12": "Skåne län", "13": "Hallands län", "14": "Västra Götalands län", "17": "Värmlands län",
    "18": "Örebro län", "19": "Västmanlands län", "20": "Dalarnas län", "21": "Gävleborgs län",
    "22": "Västernorrlands län", "23": "Jämtlands län", "24": "Västerbottens län", "25": "Norrbottens län",
}
# The letters that come after z, in each country's alphabetical order (Å Ä Ö; Æ Ø Å).
_LAST_LETTERS = {"SE": {"å": "{0", "ä": "{1", "æ": "{1", "ö": "{2", "ø": "{2"},
                 "NO": {"æ": "{0", "ä": "{0", "ø": "{1", "ö": "{1", "å": "{2"}}


def _fold(text: str) -> str:
    """Lower case without accents, for matching what staff type ("malmo" finds Malmö)."""
    return "".join(c for c in unicodedata.normalize("NFKD", text.casefold()) if not unicodedata.combining(c))


def _sort_key(name: str, country: str) -> str:
    """A municipality's name as its country sorts it."""
    last = _LAST_LETTERS.get(country, {})
    return "".join(last.get(c) or _fold(c) for c in name.casefold())


def _country_label(country: str) -> str:
    return {"SE": _("Sweden"), "NO": _("Norway")}.get(country, country)


def _county_label(country: str, code: str | None, name: str | None) -> str:
    if name:
        return name
    if country == "SE" and code in SWEDISH_COUNTIES:
        return SWEDISH_COUNTIES[code]
    return _("County %(code)s", code=code) if code else _("No county")


def _status_labels() -> dict[str, str]:
    return {DEPLOYMENT_ACTIVE: _("Active"), DEPLOYMENT_PENDING: _("Waiting for approval"),
            DEPLOYMENT_INACTIVE: _("Deactivated")}


def _names(db, ids) -> dict[str, tuple[str, str]]:
    """Municipality id -> (name, country) for these ids."""
    ids = sorted(set(ids))
    if not ids:
        return {}
    return {row.id: (row.name, row.country) for row in db.execute(
        select(Municipality.id, Municipality.name, Municipality.country).where(Municipality.id.in_(ids)))}


def _sorted_ids(ids, names: dict[str, tuple[str, str]]) -> list[str]:
    return sorted(ids, key=lambda m: (_sort_key(*names[m]), m) if m in names else ("\uffff", m))


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _registration_search(db, query: str):
    """The registrations a search names: by name, issuer, client id or id, or a deployment's id, or a
    municipality (name or code, case and accents ignored) one of its deployments serves. Also the ids of those
    municipalities."""
    folded = _fold(query)
    matching = {row.id for row in db.execute(select(Municipality.id, Municipality.name))
                if folded in _fold(row.name) or folded in row.id.casefold()}
    pattern = _like(query)
    served = select(DeploymentMunicipality.deployment_id).where(DeploymentMunicipality.municipality_id.in_(matching))
    deployments = select(Deployment.registration_id).where(or_(Deployment.deployment_id.ilike(pattern, escape="\\"),
                                                               Deployment.id.in_(served)))
    conditions = [Registration.name.ilike(pattern, escape="\\"), Registration.issuer.ilike(pattern, escape="\\"),
                  Registration.client_id.ilike(pattern, escape="\\"), Registration.id.in_(deployments)]
    if query.isdigit() and len(query) < 10:
        conditions.append(Registration.id == int(query))
    return or_(*conditions), matching


@bp.route("/registrations")
@staff_required
def registrations():
    """Registrations, 25 a page (``?page=``), pending ones first; ``?q=`` searches them (see
    ``_registration_search``). A pending re-registration is shown with what differs from the active registration
    it would replace; each deployment with its municipalities folded away."""
    db = get_session()
    query_text = (request.args.get("q") or "").strip()[:200]
    query = select(Registration).where(Registration.kind == REGISTRATION_KIND_LTI)
    matching: set[str] = set()
    if query_text:
        condition, matching = _registration_search(db, query_text)
        query = query.where(condition)
    total = db.scalar(select(func.count()).select_from(query.subquery()))
    page, pages = pages_for(total, request.args.get("page", 1, type=int), PAGE_SIZE)
    rows = db.scalars(query.options(selectinload(Registration.deployments).selectinload(Deployment.municipalities))
                      .order_by(Registration.status.desc(), Registration.id)
                      .offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE)).all()
    bound = {d.id: [m.municipality_id for m in d.municipalities] for r in rows for d in r.deployments}
    names = _names(db, (m for ids in bound.values() for m in ids))
    bound = {pk: _sorted_ids(ids, names) for pk, ids in bound.items()}
    return render_template("staff/registrations.html", reviews=[registration_service.review(db, r) for r in rows],
                           bound=bound, names={m: name for m, (name, _country) in names.items()},
                           opened={pk for pk, ids in bound.items() if matching.intersection(ids)},
                           q=query_text, total=total, page=page, pages=pages, page_numbers=page_numbers(page, pages),
                           summary_names=SUMMARY_NAMES, status_labels=_status_labels())


def _registration_change(change, registration_id: int, **kwargs):
    """Approve or reject through ``services.registrations`` (the same rules and audit as the CLI)."""
    db = get_session()
    try:
        change(db, registration_id, actor=session[SESSION_KEY]["name"], **kwargs)
    except DomainError as error:
        db.rollback()
        return render_template("staff/message.html", message=str(error),
                               back=url_for("staff.registrations")), error.status
    db.commit()
    return redirect(url_for("staff.registrations"))


@bp.route("/registrations/<int:registration_id>/approve", methods=["POST"])
@staff_required
def approve(registration_id: int):
    """Approve a pending registration; a re-registration only as the replacement of the registration named
    in ``replaces`` (the active one with its issuer and client id, shown beside it)."""
    replaces = (request.form.get("replaces") or "").strip()
    return _registration_change(registration_service.approve_registration, registration_id,
                                replaces=parse_id(replaces, what="registration") if replaces else None)


@bp.route("/registrations/<int:registration_id>/reject", methods=["POST"])
@staff_required
def reject(registration_id: int):
    """Delete a pending registration (and its pending deployments)."""
    return _registration_change(registration_service.reject_registration, registration_id)


def _deployment(db, deployment_pk: int, *, lock: bool = False) -> Deployment:
    deployment = db.get(Deployment, deployment_pk, with_for_update=lock)
    if deployment is None or deployment.registration.kind != REGISTRATION_KIND_LTI:
        abort(404)
    return deployment


def _picker(db, bound: set[str]):
    """Every municipality for the checkboxes: those bound now first (by name), then the others by country and
    county (by code) and name."""
    rows = db.execute(select(Municipality.id, Municipality.country, Municipality.name, Municipality.county_code,
                             Municipality.county_name)).all()

    def by_name(row):
        return _sort_key(row.name, row.country), row.id

    first = [(row, _county_label(row.country, row.county_code, row.county_name))
             for row in sorted((r for r in rows if r.id in bound), key=by_name)]
    countries: dict[str, dict[str, list]] = {}
    for row in rows:
        if row.id not in bound:
            countries.setdefault(row.country, {}).setdefault(row.county_code or "", []).append(row)
    groups = []
    for country in sorted(countries, key=lambda c: ({"SE": 0, "NO": 1}.get(c, 2), c)):
        counties = []
        for code in sorted(countries[country]):
            members = sorted(countries[country][code], key=by_name)
            counties.append((_county_label(country, members[0].county_code, members[0].county_name), members))
        groups.append((_country_label(country), counties))
    return first, groups, len(rows)


def _deployment_page(db, deployment: Deployment, *, chosen: set[str] | None = None, custom_param: str | None = None,
                     error: str | None = None, status: int = 200):
    bound = {m.municipality_id for m in deployment.municipalities}
    first, groups, total = _picker(db, bound)
    return render_template("staff/deployment.html", deployment=deployment, registration=deployment.registration,
                           first=first, groups=groups, total=total, bound=bound,
                           chosen=bound if chosen is None else chosen,
                           custom_param=deployment.custom_param or "" if custom_param is None else custom_param,
                           error=error, saved=request.args.get("saved"), status_labels=_status_labels()), status


@bp.route("/deployments/<int:deployment_pk>/municipalities")
@staff_required
def deployment_municipalities(deployment_pk: int):
    """The municipalities a deployment serves, chosen with checkboxes (bound ones first; a search filters the
    list where scripts run), and the custom parameter of a shared deployment."""
    db = get_session()
    return _deployment_page(db, _deployment(db, deployment_pk))


def _choice_error(db, chosen: list[str], custom_param: str) -> str | None:
    """Why this choice cannot be bound (the rules of ``services.platforms.bind_deployment``, said to staff), or
    None."""
    if not chosen:
        return _("Choose at least one municipality: a deployment that is in use serves at least one. To stop its "
                 "launches, deactivate it instead.")
    ids: set[str] = set()
    for value in chosen:
        try:
            ids.add(parse_municipality_id(value))
        except ValueError:
            return _("Unknown municipality: %(codes)s.", codes=value[:20])
    unknown = sorted(ids - set(db.scalars(select(Municipality.id).where(Municipality.id.in_(ids)))))
    if unknown:
        return _("Unknown municipality: %(codes)s.", codes=", ".join(unknown))
    if len(ids) > 1 and not custom_param:
        return _("Several municipalities share this deployment: give the custom parameter that names the pupil's "
                 "municipality in each launch (for example municipality_code).")
    if len(custom_param) > 100:
        return _("The custom parameter's name is at most 100 characters.")
    return None


def _confirm_binding_page(db, deployment: Deployment, change, custom_param: str, *, status: int = 200,
                          changed_meanwhile: bool = False):
    names = _names(db, change.added + change.removed)
    return render_template("staff/confirm_binding.html", deployment=deployment, registration=deployment.registration,
                           change=change, added=_sorted_ids(change.added, names),
                           removed=_sorted_ids(change.removed, names),
                           names={m: name for m, (name, _country) in names.items()},
                           kept=len(change.after) - len(change.added), custom_param=custom_param,
                           param_changed=(custom_param or None) != deployment.custom_param,
                           seen=",".join(change.before), changed_meanwhile=changed_meanwhile), status


def _needs_confirmation(deployment: Deployment, change, custom_param: str) -> bool:
    """A removal, or a change of the custom parameter an active shared deployment's launches name their
    municipality with: either cuts pupils off, so staff confirm it. Additions (and a first custom parameter)
    apply at once."""
    param_changed = (deployment.status == DEPLOYMENT_ACTIVE and bool(deployment.custom_param)
                     and (custom_param or None) != deployment.custom_param)
    return bool(change.removed) or param_changed


@bp.route("/deployments/<int:deployment_pk>/bind", methods=["POST"])
@staff_required
def bind(deployment_pk: int):
    """Bind a deployment to the chosen municipalities (the whole set, as ticked) and make it active. Additions
    apply at once; a removal shows what changes and applies only when posted again with ``confirm=yes`` (and the
    set it was shown against, ``seen``, still bound)."""
    db = get_session()
    deployment = _deployment(db, deployment_pk, lock=True)
    chosen = [v for v in request.form.getlist("municipality") if v.strip()]
    custom_param = (request.form.get("custom_param") or "").strip()
    error = _choice_error(db, chosen, custom_param)
    if error:
        return _deployment_page(db, deployment, chosen={v.strip().upper() for v in chosen}, custom_param=custom_param,
                                error=error, status=400)
    change = platform_service.binding_change(db, deployment, chosen)
    if _needs_confirmation(deployment, change, custom_param):
        if request.form.get("confirm") != "yes":
            return _confirm_binding_page(db, deployment, change, custom_param)
        if request.form.get("seen") != ",".join(change.before) \
                or (request.form.get("seen_param") or "") != (deployment.custom_param or ""):
            return _confirm_binding_page(db, deployment, change, custom_param, status=409, changed_meanwhile=True)
    status_before, param_before = deployment.status, deployment.custom_param
    try:
        platform_service.bind_deployment(db, deployment.registration, deployment.deployment_id, chosen,
                                         custom_param or None)
    except (DomainError, ValueError) as failure:
        db.rollback()
        return _deployment_page(db, _deployment(db, deployment_pk), chosen=set(change.after),
                                custom_param=custom_param, error=str(failure),
                                status=getattr(failure, "status", 400))
    audit("deployment.bind", f"deployment {deployment.deployment_id}", registration=deployment.registration_id,
          **change.details(), status={"before": status_before, "after": deployment.status},
          custom_param={"before": param_before, "after": deployment.custom_param})
    db.commit()
    return redirect(url_for("staff.deployment_municipalities", deployment_pk=deployment_pk, saved="bound"), code=303)


@bp.route("/deployments/<int:deployment_pk>/deactivate", methods=["GET", "POST"])
@staff_required
def deactivate(deployment_pk: int):
    """Turn a deployment off: first a page saying what that does; a POST with ``confirm=yes`` does it."""
    db = get_session()
    deployment = _deployment(db, deployment_pk, lock=request.method == "POST")
    active = deployment.status == DEPLOYMENT_ACTIVE
    if request.method == "GET" or request.form.get("confirm") != "yes" or not active:
        bound = [m.municipality_id for m in deployment.municipalities]
        names = _names(db, bound)
        return render_template("staff/confirm_deactivate.html", deployment=deployment,
                               registration=deployment.registration, bound=_sorted_ids(bound, names),
                               names={m: name for m, (name, _country) in names.items()},
                               status_labels=_status_labels()), 200 if active or request.method == "GET" else 409
    platform_service.set_deployment_status(db, deployment.registration, deployment.deployment_id, DEPLOYMENT_INACTIVE)
    audit("deployment.deactivate", f"deployment {deployment.deployment_id}", registration=deployment.registration_id,
          status={"before": DEPLOYMENT_ACTIVE, "after": deployment.status},
          municipalities=sorted(m.municipality_id for m in deployment.municipalities))
    db.commit()
    return redirect(url_for("staff.deployment_municipalities", deployment_pk=deployment_pk, saved="deactivated"),
                    code=303)


@bp.route("/municipalities")
@staff_required
def municipalities():
    db = get_session()
    rows = db.execute(select(Municipality, func.count(Deployment.id))
                      .outerjoin(Deployment, Deployment.municipalities.any(municipality_id=Municipality.id))
                      .group_by(Municipality.id).order_by(Municipality.id)).all()
    return render_template("staff/municipalities.html", rows=rows)


@bp.route("/orders")
@staff_required
def orders():
    """Orders, 50 a page, filtered by course, round, municipality (name or code) and country; above them each
    round's national capacity against all municipalities' budgets and seats taken, with a warning where the
    budgets exceed the places."""
    db = get_session()
    country = (request.args.get("country") or "").strip().upper()
    wanted = staff_catalog.OrderFilter(course=(request.args.get("course") or "").strip()[:40],
                                       round_id=(request.args.get("round") or "").strip()[:40],
                                       municipality=(request.args.get("municipality") or "").strip()[:200],
                                       country=country if country in ("SE", "NO") else "")
    result = staff_catalog.order_page(db, wanted, page=request.args.get("page", 1, type=int))
    courses, round_ids = staff_catalog.filter_choices(db, wanted.course)
    locale = select_locale()
    arguments = {"course": wanted.course or None, "round": wanted.round_id or None,
                 "municipality": wanted.municipality or None, "country": wanted.country or None}
    return render_template("staff/orders.html", result=result, wanted=wanted, courses=courses, round_ids=round_ids,
                           arguments=arguments, page_numbers=page_numbers(result.page, result.pages),
                           countries=[("SE", _country_label("SE")), ("NO", _country_label("NO"))],
                           text=lambda value: pick_text(value, locale),
                           titles={c.code: c.title for c in courses})


@bp.route("/costs")
@staff_required
def costs():
    lines = seat_service.cost_report(get_session(), round_id=request.args.get("round") or None,
                                     municipality=request.args.get("municipality") or None)
    if request.args.get("format") == "csv":
        return Response(seat_service.cost_csv(lines), mimetype="text/csv",  # werkzeug adds the one charset
                        headers={"Content-Disposition": "attachment; filename=kulturskola-costs.csv"})
    return render_template("staff/costs.html", lines=lines)


@bp.route("/outbox")
@staff_required
def outbox():
    db = get_session()
    return render_template("staff/outbox.html", dead=grades.list_items(db, OUTBOX_DEAD),
                           pending=db.scalar(select(func.count()).select_from(OutboxItem)
                                             .where(OutboxItem.status == OUTBOX_PENDING)),
                           placements=grades.placements(db))


@bp.route("/outbox/retry", methods=["POST"])
@staff_required
def outbox_retry():
    db = get_session()
    item = request.form.get("item")
    report = grades.retry_dead(db, parse_id(item, what="outbox item") if item else None)
    audit("outbox.retry", f"outbox {item or 'all dead'}", queued=report.queued, superseded=report.superseded)
    db.commit()
    return redirect(url_for("staff.outbox"))


@bp.route("/catalog")
@staff_required
def catalog():
    """The catalog's courses (searched with ``?q=``, 50 a page) and the history of its syncs."""
    from catalog_sync.sync import history

    db = get_session()
    query_text = (request.args.get("q") or "").strip()[:200]
    result = staff_catalog.list_courses(db, query_text, page=request.args.get("page", 1, type=int))
    locale = select_locale()
    return render_template("staff/catalog.html", runs=history(db, 30), source=settings().catalog_source,
                           local_time=local_time, zone=audit_zone(),
                           result=result, q=query_text, page_numbers=page_numbers(result.page, result.pages),
                           text=lambda value: pick_text(value, locale), status_labels=_course_status_labels())


def _course_status_labels() -> dict[str, str]:
    return {COURSE_ACTIVE: _("Active"), COURSE_RETIRED: _("Retired")}


def _round_status_labels() -> dict[str, str]:
    return {"open": _("Enrolment open"), "running": _("Running"), "cancelled": _("Cancelled"),
            "retired": _("Retired")}


@bp.route("/catalog/courses/<code>")
@staff_required
def course_page(code: str):
    """A course: its prices, its rounds (national capacity against the municipalities' budgets and seats taken)
    and its modules, lessons and assignments as pupils see them, in any of the course's languages
    (``?lang=``); a text the feed lacks in that language is shown in the pupils' fallback, marked."""
    db = get_session()
    try:
        detail = staff_catalog.course_detail(db, code)
    except DomainError:
        abort(404)
    course = detail.course
    languages = [lang for lang in SUPPORTED_LOCALES if lang in (course.languages or [])] or ["sv"]
    wanted = request.args.get("lang")
    reader = wanted if wanted in languages else (select_locale() if select_locale() in languages else languages[0])
    return render_template("staff/course.html", detail=detail, course=course, languages=languages, reader=reader,
                           modules=detail.modules,
                           text=lambda value: pick_text(value, reader),
                           page_text=lambda value: pick_text(value, select_locale()),
                           status_labels=_course_status_labels(), round_status=_round_status_labels())


@bp.route("/catalog/sync", methods=["POST"])
@staff_required
def catalog_sync_now():
    source = settings().catalog_source
    if not source:
        abort(400, "LTI_TOOL_CATALOG_SOURCE is not set")
    from catalog_sync.sync import run_sync

    from ..db import SESSIONMAKER_KEY
    from ..lti import get_lti

    report = run_sync(current_app.extensions[SESSIONMAKER_KEY], source,
                      timeout=settings().http_timeout_seconds, policy=get_lti().outbound)
    audit("catalog.sync", source, result=report.result, summary=report.summary())
    get_session().commit()
    return redirect(url_for("staff.catalog"))


AUDIT_PAGE_SIZE = 50


def audit_zone() -> str:
    """The time zone the console's times (the audit log, the catalog's syncs) are shown in: the viewer's country's
    (Norway for a page in bokmål or nynorsk, else Sweden)."""
    return TIME_ZONES["NO"] if select_locale() in ("nb", "nn") else TIME_ZONES["SE"]


def local_time(moment) -> str:
    """A moment in the viewer's country's time zone, in the page's language."""
    return format_datetime(moment, "medium", tzinfo=ZoneInfo(audit_zone()), locale=formatting_locale())


@bp.route("/audit")
@staff_required
def audit_log():
    """Every change, 50 a page, newest first; ``?show=access``: only openings of a pupil's work; ``?show=cli``:
    only changes made on the command line. Times in the viewer's country's time zone."""
    show = request.args.get("show")
    result = audit_log_service.page_of_entries(
        get_session(), page=request.args.get("page", 1, type=int), page_size=AUDIT_PAGE_SIZE,
        action_prefix=ACCESS_ACTION_PREFIX if show == "access" else None,
        origin_only=audit_log_service.ORIGIN_CLI if show == "cli" else None)
    return render_template("staff/audit.html", result=result, entries=result.entries,
                           show=show if show in ("access", "cli") else None, zone=audit_zone(),
                           local_time=local_time, details=audit_log_service.details,
                           origin=audit_log_service.origin, who=audit_log_service.who,
                           page_numbers=page_numbers(result.page, result.pages))


# -- course rounds: their teachers and the providing arts school ---------------------------------------------

@bp.route("/rounds")
@staff_required
def rounds():
    db = get_session()
    teachers = dict(db.execute(select(RoundTeacher.round_pk, func.count()).group_by(RoundTeacher.round_pk)).all())
    rows = db.execute(select(CourseRound, Course).join(Course, Course.code == CourseRound.course_code)
                      .order_by(CourseRound.course_code, CourseRound.starts_on, CourseRound.id)).all()
    return render_template("staff/rounds.html", rows=rows, teachers=teachers)


def _round_page(round_pk: int, *, status: int = 200, **extra):
    db = get_session()
    course_round = db.get(CourseRound, round_pk) or abort(404)
    teachers = round_teachers.list_teachers(db, round_pk)
    return render_template("staff/round.html", round=course_round, course=course_round.course, teachers=teachers,
                           identity=round_teachers.describe_identity, saved=request.args.get("saved"),
                           now=now(), **extra), status


@bp.route("/rounds/<int:round_pk>")
@staff_required
def round_page(round_pk: int):
    """A round's teachers (add by e-mail, invite a teacher who arrives from their own platform, remove) and its
    course's providing arts school."""
    return _round_page(round_pk)


def _round_change(round_pk: int, change, saved: str):
    """A change through ``services.round_teachers`` (which audits it); a refusal shown on the round's page."""
    db = get_session()
    if db.get(CourseRound, round_pk) is None:
        abort(404)
    try:
        change(db, session[SESSION_KEY]["name"])
    except DomainError as error:
        db.rollback()
        return _round_page(round_pk, status=error.status, error=str(error), error_code=error.code)
    db.commit()
    return redirect(url_for("staff.round_page", round_pk=round_pk, saved=saved), code=303)


@bp.route("/rounds/<int:round_pk>/teachers", methods=["POST"])
@staff_required
def add_round_teacher(round_pk: int):
    """Name a teacher who signs in by e-mail (the staff OpenID Connect sign-in, verified e-mail)."""
    return _round_change(round_pk, lambda db, actor: round_teachers.add_email_teacher(
        db, round_pk, email=request.form.get("email", ""), name=request.form.get("name"), actor=actor), "added")


@bp.route("/rounds/<int:round_pk>/teachers/<int:teacher_id>/remove", methods=["POST"])
@staff_required
def remove_round_teacher(round_pk: int, teacher_id: int):
    db = get_session()
    teacher = db.get(RoundTeacher, teacher_id)
    if teacher is None or teacher.round_pk != round_pk:
        abort(404)
    return _round_change(round_pk, lambda db, actor: round_teachers.remove_teacher(db, teacher_id, actor=actor),
                         "removed")


@bp.route("/rounds/<int:round_pk>/invitations", methods=["POST"])
@staff_required
def invite_round_teacher(round_pk: int):
    """An invitation link for a teacher who arrives from their own platform: shown once, on this answer only
    (only its hash is kept)."""
    db = get_session()
    if db.get(CourseRound, round_pk) is None:
        abort(404)
    days = request.form.get("days", "").strip()
    try:
        chosen = parse_whole_number(days, code="invalid", maximum=90) if days else round_teachers.INVITATION_DAYS
        if chosen < 1:
            raise DomainError("an invitation is valid for 1 to 90 days", code="invalid")
        teacher, token = round_teachers.invite(db, round_pk, name=request.form.get("name"),
                                               actor=session[SESSION_KEY]["name"], days=chosen)
    except DomainError as error:
        db.rollback()
        return _round_page(round_pk, status=error.status, error=str(error), error_code=error.code)
    db.commit()
    return _round_page(round_pk, invitation=round_teachers.invitation_url(settings().base_url, token),
                       invited=teacher)


@bp.route("/courses/<code>/school", methods=["POST"])
@staff_required
def set_providing_school(code: str):
    """The arts school that provides the course's teaching (empty clears it); back to the round it was set on."""
    db = get_session()
    back = request.form.get("round", "").strip()
    round_pk = parse_id(back, what="round") if back else None
    try:
        round_teachers.set_providing_school(db, code, request.form.get("school"), actor=session[SESSION_KEY]["name"])
    except DomainError as error:
        db.rollback()
        if round_pk is not None:
            return _round_page(round_pk, status=error.status, error=str(error), error_code=error.code)
        raise
    db.commit()
    if round_pk is not None:
        return redirect(url_for("staff.round_page", round_pk=round_pk, saved="school"), code=303)
    return redirect(url_for("staff.rounds"), code=303)


__all__ = ["bp", "DEPLOYMENT_ACTIVE"]
