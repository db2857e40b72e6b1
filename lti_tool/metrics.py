"""Prometheus metrics: plain functions to count with, and the text served at ``/metrics``.

No Flask here, so services and workers may count too. With several worker processes (gunicorn), set
``PROMETHEUS_MULTIPROC_DIR`` to an empty directory writable by every worker before they start: each process
then writes its samples there and any process's ``/metrics`` adds them all up (see
``lti_tool.gunicorn_conf`` for the hook that drops a dead worker's live gauges).

Label values are kept short and plain (letters, digits, ``._:-``, at most 64 characters) so that a bad
value can neither break the exposition nor blow up the number of series.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Callable, Iterable

from prometheus_client import (CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, Histogram,
                               disable_created_metrics, generate_latest)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from . import clock
from .models import STATE_PATH_COOKIE, STATE_PATH_NEW_WINDOW, STATE_PATH_STORAGE

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
disable_created_metrics()  # no "_created" series beside every counter and histogram

REQUEST_DURATION = Histogram(
    "lti_http_request_duration_seconds", "Time to answer an HTTP request, by endpoint, method and status.",
    ["endpoint", "method", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0))
LAUNCHES = Counter(
    "lti_launches", "LTI launches by outcome (accepted or the refusal code), state path and platform.",
    ["outcome", "path", "platform"])
SEAT_DECISIONS = Counter(
    "lti_seat_decisions", "Seat decisions at a pupil's launch: granted, already_held or the refusal code.",
    ["decision"])
RATE_LIMITED = Counter(
    "lti_rate_limited", "Requests refused with 429 by a rate limit, by endpoint and limit.", ["endpoint", "limit"])
RATE_LIMIT_ERRORS = Counter(
    "lti_rate_limit_errors", "Rate-limit checks that could not count (backend down) and let the request through.",
    ["backend"])

LAUNCH_PATHS = frozenset({STATE_PATH_COOKIE, STATE_PATH_STORAGE, STATE_PATH_NEW_WINDOW, "none"})
_UNSAFE = re.compile(r"[^A-Za-z0-9._:-]+")


def _label(value: object, default: str = "unknown") -> str:
    text = _UNSAFE.sub("_", str(value or "")).strip("_")[:64]
    return text or default


def count_launch(outcome: str, path: str, platform: str) -> None:
    """One launch: ``outcome`` is ``accepted`` or the refusal code; ``path`` how the login state came back
    (``cookie``, ``platform_storage``, ``new_window`` or ``none``); ``platform`` a low-cardinality name of
    the platform (its product family, or its registration), never a user."""
    LAUNCHES.labels(outcome=_label(outcome), path=path if path in LAUNCH_PATHS else "none",
                    platform=_label(platform)).inc()


def count_seat_decision(decision: str) -> None:
    """One seat decision: ``granted``, ``already_held`` or the refusal code (``budget_used_up``, ...)."""
    SEAT_DECISIONS.labels(decision=_label(decision)).inc()


def count_rate_limited(endpoint: str, limit: str) -> None:
    RATE_LIMITED.labels(endpoint=_label(endpoint), limit=_label(limit)).inc()


def count_rate_limit_error(backend: str) -> None:
    RATE_LIMIT_ERRORS.labels(backend=_label(backend)).inc()


def observe_request(endpoint: str | None, method: str, status: int, seconds: float) -> None:
    REQUEST_DURATION.labels(endpoint=_label(endpoint, "unmatched"), method=_label(method),
                            status=str(int(status))).observe(seconds)


# -- scrape-time gauges ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class OutboxStats:
    """The grade outbox now: items waiting (pending or being sent), dead letters, the oldest waiting item."""

    waiting: int
    dead: int
    oldest_waiting_at: datetime | None


class OutboxCollector(Collector):
    """Outbox depth and the age of its oldest waiting item, read from the database at each scrape."""

    def __init__(self, read_stats: Callable[[], OutboxStats], now: Callable[[], datetime] | None = None):
        self.read_stats = read_stats
        self.now = now or clock.now

    def collect(self) -> Iterable[GaugeMetricFamily]:
        stats = self.read_stats()
        age = 0.0
        if stats.oldest_waiting_at is not None:
            age = max(0.0, (self.now() - stats.oldest_waiting_at).total_seconds())
        yield GaugeMetricFamily("lti_outbox_depth", "Grade outbox items waiting to be sent (pending or sending).",
                                value=stats.waiting)
        yield GaugeMetricFamily("lti_outbox_dead_items", "Grade outbox items given up on (dead letters).",
                                value=stats.dead)
        yield GaugeMetricFamily("lti_outbox_oldest_pending_age_seconds",
                                "Age of the oldest grade outbox item still waiting to be sent (0 when none).",
                                value=age)


def multiprocess_enabled() -> bool:
    return bool(os.environ.get(MULTIPROC_ENV))


def render(collectors: Iterable[Collector] = ()) -> tuple[bytes, str]:
    """The exposition text and its content type: this process's metrics (every process's, in multiprocess
    mode), then the given scrape-time collectors."""
    if multiprocess_enabled():
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    output = generate_latest(registry)
    extra = CollectorRegistry()
    for collector in collectors:
        extra.register(collector)
    return output + generate_latest(extra), CONTENT_TYPE_LATEST
