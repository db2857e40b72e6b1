"""Parsing an id_token's claims into a typed launch, and the claim checks of LTI 1.3 Core.

Pure: standard library only. The signature has been verified before these functions run; they
decide whether what the platform signed is a launch we accept.
"""

from __future__ import annotations

import re

from dataclasses import dataclass, field
from typing import Any, Callable, Collection, Mapping, Sequence
from urllib.parse import urlsplit

from .errors import ClaimError

LTI = "https://purl.imsglobal.org/spec/lti/claim/"
CLAIM_VERSION = LTI + "version"
CLAIM_MESSAGE_TYPE = LTI + "message_type"
CLAIM_DEPLOYMENT_ID = LTI + "deployment_id"
CLAIM_TARGET_LINK_URI = LTI + "target_link_uri"
CLAIM_RESOURCE_LINK = LTI + "resource_link"
CLAIM_ROLES = LTI + "roles"
CLAIM_CONTEXT = LTI + "context"
CLAIM_CUSTOM = LTI + "custom"
CLAIM_LAUNCH_PRESENTATION = LTI + "launch_presentation"
CLAIM_TOOL_PLATFORM = LTI + "tool_platform"
CLAIM_DEEP_LINKING_SETTINGS = "https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings"
CLAIM_AGS = "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"
CLAIM_NRPS = "https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice"
SCOPE_LINEITEM = "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem"
SCOPE_LINEITEM_READONLY = "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem.readonly"
SCOPE_SCORE = "https://purl.imsglobal.org/spec/lti-ags/scope/score"
SCOPE_NRPS = "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"

MESSAGE_RESOURCE_LINK = "LtiResourceLinkRequest"
MESSAGE_DEEP_LINKING = "LtiDeepLinkingRequest"
# 1EdTech LTI Data Privacy Launch: the platform opens the tool for a user to learn how it handles their
# data. No resource link; never takes a seat; shows the privacy notice.
MESSAGE_DATA_PRIVACY = "LtiDataPrivacyLaunchRequest"
# Message types LTI 1.3 and its services define. A type outside this set is unknown.
KNOWN_MESSAGE_TYPES = frozenset({
    MESSAGE_RESOURCE_LINK, MESSAGE_DEEP_LINKING, "LtiSubmissionReviewRequest", MESSAGE_DATA_PRIVACY,
    "LtiStartProctoring", "LtiEndAssessment",
})
# Message types this tool serves today.
SUPPORTED_MESSAGE_TYPES = frozenset({MESSAGE_RESOURCE_LINK, MESSAGE_DEEP_LINKING, MESSAGE_DATA_PRIVACY})

MAX_DEPLOYMENT_ID_LENGTH = 255

ROLE_LEARNER = "learner"
ROLE_INSTRUCTOR = "instructor"
ROLE_ADMINISTRATOR = "administrator"
# Anyone else: a course's Mentor (a parent), an observer, a guest, or no course role at all. Never a pupil (a
# pupil takes a paid seat) and never a teacher (a teacher sees the pupils' work).
ROLE_OTHER = "other"

_INSTRUCTOR_ROLES = (
    "http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor",
    "http://purl.imsglobal.org/vocab/lis/v2/membership#ContentDeveloper",
    "http://purl.imsglobal.org/vocab/lis/v2/membership/Instructor#TeachingAssistant",
)
# A pupil: the context role Learner, its short form and its sub-roles, or a pupil of the institution
# (``institution/person#Student`` or ``#Learner``; some platforms send only these for a pupil). The institution's
# teacher roles (``#Faculty``, ``#Instructor``) say what a person is somewhere in the platform, not in this
# course: they make no one this course's teacher.
_LEARNER_ROLES = ("http://purl.imsglobal.org/vocab/lis/v2/membership#Learner", "Learner",
                  "http://purl.imsglobal.org/vocab/lis/v2/institution/person#Student",
                  "http://purl.imsglobal.org/vocab/lis/v2/institution/person#Learner")
_LEARNER_SUB_ROLE_PREFIX = "http://purl.imsglobal.org/vocab/lis/v2/membership/Learner#"
# Short forms allowed by LTI 1.3 for context roles ("Instructor", "Learner", ...).
_SHORT_INSTRUCTOR = ("Instructor", "ContentDeveloper", "TeachingAssistant")


