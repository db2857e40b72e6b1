"""The round teacher's grade overview narrowed to the work they look for (waiting, late, reviewed, not handed in),
a saved review named on the next page and marked in the overview, and the course content one click away."""

from __future__ import annotations

import re

from .conftest import name_round_teacher
from .test_delivery import Person, content  # noqa: F401  (the fixture)


def _rows(body: str) -> list[str]:
    return re.findall(r'<tr data-pupil="([^"]+)"', body)


def test_the_grade_overview_is_filtered_and_marks_the_saved_review(app, client, launches, content):  # noqa: F811
    first = Person(client, launches, "p1", locale="en-GB")
    second = Person(client, launches, "p2", locale="en-GB")
    teacher = Person(client, launches, "t1", role="instructor", locale="en-GB")
    name_round_teacher(app, "t1")
    path = f"/assignment/{content['assignment2']}"
    assert first.post(path, {"text": "Verse one"}).status_code == 303
    assert second.post(path, {"text": "Verse two"}).status_code == 303

    grid = teacher.get("/teach/grades").get_data(as_text=True)
    labels = _rows(grid)
    assert len(labels) == 2
    assert 'data-filter="waiting" data-count="2"' in grid and 'data-filter="reviewed" data-count="0"' in grid
    assert 'data-filter="missing" data-count="2"' in grid  # neither handed in the first assignment

    # Review the first pupil's work: the next page (the other pupil's hand-in) names the one saved.
    reviewed = int(re.search(r"/teach/submission/(\d+)", teacher.get("/teach/queue").get_data(as_text=True)).group(1))
    answer = teacher.post(f"/teach/submission/{reviewed}", {"feedback": "Good rhymes", "score": "8"})
    assert answer.status_code == 303 and f"saved={reviewed}" in answer.headers["Location"]
    following = client.get(answer.headers["Location"]).get_data(as_text=True)
    assert f'data-saved="{reviewed}"' in following and "Review saved:" in following
    assert f"/teach/submission/{reviewed}?" in following  # a way back to it

    reviewed_only = teacher.get("/teach/grades?show=reviewed").get_data(as_text=True)
    waiting_only = teacher.get("/teach/grades?show=waiting").get_data(as_text=True)
    assert len(_rows(reviewed_only)) == 1 and len(_rows(waiting_only)) == 1
    assert set(_rows(reviewed_only) + _rows(waiting_only)) == set(labels)
    assert 'data-show="reviewed"' in reviewed_only and 'class="match"' in reviewed_only
    assert "1 pupil has work that is “Reviewed”." in reviewed_only
    assert len(_rows(teacher.get("/teach/grades?show=late").get_data(as_text=True))) == 0
    assert len(_rows(teacher.get("/teach/grades?show=nonsense").get_data(as_text=True))) == 2  # unknown: all

    marked = teacher.get(f"/teach/grades?saved={reviewed}").get_data(as_text=True)
    assert marked.count('data-saved="1"') == 1 and f'id="saved-{reviewed}"' in marked

    # The last review leaves the queue empty: the queue names it.
    other = int(re.search(r"/teach/submission/(\d+)", teacher.get("/teach/queue").get_data(as_text=True)).group(1))
    answer = teacher.post(f"/teach/submission/{other}", {"feedback": "Lovely", "score": "9"})
    assert "/teach/queue" in answer.headers["Location"]
    assert f'data-saved="{other}"' in client.get(answer.headers["Location"]).get_data(as_text=True)


def test_a_saved_mark_names_only_work_the_teacher_may_see(app, client, launches, content):  # noqa: F811
    pupil = Person(client, launches, "p1", locale="en-GB")
    teacher = Person(client, launches, "t1", role="instructor", locale="en-GB")
    name_round_teacher(app, "t1")
    assert pupil.post(f"/assignment/{content['assignment2']}", {"text": "Verse"}).status_code == 303
    stranger = Person(client, launches, "t9", role="instructor", municipality="NO-0301", context="oslo-course",
                      locale="en-GB")
    queue = teacher.get("/teach/queue").get_data(as_text=True)
    submission = int(re.search(r"/teach/submission/(\d+)", queue).group(1))
    page = stranger.get(f"/teach/queue?saved={submission}")
    assert page.status_code == 200, page.status_code  # their own (local) classroom, which holds no such work
    assert 'data-saved=' not in page.get_data(as_text=True)
    assert f'data-saved="{submission}"' in teacher.get(f"/teach/queue?saved={submission}").get_data(as_text=True)


def test_the_course_content_is_one_click_from_the_classroom(app, client, launches, content):  # noqa: F811
    Person(client, launches, "p1", locale="en-GB")
    teacher = Person(client, launches, "t1", role="instructor", locale="en-GB")
    name_round_teacher(app, "t1")
    dashboard = client.get(teacher.home, follow_redirects=True).get_data(as_text=True)
    link = re.search(r'href="(/teach/(?:rounds/\d+/)?content\?lt=[^"]+)"', dashboard)
    assert link, "no course content link on the dashboard"
    page = client.get(link.group(1).replace("&amp;", "&"))
    body = page.get_data(as_text=True)
    assert page.status_code == 200 and 'data-content="GIT-AK-1"' in body
    assert "Lektion 1.1" in body or "Lesson 1.1" in body
    assert 'class="meta module-weeks"' in body and "hand in by" in body
