"""Talking to the group (services/classroom.py, web/classroom.py, the pupil's pages): announcements reach the
round and only the round; a hand-in's conversation is written by its pupil and the round's teachers, read by
whoever may see the hand-in; the round's showcase shows approved work to the round's pupils and teachers
only, and nothing before approval or after a withdrawal. Through the pages, with real launches."""

from __future__ import annotations

import io
import re
from html import unescape

import pytest
from sqlalchemy import func, select

from lti_tool.db import new_session
from lti_tool.models import AuditEntry, CourseRound, HandInMessage, Launch, Seat, ShowcaseItem, Submission
from lti_tool.services import access, classroom, seats
from lti_tool.services.delivery import pupil_label

from .catalog_factory import add_content, add_course
from .conftest import error_code, main_attrs, name_round_teacher
from .sample_files import PNG
from .test_access import browser as launched
from .test_browser import browser, live  # noqa: F401  (fixtures of the browser test)

SECRET_TEXT = "Mitt hemliga svar"


@pytest.fixture
def content(app, demo):
    """The course with both its rounds ordered by three municipalities (two countries, two deployments)."""
    with new_session(app) as session:
        add_course(session)
        made = add_content(session)
        for municipality in ("SE-1490", "SE-1440", "NO-0301"):
            for round_id in ("now", "later"):
                seats.set_order(session, municipality, "GIT-AK-1", round_id, 10)
        session.commit()
    return made


def round_pk(app, round_id: str = "now") -> int:
    with new_session(app) as session:
        return session.scalar(select(CourseRound.id).where(CourseRound.round_id == round_id))


def viewer(app, person) -> access.Viewer:
    with new_session(app) as session:
        return access.Viewer.of(session.get(Launch, person.launch_id))


def talk_attrs(response) -> dict[str, str]:
    """The data attributes of the course page's announcements and messages (``div.round-talk``)."""
    match = re.search(r'<div class="round-talk"([^>]*)>', response.get_data(as_text=True))
    return dict(re.findall(r'data-([a-z-]+)="([^"]*)"', match.group(1))) if match else {}


def body(response) -> str:
    return unescape(response.get_data(as_text=True))


@pytest.fixture
def group(app, client, launches, content):
    """The round "now": its teacher (named), two pupils (Sweden, Norway), a local teacher of the first pupil's
    course (not named); a pupil and a named teacher of the round "later"."""
    people = {
        "teacher": launched(client, launches, "t1", role="instructor"),
        "p1": launched(client, launches, "p1"),
        "p2": launched(client, launches, "p2", municipality="NO-0301", context="oslo-course", link="oslo-link"),
        "local": launched(client, launches, "t3", role="instructor"),
        "later_pupil": launched(client, launches, "p4", round_id="later"),
        "later_teacher": launched(client, launches, "t2", role="instructor", round_id="later"),
    }
    name_round_teacher(app, "t1", name="Maja Lärare")
    name_round_teacher(app, "t2", round_id="later", name="Ola Lærer")
    return people


def announce(teacher, text="Övning på torsdag", language="sv"):
    return teacher.post("/classroom/announcements", {"body": text, "language": language})


# -- announcements -------------------------------------------------------------------------------------------

def test_announcements_reach_the_round_and_only_the_round(app, client, group):
    teacher, p1, p2 = group["teacher"], group["p1"], group["p2"]
    posted = announce(teacher, "Övning på torsdag <script>alert(1)</script>")
    assert posted.status_code == 303
    assert announce(teacher, "Ta med noter", "sv").status_code == 303

    home = client.get(p1.home)
    attrs = talk_attrs(home)
    assert attrs["announcements"] == "2" and attrs["announcements-new"] == "2"
    page = home.get_data(as_text=True)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>alert" not in page  # plain text, escaped
    assert 'lang="sv"' in page and "Maja Lärare" in page
    assert page.index("Ta med noter") < page.index("Övning på torsdag")  # newest first
    # seen once: no longer new, for this pupil only
    assert talk_attrs(client.get(p1.home))["announcements-new"] == "0"
    # a pupil of the same round from another country and platform
    assert talk_attrs(client.get(p2.home))["announcements-new"] == "2"
    assert announce(teacher, "Glöm inte att öva", "sv").status_code == 303
    again = client.get(p1.home)
    assert talk_attrs(again)["announcements-new"] == "1" and again.get_data(as_text=True).count('data-new="1"') == 1

    # another round's pupil and teacher see none of it
    later = client.get(group["later_pupil"].home)
    assert talk_attrs(later)["announcements"] == "0" and "Ta med noter" not in later.get_data(as_text=True)
    other_teacher = group["later_teacher"].get("/classroom/announcements")
    assert other_teacher.status_code == 200 and "Ta med noter" not in other_teacher.get_data(as_text=True)
    assert main_attrs(other_teacher)["announcements"] == "0"


