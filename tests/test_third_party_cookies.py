"""Launches inside a third-party iframe, in a real browser (Playwright driving Debian's Chromium).

The sandbox platform is served as ``http://localhost:PORT`` and the tool as ``http://127.0.0.1:PORT``, another
site, so the tool runs in a third-party iframe as in a real LMS. Chromium blocks third-party cookies but keeps
partitioned ones (CHIPS), so the tool's ``SameSite=None; Secure; Partitioned`` state cookie works in the frame.

"Cookies blocked" is what Safari does: it has no partitioned cookies and blocks every third-party cookie. The
tests reproduce it by serving the tool's state cookie without ``Partitioned``: Chromium then refuses it inside
the frame (and keeps it at top level, in a new window, as Safari does).
"""

from __future__ import annotations

import os
import shutil
import socket
import threading

import pytest
from sqlalchemy import func, select

from .test_browser import SHOTS, WCAG

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="Debian's chromium is not installed")

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--test-third-party-cookie-phaseout", "--host-resolver-rules=MAP forger.test 127.0.0.1"]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Site:
    """The tool (``tool``) and the sandbox platform (``platform``) served by one threaded server."""

    def __init__(self, app, tool: str, platform: str):
        self.app, self.tool, self.platform = app, tool, platform

    def launches(self):
        from lti_tool.db import new_session
        from lti_tool.models import Launch

        with new_session(self.app) as session:
            return [(launch.sub, launch.state_path) for launch in
                    session.scalars(select(Launch).order_by(Launch.created_at))]

    def seats(self, sub: str) -> int:
        from lti_tool.db import new_session
        from lti_tool.models import Seat

        with new_session(self.app) as session:
            return session.scalar(select(func.count()).select_from(Seat).where(Seat.sub == sub))


@pytest.fixture
def serve(config, app_factory, monkeypatch):
    from werkzeug.serving import make_server

    from lti_tool.cli import prepare_demo
    from lti_tool.db import new_session
    from lti_tool.services import seats

    from .catalog_factory import add_content, add_course

    servers = []

    def start(*, cookies: bool, **settings) -> Site:
        """``cookies=False``: the browser keeps no cookie of the tool inside the frame (as Safari)."""
        from lti_tool.web import lti as lti_web

        if not cookies:
            options = lti_web.state_cookie_options
            monkeypatch.setattr(lti_web, "state_cookie_options",
                                lambda: {k: v for k, v in options().items() if k != "partitioned"})
        port = _free_port()
        tool = f"http://127.0.0.1:{port}"
        platform = f"http://localhost:{port}"
        app = app_factory({**config, "BASE_URL": tool, "SANDBOX_BASE_URL": platform, "COOKIE_SECURE": True,
                           "PLATFORM_STORAGE_TIMEOUT_MS": 1500, "PLATFORM_CAPABILITIES_TIMEOUT_MS": 700,
                           **settings})
        prepare_demo(app, catalog=False)
        with new_session(app) as session:
            add_course(session)
            add_content(session)
            seats.set_order(session, "SE-1490", "GIT-AK-1", "now", 5)
            session.commit()
        server = make_server("127.0.0.1", port, app, threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return Site(app, tool, platform)

    yield start
    for server in servers:
        server.shutdown()


@pytest.fixture
def context():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="sv-SE")
        yield context
        browser.close()


def open_platform(context, site: Site, *, storage: str, user: str):
    """The sandbox platform's page with the choices made, not yet launched."""
    page = context.new_page()
    page.goto(site.platform + "/sandbox/")
    page.select_option("#deployment", value="sandbox-SE-1490|")
    page.check("input[name=role][value=learner]")
    page.fill("#user", user)
    page.select_option("#course", value="GIT-AK-1")
    page.select_option("#storage", value=storage)
    return page


def tool_cookies(context, site: Site) -> list:
    return [c for c in context.cookies() if c["domain"] == "127.0.0.1"]


