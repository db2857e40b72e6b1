"""Every page a launch reaches, inside the platform's CROSS-SITE frame, in a real browser (Playwright driving
Debian's Chromium, which blocks third-party cookies and with them a cross-site frame's storage).

The sandbox platform is served as ``http://localhost:PORT`` and the tool as ``http://127.0.0.1:PORT``: two sites.
A pupil, a second pupil who finds the course full, the round's teacher, a teacher on a link without a course and
the municipality's administrator launch into the platform's iframe; the walk then follows every link and submits
every form of every page type it reaches, all inside the frame, and fails on any response the frame would
refuse (``Content-Security-Policy: frame-ancestors`` without the platform's origin, any ``X-Frame-Options``),
on Chromium's error page in the frame, on any 5xx, and on a page of the launch that lost its launch token
(``launch_expired`` before the token expired). Links that leave the tool's frame on purpose (``target=_blank``,
downloads) are fetched instead: 200, and a download says ``attachment``.

The main pages of each audience are checked by axe (0 violations) and kept as screenshots in
``test-artifacts/screenshots/tour-*.png``: inside an 870 px platform frame (``tour-...-frame.png``) and at
phone width (360 px, the tool's page opened with its launch token at top level).

A tab left open until the launch token has expired: a click and a hand-in post show the "session ended" page in
the frame; the post's text comes back on that page, and after the course is opened again from the platform it
is back in the hand-in field (kept in a partitioned cookie of the tool, the only storage Chromium leaves a
cross-site frame when third-party cookies are blocked).
"""

from __future__ import annotations

import os
import re
import socket
import threading
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, timedelta
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
from playwright.sync_api import Error as PlaywrightError

# browser: Debian's Chromium as it comes, third-party cookies blocked, and with them a cross-site frame's storage.
from .test_browser import ARGS, CHROMIUM, PNG, SHOTS, WCAG, browser, check_page  # noqa: F401  (browser: a fixture)

pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="Debian's chromium is not installed")

FRAME = "tool"  # the sandbox platform's iframe
FRAME_WIDTH = 870  # a learning platform's content column
PER_PATTERN = 2  # pages of one address pattern visited (lesson 1 and 2, not every lesson)
DOWNLOAD = re.compile(r"/files?/|/file$|\.csv$|\.xlsx$|/download$")
# Forms that end or replace something are sent last, when the rest of the walk is done (a new version takes the
# reviewed one off the showcase, the switch turns the showcase off).
LAST = ("withdraw", "revoke", "delete", "decline", "switch", "new_version")


@dataclass
class Site:
    app: object
    tool: str
    platform: str


@pytest.fixture
def site(config, app_factory):
    """The tool on 127.0.0.1 and the sandbox platform on localhost (another site), one threaded server. The
    Swedish municipality has one seat (the second pupil is offered the waiting list); Oslo has five; the
    round's showcase is on; laerer-1 teaches the round."""
    from sqlalchemy import update
    from werkzeug.serving import make_server

    from lti_tool.cli import prepare_demo
    from lti_tool.db import new_session
    from lti_tool.models import CourseRound
    from lti_tool.services import seats

    from .catalog_factory import add_content, add_course
    from .conftest import name_round_teacher

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    tool, platform = f"http://127.0.0.1:{port}", f"http://localhost:{port}"
    app = app_factory({**config, "BASE_URL": tool, "SANDBOX_BASE_URL": platform})
    prepare_demo(app, catalog=False)
    with new_session(app) as session:
        add_course(session)
        add_content(session)
        seats.set_order(session, "SE-1490", "GIT-AK-1", "now", 1)
        seats.set_order(session, "NO-0301", "GIT-AK-1", "now", 5)
        session.execute(update(CourseRound).values(showcase_enabled=True))
        session.commit()
    name_round_teacher(app, "laerer-1", name="Lärare Lund")
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield Site(app, tool, platform)
    server.shutdown()
    thread.join(5)


