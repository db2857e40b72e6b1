"""The README's tour, photographed: the demo (``flask --app lti_tool demo``'s data: the demo catalog, the sandbox
platforms and the cross-border round) served on 127.0.0.1, and Debian's Chromium walking each audience's main
pages as they use them: the pupil and the teacher inside the sandbox platform's frame (870 px wide, as an LMS
shows the tool), the municipal contact in the frame too, national staff in a browser window of their own.

    python docs/tour/capture.py            # writes docs/tour/*.png (English); --locale sv-SE for Swedish

Nothing here reaches the internet; the database and the keys live in a temporary folder."""

from __future__ import annotations

import argparse
import socket
import tempfile
import threading
from pathlib import Path
from urllib.parse import urlencode

HERE = Path(__file__).resolve().parent
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
PNG = (b'\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02\x00\x00\x00\x90wS\xde'
       b'\x00\x00\x00\x0cIDATx\x9cc\xf8\xbf\xc0\x01\x00\x04\x81\x01\xe0r\x1a\x11\x9b'
       b'\x00\x00\x00\x00IEND\xaeB`\x82')


def serve(folder: Path):
    """The demo's app on a free port of 127.0.0.1, its data prepared as ``flask demo`` prepares it."""
    from werkzeug.serving import make_server

    from lti_tool import create_app
    from lti_tool.cli import prepare_demo

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    app = create_app({"DATABASE_URL": f"sqlite:///{folder / 'tour.db'}", "BASE_URL": base,
                      "SANDBOX_BASE_URL": base, "KEYS_DIR": str(folder / "keys"), "UPLOAD_DIR": str(folder / "up"),
                      "SECRET_KEY": "the-tour-of-the-demo-" + "x" * 32, "SANDBOX": True, "REDIS_URL": "",
                      "OUTBOUND_ALLOW_PRIVATE": True})
    prepare_demo(app)
    server = make_server("127.0.0.1", port, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return base, server


class Tour:
    def __init__(self, browser, base: str, locale: str) -> None:
        self.base, self.locale = base, locale
        self.context = browser.new_context(viewport={"width": 1180, "height": 900}, locale=locale)
        self.page = self.context.new_page()
        self.page.goto(base + "/sandbox/")
        self.viewer = self.context.new_page()
        self.viewer.set_viewport_size({"width": 870, "height": 700})

    def launch(self, kind: str, **extra: str):
        """A ready-made launch of the demo round (sandbox/demo_round.py) in the platform's frame, in ``locale``."""
        from lti_tool.sandbox import demo_round

        found = next(launch for launch in demo_round.LAUNCHES if launch.kind == kind)
        query = {**found.query(), "locale": self.locale, **extra}
        query = {key: value for key, value in query.items() if value is not None}
        self.page.locator("iframe[name=tool]").evaluate("(frame, url) => { frame.src = url; }",
                                                       self.base + "/sandbox/start?" + urlencode(query))
        self.page.wait_for_timeout(300)
        frame = self.page.frame(name="tool")
        frame.wait_for_selector("main", state="attached")
        frame.wait_for_load_state("networkidle")
        return frame

    def shot(self, frame, name: str) -> None:
        """The frame's page, whole, at the 870 px an LMS gives it (the launch token in its address opens it)."""
        frame.wait_for_load_state("networkidle")
        self.viewer.goto(frame.url)
        self.viewer.evaluate("document.documentElement.classList.add('in-frame')")  # as inside the frame
        self.viewer.screenshot(path=str(HERE / f"{name}.png"), full_page=True)
        print("wrote", HERE / f"{name}.png")


def click(frame, selector: str) -> None:
    """Follow a link or send a form in the frame and wait for the next page."""
    with frame.expect_navigation():
        frame.locator(selector).first.click()
    frame.wait_for_load_state("networkidle")


def pupil_pages(tour: Tour) -> None:
    frame = tour.launch("pupil")
    tour.shot(frame, "pupil-course")
    click(frame, "main a[href*='/lesson/']")
    tour.shot(frame, "pupil-lesson")
    for _step in range(6):  # on through the module's lessons to its first assignment
        click(frame, "main a[rel=next]")
        if frame.locator("main[data-assignment]").count():
            break
    if frame.locator("#text").count():
        frame.fill("#text", "I practised the chord changes for twenty minutes every day.")
    elif frame.locator("#file").count():
        frame.set_input_files("#file", files=[{"name": "practice.png", "mimeType": "image/png", "buffer": PNG}])
    click(frame, "main form.hand-in button[type=submit], main form[enctype] button[type=submit]")
    tour.shot(frame, "pupil-assignment")


def teacher_pages(tour: Tour) -> None:
    frame = tour.launch("round_teacher")
    tour.shot(frame, "teacher-dashboard")
    click(frame, "main a[href*='/grades']")
    tour.shot(frame, "teacher-grades")
    frame = tour.launch("round_teacher")
    click(frame, "main a[href*='/queue']")
    click(frame, "main a[href*='/submission/']")
    frame.fill("#feedback", "A good start! Practise the change from G to C slowly, then speed up.")
    if frame.locator("#score").count():
        frame.fill("#score", "8")
    click(frame, "main form:has(#feedback) button[type=submit]")
    tour.shot(frame, "teacher-review")


def municipal_pages(tour: Tour) -> None:
    frame = tour.launch("pupil", role="administrator", course="", round="", user="head-of-school")
    tour.shot(frame, "municipal-console")


def staff_pages(browser, base: str, locale: str) -> None:
    page = browser.new_page(viewport={"width": 1180, "height": 900}, locale=locale)
    page.goto(base + "/staff/sign-in")
    page.fill("#name", "Nora")
    page.locator("form[action$='/sign-in/local'] button[type=submit]").click()
    for path, name in (("/staff/", "staff-overview"), ("/staff/catalog", "staff-catalog"),
                       ("/staff/orders", "staff-orders"), ("/staff/registrations", "staff-registrations")):
        page.goto(base + path)
        page.wait_for_load_state("networkidle")
        page.screenshot(path=str(HERE / f"{name}.png"), full_page=True)
        print("wrote", HERE / f"{name}.png")


def main() -> None:
    from playwright.sync_api import sync_playwright

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--locale", default="en-GB")
    locale = parser.parse_args().locale
    with tempfile.TemporaryDirectory() as folder:
        base, server = serve(Path(folder))
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
                tour = Tour(browser, base, locale)
                pupil_pages(tour)
                teacher_pages(tour)
                tour.launch("pupil")  # the pupil opens the assignment with its feedback
                frame = tour.page.frame(name="tool")
                click(frame, "main a[href*='/assignment/']")
                tour.shot(frame, "pupil-feedback")
                municipal_pages(tour)
                staff_pages(browser, base, locale)
                browser.close()
        finally:
            server.shutdown()


if __name__ == "__main__":
    main()
