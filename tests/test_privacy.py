"""Pupils' data: export, erasure (seat counts and invoices unchanged), retention purge, the privacy notice
(public and after an LTI Data Privacy Launch), and the audit of teachers opening a pupil's work."""

from __future__ import annotations

import io
import json
import os
import stat
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import func, select, text, update

from lti_tool.config import ConfigurationError, load_settings
from lti_tool.db import get_engine, new_session
from lti_tool.domain.claims import (CLAIM_AGS, CLAIM_MESSAGE_TYPE, CLAIM_RESOURCE_LINK, MESSAGE_DATA_PRIVACY,
                                    SCOPE_LINEITEM, SCOPE_SCORE, parse_launch_claims)
from lti_tool.lti.registration import ToolDynamicRegistration, ToolUrls
from lti_tool.models import (AuditEntry, CourseRound, Launch, LessonProgress, LtiContext, MunicipalContact, Order,
                             OutboxItem, Registration, Review, RosterMember, Seat, Submission, WaitlistEntry)
from lti_tool.services import privacy, seats
from lti_tool.services.delivery import pupil_label

from . import sample_files
from .catalog_factory import add_content, add_course
from .conftest import main_attrs, name_round_teacher
from .test_delivery import Person as DeliveryPerson
from .test_staff import sign_in

PNG = sample_files.PNG
LINEITEMS = "https://lms.example/api/lti/courses/7/line_items"
SUB_TABLES = [(Launch, Launch.sub), (Seat, Seat.sub), (WaitlistEntry, WaitlistEntry.sub),
              (LessonProgress, LessonProgress.sub), (Submission, Submission.sub), (Review, Review.sub),
              (OutboxItem, OutboxItem.sub), (RosterMember, RosterMember.user_id),
              (MunicipalContact, MunicipalContact.sub)]


@pytest.fixture
def content(app, demo):
    with new_session(app) as session:
        add_course(session)
        made = add_content(session)
        seats.set_order(session, "SE-1490", "GIT-AK-1", "now", 10)
        seats.set_order(session, "SE-1490", "GIT-AK-1", "later", 0)  # full: pupils wait
        seats.set_order(session, "NO-0301", "GIT-AK-1", "now", 10)
        session.commit()
    return made


class Person(DeliveryPerson):
    """A browser after a launch with grade passback offered: follows links with the launch token."""

    def __init__(self, client, launches, user, **kwargs):
        super().__init__(client, launches, user, overrides={
            CLAIM_AGS: {"scope": [SCOPE_LINEITEM, SCOPE_SCORE], "lineitems": LINEITEMS}}, **kwargs)


def submission_ids(app, sub):
    with new_session(app) as session:
        return list(session.scalars(select(Submission.id).where(Submission.sub == sub).order_by(Submission.id)))


@pytest.fixture
def course_work(app, client, launches, content, demo):
    """Two pupils with work: p1 (a lesson done, a file and a reviewed text, on a waiting list, in the roster)
    and p2 (a text). The teacher t1 has reviewed p1's text, so a grade waits in the outbox."""
    p1 = Person(client, launches, "p1")
    p2 = Person(client, launches, "p2")
    teacher = Person(client, launches, "t1", role="instructor")
    name_round_teacher(app, "t1")
    assert p1.post(f"/lesson/{content['lesson1']}", {}).status_code == 303
    assert p1.post(f"/assignment/{content['assignment1']}", {"file": (io.BytesIO(PNG), "övning.png")},
                   content_type="multipart/form-data").status_code == 303
    assert p1.post(f"/assignment/{content['assignment2']}", {"text": "Mitt svar"}).status_code == 303
    assert p2.post(f"/assignment/{content['assignment2']}", {"text": "Svar från p2"}).status_code == 303
    text_id = [i for i in submission_ids(app, "p1")][1]
    assert teacher.post(f"/teach/submission/{text_id}", {"feedback": "Fint jobbat!", "score": "8"}).status_code == 303
    with new_session(app) as session:
        later = session.scalar(select(Order).join(CourseRound).where(CourseRound.round_id == "later",
                                                                     Order.municipality_id == "SE-1490"))
        seats.join_waitlist(session, order_id=later.id, registration_id=demo, sub="p1")
        context = session.scalar(select(LtiContext).where(LtiContext.registration_id == demo))
        session.add_all([RosterMember(context_pk=context.id, user_id="p1", roles=["Learner"], status="Active"),
                         RosterMember(context_pk=context.id, user_id="p2", roles=["Learner"], status="Active")])
        session.commit()
    return {"p1": p1, "p2": p2, "teacher": teacher, "registration": demo}


