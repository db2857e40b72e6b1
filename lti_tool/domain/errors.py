"""The domain's error tree. Every refusal a person can meet carries a stable ``code``.

    DomainError
    ├── LaunchError                 a launch (or login) is refused; ``code`` names the check
    │   └── ClaimError              a claim of the id_token is missing or wrong
    └── ResolutionError             the home municipality cannot be resolved
        ├── MunicipalityUnresolvedError
        └── MunicipalityNotAllowedError
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
