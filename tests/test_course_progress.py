"""The pupil's progress and the round's weeks on the course page; late hand-ins on the teacher's queue and grade
grid, from the same plan (lti_tool.domain.schedule through services.course_plan)."""

from __future__ import annotations

import re
from datetime import datetime, time, timedelta, timezone

from sqlalchemy import select

from lti_tool.db import new_session
from lti_tool.domain.schedule import module_schedule
from lti_tool.models import CourseModule, CourseRound, Submission

from .conftest import main_attrs, name_round_teacher
from .test_delivery import Person, content  # noqa: F401  (the fixture)


def _plan(app):
    with new_session(app) as session:
        course_round = session.scalar(select(CourseRound).where(CourseRound.round_id == "now"))
        modules = list(session.scalars(select(CourseModule.id).where(CourseModule.course_code == "GIT-AK-1")
                                       .order_by(CourseModule.position)))
        return module_schedule(course_round.starts_on, course_round.ends_on, modules), modules


def _hand_in_at(app, assignment_id: int, sub: str, moment: datetime) -> int:
    with new_session(app) as session:
        submission = session.scalar(select(Submission).where(Submission.assignment_id == assignment_id,
                                                             Submission.sub == sub))
        submission.submitted_at = moment
        session.commit()
        return submission.id


def _section(body: str, marker: str) -> str:
    start = body.index(marker)
    return body[start:body.index("</section>", start)]


def test_progress_summary_statuses_score_and_module_weeks(app, client, launches, content):  # noqa: F811
    pupil = Person(client, launches, "p1", locale="en-GB")
    teacher = Person(client, launches, "t1", role="instructor", locale="en-GB")
    name_round_teacher(app, "t1")

    body = client.get(pupil.home).get_data(as_text=True)
    summary = _section(body, 'class="progress-summary"')
    assert 'data-lessons-done="0" data-lessons="2" data-handed-in="0" data-hand-ins="2" data-feedback="0"' in summary
    assert "Lessons done: 0 of 2" in summary and "Assignments handed in: 0 of 2" in summary
    assert f'data-assignment="{content["assignment1"]}" data-status="not_handed_in"' in body
    assert "Not handed in" in body

    plan, modules = _plan(app)
    first, second = plan[modules[0]], plan[modules[1]]
    assert first.first_week == 1 and second.last_week > second.first_week > first.last_week
    assert (f'data-weeks="1-{first.last_week}" data-due="{first.due_on.isoformat()}"' in body
            and f'data-weeks="{second.first_week}-{second.last_week}" data-due="{second.due_on.isoformat()}"' in body)
    # Weeks of the round and the due day, in the page's language (British English: the day first).
    assert f"Weeks 1–{first.last_week} · hand in by {first.due_on.day} {first.due_on.strftime('%B')}" in body

    assert pupil.post(f"/lesson/{content['lesson1']}", {}).status_code == 303
    assert pupil.post(f"/assignment/{content['assignment2']}", {"text": "My verse"}).status_code == 303
    body = client.get(pupil.home).get_data(as_text=True)
    assert f'data-assignment="{content["assignment2"]}" data-status="handed_in"' in body
    assert 'data-lessons-done="1" data-lessons="2" data-handed-in="1" data-hand-ins="2" data-feedback="0"' in body

    queue = teacher.get("/teach/queue").get_data(as_text=True)
    submission_id = re.search(r"/teach/submission/(\d+)", queue).group(1)
    assert teacher.post(f"/teach/submission/{submission_id}", {"feedback": "Lovely rhymes", "score": "7,5"}
                        ).status_code == 303
    body = client.get(pupil.home).get_data(as_text=True)
    item = body[body.index(f'data-assignment="{content["assignment2"]}"'):]
    item = item[:item.index("</li>")]
    assert 'data-status="feedback"' in item and "Feedback given" in item and "7.5 of 10 points" in item
    assert "Feedback from your teacher on 1 assignment" in _section(body, 'class="progress-summary"')
    # The feedback is new until the pupil opens the assignment's page; then it is not any more.
    assert f'data-new-feedback="{content["assignment2"]}"' in item and ">New<" in item
    assert pupil.get(f"/assignment/{content['assignment2']}").status_code == 200
    body = client.get(pupil.home).get_data(as_text=True)
    assert f'data-new-feedback="{content["assignment2"]}"' not in body
    # The teacher changes the review: the changed feedback is new again.
    assert teacher.post(f"/teach/submission/{submission_id}", {"feedback": "Lovely rhymes, and the rhythm too",
                                                               "score": "8"}).status_code == 303
    assert f'data-new-feedback="{content["assignment2"]}"' in client.get(pupil.home).get_data(as_text=True)
    assert pupil.get(f"/assignment/{content['assignment2']}").status_code == 200

    # A new version after feedback waits for feedback again: handed in, no score shown.
    assert pupil.post(f"/assignment/{content['assignment2']}", {"text": "Second verse", "new_version": "1"}
                      ).status_code == 303
    body = client.get(pupil.home).get_data(as_text=True)
    assert f'data-assignment="{content["assignment2"]}" data-status="handed_in"' in body and "of 10 points" not in body
    assert 'data-handed-in="1" data-hand-ins="2" data-feedback="0"' in body


