"""Launch under load: N pupils of many municipalities each go through the whole launch (the platform's login
initiation -> ``/lti/login`` -> the platform's signed id_token posted to ``/lti/launch`` -> the first page)
against the tool under gunicorn with PostgreSQL and Redis, all on 127.0.0.1.

The platforms are simulated by this script: five LMS issuers (one RSA key each, their JWKS served by a small
local HTTP server with ``Cache-Control: max-age=300``), each with one registration (client id) and one
deployment per municipality it serves. The script plays the platform's part of the OIDC flow itself: it
reads ``state`` and ``nonce`` from the tool's authentication request and signs the id_token (RS256) for
them, so the tool verifies a real signature against keys it fetches over HTTP, with the sandbox turned off
as in production.

The tool runs on a fresh database (created, migrated with ``flask --app lti_tool db upgrade``, dropped at the
end) with the municipalities, registrations, deployments, a catalog synced from a feed (courses, rounds,
modules, lessons, assignments) and orders whose seat budgets are too small for some municipalities on
purpose, and one course whose round has fewer national places than pupils who want it.

In the same run, under the same load, concurrency and gunicorn settings, ``benchmarks/reference_tool.py``
(plain pylti1p3: ``FlaskOIDCLogin`` and a validated ``FlaskMessageLaunch``, nonces and the platform JWKS in
Redis, no database, no seat, no page) answers the same pupils: the bare protocol step.

Prints launches per second, p50/p95/p99 of the whole launch as the browser sees it, CPU milliseconds per
launch of the server processes, seats granted against budget per course with overruns checked in the
database (must be 0), refusals and errors by kind, and the ratio of the full launch to the bare protocol
step.

    python benchmarks/launch_load.py [--pupils 2000] [--concurrency 16] [--workers 4] [--threads 1]
                                     [--postgres URL] [--redis URL] [--quick]

The load generator runs on the same cores as the servers: its own CPU per launch is printed too.
"""

from __future__ import annotations

import argparse
import http.client
import json
import logging
import math
import os
import random
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from html import unescape
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import create_engine, text
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lti_tool.config import normalise_database_url  # noqa: E402
from lti_tool.domain.claims import (CLAIM_AGS, CLAIM_CONTEXT, CLAIM_CUSTOM, CLAIM_DEPLOYMENT_ID,  # noqa: E402
                                    CLAIM_LAUNCH_PRESENTATION, CLAIM_MESSAGE_TYPE, CLAIM_NRPS,
                                    CLAIM_RESOURCE_LINK, CLAIM_ROLES, CLAIM_TARGET_LINK_URI, CLAIM_TOOL_PLATFORM,
                                    CLAIM_VERSION, MESSAGE_RESOURCE_LINK)

MUNICIPALITIES = [
    ("SE", "0180", "Stockholm"), ("SE", "1480", "Göteborg"), ("SE", "1280", "Malmö"), ("SE", "0380", "Uppsala"),
    ("NO", "0301", "Oslo"), ("SE", "1490", "Borås"), ("SE", "1440", "Ale"), ("SE", "2321", "Åre"),
    ("NO", "4601", "Bergen"), ("SE", "0580", "Linköping"), ("SE", "1880", "Örebro"), ("SE", "2480", "Umeå"),
    ("NO", "5001", "Trondheim"), ("SE", "0680", "Jönköping"), ("SE", "1283", "Helsingborg"),
    ("NO", "1103", "Stavanger"), ("SE", "2581", "Piteå"), ("SE", "0780", "Växjö"), ("NO", "5501", "Tromsø"),
    ("NO", "4204", "Kristiansand"),
]
COURSES = [
    ("GIT-AK-1", "music", "Akustisk gitarr, nivå 1", "Akustisk gitar, nivå 1"),
    ("PIANO-1", "music", "Piano för nybörjare", "Piano for nybegynnere"),
    ("SANG-POP-1", "music", "Popsång", "Popsang"),
    ("TROMMOR-1", "music", "Trummor, grund", "Trommer, grunnkurs"),
    ("PROD-1", "digital", "Musikproduktion", "Musikkproduksjon"),
    ("FILM-1", "digital", "Film med mobilen", "Film med mobilen"),
    ("SPEL-1", "digital", "Spelutveckling", "Spillutvikling"),
    ("DANS-STREET-1", "dance", "Streetdans", "Streetdans"),
    ("TEATER-1", "theatre", "Teater på distans", "Teater på avstand"),
    ("SKRIV-1", "writing", "Kreativt skrivande", "Kreativ skriving"),
    ("SERIE-1", "art", "Serieteckning", "Tegneserier"),
    ("KONST-DIG-1", "art", "Digitalt måleri", "Digitalt maleri"),
]
PLATFORMS = ["canvas", "moodle", "itslearning", "brightspace", "schoology"]
LEARNER = "http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"
COURSES_PER_MUNICIPALITY = 6
ERROR_CODE = re.compile(r'data-error-code="([^"]+)"')
log = logging.getLogger("launch_load")


