"""Catalog sync: fetch -> validate (JSON Schema + rules) -> diff -> apply in one transaction -> report.

A feed that fails anywhere is rejected whole and the catalog stays exactly as it was. The same feed twice
changes nothing the second time. Courses missing from the feed, or marked retired, are retired, never
deleted; rounds, modules, lessons and assignments are never deleted either (pupils' seats and work refer
to them).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from decimal import Decimal
from importlib import resources
from typing import Any, Callable, Iterable

from jsonschema import Draft202012Validator, FormatChecker
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from lti_tool.models import (COURSE_ACTIVE, COURSE_RETIRED, ROUND_OPEN, ROUND_RETIRED, Assignment, CatalogSync,
                             Course, CourseModule, CoursePrice, CourseRound, Lesson)

from .fetch import FetchError, fetch_feed, is_url
from .markdown import render_local

RESULT_APPLIED = "applied"
RESULT_NO_CHANGES = "no_changes"
RESULT_NOT_MODIFIED = "not_modified"
RESULT_REJECTED = "rejected"
RESULT_FAILED = "failed"
RESULT_DRY_RUN = "dry_run"


def _schema() -> dict:
    return json.loads((resources.files("catalog_sync") / "schema.json").read_text("utf-8"))


_VALIDATOR = Draft202012Validator(_schema(), format_checker=FormatChecker())


def _path(parts: Iterable[Any]) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(feed)"


def validate_feed(feed: Any) -> list[str]:
    """Every error of the feed as ``path: reason``; empty when the feed is good."""
    if not isinstance(feed, dict):
        return [f"(feed): must be a JSON object, not {type(feed).__name__}"]
    errors = sorted((_path(e.absolute_path), e.message) for e in _VALIDATOR.iter_errors(feed))
    messages = [f"{path}: {message}" for path, message in errors]
    courses = feed.get("courses") if isinstance(feed.get("courses"), list) else []
    seen: dict[str, int] = {}
    for i, course in enumerate(courses):
        if not isinstance(course, dict):
            continue
        code = course.get("code")
        if isinstance(code, str):
            if code in seen:
                messages.append(f"courses[{i}].code: {code!r} already used by courses[{seen[code]}]")
            seen.setdefault(code, i)
        rounds_seen: set[str] = set()
        for j, round_ in enumerate(course.get("rounds") or []):
            if not isinstance(round_, dict):
                continue
            rid = round_.get("id")
            if isinstance(rid, str):
                if rid in rounds_seen:
                    messages.append(f"courses[{i}].rounds[{j}].id: {rid!r} appears twice in the course")
                rounds_seen.add(rid)
            try:
                starts, ends = date.fromisoformat(round_["starts_on"]), date.fromisoformat(round_["ends_on"])
            except (KeyError, TypeError, ValueError):
                continue  # reported by the schema
            if starts > ends:
                messages.append(f"courses[{i}].rounds[{j}].ends_on: {ends} is before starts_on {starts}")
        ids: set[str] = set()
        for j, module in enumerate(course.get("modules") or []):
            if not isinstance(module, dict):
                continue
            for kind, items in (("module", [module]), ("lessons", module.get("lessons") or []),
                                ("assignments", module.get("assignments") or [])):
                for k, item in enumerate(items):
                    if not isinstance(item, dict) or not isinstance(item.get("id"), str):
                        continue
                    where = f"courses[{i}].modules[{j}]" + ("" if kind == "module" else f".{kind}[{k}]")
                    if item["id"] in ids:
                        messages.append(f"{where}.id: {item['id']!r} appears twice in the course")
                    ids.add(item["id"])
        ages = course.get("age_min"), course.get("age_max")
        if all(isinstance(a, int) for a in ages) and ages[0] > ages[1]:
            messages.append(f"courses[{i}].age_max: below age_min")
    return messages


def content_hash(course: dict) -> str:
    return hashlib.sha256(json.dumps(course, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
                          .encode("utf-8")).hexdigest()


@dataclass
class CourseChange:
    code: str
    action: str  # added | updated | retired | unchanged
    details: list[str] = field(default_factory=list)


@dataclass
class SyncReport:
    result: str = RESULT_APPLIED
    changes: list[CourseChange] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def count(self, action: str) -> int:
        return sum(1 for c in self.changes if c.action == action)

    @property
    def changed(self) -> bool:
        return any(c.action != "unchanged" for c in self.changes)

    def summary(self) -> str:
        if self.result == RESULT_NOT_MODIFIED:
            return "not modified (304): nothing to do"
        if self.result in (RESULT_REJECTED, RESULT_FAILED):
            return f"{self.result}: {len(self.errors)} error(s), the catalog is unchanged"
        counts = (f"added {self.count('added')}, updated {self.count('updated')}, retired {self.count('retired')}, "
                  f"unchanged {self.count('unchanged')}")
        if not self.changed:
            return f"no changes ({counts})"
        return ("dry run, nothing changed: " if self.result == RESULT_DRY_RUN else "") + counts


# -- apply ----------------------------------------------------------------------------------------------

def _content(course: Course, data: dict) -> None:
    course.title = data["title"]
    course.summary = data.get("summary")
    course.subject = data.get("subject")
    course.age_min, course.age_max = data.get("age_min"), data.get("age_max")
    course.languages = data.get("languages") or []


def _replace_modules(session: Session, course: Course, data: dict) -> None:
    existing = {m.key: m for m in session.scalars(select(CourseModule).where(CourseModule.course_code == course.code))}
    keep: set[str] = set()
    for position, item in enumerate(data.get("modules") or [], start=1):
        module = existing.get(item["id"]) or CourseModule(course_code=course.code, key=item["id"])
        module.position, module.title, module.current = position, item["title"], True
        session.add(module)
        session.flush()
        keep.add(item["id"])
        _replace_items(session, module, Lesson, item.get("lessons") or [], _lesson)
        _replace_items(session, module, Assignment, item.get("assignments") or [], _assignment)
    for key, module in existing.items():
        if key not in keep:
            module.current = False
            for model in (Lesson, Assignment):
                for row in session.scalars(select(model).where(model.module_id == module.id)):
                    row.current = False


def _lesson(row: Lesson, item: dict) -> None:
    row.title, row.body_markdown = item["title"], item["body_markdown"]
    row.body_html = render_local(item["body_markdown"])
    row.video_url, row.duration_minutes = item.get("video_url"), item.get("duration_minutes")


def _assignment(row: Assignment, item: dict) -> None:
    row.title, row.instructions_markdown = item["title"], item["instructions_markdown"]
    row.instructions_html = render_local(item["instructions_markdown"])
    row.submission, row.max_score = item["submission"], Decimal(str(item["max_score"]))


def _replace_items(session: Session, module: CourseModule, model, items: list[dict], fill: Callable) -> None:
    existing = {r.key: r for r in session.scalars(select(model).where(model.module_id == module.id))}
    keep = set()
    for position, item in enumerate(items, start=1):
        row = existing.get(item["id"]) or model(module_id=module.id, key=item["id"])
        row.position, row.current = position, True
        fill(row, item)
        session.add(row)
        keep.add(item["id"])
    for key, row in existing.items():
        if key not in keep:
            row.current = False


def _operational(session: Session, course: Course, data: dict, details: list[str]) -> None:
    """Prices and rounds: replaced from the feed on every change (they are not versioned content)."""
    prices = {(p["country"]): p for p in data.get("prices") or []}
    for row in list(course.prices):
        if row.country not in prices:
            course.prices.remove(row)
            details.append(f"price {row.country} removed")
    current = {p.country: p for p in course.prices}
    for country, price in prices.items():
        amount = Decimal(str(price["amount"]))
        row = current.get(country)
        if row is None:
            course.prices.append(CoursePrice(country=country, amount=amount, currency=price["currency"]))
        elif (row.amount, row.currency) != (amount, price["currency"]):
            details.append(f"price {country} {row.amount} {row.currency} -> {amount} {price['currency']}")
            row.amount, row.currency = amount, price["currency"]
    rounds = {r.round_id: r for r in session.scalars(select(CourseRound).where(CourseRound.course_code == course.code))}
    wanted = set()
    for item in data.get("rounds") or []:
        wanted.add(item["id"])
        row = rounds.get(item["id"])
        values = {"starts_on": date.fromisoformat(item["starts_on"]), "ends_on": date.fromisoformat(item["ends_on"]),
                  "enrolment_closes_on": date.fromisoformat(item["enrolment_closes_on"]),
                  "withdrawal_deadline": date.fromisoformat(item["withdrawal_deadline"]),
                  "capacity": item["capacity"], "min_participants": item["min_participants"]}
        if row is None:
            session.add(CourseRound(course_code=course.code, round_id=item["id"], seats_taken=0, status=ROUND_OPEN,
                                    **values))
            details.append(f"round {item['id']} added")
            continue
        changed = [k for k, v in values.items() if getattr(row, k) != v]
        for key in changed:
            setattr(row, key, values[key])
        if row.status == ROUND_RETIRED:
            row.status = ROUND_OPEN
            changed.append("status")
        if changed:
            details.append(f"round {item['id']}: {', '.join(changed)}")
    for round_id, row in rounds.items():
        if round_id not in wanted and row.status != ROUND_RETIRED and row.seats_taken == 0:
            row.status = ROUND_RETIRED
            details.append(f"round {round_id} retired")


def sync_catalog(session: Session, feed: dict, *, now: datetime | None = None,
                 progress: Callable[[list], Iterable] | None = None) -> SyncReport:
    """Apply a *validated* feed in the caller's transaction (the caller commits, or rolls back a dry run)."""
    now = now or datetime.now(timezone.utc)
    report = SyncReport()
    courses = feed.get("courses") or []
    in_feed = set()
    for data in (progress(courses) if progress else courses):
        code = data["code"]
        in_feed.add(code)
        digest = content_hash(data)
        status = data.get("status", COURSE_ACTIVE)
        course = session.get(Course, code)
        if course is None:
            if status == COURSE_RETIRED:
                report.changes.append(CourseChange(code, "unchanged", ["retired in the feed, never synced: skipped"]))
                continue
            course = Course(code=code, version=data["version"], status=COURSE_ACTIVE, content_hash=digest)
            _content(course, data)
            session.add(course)
            session.flush()
            _replace_modules(session, course, data)
            _operational(session, course, data, [])
            report.changes.append(CourseChange(code, "added", [f"version {data['version']}"]))
            continue
        if status == COURSE_RETIRED:
            if course.status != COURSE_RETIRED:
                course.status, course.retired_at = COURSE_RETIRED, now
                report.changes.append(CourseChange(code, "retired", ["retired in the feed"]))
            else:
                report.changes.append(CourseChange(code, "unchanged"))
            continue
        if course.content_hash == digest and course.status == COURSE_ACTIVE:
            report.changes.append(CourseChange(code, "unchanged"))
            continue
        details: list[str] = []
        if course.status != COURSE_ACTIVE:
            course.status, course.retired_at = COURSE_ACTIVE, None
            details.append("active again")
        if data["version"] > course.version:
            details.append(f"version {course.version} -> {data['version']}: content replaced")
            _content(course, data)
            _replace_modules(session, course, data)
            course.version = data["version"]
        elif data["version"] < course.version:
            details.append(f"feed has older version {data['version']} (have {course.version}): content kept")
        _operational(session, course, data, details)
        course.content_hash = digest
        report.changes.append(CourseChange(code, "updated", details or ["unchanged content, same version"]))
    for course in session.scalars(select(Course).where(Course.status == COURSE_ACTIVE, Course.code.not_in(in_feed))):
        course.status, course.retired_at = COURSE_RETIRED, now
        report.changes.append(CourseChange(course.code, "retired", ["missing from the feed"]))
    session.flush()
    return report


