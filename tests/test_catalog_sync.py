"""The national catalog sync: validation with every error listed (each with its JSON path), atomic and
idempotent apply, retirement that never deletes, sanitised Markdown, conditional GET with retries, dry run,
history. Nothing here reaches the internet: every HTTP call is faked with ``responses``."""

from __future__ import annotations

import ast
import copy
import json
from pathlib import Path

import pytest
import requests
import responses
from jsonschema import Draft202012Validator, FormatChecker
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

import catalog_sync
from catalog_sync.fetch import FetchError, fetch_feed
from catalog_sync.markdown import render_markdown
from catalog_sync.sync import FeedRejectedError, content_hash, sync_catalog, sync_catalog_from_source
from catalog_sync.validate import check_feed, load_schema, validate_feed
from lti_tool.db import SESSIONMAKER_KEY, new_session
from lti_tool.models import (Assignment, CatalogSync, Course, CourseModule, CoursePrice, CourseRound, Lesson)

DATA = Path(__file__).parent / "data" / "catalog"
EXAMPLE = Path(__file__).resolve().parents[2] / "shared" / "catalog" / "example-feed.json"
URL = "https://catalog.example/feed.json"
CATALOG_TABLES = (Course, CoursePrice, CourseRound, CourseModule, Lesson, Assignment)


def small() -> dict:
    return json.loads((DATA / "feed-small.json").read_text("utf-8"))


def write(tmp_path, feed, name="feed.json") -> str:
    path = tmp_path / name
    path.write_text(feed if isinstance(feed, str) else json.dumps(feed, ensure_ascii=False), "utf-8")
    return str(path)


def sync(runner, source, *extra, code=0) -> str:
    result = runner.invoke(args=["catalog", "sync", "--source", source, *extra])
    assert result.exit_code == code, result.output
    return result.output


def snapshot(app) -> str:
    """Every row and column of every catalog table, in primary-key order: a refused feed changes none."""
    with new_session(app) as session:
        lines = []
        for model in CATALOG_TABLES:
            table = model.__table__
            for row in session.execute(select(table).order_by(*table.primary_key.columns)):
                lines.append(f"{table.name} {tuple(row)!r}")
        return "\n".join(lines)


def history_results(app) -> list[str]:
    with new_session(app) as session:
        return list(session.scalars(select(CatalogSync.result).order_by(CatalogSync.id)))


def lesson_row(session, key) -> Lesson:
    return session.scalars(select(Lesson).where(Lesson.key == key)).one()


@pytest.fixture
def no_sleep(monkeypatch):
    """The CLI's retries wait through time.sleep: recorded here instead of waited."""
    waits: list[float] = []
    monkeypatch.setattr("catalog_sync.fetch.time.sleep", waits.append)
    return waits


# -- a clean sync, idempotence ------------------------------------------------------------------------

def test_clean_sync_adds_everything(app, runner, tmp_path):
    out = sync(runner, write(tmp_path, small()))
    assert out.strip() == "added 3, updated 0, retired 0, unchanged 0"
    with new_session(app) as session:
        course = session.get(Course, "GIT-AK-1")
        assert (course.status, course.version, course.subject) == ("active", 1, "music")
        assert course.title == {"sv": "Kurs GIT-AK-1", "nb": "Kurs GIT-AK-1 nb", "en": "Course GIT-AK-1"}
        assert course.content_hash == content_hash(small()["courses"][0]) and course.retired_at is None
        assert {(p.country, str(p.amount), p.currency) for p in course.prices} == {
            ("SE", "1900.00", "SEK"), ("NO", "2100.00", "NOK")}
        assert [(r.round_id, r.status, r.capacity, r.seats_taken) for r in course.rounds] == [
            ("2027-spring", "open", 16, 0), ("2027-autumn", "open", 12, 0)]
        assert [m.key for m in course.modules] == ["GIT-AK-1-m1", "GIT-AK-1-m2"]
        assert [lesson.key for lesson in course.modules[0].lessons] == ["GIT-AK-1-m1-l1", "GIT-AK-1-m1-l2"]
        lesson = lesson_row(session, "GIT-AK-1-m1-l1")
        assert lesson.video_url == "https://video.example/git-ak-1/1-1" and lesson.duration_minutes == 30
        assert set(lesson.body_html) == {"sv", "nb"}
        assert lesson.body_html["nb"] == "<h2>Uke 1</h2>\n<p>Øv <strong>rolig</strong>.</p>\n"
        assignment = session.scalars(select(Assignment).where(Assignment.key == "GIT-AK-1-m2-a1")).one()
        assert (assignment.submission, str(assignment.max_score)) == ("text", "10.00")
        assert assignment.instructions_html["sv"] == "<p>Spela in <em>dig själv</em>.</p>\n"
        assert str(session.get(Course, "DANS-1").prices[0].amount) == "1800.50"
        run = session.scalars(select(CatalogSync)).one()
        assert (run.result, run.added, run.updated, run.retired, run.unchanged) == ("applied", 3, 0, 0, 0)
        assert run.feed_generated_at == "2026-11-20T08:00:00Z" and run.errors == []
    listing = runner.invoke(args=["catalog", "list"]).output
    assert "GIT-AK-1\tv1\tactive\tKurs GIT-AK-1\t2027-spring (open, 0/16), 2027-autumn (open, 0/12)" in listing
    assert "DANS-1\tv1\tactive\tDans 1\t2027-spring (open, 0/16)" in listing and "3 course(s)" in listing