@dataclass(frozen=True)
class LaunchClaims:
    """What an accepted id_token says, in the tool's terms."""

    issuer: str
    client_id: str
    deployment_id: str
    message_type: str
    sub: str
    roles: tuple[str, ...]
    role: str
    target_link_uri: str
    nonce: str
    resource_link_id: str | None = None
    resource_link_title: str | None = None
    context_id: str | None = None
    context_title: str | None = None
    custom: Mapping[str, str] = field(default_factory=dict)
    locale: str | None = None
    platform_guid: str | None = None
    ags_lineitems: str | None = None
    ags_lineitem: str | None = None
    ags_scopes: tuple[str, ...] = ()
    nrps_url: str | None = None
    deep_linking: Mapping[str, Any] | None = None
    # The person's name as the platform sends it (OpenID Connect ``name``, else ``given_name`` and
    # ``family_name``), or None where it shares none. Kept only on a pupil's seat, for the round's teacher.
    name: str | None = None
    # Where the platform wants the person back (``launch_presentation.return_url``, http or https only): the way
    # back on a refusal page.
    return_url: str | None = None


def check_audience(aud: Any, azp: Any, client_id: str) -> None:
    """``aud`` must contain our client_id; with several audiences ``azp`` must be present and equal it."""
    audiences = [aud] if isinstance(aud, str) else list(aud) if isinstance(aud, (list, tuple)) else []
    if not audiences or not all(isinstance(a, str) for a in audiences) or client_id not in audiences:
        raise ClaimError(f"aud {aud!r} does not contain client_id {client_id!r}", code="audience_invalid")
    if len(audiences) > 1 and azp != client_id:
        raise ClaimError(f"several audiences and azp {azp!r} is not {client_id!r}", code="azp_invalid")
    if azp is not None and azp != client_id:
        raise ClaimError(f"azp {azp!r} is not {client_id!r}", code="azp_invalid")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_times(body: Mapping[str, Any], now: float, leeway: float) -> None:
    """``exp`` in the future, ``iat`` and (when present) ``nbf`` not in the future, all within ``leeway``
    seconds."""
    exp, iat, nbf = body.get("exp"), body.get("iat"), body.get("nbf")
    if not _is_number(exp):
        raise ClaimError("exp missing or not a number", code="token_expired")
    if not _is_number(iat):
        raise ClaimError("iat missing or not a number", code="token_not_yet_valid")
    if nbf is not None and not _is_number(nbf):
        raise ClaimError("nbf not a number", code="token_not_yet_valid")
    assert exp is not None and iat is not None  # numbers, as checked just above
    if exp + leeway < now:
        raise ClaimError(f"expired at {exp}, now {now:.0f}", code="token_expired")
    if iat - leeway > now:
        raise ClaimError(f"issued at {iat}, in the future (now {now:.0f})", code="token_not_yet_valid")
    if nbf is not None and nbf - leeway > now:
        raise ClaimError(f"not valid before {nbf} (now {now:.0f})", code="token_not_yet_valid")


# Course-level roles platforms give the people who run a course, besides membership#Instructor: the
# course's Administrator (Open edX gives it to a course's Admin, its course staff get Instructor; Canvas and
# Moodle give Instructor to TeacherEnrollment, its custom variants and editingteacher alike, Administrator
# only to account or site administrators, who also carry an institution or system role) and the sub-roles of
# Instructor and Administrator. A course-level Administrator reaches the teacher pages of their own context;
# only an institution or system role makes the tool's administrator.
_CONTEXT_ADMIN_ROLES = (
    "http://purl.imsglobal.org/vocab/lis/v2/membership#Administrator",
    "Administrator",
)
_SUB_ROLE_PREFIXES = (
    "http://purl.imsglobal.org/vocab/lis/v2/membership/Instructor#",
    "http://purl.imsglobal.org/vocab/lis/v2/membership/Administrator#",
)


def map_role(roles: Sequence[str]) -> str:
    """The tool's own role from the LTI roles: administrator (an institution or system administrator),
    instructor (a course role of the people who run the course: Instructor, ContentDeveloper, the course's
    Administrator and their sub-roles), learner (the course role Learner or one of its sub-roles), else other
    (Mentor, observer, guest, no course role): nothing is guessed from an institution role."""
    if is_platform_administrator(roles):
        return ROLE_ADMINISTRATOR
    for role in roles:
        if (role in _INSTRUCTOR_ROLES or role in _SHORT_INSTRUCTOR or role in _CONTEXT_ADMIN_ROLES
                or role.startswith(_SUB_ROLE_PREFIXES)):
            return ROLE_INSTRUCTOR
    for role in roles:
        if role in _LEARNER_ROLES or role.startswith(_LEARNER_SUB_ROLE_PREFIX):
            return ROLE_LEARNER
    return ROLE_OTHER


