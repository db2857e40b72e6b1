"""A person's way through the tool in a real browser (Playwright driving Debian's Chromium): a pupil's
whole way through a course and a teacher's review, in Swedish and bokmål; axe-core on every page type
(WCAG 2.1 A and AA: zero violations); no horizontal scrolling at 360 px; a phone-width screenshot of
each page type saved under ``test-artifacts/screenshots/``."""

from __future__ import annotations

import os
import shutil
import socket
import threading
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="Debian's chromium is not installed")

SHOTS = Path(__file__).resolve().parents[1] / "test-artifacts" / "screenshots"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
WCAG = {"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]},
        "resultTypes": ["violations"]}
PNG = (b'\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02\x00\x00\x00\x90wS\xde'
       b'\x00\x00\x00\x0cIDATx\x9cc\xf8\xbf\xc0\x01\x00\x04\x81\x01\xe0r\x1a\x11\x9b'
       b'\x00\x00\x00\x00IEND\xaeB`\x82')  # a real 1x1 picture


@pytest.fixture
def live(config, app_factory, tmp_path):
    """The tool and its sandbox platform served on 127.0.0.1 by a threaded server."""
    from werkzeug.serving import make_server

    from lti_tool.cli import prepare_demo
    from lti_tool.db import new_session
    from lti_tool.services import seats

    from .catalog_factory import add_content, add_course
    from .conftest import name_round_teacher

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    app = app_factory({**config, "BASE_URL": base, "SANDBOX_BASE_URL": base})
    prepare_demo(app, catalog=False)
    with new_session(app) as session:
        add_course(session)
        add_content(session)
        seats.set_order(session, "SE-1490", "GIT-AK-1", "now", 1)
        seats.set_order(session, "NO-0301", "GIT-AK-1", "now", 5)
        session.commit()
    name_round_teacher(app, "laerer-1", name="Lærer Lund")  # national staff name the round's teacher
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield base
    server.shutdown()
    thread.join(5)


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser
        browser.close()


