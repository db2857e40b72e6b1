"""Logs: one JSON object per line (production) or plain text (development), each line inside a request
carrying that request's id.

A request's id is its ``X-Request-ID`` header when that is a safe token (letters, digits, ``._:-``, at most
128 characters), else a new random one; the response echoes it. Logs never carry query strings (signed
launch tokens travel there), form bodies, cookies or the LTI ``sub``: the access line has the method, the
path, the status and the duration only.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import uuid
from datetime import datetime, timezone
from typing import Any

REQUEST_ID_HEADER = "X-Request-ID"
_SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
_HANDLER_MARK = "_lti_tool_handler"
ACCESS_LOGGER = "lti_tool.access"

# Attributes every LogRecord has; anything else was passed with ``extra=`` and goes into the JSON line.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}


# PostgreSQL's DETAIL line of a constraint violation quotes the row's values (``Key (sub)=(...)``).
_DATABASE_DETAIL = re.compile(r"^(\s*DETAIL:).*$", re.MULTILINE)


def scrub(text: str) -> str:
    """Drop what a database error quotes from the data (the bound values are hidden by the engine)."""
    return _DATABASE_DETAIL.sub(r"\1 (hidden)", text)


def parse_request_id(value: str | None) -> str:
    """The incoming id when it is safe to log and echo, else a new one."""
    if value and _SAFE_REQUEST_ID.fullmatch(value):
        return value
    return uuid.uuid4().hex


def current_request_id() -> str | None:
    """The id of the request being served by this thread, if any."""
    try:
        from flask import g, has_request_context
    except ImportError:  # pragma: no cover - Flask is a dependency
        return None
    if not has_request_context():
        return None
    return g.get("request_id")


class JsonFormatter(logging.Formatter):
    """``{"time", "level", "logger", "message", "request_id", ...extra}`` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": scrub(record.getMessage()),
        }
        request_id = getattr(record, "request_id", None) or current_request_id()
        if request_id:
            entry["request_id"] = request_id
        for name, value in vars(record).items():
            if name not in _STANDARD and name not in entry and not name.startswith("_"):
                entry[name] = value
        if record.exc_info:
            entry["exception"] = scrub(self.formatException(record.exc_info))
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """``time level logger [request id] message`` for a developer's terminal."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = scrub(super().format(record))
        request_id = getattr(record, "request_id", None) or current_request_id()
        return f"{line} [{request_id}]" if request_id else line


def make_formatter(log_format: str) -> logging.Formatter:
    return JsonFormatter() if log_format == "json" else TextFormatter()


class _QueryStringFilter(logging.Filter):
    """Werkzeug's development server logs each request line with its query string; drop the query."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and record.args and isinstance(record.args[0], str):
            record.args = (re.sub(r"\?\S*", "", record.args[0], count=1), *record.args[1:])
        return True


def configure_logging(log_format: str, level: str = "INFO") -> None:
    """Log to stderr in the chosen format. Idempotent (``create_app`` may run many times in one process),
    and leaves alone a root logger someone else has already set up (gunicorn's ``logconfig_dict``, pytest)."""
    root = logging.getLogger()
    ours = [handler for handler in root.handlers if getattr(handler, _HANDLER_MARK, False)]
    if not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        setattr(handler, _HANDLER_MARK, True)
        root.addHandler(handler)
        root.setLevel(logging.INFO)
        ours = [handler]
    for handler in ours:
        handler.setFormatter(make_formatter(log_format))
    logging.getLogger("lti_tool").setLevel(str(level).upper())
    logging.getLogger("alembic").setLevel(logging.WARNING)
    # pysaml2 logs whole assertions at DEBUG, and its schema library every schema it loads at INFO.
    logging.getLogger("saml2").setLevel(logging.WARNING)
    logging.getLogger("xmlschema").setLevel(logging.WARNING)
    werkzeug = logging.getLogger("werkzeug")
    if not any(isinstance(f, _QueryStringFilter) for f in werkzeug.filters):
        werkzeug.addFilter(_QueryStringFilter())
