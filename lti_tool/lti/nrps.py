"""Names and Role Provisioning Services on pylti1p3: a course's memberships, page by page.

``NamesRoles`` is the library's ``NamesRolesProvisioningService`` over a
``service_connector.DatabaseServiceConnector`` (made by ``ags.ServiceClient.names_roles``); the roster service
(``services.roster``) follows the pages and keeps the differences link for the next sync.

Overrides of the library (name: what, why):

- ``NamesRoles.members_page`` (added): one page's body as the platform sent it and every Link relation
  (``next``, ``differences``, as ``requests`` reads them from the answer), URLs exactly as given: the
  library's ``get_members_page`` keeps only ``next``, and takes an answer without a members array for an
  empty roster (the tool refuses it: a roster read as empty would withdraw every pupil).
"""

from __future__ import annotations

from typing import Any

from pylti1p3.names_roles import NamesRolesProvisioningService
from .service_connector import ANSWER_KEPT, DatabaseServiceConnector, ServiceError


class NamesRoles(NamesRolesProvisioningService):
    """The library's NRPS for one course's memberships URL."""

    def __init__(self, connector: DatabaseServiceConnector, memberships_url: str) -> None:
        super().__init__(connector, {"context_memberships_url": memberships_url})
        self.connector = connector

    def members_page(self, url: str) -> tuple[Any, dict[str, str]]:
        """One page of the roster (``url``: the memberships URL, a ``next`` or a ``differences`` link), its
        JSON as sent, and its Link relations."""
        page = self.get_nrps_data(url)
        response = self.connector.http.last_response  # the page's answer
        assert response is not None
        if page["body"] is None or isinstance(page["body"], str):  # the connector's text of an answer not JSON
            raise ServiceError("roster is not JSON", response.status_code, response.text[:ANSWER_KEPT])
        return page["body"], {rel: link["url"] for rel, link in response.links.items() if "url" in link}
