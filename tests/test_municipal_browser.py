"""The head of the arts school in the municipal console, in a real browser (Playwright driving Debian's Chromium):
an administrator's launch without a course opens the console inside the sandbox platform's frame at 870 px, and a
launch on a course reaches it in one click at phone width (360 px). Orders of two calendar years: the yearly
totals and the chart; a refused budget names its row, keeps the typed number and takes the focus; a saved one is
marked on its row. axe (WCAG 2.1 A and AA) finds nothing and nothing scrolls sideways, in the frame and on the
phone; screenshots in ``test-artifacts/screenshots/tour-municipal-*.png``."""

from __future__ import annotations

import os
from datetime import timedelta

import pytest

from . import test_browser

pytestmark = pytest.mark.skipif(not os.path.exists(test_browser.CHROMIUM), reason="Debian's chromium is not installed")

live = test_browser.live  # the tool and its sandbox platform, served (fixtures of tests/test_browser.py)
browser = test_browser.browser
check_page = test_browser.check_page
FRAME_WIDTH = 870  # a learning platform's content column


@pytest.fixture
def history(live, app_factory, config):
    """Borås (one seat of the open round, from test_browser's ``live``) also ordered last year's round of the course
    and the round after next: three rounds over at least two calendar years."""
    from sqlalchemy import select

    from lti_tool.db import new_session
    from lti_tool.models import CourseRound, Order

    from .catalog_factory import TODAY

    app = app_factory({**config, "BASE_URL": live, "SANDBOX_BASE_URL": live})
    with new_session(app) as session:
        starts = TODAY.replace(year=TODAY.year - 1)
        last_year = CourseRound(course_code="GIT-AK-1", round_id="last-year", starts_on=starts,
                                ends_on=starts + timedelta(weeks=16), enrolment_closes_on=starts - timedelta(days=10),
                                withdrawal_deadline=starts + timedelta(days=14), capacity=16, min_participants=1,
                                seats_taken=3, status="running")
        session.add(last_year)
        session.flush()
        session.add(Order(municipality_id="SE-1490", round_pk=last_year.id, seats_budget=4, seats_taken=3))
        later = session.scalar(select(CourseRound).where(CourseRound.round_id == "later"))
        session.add(Order(municipality_id="SE-1490", round_pk=later.id, seats_budget=6, seats_taken=2))
        later.seats_taken = 2
        session.commit()
        return {"years": sorted({last_year.starts_on.year, TODAY.year, later.starts_on.year})}


def console_in_frame(browser, base):
    """The sandbox platform's page at a desktop's width, its frame 870 px wide, an administrator's launch on a
    link without a course: the console in the frame."""
    page = browser.new_context(viewport={"width": 1280, "height": 900}, locale="sv-SE").new_page()
    page.goto(base + "/sandbox/")
    page.select_option("#deployment", value="sandbox-SE-1490|")
    page.check("input[name=role][value=administrator]")
    page.fill("#user", "rektor-1")
    page.select_option("#locale", value="sv-SE")
    page.select_option("#course", value="")
    # the frame's content 870 px wide (its border around it)
    page.evaluate(f"document.querySelector('iframe[name=tool]').style.width = 'calc({FRAME_WIDTH}px + 2px)'")
    page.click("button[type=submit]")
    frame = page.frame(name="tool")
    frame.wait_for_selector("main[data-console=municipal]")
    frame.wait_for_load_state("load")
    return page, frame


def check_frame(page, frame, name: str) -> None:
    """axe finds nothing in the frame, nothing scrolls sideways in it, and a screenshot of the frame is kept."""
    from axe_playwright_python.sync_playwright import Axe

    assert frame.evaluate("window.innerWidth") == FRAME_WIDTH
    results = Axe().run(frame, options=test_browser.WCAG)
    assert results.violations_count == 0, f"{name}: {results.generate_report()}"
    overflow = frame.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"{name}: {overflow}px of horizontal scrolling in the {FRAME_WIDTH}px frame"
    element = page.locator("iframe[name=tool]")
    height = frame.evaluate("document.documentElement.scrollHeight")
    element.evaluate(f"(e) => e.style.height = '{min(max(height, 400), 6000)}px'")
    test_browser.SHOTS.mkdir(parents=True, exist_ok=True)
    element.screenshot(path=str(test_browser.SHOTS / f"{name}.png"))


