"""What a pupil (or a teacher, or an administrator) sees after a launch."""

from __future__ import annotations

from datetime import date

from flask import Blueprint, redirect, render_template, request, url_for
from flask_babel import get_locale
from sqlalchemy import select

from ..db import get_session
from ..domain.errors import DomainError
from ..domain.seats import can_withdraw
from ..domain.texts import pick_text
from ..models import SEAT_ACTIVE, Course, CourseRound, Municipality, Order, Seat
from ..services import seats
from .errors import render_domain_error
from .launch_token import current_launch, read_waitlist_token

bp = Blueprint("pupil", __name__)


def _seat_for(session, launch, course_code: str):
    return session.execute(
        select(Seat, CourseRound).join(CourseRound, Seat.round_pk == CourseRound.id)
        .where(CourseRound.course_code == course_code, Seat.registration_id == launch.registration_id,
               Seat.sub == launch.sub, Seat.status == SEAT_ACTIVE)
        .order_by(CourseRound.starts_on)).first()


@bp.route("/home")
def home():
    try:
        launch = current_launch()
    except DomainError as error:
        return render_domain_error(error)
    session = get_session()
    locale = str(get_locale())
    course_code = launch.custom.get("course")
    course = session.get(Course, course_code) if course_code else None
    seat = round_ = None
    if course is not None:
        found = _seat_for(session, launch, course.code)
        if found:
            seat, round_ = found
    return render_template(
        "pupil/home.html", launch=launch, municipality=launch.municipality, course=course, course_code=course_code,
        title=pick_text(course.title, locale) if course else None,
        summary=pick_text(course.summary, locale) if course else None,
        seat=seat, round=round_, from_waitlist=seat is not None and seats.seat_from_waitlist(session, seat),
        may_withdraw=round_ is not None and can_withdraw(round_.status, round_.withdrawal_deadline, date.today()),
        token=request.args.get("lt", ""), withdrawn=request.args.get("withdrawn") == "1")


@bp.route("/withdraw", methods=["POST"])
def withdraw():
    """The pupil leaves the round (before the withdrawal deadline): the seat goes to the first waiting pupil."""
    try:
        launch = current_launch()
        round_pk = int(request.form.get("round", "0"))
        seats.withdraw(get_session(), round_pk=round_pk, registration_id=launch.registration_id, sub=launch.sub)
    except (DomainError, ValueError) as error:
        get_session().rollback()
        return render_domain_error(error if isinstance(error, DomainError) else DomainError(str(error)))
    get_session().commit()
    return redirect(url_for("pupil.home", lt=request.form.get("lt"), withdrawn="1"), code=303)


@bp.route("/waitlist", methods=["POST"])
def join_waitlist():
    try:
        offer = read_waitlist_token(request.form.get("wt", ""))
        session = get_session()
        entry, place = seats.join_waitlist(session, order_id=int(offer["o"]), registration_id=int(offer["r"]),
                                           sub=str(offer["s"]))
        session.commit()
    except DomainError as error:
        return render_domain_error(error)
    order = session.get(Order, entry.order_id)
    round_ = session.get(CourseRound, order.round_pk)
    course = session.get(Course, round_.course_code)
    return render_template("pupil/waitlist.html", place=place, entry=entry, round=round_,
                           title=pick_text(course.title, str(get_locale())),
                           municipality=session.get(Municipality, order.municipality_id))
