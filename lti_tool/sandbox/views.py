"""The sandbox platform's pages (blueprint ``sandbox``, at ``/sandbox/``): pick a municipality and a role,
launch the tool in an iframe; its OIDC authorization endpoint, key set and deep-linking return.
:func:`init_app` makes the app's :class:`SandboxPlatform` and :func:`get_platform` returns it."""

from __future__ import annotations

from flask import Blueprint, Flask, abort, current_app, jsonify, redirect, render_template, request
from sqlalchemy import select

from ..config import settings
from ..db import get_session
from ..models import REGISTRATION_ACTIVE, Deployment, Registration
from ..domain.claims import MESSAGE_DEEP_LINKING, MESSAGE_RESOURCE_LINK
from ..web.security import origin_of
from .platform import (CLIENT_ID, ROLES, SHARED_DEPLOYMENT, STORAGE_FRAME, STORAGE_MODES, LaunchSpec, SandboxError,
                       SandboxPlatform)

bp = Blueprint("sandbox", __name__, url_prefix="/sandbox")
EXTENSION_KEY = "lti_tool.sandbox"
LOCALES = {"sv-SE": "Svenska", "nb-NO": "Norsk bokmål", "nn-NO": "Norsk nynorsk", "en-GB": "English"}


def get_platform(app: Flask | None = None) -> SandboxPlatform:
    """The app's sandbox platform (the current app by default)."""
    platform: SandboxPlatform = (app or current_app).extensions[EXTENSION_KEY]
    return platform


def _choices():
    """(value, municipality, shared?) for every active deployment of the sandbox registration."""
    platform = get_platform()
    session = get_session()
    registration = session.scalar(select(Registration).where(Registration.issuer == platform.issuer,
                                                             Registration.client_id == CLIENT_ID,
                                                             Registration.status == REGISTRATION_ACTIVE))
    if registration is None:
        return []
    choices = []
    deployments = session.scalars(select(Deployment).where(Deployment.registration_id == registration.id)
                                  .order_by(Deployment.deployment_id))
    for deployment in deployments:
        for binding in deployment.municipalities:
            shared = deployment.deployment_id == SHARED_DEPLOYMENT
            choices.append({"value": f"{deployment.deployment_id}|{binding.municipality_id if shared else ''}",
                            "municipality": binding.municipality_id, "shared": shared,
                            "status": deployment.status})
    return choices


def _on_own_site():
    """The sandbox's pages are served on the platform's own base URL (a different site from the tool)."""
    own = origin_of(get_platform().base_url)
    if origin_of(request.host_url) != own:
        return redirect(own + request.full_path.rstrip("?"))
    return None


@bp.route("/")
def index():
    from ..models import COURSE_ACTIVE, Course, Municipality

    moved = _on_own_site()
    if moved is not None:
        return moved
    session = get_session()
    names = {m.id: m.name for m in session.scalars(select(Municipality))}
    choices = sorted(_choices(), key=lambda c: (c["shared"], c["municipality"]))
    courses = session.scalars(select(Course).where(Course.status == COURSE_ACTIVE).order_by(Course.code)).all()
    storage = request.args.get("storage", "parent")
    return render_template("sandbox/index.html", choices=choices, names=names, roles=list(ROLES), locales=LOCALES,
                           courses=courses, default_course=request.args.get("course", ""),
                           storage=storage if storage in STORAGE_MODES else "parent", storage_frame=STORAGE_FRAME,
                           tool_origin=origin_of(get_platform().tool_base_url))


@bp.route("/storage-frame")
def storage_frame():
    """The platform's storage frame (as Canvas's ``post_message_forwarding``): keeps what the tool stores with
    ``lti.put_data`` for this page's lifetime, per tool origin, and gives it back with ``lti.get_data``."""
    return render_template("sandbox/storage_frame.html")


@bp.route("/start")
def start():
    """Third-party initiated login: the platform sends the browser to the tool's login URL."""
    deployment_id, _, municipality = request.args.get("deployment", "").partition("|")
    role = request.args.get("role", "learner")
    if not deployment_id or role not in ROLES:
        abort(400)
    user = request.args.get("user", "").strip() or f"{role}-1"
    deep = request.args.get("message") == "deep_linking"
    spec = LaunchSpec(deployment_id=deployment_id, role=role, user=user,
                      locale=request.args.get("locale", "sv-SE"),
                      municipality_code=municipality or None,
                      course=None if deep else request.args.get("course", "").strip() or None,
                      message_type=MESSAGE_DEEP_LINKING if deep else MESSAGE_RESOURCE_LINK,
                      storage=storage if (storage := request.args.get("storage", "none")) in STORAGE_MODES else "none")
    return redirect(get_platform().login_initiation_url(spec))


@bp.route("/auth", methods=["GET", "POST"])
def auth():
    """The platform's OIDC authorization endpoint: answers with an auto-submitted form post."""
    platform = get_platform()
    try:
        fields = platform.auth_response(request.values.to_dict())
    except SandboxError as error:
        return render_template("sandbox/auth_error.html", message=str(error)), 400
    return render_template("sandbox/form_post.html", action=platform.tool_launch_url, fields=fields)


@bp.route("/deep-link-return", methods=["POST"])
def deep_link_return():
    """Where the tool sends placed courses back: the sandbox verifies them and shows what was placed."""
    from ..lti import get_lti

    try:
        claims = get_platform().read_deep_link_response(request.form.get("JWT", ""), get_lti().keys.jwks())
    except SandboxError as error:
        return render_template("sandbox/auth_error.html", message=str(error)), 400
    items = claims.get("https://purl.imsglobal.org/spec/lti-dl/claim/content_items", [])
    return render_template("sandbox/placed.html", items=items,
                           data=claims.get("https://purl.imsglobal.org/spec/lti-dl/claim/data"))


@bp.route("/jwks")
def jwks():
    return jsonify(get_platform().jwks())


def init_app(app: Flask) -> None:
    """Make the app's sandbox platform and serve its pages (only while the sandbox is on)."""
    config = settings(app)
    app.extensions[EXTENSION_KEY] = SandboxPlatform(config.sandbox_base_url, config.keys_dir, config.secret_key,
                                                    tool_base_url=config.base_url)
    app.register_blueprint(bp)
