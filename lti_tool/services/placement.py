"""Placing courses into the platform (deep linking): who may place, which courses a municipality may place
(its orders of active courses in open or running rounds, with the seats left), and the signed answer that
carries the picked ones back as ``ltiResourceLink`` items, each with its gradebook column (whose maximum is
the course total's, :func:`services.grades.course_maximum`). Never commits."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..domain.claims import may_place_courses
from ..domain.errors import DomainError
from ..domain.texts import pick_text
from ..lti.deep_linking import RESOURCE_LINK, CourseLink, build_response, resource_link_item
from ..lti.keys import KeyStore
from ..lti.tool_config import DatabaseToolConf
from ..models import (COURSE_ACTIVE, ROUND_OPEN, ROUND_RUNNING, Course, CourseRound, Deployment, Launch, Order,
                      Registration)
from .grades import course_maximum

COLUMN_TAG = "kulturskola"


def check_may_place(launch: Launch) -> None:
    """A deep-linking launch of a teacher or an administrator; a pupil never places courses."""
    if launch.deep_linking is None:
        raise DomainError("not a deep-linking launch", code="forbidden", status=403)
    if not may_place_courses(launch.role):
        raise DomainError("pupils cannot place courses", code="deep_linking_forbidden", status=403)


def accepts_resource_links(settings: dict) -> bool:
    """Does the platform take the items the tool places (``ltiResourceLink``)?"""
    return RESOURCE_LINK in (settings.get("accept_types") or [])


@dataclass(frozen=True)
class Offer:
    """A course the municipality may place: its order, round, course, and the seats left in the order."""

    order: Order
    round: CourseRound
    course: Course
    left: int


def list_offers(session: Session, municipality_id: str) -> list[Offer]:
    """The municipality's orders with course, round, and seats left."""
    rows = session.execute(select(Order, CourseRound, Course).join(CourseRound, Order.round_pk == CourseRound.id)
                           .join(Course, Course.code == CourseRound.course_code)
                           .where(Order.municipality_id == municipality_id, Course.status == COURSE_ACTIVE,
                                  CourseRound.status.in_([ROUND_OPEN, ROUND_RUNNING]))
                           .order_by(Course.code, CourseRound.starts_on)).all()
    return [Offer(o, r, c, max(0, o.seats_budget - o.seats_taken)) for o, r, c in rows]


def pick_offers(offers: list[Offer], chosen: Collection[int], settings: dict) -> list[Offer]:
    """The offers whose orders were picked; only the first when the platform takes one item."""
    picked = [offer for offer in offers if offer.order.id in chosen]
    return picked if settings.get("accept_multiple") else picked[:1]


def placement_items(session: Session, picked: list[Offer], settings: dict, *, locale: str,
                    launch_url: str) -> list[CourseLink]:
    """The ``ltiResourceLink`` items for the picked offers: title and summary in the page's language, the
    course and round as custom parameters, and (unless the platform declines) a gradebook column for the
    course total."""
    with_line_items = settings.get("accept_lineitem", True) is not False
    items = []
    for offer in picked:
        course, round_ = offer.course, offer.round
        title = pick_text(course.title, locale).text
        items.append(resource_link_item(
            title=title, text=pick_text(course.summary, locale).text if course.summary else None,
            url=launch_url, course=course.code, round_id=round_.round_id,
            line_item={"label": title, "scoreMaximum": float(course_maximum(session, course.code)),
                       "resourceId": course.code, "tag": COLUMN_TAG} if with_line_items else None))
    return items


def placement_response(session: Session, keys: KeyStore, launch: Launch, items: list[CourseLink]) -> str:
    """The signed ``LtiDeepLinkingResponse`` (a JWT) for the launch's platform and deployment."""
    registration = session.get(Registration, launch.registration_id)
    deployment = session.get(Deployment, launch.deployment_pk)
    return build_response(DatabaseToolConf(session, keys).registration(registration),
                          deployment_id=deployment.deployment_id, settings=launch.deep_linking, items=items)
