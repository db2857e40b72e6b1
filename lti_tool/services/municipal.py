"""Who may open the municipal console (orders and seat budgets, which cost the municipality money): one rule,
asked by every municipal page, form and export, and by the pages that link to the console.

An institution or system administrator of the platform (never a course role such as ``membership#Administrator``
or the short ``Administrator``), who is also

- listed as the arts-school contact of the launch's own municipality (``municipalities add-contact``: the
  registration and the person's ``sub``), or
- carries a role that ``MUNICIPAL_ADMIN_ROLES`` names as this platform's municipal administrator role (for the
  launch's registration, for every registration with ``*``, and for the built-in sandbox with ``sandbox``).

The municipality is always the launch's own (from the signed launch), never one a request names.
"""

from __future__ import annotations

from typing import Mapping, Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..config import ANY_REGISTRATION_KEY, SANDBOX_REGISTRATION_KEY
from ..domain.claims import may_open_municipal_console
from ..domain.errors import DomainError
from ..models import Launch, MunicipalContact



class ConsoleForbiddenError(DomainError):
    """This launch may not open the municipal console."""

    code = "municipal_console_forbidden"
    status = 403


def named_admin_roles(setting: Mapping[str, Sequence[str]], registration_id: int, *,
                      sandbox: bool = False) -> frozenset[str]:
    """The roles ``MUNICIPAL_ADMIN_ROLES`` names for this registration (``sandbox``: it is the built-in sandbox
    platform's registration, and the sandbox is on)."""
    keys = [str(registration_id), ANY_REGISTRATION_KEY] + ([SANDBOX_REGISTRATION_KEY] if sandbox else [])
    return frozenset(role for key in keys for role in setting.get(key, ()))


def is_listed_contact(session: Session, launch: Launch) -> bool:
    return session.scalar(select(MunicipalContact.id).where(
        MunicipalContact.municipality_id == launch.municipality_id,
        MunicipalContact.registration_id == launch.registration_id, MunicipalContact.sub == launch.sub)
        .limit(1)) is not None


def may_open_console(session: Session, launch: Launch, named_roles: frozenset[str]) -> bool:
    roles = [role for role in (launch.roles or []) if isinstance(role, str)]
    return may_open_municipal_console(roles, named_roles=named_roles,
                                      is_listed_contact=lambda: is_listed_contact(session, launch))


def check_console_access(session: Session, launch: Launch, named_roles: frozenset[str]) -> None:
    """Raise :class:`ConsoleForbiddenError` unless the launch may open its municipality's console."""
    if not may_open_console(session, launch, named_roles):
        raise ConsoleForbiddenError(f"launch {launch.id} ({launch.role}) of registration {launch.registration_id} "
                                    f"is no listed administrator of {launch.municipality_id}")
