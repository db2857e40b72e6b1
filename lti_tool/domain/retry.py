"""When to try a platform call again: exponential backoff with jitter, respecting Retry-After."""

from __future__ import annotations

import random
from email.utils import parsedate_to_datetime
from datetime import datetime, timezone

BASE_SECONDS = 5.0
CAP_SECONDS = 3600.0

# 429 and 5xx are the platform's trouble (retry); 401 asks for a new token (once); other 4xx are ours to
# look at (dead letter, with the platform's answer kept).
RETRY = "retry"
REFRESH_TOKEN = "refresh_token"
DEAD = "dead"
DONE = "done"


def classify(status: int | None) -> str:
    """What to do after an answer (``None``: no answer at all, a timeout or a connection error)."""
    if status is None or status == 429 or status >= 500:
        return RETRY
    if status == 401:
        return REFRESH_TOKEN
    if 200 <= status < 300:
        return DONE
    return DEAD


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():  # "²".isdigit() is true too
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - now).total_seconds())


def backoff_seconds(attempt: int, retry_after: float | None = None, *, base: float = BASE_SECONDS,
                    cap: float = CAP_SECONDS, rand: random.Random | None = None) -> float:
    """Delay before try ``attempt + 1``: full jitter over base * 2^(attempt-1), capped; never sooner than
    the platform's Retry-After."""
    uniform = rand.uniform if rand is not None else random.uniform
    ceiling = min(cap, base * (2.0 ** max(0, attempt - 1)))
    delay = ceiling / 2 + uniform(0, ceiling / 2)
    if retry_after is not None:
        delay = max(delay, min(retry_after, cap))
    return delay