def test_a_local_teacher_reads_the_announcements_and_only_the_round_teacher_writes(app, client, group):
    assert announce(group["teacher"]).status_code == 303
    local = group["local"].get("/classroom/announcements")
    assert local.status_code == 200 and "Övning på torsdag" in body(local) and 'data-read-only="1"' in body(local)
    refused = announce(group["local"], "Från en lokal lärare")
    assert (refused.status_code, error_code(refused)) == (403, "round_teacher_only")
    pupil = group["p1"].post("/classroom/announcements", {"body": "Hej alla", "language": "sv"})
    assert pupil.status_code == 403
    assert group["p1"].get("/classroom/announcements").status_code == 403
    other = announce(group["later_teacher"], "Fel omgång")  # a teacher of another round writes to their own
    assert other.status_code == 303
    with new_session(app) as session:
        rows = session.execute(select(classroom.Announcement.round_pk, classroom.Announcement.body)).all()
    assert sorted(rows) == sorted([(round_pk(app), "Övning på torsdag"), (round_pk(app, "later"), "Fel omgång")])
    assert "Fel omgång" not in client.get(group["p1"].home).get_data(as_text=True)


def test_an_announcement_is_bounded_and_kept_in_its_language(app, client, group):
    teacher = group["teacher"]
    empty = announce(teacher, "   ")
    assert (empty.status_code, error_code(empty)) == (400, "announcement_empty")
    long = announce(teacher, "x" * (classroom.MAX_BODY + 1))
    assert (long.status_code, error_code(long)) == (400, "announcement_too_long")
    assert "x" * 100 in long.get_data(as_text=True)  # the draft is kept
    assert error_code(announce(teacher, "Hei", "klingon")) == "invalid"
    assert announce(teacher, "Buorre beaivi", "se").status_code == 303
    assert 'lang="se"' in client.get(group["p1"].home).get_data(as_text=True)


# -- conversations on hand-ins -------------------------------------------------------------------------------

def hand_in_text(pupil, content) -> int:
    assert pupil.post(f"/assignment/{content['assignment2']}", {"text": SECRET_TEXT}).status_code == 303
    with new_session(pupil.client.application) as session:
        launch = session.get(Launch, pupil.launch_id)
        return session.scalar(select(Submission.id).where(Submission.sub == launch.sub,
                                                          Submission.registration_id == launch.registration_id,
                                                          Submission.assignment_id == content["assignment2"]))


def write(pupil, content, text):
    return pupil.post(f"/assignment/{content['assignment2']}/message", {"body": text})


def test_pupil_and_round_teacher_talk_about_a_hand_in(app, client, group, content):
    p1, teacher = group["p1"], group["teacher"]
    submission_id = hand_in_text(p1, content)
    sent = write(p1, content, "Jag förstår inte uppgiften <b>alls</b>")
    assert sent.status_code == 303 and "sent=1" in sent.headers["Location"]

    # the round teacher: one unread, on the list and on the conversation, read by opening it
    listing = teacher.get("/classroom/messages")
    assert main_attrs(listing)["unread"] == "1" and pupil_label("p1") in listing.get_data(as_text=True)
    thread = teacher.get(f"/classroom/hand-in/{submission_id}")
    page = thread.get_data(as_text=True)
    assert thread.status_code == 200 and "&lt;b&gt;alls&lt;/b&gt;" in page and 'data-new="1"' in page
    assert main_attrs(teacher.get("/classroom/messages"))["unread"] == "0"
    answered = teacher.post(f"/classroom/hand-in/{submission_id}", {"body": "Spela in två minuter."})
    assert answered.status_code == 303

    # the pupil: told on the course page, reads it under the hand-in, then nothing is unread
    assert talk_attrs(client.get(p1.home))["unread-messages"] == "1"
    assignment = p1.get(f"/assignment/{content['assignment2']}")
    text = body(assignment)
    assert "Spela in två minuter." in text and "Maja Lärare" in text and main_attrs(assignment)["messages"] == "2"
    assert talk_attrs(client.get(p1.home))["unread-messages"] == "0"
    with new_session(app) as session:
        rows = session.execute(select(HandInMessage.author_role, HandInMessage.author_name)
                               .order_by(HandInMessage.id)).all()
        assert rows == [("pupil", None), ("teacher", "Maja Lärare")]  # a pupil's name is never kept
        assert session.scalar(select(func.count()).select_from(HandInMessage)
                              .where(HandInMessage.read_at.is_(None))) == 0


