"""Deep Linking 2.0 response on pylti1p3 (``DeepLink``, ``DeepLinkResource``, ``LineItem``): the courses a
teacher or administrator picked, as signed content items.

Overrides, each where the library falls short:
- ``CourseLink.to_dict``: the item's ``text`` (the course summary the platform shows), which the library's
  resource has no field for; ``custom`` stays inside the item (Schoology reads it only there);
- ``CourseDeepLink.get_message_jwt``: the request's ``data`` echoed only when the platform sent one (the
  library sends ``null``, which some platforms refuse), and an optional ``msg``.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence, cast

from pylti1p3.deep_link import DeepLink
from pylti1p3.deep_link_resource import DeepLinkResource
from pylti1p3.lineitem import LineItem

from .tool_config import ToolRegistration

CLAIM_DATA = "https://purl.imsglobal.org/spec/lti-dl/claim/data"
CLAIM_MSG = "https://purl.imsglobal.org/spec/lti-dl/claim/msg"
RESOURCE_LINK = "ltiResourceLink"


class CourseLink(DeepLinkResource):
    """An ``ltiResourceLink`` with a ``text``."""

    _text: str | None = None

    def set_text(self, value: str | None) -> "CourseLink":
        self._text = value
        return self

    def to_dict(self) -> dict[str, object]:
        item = super().to_dict()
        if self._text:
            item["text"] = self._text
        return item


def resource_link_item(*, title: str, text: str | None, url: str, course: str, round_id: str,
                       line_item: Mapping[str, Any] | None) -> CourseLink:
    """A course round as an item; ``line_item`` (label, scoreMaximum, resourceId, tag) asks the platform for a
    gradebook column."""
    link = CourseLink()
    link.set_title(title).set_url(url).set_custom_params({"course": course, "round": round_id})
    link.set_text(text)
    if line_item:
        column = LineItem().set_score_maximum(line_item["scoreMaximum"])
        for name, setter in (("label", column.set_label), ("resourceId", column.set_resource_id),
                             ("tag", column.set_tag)):
            if line_item.get(name):
                setter(str(line_item[name]))
        link.set_lineitem(column)
    return link


class CourseDeepLink(DeepLink):
    def __init__(self, registration: ToolRegistration, deployment_id: str, settings: Mapping[str, Any],
                 message: str | None = None):
        super().__init__(registration, deployment_id, cast(Any, dict(settings)))
        self.message = message

    def get_message_jwt(self, resources: Sequence[DeepLinkResource]) -> dict[str, object]:
        claims = super().get_message_jwt(resources)
        if "data" not in self._deep_link_settings:
            claims.pop(CLAIM_DATA, None)
        if self.message:
            claims[CLAIM_MSG] = self.message
        return claims


def build_response(registration: ToolRegistration, *, deployment_id: str, settings: Mapping[str, Any],
                   items: Sequence[DeepLinkResource], message: str | None = None) -> str:
    """The signed ``LtiDeepLinkingResponse`` (a JWT) with the tool's current key."""
    return CourseDeepLink(registration, deployment_id, settings, message).get_response_jwt(list(items))