def test_the_same_feed_twice_changes_nothing(app, runner, tmp_path):
    source = write(tmp_path, small())
    sync(runner, source)
    before = snapshot(app)
    assert sync(runner, source).strip() == "no changes (added 0, updated 0, retired 0, unchanged 3)"
    assert snapshot(app) == before
    with new_session(app) as session:  # the function says so too
        report = sync_catalog(session, small())
        assert (report.added, report.updated, report.retired, report.unchanged) == (0, 0, 0, 3)
        assert not session.dirty and not session.new
    assert history_results(app) == ["applied", "no_changes"]


def test_markdown_is_rendered_and_sanitised_in_the_catalog(app, runner, tmp_path):
    sync(runner, write(tmp_path, small()))
    with new_session(app) as session:
        html = lesson_row(session, "GIT-AK-1-m1-l1").body_html["sv"]
        instructions = session.scalars(select(Assignment).where(Assignment.key == "GIT-AK-1-m1-a1")).one() \
            .instructions_html["sv"]
    assert "<h2>Vecka 1</h2>" in html and "<strong>lugnt</strong>" in html and "<em>långsamt</em>" in html
    assert '<a href="https://kulturskola.example/info" rel="noopener noreferrer">Läs mer</a>' in html
    for page in (html, instructions):
        assert "<script" not in page and "<img" not in page and "<iframe" not in page and "<b " not in page
        assert 'href="javascript' not in page.lower() and "onclick=" not in page.split("&lt;")[0]
        # Raw HTML is never markup: what is left of it is escaped text.
        assert all(tag.split(">")[0].split()[0] in ("a", "/a", "h2", "/h2", "p", "/p", "strong", "/strong",
                                                    "em", "/em") for tag in page.split("<")[1:])
    assert "&lt;script&gt;" in html


@pytest.mark.parametrize("markdown, forbidden", [
    ("<script>alert(1)</script>", "<script"),
    ("<img src=x onerror=alert(1)>", "<img"),
    ("<a href='https://x.example' onclick='alert(1)'>x</a>", "<a href"),
    ("[x](javascript:alert(1))", 'href="javascript'),
    ("[x](JAVASCRIPT:alert(1))", 'href="JAVASCRIPT'),
    ("<javascript:alert(1)>", "<a"),
    ("[x](data:text/html;base64,PHNjcmlwdD4=)", "<a"),
    ("[x](/relative/path)", "href="),
    ("<iframe src='https://evil.example'></iframe>", "<iframe"),
    ("![p](https://x.example/a.png)", "<img"),
    ("# Title", "<h1"),
])
def test_render_markdown_allow_list(markdown, forbidden):
    assert forbidden not in render_markdown(markdown)


def test_render_markdown_keeps_the_allowed_markup():
    html = render_markdown("# T\n\n> q\n\n- a\n\n3. b\n\n`c`\n\n---\n\n| h |\n|---|\n| d |\n\n"
                           "[m](mailto:a@b.example) [l](https://x.example \"t\")")
    for part in ("<h2>T</h2>", "<blockquote>", "<ul>", '<ol start="3">', "<code>c</code>", "<hr>", "<table>",
                 "<th>h</th>", "<td>d</td>", '<a href="mailto:a@b.example" rel="noopener noreferrer">m</a>',
                 '<a href="https://x.example" title="t" rel="noopener noreferrer">l</a>'):
        assert part in html, part


# -- versions, operational data, retirement ------------------------------------------------------------

