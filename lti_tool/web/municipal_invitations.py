"""The municipal console's seat invitations (the second door, services.invitations): per order the invitations
open, redeemed, revoked and expired; issuing a batch (the codes and links shown once, with a CSV to send from the
arts school's own admin system); the list with the cross-check of each redeeming pupil's school; revoking an
unredeemed invitation; the order's open pool on or off. Registered on the console's blueprint, behind its one rule
(:func:`.municipal.console_required`): the launch's own municipality only. Every change is audited.

Loaded by ``create_app`` (``from .web import municipal_invitations``) before the blueprint is registered."""

from __future__ import annotations

import secrets
from datetime import date

from flask import Response, g, redirect, render_template, request
from flask_babel import get_locale
from sqlalchemy import select

from ..config import settings
from ..db import get_session
from ..domain.errors import DomainError
from ..domain.texts import pick_text
from ..models import Course, CourseRound, Order, SeatInvitation
from ..services import invitations
from ..services.errors import NotFoundError
from .errors import MESSAGES
from .forms import parse_id, parse_whole_number
from .launch_token import launch_url
from .municipal import bp, console_actor, console_required

# Refusals of the console's forms shown on the page again, the error inline.
_INLINE = frozenset({"invalid", "invitations_over_budget", "enrolment_closed", "course_retired", "course_not_offered",
                     "conflict"})


def _orders(session, municipality_id: str, locale: str) -> list[dict]:
    rows = session.execute(select(Order, CourseRound, Course).join(CourseRound, Order.round_pk == CourseRound.id)
                           .join(Course, Course.code == CourseRound.course_code)
                           .where(Order.municipality_id == municipality_id)
                           .order_by(Course.code, CourseRound.starts_on)).all()
    counts = invitations.order_counts(session, municipality_id)
    empty = invitations.Counts(0, 0, 0, 0)
    made = []
    for order, round_, course in rows:
        count = counts.get(order.id, empty)
        made.append({"order": order, "round": round_, "course": course, "title": pick_text(course.title, locale),
                     "counts": count, "free": max(order.seats_budget - order.seats_taken - count.open, 0),
                     "pool_url": invitations.pool_url(order.id) if order.open_pool else None})
    return made


def _page(session, launch, **context):
    locale = str(get_locale())
    order_id = context.pop("order_id", None)
    status = context.pop("status", None)
    listed = invitations.list_invitations(session, municipality_id=launch.municipality_id, order_id=order_id,
                                          status=status)
    return render_template("municipal/invitations.html", municipality=launch.municipality, launch=launch,
                           orders=_orders(session, launch.municipality_id, locale), invitations=listed,
                           status_of=invitations.status_of, last_day=invitations.last_day,
                           text=lambda value: pick_text(value, locale), chosen_order=order_id, chosen_status=status,
                           statuses=invitations.STATUSES, batch=secrets.token_urlsafe(12),
                           invitation_days=settings().invitation_days, **context)


def _inline_error(session, launch, error: DomainError, **context):
    session.rollback()
    return _page(session, launch, error_code=error.code, error_message=MESSAGES.get(error.code, error.detail),
                 **context), error.status


@bp.route("/invitations")
@console_required
def invitations_page():
    session, launch = get_session(), g.launch
    order_id = parse_id(request.args["order"], what="order") if request.args.get("order") else None
    status = request.args.get("status") or None
    if status is not None and status not in invitations.STATUSES:
        status = None
    return _page(session, launch, order_id=order_id, status=status, saved=request.args.get("saved") == "1",
                 revoked=request.args.get("revoked") == "1")


def _own_order(session, launch, raw: str | None) -> Order:
    order = session.get(Order, parse_id(raw, what="order"))
    if order is None or order.municipality_id != launch.municipality_id:
        raise NotFoundError("no such order of this municipality")
    return order


def _expiry(municipality_id: str, raw: str | None):
    """The form's last day (``YYYY-MM-DD``, the municipality's day), or None for the default."""
    text = (raw or "").strip()
    if not text:
        return None
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise DomainError(f"{text[:20]!r} is not a date", code="invalid") from None
    return invitations.end_of_local_day(municipality_id, day)


