"""The refusals every service may raise besides those of ``domain.errors``: something named does not exist
(404), or it clashes with what exists (409)."""

from __future__ import annotations

from ..domain.errors import DomainError


class NotFoundError(DomainError):
    code = "not_found"
    status = 404


class ConflictError(DomainError):
    code = "conflict"
    status = 409