def test_a_higher_version_replaces_content(app, runner, tmp_path):
    sync(runner, write(tmp_path, small()))
    with new_session(app) as session:
        moved_id = lesson_row(session, "GIT-AK-1-m1-l2").id
    feed = small()
    course = feed["courses"][0]
    course["version"] = 2
    course["title"]["sv"] = "Akustisk gitarr, ny"
    m1, m2 = course["modules"]
    m1["lessons"][0]["body_markdown"]["sv"] = "Ny **text**."
    m2["lessons"].append(m1["lessons"].pop(1))  # GIT-AK-1-m1-l2 moves to module 2
    m1["lessons"].append({"id": "GIT-AK-1-m1-l9", "title": {"sv": "Ny lektion"}, "body_markdown": {"sv": "Nytt."}})
    m2["assignments"] = []  # GIT-AK-1-m2-a1 gone
    out = sync(runner, write(tmp_path, feed, "v2.json"))
    assert "added 0, updated 1, retired 0, unchanged 2" in out
    with new_session(app) as session:
        assert session.get(Course, "GIT-AK-1").title["sv"] == "Akustisk gitarr, ny"
        assert session.get(Course, "GIT-AK-1").version == 2
        assert lesson_row(session, "GIT-AK-1-m1-l1").body_html["sv"] == "<p>Ny <strong>text</strong>.</p>\n"
        moved = lesson_row(session, "GIT-AK-1-m1-l2")
        assert moved.id == moved_id and moved.current
        assert session.get(CourseModule, moved.module_id).key == "GIT-AK-1-m2"
        assert lesson_row(session, "GIT-AK-1-m1-l9").current
        gone = session.scalars(select(Assignment).where(Assignment.key == "GIT-AK-1-m2-a1")).one()
        assert gone.current is False  # kept, pupils' submissions refer to it
    assert "no changes" in sync(runner, write(tmp_path, feed, "v2.json"))


def test_a_removed_module_is_kept_but_not_current(app, runner, tmp_path):
    sync(runner, write(tmp_path, small()))
    feed = small()
    feed["courses"][0]["version"] = 2
    feed["courses"][0]["modules"].pop()
    out = sync(runner, write(tmp_path, feed, "v2.json"), "--dry-run")
    assert "1 module(s) no longer current" in out and "1 lesson(s) no longer current" in out
    sync(runner, write(tmp_path, feed, "v2.json"))
    with new_session(app) as session:
        module = session.scalars(select(CourseModule).where(CourseModule.key == "GIT-AK-1-m2")).one()
        assert module.current is False
        assert [lesson.current for lesson in module.lessons] == [False]
        assert [a.current for a in module.assignments] == [False]


def test_same_version_updates_rounds_and_prices_but_keeps_content(app, runner, tmp_path):
    sync(runner, write(tmp_path, small()))
    feed = small()
    feed["courses"][0]["title"]["sv"] = "Ändrad utan ny version"
    feed["courses"][0]["modules"][0]["lessons"][0]["body_markdown"]["sv"] = "Ändrad."
    feed["courses"][0]["prices"] = [{"country": "SE", "amount": 2000, "currency": "SEK"}]
    feed["courses"][0]["rounds"][0]["capacity"] = 20
    out = sync(runner, write(tmp_path, feed, "same.json"), "--dry-run")
    assert ("updated   GIT-AK-1: price NO removed; price SE 1900.00 SEK -> 2000 SEK; round 2027-spring: capacity"
            in out), out
    assert "dry run, nothing changed: added 0, updated 1" in out
    assert "updated 1" in sync(runner, write(tmp_path, feed, "same.json"))
    with new_session(app) as session:
        course = session.get(Course, "GIT-AK-1")
        assert course.title["sv"] == "Kurs GIT-AK-1" and course.version == 1
        assert "Vecka 1" in lesson_row(session, "GIT-AK-1-m1-l1").body_html["sv"]
        assert {p.country: str(p.amount) for p in course.prices} == {"SE": "2000.00"}
        assert course.rounds[0].capacity == 20
    # Content alone differing at the same version: counted as updated, content kept, then stable.
    feed["courses"][1]["title"]["sv"] = "Annan titel"
    out = sync(runner, write(tmp_path, feed, "same2.json"), "--dry-run")
    assert "updated   PIANO-1: content differs at the same version 1: kept" in out
    assert "updated 1" in sync(runner, write(tmp_path, feed, "same2.json"))
    assert "no changes" in sync(runner, write(tmp_path, feed, "same2.json"))