# -- the simulated platforms ------------------------------------------------------------------------------

@dataclass
class Client:
    """One registration: a municipality's client id at one platform, with its deployment."""

    platform: str
    issuer: str
    client_id: str
    deployment_id: str
    municipality_id: str
    country: str
    courses: list[str]
    kid: str


@dataclass
class Pupil:
    number: int
    sub: str
    client: Client
    course: str | None
    locale: str
    round: str | None = None  # None: the round the tool chooses (the open one whose enrolment closes first)


class Platforms:
    """Five LMS issuers on one local HTTP server: ``/<platform>/jwks`` for each, and an authorization URL the
    browser never has to visit (this script answers the authentication request itself)."""

    def __init__(self):
        self.keys = {name: rsa.generate_private_key(public_exponent=65537, key_size=2048) for name in PLATFORMS}
        self.kids = {name: f"{name}-{uuid.uuid4().hex[:8]}" for name in PLATFORMS}
        self.jwks_fetches = Counter()
        self._lock = threading.Lock()
        self.server, self.base = _serve(self)

    def issuer(self, name: str) -> str:
        return f"{self.base}/{name}"

    def jwks(self, name: str) -> dict:
        public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.keys[name].public_key()))
        public.update(kid=self.kids[name], alg="RS256", use="sig")
        return {"keys": [public]}

    def __call__(self, environ, start_response):
        request = Request(environ)
        name, _, rest = request.path.strip("/").partition("/")
        if name in self.keys and rest == "jwks":
            with self._lock:
                self.jwks_fetches[name] += 1
            response = Response(json.dumps(self.jwks(name)), content_type="application/json",
                                headers={"Cache-Control": "max-age=300"})
        else:
            response = Response("not here", status=404)
        return response(environ, start_response)

    def id_token(self, pupil: Pupil, auth: dict[str, str], tool_base: str) -> str:
        client = pupil.client
        now = int(time.time())
        context_id = f"{client.municipality_id}-{pupil.course or 'start'}"
        custom = {"course": pupil.course} if pupil.course else {}
        if pupil.round:
            custom["round"] = pupil.round
        claims = {
            "iss": client.issuer, "aud": auth["client_id"], "azp": auth["client_id"], "sub": pupil.sub,
            "iat": now, "exp": now + 300, "nonce": auth["nonce"],
            CLAIM_VERSION: "1.3.0", CLAIM_MESSAGE_TYPE: MESSAGE_RESOURCE_LINK,
            CLAIM_DEPLOYMENT_ID: client.deployment_id, CLAIM_TARGET_LINK_URI: tool_base + "/lti/launch",
            CLAIM_RESOURCE_LINK: {"id": f"link-{context_id}", "title": pupil.course or "Kulturskola"},
            CLAIM_ROLES: [LEARNER], CLAIM_CUSTOM: custom,
            CLAIM_CONTEXT: {"id": context_id, "title": f"Kulturskolan {client.municipality_id}",
                            "type": ["http://purl.imsglobal.org/vocab/lis/v2/course#CourseOffering"]},
            CLAIM_LAUNCH_PRESENTATION: {"locale": pupil.locale, "document_target": "iframe"},
            CLAIM_TOOL_PLATFORM: {"guid": client.platform, "product_family_code": client.platform},
            CLAIM_AGS: {"scope": ["https://purl.imsglobal.org/spec/lti-ags/scope/lineitem",
                                  "https://purl.imsglobal.org/spec/lti-ags/scope/score"],
                        "lineitems": f"{client.issuer}/api/lti/courses/{context_id}/line_items"},
            CLAIM_NRPS: {"context_memberships_url": f"{client.issuer}/api/lti/courses/{context_id}/names_and_roles",
                         "service_versions": ["2.0"]},
        }
        return jwt.encode(claims, self.keys[client.platform], algorithm="RS256",
                          headers={"kid": self.kids[client.platform]})


