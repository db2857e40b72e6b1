"""A lesson's video that the tool serves itself: a file under its own static folder (the demo catalog's example
lesson, ``static/demo/``) plays on the lesson page in a ``<video>`` element, which the page's CSP allows
(``media-src 'self'``). Any other video stays a link that opens in a new window, as before.

The catalog feed names every video by an https URL. In development the tool's own ``BASE_URL`` is plain http
(``http://127.0.0.1:5000``), so there, and only there, an https URL at exactly the tool's own host and port is
taken as the tool's own file too. In production ``BASE_URL`` is https and only an exact match counts; the CSP is
the same everywhere.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from flask import current_app, url_for
from werkzeug.security import safe_join

from ..config import settings

VIDEO_EXTENSIONS = (".webm", ".mp4")


def own_static_file(url: str | None, base_url: str, *, development: bool) -> str | None:
    """The name (below ``static/``) of the file ``url`` names among the tool's own static files at ``base_url``,
    when it is a video; else None. ``development``: an https URL at the host of an http ``base_url`` counts."""
    video, base = urlsplit(url or ""), urlsplit(base_url)
    if not video.netloc or video.netloc != base.netloc or video.query or video.fragment:
        return None
    if video.scheme != base.scheme and not (development and video.scheme == "https" and base.scheme == "http"):
        return None
    prefix = base.path.rstrip("/") + "/static/"
    if not video.path.startswith(prefix) or not video.path.lower().endswith(VIDEO_EXTENSIONS):
        return None
    return video.path[len(prefix):] or None


def own_video(url: str | None) -> str | None:
    """The tool's own address of a lesson video it serves from its static folder (a file that is there), or
    None: the page then links to the video instead."""
    config = settings()
    name = own_static_file(url, config.base_url, development=not config.production)
    folder = current_app.static_folder
    path = safe_join(folder, name) if name and folder else None
    if path is None or not Path(path).is_file():
        return None
    return url_for("static", filename=name)
