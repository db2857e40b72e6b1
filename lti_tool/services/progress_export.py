"""What reaches a pupil's home municipality where no gradebook does: a per-course progress export (CSV and XLSX)
of the municipality's own pupils, for its arts-school contact (the municipal console) and national staff (the
CLI).

One row per pupil and course round the municipality pays a seat for (active, or withdrawn from that round):
lessons done of the course's lessons, hand-ins and how many are reviewed, the score (the sum, over the round's
reviewed hand-ins, of each assignment's latest review score, and the maximum likewise), the day of the latest
feedback, the school (where a school sign-in redeemed the pupil's seat invitation) and the door the pupil came
through (the LTI platform's name, or the school identity provider's).

Pupils are named where their platform shares a name and the tool keeps it: the name on the pupil's seat in the
round, from their latest launch into it (``launch_names``, the ``LAUNCH_NAMES`` setting), else an LTI roster's
name or the name a school sign-in gave the seat invitation (``keep_names``, the ``ROSTER_NAMES`` setting); else
by the short pseudonym the teacher's pages show (:func:`.delivery.pupil_label`). Whose work a municipal contact
follows is decided in :func:`.access.municipality_submissions`. A fixed number of queries, whatever the number of
pupils. Never commits.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from flask_babel import force_locale
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..domain.calendar import local_date
from ..domain.texts import pick_text
from ..models import (INVITATION_REDEEMED, SEAT_ACTIVE, SEAT_WITHDRAWN, SUBMISSION_REVIEWED, SUBMISSION_SUBMITTED,
                      Course, CourseModule, CourseRound, IdentityProvider, Lesson, LessonProgress, Registration,
                      Review, Seat, SeatInvitation, Submission)
from .access import municipality_submissions
from .classroom_views import round_pupil_names
from .delivery import pupil_label

PupilKey = tuple[int, str]  # (registration id, sub)
RoundPupil = tuple[int, int, str]  # (round pk, registration id, sub)

# The columns, in order: the header of both formats, in the reader's language.
COLUMNS = (_l("Pupil"), _l("School"), _l("Course"), _l("Round"), _l("Lessons done"), _l("Lessons in the course"),
           _l("Hand-ins"), _l("Reviewed"), _l("Score"), _l("Maximum score"), _l("Latest feedback"),
           _l("Left the course on"), _l("Platform or school sign-in"))
# Spreadsheet column widths (characters), column by column.
WIDTHS = (24, 28, 30, 14, 12, 12, 12, 12, 10, 12, 14, 14, 28)
# Spreadsheets of these languages read ';' between fields and a decimal comma; English ones ',' and a point.
COMMA_DECIMAL_LOCALES = ("sv", "nb", "nn")
ACTION_EXPORT = "progress.export"  # the audit log's action for an export (who, which municipality, how many rows)
XLSX_MIMETYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CSV_MIMETYPE = "text/csv; charset=utf-8"
# A text cell a spreadsheet would read as a formula (a name or a school is outside input).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class ProgressRow:
    pupil: str  # the name where kept, else the pseudonym the teacher's pages show
    school: str | None
    course: str
    round: str
    lessons_done: int
    lessons_total: int
    hand_ins: int
    reviewed: int
    score: Decimal | None
    score_max: Decimal | None
    last_feedback: date | None
    door: str  # the LTI platform's name or the school identity provider's name
    withdrawn_on: date | None = None  # the day the pupil left the round (a withdrawn seat), in local time
    course_code: str = ""


@dataclass(frozen=True)
class _Seat:
    round_pk: int
    registration_id: int
    sub: str
    seat_id: int
    status: str
    released_at: object
    door: str


def _seats(session: Session, municipality_id: str, course_code: str | None, round_pk: int | None) -> list[_Seat]:
    query = (select(Seat.round_pk, Seat.registration_id, Seat.sub, Seat.id, Seat.status, Seat.released_at,
                    func.coalesce(IdentityProvider.name, Registration.name))
             .join(CourseRound, CourseRound.id == Seat.round_pk)
             .join(Registration, Registration.id == Seat.registration_id)
             .outerjoin(IdentityProvider, IdentityProvider.registration_id == Registration.id)
             .where(Seat.municipality_id == municipality_id, Seat.status.in_((SEAT_ACTIVE, SEAT_WITHDRAWN)))
             .order_by(Seat.taken_at, Seat.id))
    if course_code:
        query = query.where(CourseRound.course_code == course_code)
    if round_pk is not None:
        query = query.where(Seat.round_pk == round_pk)
    return [_Seat(*row) for row in session.execute(query)]


def _lessons(session: Session, codes: set[str], keys: set[PupilKey]) -> tuple[dict[str, int], dict[tuple, int]]:
    """The number of current lessons of each course, and the lessons each pupil has done of each course."""
    current = (CourseModule.course_code.in_(codes), CourseModule.current.is_(True), Lesson.current.is_(True))
    totals = dict(session.execute(select(CourseModule.course_code, func.count(Lesson.id))
                                  .join(Lesson, Lesson.module_id == CourseModule.id).where(*current)
                                  .group_by(CourseModule.course_code)).all())
    done: dict[tuple, int] = {}
    if keys:
        rows = session.execute(
            select(CourseModule.course_code, LessonProgress.registration_id, LessonProgress.sub, func.count())
            .join(Lesson, Lesson.id == LessonProgress.lesson_id).join(CourseModule, CourseModule.id == Lesson.module_id)
            .where(*current, LessonProgress.registration_id.in_({r for r, _s in keys}),
                   LessonProgress.sub.in_({s for _r, s in keys}))
            .group_by(CourseModule.course_code, LessonProgress.registration_id, LessonProgress.sub))
        done = {(code, r, s): n for code, r, s, n in rows if (r, s) in keys}
    return totals, done


def _hand_ins(session: Session, municipality_id: str, round_pks: set[int]) -> dict[RoundPupil, dict[str, int]]:
    counts: dict[RoundPupil, dict[str, int]] = {}
    for round_pk, registration_id, sub, status, n in session.execute(
            select(Submission.round_pk, Submission.registration_id, Submission.sub, Submission.status, func.count())
            .where(municipality_submissions(municipality_id), Submission.round_pk.in_(round_pks))
            .group_by(Submission.round_pk, Submission.registration_id, Submission.sub, Submission.status)):
        counts.setdefault((round_pk, registration_id, sub), {})[status] = n
    return counts


@dataclass
class _Scores:
    score: Decimal
    score_max: Decimal


def _reviews(session: Session, municipality_id: str,
             round_pks: set[int]) -> tuple[dict[RoundPupil, _Scores], dict[RoundPupil, object]]:
    """Per pupil and round: the sum of the latest review of each reviewed hand-in (score and maximum), and the
    time of the latest feedback."""
    latest: dict[int, tuple[RoundPupil, Decimal, Decimal, bool]] = {}
    last_feedback: dict[RoundPupil, object] = {}
    rows = session.execute(
        select(Review.submission_id, Submission.round_pk, Submission.registration_id, Submission.sub,
               Submission.status, Review.score, Review.score_max, Review.created_at)
        .join(Submission, Submission.id == Review.submission_id)
        .where(municipality_submissions(municipality_id), Submission.round_pk.in_(round_pks))
        .order_by(Review.created_at, Review.id))
    for submission_id, round_pk, registration_id, sub, status, score, score_max, created_at in rows:
        key = (round_pk, registration_id, sub)
        latest[submission_id] = (key, score, score_max, status == SUBMISSION_REVIEWED)  # later rows win
        last_feedback[key] = created_at
    sums: dict[RoundPupil, _Scores] = {}
    for key, score, score_max, reviewed in latest.values():
        if reviewed:
            total = sums.setdefault(key, _Scores(Decimal(0), Decimal(0)))
            total.score += Decimal(score)
            total.score_max += Decimal(score_max)
    return sums, last_feedback


def _invitations(session: Session, municipality_id: str, round_pks: set[int]) -> tuple[dict, dict]:
    """The redeemed seat invitations of the rounds, by seat and by pupil: the school and the name they hold."""
    by_seat, by_pupil = {}, {}
    for invitation in session.scalars(select(SeatInvitation).where(
            SeatInvitation.municipality_id == municipality_id, SeatInvitation.status == INVITATION_REDEEMED,
            SeatInvitation.round_pk.in_(round_pks)).order_by(SeatInvitation.redeemed_at, SeatInvitation.id)):
        if invitation.seat_id is not None:
            by_seat[invitation.seat_id] = invitation
        if invitation.registration_id is not None and invitation.sub:
            by_pupil[(invitation.round_pk, invitation.registration_id, invitation.sub)] = invitation
    return by_seat, by_pupil


def progress_rows(session: Session, *, municipality_id: str, course_code: str | None = None,
                  round_pk: int | None = None, locale: str, keep_names: bool = False,
                  launch_names: bool = False) -> list[ProgressRow]:
    """The municipality's pupils with an active seat (or one they withdrew from) in its ordered rounds, one row
    per pupil and round, for one course (``course_code``) or round (``round_pk``) or all; sorted by course,
    round and pupil. ``locale``: the language of course titles; ``keep_names``: the ``ROSTER_NAMES`` setting;
    ``launch_names``: the ``LAUNCH_NAMES`` setting."""
    seats = _seats(session, municipality_id, course_code, round_pk)
    if not seats:
        return []
    round_pks = {seat.round_pk for seat in seats}
    rounds = {r.id: r for r in session.scalars(select(CourseRound).where(CourseRound.id.in_(round_pks)))}
    courses = {c.code: c for c in session.scalars(select(Course).where(
        Course.code.in_({r.course_code for r in rounds.values()})))}
    keys = {(seat.registration_id, seat.sub) for seat in seats}
    totals, done = _lessons(session, set(courses), keys)
    counts = _hand_ins(session, municipality_id, round_pks)
    scores, feedback = _reviews(session, municipality_id, round_pks)
    by_seat, by_pupil = _invitations(session, municipality_id, round_pks)
    names = round_pupil_names(session, {(seat.round_pk, seat.registration_id, seat.sub) for seat in seats},
                              keep_names=keep_names, launch_names=launch_names)
    rows = []
    for seat in seats:
        round_ = rounds[seat.round_pk]
        key = (seat.round_pk, seat.registration_id, seat.sub)
        invitation = by_seat.get(seat.seat_id) or by_pupil.get(key)
        name = names.get(key)
        if keep_names and not name and invitation is not None and (invitation.pupil_name or "").strip():
            name = invitation.pupil_name.strip()
        statuses = counts.get(key, {})
        reviewed = statuses.get(SUBMISSION_REVIEWED, 0)
        total = scores.get(key)
        last = feedback.get(key)
        pupil = name or pupil_label(seat.sub)
        rank = (round_.course_code, round_.starts_on, round_.id, pupil.casefold(), seat.seat_id)
        rows.append((rank, ProgressRow(
            pupil=pupil,
            school=(invitation.school_name or None) if invitation is not None else None,
            course=str(pick_text(courses[round_.course_code].title, locale)) or round_.course_code,
            round=round_.round_id, lessons_done=done.get((round_.course_code, seat.registration_id, seat.sub), 0),
            lessons_total=totals.get(round_.course_code, 0),
            hand_ins=statuses.get(SUBMISSION_SUBMITTED, 0) + reviewed, reviewed=reviewed,
            score=total.score if total else None, score_max=total.score_max if total else None,
            last_feedback=local_date(municipality_id, last) if last is not None else None,
            door=seat.door,
            withdrawn_on=(local_date(municipality_id, seat.released_at)
                          if seat.status == SEAT_WITHDRAWN and seat.released_at is not None else None),
            course_code=round_.course_code)))
    return [row for _key, row in sorted(rows, key=lambda pair: pair[0])]


# -- the two formats -------------------------------------------------------------------------------------------

def _language(locale: str) -> str:
    return (locale or "sv").replace("-", "_").split("_")[0].lower()


def header(locale: str) -> list[str]:
    """The column names in ``locale`` (sv, nb, nn or en)."""
    with force_locale(_language(locale)):
        return [str(column) for column in COLUMNS]


def _safe_text(value: str | None) -> str:
    """A text a spreadsheet shows as text, never runs as a formula."""
    text = value or ""
    return "'" + text if text.startswith(_FORMULA_START) else text


def _number(value: Decimal | None, comma: bool) -> str:
    if value is None:
        return ""
    text = format(value.normalize(), "f")
    return text.replace(".", ",") if comma else text


def _values(row: ProgressRow) -> list:
    return [row.pupil, row.school, row.course, row.round, row.lessons_done, row.lessons_total, row.hand_ins,
            row.reviewed, row.score, row.score_max, row.last_feedback, row.withdrawn_on, row.door]


def progress_csv(rows: list[ProgressRow], locale: str) -> str:
    """CSV a spreadsheet opens right in the reader's language: the column names in ``locale``; for sv, nb and nn
    ';' between fields and a decimal comma, for en ',' and a point; ISO dates; UTF-8 with a byte order mark (the
    caller encodes it as UTF-8) and CRLF line ends."""
    comma = _language(locale) in COMMA_DECIMAL_LOCALES
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";" if comma else ",", lineterminator="\r\n")
    writer.writerow(header(locale))
    for row in rows:
        cells = []
        for value in _values(row):
            if value is None:
                cells.append("")
            elif isinstance(value, Decimal):
                cells.append(_number(value, comma))
            elif isinstance(value, date):
                cells.append(value.isoformat())
            elif isinstance(value, int):
                cells.append(str(value))
            else:
                cells.append(_safe_text(str(value)))
        writer.writerow(cells)
    return "\ufeff" + buffer.getvalue()


def progress_xlsx(rows: list[ProgressRow], locale: str) -> bytes:
    """An XLSX workbook of one sheet: a bold, frozen header row in ``locale``, set column widths, numbers as
    numbers, dates as dates, texts never read as formulas."""
    from openpyxl import Workbook
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    workbook = Workbook()
    sheet = workbook.active
    with force_locale(_language(locale)):
        sheet.title = str(_l("Progress"))[:31]
    sheet.append(header(locale))
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for row in rows:
        sheet.append(_values(row))  # Decimal and date cells are written as numbers and dates
        for cell in sheet[sheet.max_row]:
            if isinstance(cell.value, str):
                cell.data_type = "s"  # a name beginning with "=" stays a name
            elif isinstance(cell.value, date):
                cell.number_format = "yyyy-mm-dd"
    for index, width in enumerate(WIDTHS, start=1):
        sheet.column_dimensions[get_column_letter(index)].width = width
    sheet.freeze_panes = "A2"
    sheet.auto_filter.ref = f"A1:{get_column_letter(len(COLUMNS))}{max(1, sheet.max_row)}"
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()
