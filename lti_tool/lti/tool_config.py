"""pylti1p3's tool configuration on the database: registrations and deployments are rows.

``DatabaseToolConf`` is the ``ToolConfAbstract`` the library's ``OIDCLogin``, ``MessageLaunch``,
``ServiceConnector`` and ``DeepLink`` read: it answers with a :class:`ToolRegistration`, pylti1p3's
``Registration`` filled from a ``registrations`` row and the tool's current signing key. Only active
registrations route a login or a launch (a dynamic registration waits for national staff); an issuer with
several active client ids needs the client id (or the registration's own login URL) to choose.
"""

from __future__ import annotations

from typing import Any

from pylti1p3.deployment import Deployment as LibraryDeployment
from pylti1p3.registration import Registration as LibraryRegistration
from pylti1p3.tool_config.abstract import ToolConfAbstract
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..domain.errors import LaunchError
from ..models import REGISTRATION_ACTIVE, REGISTRATION_KIND_LTI, Deployment, Registration
from .keys import KeyStore, ToolKey


class ToolRegistration(LibraryRegistration):
    """A registration as pylti1p3 sees it, with the row it came from (``row``) for everything the library
    does not model (its id, status, product)."""

    row: Registration
    _key: ToolKey | None

    @classmethod
    def of(cls, row: Registration, key: ToolKey | None = None) -> "ToolRegistration":
        """``key``: the tool's signing key, for what the tool signs (service tokens, deep-linking responses);
        a login or a launch needs none."""
        registration = cls()
        registration.row = registration_row = row
        registration._key = key
        registration.set_issuer(registration_row.issuer)
        registration.set_client_id(registration_row.client_id)
        registration.set_auth_login_url(registration_row.auth_login_url)
        registration.set_auth_token_url(registration_row.auth_token_url)
        registration.set_key_set_url(registration_row.jwks_url)
        if registration_row.token_audience:
            registration.set_auth_audience(registration_row.token_audience)
        if key is not None:
            registration.set_tool_private_key(key.private_pem.decode("ascii"))
        return registration

    @property
    def id(self) -> int:
        return self.row.id

    def get_tool_public_key(self) -> str | None:
        """Derived when asked: loading the key takes ~50 ms, and a service call signs with the private key only."""
        return self._key.public_pem.decode("ascii") if self._key is not None else None

    def get_kid(self) -> str | None:
        """The kid the tool publishes in its JWKS (the library would derive another from the key)."""
        return self._key.kid if self._key is not None else None

    def get_jwks(self) -> list[Any]:
        return [self._key.public_jwk()] if self._key is not None else []


def require_active(registration: Registration) -> Registration:
    """Only an active registration takes part in a login or a launch."""
    if registration.status != REGISTRATION_ACTIVE:
        raise LaunchError(f"registration {registration.id} waits for approval", code="registration_pending",
                          status=403)
    return registration


class DatabaseToolConf(ToolConfAbstract[Any]):
    """Registrations and deployments read through the caller's session (inside its transaction). Every issuer
    may have many client ids: the library asks ``find_registration_by_params``."""

    def __init__(self, session: Session, keys: KeyStore | None = None):
        self.session = session
        self.keys = keys
        self.issuers_relation_types = _ManyClientsPerIssuer()

    def registration(self, row: Registration) -> ToolRegistration:
        return ToolRegistration.of(row, self.keys.current() if self.keys is not None else None)

    def registration_by_id(self, registration_id: int) -> ToolRegistration:
        row = self.session.get(Registration, registration_id)
        if row is None:
            raise LaunchError(f"registration {registration_id} removed", code="registration_unknown")
        return self.registration(row)

    def find_registration_by_issuer(self, iss: str, *args: Any, **kwargs: Any) -> ToolRegistration:
        return self.find_registration_by_params(iss, "", *args, **kwargs)

    def find_registration_by_params(self, iss: str, client_id: str, *args: Any, **kwargs: Any) -> ToolRegistration:
        """The registration of ``iss`` (and ``client_id`` when given). Pending ones never route, nor make
        an issuer's logins ambiguous; a pending one alone is refused as pending."""
        query = select(Registration).where(Registration.issuer == iss, Registration.kind == REGISTRATION_KIND_LTI)
        if client_id:
            query = query.where(Registration.client_id == client_id)
        candidates = self.session.scalars(query).all()
        if not candidates:
            raise LaunchError(f"no registration for iss={iss!r} client_id={client_id!r}",
                              code="registration_unknown")
        active = [row for row in candidates if row.status == REGISTRATION_ACTIVE]
        if len(active) > 1:
            raise LaunchError(f"iss={iss!r} has several registrations; the login needs client_id or the "
                              f"registration-specific login URL", code="registration_ambiguous")
        return self.registration(require_active(active[0] if active else candidates[0]))

    def find_deployment(self, iss: str, deployment_id: str) -> LibraryDeployment | None:
        return self.find_deployment_by_params(iss, deployment_id, "")

    def find_deployment_by_params(self, iss: str, deployment_id: str, client_id: str, *args: Any,
                                  **kwargs: Any) -> LibraryDeployment | None:
        """A deployment the tool knows (in any status: whether it serves is the admission's decision)."""
        query = (select(Deployment.deployment_id).join(Registration)
                 .where(Registration.issuer == iss, Deployment.deployment_id == deployment_id))
        if client_id:
            query = query.where(Registration.client_id == client_id)
        found = self.session.scalar(query.limit(1))
        return None if found is None else LibraryDeployment().set_deployment_id(found)


class _ManyClientsPerIssuer(dict[str, str]):
    """Every issuer may have several client ids (the library's "one-issuer-many-client-ids")."""

    def get(self, key: str, default: Any = None) -> str:
        return "one-issuer-many-client-ids"
