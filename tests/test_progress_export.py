"""Feedback reaches home: the municipal contact's per-course progress export (CSV and XLSX) of the municipality's
own pupils: LTI pupils and a pupil of the second door (a seat invitation redeemed after a school sign-in), their
lessons, hand-ins, reviews and score; the formats per language; who may download it; the CLI."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

import lti_tool.web.municipal_exports  # noqa: F401  (its routes, until create_app imports it)
from lti_tool import clock
from lti_tool.db import new_session
from lti_tool.domain.calendar import local_date
from lti_tool.models import (CHECK_MISMATCH, INVITATION_REDEEMED, AuditEntry, CourseRound, LtiContext, Order,
                             Registration, RosterMember, SeatInvitation)
from lti_tool.sandbox import CLIENT_ID
from lti_tool.services import identity, progress_export, seats
from lti_tool.services.delivery import pupil_label
from lti_tool.services.progress_export import ProgressRow, progress_csv, progress_rows, progress_xlsx

from . import test_access
from .conftest import error_code, name_round_teacher
from .test_round_classroom_pages import person, submission_of, text_hand_in

content = test_access.content  # a fixture of another module, used here by name

SCHOOL_PUPIL = "stina@skola.example"


def add_school_pupil(app, *, name="Stina Svensson", school="Sjöboskolan") -> str:
    """A pupil of the second door: a seat invitation of Borås redeemed after a Skolfederation sign-in at a school
    of another owner (a "check" mark). Returns the identity provider's name."""
    with new_session(app) as session:
        provider = identity.add_provider(session, profile="skolfederation", name="Skolfederation (test)",
                                         country="SE", issuer="https://fed.example/idp", client_id="sp.example")
        taken = seats.reserve_seat(session, registration_id=provider.registration_id, sub=SCHOOL_PUPIL,
                                   municipality_id="SE-1490", course_code="GIT-AK-1", round_id="now")
        order = session.scalar(select(Order).where(Order.municipality_id == "SE-1490",
                                                   Order.round_pk == taken.seat.round_pk))
        now = clock.now()
        session.add(SeatInvitation(code_hash="a" * 64, code_hint="K7QX", order_id=order.id,
                                   round_pk=taken.seat.round_pk, municipality_id="SE-1490",
                                   status=INVITATION_REDEEMED, expires_at=now + timedelta(days=30),
                                   created_by="test", redeemed_at=now, registration_id=provider.registration_id,
                                   sub=SCHOOL_PUPIL, seat_id=taken.seat.id, school_name=school,
                                   cross_check=CHECK_MISMATCH, pupil_name=name))
        session.commit()
        return provider.name


@pytest.fixture
def boras(app, client, launches, content):
    """Three Borås pupils of the "now" round and one from Oslo, from the sandbox platform. Alva (roster name)
    did a lesson and handed in a text that the round teacher reviewed twice (6, then 8 of 10); Bo handed in,
    not reviewed; Cleo withdrew; the Oslo pupil's work was reviewed (9 of 10). And a second-door pupil."""
    pupils = {sub: person(client, launches, sub, municipality=municipality)
              for sub, municipality in (("p-alva", "SE-1490"), ("p-bo", "SE-1490"), ("p-cleo", "SE-1490"),
                                        ("p-oslo", "NO-0301"))}
    assert pupils["p-alva"].post(f"/lesson/{content['lesson1']}", {}).status_code == 303
    for sub in ("p-alva", "p-bo", "p-oslo"):
        text_hand_in(pupils[sub], content, f"Answer of {sub}")
    name_round_teacher(app, "rita")
    rita = person(client, launches, "rita", role="instructor")
    for sub, score in (("p-alva", "6"), ("p-alva", "8"), ("p-oslo", "9")):
        assert rita.post(f"/teach/submission/{submission_of(app, sub)}",
                         {"feedback": "Bra", "score": score}).status_code == 303
    with new_session(app) as session:
        registration = session.scalar(select(Registration).where(Registration.client_id == CLIENT_ID))
        platform_name = registration.name
        round_pk = session.scalar(select(CourseRound.id).where(CourseRound.round_id == "now"))
        seats.withdraw(session, round_pk=round_pk, registration_id=registration.id, sub="p-cleo")
        context = session.scalar(select(LtiContext).where(LtiContext.registration_id == registration.id,
                                                          LtiContext.context_id == "sandbox-course-1"))
        session.add(RosterMember(context_pk=context.id, user_id="p-alva", roles=["Learner"], name="Alva Andersson"))
        session.commit()
    door = add_school_pupil(app)
    return {"pupils": pupils, "registration": platform_name, "door": door}


