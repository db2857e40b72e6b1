"""The pure domain, without Flask, database or network."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

from lti_tool.domain.claims import (CLAIM_CONTEXT, CLAIM_CUSTOM, CLAIM_DEPLOYMENT_ID, CLAIM_LAUNCH_PRESENTATION,
                                    CLAIM_MESSAGE_TYPE, CLAIM_RESOURCE_LINK, CLAIM_ROLES, CLAIM_TARGET_LINK_URI,
                                    CLAIM_VERSION, check_audience, check_times, is_own_url, locale_from_claims,
                                    map_role, normalise_locale, parse_launch_claims)
from lti_tool.domain.errors import ClaimError, MunicipalityNotAllowedError, MunicipalityUnresolvedError
from lti_tool.domain.resolution import (make_municipality_id, parse_municipality_id, resolve_municipality)

BASE = "https://tool.example"


def body(**changes):
    claims = {
        "iss": "https://lms.example", "aud": "client-1", "sub": "abc123", "nonce": "n",
        CLAIM_VERSION: "1.3.0", CLAIM_MESSAGE_TYPE: "LtiResourceLinkRequest", CLAIM_DEPLOYMENT_ID: "dep-1",
        CLAIM_TARGET_LINK_URI: BASE + "/lti/launch", CLAIM_RESOURCE_LINK: {"id": "rl-1", "title": "Gitarr"},
        CLAIM_ROLES: ["http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"],
        CLAIM_CONTEXT: {"id": "ctx-1", "title": "Musik"}, CLAIM_CUSTOM: {"course": "GIT-AK-1", "n": 5},
        CLAIM_LAUNCH_PRESENTATION: {"locale": "nb-NO"},
    }
    for key, value in changes.items():
        if value is None:
            claims.pop(key, None)
        else:
            claims[key] = value
    return claims


# -- claims ------------------------------------------------------------------------------------------

def test_parse_a_resource_link_launch():
    claims = parse_launch_claims(body(), client_id="client-1", base_url=BASE)
    assert (claims.sub, claims.deployment_id, claims.role, claims.resource_link_id) == \
        ("abc123", "dep-1", "learner", "rl-1")
    assert claims.custom == {"course": "GIT-AK-1", "n": "5"}  # custom values are strings
    assert claims.locale == "nb-NO" and claims.context_id == "ctx-1"


@pytest.mark.parametrize("changes, code", [
    ({CLAIM_VERSION: "1.1"}, "version_invalid"),
    ({CLAIM_VERSION: None}, "version_invalid"),
    ({CLAIM_MESSAGE_TYPE: "Nope"}, "message_type_unknown"),
    ({CLAIM_MESSAGE_TYPE: None}, "message_type_unknown"),
    ({CLAIM_MESSAGE_TYPE: "LtiSubmissionReviewRequest"}, "message_type_unsupported"),
    ({"sub": None}, "sub_missing"),
    ({"sub": "  "}, "sub_missing"),
    ({CLAIM_DEPLOYMENT_ID: None}, "deployment_id_invalid"),
    ({CLAIM_DEPLOYMENT_ID: "d" * 256}, "deployment_id_invalid"),
    ({CLAIM_TARGET_LINK_URI: "https://evil.example/lti/launch"}, "target_link_uri_invalid"),
    ({CLAIM_TARGET_LINK_URI: "http://tool.example/lti/launch"}, "target_link_uri_invalid"),
    ({CLAIM_ROLES: None}, "roles_missing"),
    ({CLAIM_RESOURCE_LINK: None}, "resource_link_missing"),
    ({CLAIM_RESOURCE_LINK: {"id": ""}}, "resource_link_missing"),
])
def test_claim_refusals(changes, code):
    with pytest.raises(ClaimError) as caught:
        parse_launch_claims(body(**changes), client_id="client-1", base_url=BASE)
    assert caught.value.code == code


def test_empty_roles_are_allowed_and_mean_neither_pupil_nor_teacher():
    """No course role takes no paid seat and sees no pupil's work (the launch refuses it: role_not_served)."""
    assert parse_launch_claims(body(**{CLAIM_ROLES: []}), client_id="client-1", base_url=BASE).role == "other"


@pytest.mark.parametrize("roles, role", [
    (["http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"], "instructor"),
    (["Instructor"], "instructor"),
    (["http://purl.imsglobal.org/vocab/lis/v2/institution/person#Administrator",
      "http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"], "administrator"),
    (["http://purl.imsglobal.org/vocab/lis/v2/system/person#SysAdmin"], "administrator"),
    (["http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"], "learner"),
    (["http://purl.imsglobal.org/vocab/lis/v2/institution/person#Student"], "learner"),
    # An institution's teacher who is this course's pupil is a pupil here; a teacher role elsewhere is no role.
    (["http://purl.imsglobal.org/vocab/lis/v2/membership#Learner",
      "http://purl.imsglobal.org/vocab/lis/v2/institution/person#Faculty"], "learner"),
    (["http://purl.imsglobal.org/vocab/lis/v2/institution/person#Instructor"], "other"),
    (["http://purl.imsglobal.org/vocab/lis/v2/membership#Mentor"], "other"),
    (["http://purl.imsglobal.org/vocab/lis/v2/system/person#None"], "other"),
])
def test_map_role(roles, role):
    assert map_role(roles) == role


