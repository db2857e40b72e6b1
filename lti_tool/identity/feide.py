"""Feide's Groups API: the school and the school owner of a person signed in with Feide.

With the ``groups-org`` attribute group, ``GET <Groups API>/groups/me/groups`` (Bearer: the sign-in's access token)
answers a JSON list of the person's groups (docs.feide.no, "Groups API", "School owner group", "School group"):

- exactly one **school owner group**: ``type`` ``fc:org``, ``id`` ``fc:org:<realm>``, no ``parent``; ``orgType``
  ``["primary_and_lower_secondary_owner"]`` (a kommune) and/or ``["upper_secondary_owner"]`` (a fylkeskommune; Oslo,
  a kommune and a county at once, has both), ``eduOrgLegalName``, ``norEduOrgNIN`` (``NO`` + the organisation
  number) and the person's ``membership`` (``affiliation``: ``["member", "student"]``, ``["member", "employee",
  "faculty"]``, ...; ``primaryAffiliation``);
- one or more **school groups**: ``type`` ``fc:org``, ``id`` ``fc:org:<realm>:unit:NO<organisation number>``,
  ``displayName``, ``orgType`` (``primary_and_lower_secondary``, ``upper_secondary``), ``parent`` (the owner's id),
  ``membership.primarySchool`` on the person's main school.

:func:`fetch_groups` reads them through the outbound guard; :func:`parse_groups` (pure) makes them into the
:class:`SchoolFacts` of the sign-in and the person's affiliations. The school's municipality is the owner's, when
the owner is a municipality whose name is one of the Norwegian municipalities' (``municipalities`` table,
:func:`municipality_names`); a county or an independent school's owner gives none.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from typing import Any, Iterable, Mapping

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import Session

from .. import outbound
from ..config import settings
from ..models import IdentityProvider, Municipality
from . import OWNER_COUNTY, OWNER_INDEPENDENT, OWNER_MUNICIPALITY, OWNER_OTHER, SchoolFacts

GROUP_TYPE_ORG = "fc:org"
ORG_TYPE_MUNICIPALITY_OWNER = "primary_and_lower_secondary_owner"  # kommune, eier av grunnskole
ORG_TYPE_COUNTY_OWNER = "upper_secondary_owner"  # fylkeskommune, eier av videregående skole
OWNER_ORG_TYPES = frozenset({ORG_TYPE_MUNICIPALITY_OWNER, ORG_TYPE_COUNTY_OWNER})
MAX_GROUPS_BYTES = 512 * 1024

# Words naming a municipality in its legal name (bokmål/nynorsk, North Sami, Lule/South Sami, Kven) and a county.
_MUNICIPAL_WORDS = frozenset({"kommune", "kommunen", "kommuna", "suohkan", "gielda", "kunta", "tjïelte",
                              "municipality"})
_COUNTY_WORDS = ("fylkeskommune", "fylkkagielda", "fylkeskommuna")
# Legal forms of a company, cooperative or foundation: the owner of an independent school (privatskole).
_COMPANY = re.compile(r"\b(as|asa|sa|ba|da|ans|stiftelse|stiftelsen|stiftinga|foundation)\b")
_TRANSLITERATION = str.maketrans({"æ": "ae", "ø": "o", "å": "a", "á": "a", "č": "c", "đ": "d", "ŋ": "n", "š": "s",
                                  "ŧ": "t", "ž": "z"})


def fetch_groups(provider: IdentityProvider, access_token: str) -> list[dict]:
    """The signed-in person's groups from the provider's Groups API (none when it has none), through the
    outbound guard; any failure (refused, unreachable, not 200, not a JSON list) is an ``OutboundError``."""
    url = provider.groups_api_url
    if not url:
        return []
    policy = outbound.OutboundPolicy.from_settings(current_app.config)
    with outbound.session(policy) as http:
        response = http.get(url, headers={"Authorization": f"Bearer {access_token}", "Accept": "application/json"},
                            timeout=settings().http_timeout_seconds, max_bytes=MAX_GROUPS_BYTES)
    if response.status_code != 200:
        raise outbound.OutboundError(url, f"the Groups API answered HTTP {response.status_code}")
    try:
        groups = response.json()
    except ValueError:
        raise outbound.OutboundError(url, "the Groups API answered no JSON") from None
    if not isinstance(groups, list):
        raise outbound.OutboundError(url, "the Groups API answered no list of groups")
    return [group for group in groups if isinstance(group, dict)]


def municipality_names(session: Session) -> dict[str, str]:
    """The Norwegian municipalities, name -> id (``"Bergen" -> "NO-4601"``), for :func:`parse_groups`. A name two
    municipalities share (Herøy, Våler) is given with its county, so that neither is guessed."""
    rows = session.execute(select(Municipality.id, Municipality.name, Municipality.county_name)
                           .where(Municipality.country == "NO")).all()
    shared = Counter(name.casefold() for _id, name, _county in rows)
    names: dict[str, str] = {}
    for municipality_id, name, county in rows:
        if shared[name.casefold()] > 1:
            name = f"{name} ({county or municipality_id})"
        names[name] = municipality_id
    return names


def parse_groups(groups: Iterable[Any], municipality_names: Mapping[str, str]) -> tuple[SchoolFacts | None,
                                                                                          frozenset[str]]:
    """The school facts and the person's affiliations from the Groups API's answer (untrusted: anything not in
    the documented shape is left out). No ``fc:org`` group: no school facts."""
    orgs = [group for group in groups if isinstance(group, dict) and group.get("type") == GROUP_TYPE_ORG
            and isinstance(group.get("id"), str)]
    affiliations = frozenset(value for group in orgs for value in _affiliations(group.get("membership")))
    schools = [group for group in orgs if isinstance(group.get("parent"), str) and group.get("parent")]
    owners = [group for group in orgs if not group.get("parent")]
    school = _primary_school(schools)
    owner = _owner_of(owners, school)
    if school is None and owner is None:
        return None, affiliations
    legal_name = owner_types = None
    owner_number = None
    if owner is not None:
        legal_name = _text(owner.get("eduOrgLegalName")) or _text(owner.get("displayName"))
        owner_types = frozenset(t for t in owner.get("orgType") or () if isinstance(t, str))
        owner_number = _org_number(owner.get("norEduOrgNIN"))
    municipality_id = None
    if owner is not None:
        municipality_id = resolve_municipality(legal_name, municipality_names) or \
            _municipality_of_realm(owner["id"], municipality_names)
    kind = owner_kind(owner_types or frozenset(), legal_name, municipality_id) if owner is not None else None
    if kind != OWNER_MUNICIPALITY:
        municipality_id = None
    return SchoolFacts(name=_text(school.get("displayName")) if school else None,
                       code=_unit_code(school["id"]) if school else None,
                       owner_name=legal_name, owner_org_number=owner_number, owner_kind=kind,
                       municipality_id=municipality_id), affiliations


def owner_kind(org_types: frozenset[str], legal_name: str | None, municipality_id: str | None) -> str:
    """What kind of owner: a municipality (one we know, or a legal name saying ``kommune``), a county
    (``fylkeskommune``), an independent school's company or foundation, else other (a university, ...)."""
    name = (legal_name or "").casefold()
    if any(word in name for word in _COUNTY_WORDS):
        return OWNER_COUNTY
    if municipality_id is not None:
        return OWNER_MUNICIPALITY
    words = set(re.findall(r"[^\W\d_]+", name))
    if _COMPANY.search(name):
        return OWNER_INDEPENDENT
    if words & _MUNICIPAL_WORDS:
        return OWNER_MUNICIPALITY
    if ORG_TYPE_COUNTY_OWNER in org_types and ORG_TYPE_MUNICIPALITY_OWNER not in org_types and not name:
        return OWNER_COUNTY
    if org_types & OWNER_ORG_TYPES:
        return OWNER_INDEPENDENT  # a school owner that is neither a kommune nor a county: a privatskole's owner
    return OWNER_OTHER


