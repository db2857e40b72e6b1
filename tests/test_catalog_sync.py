"""The national catalog sync: validation with every error listed, atomic and idempotent apply, retirement,
sanitised Markdown, conditional GET with retries, dry run and history."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import requests
import responses
from sqlalchemy import select

from catalog_sync.fetch import FetchError, fetch_feed
from catalog_sync.markdown import render_markdown
from catalog_sync.sync import validate_feed
from lti_tool.db import new_session
from lti_tool.models import Assignment, CatalogSync, Course, CourseModule, CourseRound, Lesson

DATA = Path(__file__).parent / "data" / "catalog"
EXAMPLE = Path(__file__).resolve().parents[2] / "shared" / "catalog" / "example-feed.json"
URL = "https://catalog.example/feed.json"


def small() -> dict:
    return json.loads((DATA / "feed-small.json").read_text("utf-8"))


def write(tmp_path, feed, name="feed.json") -> str:
    path = tmp_path / name
    path.write_text(json.dumps(feed) if not isinstance(feed, str) else feed, "utf-8")
    return str(path)


def sync(runner, source, *extra, code=0):
    result = runner.invoke(args=["catalog", "sync", "--source", source, *extra])
    assert result.exit_code == code, result.output
    return result.output


def snapshot(app) -> str:
    """Everything the catalog holds, to prove a refused feed changed nothing."""
    with new_session(app) as session:
        rows = []
        for model in (Course, CourseRound, CourseModule, Lesson, Assignment):
            for row in session.scalars(select(model)):
                rows.append(repr(sorted((c.name, str(getattr(row, c.key))) for c in model.__table__.columns
                                        if c.name not in ("updated_at",))))
        return "\n".join(sorted(rows))


def test_clean_sync_then_no_changes(app, runner, tmp_path):
    source = write(tmp_path, small())
    assert "added 3, updated 0, retired 0, unchanged 0" in sync(runner, source)
    assert "no changes" in sync(runner, source)
    with new_session(app) as session:
        course = session.get(Course, "GIT-AK-1")
        assert course.status == "active" and course.title["nb"] == "Kurs GIT-AK-1 nb"
        assert {(p.country, str(p.amount), p.currency) for p in course.prices} == {("SE", "1900.00", "SEK"), ("NO", "2100.00", "NOK")}
        assert [r.round_id for r in course.rounds] == ["2027-spring", "2027-autumn"]
        lesson = session.scalars(select(Lesson).where(Lesson.key == "GIT-AK-1-m1-l1")).one()
        assert lesson.video_url == "https://video.example/1"
    listing = runner.invoke(args=["catalog", "list"]).output
    assert "GIT-AK-1\tv1\tactive\tKurs GIT-AK-1\t2027-spring (open, 0/16)" in listing


def test_markdown_is_sanitised(app, runner, tmp_path):
    sync(runner, write(tmp_path, small()))
    with new_session(app) as session:
        html = session.scalars(select(Lesson).where(Lesson.key == "GIT-AK-1-m1-l1")).one().body_html["sv"]
    assert "<h2>Vecka 1</h2>" in html and "<strong>lugnt</strong>" in html
    assert '<a href="https://kulturskola.example/info" rel="noopener noreferrer">Läs mer</a>' in html
    for bad in ("<script", "<img", "onerror=", "<iframe", 'href="javascript'):
        assert bad not in html


@pytest.mark.parametrize("markdown, forbidden", [
    ("<script>alert(1)</script>", "<script"),
    ("<a href='x' onclick='alert(1)'>x</a>", "<a href='x'"),
    ("[x](javascript:alert(1))", 'href="javascript'),
    ("[x](JAVASCRIPT:alert(1))", "href=\"JAVASCRIPT"),
    ("<iframe src='https://evil.example'></iframe>", "<iframe"),
    ("![p](https://x.example/a.png)", "<img"),
])
def test_render_markdown_allow_list(markdown, forbidden):
    assert forbidden not in render_markdown(markdown)


def test_version_bump_replaces_content_and_removed_items_are_kept(app, runner, tmp_path):
    sync(runner, write(tmp_path, small()))
    feed = small()
    course = feed["courses"][0]
    course["version"] = 2
    course["title"]["sv"] = "Akustisk gitarr, ny"
    course["modules"][0]["lessons"] = [{"id": "GIT-AK-1-m1-l9", "title": {"sv": "Ny lektion"},
                                        "body_markdown": {"sv": "Nytt."}}]
    out = sync(runner, write(tmp_path, feed, "v2.json"))
    assert "updated 1" in out
    with new_session(app) as session:
        assert session.get(Course, "GIT-AK-1").title["sv"] == "Akustisk gitarr, ny"
        lessons = {l.key: l.current for l in session.scalars(select(Lesson).join(CourseModule)
                                                               .where(CourseModule.course_code == "GIT-AK-1"))}
        assert lessons == {"GIT-AK-1-m1-l1": False, "GIT-AK-1-m1-l9": True}


def test_same_version_changes_rounds_and_prices_but_not_content(app, runner, tmp_path):
    sync(runner, write(tmp_path, small()))
    feed = small()
    feed["courses"][0]["title"]["sv"] = "Ändrad utan ny version"
    feed["courses"][0]["prices"][0]["amount"] = 2000
    feed["courses"][0]["rounds"][0]["capacity"] = 20
    out = sync(runner, write(tmp_path, feed, "same.json"), "--dry-run")
    assert "updated   GIT-AK-1: price SE 1900.00 SEK -> 2000 SEK; round 2027-spring: capacity" in out
    assert "dry run, nothing changed" in out
    sync(runner, write(tmp_path, feed, "same.json"))
    with new_session(app) as session:
        course = session.get(Course, "GIT-AK-1")
        assert course.title["sv"] == "Kurs GIT-AK-1"
        assert {p.country: str(p.amount) for p in course.prices}["SE"] == "2000.00"
        assert course.rounds[0].capacity == 20


def test_missing_and_retired_courses_are_retired_never_deleted(app, runner, tmp_path):
    sync(runner, write(tmp_path, small()))
    feed = small()
    feed["courses"] = [c for c in feed["courses"] if c["code"] != "PIANO-1"]
    feed["courses"][1]["status"] = "retired"  # DANS-1
    out = sync(runner, write(tmp_path, feed, "fewer.json"))
    assert "retired 2" in out
    with new_session(app) as session:
        assert session.get(Course, "PIANO-1").status == "retired"
        assert session.get(Course, "DANS-1").status == "retired"
        assert session.get(Course, "DANS-1").retired_at is not None
        assert len(session.get(Course, "PIANO-1").rounds) == 2  # kept
    assert "no changes" in sync(runner, write(tmp_path, feed, "fewer.json"))
    assert "updated 2" in sync(runner, write(tmp_path, small(), "back.json"))  # active again
    with new_session(app) as session:
        assert session.get(Course, "PIANO-1").status == "active"


def test_dry_run_changes_nothing(app, runner, tmp_path):
    before = snapshot(app)
    out = sync(runner, write(tmp_path, small()), "--dry-run")
    assert "added     GIT-AK-1" in out and "dry run, nothing changed" in out
    assert snapshot(app) == before


def bad(mutate):
    feed = small()
    mutate(feed)
    return feed


BAD_FEEDS = {
    "wrong format": (bad(lambda f: f.update(format="kulturskola-catalog/2")), "format:"),
    "missing generated_at": (bad(lambda f: f.pop("generated_at")), "'generated_at' is a required property"),
    "bad generated_at": (bad(lambda f: f.update(generated_at="yesterday")), "generated_at:"),
    "bad date": (bad(lambda f: f["courses"][0]["rounds"][0].update(starts_on="2027-02-30")), "courses[0].rounds[0].starts_on"),
    "duplicate code": (bad(lambda f: f["courses"][1].update(code="GIT-AK-1")), "courses[1].code: 'GIT-AK-1' already used"),
    "bad code": (bad(lambda f: f["courses"][0].update(code="git ak")), "courses[0].code"),
    "missing title": (bad(lambda f: f["courses"][0].pop("title")), "courses[0]: 'title' is a required property"),
    "no sv or nb": (bad(lambda f: f["courses"][0].update(title={"en": "Guitar"})), "courses[0].title"),
    "negative price": (bad(lambda f: f["courses"][0]["prices"][0].update(amount=-1)), "courses[0].prices[0].amount"),
    "ends before start": (bad(lambda f: f["courses"][0]["rounds"][0].update(ends_on="2027-01-01")),
                          "courses[0].rounds[0].ends_on: 2027-01-01 is before starts_on"),
    "duplicate round": (bad(lambda f: f["courses"][0]["rounds"][1].update(id="2027-spring")),
                        "courses[0].rounds[1].id: '2027-spring' appears twice"),
    "http video": (bad(lambda f: f["courses"][0]["modules"][0]["lessons"][0].update(video_url="http://video.example/1")),
                   "courses[0].modules[0].lessons[0].video_url"),
    "bad submission": (bad(lambda f: f["courses"][0]["modules"][0]["assignments"][0].update(submission="paper")),
                       "courses[0].modules[0].assignments[0].submission"),
    "zero max score": (bad(lambda f: f["courses"][0]["modules"][0]["assignments"][0].update(max_score=0)),
                       "courses[0].modules[0].assignments[0].max_score"),
    "duplicate lesson": (bad(lambda f: f["courses"][0]["modules"][0]["assignments"][0].update(id="GIT-AK-1-m1-l1")),
                         "appears twice in the course"),
    "version not integer": (bad(lambda f: f["courses"][0].update(version="2")), "courses[0].version"),
    "courses not a list": (bad(lambda f: f.update(courses={"a": 1})), "courses:"),
    "not an object": ([1, 2, 3], "(feed): must be a JSON object"),
    "not json": ("{not json", "is not JSON"),
}


@pytest.mark.parametrize("name", list(BAD_FEEDS))
def test_a_bad_feed_changes_nothing_and_lists_its_errors(app, runner, tmp_path, name):
    sync(runner, write(tmp_path, small(), "good.json"))
    before = snapshot(app)
    feed, expected = BAD_FEEDS[name]
    result = runner.invoke(args=["catalog", "sync", "--source", write(tmp_path, feed, "bad.json")])
    assert result.exit_code == 1
    assert expected in result.output, result.output
    assert snapshot(app) == before
    history = runner.invoke(args=["catalog", "history"]).output
    assert ("rejected" in history) or ("failed" in history)


def test_every_error_is_listed(tmp_path):
    feed = small()
    feed["courses"][0]["prices"][0]["amount"] = -5
    feed["courses"][2]["rounds"][0]["ends_on"] = "2026-01-01"
    feed["courses"][1]["code"] = "GIT-AK-1"
    errors = validate_feed(feed)
    assert len(errors) == 3 and all(": " in e for e in errors)


def test_http_conditional_get_and_not_modified(app, runner, monkeypatch):
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        mock.get(URL, json=small(), headers={"ETag": '"v1"', "Last-Modified": "Fri, 20 Nov 2026 08:00:00 GMT"})
        assert "added 3" in sync(runner, URL)
        mock.replace(responses.GET, URL, status=304)
        before = snapshot(app)
        assert "not modified (304)" in sync(runner, URL)
        assert mock.calls[1].request.headers["If-None-Match"] == '"v1"'
        assert mock.calls[1].request.headers["If-Modified-Since"] == "Fri, 20 Nov 2026 08:00:00 GMT"
        assert snapshot(app) == before
    history = runner.invoke(args=["catalog", "history"]).output.splitlines()
    assert "not_modified" in history[0] and "applied" in history[1]


def test_http_retries_then_succeeds(app, runner, monkeypatch):
    monkeypatch.setattr("catalog_sync.fetch.time.sleep", lambda _s: None)
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        mock.get(URL, status=503)
        mock.get(URL, body=requests.ConnectionError("reset"))
        mock.get(URL, json=small())
        assert "added 3" in sync(runner, URL)
        assert len(mock.calls) == 3


def test_http_timeouts_exhaust_retries_and_change_nothing(app, runner, tmp_path, monkeypatch):
    waits = []
    monkeypatch.setattr("catalog_sync.fetch.time.sleep", waits.append)
    sync(runner, write(tmp_path, small()))
    before = snapshot(app)
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        mock.get(URL, body=requests.Timeout("slow"))
        result = runner.invoke(args=["catalog", "sync", "--source", URL])
        assert len(mock.calls) == 3
    assert result.exit_code == 1 and "Timeout" in result.output
    assert waits == [1.0, 2.0]  # exponential backoff
    assert snapshot(app) == before


def test_http_garbage_is_rejected(app, runner):
    with responses.RequestsMock() as mock:
        mock.get(URL, body="<html>maintenance</html>", status=200)
        result = runner.invoke(args=["catalog", "sync", "--source", URL])
    assert result.exit_code == 1 and "is not JSON" in result.output


def test_fetch_404_is_not_retried():
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        mock.get(URL, status=404)
        with pytest.raises(FetchError, match="HTTP 404"):
            fetch_feed(URL, sleep=lambda _s: None)
        assert len(mock.calls) == 1


def test_history_records_every_run(app, runner, tmp_path):
    sync(runner, write(tmp_path, small()))
    runner.invoke(args=["catalog", "sync", "--source", str(tmp_path / "missing.json")])
    with new_session(app) as session:
        runs = session.scalars(select(CatalogSync).order_by(CatalogSync.id)).all()
        assert [r.result for r in runs] == ["applied", "failed"]
        assert runs[0].added == 3 and runs[0].feed_generated_at == "2026-11-20T08:00:00Z"
        assert "cannot read" in runs[1].errors[0]


@pytest.mark.skipif(not EXAMPLE.exists(), reason="../shared/catalog/example-feed.json not present")
def test_the_national_example_feed_syncs_cleanly(app, runner):
    assert validate_feed(json.loads(EXAMPLE.read_text("utf-8"))) == []
    assert "added 12" in sync(runner, str(EXAMPLE))
    assert "no changes" in sync(runner, str(EXAMPLE))
    with new_session(app) as session:
        assert len(session.scalars(select(Course)).all()) == 12
        assert all(len(c.rounds) == 2 for c in session.scalars(select(Course)))


def test_deep_copy_feed_untouched():
    feed = small()
    copy_before = copy.deepcopy(feed)
    validate_feed(feed)
    assert feed == copy_before
