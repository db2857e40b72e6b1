"""The national staff console (/staff): sign-in with OpenID Connect (or, with the sandbox on, a local
sign-in for development), registrations and deployments, orders and seats, course rounds with their teachers
and the providing arts school, costs, the grade outbox, the catalog sync history. Every change is written to
the audit log.

The same sign-in lets a round's teacher named by e-mail in: a signed-in person who is not staff but whose
verified e-mail is a round teacher's gets a teacher session (``session["teacher"]``, see web/teacher.py) and
their rounds, and nothing of this console."""

from __future__ import annotations

import secrets
from datetime import timedelta
from functools import wraps

from flask import (Blueprint, Response, abort, current_app, redirect, render_template, request, session,
                   url_for)
from flask_babel import gettext as _
from sqlalchemy import func, select

from ..clock import now
from ..config import settings
from ..db import get_session
from ..domain.errors import DomainError
from ..models import (COURSE_ACTIVE, DEPLOYMENT_ACTIVE, DEPLOYMENT_INACTIVE, DEPLOYMENT_PENDING, OUTBOX_DEAD,
                      OUTBOX_PENDING, REGISTRATION_PENDING, STATE_PATH_COOKIE, STATE_PATH_NEW_WINDOW,
                      STATE_PATH_STORAGE, AuditEntry, Course, CourseRound, Deployment, Municipality, Order, OutboxItem,
                      Registration, RoundTeacher)
from ..services import grades, round_teachers
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


@bp.route("/registrations")
@staff_required
def registrations():
    """Every registration; a pending re-registration beside the active registration it would replace, with
    what differs marked."""
    db = get_session()
    return render_template("staff/registrations.html", reviews=registration_service.reviews(db),
                           municipalities=db.scalars(select(Municipality).order_by(Municipality.id)).all())


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


@bp.route("/deployments/<int:deployment_pk>/bind", methods=["POST"])
@staff_required
def bind(deployment_pk: int):
    db = get_session()
    deployment = db.get(Deployment, deployment_pk) or abort(404)
    municipalities = request.form.getlist("municipality")
    try:
        platform_service.bind_deployment(db, deployment.registration, deployment.deployment_id, municipalities,
                                         (request.form.get("custom_param") or "").strip() or None)
    except (DomainError, ValueError) as error:
        db.rollback()
        return render_template("staff/message.html", message=str(error), back=url_for("staff.registrations")), 400
    audit("deployment.bind", f"deployment {deployment.deployment_id}", municipalities=sorted(municipalities),
          registration=deployment.registration_id)
    db.commit()
    return redirect(url_for("staff.registrations"))


@bp.route("/deployments/<int:deployment_pk>/deactivate", methods=["POST"])
@staff_required
def deactivate(deployment_pk: int):
    db = get_session()
    deployment = db.get(Deployment, deployment_pk) or abort(404)
    deployment.status = DEPLOYMENT_INACTIVE
    audit("deployment.deactivate", f"deployment {deployment.deployment_id}", registration=deployment.registration_id)
    db.commit()
    return redirect(url_for("staff.registrations"))


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
    db = get_session()
    rows = db.execute(select(Order, CourseRound, Municipality).join(CourseRound, Order.round_pk == CourseRound.id)
                      .join(Municipality, Order.municipality_id == Municipality.id)
                      .order_by(CourseRound.course_code, CourseRound.starts_on, Order.municipality_id)).all()
    return render_template("staff/orders.html", rows=rows)


@bp.route("/costs")
@staff_required
def costs():
    lines = seat_service.cost_report(get_session(), round_id=request.args.get("round") or None,
                                     municipality=request.args.get("municipality") or None)
    if request.args.get("format") == "csv":
        return Response(seat_service.cost_csv(lines), mimetype="text/csv; charset=utf-8",
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
    from catalog_sync.sync import history

    return render_template("staff/catalog.html", runs=history(get_session(), 30),
                           source=settings().catalog_source)


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


@bp.route("/audit")
@staff_required
def audit_log():
    """Every change, and every opening of a pupil's work (``?show=access``: only those)."""
    query = select(AuditEntry)
    access = request.args.get("show") == "access"
    if access:
        query = query.where(AuditEntry.action.startswith(ACCESS_ACTION_PREFIX))
    entries = get_session().scalars(query.order_by(AuditEntry.at.desc(), AuditEntry.id.desc()).limit(200))
    return render_template("staff/audit.html", entries=list(entries), access=access)


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