def focused(page_or_frame) -> str:
    """The id (else the class) of what has the focus, once the page's script has run."""
    page_or_frame.wait_for_load_state("load")
    return page_or_frame.evaluate("document.activeElement ? document.activeElement.id"
                                  " || document.activeElement.className : ''")


def test_console_in_an_870px_frame(live, browser, history):
    page, frame = console_in_frame(browser, live)
    orders = frame.locator("tr[data-order]")
    assert orders.count() == 3
    assert [int(year) for year in frame.locator("table.totals").evaluate_all(
        "(tables) => tables.map((t) => t.dataset.year)")] == history["years"]
    assert frame.locator("figure.chart[data-chart='GIT-AK-1'] li").count() == 3
    # the order cards fit the frame: every cell inside its row, the budget field 16 px
    assert frame.locator("input[name=seats]").first.evaluate("(e) => getComputedStyle(e).fontSize") == "16px"
    check_frame(page, frame, "tour-municipal-orders-frame")

    # below the seats taken: the message names the course and round, the row keeps 1 and has the focus
    row = frame.locator("tr[data-order='GIT-AK-1:later']")
    row.locator("input[name=seats]").fill("1")
    row.get_by_role("button", name="Ändra").click()
    frame.wait_for_selector("main[data-error-code=budget_below_taken]")
    alert = frame.get_by_role("alert")
    assert "Kurs GIT-AK-1" in alert.inner_text()
    row = frame.locator("tr[data-order='GIT-AK-1:later']")
    assert row.get_attribute("data-refused") == "budget_below_taken"
    field = row.locator("input[name=seats]")
    assert field.input_value() == "1" and field.get_attribute("aria-invalid") == "true"
    assert focused(frame) == field.get_attribute("id")
    check_frame(page, frame, "tour-municipal-refused-frame")

    # a budget that holds: saved, marked on that row only
    field.fill("8")
    row.get_by_role("button", name="Ändra").click()
    frame.wait_for_selector("tr[data-saved='1']")
    saved = frame.locator("tr[data-saved='1']")
    assert saved.get_attribute("data-order") == "GIT-AK-1:later" and saved.get_attribute("data-budget") == "8"
    assert frame.locator(".saved-mark").count() == 1 and "saved-mark" in focused(frame)
    check_frame(page, frame, "tour-municipal-saved-frame")


def test_console_one_click_from_a_course_on_a_phone(live, browser, history):
    """An administrator launching on a course link lands on the course page, which links to the console."""
    page = test_browser.launch(browser, live, user="rektor-1", role="administrator")
    assert page.viewport_size["width"] == 360
    page.locator("a[href*='/municipal/?lt=']").click()
    page.wait_for_selector("main[data-console=municipal]")
    assert page.locator("tr[data-order]").count() == 3
    check_page(page, "tour-municipal-orders-phone")
    page.locator("figure.chart").first.scroll_into_view_if_needed()

    row = page.locator("tr[data-order='GIT-AK-1:now']")
    row.locator("input[name=seats]").fill("-1")
    row.get_by_role("button", name="Ändra").click()
    page.wait_for_selector("main[data-error-code=budget_invalid]")
    row = page.locator("tr[data-order='GIT-AK-1:now']")
    assert row.get_attribute("data-refused") == "budget_invalid"
    assert focused(page) == row.locator("input[name=seats]").get_attribute("id")
    check_page(page, "tour-municipal-refused-phone")

    row.locator("input[name=seats]").fill("3")
    row.get_by_role("button", name="Ändra").click()
    page.wait_for_selector("tr[data-saved='1']")
    assert page.locator("tr[data-saved='1']").get_attribute("data-budget") == "3"
    check_page(page, "tour-municipal-saved-phone")