def test_missing_and_retired_courses_are_retired_never_deleted(app, runner, tmp_path):
    sync(runner, write(tmp_path, small()))
    feed = small()
    feed["courses"] = [c for c in feed["courses"] if c["code"] != "PIANO-1"]
    feed["courses"][1]["status"] = "retired"  # DANS-1
    out = sync(runner, write(tmp_path, feed, "fewer.json"), "--dry-run")
    assert "retired   DANS-1: retired in the feed" in out and "retired   PIANO-1: missing from the feed" in out
    assert "added 0, updated 0, retired 2, unchanged 1" in sync(runner, write(tmp_path, feed, "fewer.json"))
    with new_session(app) as session:
        for code in ("PIANO-1", "DANS-1"):
            course = session.get(Course, code)
            assert course.status == "retired" and course.retired_at is not None
            assert course.rounds and all(r.status == "open" for r in course.rounds)  # kept as they were
            assert course.modules[0].current and course.prices
    assert "no changes" in sync(runner, write(tmp_path, feed, "fewer.json"))
    assert "updated 2" in sync(runner, write(tmp_path, small(), "back.json"))  # active again
    with new_session(app) as session:
        assert {c.status for c in session.scalars(select(Course))} == {"active"}
        assert session.get(Course, "PIANO-1").retired_at is None


def test_rounds_gone_from_the_feed_are_retired_unless_they_have_seats(app, runner, tmp_path):
    sync(runner, write(tmp_path, small()))
    with new_session(app) as session:
        session.scalars(select(CourseRound).where(CourseRound.course_code == "GIT-AK-1",
                                                  CourseRound.round_id == "2027-spring")).one().seats_taken = 3
        session.commit()
    feed = small()
    feed["courses"][0]["rounds"] = [dict(feed["courses"][0]["rounds"][1], id="2028-spring")]
    out = sync(runner, write(tmp_path, feed, "rounds.json"), "--dry-run")
    assert ("round 2028-spring added; round 2027-spring gone from the feed: kept as open (3 seat(s)); "
            "round 2027-autumn retired") in out
    sync(runner, write(tmp_path, feed, "rounds.json"))
    with new_session(app) as session:
        rounds = {r.round_id: r.status for r in session.get(Course, "GIT-AK-1").rounds}
    assert rounds == {"2027-spring": "open", "2027-autumn": "retired", "2028-spring": "open"}
    sync(runner, write(tmp_path, small(), "back.json"))
    with new_session(app) as session:
        assert {r.round_id: r.status for r in session.get(Course, "GIT-AK-1").rounds}["2027-autumn"] == "open"


def test_a_retired_course_never_synced_is_skipped(app, runner, tmp_path):
    feed = small()
    feed["courses"][2]["status"] = "retired"
    assert "added 2, updated 0, retired 0, unchanged 1" in sync(runner, write(tmp_path, feed))
    with new_session(app) as session:
        assert session.get(Course, "DANS-1") is None


def test_dry_run_changes_nothing(app, runner, tmp_path):
    before = snapshot(app)
    out = sync(runner, write(tmp_path, small()), "--dry-run")
    assert "added     GIT-AK-1: version 1, 2 round(s), 2 module(s)" in out
    assert out.strip().endswith("dry run, nothing changed: added 3, updated 0, retired 0, unchanged 0")
    assert snapshot(app) == before
    assert history_results(app) == ["dry_run"]


def test_sync_catalog_dry_run_keeps_the_callers_transaction(app):
    with new_session(app) as session:
        session.add(Course(code="MINE-1", version=1, title={"sv": "Min"}, content_hash="0" * 64))
        report = sync_catalog(session, small(), dry_run=True)
        assert report.result == "dry_run" and report.added == 3 and report.retired == 1  # MINE-1 would go
        assert session.get(Course, "GIT-AK-1") is None and session.get(Course, "MINE-1").status == "active"
        session.commit()
    with new_session(app) as session:
        assert [c.code for c in session.scalars(select(Course))] == ["MINE-1"]


def test_sync_catalog_refuses_an_invalid_feed(app):
    feed = small()
    feed["courses"][0]["rounds"][0]["ends_on"] = "2020-01-01"
    with new_session(app) as session, pytest.raises(FeedRejectedError) as caught:
        sync_catalog(session, feed)
    assert [str(i) for i in caught.value.issues] == [
        "courses[0].rounds[0].ends_on: 2020-01-01 is before starts_on 2027-01-18"]


# -- every way a feed can be wrong ----------------------------------------------------------------------

def bad(mutate):
    feed = small()
    mutate(feed)
    return feed


