"""gunicorn settings for the tool: ``gunicorn -c python:lti_tool.gunicorn_conf --workers 4 'lti_tool:create_app()'``.

- Prometheus multiprocess mode, when ``PROMETHEUS_MULTIPROC_DIR`` is set: the directory is created and
  emptied of the previous run's samples when gunicorn starts, and a dead worker's files are marked.
- JSON logs for gunicorn's own messages too, when the tool logs JSON (``LTI_TOOL_LOG_FORMAT=json``, or
  production without a format). gunicorn's access log stays off: the tool writes its own access line per
  request, without query strings.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
_SAMPLE_FILES = ("counter_*.db", "gauge_*.db", "histogram_*.db", "summary_*.db")


def json_logs(environ: Mapping[str, str]) -> bool:
    chosen = environ.get("LTI_TOOL_LOG_FORMAT", "")
    if chosen:
        return chosen == "json"
    return environ.get("LTI_TOOL_ENV", "development") == "production"


def json_logconfig() -> dict:
    """gunicorn's error log as JSON on stderr, its access log silenced, the root logger left to the tool."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "root": {"level": "INFO", "handlers": []},
        "loggers": {
            "gunicorn.error": {"level": "INFO", "handlers": ["json"], "propagate": False,
                               "qualname": "gunicorn.error"},
            "gunicorn.access": {"level": "INFO", "handlers": ["null"], "propagate": False,
                                "qualname": "gunicorn.access"},
        },
        "handlers": {
            "json": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"},
            "null": {"class": "logging.NullHandler"},
        },
        "formatters": {"json": {"()": "lti_tool.logs.JsonFormatter"}},
    }


logconfig_dict = json_logconfig() if json_logs(os.environ) else {}


def on_starting(server) -> None:
    folder = os.environ.get(MULTIPROC_ENV)
    if not folder:
        return
    path = Path(folder)
    path.mkdir(parents=True, exist_ok=True)
    for pattern in _SAMPLE_FILES:
        for stale in path.glob(pattern):
            stale.unlink()


def child_exit(server, worker) -> None:
    if os.environ.get(MULTIPROC_ENV):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
