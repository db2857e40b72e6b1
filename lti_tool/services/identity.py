"""School identity providers of the second door (Feide, Skolfederation, any OpenID Connect or SAML provider):
added, listed and removed by national staff (``flask identity-providers``).

Each provider has a registration of kind ``school_sign_in`` (never routing an LTI login or launch) with one
deployment, :data:`SCHOOL_DEPLOYMENT_ID`: the subjects it signs in key seats, hand-ins and reviews as
(registration, sub), and a pupil's visit after a school sign-in is recorded as a launch of that deployment, so
every page after it works as after an LTI launch.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..domain.errors import DomainError
from ..models import (DEPLOYMENT_ACTIVE, PROTOCOL_OIDC, PROTOCOL_SAML, REGISTRATION_ACTIVE, REGISTRATION_KIND_SCHOOL,
                      Deployment, IdentityProvider, Registration)
from .errors import ConflictError

SCHOOL_DEPLOYMENT_ID = "school-sign-in"
PROFILES = {"feide": PROTOCOL_OIDC, "oidc": PROTOCOL_OIDC, "skolfederation": PROTOCOL_SAML, "saml": PROTOCOL_SAML}
FEIDE_DISCOVERY_URL = "https://auth.dataporten.no/.well-known/openid-configuration"
FEIDE_GROUPS_API_URL = "https://groups-api.dataporten.no/groups/me/groups"
FEIDE_SCOPES = "openid userid-feide userinfo-name groups-org"
PROVIDER_ACTIVE = "active"
PROVIDER_DISABLED = "disabled"


def add_provider(session: Session, *, profile: str, name: str, country: str, issuer: str, client_id: str,
                 discovery_url: str | None = None, client_secret: str | None = None, scopes: str | None = None,
                 groups_api_url: str | None = None, metadata_xml: str | None = None,
                 metadata_url: str | None = None, auth_url: str = "", token_url: str = "",
                 jwks_url: str = "") -> IdentityProvider:
    """A provider, its registration (``issuer``: the OpenID Connect issuer or the SAML federation's name or
    IdP entity id; ``client_id``: the tool's client id or SP entity id) and its one deployment."""
    protocol = PROFILES.get(profile)
    if protocol is None:
        raise DomainError(f"unknown profile {profile!r} (one of {', '.join(PROFILES)})", code="provider_invalid")
    if country not in ("SE", "NO"):
        raise DomainError(f"country must be SE or NO, not {country!r}", code="provider_invalid")
    if session.scalar(select(Registration.id).where(Registration.kind == REGISTRATION_KIND_SCHOOL,
                                                    Registration.issuer == issuer,
                                                    Registration.client_id == client_id)):
        raise ConflictError(f"an identity provider for {issuer} and {client_id} exists already")
    registration = Registration(name=name, issuer=issuer, client_id=client_id, auth_login_url=auth_url,
                                auth_token_url=token_url, jwks_url=jwks_url, status=REGISTRATION_ACTIVE,
                                kind=REGISTRATION_KIND_SCHOOL)
    registration.deployments.append(Deployment(deployment_id=SCHOOL_DEPLOYMENT_ID, status=DEPLOYMENT_ACTIVE))
    session.add(registration)
    session.flush()
    provider = IdentityProvider(registration_id=registration.id, protocol=protocol, profile=profile, name=name,
                                country=country, discovery_url=discovery_url, client_secret=client_secret,
                                scopes=scopes, groups_api_url=groups_api_url, metadata_xml=metadata_xml,
                                metadata_url=metadata_url, status=PROVIDER_ACTIVE)
    session.add(provider)
    session.flush()
    return provider


def find_person_registration(session: Session, issuer: str, client_id: str) -> Registration:
    """Where a person named by issuer and client id signs in: an LTI platform's registration (the active one),
    else a school identity provider's (its issuer and the tool's client or SP entity id)."""
    from .errors import NotFoundError
    from .platforms import find_registration

    try:
        return find_registration(session, issuer, client_id)
    except NotFoundError:
        school = session.scalar(select(Registration).where(Registration.kind == REGISTRATION_KIND_SCHOOL,
                                                           Registration.issuer == issuer,
                                                           Registration.client_id == client_id))
        if school is None:
            raise
        return school


def get_provider(session: Session, provider_id: int, *, active: bool = True) -> IdentityProvider:
    """The provider; an unknown (or, with ``active``, disabled) one is ``signin_provider_unknown`` (404)."""
    provider = session.get(IdentityProvider, provider_id)
    if provider is None or (active and provider.status != PROVIDER_ACTIVE):
        raise DomainError(f"no identity provider {provider_id}", code="signin_provider_unknown", status=404)
    return provider


def provider_of_registration(session: Session, registration_id: int) -> IdentityProvider | None:
    return session.scalar(select(IdentityProvider).where(IdentityProvider.registration_id == registration_id))


def list_providers(session: Session, *, country: str | None = None,
                   active_only: bool = False) -> list[IdentityProvider]:
    query = select(IdentityProvider).order_by(IdentityProvider.id)
    if country:
        query = query.where(IdentityProvider.country == country)
    if active_only:
        query = query.where(IdentityProvider.status == PROVIDER_ACTIVE)
    return list(session.scalars(query))


def school_deployment(session: Session, provider: IdentityProvider) -> Deployment:
    return session.scalars(select(Deployment).where(Deployment.registration_id == provider.registration_id,
                                                    Deployment.deployment_id == SCHOOL_DEPLOYMENT_ID)).one()


def remove_provider(session: Session, provider_id: int) -> None:
    """Remove a provider and its registration: the seats, hand-ins and reviews of its pupils go with it (as with
    an LTI platform's registration). Disable it instead to keep them (``set_status``)."""
    provider = get_provider(session, provider_id, active=False)
    session.delete(session.get(Registration, provider.registration_id))
    session.flush()


def set_status(session: Session, provider_id: int, status: str) -> IdentityProvider:
    if status not in (PROVIDER_ACTIVE, PROVIDER_DISABLED):
        raise DomainError(f"status must be {PROVIDER_ACTIVE} or {PROVIDER_DISABLED}", code="provider_invalid")
    provider = get_provider(session, provider_id, active=False)
    provider.status = status
    session.flush()
    return provider