def counters(app):
    with new_session(app) as session:
        return (sorted(session.execute(select(Order.id, Order.seats_taken, Order.seats_budget)).all()),
                sorted(session.execute(select(CourseRound.id, CourseRound.seats_taken)).all()),
                sorted(session.execute(select(Seat.round_pk, Seat.order_id, Seat.municipality_id, Seat.status)).all()))


def cost_lines(app):
    with new_session(app) as session:
        return seats.cost_report(session)


def stored_about(app, sub) -> dict[str, int]:
    with new_session(app) as session:
        return {model.__tablename__: session.scalar(select(func.count()).select_from(model).where(column == sub))
                for model, column in SUB_TABLES}


# -- export ---------------------------------------------------------------------------------------------

def test_export_holds_everything_about_the_pupil_and_copies_files(app, runner, course_work, tmp_path):
    output, files = tmp_path / "export.json", tmp_path / "files"
    assert course_work["teacher"].get(f"/teach/submission/{submission_ids(app, 'p1')[1]}").status_code == 200
    result = runner.invoke(args=["privacy", "export", "--pupil", "p1",
                                 "--registration", str(course_work["registration"]),
                                 "--output", str(output), "--files-dir", str(files), "--by", "Nora"])
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(os.stat(output).st_mode) == 0o600
    doc = json.loads(output.read_text(encoding="utf-8"))
    assert doc["pupil"]["sub"] == "p1" and doc["pupil"]["registration"]["id"] == course_work["registration"]
    assert doc["retention_days"] == 365
    assert len(doc["launches"]) == 1 and doc["launches"][0]["course"] == "GIT-AK-1"
    assert doc["launches"][0]["municipality"] == "SE-1490"
    assert [(s["course"], s["round"], s["status"]) for s in doc["seats"]] == [("GIT-AK-1", "now", "active")]
    assert [(w["round"], w["status"]) for w in doc["waiting_list"]] == [("later", "waiting")]
    assert len(doc["lessons_done"]) == 1 and doc["lessons_done"][0]["title"]["sv"] == "Lektion 1.1"
    file_item, text_item = doc["hand_ins"]
    assert file_item["file"]["name"] == "övning.png" and file_item["file"]["content_type"] == "image/png"
    assert file_item["file"]["size"] == len(PNG)
    assert file_item["file"]["copied_as"] == f"{file_item['id']}.png"  # the sniffed type's, not the uploaded name
    assert (files / file_item["file"]["copied_as"]).read_bytes() == PNG
    assert text_item["text"] == "Mitt svar" and text_item["status"] == "reviewed"
    assert text_item["reviews"] == [{"feedback": "Fint jobbat!", "score": "8.00", "score_max": "10.00",
                                     "at": text_item["reviews"][0]["at"]}]
    assert "reviewer" not in json.dumps(text_item)  # the teacher's id is not the pupil's data
    # the two hand-ins' "needs grading" rows (the reviewed one's superseded by its score) and the score
    assert [(o["status"], o["payload"]["gradingProgress"], o["payload"].get("comment"))
            for o in doc["grades_sent_to_platform"]] == [("pending", "PendingManual", None),
                                                         ("superseded", "PendingManual", None),
                                                         ("pending", "FullyGraded", "Fint jobbat!")]
    assert [(r["status"], r["roles"]) for r in doc["course_rosters"]] == [("Active", ["Learner"])]
    # the teacher's opening of the hand-in is in the pupil's access log
    assert [a["what"] for a in doc["access_log"]] == [privacy.ACCESS_HAND_IN]
    assert "p2" not in output.read_text(encoding="utf-8") and "Svar från p2" not in output.read_text(encoding="utf-8")
    with new_session(app) as session:
        entry = session.scalars(select(AuditEntry).where(AuditEntry.action == privacy.ACCESS_EXPORT)).one()
        assert entry.actor == "cli Nora" and "p1" not in entry.target
        assert entry.target == f"pupil {doc['pupil']['audit_pseudonym']}"