def test_a_message_is_bounded_plain_text(app, client, group, content):
    p1 = group["p1"]
    hand_in_text(p1, content)
    empty = write(p1, content, " \n ")
    assert (empty.status_code, error_code(empty)) == (400, "message_empty")
    long = write(p1, content, "y" * (classroom.MAX_BODY + 1))
    assert (long.status_code, error_code(long)) == (400, "message_too_long") and "y" * 100 in body(long)
    assert write(p1, content, "y" * classroom.MAX_BODY).status_code == 303
    # nothing handed in for the other assignment: nothing to write on
    nothing = p1.post(f"/assignment/{content['assignment1']}/message", {"body": "Hej"})
    assert nothing.status_code == 404


def test_only_the_pupil_and_the_round_teachers_write_and_only_those_who_see_the_hand_in_read(app, client, group,
                                                                                            content):
    p1, p2 = group["p1"], group["p2"]
    submission_id = hand_in_text(p1, content)
    assert write(p1, content, "En fråga från mig").status_code == 303

    # another pupil of the round: neither reads nor writes on p1's hand-in
    other = viewer(app, p2)
    with new_session(app) as session:
        for attempt in (lambda: classroom.write_message(session, other, submission_id, "Hej!"),
                        lambda: classroom.thread(session, other, submission_id)):
            with pytest.raises(access.ForbiddenError):
                attempt()
        session.rollback()
    assert p2.get(f"/classroom/hand-in/{submission_id}").status_code == 403
    assert p2.post(f"/classroom/hand-in/{submission_id}", {"body": "Hej!"}).status_code == 403
    own_page = p2.get(f"/assignment/{content['assignment2']}")
    assert "En fråga från mig" not in body(own_page)

    # a named teacher of another round: nothing, by their launch or by naming this round in the address
    later = group["later_teacher"]
    for page in (later.get(f"/classroom/hand-in/{submission_id}"),
                 later.post(f"/classroom/hand-in/{submission_id}", {"body": "Hej"}),
                 later.get(f"/classroom/rounds/{round_pk(app)}/hand-in/{submission_id}")):
        assert page.status_code == 403 and "En fråga från mig" not in body(page)
    assert "En fråga" not in body(later.get("/classroom/messages"))

    # the local teacher of p1's course reads, cannot write, and reading marks nothing read
    local = group["local"]
    follows = local.get(f"/classroom/hand-in/{submission_id}")
    assert follows.status_code == 200 and "En fråga från mig" in body(follows)
    assert 'data-read-only="1"' in body(follows) and 'id="message-body"' not in body(follows)
    refused = local.post(f"/classroom/hand-in/{submission_id}", {"body": "Från den lokala läraren"})
    assert (refused.status_code, error_code(refused)) == (403, "message_forbidden")
    assert local.get("/classroom/messages").status_code == 403  # the round's conversations: its teachers'
    with new_session(app) as session:
        assert session.scalar(select(func.count()).select_from(HandInMessage)) == 1
        assert session.scalar(select(HandInMessage.read_at)) is None
        # the teacher opening the conversation is in the audit log, the pupil as a pseudonym
        assert session.scalar(select(func.count()).select_from(AuditEntry)
                              .where(AuditEntry.action == "pupil_work.hand_in")) >= 1


