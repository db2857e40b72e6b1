"""The municipal console: a platform administrator listed as the municipality's arts-school contact (or carrying
the platform's municipal administrator role, see services.municipal) opens the console of their own
municipality only: order courses for a round, set and change budgets (never below the seats taken), follow
seats taken, waiting lists and cost so far; follow their own pupils' progress (read-only)."""

from __future__ import annotations

import functools
from decimal import Decimal

from flask import Blueprint, Response, g, redirect, render_template, request
from flask_babel import get_locale
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select

from ..config import settings
from ..db import get_session
from ..domain.errors import DomainError
from ..domain.texts import pick_text
from ..models import (COURSE_ACTIVE, ROUND_OPEN, WAITING, AuditEntry, Course, CoursePrice, CourseRound, Launch, Order,
                      WaitlistEntry)
from ..services import municipal as access
from ..services import classroom_views, seats
from ..services.delivery import ForbiddenError, pupil_label
from .errors import MESSAGES
from .forms import parse_id, parse_whole_number
from .launch_token import launch_required, launch_url

bp = Blueprint("municipal", __name__, url_prefix="/municipal")


def _is_sandbox(registration) -> bool:
    if not settings().sandbox:
        return False
    from ..sandbox import is_sandbox_registration

    return is_sandbox_registration(registration)


def named_roles(launch: Launch) -> frozenset[str]:
    """The roles ``MUNICIPAL_ADMIN_ROLES`` names for the launch's platform."""
    return access.named_admin_roles(settings().municipal_admin_roles, launch.registration_id,
                                    sandbox=_is_sandbox(launch.registration))


def may_open_console(launch: Launch) -> bool:
    """For pages that link to the console: the same rule as :func:`console_required`."""
    return access.may_open_console(get_session(), launch, named_roles(launch))


def console_required(view):
    """:func:`launch_required`, for a launch that may open the console (``g.launch``); a request naming another
    municipality is refused."""

    @launch_required
    @functools.wraps(view)
    def wrapped(*args, **kwargs):
        launch = g.launch
        asked = request.values.get("municipality")
        if asked and asked.strip().upper() != launch.municipality_id:
            raise ForbiddenError(f"{launch.municipality_id} may not see {asked}")
        access.check_console_access(get_session(), launch, named_roles(launch))
        return view(*args, **kwargs)

    return wrapped


def _state(session, launch):
    locale = str(get_locale())
    municipality = launch.municipality
    rows = session.execute(select(Order, CourseRound, Course).join(CourseRound, Order.round_pk == CourseRound.id)
                           .join(Course, Course.code == CourseRound.course_code)
                           .where(Order.municipality_id == municipality.id)
                           .order_by(Course.code, CourseRound.starts_on)).all()
    waiting = dict(session.execute(select(WaitlistEntry.order_id, func.count()).where(
        WaitlistEntry.status == WAITING, WaitlistEntry.order_id.in_([o.id for o, _r, _c in rows]))
        .group_by(WaitlistEntry.order_id)).all())
    prices = {p.course_code: p for p in session.scalars(select(CoursePrice).where(
        CoursePrice.country == municipality.country))}
    orders = []
    totals: dict[str, Decimal] = {}
    for order, round_, course in rows:
        price = prices.get(course.code)
        cost = seats.order_cost(order, round_, price)
        if cost is not None:
            totals[price.currency] = totals.get(price.currency, Decimal(0)) + cost
        orders.append({"order": order, "round": round_, "course": course, "title": pick_text(course.title, locale),
                       "waiting": waiting.get(order.id, 0), "price": price, "cost": cost})
    ordered = {o.round_pk for o, _r, _c in rows}
    orderable = session.execute(select(CourseRound, Course).join(Course, Course.code == CourseRound.course_code)
                                .where(Course.status == COURSE_ACTIVE, CourseRound.status == ROUND_OPEN,
                                       CourseRound.id.not_in(ordered) if ordered else True)
                                .order_by(Course.code, CourseRound.starts_on)).all()
    return {"orders": orders, "totals": totals, "municipality": municipality, "launch": launch,
            "orderable": [{"round": r, "course": c, "title": pick_text(c.title, locale), "price": prices.get(c.code)}
                          for r, c in orderable]}


@bp.route("/")
@console_required
def console():
    return render_template("municipal/console.html", saved=request.args.get("saved") == "1",
                           **_state(get_session(), g.launch))


@bp.route("/progress")
@console_required
def progress():
    """The municipality's own pupils per course round, read-only: progress and latest feedback (what
    services.access lets a municipal contact follow)."""
    session, launch = get_session(), g.launch
    locale = str(get_locale())
    rounds = classroom_views.municipality_progress(session, launch.municipality_id,
                                                   keep_names=settings().roster_names)
    return render_template("municipal/progress.html", rounds=rounds, municipality=launch.municipality, launch=launch,
                           text=lambda value: pick_text(value, locale))


# The cost report's columns (services.seats.COST_COLUMNS) as the municipality's spreadsheet shows them.
COST_HEADER = (_l("Municipality"), _l("Course"), _l("Round"), _l("Seats taken"), _l("Price per seat"),
               _l("Cost so far"), _l("Currency"), _l("Seat budget"), _l("Committed (budget × price)"))


@bp.route("/costs.csv")
@console_required
def costs_csv():
    """The municipality's own cost report (the same columns as national staff's), in the page's language: ';'
    between fields and a decimal comma for a Swedish or Norwegian spreadsheet."""
    session, launch = get_session(), g.launch
    lines = seats.cost_report(session, municipality=launch.municipality_id)
    text = seats.cost_csv(lines, [str(name) for name in COST_HEADER],
                          decimal_comma=str(get_locale()) in ("sv", "nb", "nn"))
    return Response(text, mimetype="text/csv",  # werkzeug adds the one charset=utf-8
                    headers={"Content-Disposition": f"attachment; filename=costs-{launch.municipality_id}.csv"})


def console_actor(launch) -> str:
    """Who acts in the console, as the audit log names them."""
    return f"{launch.municipality_id} {launch.role} {pupil_label(launch.sub)}"


def _audit(session, launch, action, target, **details):
    session.add(AuditEntry(actor=console_actor(launch), action=action, target=target, details=details))


@bp.route("/orders", methods=["POST"])
@console_required
def save_order():
    """Order a round, or change an order's budget: always for the launch's own municipality."""
    session, launch = get_session(), g.launch
    try:
        round_ = session.get(CourseRound, parse_id(request.form.get("round"), what="round"))
        if round_ is None:
            raise DomainError("no such round", code="not_found", status=404)
        budget = parse_whole_number(request.form.get("seats"), code="budget_invalid")
        order = seats.set_order(session, launch.municipality_id, round_.course_code, round_.round_id, budget)
        _audit(session, launch, "order.set", f"{round_.course_code} {round_.round_id}", seats=budget,
               municipality=launch.municipality_id)
        session.commit()
    except DomainError as error:
        session.rollback()
        if error.code in ("budget_below_taken", "budget_invalid"):  # the console again, the error inline
            return render_template("municipal/console.html", error_code=error.code,
                                   error_message=MESSAGES.get(error.code, error.detail),
                                   **_state(session, g.launch)), error.status
        raise
    return redirect(launch_url("municipal.console", saved="1") + f"#order-{order.id}", code=303)
