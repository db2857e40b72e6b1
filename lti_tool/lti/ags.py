"""Assignment and Grade Services on pylti1p3, and ``ServiceClient``: the tool's entry point to a platform's
services (AGS here, NRPS in ``nrps``) through ``service_connector.DatabaseServiceConnector``.

``ServiceClient(keys, timeout=..., policy=...)`` holds the guarded session; per database session and
registration it makes the library's connector (``connector``), and on it the library's services
(``assignments_grades``, ``names_roles``). Every failure is a ``ServiceError``.

Overrides of the library (name: what, why):

- ``AssignmentsGrades._add_url_path_ending``: ``<line item>/scores`` by URL parsing (``scores_url``): the
  library cuts the URL at every ``?`` and drops a query's second ``?`` and all after it.
- ``AssignmentsGrades.find_lineitem_of_link`` (added): the column of a resourceId and a resourceLinkId, asked of
  the platform with both as filters and taken from its first page only when it is the placement's: the
  library's ``find_lineitem*`` filter nothing on the platform and read every page; a platform that ignores the
  filter may list another placement's column of the same assignment.
- ``AssignmentsGrades.create_lineitem``: an answer without an id (or not a line item) is a ``ServiceError``
  with the platform's answer, where the library returns a line item without id (or raises ``LtiException``);
  so is a line-item scope no longer granted (a dead letter, as for a context without a line-item service).
- ``AssignmentsGrades.post_score`` (added): ``put_grade`` of an outbox score (a dict, made the library's
  ``Grade`` by ``grade_of``) answering the platform's response, whose status and text the outbox keeps (the
  library returns the parsed body only).
"""

from __future__ import annotations

import typing as t
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from pylti1p3.assignments_grades import AssignmentsGradesService, TAssignmentsGradersData
from pylti1p3.exception import LtiException
from pylti1p3.grade import Grade
from pylti1p3.lineitem import LineItem
from sqlalchemy import select
from sqlalchemy.orm import Session

from .. import outbound
from ..models import Registration
from .keys import KeyStore
from .nrps import NamesRoles
from .service_connector import ANSWER_KEPT, DatabaseServiceConnector, ServiceError, ServiceSession
from .tool_config import ToolRegistration

__all__ = ["AssignmentsGrades", "ServiceClient", "ServiceError", "grade_of", "lookup_registration", "scores_url",
           "with_query"]


def with_query(url: str, **params: str) -> str:
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True) + list(params.items())
    return urlunsplit(parts._replace(query=urlencode(query)))


_GRADE_FIELDS: dict[str, Callable[[Grade, Any], Grade]] = {
    "userId": Grade.set_user_id, "scoreGiven": Grade.set_score_given, "scoreMaximum": Grade.set_score_maximum,
    "activityProgress": Grade.set_activity_progress, "gradingProgress": Grade.set_grading_progress,
    "timestamp": Grade.set_timestamp, "comment": Grade.set_comment}
_SUBMISSION_FIELDS: dict[str, Callable[[Grade, Any], Grade]] = {
    "startedAt": Grade.set_started_at, "submittedAt": Grade.set_submitted_at}


def grade_of(score: Mapping[str, Any]) -> Grade:
    """An outbox score as the library's ``Grade``; what it does not model goes as extra claims."""
    grade, extra = Grade(), {}
    for name, value in score.items():
        submission = value if name == "submission" and isinstance(value, Mapping) else None
        if name in _GRADE_FIELDS and value is not None:
            _GRADE_FIELDS[name](grade, value)
        elif submission is not None and set(submission) <= set(_SUBMISSION_FIELDS):
            for field, moment in submission.items():
                if moment is not None:
                    _SUBMISSION_FIELDS[field](grade, moment)
        elif value is not None:
            extra[name] = value
    if extra:
        grade.set_extra_claims(extra)
    return grade