def test_a_pupil_who_left_the_round_reads_but_no_longer_writes(app, client, group, content):
    p1 = group["p1"]
    submission_id = hand_in_text(p1, content)
    assert write(p1, content, "Före").status_code == 303
    pupil = viewer(app, p1)
    with new_session(app) as session:
        seat = session.scalar(select(Seat).where(Seat.sub == "p1"))
        seat.status = "withdrawn"
        session.commit()
        with pytest.raises(access.ForbiddenError) as refused:
            classroom.write_message(session, pupil, submission_id, "Efter")
        assert refused.value.code == "message_forbidden"
        session.rollback()
    page = p1.get(f"/assignment/{content['assignment2']}")
    assert "Före" in body(page) and 'id="message-body"' not in body(page)


# -- the showcase ------------------------------------------------------------------------------------------------

def review(teacher, submission_id):
    done = teacher.post(f"/teach/submission/{submission_id}", {"feedback": "Fint!", "score": "8"})
    assert done.status_code == 303, done.get_data(as_text=True)


def hand_in_file(pupil, content) -> int:
    assert pupil.post(f"/assignment/{content['assignment1']}", {"file": (io.BytesIO(PNG), "Alva Andersson.png")},
                      content_type="multipart/form-data").status_code == 303
    with new_session(pupil.client.application) as session:
        launch = session.get(Launch, pupil.launch_id)
        return session.scalar(select(Submission.id).where(Submission.sub == launch.sub,
                                                          Submission.registration_id == launch.registration_id,
                                                          Submission.file_key.is_not(None)))


def switch(teacher, on: bool):
    response = teacher.post("/classroom/showcase/switch", {"enabled": "1" if on else "0"})
    assert response.status_code == 303


def item_id(app) -> int:
    with new_session(app) as session:
        return session.scalar(select(ShowcaseItem.id))


def test_shared_work_is_shown_to_the_round_only_after_approval_and_until_withdrawn(app, client, group, content):
    teacher, p1, p2 = group["teacher"], group["p1"], group["p2"]
    switch(teacher, True)
    file_id = hand_in_file(p1, content)
    review(teacher, file_id)
    shared = p1.post(f"/assignment/{content['assignment1']}/share", {"caption": "Min första låt"})
    assert shared.status_code == 303
    item = item_id(app)
    assert main_attrs(p1.get(f"/assignment/{content['assignment1']}"))["showcase"] == "pending"

    def seen_by(person) -> bool:
        page = person.get("/showcase")
        assert page.status_code == 200
        return "Min första låt" in body(page) and f'data-item="{item}"' in body(page)

    # waiting: nobody else sees it, not even its file
    assert not seen_by(p2)
    assert p2.get(f"/showcase/{item}/file").status_code == 404
    moderation = teacher.get("/classroom/showcase")
    assert main_attrs(moderation)["waiting"] == "1" and "Min första låt" in body(moderation)
    teacher_file = teacher.get(f"/classroom/showcase/{item}/file")
    assert teacher_file.status_code == 200 and teacher_file.data == PNG
    teacher_file.close()

    # approved: the round's other pupil sees it and its file, never the name the file was uploaded with
    assert teacher.post(f"/classroom/showcase/{item}/approve", {}).status_code == 303
    assert seen_by(p2)
    page = body(p2.get("/showcase"))
    assert "Alva" not in page and pupil_label("p1") in page
    shown = p2.get(f"/showcase/{item}/file")
    assert shown.status_code == 200 and shown.data == PNG and "Alva" not in shown.headers["Content-Disposition"]
    assert shown.headers["Cache-Control"] == "private, no-store"
    shown.close()
    assert f"/showcase/{item}/file?" in page  # the picture is shown inline
    # ... and nobody outside the round: another round's pupil and teacher, a local teacher
    assert not seen_by(group["later_pupil"])
    assert group["later_pupil"].get(f"/showcase/{item}/file").status_code == 404
    assert group["later_teacher"].get(f"/classroom/showcase/{item}/file").status_code in (403, 404)
    assert group["later_teacher"].get(f"/classroom/rounds/{round_pk(app)}/showcase").status_code == 403
    assert group["local"].get("/classroom/showcase").status_code == 403
    assert group["local"].get(f"/classroom/showcase/{item}/file").status_code == 404
    assert group["local"].get(f"/showcase/{item}/file").status_code == 404

    # withdrawn: gone at once, for everyone, its file too
    assert p1.post(f"/showcase/{item}/withdraw", {}).status_code == 303
    assert not seen_by(p2) and not seen_by(p1)
    assert p2.get(f"/showcase/{item}/file").status_code == 404
    assert teacher.get(f"/classroom/showcase/{item}/file").status_code == 404
    moderation = teacher.get("/classroom/showcase")
    assert main_attrs(moderation)["approved"] == "0" and main_attrs(moderation)["waiting"] == "0"
    assert teacher.post(f"/classroom/showcase/{item}/approve", {}).status_code == 404  # cannot be brought back