BAD_FEEDS = {
    "wrong format": (bad(lambda f: f.update(format="kulturskola-catalog/2")), "format: must be"),
    "missing format": (bad(lambda f: f.pop("format")), "format: is required"),
    "missing generated_at": (bad(lambda f: f.pop("generated_at")), "generated_at: is required"),
    "generated_at not a date-time": (bad(lambda f: f.update(generated_at="yesterday")), "generated_at: must be"),
    "generated_at impossible": (bad(lambda f: f.update(generated_at="2026-11-31T08:00:00Z")), "generated_at:"),
    "generated_at not UTC": (bad(lambda f: f.update(generated_at="2026-11-20T08:00:00+01:00")), "generated_at:"),
    "missing courses": (bad(lambda f: f.pop("courses")), "courses: is required"),
    "courses not a list": (bad(lambda f: f.update(courses={"a": 1})), "courses: must be an array"),
    "course not an object": (bad(lambda f: f["courses"].append("PIANO-2")), "courses[3]: must be an object"),
    "bad date": (bad(lambda f: f["courses"][0]["rounds"][0].update(starts_on="2027-02-30")),
                 "courses[0].rounds[0].starts_on: must be an ISO date"),
    "date without dashes": (bad(lambda f: f["courses"][0]["rounds"][1].update(enrolment_closes_on="20270813")),
                            "courses[0].rounds[1].enrolment_closes_on: must be an ISO date"),
    "duplicate course code": (bad(lambda f: f["courses"][2].update(code="GIT-AK-1")),
                              "courses[2].code: course code 'GIT-AK-1' appears twice (first at courses[0].code)"),
    "bad code pattern": (bad(lambda f: f["courses"][0].update(code="git ak")), "courses[0].code: must be 2 to 40"),
    "code too short": (bad(lambda f: f["courses"][1].update(code="P")), "courses[1].code:"),
    "missing code": (bad(lambda f: f["courses"][1].pop("code")), "courses[1].code: is required"),
    "missing version": (bad(lambda f: f["courses"][1].pop("version")), "courses[1].version: is required"),
    "version not an integer": (bad(lambda f: f["courses"][0].update(version="2")),
                               "courses[0].version: must be an integer"),
    "bad status": (bad(lambda f: f["courses"][0].update(status="paused")), "courses[0].status:"),
    "bad subject": (bad(lambda f: f["courses"][0].update(subject="sports")), "courses[0].subject:"),
    "missing title": (bad(lambda f: f["courses"][0].pop("title")), "courses[0].title: is required"),
    "LocalText with neither sv nor nb": (bad(lambda f: f["courses"][0].update(title={"en": "Guitar"})),
                                         'courses[0].title: must be a LocalText: an object with "sv" or "nb"'),
    "LocalText with another language": (bad(lambda f: f["courses"][0]["summary"].update(fi="Kitara")),
                                        "courses[0].summary.fi: not allowed here"),
    "LocalText value not a string": (bad(lambda f: f["courses"][0]["modules"][0]["title"].update(sv=1)),
                                     "courses[0].modules[0].title.sv: must be a string"),
    "negative price": (bad(lambda f: f["courses"][0]["prices"][0].update(amount=-1)),
                       "courses[0].prices[0].amount: must be a number >= 0"),
    "bad price country": (bad(lambda f: f["courses"][0]["prices"][0].update(country="DK")),
                          "courses[0].prices[0].country:"),
    "price missing currency": (bad(lambda f: f["courses"][0]["prices"][1].pop("currency")),
                               "courses[0].prices[1].currency: is required"),
    "two prices for a country": (bad(lambda f: f["courses"][0]["prices"][1].update(country="SE", currency="SEK")),
                                 "courses[0].prices[1].country: price country 'SE' appears twice"),
    "starts_on after ends_on": (bad(lambda f: f["courses"][0]["rounds"][0].update(ends_on="2027-01-01")),
                                "courses[0].rounds[0].ends_on: 2027-01-01 is before starts_on 2027-01-18"),
    "duplicate round id": (bad(lambda f: f["courses"][0]["rounds"][1].update(id="2027-spring")),
                           "courses[0].rounds[1].id: round id '2027-spring' appears twice"),
    "round missing capacity": (bad(lambda f: f["courses"][1]["rounds"][0].pop("capacity")),
                               "courses[1].rounds[0].capacity: is required"),
    "negative min_participants": (bad(lambda f: f["courses"][1]["rounds"][0].update(min_participants=-1)),
                                  "courses[1].rounds[0].min_participants:"),
    "non-https video_url": (bad(lambda f: f["courses"][0]["modules"][0]["lessons"][0].update(
        video_url="http://video.example/1")), "courses[0].modules[0].lessons[0].video_url: must be an https:// URL"),
    "javascript video_url": (bad(lambda f: f["courses"][0]["modules"][0]["lessons"][0].update(
        video_url="javascript:alert(1)")), "courses[0].modules[0].lessons[0].video_url:"),
    "lesson missing body": (bad(lambda f: f["courses"][0]["modules"][0]["lessons"][1].pop("body_markdown")),
                            "courses[0].modules[0].lessons[1].body_markdown: is required"),
    "bad submission type": (bad(lambda f: f["courses"][0]["modules"][0]["assignments"][0].update(submission="paper")),
                            "courses[0].modules[0].assignments[0].submission: must be"),
    "max_score 0": (bad(lambda f: f["courses"][0]["modules"][0]["assignments"][0].update(max_score=0)),
                    "courses[0].modules[0].assignments[0].max_score: must be a number > 0"),
    "duplicate module id": (bad(lambda f: f["courses"][0]["modules"][1].update(id="GIT-AK-1-m1")),
                            "courses[0].modules[1].id: module id 'GIT-AK-1-m1' appears twice"),
    "duplicate lesson id": (bad(lambda f: f["courses"][0]["modules"][1]["lessons"][0].update(id="GIT-AK-1-m1-l1")),
                            "courses[0].modules[1].lessons[0].id: lesson id 'GIT-AK-1-m1-l1' appears twice"),
    "duplicate assignment id": (bad(lambda f: f["courses"][0]["modules"][1]["assignments"][0].update(
        id="GIT-AK-1-m1-a1")), "courses[0].modules[1].assignments[0].id: assignment id 'GIT-AK-1-m1-a1' appears twice"),
    "not an object": ([small()], "(feed): must be a JSON object, not an array"),
    "not JSON at all": ('{"format": "kulturskola-catalog/1", ', "(feed): not JSON"),
    "empty file": ("", "(feed): not JSON"),
}