def test_export_prints_json_and_needs_a_registration_when_the_sub_is_ambiguous(app, runner, course_work):
    printed = runner.invoke(args=["privacy", "export", "--pupil", "p2"])
    assert printed.exit_code == 0, printed.output
    assert json.loads(printed.stdout)["hand_ins"][0]["text"] == "Svar från p2"
    with new_session(app) as session:
        other = Registration(name="Moodle Borås", issuer="https://moodle.example", client_id="m-1",
                             auth_login_url="https://moodle.example/auth", auth_token_url="https://moodle.example/token",
                             jwks_url="https://moodle.example/jwks")
        session.add(other)
        session.flush()
        session.add(MunicipalContact(municipality_id="SE-1490", registration_id=other.id, sub="p2"))
        session.commit()
        other_id = other.id
    refused = runner.invoke(args=["privacy", "export", "--pupil", "p2"])
    assert refused.exit_code != 0
    assert f"--registration {course_work['registration']}" in refused.output
    assert f"--registration {other_id}" in refused.output
    chosen = runner.invoke(args=["privacy", "export", "--pupil", "p2", "--issuer", "https://moodle.example",
                                 "--client-id", "m-1"])
    doc = json.loads(chosen.stdout)
    assert doc["municipal_contact_for"] == ["SE-1490"] and doc["hand_ins"] == [] and doc["launches"] == []
    unknown = runner.invoke(args=["privacy", "export", "--pupil", "nobody"])
    assert unknown.exit_code != 0 and "nothing is stored" in unknown.output


# -- erasure --------------------------------------------------------------------------------------------

def test_erasure_removes_personal_data_and_files_but_not_seat_counts_or_costs(app, runner, course_work):
    upload_dir = Path(app.config["UPLOAD_DIR"])
    with new_session(app) as session:
        key = session.scalar(select(Submission.file_key).where(Submission.sub == "p1",
                                                               Submission.file_key.is_not(None)))
    assert (upload_dir / key).exists()
    before_costs, before_counters = cost_lines(app), counters(app)
    assert stored_about(app, "p1") == {"launches": 1, "seats": 1, "waitlist_entries": 1, "lesson_progress": 1,
                                       "submissions": 2, "reviews": 1, "outbox": 3, "roster_members": 1,
                                       "municipal_contacts": 0}
    p2_before = stored_about(app, "p2")

    declined = runner.invoke(args=["privacy", "erase", "--pupil", "p1"], input="n\n")
    assert declined.exit_code != 0 and "hand-ins: 2" in declined.output
    assert stored_about(app, "p1")["submissions"] == 2 and (upload_dir / key).exists()

    result = runner.invoke(args=["privacy", "erase", "--pupil", "p1", "--registration",
                                 str(course_work["registration"]), "--yes", "--by", "Nora"])
    assert result.exit_code == 0, result.output
    assert "1 file(s) removed" in result.output
    assert set(stored_about(app, "p1").values()) == {0}
    assert not (upload_dir / key).exists()
    assert stored_about(app, "p2") == p2_before
    assert cost_lines(app) == before_costs
    assert counters(app) == before_counters
    with new_session(app) as session:
        marker = session.scalar(select(Seat.sub).where(Seat.sub.startswith(privacy.ANONYMOUS_PREFIX)))
        assert marker and privacy.is_anonymous(marker) and len(marker) > 20
        entry = session.scalars(select(AuditEntry).where(AuditEntry.action == privacy.ACTION_ERASE)).one()
        assert entry.actor == "cli Nora"
        assert entry.details["submissions"] == 2 and entry.details["seats_anonymised"] == 1
        assert "p1" not in json.dumps([entry.actor, entry.target, entry.details])
        assert entry.target == privacy.access_target(privacy.pupil_pseudonym(app.config["SECRET_KEY"],
                                                                             course_work["registration"], "p1"))
    assert "nothing is stored" in runner.invoke(args=["privacy", "export", "--pupil", "p1"]).output