def test_the_teacher_declines_and_a_pupil_may_share_again(app, client, group, content):
    teacher, p1, p2 = group["teacher"], group["p1"], group["p2"]
    switch(teacher, True)
    submission_id = hand_in_text(p1, content)
    review(teacher, submission_id)
    assert p1.post(f"/assignment/{content['assignment2']}/share", {"caption": ""}).status_code == 303
    item = item_id(app)
    assert teacher.post(f"/classroom/showcase/{item}/decline", {}).status_code == 303
    assert main_attrs(p1.get(f"/assignment/{content['assignment2']}"))["showcase"] == "declined"
    assert p1.post(f"/assignment/{content['assignment2']}/share", {"caption": "Andra försöket"}).status_code == 303
    assert teacher.post(f"/classroom/showcase/{item}/approve", {}).status_code == 303
    page = body(p2.get("/showcase"))
    assert "Andra försöket" in page and SECRET_TEXT in page  # a text hand-in is shown as text
    # taken off by the teacher: gone
    assert teacher.post(f"/classroom/showcase/{item}/decline", {}).status_code == 303
    assert "Andra försöket" not in body(p2.get("/showcase"))
    # only the round's teacher moderates; a pupil cannot withdraw another's item
    assert group["local"].post(f"/classroom/showcase/{item}/approve", {}).status_code == 403
    assert p2.post(f"/showcase/{item}/withdraw", {}).status_code == 404
    with new_session(app) as session:
        actions = set(session.scalars(select(AuditEntry.action).where(AuditEntry.action.startswith("showcase_"))))
    assert actions == {"showcase_switch", "showcase_approve", "showcase_decline"}


def test_no_sharing_while_the_showcase_is_off_or_before_feedback(app, client, group, content):
    teacher, p1, p2 = group["teacher"], group["p1"], group["p2"]
    submission_id = hand_in_text(p1, content)
    review(teacher, submission_id)
    page = p1.get(f"/assignment/{content['assignment2']}")
    assert 'id="share"' not in body(page)  # off: no form
    refused = p1.post(f"/assignment/{content['assignment2']}/share", {"caption": "Hej"})
    assert (refused.status_code, error_code(refused)) == (409, "showcase_off")
    assert p2.get("/showcase").status_code == 200 and main_attrs(p2.get("/showcase"))["showcase"] == "off"
    # on, but not yet reviewed: still no sharing
    switch(teacher, True)
    assert p2.post(f"/assignment/{content['assignment2']}", {"text": "Mitt svar"}).status_code == 303
    early = p2.post(f"/assignment/{content['assignment2']}/share", {"caption": "Hej"})
    assert (early.status_code, error_code(early)) == (409, "showcase_not_reviewed")
    too_long = p1.post(f"/assignment/{content['assignment2']}/share", {"caption": "z" * 501})
    assert (too_long.status_code, error_code(too_long)) == (400, "caption_too_long")
    assert p1.post(f"/assignment/{content['assignment2']}/share", {"caption": "Min"}).status_code == 303
    item = item_id(app)
    assert teacher.post(f"/classroom/showcase/{item}/approve", {}).status_code == 303
    assert "Min" in body(p2.get("/showcase"))
    # switched off again: hidden from the pupils at once, nothing deleted
    switch(teacher, False)
    assert f'data-item="{item}"' not in body(p2.get("/showcase"))
    assert p2.get(f"/showcase/{item}/file").status_code == 404
    with new_session(app) as session:
        assert session.get(ShowcaseItem, item).status == "approved"
    # only a round teacher switches it; a pupil without a seat in the round has no showcase
    assert group["local"].post("/classroom/showcase/switch", {"enabled": "1"}).status_code == 403
    assert p2.post("/classroom/showcase/switch", {"enabled": "1"}).status_code == 403


