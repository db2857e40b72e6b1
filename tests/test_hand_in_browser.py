"""Hand-ins in a real browser (Playwright driving Debian's Chromium), the tool on another site than the sandbox
platform (the platform on ``localhost``, the tool on ``127.0.0.1``).

Drafts kept across an ended session: inside the platform's frame, what the pupil types in a hand-in or a message
is kept in the browser as they type; after the launch token has expired and the course is opened again from the
platform, it is back in the field; once handed in (or sent), it is gone.

A new version after feedback: the pupil's and the teacher's pages with the earlier version and its feedback (axe
finds nothing, nothing scrolls sideways at phone width, screenshots saved).
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import threading

import pytest

from .test_browser import ARGS, SHOTS, WCAG, check_page

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="Debian's chromium is not installed")

DRAFTS = "Object.keys(localStorage).filter((k) => k.startsWith('kulturskola.draft.'))"


@pytest.fixture
def site(config, app_factory):
    """The tool and the sandbox platform on two sites, served by one threaded server: (app, platform URL)."""
    from werkzeug.serving import make_server

    from lti_tool.cli import prepare_demo
    from lti_tool.db import new_session
    from lti_tool.services import seats

    from .catalog_factory import add_content, add_course
    from .conftest import name_round_teacher

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    app = app_factory({**config, "BASE_URL": f"http://127.0.0.1:{port}",
                       "SANDBOX_BASE_URL": f"http://localhost:{port}"})
    prepare_demo(app, catalog=False)
    with new_session(app) as session:
        add_course(session)
        add_content(session)
        seats.set_order(session, "SE-1490", "GIT-AK-1", "now", 5)
        session.commit()
    name_round_teacher(app, "laerer-1", name="Lärare Lund")
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield app, f"http://localhost:{port}"
    server.shutdown()
    thread.join(5)


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        # Debian's Chromium blocks third-party cookies, and with them every kind of site data of a frame from
        # another site (localStorage, IndexedDB, ...): "allowed" is the browser most pupils have (Chrome outside
        # incognito; Firefox and Safari keep a frame's storage apart per site instead of refusing it).
        launched = {name: playwright.chromium.launch(executable_path=CHROMIUM, args=args)
                    for name, args in (("allowed", [*ARGS, "--disable-features=BlockThirdPartyCookies"]),
                                       ("blocked", ARGS))}
        yield launched
        for running in launched.values():
            running.close()


@pytest.fixture
def page(browser):
    """A pupil's browser whose frames may keep site data."""
    return browser["allowed"].new_context(viewport={"width": 1280, "height": 900}, locale="sv-SE").new_page()


def open_assignment(page, platform: str, user: str):
    """Launch from the platform's page (the tool in its frame) and open the text assignment: the frame."""
    page.goto(platform + "/sandbox/")
    page.select_option("#deployment", value="sandbox-SE-1490|")
    page.check("input[name=role][value=learner]")
    page.fill("#user", user)
    page.select_option("#locale", value="sv-SE")
    page.select_option("#course", value="GIT-AK-1")
    page.select_option("#storage", value="parent")
    page.click("button[type=submit]")
    frame = page.frame(name="tool")
    frame.wait_for_selector("main[data-role]")
    frame.get_by_role("link", name="Uppgift 2").first.click()
    frame.wait_for_selector("main[data-assignment='GIT-AK-1-m2-a1']")
    frame.wait_for_load_state("load")  # the page's scripts have run
    return frame


