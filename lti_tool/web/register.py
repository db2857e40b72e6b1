"""Registering the tool in a platform: dynamic registration, and the values to paste by hand."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, jsonify, render_template, request
from itsdangerous import BadSignature, URLSafeTimedSerializer

from ..config import settings
from ..db import get_session
from ..domain.errors import DomainError
from ..lti import get_lti
from ..lti.registration import (SCOPES, TOOL_DESCRIPTION, TOOL_NAME, ToolDynamicRegistration, ToolUrls,
                                fetch_platform_configuration)
from .errors import render_domain_error

bp = Blueprint("register", __name__, url_prefix="/lti")
SALT = "lti_tool.dynamic-registration"
REGISTRATION_FORM_SECONDS = 3600  # how long the confirmation form may wait before it is posted


def _urls() -> ToolUrls:
    return ToolUrls(settings().base_url)


def _timeout() -> float:
    return settings().http_timeout_seconds


def _allow_http() -> bool:
    """Plain http platform URLs only outside production (a local test platform); production wants https."""
    return not settings().production


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(settings().secret_key, salt=SALT)


def platform_host() -> str | None:
    """The host of the platform configuration this request names, to count registrations per platform (rate
    limits): the ``openid_configuration`` parameter (unverified, only to pick a counter), or the one carried in
    the signed confirmation form."""
    url = request.args.get("openid_configuration", "")
    if request.method == "POST":
        try:
            url = _serializer().loads(request.form.get("carried", ""), max_age=REGISTRATION_FORM_SECONDS)["u"]
        except (BadSignature, KeyError, TypeError):
            return None
    try:
        return urlsplit(str(url)).hostname or None
    except ValueError:
        return None


@bp.route("/register", methods=["GET"])
def start():
    """The platform opens this page with ``openid_configuration`` (and maybe ``registration_token``)."""
    url = request.args.get("openid_configuration", "")
    token = request.args.get("registration_token") or None
    try:
        config = fetch_platform_configuration(url, token, timeout=_timeout(), allow_http=_allow_http(),
                                              policy=get_lti().outbound)
    except DomainError as error:
        return render_domain_error(error)
    carried = _serializer().dumps({"u": url, "t": token})
    platform = config.get("https://purl.imsglobal.org/spec/lti-platform-configuration") or {}
    return render_template("register/confirm.html", issuer=config["issuer"], carried=carried,
                           product=platform.get("product_family_code"), urls=_urls())


@bp.route("/register", methods=["POST"])
def finish():
    try:
        carried = _serializer().loads(request.form.get("carried", ""), max_age=REGISTRATION_FORM_SECONDS)
    except BadSignature:
        return render_domain_error(DomainError("registration form expired", code="registration_expired"))
    session = get_session()
    try:
        registered = ToolDynamicRegistration(session, carried["u"], carried["t"], _urls(), timeout=_timeout(),
                                             policy=get_lti().outbound, allow_http=_allow_http()).register()
        session.commit()
    except DomainError as error:
        session.rollback()
        return render_domain_error(error)
    return render_template("register/done.html", registration=registered.registration,
                           deployment_id=registered.deployment_id)


@bp.route("/config")
def manual():
    """Every URL and value an administrator pastes by hand where the platform has no dynamic registration."""
    return render_template("register/manual.html", urls=_urls(), scopes=SCOPES, name=TOOL_NAME)


@bp.route("/config/canvas.json")
def canvas_json():
    """A Canvas developer-key JSON configuration; privacy level anonymous: no names or e-mail."""
    urls = _urls()
    return jsonify({
        "title": TOOL_NAME,
        "description": TOOL_DESCRIPTION,
        "oidc_initiation_url": urls.login,
        "target_link_uri": urls.launch,
        "public_jwk_url": urls.jwks,
        "scopes": SCOPES,
        "extensions": [{
            "domain": urls.domain,
            "platform": "canvas.instructure.com",
            "privacy_level": "anonymous",
            "settings": {"placements": [
                {"placement": "link_selection", "message_type": "LtiDeepLinkingRequest",
                 "target_link_uri": urls.launch, "text": TOOL_NAME},
                {"placement": "assignment_selection", "message_type": "LtiDeepLinkingRequest",
                 "target_link_uri": urls.launch, "text": TOOL_NAME},
            ]},
        }],
        "custom_fields": {"canvas_account_id": "$Canvas.account.id"},
    })
