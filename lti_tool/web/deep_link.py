"""Placing courses into the platform: a teacher's or administrator's deep-linking launch shows the courses
their municipality has ordered; the picked ones go back as signed ``ltiResourceLink`` items (the rules:
``services/placement.py``)."""

from __future__ import annotations

from flask import Blueprint, g, render_template, request
from flask_babel import get_locale

from ..config import settings as tool_settings
from ..db import get_session
from ..domain.texts import pick_text
from ..lti import get_lti
from ..services import placement
from .forms import parse_ids
from .launch_token import launch_required

bp = Blueprint("deep_link", __name__, url_prefix="/deep-link")


@bp.route("/", methods=["GET", "POST"])
@launch_required
def pick():
    session, launch = get_session(), g.launch
    placement.check_may_place(launch)
    settings = launch.deep_linking
    locale = str(get_locale())
    offers = placement.list_offers(session, launch.municipality_id)
    accepts = placement.accepts_resource_links(settings)

    def page(**extra):
        return render_template("deep_link/pick.html", launch=launch, municipality=launch.municipality, offers=offers,
                               accepts=accepts, multiple=bool(settings.get("accept_multiple")),
                               text=lambda v: pick_text(v, locale), **extra)

    if request.method == "GET" or not accepts:
        return page()
    chosen = parse_ids(request.form.getlist("order"))
    picked = placement.pick_offers(offers, chosen, settings)
    if not picked:
        return page(error=True), 400
    items = placement.placement_items(session, picked, settings, locale=locale,
                                      launch_url=tool_settings().base_url + "/lti/launch")
    token = placement.placement_response(session, get_lti().keys, launch, items)
    return render_template("lti/form_post.html", action=settings["deep_link_return_url"], fields={"JWT": token})
