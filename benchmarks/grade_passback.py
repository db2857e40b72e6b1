"""Grade passback under faults: N scores through the outbox worker to a local fake platform that fails
some requests on purpose (503, 429 with Retry-After, timeouts).

Prints scores per second, token requests made, retries, and lost scores (missing from the platform at the
end: must be 0), plus a baseline measured in the same run: the same scores posted straight to a platform
that never fails, with one token and no outbox.

    python benchmarks/grade_passback.py [--scores 1000] [--fail-rate 0.1] [--workers 4]
"""

from __future__ import annotations

import argparse
import json
import random
import socket
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import logging

import requests
from sqlalchemy import text
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lti_tool import create_app  # noqa: E402
from lti_tool.db import SESSIONMAKER_KEY, get_engine, new_session, upgrade  # noqa: E402
from lti_tool.domain.claims import SCOPE_LINEITEM, SCOPE_SCORE  # noqa: E402
from lti_tool.lti import get_lti  # noqa: E402
from lti_tool.lti.ags import ServiceClient  # noqa: E402
from lti_tool.models import (Assignment, Course, CourseModule, LtiContext, OutboxItem,  # noqa: E402
                             Registration)
from lti_tool.services import grades  # noqa: E402


class FakePlatform:
    """Token endpoint, line items and scores; fails ``fail_rate`` of score posts on purpose."""

    def __init__(self, fail_rate: float, seed: int = 7):
        self.fail_rate = fail_rate
        self.random = random.Random(seed)
        self.lock = threading.Lock()
        self.scores: list[str] = []
        self.columns: dict[str, dict] = {}  # line item id -> the line item the tool created
        self.landed: list[tuple[str, str]] = []  # (userId, line item id) of every stored score
        self.tokens = 0
        self.failures = 0

    def __call__(self, environ, start_response):
        request = Request(environ)
        if request.path == "/token":
            with self.lock:
                self.tokens += 1
            response = Response(json.dumps({"access_token": f"t{self.tokens}", "expires_in": 3600}),
                                content_type="application/json")
        elif request.path == "/lineitems" and request.method == "POST":
            created = json.loads(request.get_data())
            with self.lock:
                column = f"http://{request.host}/lineitems/{len(self.columns) + 1}"
                self.columns[column] = created
            response = Response(json.dumps({**created, "id": column}), status=201,
                                content_type="application/vnd.ims.lis.v2.lineitem+json")
        elif request.path == "/lineitems":
            link = request.args.get("resource_link_id")
            found = [{**c, "id": i} for i, c in list(self.columns.items())
                     if c.get("resourceLinkId") == link and c.get("resourceId") == request.args.get("resource_id")]
            response = Response(json.dumps(found), content_type="application/vnd.ims.lis.v2.lineitemcontainer+json")
        elif request.path.startswith("/lineitems/") and request.path.endswith("/scores"):
            with self.lock:
                roll = self.random.random()
            if roll < self.fail_rate * 0.6:
                self.failures += 1
                response = Response("busy", status=503)
            elif roll < self.fail_rate * 0.9:
                self.failures += 1
                response = Response("slow down", status=429, headers={"Retry-After": "1"})
            elif roll < self.fail_rate:
                self.failures += 1
                time.sleep(2.5)  # longer than the client's timeout
                response = Response("late", status=200)
            else:
                with self.lock:
                    user = json.loads(request.get_data())["userId"]
                    self.scores.append(user)
                    self.landed.append((user, f"http://{request.host}{request.path[:-len('/scores')]}"))
                response = Response(status=204)
        else:
            response = Response(status=404)
        return response(environ, start_response)