def test_posting_needs_the_launch_token(app, client, group, content):
    """The classroom's forms are state-changing: default-deny CSRF, the launch token (or a teacher's session)."""
    response = client.post("/classroom/announcements", data={"body": "Hej", "language": "sv"})
    assert (response.status_code, error_code(response)) == (400, "csrf_invalid")
    response = client.post(f"/assignment/{content['assignment2']}/message", data={"body": "Hej"})
    assert (response.status_code, error_code(response)) == (400, "csrf_invalid")


# -- on the teacher's own pages, and for a teacher signed in by e-mail ---------------------------------------------

def test_the_teachers_pages_show_what_waits_and_the_conversation_on_the_review_page(app, client, group, content):
    p1, teacher, local = group["p1"], group["teacher"], group["local"]
    submission_id = hand_in_text(p1, content)
    assert write(p1, content, "Hur lång ska inspelningen vara?").status_code == 303
    for path in ("/teach/", "/teach/queue"):
        page = body(teacher.get(path))
        assert 'data-unread-messages="1"' in page and "/classroom/messages?lt=" in page, path
    review_page = teacher.get(f"/teach/submission/{submission_id}")
    page = body(review_page)
    assert 'id="talk"' in page and "Hur lång ska inspelningen vara?" in page and 'data-new="1"' in page
    assert 'data-unread-messages="0"' in body(teacher.get("/teach/"))  # read on the review page
    answered = teacher.post(f"/classroom/hand-in/{submission_id}", {"body": "Två minuter.", "back": "review"})
    assert answered.status_code == 303
    assert f"/teach/submission/{submission_id}?" in answered.headers["Location"]
    assert answered.headers["Location"].endswith("#talk")
    # the local teacher: the conversation, read-only, and no round-teacher links
    follows = body(local.get(f"/teach/submission/{submission_id}"))
    assert "Två minuter." in follows and 'data-read-only="1"' in follows and 'name="back"' not in follows
    assert "/classroom/messages" not in body(local.get("/teach/"))
    with new_session(app) as session:
        assert session.scalar(select(HandInMessage.read_at).where(HandInMessage.author_role == "teacher")) is None


RITA = "rita@kulturskola.example"


def test_a_teacher_signed_in_by_email_talks_to_their_round(app, client, group, content):
    from lti_tool.services import round_teachers

    now, later = round_pk(app), round_pk(app, "later")
    with new_session(app) as session:
        round_teachers.add_email_teacher(session, now, email=RITA, name="Rita Rund", actor="test")
        session.commit()
    submission_id = hand_in_text(group["p1"], content)
    rita = app.test_client()
    with rita.session_transaction() as web_session:
        web_session["teacher"] = {"email": RITA, "name": "Rita Rund", "via": "test"}
        web_session["csrf"] = "rita-token"
    page = rita.get(f"/classroom/rounds/{now}/announcements")
    assert page.status_code == 200 and 'name="csrf" value="rita-token"' in page.get_data(as_text=True)
    assert f"/classroom/rounds/{now}/announcements" in page.get_data(as_text=True)
    forged = rita.post(f"/classroom/rounds/{now}/announcements", data={"body": "Hej", "language": "sv"})
    assert (forged.status_code, error_code(forged)) == (400, "csrf_invalid")
    posted = rita.post(f"/classroom/rounds/{now}/announcements",
                       data={"body": "Hej från Rita", "language": "sv", "csrf": "rita-token"})
    assert posted.status_code == 303 and f"/classroom/rounds/{now}/announcements" in posted.headers["Location"]
    assert "Rita Rund" in body(client.get(group["p1"].home))
    answered = rita.post(f"/classroom/rounds/{now}/hand-in/{submission_id}",
                         data={"body": "Bra början", "csrf": "rita-token"})
    assert answered.status_code == 303
    assert "Bra början" in body(group["p1"].get(f"/assignment/{content['assignment2']}"))
    # not their round; no round named: nothing
    assert rita.get(f"/classroom/rounds/{later}/announcements").status_code == 403
    assert rita.get(f"/classroom/rounds/{later}/hand-in/{submission_id}").status_code == 403
    assert rita.get("/classroom/announcements").status_code == 302
    assert "Bra början" in body(rita.get(f"/classroom/rounds/{now}/hand-in/{submission_id}"))
    with new_session(app) as session:
        assert session.scalar(select(HandInMessage.author_name)) == "Rita Rund"
        actors = set(session.scalars(select(AuditEntry.actor).where(AuditEntry.action.startswith("pupil_work."))))
    assert actors == {f"teacher email:{RITA}"}


