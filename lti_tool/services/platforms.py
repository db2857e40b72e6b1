"""Platform registrations (issuer + client id) entered by national staff, and their deployments: add, get,
find, list, remove; bind a deployment to its municipalities (and see first what a binding would change), set
its status. Dynamic registration's approval is ``registrations``."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..domain.errors import DomainError
from ..domain.resolution import parse_municipality_id
from ..models import (DEPLOYMENT_ACTIVE, REGISTRATION_ACTIVE, REGISTRATION_KIND_LTI, Deployment,
                      DeploymentMunicipality, Municipality, Registration)
from .errors import ConflictError, NotFoundError


def add_registration(session: Session, *, name: str, issuer: str, client_id: str, auth_login_url: str,
                     auth_token_url: str, jwks_url: str, token_audience: str | None = None) -> Registration:
    """An active registration entered by national staff. A pending dynamic registration with the same issuer
    and client id does not stand in the way: it becomes a proposed replacement of this one."""
    if session.scalar(select(Registration).where(Registration.issuer == issuer, Registration.client_id == client_id,
                                                 Registration.status == REGISTRATION_ACTIVE)):
        raise ConflictError(f"a registration for issuer {issuer} and client id {client_id} exists already")
    registration = Registration(name=name, issuer=issuer, client_id=client_id, auth_login_url=auth_login_url,
                                auth_token_url=auth_token_url, jwks_url=jwks_url, token_audience=token_audience)
    session.add(registration)
    session.flush()
    return registration


def get_registration(session: Session, registration_id: int) -> Registration:
    registration = session.get(Registration, registration_id)
    if registration is None:
        raise NotFoundError(f"no registration {registration_id}")
    return registration


def find_registration(session: Session, issuer: str, client_id: str) -> Registration:
    """The active registration of this issuer and client id; else the one pending registration (a dynamic
    registration waiting for approval). Several pending ones: name it by its id."""
    rows = session.scalars(select(Registration).where(Registration.issuer == issuer,
                                                      Registration.client_id == client_id,
                                                      Registration.kind == REGISTRATION_KIND_LTI)
                           .order_by(Registration.id)).all()
    active = [r for r in rows if r.status == REGISTRATION_ACTIVE]
    if active:
        return active[0]
    if not rows:
        raise NotFoundError(f"no registration for issuer {issuer} and client id {client_id}")
    if len(rows) > 1:
        raise ConflictError(f"several pending registrations for issuer {issuer} and client id {client_id} "
                            f"({', '.join(str(r.id) for r in rows)}): approve or reject them by id first")
    return rows[0]


def list_registrations(session: Session) -> list[Registration]:
    """The LTI platforms' registrations (a school identity provider's is listed by ``services.identity``)."""
    return list(session.scalars(select(Registration).where(Registration.kind == REGISTRATION_KIND_LTI)
                                .order_by(Registration.id)))


def remove_registration(session: Session, registration_id: int) -> None:
    session.delete(get_registration(session, registration_id))
    session.flush()


def _check_municipalities(session: Session, municipalities: list[str]) -> list[str]:
    ids = sorted({parse_municipality_id(m) for m in municipalities})
    known = set(session.scalars(select(Municipality.id).where(Municipality.id.in_(ids))))
    unknown = [m for m in ids if m not in known]
    if unknown:
        raise NotFoundError(f"unknown municipality {', '.join(unknown)}: import the official list first")
    return ids


@dataclass(frozen=True)
class BindingChange:
    """What binding a deployment to a set of municipalities changes: its municipalities before and after (sorted
    ids), and which are added and which removed."""

    before: tuple[str, ...]
    after: tuple[str, ...]

    @property
    def added(self) -> tuple[str, ...]:
        return tuple(m for m in self.after if m not in self.before)

    @property
    def removed(self) -> tuple[str, ...]:
        return tuple(m for m in self.before if m not in self.after)

    def details(self) -> dict[str, list[str]]:
        """For the audit log."""
        return {"before": list(self.before), "after": list(self.after), "added": list(self.added),
                "removed": list(self.removed)}


def binding_change(session: Session, deployment: Deployment, municipalities: list[str]) -> BindingChange:
    """What ``bind_deployment`` with these municipalities would change, checked by the same rules (at least one,
    each a known municipality); nothing is changed."""
    if not municipalities:
        raise DomainError("a deployment serves at least one municipality", code="invalid")
    after = tuple(_check_municipalities(session, municipalities))
    return BindingChange(tuple(sorted(m.municipality_id for m in deployment.municipalities)), after)


def bind_deployment(session: Session, registration: Registration, deployment_id: str, municipalities: list[str],
                    custom_param: str | None = None) -> Deployment:
    """Create or update a deployment, bind it to its municipalities and make it active.

    One municipality: every launch from it belongs to that municipality. Several: a shared deployment,
    which needs ``custom_param`` (the signed custom parameter that names the pupil's municipality).
    """
    if not deployment_id or len(deployment_id) > 255:
        raise DomainError("a deployment id is 1 to 255 characters", code="invalid")
    if not municipalities:
        raise DomainError("a deployment serves at least one municipality", code="invalid")
    ids = _check_municipalities(session, municipalities)
    if len(ids) > 1 and not custom_param:
        raise DomainError("a deployment shared by several municipalities needs --custom-param "
                          "(e.g. municipality_code) to tell them apart", code="invalid")
    deployment = session.scalar(select(Deployment).where(Deployment.registration_id == registration.id,
                                                         Deployment.deployment_id == deployment_id))
    if deployment is None:
        deployment = Deployment(registration=registration, deployment_id=deployment_id)
        session.add(deployment)
    deployment.status = DEPLOYMENT_ACTIVE
    deployment.custom_param = custom_param or None
    deployment.municipalities = [DeploymentMunicipality(municipality_id=m) for m in ids]
    session.flush()
    return deployment


def set_deployment_status(session: Session, registration: Registration, deployment_id: str, status: str) -> Deployment:
    deployment = session.scalar(select(Deployment).where(Deployment.registration_id == registration.id,
                                                         Deployment.deployment_id == deployment_id))
    if deployment is None:
        raise NotFoundError(f"no deployment {deployment_id} in registration {registration.id}")
    if status == DEPLOYMENT_ACTIVE and not deployment.municipalities:
        raise DomainError("bind the deployment to a municipality first (platforms add-deployment)", code="invalid")
    deployment.status = status
    session.flush()
    return deployment