def test_every_bad_feed_is_rejected_whole_and_changes_nothing(app, runner, tmp_path):
    """One app for all the cases (fast): each bad feed names the value at fault and changes no byte of the
    catalog; each run is in the history as rejected."""
    sync(runner, write(tmp_path, small(), "good.json"))
    before = snapshot(app)
    for name, (feed, expected) in BAD_FEEDS.items():
        result = runner.invoke(args=["catalog", "sync", "--source", write(tmp_path, feed, "bad.json")])
        assert result.exit_code == 1, name
        assert expected in result.stderr, f"{name}: {expected!r} not in\n{result.stderr}"
        assert "rejected:" in result.stderr and "the catalog is unchanged" in result.stderr, name
        assert snapshot(app) == before, name
        with new_session(app) as session:
            run = session.scalars(select(CatalogSync).order_by(CatalogSync.id.desc()).limit(1)).one()
            assert run.result == "rejected" and (run.added, run.updated, run.retired) == (0, 0, 0), name
            assert any(expected in error for error in run.errors), name
    assert history_results(app) == ["applied"] + ["rejected"] * len(BAD_FEEDS)


def test_every_error_is_listed(app, runner, tmp_path):
    feed = small()
    feed["courses"][0]["prices"][0]["amount"] = -5
    feed["courses"][2]["rounds"][0]["ends_on"] = "2026-01-01"
    feed["courses"][1]["code"] = "GIT-AK-1"
    feed["courses"][1]["modules"][0]["assignments"][0]["max_score"] = 0
    feed.pop("generated_at")
    expected = ["courses[0].prices[0].amount: must be a number >= 0 (below 10 000 000 000)",
                "courses[1].code: course code 'GIT-AK-1' appears twice (first at courses[0].code)",
                "courses[1].modules[0].assignments[0].max_score: must be a number > 0 (below 100 000 000)",
                "courses[2].rounds[0].ends_on: 2026-01-01 is before starts_on 2027-01-18",
                "generated_at: is required"]
    assert validate_feed(feed) == expected
    result = runner.invoke(args=["catalog", "sync", "--source", write(tmp_path, feed)])
    assert result.exit_code == 1 and result.stderr.splitlines()[:5] == expected
    assert "rejected: 5 error(s), the catalog is unchanged" in result.stderr


def test_validation_never_changes_the_feed():
    feed = bad(lambda f: f["courses"][0].update(code="x"))
    before = copy.deepcopy(feed)
    assert check_feed(feed) and feed == before