@pytest.mark.parametrize("aud, azp, code", [
    ("other", None, "audience_invalid"),
    ([], None, "audience_invalid"),
    (["other", "more"], "client-1", "audience_invalid"),
    (["client-1", "other"], None, "azp_invalid"),
    (["client-1", "other"], "other", "azp_invalid"),
    ("client-1", "other", "azp_invalid"),
    (42, None, "audience_invalid"),
])
def test_audience_refusals(aud, azp, code):
    with pytest.raises(ClaimError) as caught:
        check_audience(aud, azp, "client-1")
    assert caught.value.code == code


@pytest.mark.parametrize("aud, azp", [("client-1", None), (["client-1"], None), (["client-1", "x"], "client-1"),
                                      ("client-1", "client-1")])
def test_audience_accepted(aud, azp):
    check_audience(aud, azp, "client-1")


def test_times_with_leeway():
    check_times({"iat": 1000, "exp": 1300}, now=1100, leeway=60)
    check_times({"iat": 1150, "exp": 1300}, now=1100, leeway=60)  # clock 50 s ahead: fine
    check_times({"iat": 900, "exp": 1050}, now=1100, leeway=60)   # 50 s late: fine
    check_times({"iat": 1000, "exp": 1300, "nbf": 1150}, now=1100, leeway=60)  # nbf 50 s ahead: fine
    check_times({"iat": 1000, "exp": 1300, "nbf": 900.5}, now=1100, leeway=60)
    for claims, now, code in [({"iat": 1000, "exp": 1030}, 1100, "token_expired"),
                              ({"iat": 1200, "exp": 1500}, 1100, "token_not_yet_valid"),
                              ({"iat": 1000}, 1100, "token_expired"),
                              ({"exp": 1300}, 1100, "token_not_yet_valid"),
                              ({"iat": True, "exp": 1300}, 1100, "token_not_yet_valid"),
                              ({"iat": 1000, "exp": 1300, "nbf": 1200}, 1100, "token_not_yet_valid"),
                              ({"iat": 1000, "exp": 1300, "nbf": "1000"}, 1100, "token_not_yet_valid"),
                              ({"iat": 1000, "exp": 1300, "nbf": False}, 1100, "token_not_yet_valid")]:
        with pytest.raises(ClaimError) as caught:
            check_times(claims, now=now, leeway=60)
        assert caught.value.code == code


def test_own_url():
    assert is_own_url("https://tool.example/lti/launch?x=1", BASE)
    assert is_own_url("https://TOOL.example/", BASE)
    assert not is_own_url("https://tool.example.evil.com/", BASE)
    assert not is_own_url("//tool.example/", BASE)
    assert not is_own_url("javascript:alert(1)", BASE)


@pytest.mark.parametrize("tag, locale", [("sv-SE", "sv"), ("nb-NO", "nb"), ("no", "nb"), ("nn-NO", "nn"),
                                         ("en_GB", "en"), ("de-DE", None), ("", None), (None, None)])
def test_normalise_locale(tag, locale):
    assert normalise_locale(tag) == locale


def test_locale_from_claims_prefers_launch_presentation():
    assert locale_from_claims({"locale": "en", CLAIM_LAUNCH_PRESENTATION: {"locale": "sv"}}) == "sv"
    assert locale_from_claims({"locale": "en"}) == "en"
    assert locale_from_claims({}) is None


# -- home municipality ----------------------------------------------------------------------------

def test_single_municipality_deployment():
    resolution = resolve_municipality(["SE-1490"], None, {"municipality_code": "SE-1440"})
    assert (resolution.municipality_id, resolution.method) == ("SE-1490", "deployment")


def test_shared_deployment_uses_the_signed_parameter():
    resolution = resolve_municipality(["SE-1490", "SE-1440"], "municipality_code", {"municipality_code": "se-1440"})
    assert (resolution.municipality_id, resolution.method) == ("SE-1440", "custom_parameter")


def test_shared_deployment_accepts_a_bare_code_when_unambiguous():
    assert resolve_municipality(["SE-1490", "NO-0301"], "kommun", {"kommun": "0301"}).municipality_id == "NO-0301"
    with pytest.raises(MunicipalityNotAllowedError):
        resolve_municipality(["SE-0301", "NO-0301"], "kommun", {"kommun": "0301"})