def launch_in_frame(page, site: Site, *, user: str, role: str = "learner", municipality: str = "SE-1490",
                    course: str = "GIT-AK-1", locale: str = "sv-SE"):
    """The platform's page, a launch into its iframe (platform storage offered, as Brightspace); the frame."""
    page.goto(site.platform + "/sandbox/")
    page.select_option("#deployment", value=f"sandbox-{municipality}|")
    page.check(f"input[name=role][value={role}]")
    page.fill("#user", user)
    page.select_option("#locale", value=locale)
    page.select_option("#course", value=course)
    page.select_option("#storage", value="parent")
    # The platform's content column, as wide as an LMS gives its tools.
    page.evaluate(f"document.querySelector('iframe[name={FRAME}]').style.width = '{FRAME_WIDTH}px'")
    page.click("button[type=submit]")
    frame = page.frame(name=FRAME)
    frame.wait_for_selector("main[data-role], main[data-error-code]")  # past the login's own pages
    frame.wait_for_load_state("load")
    return frame


def press(locator) -> None:
    """Click a link or a button inside the frame as the page's own click would (a click at coordinates may miss
    while the platform resizes the frame to the page's height)."""
    locator.evaluate("(element) => element.click()")


def frame_ancestors(csp: str) -> list[str] | None:
    for directive in csp.split(";"):
        parts = directive.split()
        if parts and parts[0].lower() == "frame-ancestors":
            return parts[1:]
    return None


def _key(url: str) -> str:
    """A page's address without the launch token."""
    parts = urlsplit(url)
    query = sorted((k, v) for k, v in parse_qsl(parts.query) if k not in ("lt",))
    return parts.path + ("?" + urlencode(query) if query else "")


def _pattern(url: str) -> str:
    """The page's kind: numbers and labels in the path stand for any, query values do not count."""
    parts = urlsplit(url)
    path = re.sub(r"/\d+", "/N", parts.path)
    path = re.sub(r"/pupil/[^/]+", "/pupil/L", path)
    return path + "?" + ",".join(sorted(k for k, _v in parse_qsl(parts.query) if k != "lt"))


FORMS_JS = """() => {
  const links = [...document.querySelectorAll('a[href]')].map((a) => ({
    href: a.href, target: a.target, download: a.hasAttribute('download'), text: a.textContent.trim() }));
  const forms = [...document.forms].map((f, index) => ({
    index, method: (f.getAttribute('method') || 'get').toLowerCase(), action: f.action, target: f.target,
    fields: [...f.elements].filter((e) => e.name).map((e) => e.name + ':' + e.type).sort(),
    buttons: [...f.querySelectorAll('button, input[type=submit]')]
      .filter((b) => (b.type || 'submit') === 'submit').map((b, i) => i),
    carriesToken: !!f.querySelector('input[name=lt]') || /[?&]lt=/.test(f.action) }));
  return { links, forms };
}"""