# -- in a real browser: every new page passes axe (WCAG 2.1 A and AA) and fits a phone ------------------------------

def test_talking_to_the_group_in_a_browser(live, browser):  # noqa: F811
    import os
    from urllib.parse import parse_qs, urlsplit

    from .test_browser import CHROMIUM, check_page, launch

    if not os.path.exists(CHROMIUM):
        pytest.skip("Debian's chromium is not installed")

    def goto(page, path):
        token = parse_qs(urlsplit(page.url).query)["lt"][0]
        page.goto(f"{live}{path}{'&' if '?' in path else '?'}lt={token}")
        page.wait_for_selector("main")

    teacher = launch(browser, live, user="laerer-1", role="instructor", locale="sv-SE")
    goto(teacher, "/classroom/announcements")
    teacher.fill("#body", "Välkomna! Första lektionen är på torsdag.")
    teacher.locator("main form.stack button[type=submit]").click()
    assert teacher.get_by_role("status").count() == 1
    check_page(teacher, "teacher-announcements-sv")
    goto(teacher, "/classroom/showcase")
    teacher.locator("main form button[type=submit]").first.click()
    assert teacher.locator("main").get_attribute("data-showcase") == "on"

    pupil = launch(browser, live, user="elev-1", locale="sv-SE")
    assert pupil.locator("div.round-talk").get_attribute("data-announcements-new") == "1"
    check_page(pupil, "pupil-course-announcement-sv")
    pupil.get_by_role("link", name="Uppgift 2", exact=False).click()
    pupil.fill("#text", "Jag övade varje dag.")
    pupil.locator("form[enctype] button[type=submit]").click()
    pupil.fill("#message-body", "Hur länge ska jag öva?")
    pupil.locator("#talk button[type=submit]").click()
    assert pupil.locator("main").get_attribute("data-messages") == "1"
    check_page(pupil, "pupil-assignment-talk-sv")

    goto(teacher, "/classroom/messages")
    check_page(teacher, "teacher-messages-sv")
    teacher.locator("ul.conversations a").first.click()
    check_page(teacher, "teacher-conversation-sv")
    teacher.fill("#message-body", "Tio minuter om dagen räcker.")
    teacher.locator("#talk button[type=submit]").click()
    submission = teacher.locator("main").get_attribute("data-submission")
    goto(teacher, f"/teach/submission/{submission}")
    check_page(teacher, "teacher-review-talk-sv")
    teacher.fill("#feedback", "Bra!")
    teacher.fill("#score", "8")
    teacher.locator("form:has(#feedback) button[type=submit]").click()

    goto(pupil, pupil.url.split("?")[0].replace(live, ""))
    pupil.fill("#caption", "Min övning")
    pupil.locator("#share form button[type=submit]").click()
    assert pupil.locator("main").get_attribute("data-showcase") == "pending"
    check_page(pupil, "pupil-assignment-shared-sv")
    goto(teacher, "/classroom/showcase")
    check_page(teacher, "teacher-showcase-sv")
    teacher.locator("li[data-status=pending] form button[type=submit]").first.click()
    assert teacher.locator("main").get_attribute("data-approved") == "1"

    other = launch(browser, live, user="elev-3", municipality="NO-0301", locale="nb-NO")
    goto(other, "/showcase")
    assert other.locator("main").get_attribute("data-items") == "1"
    check_page(other, "pupil-showcase-nb")
