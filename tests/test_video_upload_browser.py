"""A video hand-in in a real browser (Playwright driving Debian's Chromium) at phone width: a file too large for the
course is refused before a byte is sent; a video goes in several pieces with the progress bar showing (axe finds
nothing on the page while it uploads), survives a dropped connection, can be cancelled, and becomes the hand-in;
the round's teacher gets a player on the review page and the file answers a range request (seeking)."""

from __future__ import annotations

import re
import threading
import time

import pytest

from . import sample_files
from .test_browser import CHROMIUM, WCAG, browser, check_page, launch, live  # noqa: F401  (browser, live: fixtures)
from .test_hand_in_browser import site  # noqa: F401  (a fixture: the platform and the tool on two sites)

pytestmark = pytest.mark.skipif(not __import__("os").path.exists(CHROMIUM),
                                reason="Debian's chromium is not installed")

PIECE = 16 * 1024
VIDEO = sample_files.MP4 + bytes(range(256)) * 600  # about 150 KiB: ten pieces of 16 KiB
TOO_LARGE = sample_files.MP4 + bytes(300 * 1024)


@pytest.fixture
def config(config):
    """GIT-AK-1 is a video course here: 200 KiB (other courses 100 KiB), sent in pieces of 16 KiB."""
    return {**config, "UPLOAD_MAX_MB": 100 / 1024, "UPLOAD_MAX_MB_BY_COURSE": {"GIT-AK-1": 200 / 1024},
            "UPLOAD_CHUNK_MB": PIECE / (1024 * 1024)}


class Pieces:
    """The page's requests to the upload endpoints, watched (and a piece held back or dropped on purpose)."""

    def __init__(self, page):
        self.requests: list[tuple[str, str]] = []
        self.held: list = []
        self.hold_at: int | None = None  # the piece (counted from 1) held back until released
        self.drop_at: int | None = None  # the piece (counted from 1) whose connection drops, once
        self.patches = 0
        self.lock = threading.Lock()
        page.route(re.compile(r".*/(uploads|assignment/\d+/uploads)(/|\?|$).*"), self.handle)

    def handle(self, route, request):
        self.requests.append((request.method, request.url))
        if request.method == "PATCH":
            self.patches += 1
            if self.patches == self.drop_at:
                route.abort("connectionreset")
                return
            if self.patches == self.hold_at:
                self.held.append(route)
                return
        route.continue_()

    def release(self):
        while self.held:
            self.held.pop().continue_()


def until(page, script: str, timeout: float = 15) -> None:
    """Wait until ``script`` is true in the page (the page's CSP allows no eval, so no wait_for_function)."""
    ends = time.monotonic() + timeout
    while not page.evaluate(script):
        assert time.monotonic() < ends, f"never true: {script} ({page.inner_text('main')[-800:]})"
        page.wait_for_timeout(50)


