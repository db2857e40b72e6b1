"""The privacy notice: what the tool stores about a pupil, why, for how long, and how to ask for a copy or
for erasure. Public at ``/privacy`` (in the browser's language; linked from the registration
configuration), and the page an LTI Data Privacy Launch (``LtiDataPrivacyLaunchRequest``) lands on
(``/privacy?lt=...``: in the launch's language, framed by the launching platform).

Also the audit of staff opening a pupil's work (``audit_pupil_access``)."""

from __future__ import annotations

from flask import Blueprint, render_template, request

from ..config import settings
from ..domain.errors import DomainError
from ..models import Launch
from ..services import privacy
from .launch_token import current_launch

bp = Blueprint("privacy", __name__)


@bp.route("/privacy")
def notice():
    launch = None
    if request.values.get("lt"):
        try:
            launch = current_launch()
        except DomainError:
            launch = None  # an expired link still gets the notice, in the browser's language
    config = settings()
    return render_template("privacy/notice.html", launch=launch,
                           municipality=launch.municipality if launch is not None else None,
                           retention_days=config.retention_days, roster_names=config.roster_names,
                           launch_names=config.launch_names,
                           contact=config.privacy_contact.strip())


def staff_actor(launch: Launch) -> str:
    """Who, in the audit log: the launch's role, registration and platform user id (a teacher's, not a pupil's)."""
    return f"{launch.role} {launch.registration_id}:{launch.sub}"


def audit_pupil_access(session, launch: Launch, action: str, *, registration_id: int, sub: str,
                       submission_id: int | None = None) -> None:
    """A teacher opened a pupil's page, hand-in or file: written to the audit log (the pupil as a keyed
    pseudonym, never a name or the ``sub``) and committed at once, whatever the page does next."""
    privacy.record_access(session, actor=staff_actor(launch), action=action,
                          pseudonym=privacy.pupil_pseudonym(settings().secret_key, registration_id, sub),
                          submission_id=submission_id, municipality=launch.municipality_id,
                          context=launch.context_id, course=launch.course_code)
    session.commit()