def rows_of(app, municipality="SE-1490", *, keep_names=False, **filters) -> list[ProgressRow]:
    with app.app_context(), new_session(app) as session:
        return progress_rows(session, municipality_id=municipality, locale="sv", keep_names=keep_names, **filters)


def test_rows_of_the_municipalitys_own_pupils(app, boras):
    today = local_date("SE-1490", clock.now())
    rows = {row.pupil: row for row in rows_of(app)}
    alva, bo, cleo = pupil_label("p-alva"), pupil_label("p-bo"), pupil_label("p-cleo")
    assert set(rows) == {alva, bo, cleo, pupil_label(SCHOOL_PUPIL)}  # names not kept; no Oslo pupil
    assert rows[alva] == ProgressRow(pupil=alva, school=None, course="Kurs GIT-AK-1", round="now", lessons_done=1,
                                     lessons_total=2, hand_ins=1, reviewed=1, score=Decimal("8"),
                                     score_max=Decimal("10"), last_feedback=today, door=boras["registration"],
                                     withdrawn_on=None, course_code="GIT-AK-1")
    assert (rows[bo].hand_ins, rows[bo].reviewed, rows[bo].score, rows[bo].score_max, rows[bo].last_feedback) == \
        (1, 0, None, None, None)
    assert rows[cleo].withdrawn_on == today and rows[cleo].hand_ins == 0
    school = rows[pupil_label(SCHOOL_PUPIL)]
    assert (school.school, school.door, school.lessons_done, school.hand_ins) == \
        ("Sjöboskolan", boras["door"], 0, 0)
    oslo = rows_of(app, "NO-0301")
    assert [(r.pupil, r.score, r.score_max) for r in oslo] == [(pupil_label("p-oslo"), Decimal("9"), Decimal("10"))]


def test_names_where_kept_and_filters(app, boras):
    names = [row.pupil for row in rows_of(app, keep_names=True)]
    assert "Alva Andersson" in names and "Stina Svensson" in names and pupil_label("p-bo") in names
    assert names == sorted(names, key=str.casefold)  # one round: by pupil
    assert len(rows_of(app, course_code="GIT-AK-1")) == 4
    assert rows_of(app, course_code="NOPE") == []
    with new_session(app) as session:
        later = session.scalar(select(CourseRound.id).where(CourseRound.round_id == "later"))
    assert rows_of(app, round_pk=later) == []


def test_a_fixed_number_of_queries_whatever_the_number_of_pupils(app, boras):
    from sqlalchemy import event

    from lti_tool.db import get_engine

    statements = []

    def count(*_args):
        statements.append(1)

    engine = get_engine(app)
    event.listen(engine, "before_cursor_execute", count)
    try:
        rows_of(app, keep_names=True)
        few = len(statements)
        with new_session(app) as session:
            registration = session.scalar(select(Registration.id).where(Registration.client_id == CLIENT_ID))
            for n in range(5):
                seats.reserve_seat(session, registration_id=registration, sub=f"more-{n}", municipality_id="SE-1490",
                                   course_code="GIT-AK-1", round_id="now")
            session.commit()
        statements.clear()
        rows = rows_of(app, keep_names=True)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert len(rows) == 9 and len(statements) == few


ROW = ProgressRow(pupil="=HYPERLINK(\"x\")", school="Sjöboskolan", course="Gitarr, steg 1", round="vt27",
                  lessons_done=3, lessons_total=12, hand_ins=2, reviewed=1, score=Decimal("17.50"),
                  score_max=Decimal("20.00"), last_feedback=date(2027, 3, 4), door="Skolfederation",
                  withdrawn_on=None)


