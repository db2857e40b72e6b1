"""Use cases. Each takes a ``Session`` and never commits: the caller (view, CLI) does."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import bindparam, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload

from ..domain.claims import LaunchClaims
from ..domain.errors import DomainError, LaunchError
from ..domain.resolution import Resolution, parse_municipality_id, resolve_municipality
from ..models import (DEPLOYMENT_ACTIVE, DEPLOYMENT_INACTIVE, DEPLOYMENT_PENDING, REGISTRATION_ACTIVE, Deployment,
                     DeploymentMunicipality, Launch, LineItem, LtiContext, Municipality, Registration)


class NotFoundError(DomainError):
    code = "not_found"
    status = 404


class ConflictError(DomainError):
    code = "conflict"
    status = 409


# -- registrations and deployments -------------------------------------------------------------

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
                                                      Registration.client_id == client_id)
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
    return list(session.scalars(select(Registration).order_by(Registration.id)))


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


# -- launch ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Admission:
    deployment: Deployment
    resolution: Resolution


class UnknownDeploymentError(LaunchError):
    """A verified launch from a deployment the tool has never seen: the caller stores it as pending
    (``store_pending_deployment``) after rolling back everything else."""

    code = "deployment_pending"
    status = 403

    def __init__(self, registration_id: int, deployment_id: str):
        super().__init__(f"deployment {deployment_id!r} unknown: stored as pending")
        self.registration_id = registration_id
        self.deployment_id = deployment_id


def store_pending_deployment(session: Session, registration_id: int, deployment_id: str) -> None:
    """The one thing a refused launch writes: the unknown deployment, pending approval."""
    try:
        with session.begin_nested():  # two first launches at once: one row, both refused
            session.add(Deployment(registration_id=registration_id, deployment_id=deployment_id,
                                   status=DEPLOYMENT_PENDING))
    except IntegrityError:
        pass


_DEPLOYMENT_QUERY = (select(Deployment).options(joinedload(Deployment.municipalities))
                     .where(Deployment.registration_id == bindparam("registration_id"),
                            Deployment.deployment_id == bindparam("deployment_id")))


def admit_launch(session: Session, registration_id: int, claims: LaunchClaims) -> Admission:
    """Check the deployment and resolve the home municipality of a verified launch. Writes nothing:
    an unknown deployment raises :class:`UnknownDeploymentError` for the caller to store."""
    deployment = session.scalars(_DEPLOYMENT_QUERY, {"registration_id": registration_id,
                                                     "deployment_id": claims.deployment_id}).unique().one_or_none()
    if deployment is None:
        raise UnknownDeploymentError(registration_id, claims.deployment_id)
    if deployment.status == DEPLOYMENT_PENDING:
        raise LaunchError(f"deployment {claims.deployment_id!r} waits for approval",
                          code="deployment_pending", status=403)
    if deployment.status == DEPLOYMENT_INACTIVE:
        raise LaunchError(f"deployment {claims.deployment_id!r} deactivated", code="deployment_inactive",
                          status=403)
    allowed = [m.municipality_id for m in deployment.municipalities]
    resolution = resolve_municipality(allowed, deployment.custom_param, claims.custom)
    return Admission(deployment=deployment, resolution=resolution)


def record_launch(session: Session, registration_id: int, claims: LaunchClaims, admission: Admission,
                  locale: str | None, *, course_code: str | None = None, round_pk: int | None = None,
                  state_path: str | None = None) -> Launch:
    """Store an accepted launch: the pseudonymous ``sub``, never names or e-mail."""
    launch = Launch(
        id=str(uuid.uuid4()),
        registration_id=registration_id,
        deployment_pk=admission.deployment.id,
        message_type=claims.message_type,
        sub=claims.sub,
        role=claims.role,
        roles=list(claims.roles),
        context_id=claims.context_id,
        resource_link_id=claims.resource_link_id,
        custom=dict(claims.custom),
        municipality_id=admission.resolution.municipality_id,
        resolution_method=admission.resolution.method,
        locale=locale,
        course_code=course_code,
        round_pk=round_pk,
        state_path=state_path,
    )
    if claims.deep_linking is not None:
        launch.deep_linking = dict(claims.deep_linking)
    session.add(launch)
    if claims.context_id:
        record_context(session, registration_id, claims, course_code)
    session.flush()
    return launch


_CONTEXT_QUERY = select(LtiContext).where(LtiContext.registration_id == bindparam("registration_id"),
                                          LtiContext.context_id == bindparam("context_id"))


def record_context(session: Session, registration_id: int, claims: LaunchClaims, course_code: str | None) -> LtiContext:
    """Keep the service endpoints the launch gave for its context (AGS line items, NRPS memberships)."""
    values: dict = {}
    if course_code:
        values["course_code"] = course_code
    if claims.ags_lineitems or claims.ags_scopes:
        values["ags_scopes"] = list(claims.ags_scopes)
        if claims.ags_lineitems:
            values["ags_lineitems_url"] = claims.ags_lineitems
    if claims.nrps_url:
        values["nrps_url"] = claims.nrps_url
    context = session.scalar(_CONTEXT_QUERY, {"registration_id": registration_id, "context_id": claims.context_id})
    if context is None:
        try:
            with session.begin_nested():
                context = LtiContext(registration_id=registration_id, context_id=claims.context_id,
                                     **{"ags_scopes": [], **values})
                session.add(context)
            values = {}
        except IntegrityError:  # the first two launches of a course at once
            context = session.scalar(select(LtiContext).where(LtiContext.registration_id == registration_id,
                                                              LtiContext.context_id == claims.context_id))
    for name, value in values.items():  # an unchanged context is not written again
        if getattr(context, name) != value:
            setattr(context, name, value)
    if claims.ags_lineitem and claims.resource_link_id:
        # The resource link's own column (e.g. made by deep linking): the fallback for its assignments.
        existing = session.scalar(select(LineItem).where(LineItem.context_pk == context.id,
                                                         LineItem.assignment_id.is_(None),
                                                         LineItem.resource_link_id == claims.resource_link_id))
        if existing is None:
            session.add(LineItem(context_pk=context.id, assignment_id=None, resource_link_id=claims.resource_link_id,
                                 url=claims.ags_lineitem))
        else:
            existing.url = claims.ags_lineitem
    session.flush()
    return context


@dataclass(frozen=True)
class LaunchPathCount:
    registration_id: int
    platform: str
    path: str
    launches: int


def count_launch_paths(session: Session, since=None) -> list[LaunchPathCount]:
    """Accepted launches per platform (registration) and the way their login state was bound to the browser:
    ``cookie``, ``platform_storage`` or ``new_window`` (``unknown`` for launches recorded before paths were)."""
    from sqlalchemy import func

    query = (select(Launch.registration_id, Registration.name, Launch.state_path, func.count())
             .join(Registration, Registration.id == Launch.registration_id)
             .group_by(Launch.registration_id, Registration.name, Launch.state_path)
             .order_by(Registration.name, Launch.registration_id, Launch.state_path))
    if since is not None:
        query = query.where(Launch.created_at >= since)
    return [LaunchPathCount(registration_id, name, path or "unknown", count)
            for registration_id, name, path, count in session.execute(query)]