def _serve(app):
    port = free_port()
    server = make_server("127.0.0.1", port, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{port}"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def make_clients(platforms: Platforms, municipalities: int, courses: int) -> list[Client]:
    codes = [code for code, *_ in COURSES[:courses]]
    clients = []
    for index, (country, code, _name) in enumerate(MUNICIPALITIES[:municipalities]):
        platform = PLATFORMS[index % len(PLATFORMS)]
        ordered = [codes[(index + 2 * j) % len(codes)] for j in range(min(COURSES_PER_MUNICIPALITY, len(codes)))]
        clients.append(Client(platform=platform, issuer=platforms.issuer(platform),
                              client_id=f"{platform}-{country}-{code}", deployment_id=f"{platform}:{code}:1",
                              municipality_id=f"{country}-{code}", country=country,
                              courses=list(dict.fromkeys(ordered)), kid=platforms.kids[platform]))
    return clients


def make_pupils(clients: list[Client], count: int, prefix: str, seed: int, round_id: str | None = None) -> list[Pupil]:
    rng = random.Random(seed)
    pupils = []
    for number in range(count):
        client = clients[number % len(clients)]
        locale = "sv-SE" if client.country == "SE" else rng.choice(["nb-NO", "nb-NO", "nn-NO"])
        pupils.append(Pupil(number, f"{prefix}-{number}", client, rng.choice(client.courses), locale, round_id))
    rng.shuffle(pupils)
    return pupils


# -- the tool's data ----------------------------------------------------------------------------------------

def catalog_feed(courses: int, today: date, capacities: dict[str, int]) -> dict:
    """A catalog feed as the national source publishes it: rounds open for enrolment now and later, three
    modules of three lessons and one assignment each."""
    items = []
    for code, subject, sv, nb in COURSES[:courses]:
        closes = today + timedelta(days=30)
        rounds = []
        for n, start in enumerate((closes, closes + timedelta(days=210)), start=1):
            rounds.append({"id": f"r{n}", "starts_on": (start + timedelta(days=7)).isoformat(),
                           "ends_on": (start + timedelta(days=140)).isoformat(),
                           "enrolment_closes_on": start.isoformat(),
                           "withdrawal_deadline": (start + timedelta(days=21)).isoformat(),
                           "capacity": capacities.get(code, 100000) if n == 1 else 100000, "min_participants": 1})
        modules = []
        for m in range(1, 4):
            modules.append({
                "id": f"{code}-m{m}", "title": {"sv": f"Modul {m}", "nb": f"Modul {m}", "en": f"Module {m}"},
                "lessons": [{"id": f"{code}-m{m}-l{n}", "title": {"sv": f"Lektion {m}.{n}", "nb": f"Leksjon {m}.{n}"},
                             "body_markdown": {"sv": f"## Vecka {m}\n\nÖva **lugnt**.\n\n1. Värm upp.\n2. Spela.",
                                               "nb": f"## Uke {m}\n\nØv **rolig**.\n\n1. Varm opp.\n2. Spill."},
                             "duration_minutes": 30} for n in range(1, 4)],
                "assignments": [{"id": f"{code}-m{m}-a1", "title": {"sv": f"Uppgift {m}", "nb": f"Oppgave {m}"},
                                 "instructions_markdown": {"sv": "Spela in dig själv.", "nb": "Ta opp deg selv."},
                                 "submission": "file" if m % 2 else "text", "max_score": 10}],
            })
        items.append({"code": code, "version": 1, "status": "active", "subject": subject,
                      "title": {"sv": sv, "nb": nb},
                      "summary": {"sv": f"Distanskurs: {sv}.", "nb": f"Fjernkurs: {nb}."},
                      "languages": ["sv", "nb"], "prices": [{"country": "SE", "amount": 1900, "currency": "SEK"},
                                                            {"country": "NO", "amount": 2100, "currency": "NOK"}],
                      "rounds": rounds, "modules": modules})
    return {"format": "kulturskola-catalog/1",
            "generated_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "publisher": "launch_load benchmark", "courses": items}


@dataclass
class Plan:
    budgets: dict[tuple[str, str], int]  # (municipality, course) -> seats
    capacities: dict[str, int]  # course -> national places of round r1
    tight: set[str]  # municipalities whose budgets are too small on purpose


def plan_seats(pupils: list[Pupil]) -> Plan:
    """Budgets from the demand: every fourth municipality orders about half the seats its pupils want; the
    others a few more than wanted. The first course's round has fewer national places than its orders
    would fill."""
    demand = Counter((p.client.municipality_id, p.course) for p in pupils if p.course)
    municipalities = list(dict.fromkeys(p.client.municipality_id for p in sorted(pupils, key=lambda p: p.number)))
    tight = set(municipalities[2::4])
    budgets = {}
    for (municipality, course), wanted in demand.items():
        budgets[(municipality, course)] = max(1, wanted // 2) if municipality in tight else wanted + 2
    first = COURSES[0][0]
    allowed = sum(min(wanted, budgets[(m, c)]) for (m, c), wanted in demand.items() if c == first)
    capacities = {first: max(1, int(allowed * 0.8))} if allowed else {}
    return Plan(budgets, capacities, tight)


def prepare_tool(settings: dict, clients: list[Client], courses: int, plan: Plan) -> None:
    from catalog_sync.sync import sync_catalog
    from lti_tool import create_app
    from lti_tool.db import get_engine, new_session
    from lti_tool.models import Municipality
    from lti_tool.services import platforms, seats

    app = create_app(settings)
    with new_session(app) as session:
        for country, code, name in MUNICIPALITIES:
            session.add(Municipality(id=f"{country}-{code}", country=country, code=code, name=name))
        session.flush()
        for client in clients:
            registration = platforms.add_registration(
                session, name=f"{client.platform} {client.municipality_id}", issuer=client.issuer,
                client_id=client.client_id, auth_login_url=client.issuer + "/auth",
                auth_token_url=client.issuer + "/token", jwks_url=client.issuer + "/jwks")
            platforms.bind_deployment(session, registration, client.deployment_id, [client.municipality_id])
        sync_catalog(session, catalog_feed(courses, date.today(), plan.capacities))
        for (municipality, course), budget in sorted(plan.budgets.items()):
            seats.set_order(session, municipality, course, "r1", budget)
        for client in clients:  # the later round, for the warm-up launches before the measured ones
            for course in client.courses:
                seats.set_order(session, client.municipality_id, course, "r2", 100000)
        session.commit()
    get_engine(app).dispose()


def reference_conf(clients: list[Client]) -> dict:
    conf: dict[str, list] = defaultdict(list)
    for client in clients:
        conf[client.issuer].append({"default": False, "client_id": client.client_id,
                                    "auth_login_url": client.issuer + "/auth",
                                    "auth_token_url": client.issuer + "/token",
                                    "key_set_url": client.issuer + "/jwks", "key_set": None,
                                    "deployment_ids": [client.deployment_id]})
    return dict(conf)


# -- gunicorn ---------------------------------------------------------------------------------------------------

@dataclass
class Server:
    process: subprocess.Popen
    base: str
    log_path: Path

    def worker_pids(self) -> list[int]:
        try:
            children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children").read_text().split()
        except OSError:
            return []
        return [int(pid) for pid in children]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_gunicorn(app_spec: str, env: dict, workers: int, threads: int, log_path: Path, probe: str,
                   chdir: Path = ROOT, port: int | None = None) -> Server:
    port = port or free_port()
    base = f"http://127.0.0.1:{port}"
    handle = open(log_path, "w")
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--workers", str(workers), "--threads", str(threads),
         "--bind", f"127.0.0.1:{port}", "--timeout", "60", "--chdir", str(chdir), app_spec],
        env={**os.environ, **env}, stdout=handle, stderr=subprocess.STDOUT, cwd=ROOT)
    handle.close()
    server = Server(process, base, log_path)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"gunicorn {app_spec} stopped:\n{log_path.read_text()}")
        try:
            status, _, _ = Browser().request("GET", base + probe)
            if status < 500 and len(server.worker_pids()) >= workers:
                return server
        except OSError:
            pass
        time.sleep(0.2)
    server.stop()
    raise SystemExit(f"gunicorn {app_spec} did not start:\n{log_path.read_text()}")


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU of these processes so far (from /proc)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / ticks