class AssignmentsGrades(AssignmentsGradesService):
    """The library's AGS for one context (its line-item container and the scopes of its token)."""

    def __init__(self, connector: DatabaseServiceConnector, service_data: TAssignmentsGradersData) -> None:
        super().__init__(connector, service_data)
        self.connector = connector

    @staticmethod
    def _add_url_path_ending(url: str, url_path_ending: str) -> str:
        """By URL parsing, the query kept whole: the library splits at every ``?``."""
        parts = urlsplit(url)
        return urlunsplit(parts._replace(path=f"{parts.path.rstrip('/')}/{url_path_ending}"))

    def _no_lineitem_scope(self) -> ServiceError:
        return ServiceError("the platform no longer grants the line-item scope for the context", status=400,
                            body="no line item")

    def _unusable(self, message: str) -> ServiceError:
        response = self.connector.http.last_response
        return ServiceError(message, response.status_code if response is not None else None,
                            response.text[:ANSWER_KEPT] if response is not None else "")

    def find_lineitem_of_link(self, resource_id: str, resource_link_id: str | None = None) -> str | None:
        """The id of a column with this resourceId (and, when given, this resourceLinkId: a platform that
        ignores the filter may list another placement's column, or an unattached one, of the same assignment:
        never taken). Filtered by the platform, first page only."""
        if not self.can_read_lineitem():
            raise self._no_lineitem_scope()
        params = {"resource_id": resource_id}
        if resource_link_id:
            params["resource_link_id"] = resource_link_id
        try:
            items, _next = self.get_lineitems_page(with_query(self._service_data["lineitems"], **params))
        except LtiException:  # an answer that is not a list of columns: none found
            return None
        for item in items:
            if not (isinstance(item, dict) and item.get("resourceId") == resource_id and item.get("id")):
                continue
            if resource_link_id and item.get("resourceLinkId") != resource_link_id:
                continue
            return str(item["id"])
        return None

    def create_lineitem(self, new_lineitem: LineItem) -> LineItem:
        """The library's; an answer without an id is a ``ServiceError`` with the answer."""
        if not self.can_create_lineitem():
            raise self._no_lineitem_scope()
        try:
            created = super().create_lineitem(new_lineitem)
        except LtiException as exc:  # an answer that is not a line item
            raise self._unusable("line item created without an id") from exc
        if not created.get_id():
            raise self._unusable("line item created without an id")
        return created

    def post_score(self, lineitem_url: str, score: Mapping[str, Any]) -> outbound.Response:
        """``put_grade`` of an outbox score to the column ``lineitem_url``; the platform's response."""
        try:
            grade = grade_of(score)
        except LtiException as exc:  # a score the library does not accept (a negative one)
            raise ServiceError(f"score not sent: {exc}", status=400, body=str(exc)) from exc
        self.put_grade(grade, LineItem({"id": lineitem_url}))
        response = self.connector.http.last_response
        assert response is not None  # put_grade made the request
        return response


def scores_url(lineitem_url: str) -> str:
    """``<lineitem>/scores``, a query string of the line-item URL kept."""
    return AssignmentsGrades._add_url_path_ending(lineitem_url, "scores")


@dataclass
class ServiceClient:
    """Calls the platforms' services through the outbound guard: ``policy`` is the app's
    (``get_lti().outbound``); without one, ``outbound.STRICT``. ``http`` (made when not given) is its guarded
    session; like any ``requests`` session, one thread at a time."""

    keys: KeyStore
    timeout: float = 10.0
    http: ServiceSession | None = None
    policy: outbound.OutboundPolicy | None = None

    def __post_init__(self) -> None:
        if self.http is None:
            self.http = ServiceSession(self.policy, timeout=self.timeout)

    def connector(self, session: Session, registration: Registration) -> DatabaseServiceConnector:
        """The library's connector for ``registration``, its tokens in ``session``."""
        assert self.http is not None  # made in __post_init__
        return DatabaseServiceConnector(session, ToolRegistration.of(registration, self.keys.current()), self.http)

    @staticmethod
    def assignments_grades(connector: DatabaseServiceConnector, scopes: t.Sequence[str],
                           lineitems_url: str | None = None) -> AssignmentsGrades:
        """AGS for a context: its token asks for exactly ``scopes``."""
        data: dict[str, Any] = {"scope": list(scopes)}
        if lineitems_url:
            data["lineitems"] = lineitems_url
        return AssignmentsGrades(connector, t.cast(TAssignmentsGradersData, data))

    @staticmethod
    def names_roles(connector: DatabaseServiceConnector, memberships_url: str) -> NamesRoles:
        return NamesRoles(connector, memberships_url)


def lookup_registration(session: Session, registration_id: int) -> Registration:
    registration = session.scalar(select(Registration).where(Registration.id == registration_id))
    if registration is None:
        raise ServiceError(f"registration {registration_id} removed")
    return registration
