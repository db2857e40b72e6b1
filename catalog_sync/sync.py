"""Catalog sync: fetch -> validate (JSON Schema + rules) -> diff -> apply in one transaction -> report.

A feed that fails anywhere is rejected whole and the catalog stays exactly as it was. The same feed twice
changes nothing the second time. Courses missing from the feed, or marked retired, are retired, never
deleted; rounds, modules, lessons and assignments are never deleted either (pupils' seats and work refer
to them).

- ``sync_catalog(session, feed)``: diff and apply a parsed feed in the caller's transaction.
- ``sync_catalog_from_source(session_factory, source, dry_run, config)``: the whole run (fetch, validate,
  apply and commit, record the run in ``catalog_syncs``), as ``catalog sync`` and the staff console do it.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Callable, Iterable, Mapping

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, selectinload, sessionmaker

from lti_tool import clock, outbound
from lti_tool.models import (COURSE_ACTIVE, COURSE_RETIRED, ROUND_OPEN, ROUND_RETIRED, Assignment, CatalogSync,
                             Course, CourseModule, CoursePrice, CourseRound, Lesson)

from .fetch import FetchError, NotJSONError, fetch_feed, is_url
from .markdown import render_local
from .validate import ROOT, FeedIssue, check_feed, validate_feed

logger = logging.getLogger(__name__)

RESULT_APPLIED = "applied"
RESULT_NO_CHANGES = "no_changes"
RESULT_NOT_MODIFIED = "not_modified"
RESULT_REJECTED = "rejected"
RESULT_FAILED = "failed"
RESULT_DRY_RUN = "dry_run"
# Runs after which the catalog is what the source served: their ETag/Last-Modified may be sent again.
_SUCCESSFUL = (RESULT_APPLIED, RESULT_NO_CHANGES, RESULT_NOT_MODIFIED)

ADDED, UPDATED, RETIRED, UNCHANGED = "added", "updated", "retired", "unchanged"
MAX_RECORDED_ERRORS = 200


class FeedRejectedError(ValueError):
    """The feed is not a valid ``kulturskola-catalog/1`` document; ``issues`` lists every problem."""

    def __init__(self, issues: list[FeedIssue]):
        self.issues = issues
        super().__init__(f"the feed has {len(issues)} error(s): " + "; ".join(str(i) for i in issues[:3]))


def content_hash(course: Mapping[str, Any]) -> str:
    """sha256 of the course's canonical JSON (sorted keys, no spaces): equal hash, nothing to do."""
    canonical = json.dumps(course, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@dataclass
class CourseChange:
    code: str
    action: str  # added | updated | retired | unchanged
    details: list[str] = field(default_factory=list)


@dataclass
class SyncReport:
    """What a sync did (or, for a dry run, would do)."""

    result: str = RESULT_APPLIED
    changes: list[CourseChange] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # "path: reason" for a rejected feed, the cause when failed
    source: str | None = None
    feed_generated_at: str | None = None

    def count(self, action: str) -> int:
        return sum(1 for c in self.changes if c.action == action)

    @property
    def added(self) -> int:
        return self.count(ADDED)

    @property
    def updated(self) -> int:
        return self.count(UPDATED)

    @property
    def retired(self) -> int:
        return self.count(RETIRED)

    @property
    def unchanged(self) -> int:
        return self.count(UNCHANGED)

    @property
    def changed(self) -> bool:
        return any(c.action != UNCHANGED for c in self.changes)

    @property
    def ok(self) -> bool:
        return self.result not in (RESULT_REJECTED, RESULT_FAILED)

    def counts(self) -> str:
        return (f"added {self.added}, updated {self.updated}, retired {self.retired}, "
                f"unchanged {self.unchanged}")

    def summary(self) -> str:
        if self.result == RESULT_NOT_MODIFIED:
            return "not modified (304): nothing to do"
        if not self.ok:
            return f"{self.result}: {len(self.errors)} error(s), the catalog is unchanged"
        if not self.changed:
            return f"no changes ({self.counts()})"
        return ("dry run, nothing changed: " if self.result == RESULT_DRY_RUN else "") + self.counts()

    def diff_lines(self) -> list[str]:
        """One line per course that is (or would be) added, updated or retired, with what changed."""
        return [f"{c.action:<9} {c.code}: {'; '.join(c.details)}" for c in self.changes if c.action != UNCHANGED]


# -- apply ----------------------------------------------------------------------------------------------

def _set_content(course: Course, data: dict) -> list[str]:
    """The course's versioned content fields; returns the names of those that changed."""
    values = {"title": data["title"], "summary": data.get("summary"), "subject": data.get("subject"),
              "age_min": data.get("age_min"), "age_max": data.get("age_max"),
              "languages": list(data.get("languages") or [])}
    changed = [name for name, value in values.items() if getattr(course, name) != value]
    for name in changed:
        setattr(course, name, values[name])
    return changed


def _lesson(row: Lesson, item: dict) -> None:
    row.title, row.body_markdown = item["title"], item["body_markdown"]
    row.body_html = render_local(item["body_markdown"])
    row.video_url, row.duration_minutes = item.get("video_url"), item.get("duration_minutes")


def _assignment(row: Assignment, item: dict) -> None:
    row.title, row.instructions_markdown = item["title"], item["instructions_markdown"]
    row.instructions_html = render_local(item["instructions_markdown"])
    row.submission, row.max_score = item["submission"], Decimal(str(item["max_score"]))


def _pick(rows: list, module_id: int):
    """Of the rows with one key: the one already in the target module, else the current one, else any."""
    return (next((r for r in rows if r.module_id == module_id), None)
            or next((r for r in rows if r.current), None) or rows[0])


_Counts = dict[str, list[int]]  # kind -> [added, no longer current]
_ITEM_KINDS: tuple[tuple[type, str, Callable[[Any, dict], None]], ...] = (
    (Lesson, "lesson", _lesson), (Assignment, "assignment", _assignment))


def _replace_modules(session: Session, course: Course, data: dict) -> list[str]:
    """Upsert modules, lessons and assignments by their feed ids (``key``). A lesson or assignment moved to
    another module keeps its row (pupils' progress and submissions refer to it). What the feed no longer
    has gets ``current=False``; nothing is deleted. Returns what changed, counted."""
    modules = {m.key: m for m in session.scalars(select(CourseModule).where(CourseModule.course_code == course.code))}
    rows = _items_by_key(session, [m.id for m in modules.values()])
    counts: _Counts = {"module": [0, 0], "lesson": [0, 0], "assignment": [0, 0]}
    wanted_modules: set[str] = set()
    chosen: dict[type, dict[str, Any]] = {Lesson: {}, Assignment: {}}  # key -> the row the feed's item is
    for position, item in enumerate(data.get("modules") or [], start=1):
        module = modules.get(item["id"])
        if module is None:
            module = modules[item["id"]] = CourseModule(course_code=course.code, key=item["id"])
            session.add(module)
            counts["module"][0] += 1
        module.position, module.title, module.current = position, item["title"], True
        session.flush()  # the module's id, for its lessons and assignments
        wanted_modules.add(item["id"])
        _upsert_items(session, module, item, rows, chosen, counts)
    for key, module in modules.items():
        if key not in wanted_modules and module.current:
            module.current = False
            counts["module"][1] += 1
    _retire_items(rows, chosen, counts)
    return _counted(counts)


def _items_by_key(session: Session, module_ids: list[int]) -> dict[type, dict[str, list]]:
    """The course's lessons and assignments, current or not, by feed id (a key can have several rows)."""
    rows: dict[type, dict[str, list]] = {Lesson: {}, Assignment: {}}
    for model in rows:
        if module_ids:
            for row in session.scalars(select(model).where(model.module_id.in_(module_ids)).order_by(model.id)):
                rows[model].setdefault(row.key, []).append(row)
    return rows


def _upsert_items(session: Session, module: CourseModule, item: dict, rows: dict[type, dict[str, list]],
                  chosen: dict[type, dict[str, Any]], counts: _Counts) -> None:
    """The lessons and assignments of one feed module, in its order: an existing row is reused (and moved to
    the module), else a new one added; each is recorded in ``chosen``."""
    for model, kind, fill in _ITEM_KINDS:
        for item_position, entry in enumerate(item.get(f"{kind}s") or [], start=1):
            existing = rows[model].get(entry["id"])
            if existing:
                row = _pick(existing, module.id)
            else:
                row = model(key=entry["id"])
                rows[model][entry["id"]] = [row]
                session.add(row)
                counts[kind][0] += 1
            row.module_id, row.position, row.current = module.id, item_position, True
            fill(row, entry)
            chosen[model][entry["id"]] = row


def _retire_items(rows: dict[type, dict[str, list]], chosen: dict[type, dict[str, Any]], counts: _Counts) -> None:
    """Every row the feed's items did not choose is no longer current; counted when its key left the feed."""
    for model, kind, _fill in _ITEM_KINDS:
        for key, candidates in rows[model].items():
            keep = chosen[model].get(key)
            for row in candidates:
                if row is not keep and row.current:
                    row.current = False
                    if keep is None:
                        counts[kind][1] += 1


def _counted(counts: _Counts) -> list[str]:
    details = []
    for kind, (added, gone) in counts.items():
        if added:
            details.append(f"{added} {kind}(s) added")
        if gone:
            details.append(f"{gone} {kind}(s) no longer current")
    return details


def _round_values(item: dict) -> dict[str, Any]:
    return {"starts_on": date.fromisoformat(item["starts_on"]), "ends_on": date.fromisoformat(item["ends_on"]),
            "enrolment_closes_on": date.fromisoformat(item["enrolment_closes_on"]),
            "withdrawal_deadline": date.fromisoformat(item["withdrawal_deadline"]),
            "capacity": item["capacity"], "min_participants": item["min_participants"]}


def _operational(session: Session, course: Course, data: dict) -> list[str]:
    """Prices and rounds: taken from the feed whenever the course changed (they are not versioned content).
    Prices are replaced; rounds upserted by id; a round gone from the feed is retired unless it has seats."""
    details: list[str] = []
    prices = {p["country"]: p for p in data.get("prices") or []}
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
            details.append(f"price {country} {amount} {price['currency']} added")
        elif (row.amount, row.currency) != (amount, price["currency"]):
            details.append(f"price {country} {row.amount} {row.currency} -> {amount} {price['currency']}")
            row.amount, row.currency = amount, price["currency"]
    rounds = {r.round_id: r for r in session.scalars(select(CourseRound).where(CourseRound.course_code == course.code))}
    wanted = set()
    for item in data.get("rounds") or []:
        wanted.add(item["id"])
        values = _round_values(item)
        row = rounds.get(item["id"])
        if row is None:
            session.add(CourseRound(course_code=course.code, round_id=item["id"], seats_taken=0, status=ROUND_OPEN,
                                    **values))
            details.append(f"round {item['id']} added")
            continue
        changed = [name for name, value in values.items() if getattr(row, name) != value]
        for name in changed:
            setattr(row, name, values[name])
        if row.status == ROUND_RETIRED:
            row.status = ROUND_OPEN
            changed.append("back in the feed")
        if changed:
            details.append(f"round {item['id']}: {', '.join(changed)}")
    for round_id, row in rounds.items():
        if round_id in wanted or row.status == ROUND_RETIRED:
            continue
        if row.seats_taken:
            details.append(f"round {round_id} gone from the feed: kept as {row.status} ({row.seats_taken} seat(s))")
        else:
            row.status = ROUND_RETIRED
            details.append(f"round {round_id} retired")
    return details


def _add(session: Session, data: dict, digest: str) -> CourseChange:
    course = Course(code=data["code"], version=data["version"], status=COURSE_ACTIVE, content_hash=digest)
    _set_content(course, data)
    session.add(course)
    session.flush()
    _replace_modules(session, course, data)
    _operational(session, course, data)
    modules = len(data.get("modules") or [])
    return CourseChange(course.code, ADDED, [f"version {data['version']}, {len(data.get('rounds') or [])} round(s), "
                                             f"{modules} module(s)"])


def _update(session: Session, course: Course, data: dict, digest: str) -> CourseChange:
    details: list[str] = []
    if course.status != COURSE_ACTIVE:
        course.status, course.retired_at = COURSE_ACTIVE, None
        details.append("active again")
    if data["version"] > course.version:
        fields = _set_content(course, data)
        what = _replace_modules(session, course, data)
        details.append(f"version {course.version} -> {data['version']}: content replaced"
                       + (f" ({', '.join(fields + what)})" if fields or what else ""))
        course.version = data["version"]
    operational = _operational(session, course, data)
    if data["version"] < course.version:
        details.append(f"feed has the older version {data['version']} (have {course.version}): content kept")
    elif data["version"] == course.version and not details and not operational:
        details.append(f"content differs at the same version {course.version}: kept (a higher version replaces it)")
    course.content_hash = digest
    return CourseChange(course.code, UPDATED, details + operational)


def sync_catalog(session: Session, feed: Any, *, dry_run: bool = False, now: datetime | None = None,
                 progress: Callable[[list], Iterable] | None = None) -> SyncReport:
    """Diff the feed against the catalog and apply it in the caller's transaction (the caller commits).

    The feed is validated first: ``FeedRejectedError`` (with every issue) when it is not valid, and nothing
    is touched. ``dry_run`` computes the same report inside a savepoint that is rolled back. ``progress``
    wraps the list of courses (e.g. a progress bar)."""
    issues = check_feed(feed)
    if issues:
        raise FeedRejectedError(issues)
    now = now or clock.now()
    if not dry_run:
        return _apply(session, feed, now, progress)
    savepoint = session.begin_nested()
    try:
        report = _apply(session, feed, now, progress)
    finally:
        savepoint.rollback()
    report.result = RESULT_DRY_RUN
    return report


def _apply(session: Session, feed: dict, now: datetime, progress: Callable[[list], Iterable] | None) -> SyncReport:
    report = SyncReport(feed_generated_at=feed.get("generated_at"))
    courses = feed["courses"]
    in_feed: set[str] = set()
    for data in (progress(courses) if progress else courses):
        code = data["code"]
        in_feed.add(code)
        digest = content_hash(data)
        retired_in_feed = data.get("status", COURSE_ACTIVE) == COURSE_RETIRED
        course = session.get(Course, code)
        if course is None:
            if retired_in_feed:
                report.changes.append(CourseChange(code, UNCHANGED, ["retired in the feed, never offered: skipped"]))
            else:
                report.changes.append(_add(session, data, digest))
        elif retired_in_feed:
            if course.status != COURSE_RETIRED:
                course.status, course.retired_at = COURSE_RETIRED, now
                report.changes.append(CourseChange(code, RETIRED, ["retired in the feed"]))
            else:
                report.changes.append(CourseChange(code, UNCHANGED))
        elif course.content_hash == digest and course.status == COURSE_ACTIVE:
            report.changes.append(CourseChange(code, UNCHANGED))
        else:
            report.changes.append(_update(session, course, data, digest))
    gone = select(Course).where(Course.status != COURSE_RETIRED, Course.code.not_in(in_feed)).order_by(Course.code)
    for course in session.scalars(gone):
        course.status, course.retired_at = COURSE_RETIRED, now
        report.changes.append(CourseChange(course.code, RETIRED, ["missing from the feed"]))
    session.flush()
    report.result = RESULT_APPLIED if report.changed else RESULT_NO_CHANGES
    return report


# -- the whole run: fetch, validate, apply, record --------------------------------------------------------

def _last_validators(sessions: sessionmaker[Session], source: str) -> tuple[str | None, str | None]:
    """ETag and Last-Modified of the last successful sync, when it was from ``source`` (after a sync from
    elsewhere the catalog is not what ``source`` served, whatever a 304 would say)."""
    with sessions() as session:
        last = session.scalar(select(CatalogSync).where(CatalogSync.result.in_(_SUCCESSFUL))
                              .order_by(CatalogSync.started_at.desc(), CatalogSync.id.desc()).limit(1))
        if last is None or last.source != source:
            return None, None
        return last.etag, last.last_modified


def run_sync(sessions: sessionmaker[Session], source: str, *, dry_run: bool = False, timeout: float = 10,
             sleep: Callable[[float], None] | None = None, progress: Callable[[list], Iterable] | None = None,
             http: outbound.OutboundSession | None = None, now: datetime | None = None,
             policy: outbound.OutboundPolicy | None = None) -> SyncReport:
    """Fetch, validate and apply in one transaction (committed, or rolled back for a dry run); then record
    the run in ``catalog_syncs`` in a transaction of its own, whatever happened. Never raises for a bad feed
    or an unreachable source: see ``report.result`` and ``report.errors``. ``policy``: the app's outbound
    policy (``OutboundPolicy.from_settings(app.config)``); without one, ``outbound.STRICT``."""
    started = now or clock.now()
    etag = last_modified = None
    if is_url(source) and not dry_run:
        etag, last_modified = _last_validators(sessions, source)
    report = SyncReport(source=source)
    fetched = None
    try:
        fetched = fetch_feed(source, etag=etag, last_modified=last_modified, timeout=timeout, sleep=sleep, http=http,
                             policy=policy)
    except NotJSONError as error:
        report.result, report.errors = RESULT_REJECTED, [f"{ROOT}: not JSON ({error.__cause__ or error})"]
    except FetchError as error:
        report.result, report.errors = RESULT_FAILED, [str(error)]
    if fetched is not None and fetched.not_modified:
        report.result = RESULT_NOT_MODIFIED
    elif fetched is not None:
        with sessions() as session:
            try:
                report = sync_catalog(session, fetched.data, dry_run=dry_run, now=now, progress=progress)
                if dry_run:
                    session.rollback()
                else:
                    session.commit()
            except FeedRejectedError as error:
                session.rollback()
                report.result, report.errors = RESULT_REJECTED, [str(issue) for issue in error.issues]
            except Exception as error:  # noqa: BLE001 - a database or programming error: recorded as failed
                session.rollback()
                logger.exception("catalog sync of %s failed", source)
                where = "database" if isinstance(error, SQLAlchemyError) else "internal error"
                first_line = (str(error).splitlines() or [""])[0][:300]
                report = SyncReport(result=RESULT_FAILED, errors=[f"{where}: {error.__class__.__name__}: {first_line}"])
        report.source = source
        generated = fetched.data.get("generated_at") if isinstance(fetched.data, dict) else None
        report.feed_generated_at = generated if isinstance(generated, str) else None
    _record(sessions, report, started, fetched)
    return report


def _record(sessions: sessionmaker[Session], report: SyncReport, started: datetime, fetched) -> None:
    with sessions.begin() as session:
        session.add(CatalogSync(
            started_at=started, finished_at=max(started, clock.now()),
            source=(report.source or "")[:1000],
            result=report.result, added=report.added, updated=report.updated, retired=report.retired,
            unchanged=report.unchanged, errors=report.errors[:MAX_RECORDED_ERRORS],
            etag=(fetched.etag[:500] if fetched is not None and fetched.etag else None),
            last_modified=(fetched.last_modified[:100] if fetched is not None and fetched.last_modified else None),
            feed_generated_at=(report.feed_generated_at or "")[:40] or None))


def sync_catalog_from_source(session_factory: sessionmaker[Session], source: str, dry_run: bool = False,
                             config: Mapping[str, Any] | None = None, *,
                             sleep: Callable[[float], None] | None = None,
                             progress: Callable[[list], Iterable] | None = None,
                             http: outbound.OutboundSession | None = None) -> SyncReport:
    """The whole sync of ``source`` (a file path or an http(s) URL), for the CLI, the staff console or a
    worker: ``run_sync`` with the app's settings (``HTTP_TIMEOUT_SECONDS``, the outbound policy; without
    ``config``, ``outbound.STRICT``). ``session_factory`` is the app's sessionmaker
    (``app.extensions[lti_tool.db.SESSIONMAKER_KEY]``)."""
    timeout = float((config or {}).get("HTTP_TIMEOUT_SECONDS", 10))
    policy = outbound.OutboundPolicy.from_settings(config) if config is not None else None
    return run_sync(session_factory, source, dry_run=dry_run, timeout=timeout, sleep=sleep, progress=progress,
                    http=http, policy=policy)


# -- reading --------------------------------------------------------------------------------------------

def history(session: Session, limit: int = 20) -> list[CatalogSync]:
    """The latest sync runs, newest first."""
    return list(session.scalars(select(CatalogSync).order_by(CatalogSync.started_at.desc(), CatalogSync.id.desc())
                                .limit(limit)))


def list_courses(session: Session) -> list[Course]:
    """Every course of the catalog (retired ones too), by code, with prices and rounds loaded."""
    return list(session.scalars(select(Course).options(selectinload(Course.rounds), selectinload(Course.prices))
                                .order_by(Course.code)))


__all__ = ["ADDED", "RETIRED", "UNCHANGED", "UPDATED", "RESULT_APPLIED", "RESULT_DRY_RUN", "RESULT_FAILED",
           "RESULT_NOT_MODIFIED", "RESULT_NO_CHANGES", "RESULT_REJECTED", "CourseChange", "FeedRejectedError",
           "SyncReport", "content_hash", "history", "list_courses", "run_sync", "sync_catalog",
           "sync_catalog_from_source", "validate_feed"]
