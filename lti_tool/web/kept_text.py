"""A hand-in's text (or a message to the teacher) sent after the launch token expired is not lost.

The "session ended" page shows the text back (to copy), and the tool keeps it in a cookie of its own, signed and
limited to that assignment's address, until the pupil opens the course again from the platform: the assignment's
page then puts it back in the field, and a hand-in clears it.

Why a cookie: inside the platform's cross-site frame, a browser that blocks third-party cookies (Chromium's
setting, Safari) refuses the frame every kind of storage, so ``static/drafts.js`` keeps nothing there; Chromium
(and Firefox) still keep a *partitioned* cookie (``Partitioned``, CHIPS), per top-level site, which is exactly
what a pupil's relaunch from the same platform sends back. Where the browser keeps neither (Safari), the text is
on the page to copy. The cookie names no one: it holds the page's draft key (a keyed hash of the pupil, the same
one drafts.js uses) and the text, and only that pupil's next launch takes it.
"""

from __future__ import annotations

import functools

from flask import Response, g, make_response, request
from itsdangerous import BadSignature, URLSafeSerializer

from ..config import settings
from ..domain.errors import DomainError
from .errors import render_error

COOKIE = "kulturskola_kept"  # and the field: kulturskola_kept_text (a hand-in), kulturskola_kept_body (a message)
SALT = "lti_tool.kept-text"
MAX_COOKIE_CHARS = 3800  # a browser keeps a cookie of about 4 kB; a longer text stays on the page to copy
MAX_AGE_SECONDS = 14 * 86400


def _serializer() -> URLSafeSerializer:
    return URLSafeSerializer(settings().secret_key, salt=SALT)


def _options(path: str) -> dict:
    secure = settings().cookie_secure
    options: dict = {"httponly": True, "secure": secure, "samesite": "None" if secure else "Lax", "path": path}
    if secure:
        options["partitioned"] = True
    return options


def _cookie(field: str) -> str:
    return f"{COOKIE}_{field}"


def keeps_typed_text(field: str, key_of, page_of):
    """Around a view under :func:`~.launch_token.launch_required` that takes a text in the form field ``field``:
    a post refused as ``launch_expired`` gets the "session ended" page with the text on it, and the text kept
    for the pupil's next launch (``key_of(launch, **view_args)``: the field's draft key, as drafts.js keys it,
    from the expired token's launch; ``page_of(**view_args)``: the address of the page whose form it was, the
    only one the cookie is sent to)."""

    def decorate(view):
        @functools.wraps(view)
        def wrapped(*args, **kwargs):
            try:
                return view(*args, **kwargs)
            except DomainError as refusal:
                typed = request.form.get(field, "") if request.method == "POST" else ""
                launch = g.get("expired_launch")
                if refusal.code != "launch_expired" or not typed.strip() or launch is None:
                    raise
                key = key_of(launch, **kwargs)
                body, status = render_error(refusal.code, refusal.status, refusal.detail, kept_text=typed,
                                            kept_key=key)
                response = make_response(body, status)
                value = _serializer().dumps({"k": key, "t": typed})
                if len(value) <= MAX_COOKIE_CHARS:
                    response.set_cookie(_cookie(field), value, max_age=MAX_AGE_SECONDS, **_options(page_of(**kwargs)))
                return response

        return wrapped

    return decorate


def kept_text(field: str, key: str) -> str | None:
    """The text of ``field`` kept for this page (its address) and this pupil's draft key, if any."""
    raw = request.cookies.get(_cookie(field))
    if not raw:
        return None
    try:
        kept = _serializer().loads(raw)
    except BadSignature:
        return None
    if not isinstance(kept, dict) or kept.get("k") != key or not isinstance(kept.get("t"), str):
        return None
    return kept["t"]


def forget_kept_text(response: Response, field: str, page: str) -> Response:
    """The text was handed in or sent: the kept copy goes."""
    if _cookie(field) in request.cookies:
        response.delete_cookie(_cookie(field), **_options(page))
    return response
