"""After a launch the tool's own pages do not depend on third-party cookies: a signed, short-lived
launch token travels in their links and forms (``?lt=...``)."""

from __future__ import annotations

import functools

from flask import g, request, url_for
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import bindparam, select
from sqlalchemy.orm import joinedload

from ..config import settings
from ..db import get_session
from ..domain.errors import DomainError
from ..i18n import set_locale
from ..models import Launch

SALT = "lti_tool.launch-token"
WAITLIST_SALT = "lti_tool.waitlist-offer"
WAITLIST_OFFER_SECONDS = 3600


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(settings().secret_key, salt=SALT)


def issue_launch_token(launch_id: str) -> str:
    return _serializer().dumps(launch_id)


def read_launch_token(token: str) -> str | None:
    """The launch id of a token the tool signed, still within its lifetime; None for anything else."""
    try:
        launch_id: str = _serializer().loads(token, max_age=settings().launch_token_ttl_seconds)
    except BadSignature:  # SignatureExpired is a BadSignature
        return None
    return launch_id


def launch_token_valid(token: str) -> bool:
    """Is this a launch token the tool signed, still within its lifetime? (Its launch is read only by
    :func:`current_launch`.)"""
    return read_launch_token(token) is not None


def current_launch() -> Launch:
    """The launch named by the request's token; its locale becomes the page's locale."""
    token = request.values.get("lt", "")
    launch_id = read_launch_token(token)
    if launch_id is None:
        raise DomainError("launch token missing, bad or expired", code="launch_expired", status=401)
    # The registration (framing) and the municipality (every page shows it) come with the launch.
    launch = get_session().execute(_LAUNCH_QUERY, {"id": launch_id}).scalar_one_or_none()
    if launch is None:
        raise DomainError("launch token names no launch", code="launch_expired", status=401)
    set_locale(launch.locale)
    g.launch_token = token
    from .security import allow_framing_by

    allow_framing_by(launch.registration)
    return launch


def launch_required(view):
    """The view runs for a valid launch only, found on ``g.launch`` (:func:`current_launch`: its locale, its
    platform may frame the page). A missing, bad or expired token is a refusal (``launch_expired``), rendered
    by the ``DomainError`` handler (``web/errors.py``)."""

    @functools.wraps(view)
    def wrapped(*args, **kwargs):
        g.launch = current_launch()
        return view(*args, **kwargs)

    return wrapped


_LAUNCH_QUERY = (select(Launch).options(joinedload(Launch.registration), joinedload(Launch.municipality))
                 .where(Launch.id == bindparam("id")))


def launch_url(endpoint: str, **values) -> str:
    """A link inside the launch: the launch token travels with it (no third-party cookie needed)."""
    return url_for(endpoint, lt=g.get("launch_token", ""), **values)


def issue_waitlist_token(registration_id: int, sub: str, order_id: int, locale: str | None) -> str:
    """The offer to join a waiting list, shown on a refusal page: valid for an hour."""
    return URLSafeTimedSerializer(settings().secret_key, salt=WAITLIST_SALT).dumps(
        {"r": registration_id, "s": sub, "o": order_id, "l": locale})


def read_waitlist_token(token: str) -> dict:
    try:
        data = URLSafeTimedSerializer(settings().secret_key, salt=WAITLIST_SALT).loads(
            token, max_age=WAITLIST_OFFER_SECONDS)
    except (SignatureExpired, BadSignature) as exc:
        raise DomainError("waiting-list offer missing, bad or expired", code="waitlist_expired", status=400) from exc
    set_locale(data.get("l"))
    return data