def resolve_municipality(legal_name: str | None, municipality_names: Mapping[str, str]) -> str | None:
    """The municipality whose name the owner's legal name is (``"Bergen kommune"``, ``"Kommunen Bergen"``,
    ``"Porsanger kommune – Porsáŋgu gielda – Porsanginkunta"``); None when none or more than one matches."""
    if not legal_name:
        return None
    index: dict[str, set[str]] = {}
    for name, municipality_id in municipality_names.items():
        for key in _name_keys(name):
            index.setdefault(key, set()).add(municipality_id)
    found: set[str] = set()
    for key in _name_keys(legal_name):
        found |= index.get(key, set())
    return found.pop() if len(found) == 1 else None


def _municipality_of_realm(group_id: str, municipality_names: Mapping[str, str]) -> str | None:
    """``fc:org:bergen.kommune.no`` -> Bergen's id: the realm of a kommune's Feide is ``<name>.kommune.no``."""
    match = re.fullmatch(r"fc:org:([a-z0-9-]+)\.kommune\.no", group_id.strip().lower())
    if not match:
        return None
    wanted = match.group(1).replace("-", " ")
    found = {municipality_id for name, municipality_id in municipality_names.items()
             if any(_ascii(key) == wanted for key in _name_keys(name))}
    return found.pop() if len(found) == 1 else None