@dataclass
class Walk:
    """One audience's walk inside the platform's frame, with the problems it found."""

    site: Site
    page: object
    audience: str
    problems: list[str] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)
    patterns: Counter = field(default_factory=Counter)
    forms_done: set[tuple] = field(default_factory=set)
    visited: list[str] = field(default_factory=list)
    submitted: list[str] = field(default_factory=list)
    fetched: list[str] = field(default_factory=list)
    expected_expired: bool = False
    held_pages: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    token: str = ""

    def __post_init__(self):
        self.page.on("response", self._check_response)

    @property
    def frame(self):
        return self.page.frame(name=FRAME)

    # -- what the frame is answered ------------------------------------------------------------------------
    def _check_response(self, response) -> None:
        request = response.request
        try:
            frame = request.frame
        except Exception:  # a service worker's request: no frame
            return
        if frame.name != FRAME or not response.url.startswith(self.site.tool):
            return
        where = f"{self.audience}: {request.method} {_key(response.url)}"
        if response.status >= 500:
            self.problems.append(f"{where}: {response.status}")
        if request.resource_type != "document" or 300 <= response.status < 400:
            return
        headers = response.headers
        if "x-frame-options" in headers:
            self.problems.append(f"{where}: X-Frame-Options {headers['x-frame-options']} refuses the platform")
        ancestors = frame_ancestors(headers.get("content-security-policy", ""))
        if ancestors is not None and "*" not in ancestors and self.site.platform not in ancestors:
            self.problems.append(f"{where}: frame-ancestors {' '.join(ancestors)} refuses {self.site.platform}")

    def _check_frame(self, what: str) -> None:
        frame = self.frame
        if frame.url.startswith("chrome-error://"):
            self.problems.append(f"{self.audience}: {what}: Chromium's error page in the frame")
            return
        code = frame.locator("main").first.get_attribute("data-error-code") if frame.locator("main").count() else None
        if code == "launch_expired" and not self.expected_expired:
            self.problems.append(f"{self.audience}: {what}: launch_expired (the launch token was lost)")

    # -- the walk ------------------------------------------------------------------------------------------
    def run(self, *, limit: int = 80, hold: tuple[str, ...] = ()) -> None:
        """From the frame's current page: every link (once per address, at most PER_PATTERN per kind of page),
        then every form (once per kind), the ones that end something last; repeated until nothing is new.
        ``hold``: forms (``"POST /withdraw"``) left for a later walk. A later walk visits the pages again and
        sends only the forms not sent yet."""
        self.seen.clear()
        self.patterns.clear()
        self.visited.append("--")
        first = len(self.visited)
        start = self.frame.url
        pending_pages = [start, *self.held_pages]
        self.held_pages.clear()
        pending_forms: list[tuple[str, dict]] = []
        self._record(start)
        while pending_pages or pending_forms:
            while pending_pages and len(self.visited) - first < limit:
                url = pending_pages.pop(0)
                if self.frame.url != url:
                    try:
                        self.frame.goto(url)
                        self.frame.wait_for_load_state("load")
                    except PlaywrightError as error:  # net::ERR_BLOCKED_BY_RESPONSE: the frame was refused
                        self.problems.append(f"{self.audience}: GET {_key(url)}: {error.message.splitlines()[0]}")
                        continue
                self._check_frame(f"GET {_key(url)}")
                found = self.frame.evaluate(FORMS_JS) if not self.frame.url.startswith("chrome-error") else None
                if not found:
                    continue
                forms = [(url, form) for form in found["forms"] if self._new_form(url, form)]
                if urlsplit(url).path.startswith("/lti/") and forms:
                    # The launch's answer to the platform's form post cannot be opened again: its form first.
                    landed = self._submit(*forms[0])
                    forms = forms[1:]
                    if landed and self._record(landed):
                        pending_pages.insert(0, landed)
                pending_pages += self._links(found["links"], url)
                pending_forms += forms
            if len(self.visited) - first >= limit:
                pending_pages.clear()
            if not pending_forms:
                break
            pending_forms.sort(key=lambda item: any(word in item[1]["action"] + " ".join(item[1]["fields"])
                                                    for word in LAST))
            url, form = pending_forms.pop(0)
            if f"{form['method'].upper()} {urlsplit(form['action']).path}" in hold:
                self.forms_done.discard((form["method"], _pattern(form["action"]), tuple(form["fields"])))
                self.held_pages.append(url)
                continue
            landed = self._submit(url, form)
            if landed and self._record(landed):
                pending_pages.append(landed)
        print(self)  # shown when the test fails

    def __str__(self) -> str:
        return (f"{self.audience}:\n  visited {self.visited}\n  sent {self.submitted}\n  fetched {self.fetched}\n"
                f"  problems {self.problems}")

    def _record(self, url: str) -> bool:
        """Count a page as seen; False if it was, or if enough of its kind were."""
        key = _key(url)
        if key in self.seen or self.patterns[_pattern(url)] >= PER_PATTERN:
            return False
        self.seen.add(key)
        self.patterns[_pattern(url)] += 1
        self.visited.append(key)
        return True

    def _links(self, links: list[dict], where: str) -> list[str]:
        new = []
        for link in links:
            href = link["href"].split("#")[0]
            if not href.startswith(self.site.tool) or href == where.split("#")[0]:
                continue  # another site (the platform, a manual), or an anchor on this page
            if link["target"] == "_blank" or link["download"] or DOWNLOAD.search(urlsplit(href).path):
                self._fetch(href, download=link["download"] or bool(DOWNLOAD.search(urlsplit(href).path)))
                continue
            if "sign-out" in href or "/static/" in href:
                continue
            if "?" in where and "lt=" in where and "lt=" not in href and not href.endswith("/privacy"):
                self.problems.append(f"{self.audience}: a link on {_key(where)} loses the launch token: {_key(href)}")
            if self._record(href):
                new.append(href)
        return new

    def _fetch(self, href: str, *, download: bool) -> None:
        key = _key(href)
        if key in self.fetched:
            return
        self.fetched.append(key)
        answer = self.page.context.request.get(href)
        if answer.status != 200:
            self.problems.append(f"{self.audience}: {key}: {answer.status} (opened outside the frame)")
        elif download and not answer.headers.get("content-disposition", "").startswith("attachment"):
            self.problems.append(f"{self.audience}: {key}: a download without Content-Disposition: attachment")

    def _new_form(self, url: str, form: dict) -> bool:
        if not form["action"].startswith(self.site.tool):
            return False
        kind = (form["method"], _pattern(form["action"]), tuple(form["fields"]))
        if kind in self.forms_done:
            return False
        self.forms_done.add(kind)
        if "lt=" in url and not form["carriesToken"] and "wt:hidden" not in form["fields"]:
            self.problems.append(f"{self.audience}: a form on {_key(url)} does not carry the launch token: "
                                 f"{form['method'].upper()} {_key(form['action'])}")
        return True

    def _submit(self, url: str, form: dict) -> str | None:
        """Fill the form as a person would and send it, inside the frame; the address it lands on."""
        frame = self.frame
        if frame.url != url:
            frame.goto(url)
            frame.wait_for_load_state("load")
        # The same form on the page as it is now (earlier forms may have come or gone since it was found).
        index = frame.evaluate("""([action, fields]) => [...document.forms].findIndex((f) => f.action === action
            && [...f.elements].filter((e) => e.name).map((e) => e.name + ':' + e.type).sort().join() === fields)""",
                               [form["action"], ",".join(form["fields"])])
        if index < 0:  # gone since, as the walk changed things (the pupil left the course)
            self.skipped.append(f"{form['method'].upper()} {_key(form['action'])} of {_key(url)}")
            return None
        element = frame.locator("form").nth(index)
        fill_form(element)
        what = f"{form['method'].upper()} {_key(form['action'])}"
        self.submitted.append(what)
        if form["target"] == "_blank":
            return None
        try:
            # The form is sent as its button would send it (validation, submitter), and the walk waits for the
            # frame's next document; a click at coordinates is at the mercy of the platform resizing the frame.
            frame.evaluate("window.__walked = true")
            element.evaluate("(f) => f.requestSubmit(f.querySelector("
                             "'button[type=submit], button:not([type]), input[type=submit]') || undefined)")
            frame.wait_for_function("() => !window.__walked && document.readyState === 'complete'", timeout=15000)
        except PlaywrightError as error:
            self.problems.append(f"{self.audience}: {what} from {_key(url)}: {error.message.splitlines()[0]} "
                                 f"(the frame shows {frame.url})")
            return None
        self._check_frame(what)
        return None if frame.url.startswith("chrome-error") else frame.url