def check_page(page, name: str) -> None:
    """axe finds nothing, nothing scrolls sideways at phone width, and a screenshot is kept."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page, options=WCAG)
    assert results.violations_count == 0, f"{name}: {results.generate_report()}"
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"{name}: {overflow}px of horizontal scrolling at {page.viewport_size['width']}px"
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def launch(browser, base, *, user, role="learner", municipality="SE-1490", locale="sv-SE", in_frame=False):
    """A launch from the sandbox platform. ``in_frame``: through the platform's page, the tool in its iframe,
    then the tool's page opened at top level with the same launch token (no cookie needed); otherwise the
    platform's login initiation opened at top level (as a platform's "open in new window")."""
    context = browser.new_context(viewport={"width": 360, "height": 740}, locale=locale)
    page = context.new_page()
    if not in_frame:
        page.goto(f"{base}/sandbox/start?deployment=sandbox-{municipality}%7C&role={role}&user={user}"
                  f"&locale={locale}&course=GIT-AK-1")
        page.wait_for_selector("main")
        return page
    page.goto(base + "/sandbox/")
    page.select_option("#deployment", value=f"sandbox-{municipality}|")
    page.check(f"input[name=role][value={role}]")
    page.fill("#user", user)
    page.select_option("#locale", value=locale)
    page.select_option("#course", value="GIT-AK-1")
    page.evaluate("window.resizes = []; window.addEventListener('message', (event) => {"
                  " if (event.data && event.data.subject === 'lti.frameResize') window.resizes.push(event.data.height);"
                  " });")
    page.click("button[type=submit]")
    frame = page.frame(name="tool")
    frame.wait_for_selector("main[data-role]")
    # Inside the platform's frame: no second header, and the frame is told the page's height.
    assert "in-frame" in (frame.locator("html").get_attribute("class") or "")
    assert not frame.locator("header.site").is_visible()
    page.wait_for_function("window.resizes.length > 0")
    assert page.evaluate("window.resizes[window.resizes.length - 1]") > 100
    page.goto(frame.url)
    assert page.locator("header.site").is_visible()  # at top level the tool shows its own header
    return page


def test_pupil_and_teacher_in_swedish_and_bokmal(live, browser):
    sandbox = browser.new_page(viewport={"width": 360, "height": 740})
    sandbox.goto(live + "/sandbox/")
    check_page(sandbox, "sandbox")

    # A Swedish pupil through the course.
    pupil = launch(browser, live, user="elev-1", in_frame=True)
    main = pupil.locator("main")
    assert main.get_attribute("data-municipality") == "SE-1490" and main.get_attribute("data-seat") == "now"
    assert pupil.locator("html").get_attribute("lang") == "sv"
    check_page(pupil, "pupil-course-sv")
    pupil.get_by_role("link", name="Lektion 1.1").click()
    check_page(pupil, "pupil-lesson-sv")
    pupil.get_by_role("button", name="Markera som klar").click()
    assert pupil.get_by_role("status").first.inner_text().startswith("✓")
    pupil.get_by_role("link", name="Nästa").click()
    assert pupil.locator("main").get_attribute("data-assignment") == "GIT-AK-1-m1-a1"
    check_page(pupil, "pupil-assignment-sv")
    pupil.set_input_files("#file", files=[{"name": "övning.png", "mimeType": "image/png", "buffer": PNG}])
    pupil.get_by_role("button", name="Lämna in").click()
    # The page's script sends the file in pieces, then opens the page that says it was handed in.
    pupil.wait_for_selector("main[data-hand-in]")
    assert pupil.locator("main").get_attribute("data-hand-in") == "submitted"
    check_page(pupil, "pupil-handed-in-sv")
    # The next step is the second module's lesson, then its text assignment.
    pupil.get_by_role("link", name="Nästa").click()
    pupil.get_by_role("link", name="Nästa").click()
    pupil.fill("#text", "Jag övade i tjugo minuter varje dag.")
    pupil.get_by_role("button", name="Lämna in").click()
    assert pupil.locator("main").get_attribute("data-hand-in") == "submitted"

    # The budget of one seat is used: a second Swedish pupil is offered the waiting list.
    second = launch(browser, live, user="elev-2")
    assert second.locator("main").get_attribute("data-error-code") == "budget_used_up"
    check_page(second, "refused-budget-sv")
    second.get_by_role("button", name="Ställ dig i kö (väntelista)").click()
    assert second.locator("main").get_attribute("data-waitlist-place") == "1"
    check_page(second, "waitlist-sv")

    # A Norwegian pupil, in bokmål.
    norwegian = launch(browser, live, user="elev-3", municipality="NO-0301", locale="nb-NO")
    assert norwegian.locator("html").get_attribute("lang") == "nb"
    check_page(norwegian, "pupil-course-nb")
    norwegian.get_by_role("link", name="Oppgave 2", exact=False).click()
    norwegian.fill("#text", "Jeg øvde hver dag.")
    norwegian.get_by_role("button", name="Lever").click()
    assert norwegian.locator("main").get_attribute("data-hand-in") == "submitted"
    check_page(norwegian, "pupil-assignment-nb")

    # The round's teacher, reading bokmål, launching from the Swedish municipality's course: the classroom is
    # the whole round (the Norwegian pupil came through Oslo's deployment); the queue holds the oldest hand-in
    # first; review it.
    teacher = launch(browser, live, user="laerer-1", role="instructor", locale="nb-NO")
    assert teacher.locator("main").get_attribute("data-pupils") == "2"
    check_page(teacher, "teacher-dashboard-nb")
    teacher.get_by_role("link", name="venter på vurdering").click()
    assert teacher.locator("main").get_attribute("data-queue") == "3"  # the Norwegian pupil's hand-in too
    check_page(teacher, "teacher-queue-nb")
    teacher.locator("ol.queue a").first.click()
    check_page(teacher, "teacher-review-nb")
    teacher.fill("#feedback", "Fin start! Øv på overgangene.")
    teacher.fill("#score", "7,5")
    teacher.get_by_role("button", name="Lagre vurderingen").click()
    assert teacher.get_by_role("status").first.inner_text().startswith("✓ Vurderingen er lagret")

    # The Swedish pupil reads the feedback.
    pupil.reload()  # still on the second assignment; the reviewed one is two steps back
    pupil.get_by_role("link", name="Föregående").click()
    pupil.get_by_role("link", name="Föregående").click()
    assert pupil.locator("main").get_attribute("data-hand-in") == "reviewed"
    assert "Fin start!" in pupil.locator(".feedback").inner_text()
    check_page(pupil, "pupil-feedback-sv")


def test_refused_launch_page_is_accessible(live, browser):
    page = browser.new_page(viewport={"width": 360, "height": 740}, locale="sv-SE")
    page.goto(live + "/sandbox/start?deployment=sandbox-region%7CNO-0301&role=learner&user=x&locale=sv-SE")
    assert page.locator("main").get_attribute("data-error-code") == "municipality_not_allowed"
    check_page(page, "refused-municipality-sv")


def test_placing_a_course_by_deep_linking(live, browser):
    page = browser.new_page(viewport={"width": 360, "height": 740}, locale="nb-NO")
    page.goto(live + "/sandbox/start?deployment=sandbox-NO-0301%7C&role=administrator&user=admin-1&locale=nb-NO"
              "&message=deep_linking")
    assert page.locator("main").get_attribute("data-offers") == "1"
    check_page(page, "deep-linking-nb")
    page.get_by_role("button", name="Plasser i kurset mitt").click()
    page.wait_for_selector("main[data-placed]")
    assert page.locator("main").get_attribute("data-placed") == "1"


def test_staff_console_pages_are_accessible(live, browser, app_factory, config):
    from sqlalchemy import update

    from lti_tool.db import new_session
    from lti_tool.models import Course, CourseRound, Registration

    # The course in three languages (nynorsk missing from its texts: bokmål or Swedish shown, marked), its round
    # ordered beyond its places, and changes made on the command line in the audit log.
    app = app_factory({**config, "BASE_URL": live, "SANDBOX_BASE_URL": live})
    with new_session(app) as session:
        session.get(Course, "GIT-AK-1").languages = ["sv", "nb", "nn"]
        session.execute(update(CourseRound).where(CourseRound.round_id == "now").values(capacity=4))
        registration = session.query(Registration).order_by(Registration.id).first()
        issuer, client_id = registration.issuer, registration.client_id
        session.commit()
    runner = app.test_cli_runner()
    for args in (["orders", "set", "--municipality", "SE-1440", "--course", "GIT-AK-1", "--round", "now", "--seats",
                  "3", "--by", "ops"],
                 ["platforms", "add-deployment", "--issuer", issuer, "--client-id", client_id,
                  "--deployment-id", "cli-deployment", "--municipality", "SE-1490", "--by", "ops"]):
        assert runner.invoke(args=args).exit_code == 0
    page = browser.new_page(viewport={"width": 360, "height": 740}, locale="sv-SE")
    page.goto(live + "/staff/")
    check_page(page, "staff-sign-in-sv")
    page.fill("#name", "Nora")
    page.get_by_role("button", name="Logga in lokalt").click()
    for path, name in (("/staff/", "staff-overview-sv"), ("/staff/registrations", "staff-registrations-sv"),
                       ("/staff/orders", "staff-orders-sv"), ("/staff/costs", "staff-costs-sv"),
                       ("/staff/orders?course=GIT-AK-1&round=now&country=SE&municipality=bor",
                        "staff-orders-filtered-sv"),
                       ("/staff/catalog", "staff-catalog-sv"), ("/staff/catalog?q=git", "staff-catalog-search-sv"),
                       ("/staff/catalog/courses/GIT-AK-1", "staff-course-sv"),
                       ("/staff/catalog/courses/GIT-AK-1?lang=nn", "staff-course-nn-sv"),
                       ("/staff/outbox", "staff-outbox-sv"),
                       ("/staff/municipalities", "staff-municipalities-sv"), ("/staff/launches", "staff-launches-sv"),
                       ("/staff/audit", "staff-audit-sv"), ("/staff/audit?show=cli", "staff-audit-cli-sv")):
        page.goto(live + path)
        assert page.locator("main").get_attribute("data-console") == "staff"
        page.locator("details").evaluate_all("(all) => all.forEach((d) => { d.open = true; })")
        check_page(page, name)
        # The page's own entry in the console's navigation is marked.
        parts = path.split("?")[0].strip("/").split("/")
        section = parts[1] if len(parts) > 1 else ""
        current = page.locator(".console-nav a[aria-current]")
        assert current.count() == 1 and current.get_attribute("href").rstrip("/") == ("/staff/" + section).rstrip("/")
    page.goto(live + "/staff/catalog/courses/GIT-AK-1")
    assert page.locator("[data-over-capacity]").count() == 1  # 5 + 1 + 3 seats ordered for 4 places
    page.goto(live + "/staff/catalog/courses/GIT-AK-1?lang=nn")
    assert page.locator(".course-preview [data-fallback]").count() > 0
    page.goto(live + "/staff/audit?show=cli")
    assert page.locator('li[data-origin="cli"]').count() >= 2


def test_approval_ordering_and_budget_change_in_a_browser(live, browser):
    """National staff approve a deployment; the head of the arts school orders a course and changes the budget."""
    staff = browser.new_page(viewport={"width": 360, "height": 740}, locale="sv-SE")
    # An unknown deployment launches once: stored as pending.
    staff.goto(live + "/sandbox/start?deployment=new-install%7C&role=administrator&user=a&locale=sv-SE")
    assert staff.locator("main").get_attribute("data-error-code") == "deployment_pending"
    staff.goto(live + "/staff/sign-in")
    staff.fill("#name", "Nora")
    staff.get_by_role("button", name="Logga in lokalt").click()
    staff.goto(live + "/staff/registrations")
    block = staff.locator('[data-deployment="new-install"]')
    assert block.get_attribute("data-status") == "pending"
    block.get_by_role("link", name="Koppla och godkänn").click()
    # The deployment's own page: a checkbox per municipality; the search narrows the list as one types.
    staff.fill("#picker-search", "kiru")
    assert staff.locator("#picker-list li:visible").count() == 1
    check_page(staff, "staff-deployment-municipalities-sv")
    staff.check('input[name=municipality][value="SE-2584"]')
    staff.fill("#picker-search", "")
    staff.get_by_role("button", name="Koppla och godkänn").click()
    assert staff.locator('[data-deployment="new-install"]').get_attribute("data-status") == "active"
    staff.goto(live + "/staff/registrations")
    assert staff.locator('[data-deployment="new-install"]').get_attribute("data-status") == "active"
    check_page(staff, "staff-registrations-approved-sv")
    # Unticking it asks first: the confirmation lists the removal, and nothing changes until confirmed.
    staff.locator('[data-deployment="new-install"] a').first.click()
    staff.uncheck('input[name=municipality][value="SE-2584"]')
    staff.check('input[name=municipality][value="SE-1490"]')
    staff.locator("form[data-picker] button[type=submit]").click()
    assert staff.locator("[data-confirm=binding]").get_attribute("data-removed") == "1"
    check_page(staff, "staff-confirm-binding-sv")
    staff.locator("form.confirm a").click()
    assert staff.locator('input[name=municipality][value="SE-2584"]').is_checked()
    staff.locator('a[href$="/deactivate"]').click()
    assert staff.locator("[data-confirm=deactivate]").get_attribute("data-status") == "active"
    check_page(staff, "staff-confirm-deactivate-sv")

    head = launch(browser, live, user="rektor-1", role="administrator", municipality="SE-2584")
    head.goto(head.url.split("/home")[0] + "/municipal/?" + head.url.split("?", 1)[1])
    assert head.locator("main").get_attribute("data-console") == "municipal"
    check_page(head, "municipal-console-sv")
    head.select_option("#round", index=0)
    head.fill("#seats", "6")
    head.get_by_role("button", name="Beställ", exact=True).click()
    row = head.locator("tr[data-order]").first
    assert row.get_attribute("data-budget") == "6"
    row.locator("input[name=seats]").fill("9")
    row.get_by_role("button", name="Ändra").click()
    assert head.locator("tr[data-order]").first.get_attribute("data-budget") == "9"
    check_page(head, "municipal-console-ordered-sv")


def test_second_door_invitation_feide_sign_in_and_my_courses_on_a_phone(live, browser, app_factory, config):
    """A pupil without an LTI platform, in bokmål at phone width: the invitation, the (sandbox) Feide sign-in,
    the confirmation, the course, and "My courses" on a later visit; axe on each page."""
    from lti_tool.config import settings
    from lti_tool.db import new_session
    from lti_tool.sandbox import idp_oidc
    from lti_tool.services import invitations

    app = app_factory({**config, "BASE_URL": live, "SANDBOX_BASE_URL": live})
    with app.app_context(), new_session(app) as session:
        idp_oidc.ensure_sandbox_oidc_provider(session, settings(app).sandbox_base_url)
        [issued] = invitations.issue(session, municipality_id="NO-0301", course_code="GIT-AK-1", round_id="now",
                                     count=1, expires_at=None, created_by="Oslo kulturskole")
        session.commit()
        link = invitations.join_url(issued.code)
    context = browser.new_context(viewport={"width": 360, "height": 740}, locale="nb-NO")
    page = context.new_page()
    page.goto(link)
    page.wait_for_selector("main[data-page=join]")
    check_page(page, "second-door-invitation")
    page.click("a[data-provider=feide]")
    page.wait_for_selector("main[data-sandbox-idp=oidc]")
    page.click("button[value=oslo-pupil]")
    page.wait_for_selector("main[data-page=confirm]")
    assert "Oslo" in page.inner_text("h1")
    check_page(page, "second-door-confirm")
    page.click("main form button[type=submit]")
    page.wait_for_selector("main[data-seat]")
    check_page(page, "second-door-course")
    page.goto(live + "/my")
    page.wait_for_selector("main[data-page=my-courses][data-seats='1']")
    check_page(page, "second-door-my-courses")
    context.close()