@pytest.mark.parametrize("custom", [{}, {"municipality_code": ""}, {"municipality_code": "$Canvas.account.id"}])
def test_shared_deployment_without_a_value_guesses_nothing(custom):
    with pytest.raises(MunicipalityUnresolvedError) as caught:
        resolve_municipality(["SE-1490", "SE-1440"], "municipality_code", custom)
    assert caught.value.code == "municipality_unresolved"


def test_shared_deployment_with_a_municipality_not_allowed():
    with pytest.raises(MunicipalityNotAllowedError) as caught:
        resolve_municipality(["SE-1490", "SE-1440"], "municipality_code", {"municipality_code": "NO-0301"})
    assert caught.value.code == "municipality_not_allowed"


def test_no_municipality_bound():
    with pytest.raises(MunicipalityUnresolvedError):
        resolve_municipality([], None, {})


def test_several_municipalities_without_a_parameter_name():
    with pytest.raises(MunicipalityUnresolvedError):
        resolve_municipality(["SE-1490", "SE-1440"], None, {"municipality_code": "SE-1490"})


def test_municipality_ids():
    assert make_municipality_id("se", "114") == "SE-0114"
    assert parse_municipality_id(" no-0301 ") == "NO-0301"
    for bad in ("DK-0101", "SE-14900", "SE1490", ""):
        with pytest.raises(ValueError):
            parse_municipality_id(bad)
    with pytest.raises(ValueError):
        make_municipality_id("DK", "0101")


def test_domain_imports_only_the_standard_library():
    domain = Path(__file__).resolve().parents[1] / "lti_tool" / "domain"
    stdlib = set(sys.stdlib_module_names) | {"__future__"}
    for path in domain.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:  # relative: must stay inside domain
                    assert node.level == 1, f"{path.name} imports outside domain/"
                    continue
                names = [node.module or ""]
            else:
                continue
            for name in names:
                assert name.split(".")[0] in stdlib, f"{path.name} imports {name}"


def test_lti_adapters_never_import_the_web_layer_or_services():
    """``lti/`` is a protocol adapter: the web layer calls it (and passes in what it needs, e.g. the framing
    hook of the launch), never the other way round."""
    lti = Path(__file__).resolve().parents[1] / "lti_tool" / "lti"
    for path in lti.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                module = ("." * node.level) + (node.module or "")
                names = [module] + [f"{module}.{alias.name}" for alias in node.names]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            for name in names:
                parts = name.replace("lti_tool.", "..").lstrip(".").split(".")
                assert parts[0] not in ("web", "services"), f"lti/{path.name} imports {name}"


def test_catalog_sync_never_imports_the_web_layer():
    """``catalog_sync`` runs from the CLI and the staff console's "Sync now": it may use services and models,
    never a blueprint or a view."""
    folder = Path(__file__).resolve().parents[1] / "catalog_sync"
    for path in folder.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""] + [f"{node.module}.{alias.name}" for alias in node.names]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            for name in names:
                assert not name.startswith(("lti_tool.web", "web.", "flask")), \
                    f"catalog_sync/{path.name} imports {name}"


def test_the_services_package_module_holds_no_logic():
    """``services/__init__.py`` only describes the layer: every use case lives in a named module (``platforms``,
    ``admission``, ``reports``, ...), imported from there."""
    path = Path(__file__).resolve().parents[1] / "lti_tool" / "services" / "__init__.py"
    tree = ast.parse(path.read_text("utf-8"))
    defined = [node.name for node in ast.walk(tree)
               if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]
    assert defined == [], f"services/__init__.py defines {defined}"
    imports = [node.lineno for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))
               and getattr(node, "module", None) != "__future__"]
    assert imports == [], f"services/__init__.py imports (re-exports) on lines {imports}"


@pytest.mark.parametrize("given, kept", [
    ("https://lms.example/course/7?x=1", "https://lms.example/course/7?x=1"),
    ("http://lms.example", "http://lms.example"),
    ("javascript:alert(1)", None),
    ("https://lms.example/a b", None),
    ("//lms.example/course", None),
    ("", None),
])
def test_the_way_back_is_a_plain_web_address(given, kept):
    claims = parse_launch_claims(body(**{CLAIM_LAUNCH_PRESENTATION: {"locale": "sv", "return_url": given}}),
                                 client_id="client-1", base_url=BASE)
    assert claims.return_url == kept


def test_pages_and_the_numbers_a_pager_links_to():
    from lti_tool.domain.paging import page_numbers, pages_for

    assert pages_for(0, 3, 50) == (1, 1) and pages_for(101, 9, 50) == (3, 3) and pages_for(100, -1, 50) == (1, 2)
    assert page_numbers(1, 1) == [1]
    assert page_numbers(6, 12) == [1, None, 4, 5, 6, 7, 8, None, 12]
    assert page_numbers(2, 5) == [1, 2, 3, 4, 5]