def database_backends(database: str) -> list[int]:
    """PostgreSQL's server processes serving ``database`` (their process title names it)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                title = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
            except OSError:
                continue
            if title.startswith("postgres:") and f" {database} " in title:
                pids.append(int(entry.name))
    return pids


def machine_busy_seconds() -> float:
    """CPU time every core of the machine spent busy so far (from /proc/stat)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


# -- the pupils' browsers ------------------------------------------------------------------------------------------

class Browser:
    """A browser reduced to what a launch needs: cookies, form posts, no redirect following."""

    def __init__(self, timeout: float = 60):
        self.cookies: dict[str, str] = {}
        self.timeout = timeout

    def request(self, method: str, url: str, form: dict | None = None) -> tuple[int, dict[str, str], str]:
        parts = urlsplit(url)
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=self.timeout)
        # A top-level browser window (Sec-Fetch-Dest: document): the launch without platform storage.
        headers = {"Accept-Language": "sv-SE,sv;q=0.9,en;q=0.5", "Sec-Fetch-Dest": "document"}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        body = None
        if form is not None:
            body = urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        try:
            connection.request(method, parts.path + (f"?{parts.query}" if parts.query else ""), body=body,
                               headers=headers)
            response = connection.getresponse()
            payload = response.read().decode("utf-8", "replace")
            for cookie in response.headers.get_all("Set-Cookie") or []:
                pair, *attributes = [piece.strip() for piece in cookie.split(";")]
                name, _, value = pair.partition("=")
                if value and not any(a.lower() in ("max-age=0",) or a.lower().startswith("expires=thu, 01 jan 1970")
                                     for a in attributes):
                    self.cookies[name] = value
                else:
                    self.cookies.pop(name, None)
            return response.status, {k.lower(): v for k, v in response.getheaders()}, payload
        finally:
            connection.close()