# Column names with translations already in the catalogs (pupil, course, round, lessons done, hand-ins, score).
@pytest.mark.parametrize("locale, delimiter, header, score", [
    ("sv", ";", ["Elev", "Kurs", "Kursomgång", "Klara lektioner", "Inlämningar", "Poäng"], "17,5"),
    ("nb", ";", ["Elev", "Kurs", "Kursrunde", "Ferdige leksjoner", "Innleveringer", "Poeng"], "17,5"),
    ("nn", ";", ["Elev", "Kurs", "Kursrunde", "Ferdige leksjonar", "Innleveringar", "Poeng"], "17,5"),
    ("en", ",", ["Pupil", "Course", "Round", "Lessons done", "Hand-ins", "Score"], "17.5"),
])
def test_csv_per_language(app, locale, delimiter, header, score):
    with app.app_context():
        text = progress_csv([ROW], locale)
        columns = progress_export.header(locale)
    assert text.startswith("\ufeff") and "\r\n" in text
    lines = list(csv.reader(io.StringIO(text[1:]), delimiter=delimiter))
    assert lines[0] == columns and len(lines[0]) == len(progress_export.COLUMNS)
    assert [lines[0][i] for i in (0, 2, 3, 4, 6, 8)] == header
    row = dict(zip(lines[0], lines[1], strict=True))
    assert lines[1][0] == "'=HYPERLINK(\"x\")"  # never a formula in a spreadsheet
    assert lines[1][1:8] == ["Sjöboskolan", "Gitarr, steg 1", "vt27", "3", "12", "2", "1"]
    assert lines[1][8:11] == [score, "20", "2027-03-04"] and lines[1][11:] == ["", "Skolfederation"]
    assert row[columns[8]] == score
    encoded = text.encode("utf-8")
    assert encoded.startswith(b"\xef\xbb\xbf") and encoded.count(b"\xef\xbb\xbf") == 1


def test_xlsx_reads_back_with_types(app):
    other = ProgressRow(pupil="Bo", school=None, course="Gitarr", round="vt27", lessons_done=0, lessons_total=12,
                        hand_ins=0, reviewed=0, score=None, score_max=None, last_feedback=None, door="Canvas",
                        withdrawn_on=date(2027, 2, 1))
    with app.app_context():
        data = progress_xlsx([ROW, other], "sv")
        columns = progress_export.header("sv")
    sheet = load_workbook(io.BytesIO(data)).active
    assert sheet.title == "Förlopp" and sheet.freeze_panes == "A2"
    assert [c.value for c in sheet[1]] == columns and all(c.font.bold for c in sheet[1])
    first = [c.value for c in sheet[2]]
    assert first[0] == "=HYPERLINK(\"x\")" and sheet["A2"].data_type == "s"  # text, not a formula
    assert first[4:8] == [3, 12, 2, 1] and all(isinstance(v, int) for v in first[4:8])
    assert first[8] == 17.5 and first[9] == 20 and sheet["I2"].data_type == "n"
    assert first[10] == datetime(2027, 3, 4) and sheet["K2"].is_date and sheet["K2"].number_format == "yyyy-mm-dd"
    second = [c.value for c in sheet[3]]
    assert second[1] is None and second[8] is None and second[10] is None and second[11] == datetime(2027, 2, 1)
    assert sheet.column_dimensions["A"].width > 10 and sheet.column_dimensions["M"].width > 10


# -- the console's export -------------------------------------------------------------------------------------------

def contact(client, launches, municipality="SE-1490", user="admin-1"):
    return person(client, launches, user, role="administrator", municipality=municipality)


def test_the_console_exports_its_pupils_progress(app, client, launches, boras):
    admin = contact(client, launches)
    console = admin.get("/municipal/").get_data(as_text=True)
    assert "/municipal/progress.csv?lt=" in console and "/municipal/progress.xlsx?lt=" in console
    assert "course=GIT-AK-1" in console  # per ordered course round too
    response = admin.get("/municipal/progress.csv?course=GIT-AK-1")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert response.headers["Content-Type"].count("charset") == 1
    assert response.headers["Content-Disposition"] == "attachment; filename=progress-SE-1490-GIT-AK-1.csv"
    body = response.get_data()
    assert body.startswith(b"\xef\xbb\xbf")
    text = body.decode("utf-8-sig")
    lines = list(csv.reader(io.StringIO(text), delimiter=","))  # the launch's language is en-GB
    assert lines[0][:2] == ["Pupil", "School"] and len(lines) == 5
    assert pupil_label("p-alva") in text and pupil_label("p-oslo") not in text and "p-alva" not in text
    workbook = admin.get("/municipal/progress.xlsx")
    assert workbook.status_code == 200 and workbook.headers["Content-Type"] == progress_export.XLSX_MIMETYPE
    assert workbook.headers["Content-Disposition"] == "attachment; filename=progress-SE-1490.xlsx"
    sheet = load_workbook(io.BytesIO(workbook.get_data())).active
    assert sheet.max_row == 5
    with new_session(app) as session:
        audit = list(session.scalars(select(AuditEntry).where(AuditEntry.action == progress_export.ACTION_EXPORT)
                                     .order_by(AuditEntry.id)))
    assert [(a.target, a.details) for a in audit] == [
        ("SE-1490", {"course": "GIT-AK-1", "format": "csv", "rows": 4}), ("SE-1490", {"format": "xlsx", "rows": 4})]
    assert all("p-alva" not in str(a.details) for a in audit)


