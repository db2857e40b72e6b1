"""Home-municipality resolution (hemkommun / hjemkommune): which municipality pays for a pupil's seat.

Most reliable first (see PRODUCT.md):
1. the deployment is bound to exactly one municipality;
2. a deployment shared by several municipalities names the one in a signed custom parameter, which
   must be one of the deployment's allowed municipalities;
3. otherwise nothing is guessed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Mapping, Sequence

from .errors import MunicipalityNotAllowedError, MunicipalityUnresolvedError

METHOD_DEPLOYMENT = "deployment"
METHOD_CUSTOM_PARAMETER = "custom_parameter"

_MUNICIPALITY_ID = re.compile(r"^(SE|NO)-(\d{4})$")


@dataclass(frozen=True)
class Resolution:
    municipality_id: str  # "SE-1490"
    method: str  # METHOD_DEPLOYMENT or METHOD_CUSTOM_PARAMETER


def make_municipality_id(country: str, code: str) -> str:
    """``("se", "1490")`` -> ``"SE-1490"``; codes are four digits, leading zeros kept."""
    country = country.strip().upper()
    code = code.strip()
    if country not in ("SE", "NO"):
        raise ValueError(f"unknown country {country!r}: SE or NO")
    if not re.fullmatch(r"\d{1,4}", code):
        raise ValueError(f"municipality code {code!r} is not 1-4 digits")
    return f"{country}-{code.zfill(4)}"


def parse_municipality_id(value: str) -> str:
    """Accept ``SE-1490`` in any case; raise ``ValueError`` otherwise."""
    candidate = value.strip().upper()
    if not _MUNICIPALITY_ID.match(candidate):
        raise ValueError(f"{value!r} is not a municipality id like SE-1490 or NO-0301")
    return candidate


def resolve_municipality(allowed: Sequence[str], custom_param: str | None,
                         custom: Mapping[str, str]) -> Resolution:
    """Resolve the home municipality of a launch.

    ``allowed``: the municipality ids bound to the deployment. ``custom_param``: the name of the
    custom parameter that picks one of them on a shared deployment (``None`` when not shared).
    ``custom``: the signed launch's custom claim.
    """
    allowed = sorted(set(allowed))
    if not allowed:
        raise MunicipalityUnresolvedError("the deployment is bound to no municipality")
    if len(allowed) == 1 and not custom_param:
        return Resolution(allowed[0], METHOD_DEPLOYMENT)
    if not custom_param:
        raise MunicipalityUnresolvedError("shared deployment without a custom parameter to pick from")
    raw = (custom.get(custom_param) or "").strip()
    if not raw or raw.startswith("$"):  # "$Canvas.x" means the platform did not substitute it
        if len(allowed) == 1:
            return Resolution(allowed[0], METHOD_DEPLOYMENT)
        raise MunicipalityUnresolvedError(f"custom parameter {custom_param!r} missing")
    try:
        wanted = parse_municipality_id(raw)
    except ValueError:
        # A bare code ("1440") is accepted only when exactly one allowed municipality has it.
        matches = [m for m in allowed if m.split("-", 1)[1] == raw.zfill(4)] if raw.isdigit() else []
        if len(matches) != 1:
            raise MunicipalityNotAllowedError(f"{custom_param}={raw!r} matches no allowed municipality") from None
        wanted = matches[0]
    if wanted not in allowed:
        raise MunicipalityNotAllowedError(f"{wanted} is not allowed for this deployment ({', '.join(allowed)})")
    return Resolution(wanted, METHOD_CUSTOM_PARAMETER)