def test_erased_pupil_launching_again_is_a_new_pupil(app, client, launches, runner, course_work):
    assert runner.invoke(args=["privacy", "erase", "--pupil", "p1", "--yes"]).exit_code == 0
    taken = counters(app)[1]
    Person(client, launches, "p1")  # the unique constraint holds: the anonymous seat is not p1's
    with new_session(app) as session:
        assert session.scalar(select(func.count()).select_from(Seat).where(Seat.sub == "p1")) == 1
    assert sum(n for _round, n in counters(app)[1]) == sum(n for _round, n in taken) + 1


# -- retention ------------------------------------------------------------------------------------------

def age_p1(app, days):
    """Move p1's records ``days`` into the past, and end the round that long ago."""
    then = datetime.now(timezone.utc) - timedelta(days=days)
    with new_session(app) as session:
        session.execute(update(Submission).where(Submission.sub == "p1").values(submitted_at=then))
        session.execute(update(Launch).where(Launch.sub == "p1").values(created_at=then))
        session.execute(update(LessonProgress).where(LessonProgress.sub == "p1").values(completed_at=then))
        session.execute(update(OutboxItem).where(OutboxItem.sub == "p1").values(created_at=then, status="sent"))
        session.commit()


def snapshot(app):
    with new_session(app) as session:
        tables = {model.__tablename__: sorted(map(tuple, session.execute(select(model.__table__)).all()), key=repr)
                  for model, _column in SUB_TABLES}
    files = sorted(str(p.relative_to(app.config["UPLOAD_DIR"])) for p in Path(app.config["UPLOAD_DIR"]).rglob("*"))
    return tables, files


