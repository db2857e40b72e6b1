"""Security headers on every response. Pages shown after a launch may be framed only by the launching
registration's platform origins; the staff console by nobody; scripts only with this response's nonce."""

from __future__ import annotations

import secrets
from urllib.parse import urlsplit

from flask import Flask, g, request

from ..config import settings


def origin_of(url: str | None) -> str | None:
    """``scheme://host[:port]`` of an http(s) URL, else None."""
    parts = urlsplit(url or "")
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme in ("https", "http") and parts.netloc else None


def allow_framing_by(registration) -> None:
    """Let the registration's platform (its issuer and authorization origins) frame this response. A school
    identity provider's registration frames nothing: the second door's pages are opened in a tab of their own."""
    if getattr(registration, "kind", "lti") != "lti":
        g.frame_ancestors = []
        return
    origins = {o for o in (origin_of(registration.issuer), origin_of(registration.auth_login_url)) if o}
    g.frame_ancestors = sorted(origins)


def csp_nonce() -> str:
    if "csp_nonce" not in g:
        g.csp_nonce = secrets.token_urlsafe(16)
    return g.csp_nonce


def _frame_ancestors() -> str:
    if request.blueprint == "staff":
        return "'none'"
    origins = g.get("frame_ancestors")
    if origins is not None:
        return " ".join(["'self'", *origins])
    if request.blueprint == "lti" or g.get("error_page"):
        # A refusal before the platform is known (no registration, an expired or bad launch token, an unknown
        # address): it holds nothing and does nothing, and it must show in whatever LMS iframe it was opened
        # in, never as the browser's "refused to connect".
        return "*"
    return "'self'"


def _frame_src() -> str:
    """The sandbox platform frames the tool, which may be served on another site."""
    if request.blueprint != "sandbox":
        return ""
    tool = origin_of(settings().base_url)
    return f"frame-src 'self' {tool}; " if tool else ""


def init_app(app: Flask) -> None:
    app.jinja_env.globals["csp_nonce"] = csp_nonce

    @app.after_request
    def _headers(response):
        headers = response.headers
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("Referrer-Policy", "no-referrer")
        if "Content-Security-Policy" not in headers:
            headers["Content-Security-Policy"] = (
                "default-src 'self'; "
                f"script-src 'self' 'nonce-{csp_nonce()}'; "
                "style-src 'self' 'unsafe-inline'; img-src 'self' data:; media-src 'self'; "
                "object-src 'none'; base-uri 'none'; "
                f"{_frame_src()}frame-ancestors {_frame_ancestors()}")
        if request.blueprint == "staff":
            headers.setdefault("X-Frame-Options", "DENY")
        if settings().production:
            headers.setdefault("Strict-Transport-Security", "max-age=63072000; includeSubDomains")
        return response