# Roles of the person in the platform (institution) or the platform itself (system). Only these can make someone
# the municipality's administrator; a course (context) role, ``membership#Administrator``, its short form
# ``Administrator`` or a sub-role ``membership/Administrator#...``, is given by whoever runs a course and never does.
INSTITUTION_ADMINISTRATOR = "http://purl.imsglobal.org/vocab/lis/v2/institution/person#Administrator"
INSTITUTION_ADMIN_ROLES = frozenset({INSTITUTION_ADMINISTRATOR})
SYSTEM_ADMIN_ROLES = frozenset({"http://purl.imsglobal.org/vocab/lis/v2/system/person#Administrator",
                                "http://purl.imsglobal.org/vocab/lis/v2/system/person#SysAdmin"})


def may_place_courses(role: str) -> bool:
    """Placing a course (deep linking) is for the people who run courses and the platform's administrators;
    never for a pupil or anyone without a course role."""
    return role in (ROLE_INSTRUCTOR, ROLE_ADMINISTRATOR)


def is_platform_administrator(roles: Sequence[str]) -> bool:
    """An institution or system administrator role (full LIS v2 URI), never a course (context) role."""
    return any(role in INSTITUTION_ADMIN_ROLES or role in SYSTEM_ADMIN_ROLES for role in roles)


def may_open_municipal_console(roles: Sequence[str], *, named_roles: Collection[str],
                               is_listed_contact: Callable[[], bool]) -> bool:
    """The municipal console (orders and seat budgets: the municipality's money): an institution or system
    administrator who is listed as the municipality's contact, or who also carries a role the platform's
    configuration names as the municipality's administrator role (``named_roles``). ``is_listed_contact`` is
    asked only when the roles alone do not decide."""
    if not is_platform_administrator(roles):
        return False
    if any(role in named_roles for role in roles):
        return True
    return bool(is_listed_contact())


def is_own_url(url: str, base_url: str) -> bool:
    """True when ``url`` is on the tool's own origin (scheme, host and port of ``base_url``)."""
    try:
        target, base = urlsplit(url), urlsplit(base_url)
    except ValueError:
        return False
    return (target.scheme, target.netloc.lower()) == (base.scheme, base.netloc.lower()) and bool(target.scheme)


def _optional_str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


MAX_NAME_LENGTH = 255
_CONTROL = dict.fromkeys(range(32), " ") | {127: " "}


def _name_part(value: Any) -> str:
    return " ".join(value.translate(_CONTROL).split()) if isinstance(value, str) else ""


def person_name(body: Mapping[str, Any]) -> str | None:
    """The person's name from the OpenID Connect claims a platform may send with a launch: ``name``, else
    ``given_name`` and ``family_name`` (either alone too), whitespace and control characters collapsed to single
    spaces, at most 255 characters; None when the platform shares no name (as an anonymous Canvas key, or a
    dynamic registration that asked for none)."""
    name = _name_part(body.get("name"))
    if not name:
        name = " ".join(part for part in (_name_part(body.get("given_name")), _name_part(body.get("family_name")))
                        if part)
    return name[:MAX_NAME_LENGTH].strip() or None


