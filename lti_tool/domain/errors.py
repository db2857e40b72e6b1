"""The domain's error tree. Every refusal a person can meet carries a stable ``code`` and an HTTP ``status``;
``web/errors.py`` renders any that a view does not answer itself. The base classes live here, the others next
to the code that raises them (a module outside ``domain`` is named in brackets)::

    DomainError
    ├── LaunchError                     a login or launch is refused; ``code`` names the check
    │   ├── ClaimError                  a claim of the id_token is missing or wrong
    │   └── UnknownDeploymentError      a verified launch from an unseen deployment, kept as pending (services)
    ├── ResolutionError                 the home municipality cannot be resolved (403)
    │   ├── MunicipalityUnresolvedError
    │   └── MunicipalityNotAllowedError
    ├── SeatRefusedError                no seat for this pupil; ``code`` is one of the refusal codes (domain.seats)
    ├── StoreUnavailableError           the shared login store cannot be reached (503) (lti.storage)
    ├── RegistrationError               dynamic registration refused (lti.registration)
    ├── NotFoundError                   404 (services)
    ├── ConflictError                   409 (services)
    ├── ForbiddenError                  this person may not do this or see this work (403) (services.access)
    ├── ConsoleForbiddenError           this launch may not open the municipal console (403) (services.municipal)
    ├── RosterError                     the platform gives no usable roster (services.roster)
    ├── AmbiguousPupilError             a ``sub`` stored under several registrations (409) (services.privacy)
    └── UploadError                     an uploaded file is refused (uploads)
"""

from __future__ import annotations


class DomainError(Exception):
    """Base of every error the domain raises on purpose."""

    code = "error"
    status = 400

    def __init__(self, detail: str = "", *, code: str | None = None, status: int | None = None):
        super().__init__(detail or self.code)
        self.detail = detail
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status


class LaunchError(DomainError):
    """A login or launch failed one of the checks; ``code`` is stable and shown on the page."""

    code = "launch_invalid"


class ClaimError(LaunchError):
    """A claim of the id_token is missing or has a wrong value."""

    code = "claim_invalid"


class ResolutionError(DomainError):
    """The pupil's home municipality could not be resolved from the launch."""

    status = 403


class MunicipalityUnresolvedError(ResolutionError):
    code = "municipality_unresolved"


class MunicipalityNotAllowedError(ResolutionError):
    code = "municipality_not_allowed"