def test_the_schema_is_valid_and_formats_are_checked():
    schema = load_schema()
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert {"date", "date-time"} <= set(FormatChecker().checkers)  # rfc3339-validator is installed
    validator = Draft202012Validator({"format": "date-time"}, format_checker=FormatChecker())
    assert not validator.is_valid("2026-11-20 08:00") and validator.is_valid("2026-11-20T08:00:00Z")


# -- the source: files and HTTP --------------------------------------------------------------------------

def test_a_missing_file_fails_and_changes_nothing(app, runner, tmp_path):
    result = runner.invoke(args=["catalog", "sync", "--source", str(tmp_path / "missing.json")])
    assert result.exit_code == 1 and "cannot read" in result.stderr and "failed: 1 error(s)" in result.stderr
    assert history_results(app) == ["failed"] and snapshot(app) == ""


def test_http_200_then_304_not_modified(app, runner):
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        mock.get(URL, json=small(), headers={"ETag": '"v1"', "Last-Modified": "Fri, 20 Nov 2026 08:00:00 GMT"})
        mock.get(URL, status=304)
        assert "added 3" in sync(runner, URL)
        before = snapshot(app)
        assert sync(runner, URL).strip() == "not modified (304): nothing to do"
        first, second = (call.request.headers for call in mock.calls)
    assert "If-None-Match" not in first and "If-Modified-Since" not in first
    assert second["If-None-Match"] == '"v1"' and second["If-Modified-Since"] == "Fri, 20 Nov 2026 08:00:00 GMT"
    assert snapshot(app) == before
    assert history_results(app) == ["applied", "not_modified"]
    with new_session(app) as session:  # the validators are kept for the next run
        assert session.scalars(select(CatalogSync.etag).order_by(CatalogSync.id)).all() == ['"v1"', '"v1"']


def test_http_validators_are_not_sent_after_a_sync_from_elsewhere(app, runner, tmp_path):
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        mock.get(URL, json=small(), headers={"ETag": '"v1"'})
        sync(runner, URL)
        feed = small()
        feed["courses"].pop()
        sync(runner, write(tmp_path, feed))  # the catalog is no longer what URL served
        mock.get(URL, json=small(), headers={"ETag": '"v1"'})
        assert "updated 1" in sync(runner, URL)
        assert "If-None-Match" not in mock.calls[1].request.headers


def test_http_dry_run_sends_no_validators(app, runner):
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        mock.get(URL, json=small(), headers={"ETag": '"v1"'})
        mock.get(URL, json=small(), headers={"ETag": '"v1"'})
        sync(runner, URL)
        assert "no changes" in sync(runner, URL, "--dry-run")
        assert "If-None-Match" not in mock.calls[1].request.headers


def test_http_500_then_200_succeeds_after_a_retry(app, runner, no_sleep):
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        mock.get(URL, status=500)
        mock.get(URL, json=small())
        assert "added 3" in sync(runner, URL)
        assert len(mock.calls) == 2
    assert no_sleep == [1.0]
    assert history_results(app) == ["applied"]


def test_http_connection_error_then_200_succeeds(app, config, app_factory):
    app = app_factory({**config, "HTTP_TIMEOUT_SECONDS": 3})
    waits: list[float] = []
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        mock.get(URL, body=requests.ConnectionError("reset"))
        mock.get(URL, status=503)
        mock.get(URL, json=small())
        report = sync_catalog_from_source(app.extensions[SESSIONMAKER_KEY], URL, False, app.config,
                                          sleep=waits.append)
        assert [call.request.req_kwargs["timeout"] for call in mock.calls] == [3.0, 3.0, 3.0]
    assert (report.result, report.added) == ("applied", 3) and waits == [1.0, 2.0]


def test_http_timeouts_are_retried_then_fail_and_change_nothing(app, runner, tmp_path, no_sleep):
    sync(runner, write(tmp_path, small()))
    before = snapshot(app)
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        mock.get(URL, body=requests.Timeout("read timed out"))
        result = runner.invoke(args=["catalog", "sync", "--source", URL])
        assert len(mock.calls) == 3
    assert result.exit_code == 1 and "Timeout: read timed out (after 3 attempts)" in result.stderr
    assert no_sleep == [1.0, 2.0]  # backoff
    assert snapshot(app) == before
    assert history_results(app) == ["applied", "failed"]


def test_http_connection_errors_are_retried_then_fail(app, runner, no_sleep):
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        mock.get(URL, body=requests.ConnectionError("refused"))
        result = runner.invoke(args=["catalog", "sync", "--source", URL])
        assert len(mock.calls) == 3
    assert result.exit_code == 1 and "ConnectionError: refused" in result.stderr
    assert snapshot(app) == "" and history_results(app) == ["failed"]


