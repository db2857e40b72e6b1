"""Read a feed from a file or over HTTP(S): conditional GET, timeouts, retries with backoff.

Over HTTP(S) the feed is fetched through the tool's outbound guard (``lti_tool.outbound``): https only in
production, no private address unless the policy allows it, at most ``max_bytes`` and ``deadline`` seconds.

Nothing here touches the database: the caller passes the validators of the last successful sync
(``etag``, ``last_modified``) and keeps the ones returned.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from lti_tool import outbound

USER_AGENT = "kulturskola-lti-tool catalog sync"
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
ATTEMPTS = 3
BACKOFF_SECONDS = 1.0
MAX_FEED_BYTES = 50 * 1024 * 1024  # the example feed of 12 courses is 130 kB
FEED_DEADLINE_SECONDS = 300.0  # the whole of one request, however slowly the source sends


class FetchError(Exception):
    """The feed could not be read (file missing, connection failed, HTTP error); nothing changes."""


class NotJSONError(FetchError):
    """The feed was read but is not JSON at all: the feed is rejected; nothing changes."""


@dataclass(frozen=True)
class Fetched:
    source: str
    data: object | None  # the parsed JSON; None when not modified
    not_modified: bool = False
    etag: str | None = None
    last_modified: str | None = None


def is_url(source: str) -> bool:
    return source.lower().startswith(("http://", "https://"))


def parse_json(raw: bytes, source: str) -> object:
    """Untrusted bytes to JSON (UTF-8, or UTF-16/32 with their byte order)."""
    try:
        return json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise NotJSONError(f"{source} is not JSON: {exc}") from exc


def fetch_feed(source: str, *, etag: str | None = None, last_modified: str | None = None, timeout: float = 10,
               attempts: int = ATTEMPTS, backoff: float = BACKOFF_SECONDS,
               sleep: Callable[[float], None] | None = None, http: outbound.OutboundSession | None = None,
               max_bytes: int = MAX_FEED_BYTES, policy: outbound.OutboundPolicy | None = None,
               deadline: float = FEED_DEADLINE_SECONDS) -> Fetched:
    """The feed at ``source`` (a file path or an http(s) URL).

    Over HTTP(S), ``If-None-Match``/``If-Modified-Since`` are sent when given; a 304 answers "not modified"
    (``Fetched.not_modified``, no data). Connection errors, timeouts (also while the body is being read),
    429 and 5xx are tried ``attempts``
    times in all, waiting ``backoff`` seconds, then twice as long, ... (``sleep`` is injectable). Any other
    status, or the last failure, raises ``FetchError``; a body that is not JSON raises ``NotJSONError``. A URL
    the outbound guard refuses (``policy``: the app's, else ``outbound.STRICT``), or a body larger than
    ``max_bytes``, raises ``FetchError`` at once.
    """
    if not is_url(source):
        return _read_file(source, max_bytes)
    own_session = http is None
    http = http or outbound.session(policy)
    sleep = sleep or time.sleep
    headers = _request_headers(etag, last_modified)
    last_error = ""
    try:
        for attempt in range(1, attempts + 1):
            try:
                response = http.get(source, headers=headers, timeout=timeout, max_bytes=max_bytes, deadline=deadline)
            except outbound.OutboundError as exc:
                if exc.kind == outbound.TOO_LARGE:
                    raise FetchError(f"{source} is larger than {max_bytes} bytes: not read") from exc
                if exc.kind == outbound.REFUSED:
                    raise FetchError(f"{source}: not fetched ({exc.reason})") from exc
                last_error = exc.reason  # no answer, or the body stalled or broke off: try again
            else:
                fetched = _fetched(response, source, etag, last_modified)
                if fetched is not None:
                    return fetched
                last_error = f"HTTP {response.status_code} {response.reason or ''}".rstrip()
                if response.status_code not in RETRY_STATUSES:
                    break
            if attempt < attempts:
                sleep(backoff * 2 ** (attempt - 1))
        else:
            last_error += f" (after {attempts} attempts)"
    finally:
        if own_session:
            http.close()
    raise FetchError(f"{source}: {last_error}")


def _read_file(source: str, max_bytes: int) -> Fetched:
    try:
        if Path(source).stat().st_size > max_bytes:
            raise FetchError(f"{source} is larger than {max_bytes} bytes: not read")
        raw = Path(source).read_bytes()
    except OSError as exc:
        raise FetchError(f"cannot read {source}: {exc.strerror or exc}") from exc
    return Fetched(source, parse_json(raw, source))


def _request_headers(etag: str | None, last_modified: str | None) -> dict[str, str]:
    """The request's headers, conditional on the validators of the last successful sync when there are any."""
    headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    return headers


def _fetched(response: outbound.Response, source: str, etag: str | None,
             last_modified: str | None) -> Fetched | None:
    """The feed a 200 carries, or "not modified" for a 304 (keeping the validators sent when the answer has
    none); None for any other status."""
    if response.status_code == 304:
        return Fetched(source, None, True, response.headers.get("ETag") or etag,
                       response.headers.get("Last-Modified") or last_modified)
    if response.status_code == 200:
        return Fetched(source, parse_json(response.content, source), False,
                       response.headers.get("ETag"), response.headers.get("Last-Modified"))
    return None


__all__ = ["FetchError", "Fetched", "NotJSONError", "fetch_feed", "is_url", "parse_json"]