def test_no_summary_for_a_launch_without_a_seat_and_swedish_weeks(app, client, launches, content):  # noqa: F811
    teacher = Person(client, launches, "t1", role="instructor")
    page = client.get(teacher.home, follow_redirects=True)
    assert main_attrs(page)["role"] == "instructor" and "progress-summary" not in page.get_data(as_text=True)
    pupil = Person(client, launches, "p1")  # sv-SE
    body = client.get(pupil.home).get_data(as_text=True)
    plan, modules = _plan(app)
    due = plan[modules[0]].due_on
    months = ["januari", "februari", "mars", "april", "maj", "juni", "juli", "augusti", "september", "oktober",
              "november", "december"]
    assert f"{due.day} {months[due.month - 1]}" in body  # the Swedish date, whatever the words' translation


def test_late_hand_ins_marked_on_the_queue_and_grade_grid(app, client, launches, content):  # noqa: F811
    on_time, late = Person(client, launches, "p1"), Person(client, launches, "p2")
    teacher = Person(client, launches, "t1", role="instructor")
    name_round_teacher(app, "t1")
    for pupil in (on_time, late):
        assert pupil.post(f"/assignment/{content['assignment2']}", {"text": "Text"}).status_code == 303
    plan, modules = _plan(app)
    due = plan[modules[1]].due_on
    stockholm = timezone(timedelta(hours=1))  # winter or summer, 21:30 UTC is still the same day in Stockholm
    on_time_id = _hand_in_at(app, content["assignment2"], "p1", datetime.combine(due, time(21, 30), timezone.utc))
    late_id = _hand_in_at(app, content["assignment2"], "p2",
                          datetime.combine(due + timedelta(days=1), time(9), stockholm))

    queue = teacher.get("/teach/queue").get_data(as_text=True)
    items = {int(n): text for n, text in re.findall(r'/teach/submission/(\d+)\?[^"]*">(.*?)</li>', queue, re.S)}
    assert set(items) == {on_time_id, late_id}
    assert 'data-late="1"' in items[late_id] and 'data-late' not in items[on_time_id]

    grid = teacher.get("/teach/grades").get_data(as_text=True)
    late_cells = re.findall(r'<td data-cell="(\w+)">((?:(?!</td>).)*data-late="1"(?:(?!</td>).)*)</td>', grid, re.S)
    assert [(state, f"/teach/submission/{late_id}" in cell) for state, cell in late_cells] == [("waiting", True)]

    # Reviewed, it stays late; a new version after feedback does not make on-time work late.
    assert teacher.post(f"/teach/submission/{on_time_id}", {"feedback": "Good", "score": "6"}).status_code == 303
    assert on_time.post(f"/assignment/{content['assignment2']}", {"text": "Again", "new_version": "1"}
                        ).status_code == 303
    _hand_in_at(app, content["assignment2"], "p1", datetime.combine(due + timedelta(days=3), time(9), stockholm))
    queue = teacher.get("/teach/queue").get_data(as_text=True)
    items = {int(n): text for n, text in re.findall(r'/teach/submission/(\d+)\?[^"]*">(.*?)</li>', queue, re.S)}
    assert 'data-late' not in items[on_time_id] and 'data-late="1"' in items[late_id]
