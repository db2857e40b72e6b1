"""Placing courses into the platform: a teacher's or administrator's deep-linking launch shows the courses
their municipality has ordered; the picked ones go back as signed ``ltiResourceLink`` items."""

from __future__ import annotations

from flask import Blueprint, current_app, render_template, request
from flask_babel import get_locale
from sqlalchemy import select

from ..db import get_session
from ..domain.claims import ROLE_LEARNER
from ..domain.errors import DomainError
from ..domain.texts import pick_text
from ..lti import get_lti
from ..lti.deep_linking import RESOURCE_LINK, build_response, resource_link_item
from ..models import Assignment, Course, CourseModule, CourseRound, Deployment, Order, Registration
from .errors import render_domain_error
from .launch_token import current_launch

bp = Blueprint("deep_link", __name__, url_prefix="/deep-link")


def _launch():
    launch = current_launch()
    if launch.deep_linking is None:
        raise DomainError("not a deep-linking launch", code="forbidden", status=403)
    if launch.role == ROLE_LEARNER:
        raise DomainError("pupils cannot place courses", code="deep_linking_forbidden", status=403)
    return launch


def _offers(session, launch):
    """The municipality's orders with course, round, and seats left."""
    rows = session.execute(select(Order, CourseRound, Course).join(CourseRound, Order.round_pk == CourseRound.id)
                           .join(Course, Course.code == CourseRound.course_code)
                           .where(Order.municipality_id == launch.municipality_id, Course.status == "active",
                                  CourseRound.status.in_(["open", "running"]))
                           .order_by(Course.code, CourseRound.starts_on)).all()
    return [{"order": o, "round": r, "course": c, "left": max(0, o.seats_budget - o.seats_taken)} for o, r, c in rows]


@bp.route("/", methods=["GET", "POST"])
def pick():
    session = get_session()
    try:
        launch = _launch()
    except DomainError as error:
        return render_domain_error(error)
    settings = launch.deep_linking
    locale = str(get_locale())
    offers = _offers(session, launch)
    accepts = RESOURCE_LINK in (settings.get("accept_types") or [])
    if request.method == "GET" or not accepts:
        return render_template("deep_link/pick.html", launch=launch, municipality=launch.municipality, offers=offers,
                               accepts=accepts, multiple=bool(settings.get("accept_multiple")),
                               text=lambda v: pick_text(v, locale))
    chosen = {int(x) for x in request.form.getlist("order") if x.isdigit()}
    picked = [o for o in offers if o["order"].id in chosen]
    if not picked:
        return render_template("deep_link/pick.html", launch=launch, municipality=launch.municipality, offers=offers,
                               accepts=accepts, multiple=bool(settings.get("accept_multiple")), error=True,
                               text=lambda v: pick_text(v, locale)), 400
    if not settings.get("accept_multiple"):
        picked = picked[:1]
    with_line_items = settings.get("accept_lineitem", True) is not False
    items = []
    for offer in picked:
        course, round_ = offer["course"], offer["round"]
        title = pick_text(course.title, locale).text
        maximum = sum(float(a.max_score) for a in session.scalars(
            select(Assignment).join(CourseModule).where(CourseModule.course_code == course.code,
                                                        Assignment.current.is_(True))))
        items.append(resource_link_item(
            title=title, text=pick_text(course.summary, locale).text if course.summary else None,
            url=current_app.config["BASE_URL"] + "/lti/launch", course=course.code, round_id=round_.round_id,
            line_item={"label": title, "scoreMaximum": maximum or 100, "resourceId": course.code,
                       "tag": "kulturskola"} if with_line_items else None))
    registration = session.get(Registration, launch.registration_id)
    deployment = session.get(Deployment, launch.deployment_pk)
    token = build_response(get_lti().keys, client_id=registration.client_id, issuer=registration.issuer,
                           deployment_id=deployment.deployment_id, settings=settings, items=items)
    return render_template("lti/form_post.html", action=settings["deep_link_return_url"], fields={"JWT": token})