def fill_form(form) -> None:
    """Plausible values for the tool's fields: texts, a picture, a score, a number of seats, a date."""
    soon = (date.today() + timedelta(days=20)).isoformat()
    values = {"text": "Jag övade skalan varje dag.", "body": "Hej! Hur långt ska stycket vara?",
              "feedback": "Fint arbete, öva på övergångarna.", "score": "1", "seats": "3", "count": "1",
              "caption": "Min övning", "label": "Rundvandring", "invitation": "ingen-sadan-inbjudan",
              "expires": soon, "code": "ABCD-EFGH"}
    for field_ in form.locator("textarea, input:not([type=hidden]):not([type=submit]):not([type=checkbox])"
                               ":not([type=radio])").all():
        name, kind = field_.get_attribute("name") or "", field_.get_attribute("type") or "textarea"
        if not field_.is_visible() or not field_.is_enabled():
            continue
        if kind == "file":
            field_.set_input_files(files=[{"name": "övning.png", "mimeType": "image/png", "buffer": PNG}])
        elif not field_.input_value() and name in values:
            field_.fill(values[name])
        elif not field_.input_value() and field_.get_attribute("required") is not None:
            field_.fill("1" if kind == "number" else soon if kind == "date" else "Rundvandring")
    radios = form.locator("input[type=radio]")
    if radios.count() and not form.locator("input[type=radio]:checked").count():
        radios.first.check()


def shoot(walk: Walk, phone, name: str) -> None:
    """The frame's page: axe (0 violations) and no sideways scrolling inside the 870 px frame, a screenshot of
    the frame; then the same page at phone width at top level (the launch token is in its address)."""
    shoot_frame(walk, name)
    phone.goto(walk.frame.url)
    phone.wait_for_selector("main")
    check_page(phone, name)