@dataclass
class Outcome:
    kind: str  # admitted | refused:<code> | error:<what>
    seconds: float
    pupil: Pupil
    seat: bool = False


def login_initiation(browser: Browser, pupil: Pupil, base: str):
    """The platform sends the pupil's browser to the tool's login URL."""
    client = pupil.client
    query = {"iss": client.issuer, "login_hint": pupil.sub, "target_link_uri": base + "/lti/launch",
             "lti_message_hint": uuid.uuid4().hex, "client_id": client.client_id,
             "lti_deployment_id": client.deployment_id}
    return browser.request("GET", base + "/lti/login?" + urlencode(query))


def post_id_token(browser: Browser, pupil: Pupil, base: str, platforms: Platforms, auth_location: str):
    """The platform answers the tool's authentication request: a signed id_token posted to the redirect URI."""
    auth = dict(parse_qsl(urlsplit(auth_location).query))
    form = {"id_token": platforms.id_token(pupil, auth, base), "state": auth["state"]}
    return browser.request("POST", auth["redirect_uri"], form)


def launch(pupil: Pupil, base: str, platforms: Platforms, *, reference: bool) -> Outcome:
    """The platform's login initiation -> the tool's login (302 to the platform with state and nonce, a state
    cookie) -> the platform's id_token posted to the tool -> the page the tool sends the pupil to."""
    browser = Browser()
    started = time.perf_counter()

    def done(kind: str, seat: bool = False) -> Outcome:
        return Outcome(kind, time.perf_counter() - started, pupil, seat)

    try:
        status, headers, body = login_initiation(browser, pupil, base)
        if status != 302:
            return done(f"error:login {status} {_code(body)}")
        status, headers, body = post_id_token(browser, pupil, base, platforms, headers["location"])
        if reference:
            return done("admitted" if status == 200 and "launched" in body else f"error:launch {status} {body[:80]}")
        if status == 403 and _code(body):
            return done(f"refused:{_code(body)}")
        if status != 303:
            return done(f"error:launch {status} {_code(body)}")
        status, headers, body = browser.request("GET", urljoin_location(base, headers["location"]))
        if status != 200:
            return done(f"error:first page {status} {_code(body)}")
        return done("admitted", seat="data-seat=" in body)
    except socket.timeout:
        return done("error:timeout")
    except OSError as exc:
        return done(f"error:{exc.__class__.__name__}")


def _code(body: str) -> str:
    match = ERROR_CODE.search(body)
    return unescape(match.group(1)) if match else ""


def urljoin_location(base: str, location: str) -> str:
    return location if location.startswith("http") else base + location