def test_purge_by_age_and_dry_run_changes_nothing(app, runner, course_work):
    age_p1(app, 400)
    stray = Path(app.config["UPLOAD_DIR"]) / "ab12" / "left-behind"
    stray.parent.mkdir(parents=True, exist_ok=True)
    stray.write_bytes(PNG)
    old = (datetime.now(timezone.utc) - timedelta(days=400)).timestamp()
    os.utime(stray, (old, old))
    with new_session(app) as session:
        p1_file = session.scalar(select(Submission.file_key).where(Submission.sub == "p1",
                                                                   Submission.file_key.is_not(None)))
    os.utime(Path(app.config["UPLOAD_DIR"]) / p1_file, (old, old))
    before, before_costs = snapshot(app), cost_lines(app)

    dry = runner.invoke(args=["privacy", "purge", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "would purge" in dry.output and "hand-ins: 2" in dry.output and "stray upload files: 1" in dry.output
    assert snapshot(app) == before

    done = runner.invoke(args=["privacy", "purge"])
    assert done.exit_code == 0, done.output
    after = stored_about(app, "p1")
    assert (after["submissions"], after["reviews"], after["launches"], after["lesson_progress"],
            after["outbox"]) == (0, 0, 0, 0, 0)
    assert after["seats"] == 1  # the round has not ended: the seat keeps its pupil
    assert not (Path(app.config["UPLOAD_DIR"]) / p1_file).exists() and not stray.exists()
    assert stored_about(app, "p2")["submissions"] == 1 and stored_about(app, "p2")["launches"] == 1
    assert cost_lines(app) == before_costs
    with new_session(app) as session:
        entry = session.scalars(select(AuditEntry).where(AuditEntry.action == privacy.ACTION_PURGE)).one()
        assert entry.details["submissions"] == 2
    # a shorter period given on the command line takes p2's work too
    assert runner.invoke(args=["privacy", "purge", "--older-than-days", "1"]).exit_code == 0
    assert stored_about(app, "p2")["submissions"] == 1  # made today: younger than a day


def test_purge_anonymises_seats_of_rounds_that_ended_long_ago(app, runner, course_work):
    before_counters, before_costs = counters(app), cost_lines(app)
    with new_session(app) as session:
        session.execute(update(CourseRound).where(CourseRound.round_id == "now")
                        .values(ends_on=date.today() - timedelta(days=400),
                                starts_on=date.today() - timedelta(days=500)))
        session.commit()
    assert runner.invoke(args=["privacy", "purge"]).exit_code == 0
    with new_session(app) as session:
        subs = list(session.scalars(select(Seat.sub)))
    assert len(subs) == 2 and all(privacy.is_anonymous(s) for s in subs) and len(set(subs)) == 2
    assert counters(app) == before_counters and cost_lines(app) == before_costs
    assert stored_about(app, "p1")["waitlist_entries"] == 1  # the later round has not ended


def test_purge_keeps_a_launch_another_row_points_at_without_its_personal_fields(app, runner, course_work):
    engine = get_engine(app)
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE launch_notes (id INTEGER PRIMARY KEY, "
                                "launch_id VARCHAR(36) NOT NULL REFERENCES launches (id))"))
    try:
        age_p1(app, 400)
        with new_session(app) as session:
            launch_id = session.scalar(select(Launch.id).where(Launch.sub == "p1"))
            session.execute(text("INSERT INTO launch_notes (id, launch_id) VALUES (1, :id)"), {"id": launch_id})
            session.commit()
        assert runner.invoke(args=["privacy", "purge"]).exit_code == 0
        with new_session(app) as session:
            kept = session.get(Launch, launch_id)
            assert kept is not None and privacy.is_anonymous(kept.sub) and kept.custom == {}
    finally:
        with engine.begin() as connection:
            connection.execute(text("DROP TABLE launch_notes"))


def test_retention_setting():
    assert load_settings({})["RETENTION_DAYS"] == 365
    assert load_settings({"LTI_TOOL_RETENTION_DAYS": "90"})["RETENTION_DAYS"] == 90
    with pytest.raises(ConfigurationError, match="RETENTION_DAYS"):
        load_settings({"LTI_TOOL_RETENTION_DAYS": "0"})


# -- staff access to a pupil's work ---------------------------------------------------------------------

def test_teacher_opening_a_pupils_work_is_audited_and_shown_to_national_staff(app, client, course_work):
    teacher, p1 = course_work["teacher"], course_work["p1"]
    file_id, text_id = submission_ids(app, "p1")
    with new_session(app) as session:
        session.execute(AuditEntry.__table__.delete())
        session.commit()
    pseudonym = privacy.pupil_pseudonym(app.config["SECRET_KEY"], course_work["registration"], "p1")
    label = pupil_label("p1")
    assert f"/teach/pupil/{label}" in teacher.get("/teach/").get_data(as_text=True)
    assert teacher.get(f"/teach/pupil/{label}").status_code == 200
    assert teacher.get(f"/teach/submission/{text_id}").status_code == 200
    seen = teacher.get(f"/files/{file_id}")
    assert seen.status_code == 200
    seen.close()
    own = p1.get(f"/files/{file_id}")  # the pupil's own file: not an access to log
    assert own.status_code == 200
    own.close()
    with new_session(app) as session:
        entries = list(session.scalars(select(AuditEntry).order_by(AuditEntry.id)))
    assert [(e.action, e.target) for e in entries] == [
        (privacy.ACCESS_PUPIL_PAGE, f"pupil {pseudonym}"),
        (privacy.ACCESS_HAND_IN, f"pupil {pseudonym} submission {text_id}"),
        (privacy.ACCESS_FILE, f"pupil {pseudonym} submission {file_id}"),
    ]
    assert {e.actor for e in entries} == {f"instructor {course_work['registration']}:t1"}
    assert entries[0].details == {"municipality": "SE-1490", "context": "sandbox-course-1", "course": "GIT-AK-1"}
    assert all("p1" not in json.dumps([e.target, e.details]) for e in entries)

    sign_in(client)
    page = client.get("/staff/audit?show=access", headers={"Accept-Language": "en"})
    body = page.get_data(as_text=True)
    assert page.status_code == 200 and 'data-entries="3"' in body
    assert f"pupil {pseudonym} submission {text_id}" in body and privacy.ACCESS_FILE in body


# -- the privacy notice and the LTI Data Privacy Launch --------------------------------------------------

def test_public_privacy_notice_in_swedish_and_bokmal(client):
    swedish = client.get("/privacy", headers={"Accept-Language": "sv-SE"})
    body = swedish.get_data(as_text=True)
    assert swedish.status_code == 200 and 'lang="sv"' in body and main_attrs(swedish)["page"] == "privacy"
    assert "Så hanterar vi dina personuppgifter" in body and "365 dagar" in body and "personnummer" in body
    bokmal = client.get("/privacy", headers={"Accept-Language": "nb-NO"})
    body = bokmal.get_data(as_text=True)
    assert 'lang="nb"' in body and "Slik behandler vi opplysningene dine" in body and "365 dager" in body
    assert "Datatilsynet" in body
    assert 'lang="nn"' in client.get("/privacy", headers={"Accept-Language": "nn"}).get_data(as_text=True)
    assert "frame-ancestors 'self'" in swedish.headers["Content-Security-Policy"]


def test_privacy_notice_shows_the_contact_and_the_retention_period(config, app_factory):
    app = app_factory({**config, "PRIVACY_CONTACT": "dataskydd@kulturskola.example", "RETENTION_DAYS": 200,
                       "ROSTER_NAMES": True})
    body = app.test_client().get("/privacy", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert 'href="mailto:dataskydd@kulturskola.example"' in body and "200 days" in body
    assert "Your name too" in body


def test_privacy_notice_after_a_launch_is_in_the_launchs_language(client, launches, content):
    pupil = Person(client, launches, "p1", municipality="NO-0301", locale="nb-NO")
    page = client.get(f"/privacy?lt={pupil.token}", headers={"Accept-Language": "sv"})
    body = page.get_data(as_text=True)
    assert page.status_code == 200 and 'lang="nb"' in body and "Slik behandler vi opplysningene dine" in body
    assert main_attrs(page)["municipality"] == "NO-0301" and "Oslo" in body
    assert "frame-ancestors 'self' http://localhost" in page.headers["Content-Security-Policy"]  # the platform's
    assert f"/privacy?lt={pupil.token}" in client.get(pupil.home).get_data(as_text=True)  # the footer link
    expired = client.get("/privacy?lt=nonsense", headers={"Accept-Language": "sv"})
    assert expired.status_code == 200 and 'lang="sv"' in expired.get_data(as_text=True)


def test_data_privacy_message_type_is_accepted_without_a_resource_link():
    from .test_domain import BASE, body

    claims = parse_launch_claims(body(**{CLAIM_MESSAGE_TYPE: MESSAGE_DATA_PRIVACY, CLAIM_RESOURCE_LINK: None}),
                                 client_id="client-1", base_url=BASE)
    assert claims.message_type == "LtiDataPrivacyLaunchRequest" and claims.resource_link_id is None


def test_registration_names_the_privacy_notice():
    registration = ToolDynamicRegistration(None, "", None, ToolUrls("https://kurser.example"),
                                           timeout=1).lti_registration_data()
    assert registration["policy_uri"] == "https://kurser.example/privacy"


def test_data_privacy_launch_shows_the_notice_and_takes_no_seat(app, client, launches, content):
    spec = launches.spec("SE-1490", user="p9", course="GIT-AK-1", locale="nn-NO")
    response = launches.launch(spec, overrides={CLAIM_MESSAGE_TYPE: MESSAGE_DATA_PRIVACY, CLAIM_RESOURCE_LINK: None})
    assert response.status_code == 303, response.get_data(as_text=True)
    assert "/privacy?lt=" in response.headers["Location"]
    page = client.get(response.headers["Location"], headers={"Accept-Language": "sv"})
    assert page.status_code == 200 and 'lang="nn"' in page.get_data(as_text=True)
    assert main_attrs(page)["launch"] == MESSAGE_DATA_PRIVACY
    with new_session(app) as session:
        assert session.scalar(select(func.count()).select_from(Seat)) == 0
        assert session.scalar(select(func.sum(Order.seats_taken))) == 0