def shoot_frame(walk: Walk, name: str) -> None:
    """axe (0 violations) and no sideways scrolling inside the 870 px frame; a screenshot of the frame."""
    from axe_playwright_python.sync_playwright import Axe

    frame = walk.frame
    frame.wait_for_load_state("load")
    results = Axe().run(frame, options=WCAG)
    assert results.violations_count == 0, f"{name} (frame): {results.generate_report()}"
    overflow = frame.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    wide = frame.evaluate("""() => [...document.querySelectorAll('body *')]
        .filter((e) => e.getBoundingClientRect().right > window.innerWidth + 1)
        .filter((e) => { for (let a = e.parentElement; a; a = a.parentElement) {
            if (['auto', 'scroll', 'hidden'].includes(getComputedStyle(a).overflowX)) return false; } return true; })
        .slice(0, 5).map((e) => e.tagName + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right))""")
    assert overflow <= 0, f"{name}: {overflow}px of horizontal scrolling in the {FRAME_WIDTH}px frame: {wide}"
    SHOTS.mkdir(parents=True, exist_ok=True)
    frame_element = walk.page.locator(f"iframe[name={FRAME}]")
    height = frame.evaluate("document.documentElement.scrollHeight")
    frame_element.evaluate(f"(e) => e.style.height = '{min(max(height, 400), 4000)}px'")
    frame_element.screenshot(path=str(SHOTS / f"{name}-frame.png"))


def _go(walk: Walk, path: str) -> None:
    """Open one of the tool's pages in the frame with the walk's launch token."""
    token = dict(parse_qsl(urlsplit(walk.frame.url).query)).get("lt") or walk.token
    walk.frame.goto(f"{walk.site.tool}{path}{'&' if '?' in path else '?'}lt={token}")
    walk.frame.wait_for_load_state("load")