def _name_keys(name: str) -> set[str]:
    """A municipality's name, case-folded, without ``kommune`` or its parenthesis; and each of the names of a
    multilingual name (``"Oslo - Oslove"``)."""
    name = unicodedata.normalize("NFC", re.sub(r"\(.*?\)", " ", name)).casefold()
    keys = set()
    for part in [name, *re.split(r"\s+[-–—/]\s+|\s*/\s*", name)]:
        words = [word for word in re.split(r"\s+", part.strip(" ,.")) if word]
        while words and words[0] in _MUNICIPAL_WORDS:
            words.pop(0)
        while words and words[-1] in _MUNICIPAL_WORDS:
            words.pop()
        if words:
            keys.add(" ".join(words))
    return keys


def _ascii(value: str) -> str:
    return value.translate(_TRANSLITERATION).replace("-", " ")


def _text(value: Any) -> str | None:
    """A Feide string, or a translatable one (``{"nb": ..., "nn": ..., "en": ...}``)."""
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, dict):
        for language in ("nb", "nn", "no", "en", *value):
            if isinstance(value.get(language), str) and value[language].strip():
                return str(value[language]).strip()
    return None


def _affiliations(membership: Any) -> set[str]:
    """``membership.affiliation`` (a list, or one string) and ``membership.primaryAffiliation``, lower-case."""
    if not isinstance(membership, dict):
        return set()
    values = membership.get("affiliation")
    found = [values] if isinstance(values, str) else list(values) if isinstance(values, list) else []
    found.append(membership.get("primaryAffiliation"))
    return {value.strip().lower() for value in found if isinstance(value, str) and value.strip()}


def _primary_school(schools: list[dict]) -> dict | None:
    for school in schools:
        membership = school.get("membership")
        if isinstance(membership, dict) and membership.get("primarySchool") is True:
            return school
    return schools[0] if schools else None


def _owner_of(owners: list[dict], school: dict | None) -> dict | None:
    """The school's parent among the owner groups; else the (one) school owner group."""
    if school is not None:
        for owner in owners:
            if owner["id"] == school.get("parent"):
                return owner
    for owner in owners:
        if {t for t in owner.get("orgType") or () if isinstance(t, str)} & OWNER_ORG_TYPES:
            return owner
    return owners[0] if owners else None


def _org_number(value: Any) -> str | None:
    """``"NO123456789"`` -> ``"123456789"``."""
    if not isinstance(value, str) or not value.strip():
        return None
    value = value.strip()
    return value[2:] if value[:2].upper() == "NO" and value[2:].isdigit() else value


def _unit_code(group_id: str) -> str | None:
    """``fc:org:<realm>:unit:NO987654321`` -> ``"987654321"`` (a school abroad: its register id, ``U87654321``)."""
    _owner, separator, unit = group_id.partition(":unit:")
    return _org_number(unit) if separator else None


__all__ = ["GROUP_TYPE_ORG", "ORG_TYPE_COUNTY_OWNER", "ORG_TYPE_MUNICIPALITY_OWNER", "fetch_groups",
           "municipality_names", "owner_kind", "parse_groups", "resolve_municipality"]