def serve(app):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = make_server("127.0.0.1", port, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{port}"


@dataclass
class _Review:
    score: Decimal
    score_max: Decimal
    feedback: str
    created_at: datetime


@dataclass
class _Submission:
    registration_id: int
    context_id: str
    assignment_id: int
    sub: str
    submitted_at: datetime
    resource_link_id: str  # two placements of the course in one context: scores must not cross
    municipality_id: str | None = None
    round_pk: int | None = None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scores", type=int, default=1000)
    parser.add_argument("--fail-rate", type=float, default=0.1)
    parser.add_argument("--workers", type=int, default=4)
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)

    platform = FakePlatform(args.fail_rate)
    server, base = serve(platform)
    with tempfile.TemporaryDirectory() as folder:
        app = create_app({"DATABASE_URL": f"sqlite:///{folder}/bench.db", "KEYS_DIR": f"{folder}/keys",
                          "SANDBOX": False, "OUTBOUND_ALLOW_PRIVATE": True})  # the fake platform is on 127.0.0.1
        upgrade(app)
        with new_session(app) as session:
            registration = Registration(name="fake", issuer=base, client_id="bench", auth_login_url=base + "/auth",
                                        auth_token_url=base + "/token", jwks_url=base + "/jwks")
            session.add(registration)
            session.add(Course(code="BENCH-1", version=1, status="active", title={"sv": "Bänk"}, languages=[],
                               content_hash="0" * 64))
            session.flush()
            module = CourseModule(course_code="BENCH-1", key="m1", position=1, title={"sv": "M"})
            session.add(module)
            session.flush()
            assignment = Assignment(module_id=module.id, key="a1", position=1, title={"sv": "A"},
                                    instructions_markdown={}, instructions_html={}, submission="text",
                                    max_score=Decimal("10"))
            session.add(assignment)
            session.add(
                LtiContext(
                    registration_id=registration.id,
                    context_id="c1",
                    ags_lineitems_url=base + "/lineitems",
                    ags_scopes=[SCOPE_LINEITEM, SCOPE_SCORE],
                )
            )
            session.flush()
            now = datetime.now(timezone.utc)
            for i in range(args.scores):
                grades.enqueue_score(
                    session,
                    _Review(Decimal("7"), Decimal("10"), "ok", now),
                    _Submission(registration.id, "c1", assignment.id, f"pupil-{i}", now, f"link-{i % 2}"),
                )
            session.commit()

        client_timeout = 1.0
        sessions = app.extensions[SESSIONMAKER_KEY]
        clients = [
            ServiceClient(get_lti(app).keys, timeout=client_timeout, policy=get_lti(app).outbound)
            for _ in range(args.workers)
        ]
        started = time.perf_counter()
        clock = {"now": datetime.now(timezone.utc)}

        def worker(client):
            for _ in range(60):
                report = grades.drain(sessions, client, now=lambda: clock["now"])
                if report.total() == 0:
                    with new_session(app) as session:
                        left = session.query(OutboxItem).filter(OutboxItem.status != "sent").count()
                    if not left:
                        return
                    time.sleep(0.05)
                    clock["now"] = max(clock["now"], datetime.now(timezone.utc)) + timedelta(minutes=5)

        with ThreadPoolExecutor(max_workers=args.workers) as pool:
            list(pool.map(worker, clients))
        seconds = time.perf_counter() - started
        with new_session(app) as session:
            statuses = dict(session.execute(text("select status, count(*) from outbox group by status")).all())
        get_engine(app).dispose()

    wanted = {f"pupil-{i}" for i in range(args.scores)}
    lost = len(wanted - set(platform.scores))
    duplicates = len(platform.scores) - len(set(platform.scores))
    # Placement and column checks: one column per placement, tied to it, and every score in its own.
    links = {column: created.get("resourceLinkId") for column, created in platform.columns.items()}
    wrong_column = sum(1 for user, column in platform.landed if links.get(column) != f"link-{int(user[6:]) % 2}")
    columns_ok = sorted(links.values()) == ["link-0", "link-1"]

    baseline = FakePlatform(0.0)
    base_server, base_url = serve(baseline)
    http = requests.Session()
    token = http.post(base_url + "/token").json()["access_token"]
    b_started = time.perf_counter()

    def post(i):
        http.post(
            base_url + "/lineitems/1/scores",
            data=json.dumps({"userId": f"pupil-{i}"}),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/vnd.ims.lis.v1.score+json"},
            timeout=5,
        )

    with ThreadPoolExecutor(max_workers=args.workers) as pool:
        list(pool.map(post, range(args.scores)))
    b_seconds = time.perf_counter() - b_started
    server.shutdown()
    base_server.shutdown()

    rate, b_rate = args.scores / seconds, args.scores / b_seconds
    print(
        f"{args.scores} scores, {args.workers} workers, {args.fail_rate:.0%} of score posts failing on purpose "
        f"({platform.failures} failures served)"
    )
    print(
        f"outbox:   {rate:8.1f} scores/s  token requests {platform.tokens}  delivered {len(set(platform.scores))}  "
        f"lost {lost}  sent twice {duplicates}  rows {statuses}"
    )
    print(
        f"columns:  {len(platform.columns)} created {sorted(map(str, links.values()))}  "
        f"scores in another placement's column {wrong_column}"
    )
    print(f"baseline: {b_rate:8.1f} scores/s  (straight posts, no failures, one token)  ratio {b_rate / rate:5.2f}x")
    if lost:
        raise SystemExit("scores lost")
    if wrong_column or not columns_ok:
        raise SystemExit("scores in the wrong column, or columns not one per placement")


if __name__ == "__main__":
    main()
