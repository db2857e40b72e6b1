"""Validation of a catalog feed (format ``kulturskola-catalog/1``): the JSON Schema in ``schema.json``, then
the rules a schema cannot say (unique codes and ids, a round's dates in order).

Every problem is reported, each with the JSON path of the value at fault (``courses[3].rounds[0].ends_on``)
and a reason. Nothing here touches the database.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from importlib import resources
from typing import Any, Iterable

from jsonschema import Draft202012Validator, FormatChecker

FEED_FORMAT = "kulturskola-catalog/1"
ROOT = "(feed)"
MAX_REASON = 300

# The failing keyword's own schema may carry an ``x-message``: a reason a person can act on, in place of
# jsonschema's (which quotes the value and the regular expression).
_MESSAGE_KEYWORDS = {"anyOf", "const", "enum", "exclusiveMinimum", "format", "maxLength", "maximum", "minLength",
                     "minimum", "pattern", "type"}


@dataclass(frozen=True, order=True)
class FeedIssue:
    """One problem of a feed: where (a JSON path) and why."""

    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


def load_schema() -> dict:
    """The feed's JSON Schema (draft 2020-12), shipped as package data."""
    return json.loads((resources.files("catalog_sync") / "schema.json").read_text("utf-8"))


@lru_cache(maxsize=1)
def _validator() -> Draft202012Validator:
    schema = load_schema()
    Draft202012Validator.check_schema(schema)
    checker = FormatChecker()
    # date-time is only checked when rfc3339-validator is installed: refuse to run without it rather than
    # let "yesterday" through as a generated_at.
    if "date-time" not in checker.checkers or "date" not in checker.checkers:
        raise RuntimeError("jsonschema cannot check date/date-time formats: install rfc3339-validator")
    return Draft202012Validator(schema, format_checker=checker)


def json_path(parts: Iterable[Any]) -> str:
    """``["courses", 3, "rounds", 0, "ends_on"]`` -> ``courses[3].rounds[0].ends_on``."""
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or ROOT


def _shorten(text: str) -> str:
    return text if len(text) <= MAX_REASON else text[:MAX_REASON - 1] + "…"


def _schema_issues(feed: dict) -> list[FeedIssue]:
    issues: list[FeedIssue] = []
    for error in _validator().iter_errors(feed):
        parts = list(error.absolute_path)
        if error.validator == "required":
            # One error per missing property: report it at the property's own path.
            for name in error.validator_value:
                if isinstance(error.instance, dict) and name not in error.instance:
                    issues.append(FeedIssue(json_path([*parts, name]), "is required"))
            continue
        if error.validator == "additionalProperties" and isinstance(error.instance, dict):
            allowed = set(error.schema.get("properties", {}))
            for name in sorted(set(error.instance) - allowed):
                issues.append(FeedIssue(json_path([*parts, name]),
                                        f"not allowed here (allowed: {', '.join(sorted(allowed))})"))
            continue
        custom = error.schema.get("x-message") if isinstance(error.schema, dict) else None
        reason = custom if custom and error.validator in _MESSAGE_KEYWORDS else error.message
        issues.append(FeedIssue(json_path(parts), _shorten(reason)))
    return list(dict.fromkeys(issues))  # jsonschema may say the same thing twice (through $ref)


def _rule_issues(feed: dict) -> list[FeedIssue]:
    """Rules beyond the schema: course codes unique in the feed; round ids unique in their course; module,
    lesson and assignment ids each unique in their course; a price per country at most once; a round's
    ``starts_on`` not after its ``ends_on``. Values of the wrong shape are skipped (the schema reports them)."""
    issues: list[FeedIssue] = []
    courses = feed.get("courses")
    if not isinstance(courses, list):
        return issues
    codes: dict[str, str] = {}
    for i, course in enumerate(courses):
        if not isinstance(course, dict):
            continue
        at = f"courses[{i}]"
        _unique(issues, codes, course.get("code"), f"{at}.code", "course code")
        countries: dict[str, str] = {}
        for j, price in enumerate(_list(course.get("prices"))):
            if isinstance(price, dict):
                _unique(issues, countries, price.get("country"), f"{at}.prices[{j}].country", "price country")
        _round_issues(issues, course, at)
        _content_id_issues(issues, course, at)
    return issues


def _unique(issues: list[FeedIssue], seen: dict[str, str], value: Any, path: str, what: str) -> None:
    """Records ``value`` (a string; anything else is skipped) as first seen at ``path``, or adds an issue
    when it was seen before."""
    if not isinstance(value, str):
        return
    if value in seen:
        issues.append(FeedIssue(path, f"{what} {value!r} appears twice (first at {seen[value]})"))
    else:
        seen[value] = path


def _round_issues(issues: list[FeedIssue], course: dict, at: str) -> None:
    """Round ids unique in the course; no round ending before it starts."""
    rounds: dict[str, str] = {}
    for j, round_ in enumerate(_list(course.get("rounds"))):
        if not isinstance(round_, dict):
            continue
        _unique(issues, rounds, round_.get("id"), f"{at}.rounds[{j}].id", "round id")
        starts, ends = _date(round_.get("starts_on")), _date(round_.get("ends_on"))
        if starts and ends and starts > ends:
            issues.append(FeedIssue(f"{at}.rounds[{j}].ends_on",
                                    f"{ends.isoformat()} is before starts_on {starts.isoformat()}"))


def _content_id_issues(issues: list[FeedIssue], course: dict, at: str) -> None:
    """Module, lesson and assignment ids each unique in the course (across its modules)."""
    ids: dict[str, dict[str, str]] = {"module": {}, "lesson": {}, "assignment": {}}
    for j, module in enumerate(_list(course.get("modules"))):
        if not isinstance(module, dict):
            continue
        _unique(issues, ids["module"], module.get("id"), f"{at}.modules[{j}].id", "module id")
        for kind, key in (("lesson", "lessons"), ("assignment", "assignments")):
            for k, item in enumerate(_list(module.get(key))):
                if isinstance(item, dict):
                    _unique(issues, ids[kind], item.get("id"), f"{at}.modules[{j}].{key}[{k}].id", f"{kind} id")


def _list(value: Any) -> list:
    return value if isinstance(value, list) else []


def _date(value: Any) -> date | None:
    if not isinstance(value, str) or len(value) != 10:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def check_feed(feed: Any) -> list[FeedIssue]:
    """Every problem of a parsed feed; an empty list when the feed is good. Never changes ``feed``."""
    if not isinstance(feed, dict):
        return [FeedIssue(ROOT, f"must be a JSON object, not {_json_type(feed)}")]
    return sorted(_schema_issues(feed) + _rule_issues(feed), key=lambda issue: _natural(issue.path))


def _natural(path: str) -> tuple:
    """``courses[2]`` before ``courses[10]``; a value's own problems before those of its parts."""
    return tuple((0, int(token), "") if token.isdigit() else (1, 0, token)
                 for token in re.split(r"[.\[\]]+", path) if token)


def validate_feed(feed: Any) -> list[str]:
    """Every problem of a parsed feed as ``path: reason`` lines; an empty list when the feed is good."""
    return [str(issue) for issue in check_feed(feed)]


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if value is None:
        return "null"
    names: dict[type, str] = {list: "an array", str: "a string", int: "a number", float: "a number"}
    return names.get(type(value), type(value).__name__)


__all__ = ["FEED_FORMAT", "FeedIssue", "check_feed", "json_path", "load_schema", "validate_feed"]