@bp.route("/invitations/issue", methods=["POST"])
@console_required
def issue_invitations():
    """Issue a batch for one of the municipality's orders; the codes and links are shown on this answer only."""
    session, launch = get_session(), g.launch
    try:
        order = _own_order(session, launch, request.form.get("order"))
        count = parse_whole_number(request.form.get("count"), code="invalid", maximum=invitations.MAX_PER_ISSUE)
        round_ = session.get(CourseRound, order.round_pk)
        issued = invitations.issue(session, municipality_id=launch.municipality_id, course_code=round_.course_code,
                                   round_id=round_.round_id, count=count,
                                   expires_at=_expiry(launch.municipality_id, request.form.get("expires")),
                                   created_by=console_actor(launch), label=request.form.get("label"),
                                   batch=request.form.get("batch"))
        session.commit()
    except DomainError as error:
        if error.code in _INLINE:
            return _inline_error(session, launch, error)
        raise
    locale = str(get_locale())
    course = session.get(Course, round_.course_code)
    response = Response(render_template(
        "municipal/invitations_issued.html", municipality=launch.municipality, launch=launch, issued=issued,
        round=round_, title=pick_text(course.title, locale), display_code=invitations.display_code,
        join_url=invitations.join_url, last_day=invitations.last_day(issued[0].invitation),
        join_page=settings().base_url.rstrip("/") + "/join"))
    response.headers["Cache-Control"] = "no-store"  # the codes are shown once: never kept by a cache
    return response


@bp.route("/invitations/download", methods=["POST"])
@console_required
def invitations_csv():
    """The codes just shown, posted back from that page, as CSV (they are never stored, so never shown again)."""
    session, launch = get_session(), g.launch
    codes = [code for code in request.form.getlist("code") if code.strip()][:invitations.MAX_PER_ISSUE]
    if not codes:
        raise DomainError("no codes to download", code="invalid")
    issued = invitations.issued_again(session, codes, municipality_id=launch.municipality_id)
    body = invitations.invitations_csv(issued, str(get_locale()))
    batch = issued[0].invitation.batch or "codes"
    return Response(body, content_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": f"attachment; filename=invitations-{launch.municipality_id}-{batch}.csv",
        "Cache-Control": "no-store"})


@bp.route("/invitations/<int:invitation_id>/revoke", methods=["POST"])
@console_required
def revoke_invitation(invitation_id: int):
    """First a page that asks to confirm; only the confirmed form revokes."""
    session, launch = get_session(), g.launch
    invitation = session.get(SeatInvitation, invitation_id)
    if invitation is None or invitation.municipality_id != launch.municipality_id:
        raise NotFoundError("no such invitation of this municipality")
    if request.form.get("confirm") != "yes":
        return render_template("municipal/invitation_revoke.html", municipality=launch.municipality, launch=launch,
                               invitation=invitation, title=pick_text(invitation.round.course.title,
                                                                      str(get_locale())),
                               last_day=invitations.last_day(invitation))
    try:
        invitations.revoke(session, invitation_id, actor=console_actor(launch), municipality_id=launch.municipality_id)
        session.commit()
    except DomainError as error:
        if error.code in _INLINE:
            return _inline_error(session, launch, error)
        raise
    return redirect(launch_url("municipal.invitations_page", revoked="1", order=invitation.order_id), code=303)


@bp.route("/orders/<int:order_id>/open-pool", methods=["POST"])
@console_required
def open_pool(order_id: int):
    """Switch an order's open pool on or off: pupils whose school the municipality owns claim a seat without a
    code after a school sign-in."""
    session, launch = get_session(), g.launch
    enabled = request.form.get("open_pool") == "on"
    invitations.set_open_pool(session, order_id, enabled, actor=console_actor(launch),
                              municipality_id=launch.municipality_id)
    session.commit()
    return redirect(launch_url("municipal.invitations_page", saved="1") + f"#order-{order_id}", code=303)
