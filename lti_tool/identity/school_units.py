"""Skolverket's school unit register (Skolenhetsregistret, open API v2, no authentication): a Swedish school
unit's name, municipality and owner (huvudman), for the cross-check of a seat invitation.

``GET <SCHOOL_UNIT_REGISTER_URL>/<school unit code>`` (``https://api.skolverket.se/skolenhetsregistret/v2/
school-units/<code>``) answers a JSON:API-like document::

    {"data": {"type": "schoolunit", "schoolUnitCode": "43038662",
              "attributes": {"displayName": "Färentuna skola", "status": "AKTIV", "municipalityCode": "0125",
                             "schoolTypes": ["GR", "FKLASS"], "addresses": [...], ...}},
     "included": {"type": "organizer",
                  "attributes": {"displayName": "EKERÖ KOMMUN", "organizerType": "KOMMUN", ...}},
     "meta": {...}, "links": {...}}

The owner's organisation number is read where the register puts it: on ``included`` itself, in its
attributes, or in its link (``.../organizers/<10 digits>``). Owner types: ``KOMMUN`` (municipality),
``REGION`` (county), ``ENSKILD`` (an independent school's company or foundation), ``STAT``, ``SAME`` and
``SPECIAL`` (state); ``KOMMFORB`` (a joint municipal board), ``HMANUTL`` (abroad) and anything else: other.

Answers are kept in ``school_units`` for ``SCHOOL_UNIT_CACHE_DAYS``. A register that does not answer never
fails a sign-in: :func:`resolve` then gives the cached unit however old, or None (the cross-check says
"unknown"); a code the register does not know (404) gives None. Every fetch goes through the outbound guard.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from .. import clock, outbound
from ..config import settings
from ..models import SchoolUnit
from . import (OWNER_COUNTY, OWNER_INDEPENDENT, OWNER_MUNICIPALITY, OWNER_OTHER, OWNER_STATE, SchoolFacts)

log = logging.getLogger(__name__)

CODE = re.compile(r"[0-9]{8}")
MUNICIPALITY_CODE = re.compile(r"[0-9]{4}")
ORGANIZER_LINK = re.compile(r"/organizers/([0-9]{10})(?:$|[/?])")
MAX_BYTES = 256 * 1024  # one school unit is a few kB
TIMEOUT_SECONDS = 5.0  # a sign-in waits for this
DEADLINE_SECONDS = 8.0
OWNER_KINDS = {"KOMMUN": OWNER_MUNICIPALITY, "REGION": OWNER_COUNTY, "ENSKILD": OWNER_INDEPENDENT,
               "STAT": OWNER_STATE, "SAME": OWNER_STATE, "SPECIAL": OWNER_STATE}
NOT_FOUND = object()  # the register answered: no such school unit


def _now() -> datetime:
    return clock.now()


@dataclass(frozen=True)
class RegisterEntry:
    """One school unit as the register gives it, parsed."""

    code: str
    name: str
    municipality_id: str | None
    owner_name: str | None
    owner_org_number: str | None
    owner_kind: str | None


def _text(value: Any) -> str | None:
    if isinstance(value, (str, int)) and not isinstance(value, bool):
        text = " ".join(str(value).split())
        return text or None
    return None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _org_number(value: Any) -> str | None:
    """Ten digits (``212000-1355`` and the 12-digit ``16...`` form too); anything else is not one."""
    digits = re.sub(r"[\s-]", "", _text(value) or "")
    if len(digits) == 12 and digits.startswith("16"):
        digits = digits[2:]
    return digits if re.fullmatch(r"[0-9]{10}", digits) else None


def _organizer(included: Any) -> tuple[str | None, str | None, str | None]:
    """(name, organisation number, owner kind) of the ``included`` organizer (one object; a list is read too)."""
    items = included if isinstance(included, list) else [included]
    for item in (_dict(entry) for entry in items):
        if item.get("type") not in (None, "organizer", "organization", "organisation"):
            continue
        attributes = _dict(item.get("attributes"))
        number = _org_number(item.get("organizationNumber")) or _org_number(attributes.get("organizationNumber"))
        if number is None:
            match = ORGANIZER_LINK.search(_text(_dict(item.get("links")).get("href")) or "")
            number = match.group(1) if match else None
        name = _text(attributes.get("displayName")) or _text(item.get("displayName"))
        kind = (_text(attributes.get("organizerType")) or _text(item.get("organizerType")) or "").upper()
        if name or number or kind:
            return name, number, (OWNER_KINDS.get(kind, OWNER_OTHER) if kind else None)
    return None, None, None


def parse(payload: Any, code: str) -> RegisterEntry | None:
    """The register's answer for ``code``, or None when it is not a school unit's (another code, no data)."""
    data = _dict(_dict(payload).get("data"))
    attributes = _dict(data.get("attributes"))
    answered = _text(data.get("schoolUnitCode")) or _text(attributes.get("schoolUnitCode"))
    if not attributes or (answered is not None and answered != code):
        return None
    municipality = _text(attributes.get("municipalityCode")) or ""
    if municipality.isdigit() and len(municipality) < 4:
        municipality = municipality.zfill(4)  # "180" for Stockholm's 0180
    owner_name, owner_number, owner_kind = _organizer(_dict(payload).get("included"))
    return RegisterEntry(
        code=code,
        name=(_text(attributes.get("displayName")) or _text(attributes.get("schoolName")) or code)[:300],
        municipality_id=f"SE-{municipality}" if MUNICIPALITY_CODE.fullmatch(municipality) else None,
        owner_name=owner_name[:300] if owner_name else None, owner_org_number=owner_number, owner_kind=owner_kind)


def _facts(unit: SchoolUnit) -> SchoolFacts:
    return SchoolFacts(name=unit.name, code=unit.code, owner_name=unit.owner_name,
                       owner_org_number=unit.owner_org_number, owner_kind=unit.owner_type,
                       municipality_id=unit.municipality_id)


def _fetch(code: str) -> RegisterEntry | object | None:
    """The register's entry; :data:`NOT_FOUND` when it answered 404; None when it could not be asked or gave
    something else (logged)."""
    url = f"{settings().school_unit_register_url.rstrip('/')}/{code}"
    policy = outbound.OutboundPolicy.from_settings(current_app.config)
    try:
        with outbound.session(policy) as http:
            response = http.get(url, headers={"Accept": "application/json"},
                                timeout=min(TIMEOUT_SECONDS, settings().http_timeout_seconds),
                                deadline=DEADLINE_SECONDS, max_bytes=MAX_BYTES)
    except outbound.OutboundError as error:
        log.warning("school unit register not reachable for %s: %s (%s)", code, error.reason, error.kind)
        return None
    if response.status_code == 404:
        log.info("school unit %s is not in the school unit register", code)
        return NOT_FOUND
    if response.status_code != 200:
        log.warning("school unit register answered %s for %s", response.status_code, code)
        return None
    try:
        entry = parse(response.json(), code)
    except ValueError:
        entry = None
    if entry is None:
        log.warning("school unit register gave no usable school unit for %s", code)
    return entry


def _store(session: Session, entry: RegisterEntry, now: datetime) -> SchoolUnit:
    values = {"name": entry.name, "municipality_id": entry.municipality_id, "owner_name": entry.owner_name,
              "owner_org_number": entry.owner_org_number, "owner_type": entry.owner_kind, "fetched_at": now}
    unit = session.get(SchoolUnit, entry.code)
    if unit is None:
        try:
            with session.begin_nested():  # another sign-in may store the same unit at the same time
                unit = SchoolUnit(code=entry.code, **values)
                session.add(unit)
                session.flush()
            return unit
        except IntegrityError:
            unit = session.get(SchoolUnit, entry.code, populate_existing=True)
            if unit is None:
                raise
    for name, value in values.items():
        setattr(unit, name, value)
    session.flush()
    return unit


def resolve(session: Session, code: str) -> SchoolFacts | None:
    """The school unit's name, municipality and owner: from the cache while fresh, else from the register
    (stored). None when the code is not a school unit code, the register does not know it, or the register
    cannot be reached and nothing is cached."""
    code = (code or "").strip()
    if not CODE.fullmatch(code):
        return None
    now = _now()
    cached = session.get(SchoolUnit, code)
    if cached is not None and cached.fetched_at > now - timedelta(days=settings().school_unit_cache_days):
        return _facts(cached)
    entry = _fetch(code)
    if entry is NOT_FOUND:
        return None
    if not isinstance(entry, RegisterEntry):
        return _facts(cached) if cached is not None else None  # the register is down: the old answer will do
    return _facts(_store(session, entry, now))