def parse_launch_claims(body: Mapping[str, Any], *, client_id: str, base_url: str) -> LaunchClaims:
    """Check the LTI claims of a verified id_token and return them typed.

    Raises :class:`ClaimError` with the code of the first check that fails.
    """
    if body.get(CLAIM_VERSION) != "1.3.0":
        raise ClaimError(f"version {body.get(CLAIM_VERSION)!r}", code="version_invalid")
    message_type = body.get(CLAIM_MESSAGE_TYPE)
    if not isinstance(message_type, str) or message_type not in KNOWN_MESSAGE_TYPES:
        raise ClaimError(f"message_type {message_type!r}", code="message_type_unknown")
    if message_type not in SUPPORTED_MESSAGE_TYPES:
        raise ClaimError(f"message_type {message_type!r} not served", code="message_type_unsupported")

    sub = body.get("sub")
    if not isinstance(sub, str) or not sub.strip():
        raise ClaimError("sub missing", code="sub_missing")

    deployment_id = body.get(CLAIM_DEPLOYMENT_ID)
    if not isinstance(deployment_id, str) or not deployment_id:
        raise ClaimError("deployment_id missing", code="deployment_id_invalid")
    if len(deployment_id) > MAX_DEPLOYMENT_ID_LENGTH:
        raise ClaimError("deployment_id longer than 255", code="deployment_id_invalid")

    target = body.get(CLAIM_TARGET_LINK_URI)
    if not isinstance(target, str) or not is_own_url(target, base_url):
        raise ClaimError(f"target_link_uri {target!r} is not ours", code="target_link_uri_invalid")

    roles = body.get(CLAIM_ROLES)
    if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
        raise ClaimError("roles claim missing", code="roles_missing")

    resource_link = body.get(CLAIM_RESOURCE_LINK)
    resource_link_id = resource_link_title = None
    if isinstance(resource_link, Mapping):
        resource_link_id = _optional_str(resource_link.get("id"))
        resource_link_title = _optional_str(resource_link.get("title"))
    if message_type == MESSAGE_RESOURCE_LINK and not resource_link_id:
        raise ClaimError("resource_link.id missing", code="resource_link_missing")

    context = body.get(CLAIM_CONTEXT)
    context_id = context_title = None
    if isinstance(context, Mapping):
        context_id = _optional_str(context.get("id"))
        context_title = _optional_str(context.get("title"))

    custom_raw = body.get(CLAIM_CUSTOM)
    custom = {str(k): str(v) for k, v in custom_raw.items()} if isinstance(custom_raw, Mapping) else {}

    presentation = body.get(CLAIM_LAUNCH_PRESENTATION)
    locale = _optional_str(presentation.get("locale")) if isinstance(presentation, Mapping) else None
    locale = locale or _optional_str(body.get("locale"))
    return_url = _optional_str(presentation.get("return_url")) if isinstance(presentation, Mapping) else None
    if return_url is not None and (len(return_url) > 2000 or not re.match(r"https?://[^\s/]+(/\S*)?$", return_url)):
        return_url = None  # only a plain web address is linked

    platform = body.get(CLAIM_TOOL_PLATFORM)
    guid = _optional_str(platform.get("guid")) if isinstance(platform, Mapping) else None

    ags_claim, nrps_claim = body.get(CLAIM_AGS), body.get(CLAIM_NRPS)
    ags: Mapping[str, Any] = ags_claim if isinstance(ags_claim, Mapping) else {}
    scope_claim = ags.get("scope")
    scopes: list[Any] = scope_claim if isinstance(scope_claim, list) else []
    nrps: Mapping[str, Any] = nrps_claim if isinstance(nrps_claim, Mapping) else {}

    deep_linking = None
    if message_type == MESSAGE_DEEP_LINKING:
        settings = body.get(CLAIM_DEEP_LINKING_SETTINGS)
        if (not isinstance(settings, Mapping) or not _optional_str(settings.get("deep_link_return_url"))
                or not isinstance(settings.get("accept_types"), list)):
            raise ClaimError("deep_linking_settings missing or without return URL / accept_types",
                             code="deep_linking_settings_missing")
        deep_linking = dict(settings)

    nonce = body.get("nonce")
    return LaunchClaims(
        issuer=str(body.get("iss")),
        client_id=client_id,
        deployment_id=deployment_id,
        message_type=message_type,
        sub=sub,
        roles=tuple(roles),
        role=map_role(roles),
        target_link_uri=target,
        nonce=nonce if isinstance(nonce, str) else "",
        resource_link_id=resource_link_id,
        resource_link_title=resource_link_title,
        context_id=context_id,
        context_title=context_title,
        custom=custom,
        locale=locale,
        platform_guid=guid,
        ags_lineitems=_optional_str(ags.get("lineitems")),
        ags_lineitem=_optional_str(ags.get("lineitem")),
        ags_scopes=tuple(x for x in scopes if isinstance(x, str)),
        nrps_url=_optional_str(nrps.get("context_memberships_url")),
        deep_linking=deep_linking,
        name=person_name(body),
        return_url=return_url,
    )


def locale_from_claims(body: Mapping[str, Any]) -> str | None:
    """The launch's locale (``launch_presentation.locale``, else OpenID ``locale``), unverified is fine
    for choosing the language of an error page."""
    presentation = body.get(CLAIM_LAUNCH_PRESENTATION)
    locale = _optional_str(presentation.get("locale")) if isinstance(presentation, Mapping) else None
    return locale or _optional_str(body.get("locale"))


SUPPORTED_LOCALES = ("sv", "nb", "nn", "en")


def normalise_locale(value: str | None) -> str | None:
    """Map a BCP 47 tag to one of the interface languages: sv, nb, nn, en (``no`` is bokmål)."""
    if not value:
        return None
    tag = value.replace("_", "-").lower()
    primary = tag.split("-")[0]
    if primary == "no":
        return "nn" if "nynorsk" in tag else "nb"
    if primary in SUPPORTED_LOCALES:
        return primary
    return None