@dataclass
class Run:
    """One tool's launches, gathered over the rounds."""

    label: str
    server: Server
    reference: bool
    outcomes: list[Outcome] = field(default_factory=list)
    seconds: float = 0.0
    database: str | None = None  # PostgreSQL database whose server processes' CPU is counted
    server_cpu: float = 0.0
    database_cpu: float = 0.0
    client_cpu: float = 0.0
    machine_cpu: float = 0.0

    @property
    def rate(self) -> float:
        return len(self.outcomes) / self.seconds

    @property
    def cpu_per_launch(self) -> float:
        return self.server_cpu / len(self.outcomes) * 1000

    def percentile(self, q: float) -> float:
        values = sorted(o.seconds for o in self.outcomes)
        return values[min(len(values) - 1, max(0, math.ceil(q * len(values)) - 1))] * 1000

    def line(self) -> str:
        n = len(self.outcomes)
        return (f"{self.label:<34} {self.rate:7.1f} launches/s   p50 {self.percentile(0.50):6.0f} ms   "
                f"p95 {self.percentile(0.95):6.0f} ms   p99 {self.percentile(0.99):6.0f} ms\n{'':<34} "
                f"CPU per launch: gunicorn workers {self.cpu_per_launch:5.1f} ms, "
                f"PostgreSQL {self.database_cpu / n * 1000:4.1f} ms, "
                f"load generator {self.client_cpu / n * 1000:4.1f} ms; "
                f"machine busy {self.machine_cpu / self.seconds / os.cpu_count():4.0%}")

    def warm_up(self, pool: ThreadPoolExecutor, pupils: list[Pupil], platforms: Platforms) -> None:
        warm = list(pool.map(lambda p: launch(p, self.server.base, platforms, reference=self.reference), pupils))
        failed = [o.kind for o in warm if o.kind.startswith("error:")]
        if failed:
            raise SystemExit(f"{self.label}: warm-up launches failed: {Counter(failed)}; see {self.server.log_path}")

    def drive(self, pool: ThreadPoolExecutor, pupils: list[Pupil], platforms: Platforms) -> None:
        workers = self.server.worker_pids()
        backends = database_backends(self.database) if self.database else []
        cpu_before, client_before, busy_before = cpu_seconds(workers), time.process_time(), machine_busy_seconds()
        database_before = cpu_seconds(backends)
        started = time.perf_counter()
        self.outcomes += pool.map(lambda p: launch(p, self.server.base, platforms, reference=self.reference), pupils)
        self.seconds += time.perf_counter() - started
        self.server_cpu += cpu_seconds(workers) - cpu_before
        if self.database:  # backends opened during the run count from their start
            self.database_cpu += cpu_seconds(database_backends(self.database)) - database_before
        self.client_cpu += time.process_time() - client_before
        self.machine_cpu += machine_busy_seconds() - busy_before


def drive_rounds(runs: list[Run], pupils: list[Pupil], warmup: list[Pupil], platforms: Platforms, concurrency: int,
                 rounds: int) -> None:
    """The pupils in slices; each slice goes through every tool in turn (the order alternating), so that
    whatever else the machine is doing meanwhile weighs on each tool alike."""
    size = math.ceil(len(pupils) / rounds)
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        for run in runs:
            run.warm_up(pool, warmup, platforms)
        for number, start in enumerate(range(0, len(pupils), size)):
            for run in (runs if number % 2 == 0 else runs[::-1]):
                run.drive(pool, pupils[start:start + size], platforms)


# -- checks in the database ------------------------------------------------------------------------------------