def test_every_page_and_form_inside_a_cross_site_frame(site, browser):  # noqa: F811
    problems: list[str] = []
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="sv-SE")
    phone = browser.new_context(viewport={"width": 360, "height": 740}, locale="sv-SE").new_page()

    # The pupil: the course, lessons, both assignments (a file and a text), messages, the showcase, leaving.
    pupil = Walk(site, context.new_page(), "pupil")
    launch_in_frame(pupil.page, site, user="elev-1")
    pupil.token = dict(parse_qsl(urlsplit(pupil.frame.url).query))["lt"]
    shoot(pupil, phone, "tour-pupil-home")
    # A second pupil of the same municipality: the one seat is taken, the waiting list is offered in the frame;
    # the place comes to them when the first pupil leaves (at the end of the first pupil's walk).
    second = Walk(site, context.new_page(), "pupil on the waiting list")
    launch_in_frame(second.page, site, user="elev-2")
    assert second.frame.locator("main").get_attribute("data-error-code") == "budget_used_up"
    second.token = ""
    second.run()
    problems += second.problems
    assert any("/waitlist" in s for s in second.submitted), second

    pupil.run(hold=("POST /withdraw",))
    assert any("/assignment/" in s and s.startswith("POST") for s in pupil.submitted), pupil.submitted
    assert any("/message" in s for s in pupil.submitted), pupil.submitted
    assert any(s.startswith("GET /withdraw") for s in pupil.submitted), pupil.submitted
    assert any(k.startswith("/showcase") for k in pupil.visited), (pupil.visited, pupil.problems)
    for path, name in (("/lesson/1", "tour-pupil-lesson"), ("/assignment/2", "tour-pupil-assignment"),
                       ("/showcase", "tour-pupil-showcase")):
        _go(pupil, path)
        shoot(pupil, phone, name)

    # An Oslo pupil (five seats) hands in; the round's teacher then has work to review.
    oslo = Walk(site, context.new_page(), "Oslo pupil")
    launch_in_frame(oslo.page, site, user="elev-3", municipality="NO-0301", locale="nb-NO")
    oslo.token = dict(parse_qsl(urlsplit(oslo.frame.url).query))["lt"]
    press(oslo.frame.get_by_role("link", name="Oppgave 2", exact=False).first)
    oslo.frame.wait_for_selector("main[data-assignment]")
    oslo.frame.fill("#text", "Jeg øvde hver dag.")
    press(oslo.frame.get_by_role("button", name="Lever"))
    oslo.frame.wait_for_selector("main[data-hand-in=submitted]")
    problems += oslo.problems

    # The round's teacher: dashboard, queue, grades, a pupil, the review form, messages, the showcase.
    teacher = Walk(site, context.new_page(), "teacher")
    launch_in_frame(teacher.page, site, user="laerer-1", role="instructor")
    teacher.token = dict(parse_qsl(urlsplit(teacher.frame.url).query))["lt"]
    shoot(teacher, phone, "tour-teacher-dashboard")
    teacher.run(hold=("POST /classroom/showcase/switch",))
    assert any("/submission/" in s for s in teacher.submitted), teacher.submitted
    for path, name in (("/teach/queue", "tour-teacher-queue"), ("/teach/grades", "tour-teacher-grades")):
        _go(teacher, path)
        shoot(teacher, phone, name)

    # The pupil again, after the teacher's feedback: sharing on the showcase, then leaving the course (the place
    # goes to the pupil on the waiting list).
    _go(pupil, "/home")
    pupil.run()
    problems += pupil.problems
    assert any(s == "POST /withdraw" for s in pupil.submitted), pupil.submitted
    assert any(s.endswith("/share") for s in pupil.submitted), pupil.submitted
    launch_in_frame(second.page, site, user="elev-2")
    assert second.frame.locator("main").get_attribute("data-seat") == "now"

    # The teacher again: the shared work to approve, then the showcase switched off.
    _go(teacher, "/teach/")
    teacher.run()
    problems += teacher.problems
    assert any("/showcase/switch" in s for s in teacher.submitted), teacher.submitted
    assert any(re.search(r"/showcase/\d+/(approve|decline)", s) for s in teacher.submitted), teacher.submitted

    # A teacher on a link without a course: what to ask for, the municipality's courses, their rounds.
    courseless = Walk(site, context.new_page(), "teacher without a course")
    launch_in_frame(courseless.page, site, user="laerer-1", role="instructor", course="")
    assert courseless.frame.locator("main").get_attribute("data-page") == "no-course"
    courseless.token = dict(parse_qsl(urlsplit(courseless.frame.url).query))["lt"]
    shoot(courseless, phone, "tour-teacher-no-course")
    courseless.run()
    problems += courseless.problems

    # A pupil on a link without a course.
    lost = Walk(site, context.new_page(), "pupil without a course")
    launch_in_frame(lost.page, site, user="elev-4", municipality="NO-0301", course="", locale="nb-NO")
    assert lost.frame.locator("main").get_attribute("data-page") == "no-course"
    lost.token = dict(parse_qsl(urlsplit(lost.frame.url).query))["lt"]
    shoot(lost, phone, "tour-pupil-no-course")
    lost.run()
    problems += lost.problems

    # The municipality's administrator: the console, its order form, progress, invitations.
    admin = Walk(site, context.new_page(), "municipal administrator")
    launch_in_frame(admin.page, site, user="rektor-1", role="administrator", course="")
    assert admin.frame.locator("main").get_attribute("data-console") == "municipal"
    admin.token = dict(parse_qsl(urlsplit(admin.frame.url).query))["lt"]
    shoot(admin, phone, "tour-municipal-console")
    admin.run()
    problems += admin.problems
    assert any("/municipal/orders" in s for s in admin.submitted), admin.submitted
    assert any("/municipal/invitations/issue" in s for s in admin.submitted), admin.submitted
    for path, name in (("/municipal/progress", "tour-municipal-progress"),
                       ("/municipal/invitations", "tour-municipal-invitations")):
        _go(admin, path)
        shoot(admin, phone, name)

    assert problems == [], "\n".join(problems)
    context.close()


def test_staff_console_tour(site, browser):  # noqa: F811
    """National staff's console is never framed; its overview at phone width and at 870 px."""
    for width, name in ((360, "tour-staff-overview"), (FRAME_WIDTH, "tour-staff-overview-wide")):
        page = browser.new_page(viewport={"width": width, "height": 800}, locale="sv-SE")
        page.goto(site.tool + "/staff/")
        page.fill("#name", "Nora")
        page.get_by_role("button", name="Logga in lokalt").click()
        page.wait_for_selector("main[data-console=staff]")
        check_page(page, name)
        page.close()