@pytest.mark.parametrize("storage", ["parent", "frame", "capabilities"])
def test_platform_storage_launches_without_any_cookie(serve, context, storage):
    """(a) Platform storage offered, third-party cookies blocked: the launch succeeds with no cookie."""
    site = serve(cookies=False)
    page = open_platform(context, site, storage=storage, user=f"elev-{storage}")
    cookies_sent = []
    page.on("request", lambda r: r.url.startswith(site.tool) and "cookie" in r.headers and cookies_sent.append(r.url))
    page.click("button[type=submit]")
    frame = page.frame(name="tool")
    frame.wait_for_selector("main[data-role]")
    assert frame.locator("main").get_attribute("data-municipality") == "SE-1490"
    assert frame.url.startswith(site.tool + "/course/") or frame.url.startswith(site.tool + "/")
    assert site.launches() == [(f"elev-{storage}", "platform_storage")]
    assert site.seats(f"elev-{storage}") == 1
    assert tool_cookies(context, site) == [] and cookies_sent == []
    # The platform was asked to keep the state and to give it back, by the tool's origin.
    messages = page.evaluate("window.sandboxStorage.messages.concat("
                             "window.frames['post_message_forwarding'].sandboxStorage.messages)")
    subjects = {m["subject"] for m in messages if m["origin"] == site.tool}
    assert {"lti.put_data", "lti.get_data"} <= subjects
    assert ("lti.capabilities" in subjects) == (storage == "capabilities")


def test_cookie_path_when_the_platform_offers_no_storage(serve, context):
    """(b) No platform storage, cookies allowed: the partitioned state cookie binds the launch."""
    site = serve(cookies=True)
    page = open_platform(context, site, storage="none", user="elev-kaka")
    page.click("button[type=submit]")
    frame = page.frame(name="tool")
    frame.wait_for_selector("main[data-role]")
    assert frame.locator("main").get_attribute("data-municipality") == "SE-1490"
    assert site.launches() == [("elev-kaka", "cookie")]
    # Asked with lti.capabilities (inside a frame, no target named) only if the cookie did not come back.
    assert "lti.capabilities" not in {m["subject"] for m in page.evaluate("window.sandboxStorage.messages")}


def test_new_window_when_neither_storage_nor_cookies_work(serve, context):
    """(c) Neither: the frame explains in the pupil's language (axe finds nothing to fix) and opens the launch
    in a new window; opening it twice takes one seat."""
    from axe_playwright_python.sync_playwright import Axe

    site = serve(cookies=False)
    page = open_platform(context, site, storage="none", user="elev-nytt")
    page.click("button[type=submit]")
    frame = page.frame(name="tool")
    frame.wait_for_selector("#new-window:not([hidden])")
    assert frame.locator("html").get_attribute("data-launch-step") == "new_window"
    assert frame.get_by_role("heading", name="Öppna kursen i ett nytt fönster").is_visible()
    results = Axe().run(frame, options=WCAG)
    assert results.response["url"].startswith(site.tool + "/lti/launch") and results.response["passes"]
    assert results.violations_count == 0, results.generate_report()
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "launch-new-window-sv.png"))
    assert site.launches() == [] and site.seats("elev-nytt") == 0
    for _ in range(2):
        with context.expect_page() as popup_info:
            frame.get_by_role("link", name="Öppna kursen i ett nytt fönster").click()
        popup = popup_info.value
        popup.wait_for_selector("main[data-role]")
        assert popup.locator("main").get_attribute("data-municipality") == "SE-1490"
        assert popup.locator("html").get_attribute("lang") == "sv"
    assert site.launches() == [("elev-nytt", "new_window"), ("elev-nytt", "new_window")]
    assert site.seats("elev-nytt") == 1


def test_forged_get_data_answer_from_another_origin_is_refused(serve, context):
    """(d) The platform keeps the state but does not answer lti.get_data; a frame of another origin answers
    with the right message id, key and value. The tool's page ignores it: no launch, no seat."""
    site = serve(cookies=False, PLATFORM_STORAGE_TIMEOUT_MS=4000)
    page = open_platform(context, site, storage="parent", user="elev-falsk")
    page.evaluate("window.sandboxStorage.ignore = ['get_data']")
    forger_origin = site.tool.replace("127.0.0.1", "forger.test")
    page.click("button[type=submit]")
    frame = page.frame(name="tool")
    frame.wait_for_function("() => window.LtiStorage && window.LtiStorage.pending")
    message_id = frame.evaluate("window.LtiStorage.pending")
    state = frame.eval_on_selector("input[name=state]", "input => input.value")
    # A window of another origin that can reach the tool's frame (opened by the platform's page).
    with context.expect_page() as forger_info:
        page.evaluate("url => { window.open(url, 'forger'); }", forger_origin + "/healthz")
    forger = forger_info.value
    forger.wait_for_load_state()
    assert forger.url.startswith(forger_origin)
    forger.evaluate("""([id, state]) => window.opener.frames['tool'].postMessage(
        {subject: 'lti.get_data.response', message_id: id, key: 'state_' + state, value: state}, '*')""",
                    [message_id, state])
    frame.wait_for_selector("#new-window:not([hidden])")
    assert site.launches() == [] and site.seats("elev-falsk") == 0