def test_a_video_hand_in_in_pieces_with_a_progress_bar(live, browser):  # noqa: F811
    pupil = launch(browser, live, user="dansare-1")
    pupil.click("text=Uppgift 1")
    pupil.wait_for_selector("form[data-chunked-upload]")
    pieces = Pieces(pupil)
    assert pupil.locator("[data-upload-progress]").is_hidden()
    assert "högst 200 MB" not in pupil.content() and re.search(r"högst 0,2\s?MB", pupil.content())

    # Too large for the course: said at once, nothing sent.
    pupil.set_input_files("#file", files=[{"name": "för-stor.mp4", "mimeType": "video/mp4", "buffer": TOO_LARGE}])
    error = pupil.locator("[data-upload-error]")
    assert error.is_visible() and re.search(r"\b0,2 MB", error.inner_text())  # the course's limit, in Swedish form
    assert pupil.get_attribute("#file", "aria-invalid") == "true"
    pupil.click("#hand-in-form button[type=submit]")
    assert error.is_visible() and pieces.requests == []

    # A video: the progress bar while its pieces go; the third piece held back to look at the page meanwhile.
    pupil.set_input_files("#file", files=[{"name": "dans.mp4", "mimeType": "video/mp4", "buffer": VIDEO}])
    assert error.is_hidden() and pupil.get_attribute("#file", "aria-invalid") is None
    pieces.hold_at, pieces.drop_at = 3, 5
    pupil.click("#hand-in-form button[type=submit]")
    until(pupil, "document.querySelector('#upload-progress').value > 0")
    progress = pupil.locator("[data-upload-progress]")
    assert progress.is_visible() and pupil.locator("[data-upload-cancel]").is_visible()
    assert progress.get_attribute("data-state") == "sending"
    sent = pupil.inner_text("#upload-status")  # so much of so much sent, in the page's number format
    assert re.search(r"\b0,\d+\D.*\b0,15 MB\D.*\b\d{1,2} %", sent), sent
    check_page(pupil, "video-upload-progress")
    pieces.release()
    # The fifth piece's connection drops: the page asks where the upload stands and goes on from there.
    pupil.wait_for_selector("main[data-hand-in=submitted]", timeout=30000)
    assert "Ditt arbete har lämnats in." in pupil.content() and pupil.locator("main video").count() == 1
    patches = [url for method, url in pieces.requests if method == "PATCH"]
    offsets = [int(re.search(r"offset=(\d+)", url).group(1)) for url in patches]
    assert len(patches) >= 11 and offsets[:5] == [0, PIECE, 2 * PIECE, 3 * PIECE, 4 * PIECE]
    assert offsets[5] == 4 * PIECE  # the dropped piece sent again from the same offset
    assert ("GET" in {method for method, _ in pieces.requests}) and all("lt=" in url for _, url in pieces.requests)
    assert sorted(set(offsets)) == list(range(0, len(VIDEO), PIECE))
    check_page(pupil, "video-upload-handed-in")

    # Another try, cancelled half-way: nothing handed in, the upload removed.
    pieces.requests.clear()
    pieces.patches, pieces.hold_at, pieces.drop_at = 0, 2, None
    pupil.set_input_files("#file", files=[{"name": "dans-2.mp4", "mimeType": "video/mp4", "buffer": VIDEO[:-1]}])
    pupil.click("#hand-in-form button[type=submit]")
    until(pupil, "document.querySelector('#upload-progress').value > 0")
    pupil.click("[data-upload-cancel]")
    pupil.wait_for_selector("[data-upload-progress][data-state=cancelled]")
    assert pupil.inner_text("#upload-status").strip()
    assert "DELETE" in {method for method, _ in pieces.requests}
    pieces.release()
    assert pupil.locator("main").get_attribute("data-version") == "1"

    # The round's teacher: the video on the review page, with a player that can seek (a range request).
    teacher = launch(browser, live, user="laerer-1", role="instructor")
    teacher.locator("main a[href*='/submission/']").first.click()
    teacher.wait_for_selector("main[data-submission]")
    player = teacher.locator("main video[controls]")
    assert player.count() == 1
    source = player.get_attribute("src")
    answer = teacher.evaluate("""async (src) => {
        const r = await fetch(src, {headers: {Range: 'bytes=1000-1999'}});
        const body = await r.arrayBuffer();
        return [r.status, r.headers.get('Content-Range'), r.headers.get('Accept-Ranges'), body.byteLength];
    }""", source)
    assert answer == [206, f"bytes 1000-1999/{len(VIDEO)}", "bytes", 1000]
    check_page(teacher, "video-upload-review")


def test_a_video_goes_in_pieces_inside_the_platforms_cross_site_frame(site, browser):  # noqa: F811
    """The sandbox platform on localhost frames the tool on 127.0.0.1, third-party cookies blocked (Debian's
    Chromium): every piece carries the launch token, no cookie is needed."""
    from axe_playwright_python.sync_playwright import Axe

    _app, platform = site
    page = browser.new_context(viewport={"width": 870, "height": 900}, locale="sv-SE").new_page()
    page.goto(platform + "/sandbox/")
    page.select_option("#deployment", value="sandbox-SE-1490|")
    page.check("input[name=role][value=learner]")
    page.fill("#user", "filmare-1")
    page.select_option("#locale", value="sv-SE")
    page.select_option("#course", value="GIT-AK-1")
    page.click("button[type=submit]")
    frame = page.frame(name="tool")
    frame.wait_for_selector("main[data-role]")
    assert frame.url.startswith("http://127.0.0.1:") and page.url.startswith("http://localhost:")
    frame.get_by_role("link", name="Uppgift 1").first.click()
    frame.wait_for_selector("form[data-chunked-upload]")
    frame.wait_for_load_state("load")
    sent: list[str] = []
    page.on("request", lambda request: sent.append(f"{request.method} {request.url}")
            if "/uploads" in request.url else None)
    frame.set_input_files("#file", files=[{"name": "film.mp4", "mimeType": "video/mp4", "buffer": VIDEO}])
    frame.click("#hand-in-form button[type=submit]")
    frame.wait_for_selector("main[data-hand-in=submitted]", timeout=30000)
    patches = [line for line in sent if line.startswith("PATCH ")]
    assert len(patches) == -(-len(VIDEO) // PIECE) and all("lt=" in line for line in sent)
    results = Axe().run(frame, options=WCAG)
    assert results.violations_count == 0, results.generate_report()