def test_a_tab_left_open_until_the_session_ends(site, browser):  # noqa: F811
    """The launch token expires while the pupil's tab is open. A click and a hand-in post both show the "session
    ended" page inside the frame (framed by the platform, never Chromium's error page), which says how to open
    the course again; the posted text is on that page, and back in the field after the next launch from the
    platform. Debian's Chromium refuses the cross-site frame any storage (drafts.js keeps nothing there: the page
    promises nothing), but keeps the tool's partitioned cookie, which carries the text over."""
    app = site.app
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="sv-SE")
    page = context.new_page()
    walk = Walk(site, page, "pupil, session ended", expected_expired=True)
    frame = launch_in_frame(page, site, user="elev-sent", municipality="NO-0301")
    press(frame.get_by_role("link", name="Uppgift 2").first)
    frame.wait_for_selector("main[data-assignment]")
    frame.wait_for_load_state("load")
    assignment_url = frame.url
    # What this browser does in a cross-site frame: no storage at all, so no promise to keep drafts.
    assert frame.evaluate("() => { try { return localStorage.length >= 0; } catch (e) { return false; } }") is False
    assert not frame.locator("[data-draft-note]").first.is_visible()

    # A click after the token expired.
    app.config["LAUNCH_TOKEN_TTL_SECONDS"] = -1
    press(frame.locator("p.crumb a").first)
    frame.wait_for_selector("main[data-error-code]")
    walk._check_frame("a click after the session ended")
    assert frame.locator("main").get_attribute("data-error-code") == "launch_expired"
    told = frame.locator("main .notice").first.inner_text()
    assert "open the course again" in told or "kursen igen" in told  # how to start afresh from the platform

    # A hand-in sent after the token expired: the text is on the "session ended" page, nothing is handed in.
    app.config["LAUNCH_TOKEN_TTL_SECONDS"] = 3600
    frame.goto(assignment_url)
    answer = "Jag övade skalan i tjugo minuter,\nsedan spelade jag låten två gånger."
    frame.fill("#text", answer)
    app.config["LAUNCH_TOKEN_TTL_SECONDS"] = -1
    press(frame.get_by_role("button", name="Lämna in"))
    frame.wait_for_selector("main[data-error-code=launch_expired]")
    walk._check_frame("a hand-in after the session ended")
    assert frame.input_value("#kept-text") == answer
    shoot_frame(walk, "tour-pupil-session-ended")  # the answer to a post: in the frame only
    kept = [c["name"] for c in context.cookies() if c["name"].startswith("kulturskola_kept")]
    assert kept == ["kulturskola_kept_text"]  # the tool's partitioned cookie, kept in the frame
    app.config["LAUNCH_TOKEN_TTL_SECONDS"] = 3600

    # The course opened again from the platform: the text is back in the field, and the page says so.
    frame = launch_in_frame(page, site, user="elev-sent", municipality="NO-0301")
    press(frame.get_by_role("link", name="Uppgift 2").first)
    frame.wait_for_selector("main[data-assignment]")
    assert frame.input_value("#text") == answer
    assert frame.locator("#hand-in-form [data-draft-restored]").is_visible()
    press(frame.get_by_role("button", name="Lämna in"))
    frame.wait_for_selector("main[data-hand-in=submitted]")
    assert not [c for c in context.cookies() if c["name"].startswith("kulturskola_kept")]
    assert walk.problems == [], "\n".join(walk.problems)
    context.close()


@pytest.mark.parametrize("path, code, status", [("/lti/launch", "method_not_allowed", 405),
                                                ("/no/such/page", "not_found", 404)])
def test_the_tools_own_error_page_shows_in_the_platforms_frame(site, browser, path, code, status):  # noqa: F811
    """A GET on the launch address (a bookmark, a reload after the launch) and an unknown address: the tool's own
    page in the launch's language, shown inside the platform's cross-site frame, never Chromium's refusal."""
    page = browser.new_context(locale="nb-NO", viewport={"width": 1000, "height": 800}).new_page()
    page.goto(site.platform + "/sandbox/")
    answers = []
    page.on("response", lambda response: answers.append(response) if path in response.url else None)
    page.evaluate(f"(url) => {{ document.querySelector('iframe[name={FRAME}]').src = url; }}", site.tool + path)
    page.wait_for_timeout(200)
    frame = page.frame(name=FRAME)
    frame.wait_for_selector("main[data-error-code]")
    assert frame.locator("main").get_attribute("data-error-code") == code
    assert frame.locator("html").get_attribute("lang") == "nb"
    assert answers and answers[-1].status == status
    policy = answers[-1].headers.get("content-security-policy", "")
    assert "frame-ancestors *" in policy and "x-frame-options" not in answers[-1].headers
    check_page(frame.page, f"error-{code}-in-frame")
