"""Read a feed from a file or over HTTP(S): conditional GET, timeouts, retries with backoff."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import requests

USER_AGENT = "kulturskola-lti-tool catalog sync"
RETRY_STATUSES = {429, 500, 502, 503, 504}


class FetchError(Exception):
    """The feed could not be read; nothing changes."""


@dataclass(frozen=True)
class Fetched:
    source: str
    data: object | None  # the parsed JSON; None when not modified
    not_modified: bool = False
    etag: str | None = None
    last_modified: str | None = None


def is_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))


def _parse(text: str, source: str) -> object:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise FetchError(f"{source} is not JSON: {exc}") from exc


def fetch_feed(source: str, *, etag: str | None = None, last_modified: str | None = None, timeout: float = 10,
               attempts: int = 3, backoff: float = 1.0, sleep: Callable[[float], None] | None = None,
               http: requests.Session | None = None) -> Fetched:
    """The feed at ``source``. Over HTTP(S) ``If-None-Match``/``If-Modified-Since`` are sent when known;
    a 304 answers "not modified". Connection errors, timeouts, 429 and 5xx are retried (``attempts`` in
    all, waiting ``backoff``, then twice as long)."""
    if not is_url(source):
        try:
            text = Path(source).read_text("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise FetchError(f"cannot read {source}: {exc}") from exc
        return Fetched(source, _parse(text, source))
    http = http or requests.Session()
    sleep = sleep or time.sleep
    headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    last_error = ""
    for attempt in range(1, attempts + 1):
        try:
            response = http.get(source, headers=headers, timeout=timeout)
        except requests.RequestException as exc:
            last_error = f"{exc.__class__.__name__}: {exc}"
        else:
            if response.status_code == 304:
                return Fetched(source, None, True, etag, last_modified)
            if response.status_code == 200:
                return Fetched(source, _parse(response.text, source), False, response.headers.get("ETag"),
                               response.headers.get("Last-Modified"))
            last_error = f"HTTP {response.status_code}"
            if response.status_code not in RETRY_STATUSES:
                break
        if attempt < attempts:
            sleep(backoff * 2 ** (attempt - 1))
    raise FetchError(f"{source}: {last_error}")
