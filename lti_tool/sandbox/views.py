"""The sandbox platforms' pages (blueprint ``sandbox``, at ``/sandbox/``): pick a platform and municipality and
a role, launch the tool in an iframe (or take one of the demo round's ready-made launches); each platform's OIDC
authorization endpoint, key set and deep-linking return, the first platform's at ``/sandbox/auth``,
``/sandbox/jwks``, ..., the others' at ``/sandbox/<key>/auth``, ...

:func:`init_app` makes the app's :class:`SandboxPlatform` s; :func:`get_platform` returns the first (or the one
of a key), :func:`get_platforms` all of them."""

from __future__ import annotations

from flask import Blueprint, Flask, abort, current_app, jsonify, redirect, render_template, request, url_for
from sqlalchemy import select

from ..config import settings
from ..db import get_session
from ..models import Deployment, Registration
from ..domain.claims import (MESSAGE_DEEP_LINKING, MESSAGE_RESOURCE_LINK, SCOPE_LINEITEM, SCOPE_LINEITEM_READONLY,
                             SCOPE_SCORE)
from ..web.security import origin_of
from . import demo_round
from .gradebook import GradebookError
from .platform import (PROFILES, ROLES, SHARED_DEPLOYMENT, STORAGE_FRAME, STORAGE_MODES, LaunchSpec, SandboxError,
                       SandboxPlatform)

bp = Blueprint("sandbox", __name__, url_prefix="/sandbox")
EXTENSION_KEY = "lti_tool.sandbox"
PLATFORMS_KEY = "lti_tool.sandbox.platforms"
LOCALES = {"sv-SE": "Svenska", "nb-NO": "Norsk bokmål", "nn-NO": "Norsk nynorsk", "en-GB": "English"}


def get_platform(app: Flask | None = None, key: str = "") -> SandboxPlatform:
    """The app's sandbox platform (the current app by default): the first, or the one of ``key``
    (``KeyError`` when there is none)."""
    if not key:
        platform: SandboxPlatform = (app or current_app).extensions[EXTENSION_KEY]
        return platform
    return get_platforms(app)[key]


def get_platforms(app: Flask | None = None) -> dict[str, SandboxPlatform]:
    """The app's sandbox platforms by key, the first (key ``""``) first."""
    platforms: dict[str, SandboxPlatform] = (app or current_app).extensions[PLATFORMS_KEY]
    return platforms


def is_sandbox_registration(registration: Registration, app: Flask | None = None) -> bool:
    """Is this the registration of one of the app's sandbox platforms? (False while the sandbox is off.)"""
    platforms = (app or current_app).extensions.get(PLATFORMS_KEY, {})
    return any(platform.is_registration(registration) for platform in platforms.values())


def _platform_or_404(key: str) -> SandboxPlatform:
    try:
        return get_platform(key=key)
    except KeyError:
        abort(404)


def _choice_value(platform: SandboxPlatform, deployment_id: str, municipality: str) -> str:
    """``deployment|municipality`` (the municipality only on the regional deployment), then ``|key`` for any
    platform but the first."""
    value = f"{deployment_id}|{municipality}"
    return f"{value}|{platform.key}" if platform.key else value


def _choices(platform: SandboxPlatform):
    """(value, municipality, shared?) for every active deployment of the platform's registration."""
    session = get_session()
    registration = platform.registration(session)
    if registration is None:
        return []
    choices = []
    deployments = session.scalars(select(Deployment).where(Deployment.registration_id == registration.id)
                                  .order_by(Deployment.deployment_id))
    for deployment in deployments:
        for binding in deployment.municipalities:
            shared = deployment.deployment_id == SHARED_DEPLOYMENT
            choices.append({"value": _choice_value(platform, deployment.deployment_id,
                                                   binding.municipality_id if shared else ""),
                            "municipality": binding.municipality_id, "shared": shared,
                            "status": deployment.status})
    return sorted(choices, key=lambda c: (c["shared"], c["municipality"]))


def _demo_links(names: dict[str, str]) -> list[dict[str, str]]:
    """The demo round's ready-made launches, once ``flask demo`` has set the round up (its teacher named)."""
    from ..models import CourseRound, RoundTeacher

    session = get_session()
    named = session.scalar(select(RoundTeacher.id).join(CourseRound, CourseRound.id == RoundTeacher.round_pk)
                           .where(CourseRound.course_code == demo_round.COURSE,
                                  CourseRound.round_id == demo_round.ROUND).limit(1))
    if named is None:
        return []
    platforms = get_platforms()
    return [{"href": launch.path(), "kind": launch.kind,
             "label": launch.label(names.get(launch.municipality, launch.municipality),
                                   platforms[launch.platform].name)}
            for launch in demo_round.LAUNCHES if launch.platform in platforms]


