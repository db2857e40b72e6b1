"""Kulturskola LTI 1.3 tool: the national catalog of distance courses inside every municipality's LMS.

``create_app`` is the only module that knows every other: configuration, database, LTI, i18n,
blueprints and CLI are wired here.
"""

from __future__ import annotations

import importlib.resources
from pathlib import Path
from typing import Any, Mapping

from flask import Flask

from .config import load_settings, settings


def templates_dir() -> str:
    """``templates/`` in a checkout; the ``lti_tool_templates`` package when installed from a wheel."""
    checkout = Path(__file__).resolve().parent.parent / "templates"
    if checkout.is_dir():
        return str(checkout)
    return str(importlib.resources.files("lti_tool_templates"))


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    app = Flask(__name__, template_folder=templates_dir(), instance_relative_config=True)
    app.config.update(load_settings(overrides=test_config, instance_path=app.instance_path))
    config = settings(app)  # the typed reading of app.config, kept in app.extensions
    app.config.update(SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax",
                      SESSION_COOKIE_SECURE=config.cookie_secure, SESSION_COOKIE_NAME="kulturskola_staff")
    from .logs import configure_logging

    configure_logging(config.log_format, config.log_level)

    from . import cli, db, i18n, rate_limit
    from . import lti as lti_protocol
    from .web import deep_link, errors, join, lti as lti_web, municipal, privacy, pupil, register, staff, teacher
    from .web import classroom as classroom_web
    from .web import municipal_invitations  # noqa: F401  (the console's seat invitations, on its blueprint)
    from .web import municipal_exports  # noqa: F401  (the console's progress export, on its blueprint)
    from .web import hand_in_uploads  # noqa: F401  (hand-in files sent in pieces, on the pupil's blueprint)

    db.init_app(app)
    from .web import ops

    ops.init_app(app)  # first: request ids, access log and timing see every request
    rate_limit.init_app(app)  # then the rate limits of the LTI and registration endpoints
    i18n.init_app(app)
    lti_protocol.init_app(app)
    app.register_blueprint(lti_web.bp)
    app.register_blueprint(pupil.bp)
    app.register_blueprint(teacher.bp)
    app.register_blueprint(classroom_web.bp)
    app.register_blueprint(deep_link.bp)
    app.register_blueprint(register.bp)
    app.register_blueprint(staff.bp)
    app.register_blueprint(municipal.bp)
    app.register_blueprint(privacy.bp)
    app.register_blueprint(join.bp)  # the second door: invitations, school sign-in, "My courses"
    if config.sandbox:
        from . import sandbox

        sandbox.init_app(app)

    from .web import outages

    errors.init_app(app)  # every refusal (DomainError) a view does not answer itself: the error page
    outages.init_app(app)  # database or Redis unreachable: 503 with Retry-After, not 500

    @app.route("/")
    def index():
        from flask import redirect, render_template, url_for

        if settings().sandbox:
            return redirect(url_for("sandbox.index"))
        return render_template("index.html")

    from .web.launch_token import launch_url

    app.jinja_env.globals["launch_url"] = launch_url

    from .web.security import init_app as init_security

    init_security(app)
    from .web import csrf

    csrf.init_app(app)  # every state-changing request of every blueprint, default deny

    cli.init_app(app)  # every command group (lti_tool/cli/, and catalog_sync/cli.py)
    return app
