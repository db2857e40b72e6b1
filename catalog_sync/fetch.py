"""Read a feed from a file or over HTTP(S): conditional GET, timeouts, retries with backoff.

Nothing here touches the database: the caller passes the validators of the last successful sync
(``etag``, ``last_modified``) and keeps the ones returned.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import requests

USER_AGENT = "kulturskola-lti-tool catalog sync"
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
ATTEMPTS = 3
BACKOFF_SECONDS = 1.0
MAX_FEED_BYTES = 50 * 1024 * 1024  # the example feed of 12 courses is 130 kB


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


def _read_capped(response: requests.Response, source: str, max_bytes: int) -> bytes:
    chunks, size = [], 0
    for chunk in response.iter_content(chunk_size=65536):
        size += len(chunk)
        if size > max_bytes:
            raise FetchError(f"{source} is larger than {max_bytes} bytes: not read")
        chunks.append(chunk)
    return b"".join(chunks)


def fetch_feed(source: str, *, etag: str | None = None, last_modified: str | None = None, timeout: float = 10,
               attempts: int = ATTEMPTS, backoff: float = BACKOFF_SECONDS,
               sleep: Callable[[float], None] | None = None, http: requests.Session | None = None,
               max_bytes: int = MAX_FEED_BYTES) -> Fetched:
    """The feed at ``source`` (a file path or an http(s) URL).

    Over HTTP(S), ``If-None-Match``/``If-Modified-Since`` are sent when given; a 304 answers "not modified"
    (``Fetched.not_modified``, no data). Connection errors, timeouts (also while the body is being read),
    429 and 5xx are tried ``attempts``
    times in all, waiting ``backoff`` seconds, then twice as long, ... (``sleep`` is injectable). Any other
    status, or the last failure, raises ``FetchError``; a body that is not JSON raises ``NotJSONError``.
    """
    if not is_url(source):
        try:
            if Path(source).stat().st_size > max_bytes:
                raise FetchError(f"{source} is larger than {max_bytes} bytes: not read")
            raw = Path(source).read_bytes()
        except OSError as exc:
            raise FetchError(f"cannot read {source}: {exc.strerror or exc}") from exc
        return Fetched(source, parse_json(raw, source))
    own_session = http is None
    http = http or requests.Session()
    sleep = sleep or time.sleep
    headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    last_error = ""
    try:
        for attempt in range(1, attempts + 1):
            try:
                response = http.get(source, headers=headers, timeout=timeout, stream=True)
            except requests.RequestException as exc:
                last_error = f"{exc.__class__.__name__}: {exc}"
            else:
                if response.status_code == 304:
                    return Fetched(source, None, True, response.headers.get("ETag") or etag,
                                   response.headers.get("Last-Modified") or last_modified)
                if response.status_code == 200:
                    try:
                        raw = _read_capped(response, source, max_bytes)
                    except requests.RequestException as exc:  # the body stalled or broke off: try again
                        last_error = f"{exc.__class__.__name__} while reading the feed: {exc}"
                        raw = None
                    finally:
                        response.close()
                    if raw is not None:
                        return Fetched(source, parse_json(raw, source), False,
                                       response.headers.get("ETag"), response.headers.get("Last-Modified"))
                else:
                    response.close()
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


__all__ = ["FetchError", "Fetched", "NotJSONError", "fetch_feed", "is_url", "parse_json"]