def test_http_404_is_not_retried():
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        mock.get(URL, status=404)
        with pytest.raises(FetchError, match="HTTP 404 Not Found"):
            fetch_feed(URL, sleep=lambda _seconds: pytest.fail("no retry for a 404"))
        assert len(mock.calls) == 1


def test_http_not_json_is_rejected(app, runner, tmp_path):
    sync(runner, write(tmp_path, small()))
    before = snapshot(app)
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        mock.get(URL, body="<html>maintenance</html>", status=200, content_type="text/html")
        result = runner.invoke(args=["catalog", "sync", "--source", URL])
    assert result.exit_code == 1 and "(feed): not JSON" in result.stderr
    assert snapshot(app) == before and history_results(app) == ["applied", "rejected"]


def test_a_database_error_while_applying_is_recorded_and_changes_nothing(app, runner, tmp_path, monkeypatch):
    sync(runner, write(tmp_path, small()))
    before = snapshot(app)

    def broken(*_args):
        raise OperationalError("UPDATE course_rounds", {}, Exception("database is locked"))

    monkeypatch.setattr("catalog_sync.sync._operational", broken)
    feed = small()
    feed["courses"][0]["prices"][0]["amount"] = 1
    result = runner.invoke(args=["catalog", "sync", "--source", write(tmp_path, feed, "changed.json")])
    assert result.exit_code == 1 and "database: OperationalError" in result.stderr
    assert snapshot(app) == before and history_results(app) == ["applied", "failed"]


def test_history_lists_the_runs(app, runner, tmp_path, no_sleep):
    assert "no syncs yet" in runner.invoke(args=["catalog", "history"]).output
    sync(runner, write(tmp_path, small()))
    sync(runner, write(tmp_path, bad(lambda f: f.pop("generated_at")), "bad.json"), code=1)
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        mock.get(URL, status=503)
        sync(runner, URL, code=1)
    lines = runner.invoke(args=["catalog", "history"]).output.splitlines()
    assert lines[0].split() == ["when", "(UTC)", "result", "add", "upd", "ret", "same", "source"]
    assert lines[1].split()[2:] == ["failed", "0", "0", "0", "0", URL]
    assert lines[2].strip() == f"{URL}: HTTP 503 Service Unavailable (after 3 attempts)"
    assert lines[3].split()[2:7] == ["rejected", "0", "0", "0", "0"]
    assert lines[4].strip() == "generated_at: is required"
    assert lines[5].split()[2:7] == ["applied", "3", "0", "0", "0"]
    assert len(runner.invoke(args=["catalog", "history", "--limit", "1"]).output.splitlines()) == 3


def test_the_national_example_feed_syncs_cleanly(app, runner):
    if not EXAMPLE.exists():
        pytest.skip("../shared/catalog/example-feed.json is not there")
    assert validate_feed(json.loads(EXAMPLE.read_text("utf-8"))) == []
    assert "added 12, updated 0, retired 0, unchanged 0" in sync(runner, str(EXAMPLE))
    assert "no changes" in sync(runner, str(EXAMPLE))
    with new_session(app) as session:
        courses = session.scalars(select(Course)).all()
        assert len(courses) == 12 and all(c.status == "active" and len(c.rounds) == 2 for c in courses)
        assert all(len(c.modules) == 3 for c in courses)


def test_catalog_sync_never_imports_the_web_layer():
    for path in Path(catalog_sync.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            assert not any(n == "lti_tool.web" or n.startswith("lti_tool.web.") or n == "flask" for n in names), path


def test_a_feed_larger_than_the_cap_is_not_read(tmp_path):
    import responses as fake

    from catalog_sync.fetch import FetchError, fetch_feed

    big = tmp_path / "big.json"
    big.write_text('{"x": "' + "a" * 2000 + '"}', "utf-8")
    with pytest.raises(FetchError, match="larger than 1000 bytes"):
        fetch_feed(str(big), max_bytes=1000)
    with fake.RequestsMock() as mock:
        mock.get("https://catalog.example/big.json", body=big.read_text("utf-8"))
        with pytest.raises(FetchError, match="larger than 1000 bytes"):
            fetch_feed("https://catalog.example/big.json", max_bytes=1000, sleep=lambda _s: None)
    assert fetch_feed(str(big), max_bytes=5000).data == {"x": "a" * 2000}