def test_a_typed_answer_survives_an_expired_session_and_goes_once_handed_in(site, page):
    from axe_playwright_python.sync_playwright import Axe

    app, platform = site
    frame = open_assignment(page, platform, "elev-utkast")
    assert frame.locator("[data-draft-note]").first.is_visible()  # "kept on this device until you hand it in"
    assert not frame.locator("[data-draft-restored]").first.is_visible()
    answer = "Jag övade skalan i tjugo minuter,\nsedan spelade jag låten två gånger."
    frame.fill("#text", answer)
    assert len(frame.evaluate(DRAFTS)) == 1

    # The tab is left open until the launch token has expired: the next click is refused inside the frame (the
    # platform may frame the refusal); the answer is not lost.
    app.config["LAUNCH_TOKEN_TTL_SECONDS"] = -1
    frame.locator("p.crumb a").click()
    frame.wait_for_selector("main[data-error-code]")
    assert frame.locator("main").get_attribute("data-error-code") == "launch_expired"
    app.config["LAUNCH_TOKEN_TTL_SECONDS"] = 3600

    # The course opened again from the platform: the answer is back, and the page says so.
    frame = open_assignment(page, platform, "elev-utkast")
    assert frame.input_value("#text") == answer
    restored = frame.locator("[data-draft-restored]").first
    assert restored.is_visible() and restored.inner_text().strip()
    results = Axe().run(frame, options=WCAG)
    assert results.violations_count == 0, results.generate_report()
    SHOTS.mkdir(parents=True, exist_ok=True)
    frame.locator("#hand-in-form").scroll_into_view_if_needed()
    page.locator("iframe[name=tool]").screenshot(path=str(SHOTS / "pupil-draft-restored-sv.png"))

    # Handed in: the draft is gone; opening the page again shows what was handed in, without the notice.
    frame.get_by_role("button", name="Lämna in").click()
    frame.wait_for_selector("main[data-hand-in='submitted']")
    assert frame.evaluate(DRAFTS) == []

    # A message to the teacher is kept the same way until it is sent.
    frame.fill("#message-body", "Hur långt ska stycket vara?")
    frame = open_assignment(page, platform, "elev-utkast")
    assert frame.input_value("#message-body") == "Hur långt ska stycket vara?"
    assert not frame.locator("#hand-in-form [data-draft-restored]").is_visible()
    assert frame.locator("#talk [data-draft-restored]").is_visible()
    frame.get_by_role("button", name="Skicka").click()
    frame.wait_for_selector("main[data-messages='1']")
    assert frame.evaluate(DRAFTS) == []
    frame = open_assignment(page, platform, "elev-utkast")
    assert frame.input_value("#message-body") == ""
    assert not frame.locator("[data-draft-restored]").first.is_visible()


def test_drafts_are_kept_per_pupil(site, page):
    """Two pupils on one device: neither gets the other's draft."""
    _app, platform = site
    frame = open_assignment(page, platform, "elev-a")
    frame.fill("#text", "A:s svar")
    frame = open_assignment(page, platform, "elev-b")
    assert frame.input_value("#text") == ""
    frame = open_assignment(page, platform, "elev-a")
    assert frame.input_value("#text") == "A:s svar"


def test_without_storage_in_the_frame_the_page_promises_nothing(site, browser):
    """Site data of the frame refused (third-party cookies blocked): the hand-in works as before, no note says the
    text is kept, and the script fails quietly."""
    _app, platform = site
    page = browser["blocked"].new_context(viewport={"width": 360, "height": 740}, locale="sv-SE").new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    frame = open_assignment(page, platform, "elev-blockerad")
    frame.fill("#text", "Utan lagring")
    assert not frame.locator("[data-draft-note]").first.is_visible()
    frame = open_assignment(page, platform, "elev-blockerad")
    assert frame.input_value("#text") == "" and not frame.locator("[data-draft-restored]").first.is_visible()
    frame.fill("#text", "Utan lagring")
    frame.get_by_role("button", name="Lämna in").click()
    frame.wait_for_selector("main[data-hand-in='submitted']")
    assert errors == []


def test_a_new_version_after_feedback_with_its_history(site, browser):
    _app, platform = site
    context = browser["allowed"].new_context(viewport={"width": 360, "height": 740}, locale="sv-SE")

    def launch(user: str, role: str):
        page = context.new_page()
        page.goto(f"{platform}/sandbox/start?deployment=sandbox-SE-1490%7C&role={role}&user={user}&locale=sv-SE"
                  "&course=GIT-AK-1")
        page.wait_for_selector("main[data-role]")
        return page

    pupil = launch("elev-version", "learner")
    pupil.get_by_role("link", name="Uppgift 2").first.click()
    pupil.fill("#text", "Jag spelade skalan långsamt.")
    pupil.get_by_role("button", name="Lämna in").click()
    teacher = launch("laerer-1", "instructor")
    tool, token = teacher.url.split("/teach/")[0], re.search(r"lt=([^&]+)", teacher.url).group(1)
    teacher.goto(f"{tool}/teach/queue?lt={token}")
    teacher.locator("ol.queue a").first.click()
    teacher.fill("#feedback", "Bra tempo. Prova nu i dubbla tempot.")
    teacher.fill("#score", "6")
    teacher.get_by_role("button", name="Spara bedömningen").click()

    pupil.reload()
    assert pupil.locator("main").get_attribute("data-hand-in") == "reviewed"
    check_page(pupil, "pupil-new-version-offered-sv")
    pupil.fill("#text", "Nu i dubbla tempot, utan fel.")
    pupil.locator("#hand-in-form button[type=submit]").click()
    pupil.wait_for_selector("main[data-version='2']")
    assert pupil.locator("#versions [data-version='1']").inner_text().count("Bra tempo.") == 1
    check_page(pupil, "pupil-hand-in-versions-sv")

    teacher.goto(f"{tool}/teach/queue?lt={token}")
    teacher.locator("ol.queue a").first.click()
    assert teacher.locator("main").get_attribute("data-version") == "2"
    assert "Jag spelade skalan långsamt." in teacher.locator("#versions").inner_text()
    check_page(teacher, "teacher-review-versions-sv")