def seat_report(url: str, ours: Run, plan: Plan) -> int:
    """Per course: budget, seats taken (counters and seat rows) and grants the browsers saw; returns overruns."""
    engine = create_engine(url)
    granted_seen = Counter((o.pupil.client.municipality_id, o.pupil.course) for o in ours.outcomes
                           if o.kind == "admitted" and o.seat)
    rows = {}
    with engine.connect() as connection:
        for municipality, course, budget, taken, seats, capacity, round_taken in connection.execute(text("""
                select o.municipality_id, r.course_code, o.seats_budget, o.seats_taken,
                       (select count(*) from seats s where s.order_id = o.id and s.status = 'active'),
                       r.capacity, r.seats_taken
                from orders o join course_rounds r on r.id = o.round_pk where r.round_id = 'r1'""")):
            rows[(municipality, course)] = (budget, taken, seats, capacity, round_taken)
        all_rows = connection.scalar(text("""select count(*) from seats s join course_rounds r on r.id = s.round_pk
                                             where s.status = 'active' and r.round_id = 'r1'"""))
    engine.dispose()
    overruns = 0
    print(f"\n{'course':<14} {'budget':>6} {'national':>8} {'counter':>7} {'seat rows':>9} {'granted':>7} "
          f"{'overruns':>8}  municipalities out of seats")
    for code, *_ in COURSES:
        items = {m: v for (m, c), v in rows.items() if c == code}
        if not items:
            continue
        budget = sum(v[0] for v in items.values())
        taken = sum(v[1] for v in items.values())
        seats = sum(v[2] for v in items.values())
        capacity, round_taken = next(iter(items.values()))[3:]
        seen = sum(granted_seen[(m, code)] for m in items)
        over = sum(max(0, v[1] - v[0]) + abs(v[1] - v[2]) for v in items.values())
        over += max(0, round_taken - capacity) + abs(round_taken - taken) + abs(seen - seats)
        overruns += over
        used_up = sorted(m for m, v in items.items() if v[1] >= v[0])
        national = f"{round_taken}/{capacity}" if capacity < 100000 else "-"
        print(f"{code:<14} {budget:>6} {national:>8} {taken:>7} {seats:>9} {seen:>7} {over:>8}  "
              f"{', '.join(used_up) if used_up else '-'}")
    if all_rows != sum(v[2] for v in rows.values()):
        overruns += 1
        print(f"seat rows outside orders: {all_rows - sum(v[2] for v in rows.values())}")
    return overruns


def summarise(run: Run) -> str:
    kinds = Counter(o.kind for o in run.outcomes)
    admitted = kinds.pop("admitted", 0)
    refused = {k.split(":", 1)[1]: v for k, v in kinds.items() if k.startswith("refused:")}
    errors = {k.split(":", 1)[1]: v for k, v in kinds.items() if k.startswith("error:")}
    parts = [f"admitted {admitted}"]
    if refused:
        parts.append("refused with a reason " + ", ".join(f"{k} {v}" for k, v in sorted(refused.items())))
    parts.append("errors " + (", ".join(f"{k} {v}" for k, v in sorted(errors.items())) if errors else "0"))
    return "; ".join(parts)


