"""Approving and rejecting dynamic registrations: the one place where a pending registration becomes active
or an active registration's platform URLs change. The staff console and ``platforms approve`` / ``reject``
both call here, with the same rules and the same audit entries.

A dynamic registration is always stored as a new, pending row (``lti.registration.store_registration``); it
never changes an existing registration. When an active registration with the same issuer and client id
exists, the pending row is a *re-registration* of it, and there are exactly two ways on:

- approve it **as the replacement** of that registration, naming it (``replaces``): the active registration
  takes the pending one's login, token and key URLs, token audience and product and keeps everything else
  (its id, name, deployments and their municipalities, launches, seats); deployments only the pending row
  had move over, still to be bound; cached service tokens of the old token URL are dropped; the audit entry
  ``registration.replace`` holds the values before and after;
- **reject** it: the pending row (and its pending deployments) is deleted (``registration.reject``).

It cannot be approved as a separate registration: (issuer, client id) routes a launch, so only one
registration with that pair is active (a partial unique index guards it). A pending registration with no
active twin is approved as itself (``registration.approve``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..models import (REGISTRATION_ACTIVE, REGISTRATION_KIND_LTI, REGISTRATION_PENDING, AuditEntry, Registration,
                      ServiceToken)
from .errors import ConflictError, NotFoundError

# What a platform's (re-)registration sets, in the order staff compare them.
PLATFORM_FIELDS = ("auth_login_url", "auth_token_url", "jwks_url", "token_audience", "product")
COMPARED_FIELDS = PLATFORM_FIELDS + ("deployments",)

ACTION_APPROVE = "registration.approve"
ACTION_REPLACE = "registration.replace"
ACTION_REJECT = "registration.reject"


@dataclass(frozen=True)
class Compared:
    """One compared value of a re-registration: the active registration's and the pending one's."""

    field: str
    current: str | None
    proposed: str | None

    @property
    def differs(self) -> bool:
        return self.current != self.proposed


@dataclass(frozen=True)
class Review:
    """A registration as staff review it; for a pending re-registration, the active registration it would
    replace and every compared value side by side."""

    registration: Registration
    replaces: Registration | None = None
    fields: tuple[Compared, ...] = ()

    @property
    def differences(self) -> list[str]:
        return [f.field for f in self.fields if f.differs]


def snapshot(registration: Registration) -> dict[str, Any]:
    """The values a (re-)registration sets, for comparing and for the audit log."""
    values: dict[str, Any] = {name: getattr(registration, name) for name in PLATFORM_FIELDS}
    values["deployments"] = sorted(d.deployment_id for d in registration.deployments)
    return values


def _shown(value: Any) -> str | None:
    if isinstance(value, list):
        return ", ".join(value) or None
    return value


def active_twin(session: Session, registration: Registration) -> Registration | None:
    """The active registration with the same issuer and client id as ``registration`` (not itself)."""
    return session.scalar(select(Registration).where(
        Registration.issuer == registration.issuer, Registration.client_id == registration.client_id,
        Registration.status == REGISTRATION_ACTIVE, Registration.id != registration.id))


def review(session: Session, registration: Registration) -> Review:
    if registration.status != REGISTRATION_PENDING:
        return Review(registration)
    twin = active_twin(session, registration)
    if twin is None:
        return Review(registration)
    current, proposed = snapshot(twin), snapshot(registration)
    # A replacement keeps the active registration's deployments and adds the ones only the pending row has:
    # those are what differs ("+ id").
    added = [d for d in proposed["deployments"] if d not in current["deployments"]]
    proposed["deployments"] = ", ".join(f"+ {d}" for d in added) if added else current["deployments"]
    return Review(registration, twin, tuple(Compared(name, _shown(current[name]), _shown(proposed[name]))
                                            for name in COMPARED_FIELDS))


def reviews(session: Session) -> list[Review]:
    """Every registration, pending ones first (each re-registration beside the registration it would replace)."""
    rows = session.scalars(select(Registration).where(Registration.kind == REGISTRATION_KIND_LTI)
                           .order_by(Registration.status.desc(), Registration.id)).all()
    return [review(session, row) for row in rows]


def _pending(session: Session, registration_id: int) -> Registration:
    registration = session.get(Registration, registration_id, with_for_update=True)
    if registration is None:
        raise NotFoundError(f"no registration {registration_id}")
    if registration.status != REGISTRATION_PENDING:
        raise ConflictError(f"registration {registration_id} is not waiting for approval (it is {registration.status})")
    return registration


def _audit(session: Session, actor: str, action: str, registration: Registration, **details: Any) -> None:
    session.add(AuditEntry(actor=actor[:255], action=action, target=f"registration {registration.id}",
                           details={"issuer": registration.issuer, "client_id": registration.client_id, **details}))


def approve_registration(session: Session, registration_id: int, *, actor: str,
                         replaces: int | None = None) -> Registration:
    """Approve a pending registration; returns the registration that is now active.

    ``replaces``: the id of the active registration with the same issuer and client id, which this pending
    re-registration replaces (see the module's documentation). It must be given exactly when such a
    registration exists, and must name it: approving never replaces anything unless asked to, by id."""
    registration = _pending(session, registration_id)
    twin = active_twin(session, registration)
    if twin is not None:
        session.refresh(twin, with_for_update=True)
    if twin is None and replaces is not None:
        raise ConflictError(f"registration {registration_id} replaces nothing: no active registration has its "
                            f"issuer and client id")
    if twin is not None and replaces != twin.id:
        raise ConflictError(
            f"registration {registration_id} is a re-registration of active registration {twin.id} (same issuer "
            f"and client id): approve it as the replacement of registration {twin.id}, or reject it")
    if twin is None:
        registration.status = REGISTRATION_ACTIVE
        try:
            session.flush()
        except IntegrityError as exc:  # another registration with this issuer and client id became active
            raise ConflictError(f"another registration for issuer {registration.issuer} and client id "
                                f"{registration.client_id} is active already") from exc
        _audit(session, actor, ACTION_APPROVE, registration, values=snapshot(registration))
        session.flush()
        return registration
    return _replace(session, twin, registration, actor)


def _replace(session: Session, active: Registration, pending: Registration, actor: str) -> Registration:
    before = snapshot(active)
    for name in PLATFORM_FIELDS:
        setattr(active, name, getattr(pending, name))
    known = {d.deployment_id for d in active.deployments}
    moved, dropped = [], []
    for deployment in list(pending.deployments):
        if deployment.deployment_id in known:  # the active registration's own (bound) deployment stays
            dropped.append(deployment.deployment_id)
        else:
            deployment.registration = active
            moved.append(deployment.deployment_id)
    # Service tokens were issued by the old token URL: the next service call asks the new one.
    session.execute(delete(ServiceToken).where(ServiceToken.registration_id == active.id))
    session.flush()
    pending_id = pending.id
    session.delete(pending)
    session.flush()
    _audit(session, actor, ACTION_REPLACE, active, replaced_by=pending_id, before=before, after=snapshot(active),
           deployments_moved=sorted(moved), deployments_dropped=sorted(dropped))
    session.flush()
    return active


def reject_registration(session: Session, registration_id: int, *, actor: str) -> None:
    """Delete a pending registration (and its pending deployments); an active one is removed otherwise."""
    registration = _pending(session, registration_id)
    twin = active_twin(session, registration)
    _audit(session, actor, ACTION_REJECT, registration, values=snapshot(registration),
           replaces=twin.id if twin is not None else None)
    session.delete(registration)
    session.flush()