def test_swedish_launch_gets_semicolons(app, client, launches, boras):
    response = launches.launch(launches.spec("SE-1490", user="admin-sv", role="administrator", locale="sv-SE"))
    token = response.headers["Location"].split("lt=")[1].split("&")[0]
    text = client.get(f"/municipal/progress.csv?lt={token}").get_data().decode("utf-8-sig")
    lines = list(csv.reader(io.StringIO(text), delimiter=";"))
    assert [lines[0][i] for i in (0, 2, 3)] == ["Elev", "Kurs", "Kursomgång"] and ";8;10;" in text


def test_only_the_console_downloads_and_only_its_own_municipality(app, client, launches, boras):
    oslo = contact(client, launches, "NO-0301", user="admin-2")
    text = oslo.get("/municipal/progress.csv").get_data().decode("utf-8-sig")
    assert pupil_label("p-oslo") in text and pupil_label("p-alva") not in text
    boras_admin = contact(client, launches)
    for path in ("/municipal/progress.csv?municipality=NO-0301", "/municipal/progress.xlsx?municipality=NO-0301"):
        assert boras_admin.get(path).status_code == 403, path
    for browser in (boras["pupils"]["p-alva"], person(client, launches, "rita", role="instructor")):
        for path in ("/municipal/progress.csv", "/municipal/progress.xlsx"):
            refused = browser.get(path)
            assert (refused.status_code, error_code(refused)) == (403, "municipal_console_forbidden"), path
    assert client.get("/municipal/progress.csv").status_code == 401  # no launch at all
    assert boras_admin.get("/municipal/progress.csv?course=NOPE").status_code == 404
    assert boras_admin.get("/municipal/progress.csv?course=GIT-AK-1&round=x").status_code == 404
    with new_session(app) as session:
        assert session.scalar(select(AuditEntry.id).where(AuditEntry.target == "NO-0301",
                                                          AuditEntry.action == progress_export.ACTION_EXPORT))


def test_the_cli_writes_both_formats(app, runner, boras, tmp_path):
    out = tmp_path / "borås.csv"
    result = runner.invoke(args=["report", "progress", "--municipality", "se-1490", "--course", "GIT-AK-1",
                                 "--format", "csv", "--output", str(out), "--by", "tester"])
    assert result.exit_code == 0, result.output
    text = out.read_bytes().decode("utf-8-sig")
    assert text.startswith("Elev;") and pupil_label("p-bo") in text  # Borås: Swedish
    xlsx = tmp_path / "oslo.xlsx"
    result = runner.invoke(args=["report", "progress", "--municipality", "NO-0301", "--format", "xlsx",
                                 "--output", str(xlsx)])
    assert result.exit_code == 0, result.output
    sheet = load_workbook(xlsx).active
    assert sheet["A1"].value == "Elev" and sheet["D1"].value == "Kursrunde" and sheet.max_row == 2
    assert runner.invoke(args=["report", "progress", "--municipality", "SE-9999", "--format", "csv",
                               "--output", str(out)]).exit_code == 1
    with new_session(app) as session:
        actors = [a.actor for a in session.scalars(select(AuditEntry).where(
            AuditEntry.action == progress_export.ACTION_EXPORT))]
    assert actors[0] == "cli tester" and len(actors) == 2


def test_no_seat_no_row(app, content):
    with app.app_context(), new_session(app) as session:
        assert progress_rows(session, municipality_id="SE-1490", locale="sv") == []
        assert progress_csv([], "sv").count("\r\n") == 1
        assert load_workbook(io.BytesIO(progress_xlsx([], "en"))).active.max_row == 1