# -- the whole run: fetch, validate, apply, record --------------------------------------------------------

def _last_validators(sessions: sessionmaker[Session], source: str) -> tuple[str | None, str | None]:
    with sessions() as session:
        last = session.scalar(select(CatalogSync).where(
            CatalogSync.source == source, CatalogSync.result.in_([RESULT_APPLIED, RESULT_NO_CHANGES, RESULT_NOT_MODIFIED]))
            .order_by(CatalogSync.started_at.desc(), CatalogSync.id.desc()).limit(1))
        return (last.etag, last.last_modified) if last else (None, None)


def run_sync(sessions: sessionmaker[Session], source: str, *, dry_run: bool = False, timeout: float = 10,
             sleep: Callable[[float], None] | None = None, progress: Callable[[list], Iterable] | None = None,
             http=None) -> SyncReport:
    """Fetch, validate and apply in one transaction; record the run in the sync history either way."""
    started = datetime.now(timezone.utc)
    etag = last_modified = None
    if is_url(source) and not dry_run:
        etag, last_modified = _last_validators(sessions, source)
    report = SyncReport()
    fetched = None
    try:
        kwargs = {"sleep": sleep} if sleep else {}
        fetched = fetch_feed(source, etag=etag, last_modified=last_modified, timeout=timeout, http=http, **kwargs)
    except FetchError as error:
        report.result, report.errors = RESULT_FAILED, [str(error)]
    if fetched is not None and fetched.not_modified:
        report.result = RESULT_NOT_MODIFIED
    elif fetched is not None:
        errors = validate_feed(fetched.data)
        if errors:
            report.result, report.errors = RESULT_REJECTED, errors
        else:
            with sessions() as session:
                report = sync_catalog(session, fetched.data, progress=progress)
                if dry_run:
                    session.rollback()
                    report.result = RESULT_DRY_RUN
                else:
                    session.commit()
                    report.result = RESULT_APPLIED if report.changed else RESULT_NO_CHANGES
    with sessions.begin() as session:
        feed = fetched.data if fetched is not None and isinstance(fetched.data, dict) else {}
        generated = feed.get("generated_at")
        session.add(CatalogSync(
            started_at=started, finished_at=datetime.now(timezone.utc), source=source[:1000], result=report.result,
            added=report.count("added"), updated=report.count("updated"), retired=report.count("retired"),
            unchanged=report.count("unchanged"), errors=report.errors[:200],
            etag=(fetched.etag if fetched else None), last_modified=(fetched.last_modified if fetched else None),
            feed_generated_at=generated[:40] if isinstance(generated, str) else None))
    return report


def history(session: Session, limit: int = 20) -> list[CatalogSync]:
    return list(session.scalars(select(CatalogSync).order_by(CatalogSync.started_at.desc(), CatalogSync.id.desc())
                                .limit(limit)))
