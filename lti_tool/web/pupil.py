"""What a person sees after a launch. Course delivery builds on this landing page."""

from __future__ import annotations

from flask import Blueprint, render_template

from ..domain.errors import DomainError
from .errors import render_domain_error
from .launch_token import current_launch

bp = Blueprint("pupil", __name__)


@bp.route("/home")
def home():
    try:
        launch = current_launch()
    except DomainError as error:
        return render_domain_error(error)
    return render_template("pupil/home.html", launch=launch, municipality=launch.municipality,
                           course_code=launch.custom.get("course"), round_id=launch.custom.get("round"))
