"""The demo catalog looks like the real one (courses with real lessons in sv, nb, nn and en, assignments that ask
for what they accept) and its example video lesson plays from the tool itself."""

from __future__ import annotations

import json
import re
from datetime import date
from importlib import resources
from pathlib import Path

import pytest
from sqlalchemy import select

from lti_tool.cli import demo_feed
from lti_tool.db import new_session
from lti_tool.models import Lesson
from lti_tool.web.media import own_static_file

from .test_delivery import Person, content  # noqa: F401  (the fixture)

LANGUAGES = ("sv", "nb", "nn", "en")
VIDEO = Path(__file__).resolve().parent.parent / "lti_tool" / "static" / "demo" / "strumming.webm"


def _catalog() -> dict:
    return json.loads((resources.files("lti_tool") / "demo_data" / "catalog.json").read_text("utf-8"))


def test_the_demo_catalog_validates_and_keeps_the_guitar_course_the_tests_use():
    from catalog_sync.validate import validate_feed

    feed = _catalog()
    assert validate_feed(feed) == [] and validate_feed(demo_feed(date(2027, 1, 4), "http://127.0.0.1:5001")) == []
    courses = {c["code"]: c for c in feed["courses"]}
    assert {"GIT-AK-1", "LAT-1", "DANS-1", "FILM-1", "TECK-1"} <= set(courses)
    guitar = courses["GIT-AK-1"]
    assert [r["id"] for r in guitar["rounds"]] == ["round-1", "round-2"]
    assert [m["id"] for m in guitar["modules"]][:2] == ["GIT-AK-1-m1", "GIT-AK-1-m2"]
    assert [(a["id"], a["submission"]) for m in guitar["modules"] for a in m["assignments"]] == \
        [("GIT-AK-1-m1-a1", "file"), ("GIT-AK-1-m2-a1", "text")]


def test_every_text_is_real_teaching_in_four_languages():
    placeholders = re.compile(r"\b(Lesson|Lektion|Leksjon|Module|Modul) \d+(\.\d+)?$|Read the instructions? calmly|"
                              r"Läs instruktionen|Les instruksjonen")
    for course in _catalog()["courses"]:
        texts = [course["title"], course["summary"]]
        for module in course["modules"]:
            texts.append(module["title"])
            for lesson in module["lessons"]:
                texts += [lesson["title"], lesson["body_markdown"]]
                assert len(lesson["body_markdown"]["sv"]) > 200, lesson["id"]
            for assignment in module["assignments"]:
                texts += [assignment["title"], assignment["instructions_markdown"]]
        for text in texts:
            assert set(text) == set(LANGUAGES), (course["code"], text)
            assert all(text[lang].strip() and not placeholders.search(text[lang]) for lang in LANGUAGES), text


def test_assignments_ask_for_what_they_accept():
    asks = {"file": {"en": ("record", "film", "photo", "video")}, "text": {"en": ("write",)}}
    says = {"file": {"sv": "som en fil", "nb": "som en fil", "nn": "som ei fil", "en": "as a file"},
            "text": {"sv": "direkt i rutan", "nb": "rett i feltet", "nn": "rett i feltet", "en": "into the box"}}
    kinds = set()
    for course in _catalog()["courses"]:
        for module in course["modules"]:
            for assignment in module["assignments"]:
                kind, text = assignment["submission"], assignment["instructions_markdown"]
                kinds.add(kind)
                assert any(word in text["en"].lower() for word in asks[kind]["en"]), assignment["id"]
                assert all(says[kind][lang] in text[lang] for lang in LANGUAGES), assignment["id"]
    assert kinds == {"file", "text"}


def test_the_example_video_is_the_tools_own_file_named_at_its_host():
    data = VIDEO.read_bytes()
    assert data[:4] == b"\x1a\x45\xdf\xa3" and 20_000 < len(data) < 300_000  # a WebM (EBML), small
    videos = [lesson["video_url"] for course in demo_feed(date(2027, 1, 4), "http://127.0.0.1:5001")["courses"]
              for module in course["modules"] for lesson in module["lessons"] if lesson.get("video_url")]
    assert videos == ["https://127.0.0.1:5001/static/demo/strumming.webm"]


@pytest.mark.parametrize("url, base, development, expected", [
    ("https://127.0.0.1:5000/static/demo/strumming.webm", "http://127.0.0.1:5000", True, "demo/strumming.webm"),
    # Production: only the tool's own https origin; an https URL at an http base is not the tool's.
    ("https://127.0.0.1:5000/static/demo/strumming.webm", "http://127.0.0.1:5000", False, None),
    ("https://tool.example/static/demo/strumming.webm", "https://tool.example", False, "demo/strumming.webm"),
    ("https://tool.example/lti/static/a.mp4", "https://tool.example/lti", False, "a.mp4"),
    ("https://tool.example.attacker.example/static/demo/strumming.webm", "https://tool.example", False, None),
    ("https://tool.example:8443/static/demo/strumming.webm", "https://tool.example", False, None),
    ("http://127.0.0.1:5000/static/demo/strumming.webm", "https://127.0.0.1:5000", True, None),
    ("https://tool.example/static/app.css", "https://tool.example", False, None),
    ("https://tool.example/files/1.webm", "https://tool.example", False, None),
    ("https://tool.example/static/demo/strumming.webm?x=1", "https://tool.example", False, None),
    ("https://media.kulturskola.example/git/m1.mp4", "https://tool.example", False, None),
    (None, "https://tool.example", True, None),
])
def test_own_static_video(url, base, development, expected):
    assert own_static_file(url, base, development=development) == expected


def test_the_lesson_plays_the_tools_own_video_and_links_any_other(app, client, launches, content):  # noqa: F811
    with new_session(app) as session:
        lesson = session.get(Lesson, content["lesson1"])
        lesson.video_url = "https://localhost/static/demo/strumming.webm"  # the test app's BASE_URL is http://localhost
        session.commit()
    pupil = Person(client, launches, "p1")
    page = pupil.get(f"/lesson/{content['lesson1']}")
    body = page.get_data(as_text=True)
    assert re.search(r'<video class="media" controls preload="metadata" src="/static/demo/strumming.webm"', body)
    assert "media-src 'self'" in page.headers["Content-Security-Policy"]
    served = client.get("/static/demo/strumming.webm")
    assert served.status_code == 200 and served.mimetype == "video/webm" and served.data == VIDEO.read_bytes()
    served.close()

    with new_session(app) as session:  # a file the tool does not have: a link, as for any other video
        session.scalars(select(Lesson).where(Lesson.id == content["lesson1"])).one().video_url = \
            "https://localhost/static/demo/missing.webm"
        session.commit()
    body = pupil.get(f"/lesson/{content['lesson1']}").get_data(as_text=True)
    assert "<video" not in body and 'href="https://localhost/static/demo/missing.webm" target="_blank"' in body
