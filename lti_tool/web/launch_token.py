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
from ..models import Launch, Registration

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


def launch_token_signed(token: str) -> bool:
    """Did the tool sign this launch token, whatever its age? Enough to prove a form came from the tool's page
    (``web/csrf.py``): a token that has expired since is then refused by :func:`launch_required` as
    ``launch_expired``, on a page its platform may frame, and nothing is changed."""
    return read_launch_token(token) is not None or _expired_launch_id(token) is not None


def _expired_launch_id(token: str) -> str | None:
    """The launch a token the tool signed names, however old (only to frame and word the refusal)."""
    try:
        _serializer().loads(token, max_age=settings().launch_token_ttl_seconds)
    except SignatureExpired as expired:
        payload = _expired_payload(_serializer(), expired)
        return payload if isinstance(payload, str) else None
    except BadSignature:
        return None
    return None


def _expired_payload(serializer: URLSafeTimedSerializer, expired: SignatureExpired) -> object:
    """What an expired token the tool signed holds (its signature was verified before its age was)."""
    try:
        return serializer.load_payload(expired.payload) if expired.payload is not None else None
    except BadSignature:
        return None


def _refuse_expired(token: str) -> None:
    """The refusal of a missing, bad or expired token. An expired one the tool signed still names its launch:
    that platform may frame the page (else the pupil sees the browser's "refused to connect" inside the LMS)
    and it is worded in the launch's language."""
    launch_id = _expired_launch_id(token) if token else None
    launch = get_session().execute(_LAUNCH_QUERY, {"id": launch_id}).scalar_one_or_none() if launch_id else None
    if launch is not None:
        set_locale(launch.locale)
        g.expired_launch = launch  # what a refused form keeps for the next launch (web/kept_text.py)
        from .security import allow_framing_by

        allow_framing_by(launch.registration)
    raise DomainError("launch token missing, bad or expired", code="launch_expired", status=401)


def current_launch() -> Launch:
    """The launch named by the request's token; its locale becomes the page's locale."""
    token = request.values.get("lt", "")
    launch_id = read_launch_token(token)
    if launch_id is None:
        _refuse_expired(token)
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
    """The offer, valid for an hour. Its platform may frame the answer (the offer is made inside the LMS), the
    refusal of an expired offer too."""
    serializer = URLSafeTimedSerializer(settings().secret_key, salt=WAITLIST_SALT)
    try:
        data = serializer.loads(token, max_age=WAITLIST_OFFER_SECONDS)
    except SignatureExpired as exc:
        _frame_for_offer(_expired_payload(serializer, exc))
        raise DomainError("waiting-list offer expired", code="waitlist_expired", status=400) from exc
    except BadSignature as exc:
        raise DomainError("waiting-list offer missing or bad", code="waitlist_expired", status=400) from exc
    _frame_for_offer(data)
    return data


def _frame_for_offer(data: object) -> None:
    if not isinstance(data, dict):
        return
    set_locale(data.get("l"))
    registration = get_session().get(Registration, data.get("r")) if isinstance(data.get("r"), int) else None
    if registration is not None:
        from .security import allow_framing_by

        allow_framing_by(registration)