# -- main -----------------------------------------------------------------------------------------------------------

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pupils", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--municipalities", type=int, default=20, choices=range(1, len(MUNICIPALITIES) + 1),
                        metavar=f"1..{len(MUNICIPALITIES)}")
    parser.add_argument("--courses", type=int, default=12, choices=range(1, len(COURSES) + 1),
                        metavar=f"1..{len(COURSES)}")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn worker processes (both tools)")
    parser.add_argument("--threads", type=int, default=1, help="gunicorn threads per worker (both tools)")
    parser.add_argument("--postgres", default=os.environ.get("TEST_DATABASE_URL",
                                                             "postgresql://postgres@127.0.0.1:5432/test"),
                        help="a PostgreSQL server URL; a database of its own is created on it and dropped")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/13")
    parser.add_argument("--rounds", type=int, default=4,
                        help="slices of pupils; each slice goes through both tools in turn")
    parser.add_argument("--no-reference", action="store_true", help="only the tool's own launch")
    parser.add_argument("--keep", action="store_true", help="keep the database and logs (printed)")
    parser.add_argument("--quick", action="store_true", help="a small smoke run: 120 pupils, concurrency 8")
    args = parser.parse_args()
    if args.quick:
        args.pupils, args.concurrency, args.rounds = min(args.pupils, 120), min(args.concurrency, 8), 2
    logging.getLogger("werkzeug").setLevel(logging.WARNING)

    platforms = Platforms()
    clients = make_clients(platforms, args.municipalities, args.courses)
    pupils = make_pupils(clients, args.pupils, "pupil", seed=2027)
    # Warm-up launches take seats in the later round: every worker has compiled its templates and statements
    # before the measured launches begin.
    warmup = make_pupils(clients, max(48, 6 * args.workers * args.threads), "warmup", seed=1, round_id="r2")
    plan = plan_seats(pupils)

    admin_url = normalise_database_url(args.postgres)
    name = f"lti_launch_{os.getpid()}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = admin_url.rsplit("/", 1)[0] + f"/{name}"
    folder = Path(tempfile.mkdtemp(prefix="launch_load_"))
    servers: list[Server] = []
    try:
        port = free_port()
        settings = {"ENV": "development", "BASE_URL": f"http://127.0.0.1:{port}", "DATABASE_URL": url,
                    "KEYS_DIR": str(folder / "keys"),
                    "SECRET_KEY": uuid.uuid4().hex * 2, "SANDBOX": False,
                    "OUTBOUND_ALLOW_PRIVATE": True,  # the simulated platforms serve their keys on 127.0.0.1
                    "REDIS_URL": args.redis,
                    "UPLOAD_DIR": str(folder / "uploads"), "RATE_LIMIT_PER_ADDRESS": 0,
                    "RATE_LIMIT_PER_REGISTRATION": 0}
        env = {f"LTI_TOOL_{k}": str(v) if not isinstance(v, bool) else ("true" if v else "false")
               for k, v in settings.items()}
        subprocess.run([sys.executable, "-m", "flask", "--app", "lti_tool", "db", "upgrade"], check=True,
                       env={**os.environ, **env}, cwd=ROOT, stdout=subprocess.DEVNULL)
        prepare_tool(settings, clients, args.courses, plan)

        print(f"{len(pupils)} pupils of {len(clients)} municipalities on {len(PLATFORMS)} platforms, "
              f"{args.courses} courses; concurrency {args.concurrency}; gunicorn {args.workers} workers x "
              f"{args.threads} threads on 127.0.0.1; PostgreSQL and Redis; {os.cpu_count()} cores shared with the "
              f"load generator")
        ours = Run("full launch (login, launch, page)",
                   start_gunicorn("lti_tool:create_app()", env, args.workers, args.threads, folder / "tool.log",
                                  "/lti/jwks", port=port), reference=False, database=name)
        servers.append(ours.server)
        runs = []
        if not args.no_reference:
            (folder / "reference.json").write_text(json.dumps(reference_conf(clients)))
            reference_env = {"REFERENCE_TOOL_CONF": str(folder / "reference.json"),
                             "REFERENCE_TOOL_REDIS_URL": args.redis,
                             "REFERENCE_TOOL_KEY_PREFIX": f"launch_load:{os.getpid()}:"}
            runs.append(Run("bare pylti1p3 login + launch",
                            start_gunicorn("reference_tool:create_app()", reference_env, args.workers, args.threads,
                                           folder / "reference.log", "/lti/login", chdir=ROOT / "benchmarks"),
                            reference=True))
            servers.append(runs[0].server)
        drive_rounds([*runs, ours], pupils, warmup, platforms, args.concurrency, args.rounds)
        for server in servers:
            server.stop()
        servers.clear()

        print()
        for run in [*runs, ours]:
            print(run.line())
            print(f"{'':<34} {summarise(run)}")
        if runs:
            base = runs[0]
            print(f"\nratio full launch / bare protocol step: {base.rate / ours.rate:4.2f}x by launches per second, "
                  f"{ours.percentile(0.5) / base.percentile(0.5):4.2f}x at p50, "
                  f"{ours.percentile(0.95) / base.percentile(0.95):4.2f}x at p95, "
                  f"{ours.cpu_per_launch / base.cpu_per_launch:4.2f}x in gunicorn CPU per launch "
                  f"({(ours.server_cpu + ours.database_cpu) / len(ours.outcomes) * 1000 / base.cpu_per_launch:4.2f}x "
                  f"with PostgreSQL's)")
        print(f"platform JWKS fetched: {sum(platforms.jwks_fetches.values())} times "
              f"({len(PLATFORMS)} platforms, both tools)")
        overruns = seat_report(url, ours, plan)
        print(f"\noverruns: {overruns}")
        errors = sum(1 for run in [*runs, ours] for o in run.outcomes if o.kind.startswith("error:"))
        if overruns or errors:
            raise SystemExit(f"{overruns} overruns, {errors} errors; logs in {folder}")
    finally:
        for server in servers:
            server.stop()
        platforms.server.shutdown()
        if args.keep:
            print(f"kept database {url} and {folder}")
        else:
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            import shutil

            shutil.rmtree(folder, ignore_errors=True)
        admin.dispose()
        _forget_reference_keys(args.redis, f"launch_load:{os.getpid()}:")


def _forget_reference_keys(redis_url: str, prefix: str) -> None:
    import redis

    try:
        client = redis.Redis.from_url(redis_url)
        keys = list(client.scan_iter(match=prefix + "*", count=1000))
        for start in range(0, len(keys), 500):
            client.delete(*keys[start:start + 500])
        client.close()
    except redis.RedisError:
        pass


if __name__ == "__main__":
    main()
