"""The municipal console: a platform administrator listed as the municipality's arts-school contact (or carrying
the platform's municipal administrator role, see services.municipal) opens the console of their own
municipality only: order courses for a round, set and change budgets (never below the seats taken), follow
seats taken, waiting lists and cost so far; follow their own pupils' progress (read-only)."""

from __future__ import annotations

import functools
from decimal import Decimal

from flask import Blueprint, Response, g, redirect, render_template, request
from flask_babel import get_locale, gettext, ngettext
from flask_babel import lazy_gettext as _l
from ..config import settings
from ..db import get_session
from ..domain.errors import DomainError
from ..domain.texts import pick_text
from ..i18n import format_date
from ..models import AuditEntry, CourseRound, Launch
from ..services import municipal as access
from ..services import municipal as console_service
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


def round_name(round_: CourseRound) -> str:
    """A round as people name it: its term ("spring 2027"), as templates/school/_term.html writes it."""
    year = round_.starts_on.year
    return gettext("spring %(year)s", year=year) if round_.starts_on.month <= 6 else gettext("autumn %(year)s",
                                                                                            year=year)


def _row_name(line) -> dict[str, str]:
    """What names an order's row in a message: the course (page language), the round and its dates."""
    return {"course": str(pick_text(line.course.title, str(get_locale()))), "round": round_name(line.round),
            "dates": f"{format_date(line.round.starts_on)} – {format_date(line.round.ends_on)}"}


def _state(session, launch):
    locale = str(get_locale())
    municipality = launch.municipality
    today = seats.municipal_today(municipality.id)
    lines = console_service.order_lines(session, municipality, today)
    prices = console_service.country_prices(session, municipality.country)
    totals: dict[str, Decimal] = {}
    for line in lines:
        if line.cost is not None and line.price is not None:
            totals[line.price.currency] = totals.get(line.price.currency, Decimal(0)) + line.cost
    return {"orders": lines, "totals": totals, "municipality": municipality, "launch": launch,
            "years": console_service.yearly_totals(lines), "charts": console_service.course_charts(lines),
            "text": lambda value: pick_text(value, locale), "round_name": round_name,
            "orderable": [{"round": r, "course": c, "title": pick_text(c.title, locale), "price": prices.get(c.code)}
                          for r, c in console_service.orderable_rounds(session, municipality, today)]}


@bp.route("/")
@console_required
def console():
    """The orders with seats, waiting lists and costs, the totals per year and course, and a chart per course of
    seats taken against budget. ``?saved=<order>``: that order's row says it was saved."""
    state = _state(get_session(), g.launch)
    saved_id = request.args.get("saved", "")
    saved = next((line for line in state["orders"] if str(line.order.id) == saved_id), None)
    return render_template("municipal/console.html", saved=saved,
                           saved_name=_row_name(saved) if saved is not None else None, **state)


@bp.route("/progress")
@console_required
def progress():
    """The municipality's own pupils per course round, read-only: progress and latest feedback (what
    services.access lets a municipal contact follow)."""
    session, launch = get_session(), g.launch
    locale = str(get_locale())
    rounds = classroom_views.municipality_progress(session, launch.municipality_id,
                                                   keep_names=settings().roster_names,
                                                   launch_names=settings().launch_names)
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


# Refusals of the order form shown on the console itself, on the row they are about (anything else, such as a
# forbidden launch, is the error page).
ROW_REFUSALS = ("budget_below_taken", "budget_invalid", "enrolment_closed", "round_closed", "course_retired")


def _refusal_reason(error: DomainError, line, round_: CourseRound) -> str:
    """Why a row's change was refused, in the console's words."""
    if error.code == "budget_below_taken" and line is not None:
        return ngettext("The seat budget cannot be lower than the %(num)s seat already taken.",
                        "The seat budget cannot be lower than the %(num)s seats already taken.",
                        line.order.seats_taken)
    if error.code == "budget_invalid":
        return gettext("The seat budget must be a whole number, 0 or more.")
    if error.code == "enrolment_closed" and line is None:
        return gettext("Enrolment for this round closed on %(date)s, so it can no longer be ordered.",
                       date=format_date(round_.enrolment_closes_on))
    if error.code == "enrolment_closed":
        return gettext("Enrolment for this round is closed and its last day to leave was %(date)s, so its seat "
                       "budget can no longer be changed.",
                       date=format_date(max(round_.enrolment_closes_on, round_.withdrawal_deadline)))
    if error.code == "round_closed":
        return gettext("This round is cancelled or no longer offered, so its seat budget can no longer be changed.")
    if error.code == "course_retired":
        return gettext("This course is no longer offered, so it cannot be ordered.")
    return str(MESSAGES.get(error.code, error.detail))


@bp.route("/orders", methods=["POST"])
@console_required
def save_order():
    """Order a round, or change an order's budget: always for the launch's own municipality. A refusal shows the
    console again with the message naming the course and round, on that row, with the number as it was typed."""
    session, launch = get_session(), g.launch
    round_ = session.get(CourseRound, parse_id(request.form.get("round"), what="round"))
    if round_ is None:
        raise DomainError("no such round", code="not_found", status=404)
    typed = request.form.get("seats", "")
    try:
        budget = parse_whole_number(typed, code="budget_invalid")
        order = console_service.save_order(session, launch.municipality_id, round_.id, budget,
                                   seats.municipal_today(launch.municipality_id))
        _audit(session, launch, "order.set", f"{round_.course_code} {round_.round_id}", seats=budget,
               municipality=launch.municipality_id)
        session.commit()
    except DomainError as error:
        session.rollback()
        if error.code not in ROW_REFUSALS:
            raise
        state = _state(session, g.launch)
        line = next((item for item in state["orders"] if item.round.id == round_.id), None)
        name = _row_name(line) if line is not None else {
            "course": str(pick_text(round_.course.title, str(get_locale()))), "round": round_name(round_),
            "dates": f"{format_date(round_.starts_on)} – {format_date(round_.ends_on)}"}
        refusal = {"code": error.code, "round": round_.id, "order": line.order.id if line is not None else None,
                   "typed": typed[:40], "reason": _refusal_reason(error, line, round_), "name": name}
        return render_template("municipal/console.html", error_code=error.code, refusal=refusal,
                               **state), error.status
    return redirect(launch_url("municipal.console", saved=order.id) + f"#order-{order.id}", code=303)