def _second_door(names: dict[str, str]) -> list[dict]:
    """The municipalities whose arts school may issue a demo seat invitation (an order of the demo round, and a
    sandbox identity provider of their country), once ``flask demo`` has made the sandbox identity providers."""
    from ..models import CourseRound, IdentityProvider, Order

    countries = set(get_session().scalars(select(IdentityProvider.country)))
    ordered = get_session().scalars(select(Order.municipality_id).join(CourseRound, CourseRound.id == Order.round_pk)
                                    .where(CourseRound.course_code == demo_round.COURSE,
                                           CourseRound.round_id == demo_round.ROUND)
                                    .order_by(Order.municipality_id))
    return [{"id": m, "name": names.get(m, m)} for m in ordered if m[:2] in countries]


@bp.route("/invitation", methods=["POST"])
def invitation():
    """The arts school of a demo municipality issues one seat invitation for the demo round (as its head does in
    the municipal console); the pupil's browser goes on to the invitation's page on the tool's site."""
    from ..services import invitations

    session = get_session()
    municipality = request.form.get("municipality", "")
    issued = invitations.issue(session, municipality_id=municipality, course_code=demo_round.COURSE,
                               round_id=demo_round.ROUND, count=1, expires_at=None,
                               created_by=f"sandbox: {municipality}")
    session.commit()
    return redirect(invitations.join_url(issued[0].code), code=303)


def _email_sign_in() -> str | None:
    """Where a round teacher named by e-mail signs in (the staff sign-in, on the tool's site), while the
    sandbox's development sign-in for teachers is there."""
    if "staff.sign_in_local_teacher" not in current_app.view_functions:
        return None
    return get_platform().tool_base_url + url_for("staff.sign_in")


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
    groups = [{"platform": platform, "choices": _choices(platform)} for platform in get_platforms().values()]
    courses = session.scalars(select(Course).where(Course.status == COURSE_ACTIVE).order_by(Course.code)).all()
    storage = request.args.get("storage", "parent")
    return render_template("sandbox/index.html", groups=[g for g in groups if g["choices"]], names=names,
                           roles=list(ROLES), locales=LOCALES, courses=courses,
                           default_course=request.args.get("course", ""),
                           storage=storage if storage in STORAGE_MODES else "parent", storage_frame=STORAGE_FRAME,
                           tool_origin=origin_of(get_platform().tool_base_url), demo_links=_demo_links(names),
                           demo=demo_round, email_sign_in=_email_sign_in(), second_door=_second_door(names))


@bp.route("/storage-frame")
def storage_frame():
    """The platform's storage frame (as Canvas's ``post_message_forwarding``): keeps what the tool stores with
    ``lti.put_data`` for this page's lifetime, per tool origin, and gives it back with ``lti.get_data``."""
    return render_template("sandbox/storage_frame.html")


@bp.route("/start")
def start():
    """Third-party initiated login: the platform sends the browser to the tool's login URL.

    ``deployment``: ``deployment|municipality`` (the municipality on the regional deployment only), optionally
    ``|platform key`` (the first platform when none); or ``platform`` names the platform. Optional: ``course``,
    ``round``, ``context`` and ``link`` (the LMS course and the placement in it), ``locale``, ``storage``,
    ``gradebook=1`` (offer the platform's gradebook), ``message=deep_linking``, ``name`` (the person's name, sent
    as the ``name`` claim; none: the platform shares no name)."""
    deployment_id, municipality, key = (request.args.get("deployment", "").split("|") + ["", ""])[:3]
    platform = _platform_or_404(request.args.get("platform", "").strip() or key)
    role = request.args.get("role", "learner")
    if not deployment_id or role not in ROLES:
        abort(400)
    user = request.args.get("user", "").strip() or f"{role}-1"
    deep = request.args.get("message") == "deep_linking"
    round_id = request.args.get("round", "").strip()
    default = LaunchSpec(deployment_id=deployment_id)
    spec = LaunchSpec(deployment_id=deployment_id, role=role, user=user,
                      locale=request.args.get("locale", "sv-SE"),
                      municipality_code=municipality or None,
                      course=None if deep else request.args.get("course", "").strip() or None,
                      custom={"round": round_id} if round_id and not deep else {},
                      message_type=MESSAGE_DEEP_LINKING if deep else MESSAGE_RESOURCE_LINK,
                      storage=storage if (storage := request.args.get("storage", "none")) in STORAGE_MODES else "none",
                      context_id=request.args.get("context", "").strip() or default.context_id,
                      resource_link_id=request.args.get("link", "").strip() or default.resource_link_id,
                      gradebook=not deep and request.args.get("gradebook") == "1",
                      name=" ".join(request.args.get("name", "").split())[:255] or None)
    return redirect(platform.login_initiation_url(spec))


@bp.route("/auth", methods=["GET", "POST"], defaults={"key": ""})
@bp.route("/<key>/auth", methods=["GET", "POST"])
def auth(key: str):
    """The platform's OIDC authorization endpoint: answers with an auto-submitted form post."""
    platform = _platform_or_404(key)
    try:
        fields = platform.auth_response(request.values.to_dict())
    except SandboxError as error:
        return render_template("sandbox/auth_error.html", message=str(error)), 400
    return render_template("sandbox/form_post.html", action=platform.tool_launch_url, fields=fields)


