"""The municipal console's progress export: the municipality's own pupils, per course (and round), as CSV or XLSX
for its arts-school contact (services.progress_export). Registered on the console's blueprint, behind the
console's one rule (:func:`.municipal.console_required`): the launch's own municipality only.

Loaded by ``create_app`` (``from .web import municipal_exports``) before the blueprint is registered."""

from __future__ import annotations

import re

from flask import Response, g, request
from flask_babel import get_locale

from ..config import settings
from ..db import get_session
from ..domain.errors import DomainError
from ..models import AuditEntry, Course, CourseRound
from ..services import progress_export
from ..services.delivery import pupil_label
from ..services.errors import NotFoundError
from .municipal import bp, console_required

_COURSE_CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,39}")


@bp.context_processor
def _exports():
    """The console links to the export only when this module is loaded."""
    return {"progress_exports": True}


def _filters(session) -> tuple[str | None, int | None]:
    """``?course=CODE`` and ``?round=ID`` (the round's number, as the console's forms name rounds)."""
    course = (request.args.get("course") or "").strip() or None
    if course is not None and (not _COURSE_CODE.fullmatch(course) or session.get(Course, course) is None):
        raise NotFoundError("no such course")
    raw_round = (request.args.get("round") or "").strip()
    if not raw_round:
        return course, None
    if not raw_round.isdigit():
        raise DomainError("round must be a number", code="not_found", status=404)
    round_ = session.get(CourseRound, int(raw_round))
    if round_ is None or (course is not None and round_.course_code != course):
        raise NotFoundError("no such round")
    return course, round_.id


def _export(fmt: str) -> Response:
    session, launch = get_session(), g.launch
    course, round_pk = _filters(session)
    locale = str(get_locale() or settings().default_locale)
    rows = progress_export.progress_rows(session, municipality_id=launch.municipality_id, course_code=course,
                                         round_pk=round_pk, locale=locale, keep_names=settings().roster_names,
                                         launch_names=settings().launch_names)
    # Who took which pupils' progress away, in the audit log (the count, never the pupils).
    session.add(AuditEntry(actor=f"{launch.municipality_id} {launch.role} {pupil_label(launch.sub)}",
                           action=progress_export.ACTION_EXPORT, target=launch.municipality_id,
                           details={k: v for k, v in {"course": course, "round": round_pk, "format": fmt,
                                                      "rows": len(rows)}.items() if v is not None}))
    session.commit()
    name = "-".join(part for part in ("progress", launch.municipality_id, course,
                                      str(round_pk) if round_pk else None) if part)
    disposition = {"Content-Disposition": f"attachment; filename={name}.{fmt}", "Cache-Control": "no-store"}
    if fmt == "csv":
        body = progress_export.progress_csv(rows, locale).encode("utf-8")
        return Response(body, headers={**disposition, "Content-Type": progress_export.CSV_MIMETYPE})
    return Response(progress_export.progress_xlsx(rows, locale),
                    headers={**disposition, "Content-Type": progress_export.XLSX_MIMETYPE})


@bp.route("/progress.csv")
@console_required
def progress_csv():
    """The municipality's pupils' progress (one course with ``?course=``), CSV in the reader's language."""
    return _export("csv")


@bp.route("/progress.xlsx")
@console_required
def progress_xlsx():
    """The same as XLSX."""
    return _export("xlsx")
