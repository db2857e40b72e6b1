"""The second door's sign-in adapters: a school identity provider's answer, checked, made into one normalised
:class:`SchoolIdentity` whatever the protocol.

- ``oidc``: Feide (and any OpenID Connect provider), authorization code with PKCE through authlib's Flask client,
  configured from the provider's discovery document; Feide's Groups API gives the school and its owner.
- ``saml``: Skolfederation (and any SAML 2.0 federation), Web SSO through pysaml2; the SIS attributes
  (``sisSchoolUnitCode``), and Skolverket's school unit register (``school_units``) for the school's
  municipality and owner.

The person is kept as (the provider's registration, subject): never a national identity number; a name only
where a teacher's view needs it. Every refusal is a :class:`SignInError` with a stable code.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..domain.errors import DomainError

# Owner kinds of a school (cross-check of a seat invitation's municipality).
OWNER_MUNICIPALITY = "municipality"  # kommun / kommune
OWNER_COUNTY = "county"  # region / fylkeskommune (upper-secondary schools in Norway)
OWNER_INDEPENDENT = "independent"  # fristående skola / privatskole: a company or foundation
OWNER_STATE = "state"
OWNER_OTHER = "other"

# eduPersonAffiliation values of a teacher or other school staff (never a pupil's).
STAFF_AFFILIATIONS = frozenset({"employee", "staff", "faculty"})


@dataclass(frozen=True)
class SchoolFacts:
    """What the sign-in says about the person's school: a cross-check, never a gate."""

    name: str | None = None
    code: str | None = None  # Sweden: the school unit code (8 digits); Norway: the school's organisation number
    owner_name: str | None = None
    owner_org_number: str | None = None
    owner_kind: str | None = None  # one of the OWNER_* kinds
    # The municipality (``SE-1490``, ``NO-0301``) that owns the school, or where the school lies when the
    # owner is not a municipality; None when unknown.
    municipality_id: str | None = None


@dataclass(frozen=True)
class SchoolIdentity:
    """A person signed in at a school identity provider, verified."""

    provider_id: int
    registration_id: int  # the provider's registration: the namespace of ``subject``
    subject: str  # Feide: the Feide user id (eduPersonPrincipalName); SAML: eduPersonPrincipalName
    name: str | None = None
    affiliations: frozenset[str] = field(default_factory=frozenset)
    school: SchoolFacts | None = None

    @property
    def is_staff(self) -> bool:
        """A teacher or other school staff (employee, staff or faculty, and not a student)."""
        return bool(self.affiliations & STAFF_AFFILIATIONS) and "student" not in self.affiliations


class SignInError(DomainError):
    """A school sign-in refused. Codes: ``signin_invalid`` (the answer failed a check: signature, issuer,
    audience, nonce, InResponseTo, time), ``signin_replayed``, ``signin_expired``, ``signin_refused`` (the provider
    said no), ``signin_not_activated`` (Feide: the municipality has not switched the service on),
    ``signin_no_attributes`` (no user id released), ``signin_unavailable`` (the provider cannot be reached)."""

    code = "signin_invalid"
    status = 403