@bp.route("/deep-link-return", methods=["POST"], defaults={"key": ""})
@bp.route("/<key>/deep-link-return", methods=["POST"])
def deep_link_return(key: str):
    """Where the tool sends placed courses back: the sandbox verifies them and shows what was placed."""
    from ..lti import get_lti

    platform = _platform_or_404(key)
    try:
        claims = platform.read_deep_link_response(request.form.get("JWT", ""), get_lti().keys.jwks())
    except SandboxError as error:
        return render_template("sandbox/auth_error.html", message=str(error)), 400
    items = claims.get("https://purl.imsglobal.org/spec/lti-dl/claim/content_items", [])
    return render_template("sandbox/placed.html", items=items,
                           data=claims.get("https://purl.imsglobal.org/spec/lti-dl/claim/data"))


def _refused(error: GradebookError):
    return jsonify({"error": error.error, "error_description": str(error)}), error.status


@bp.route("/token", methods=["POST"], defaults={"key": ""})
@bp.route("/<key>/token", methods=["POST"])
def token(key: str):
    """The platform's OAuth 2 token endpoint (client credentials, the tool's signed assertion)."""
    from ..lti import get_lti

    platform = _platform_or_404(key)
    try:
        return jsonify(platform.gradebook.issue_token(request.form.to_dict(), client_id=platform.client_id,
                                                      token_url=platform.auth_token_url,
                                                      tool_jwks=get_lti().keys.jwks()))
    except GradebookError as error:
        return _refused(error)


@bp.route("/courses/<path:context>/line_items", methods=["GET", "POST"], defaults={"key": ""})
@bp.route("/<key>/courses/<path:context>/line_items", methods=["GET", "POST"])
def line_items(key: str, context: str):
    """The gradebook columns of one LMS course (AGS line items): listed, or one created."""
    platform = _platform_or_404(key)
    try:
        if request.method == "GET":
            platform.gradebook.check_token(request.headers.get("Authorization"), SCOPE_LINEITEM,
                                           SCOPE_LINEITEM_READONLY)
            found = platform.gradebook.line_items(context, request.args, platform.lineitem_url)
            return jsonify(found), 200, {"Content-Type": "application/vnd.ims.lis.v2.lineitemcontainer+json"}
        platform.gradebook.check_token(request.headers.get("Authorization"), SCOPE_LINEITEM)
        item = platform.gradebook.add_line_item(context, request.get_json(force=True, silent=True),
                                                platform.lineitem_url)
        return jsonify(item), 201, {"Content-Type": "application/vnd.ims.lis.v2.lineitem+json"}
    except GradebookError as error:
        return _refused(error)


@bp.route("/courses/<path:context>/line_items/<column>/scores", methods=["POST"], defaults={"key": ""})
@bp.route("/<key>/courses/<path:context>/line_items/<column>/scores", methods=["POST"])
def scores(key: str, context: str, column: str):
    """A score for one user in one column."""
    platform = _platform_or_404(key)
    try:
        platform.gradebook.check_token(request.headers.get("Authorization"), SCOPE_SCORE)
        platform.gradebook.add_score(context, column, request.get_json(force=True, silent=True))
    except GradebookError as error:
        return _refused(error)
    return "", 204


@bp.route("/gradebook")
def gradebook():
    """Every sandbox platform's gradebook: each LMS course's columns and the scores the tool sent there."""
    moved = _on_own_site()
    if moved is not None:
        return moved
    views = {key: platform.gradebook.view() for key, platform in get_platforms().items()}
    total = sum(len(column["scores"])
                for courses in views.values() for course in courses for column in course["columns"])
    books = [{"platform": platform, "courses": views[key]} for key, platform in get_platforms().items()]
    return render_template("sandbox/gradebook.html", books=books, total=total)


@bp.route("/jwks", defaults={"key": ""})
@bp.route("/<key>/jwks")
def jwks(key: str):
    return jsonify(_platform_or_404(key).jwks())


def make_parties(app: Flask) -> None:
    """Make the app's sandbox platforms and identity providers on the current addresses (again after
    ``flask demo --port`` moved them)."""
    from . import idp_oidc, idp_saml

    config = settings(app)
    platforms = {profile.key: SandboxPlatform(config.sandbox_base_url, config.keys_dir, config.secret_key,
                                              tool_base_url=config.base_url, profile=profile)
                 for profile in PROFILES}
    app.extensions[PLATFORMS_KEY] = platforms
    app.extensions[EXTENSION_KEY] = platforms[""]
    idp_oidc.make(app)
    idp_saml.make(app)


def init_app(app: Flask) -> None:
    """Make the app's sandbox platforms and identity providers and serve their pages (only while the sandbox is
    on)."""
    from . import idp_oidc, idp_saml

    make_parties(app)
    app.register_blueprint(bp)
    app.register_blueprint(idp_oidc.bp)  # the sandbox OpenID Connect provider ("Sandbox Feide")
    app.register_blueprint(idp_saml.bp)  # the sandbox SAML IdP ("Sandbox Skolfederation") and school unit register
