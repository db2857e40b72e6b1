"""pylti1p3 tool configuration backed by the database: registrations as rows, the tool's key from
the key store. Used wherever the library talks to a platform's services (AGS, NRPS, deep linking)."""

from __future__ import annotations

from typing import Any

from pylti1p3.deployment import Deployment as LtiDeployment
from pylti1p3.registration import Registration as LtiRegistration
from pylti1p3.request import Request
from pylti1p3.tool_config.abstract import ToolConfAbstract
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..models import DEPLOYMENT_ACTIVE, REGISTRATION_ACTIVE, Deployment, Registration
from .keys import KeyStore


def to_lti_registration(row: Registration, keys: KeyStore) -> LtiRegistration:
    """Adapt a registration row to the library's Registration, signing with the tool's current key."""
    key = keys.current()
    registration = (LtiRegistration()
                    .set_issuer(row.issuer)
                    .set_client_id(row.client_id)
                    .set_auth_login_url(row.auth_login_url)
                    .set_auth_token_url(row.auth_token_url)
                    .set_key_set_url(row.jwks_url)
                    .set_tool_private_key(key.private_pem.decode("ascii"))
                    .set_tool_public_key(key.public_pem.decode("ascii")))
    if row.token_audience:
        registration.set_auth_audience(row.token_audience)
    return registration


class SqlToolConf(ToolConfAbstract[Request]):
    """Every issuer may have many client ids (Canvas, Blackboard, Schoology share one issuer)."""

    def __init__(self, session: Session, keys: KeyStore):
        self.session = session
        self.keys = keys

    def check_iss_has_one_client(self, iss: str) -> bool:
        return False

    def check_iss_has_many_clients(self, iss: str) -> bool:
        return True

    def _row(self, iss: str, client_id: str | None) -> Registration | None:
        """The one active registration (pending ones never act for a platform)."""
        query = select(Registration).where(Registration.issuer == iss, Registration.status == REGISTRATION_ACTIVE)
        if client_id:
            query = query.where(Registration.client_id == client_id)
        rows = self.session.scalars(query).all()
        return rows[0] if len(rows) == 1 else None

    # pylti1p3 declares these as returning a Registration, yet its callers (OIDCLogin, MessageLaunch) test the
    # answer for None, "not found", as this tool answers for an unknown or pending registration.
    def find_registration_by_issuer(self, iss: str, *args: Any,  # type: ignore[override]
                                    **kwargs: Any) -> LtiRegistration | None:
        row = self._row(iss, None)
        return to_lti_registration(row, self.keys) if row else None

    def find_registration_by_params(self, iss: str, client_id: str | None, *args: Any,  # type: ignore[override]
                                    **kwargs: Any) -> LtiRegistration | None:
        row = self._row(iss, client_id)
        return to_lti_registration(row, self.keys) if row else None

    def find_deployment(self, iss: str, deployment_id: str) -> LtiDeployment | None:
        return self.find_deployment_by_params(iss, deployment_id, None)

    def find_deployment_by_params(self, iss: str, deployment_id: str, client_id: str | None, *args: Any,
                                  **kwargs: Any) -> LtiDeployment | None:
        row = self._row(iss, client_id)
        if row is None:
            return None
        found = self.session.scalar(select(Deployment).where(
            Deployment.registration_id == row.id, Deployment.deployment_id == deployment_id,
            Deployment.status == DEPLOYMENT_ACTIVE))
        return LtiDeployment().set_deployment_id(deployment_id) if found else None
