"""A verified launch's admission (its deployment known and active, its home municipality resolved) and its
record (the launch and its course context). ``launch.complete_launch`` runs them; the fault tests replace
``record_launch`` here."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import bindparam, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload

from ..domain.claims import LaunchClaims
from ..domain.errors import LaunchError
from ..domain.resolution import Resolution, resolve_municipality
from ..models import DEPLOYMENT_INACTIVE, DEPLOYMENT_PENDING, Deployment, Launch, LineItem, LtiContext


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
