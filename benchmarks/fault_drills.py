"""Fault drills under load: pupils keep launching (login -> launch -> first page, as in launch_load.py) while a
backing service goes away and comes back.

* ``database``: the local PostgreSQL cluster is restarted (``pg_ctlcluster --skip-systemctl-redirect VERSION
  main restart``). Every other client of that server sees the restart too: run it on a machine of your own.
* ``redis``: the tool's Redis (a private ``redis-server`` this script starts on a free port) is stopped for a
  few seconds, then started again, empty.

Prints, before / during / after the fault, the launches that went through, the refusals with their code, the
outage pages (503 ``service_unavailable`` with Retry-After) and anything else (must be 0: no 500, no broken
connection); how long the tool took to serve launches again; and, checked in the database, that every seat
counter equals its seat rows and no budget is overrun (no half-taken seat).

    python benchmarks/fault_drills.py [--drill database|redis|all] [--seconds 30] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import itertools
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import create_engine, text

sys.path.insert(0, str(Path(__file__).resolve().parent))

from launch_load import (ROOT, Browser, Platforms, Pupil, free_port, login_initiation, make_clients,  # noqa: E402
                         make_pupils, plan_seats, post_id_token, prepare_tool, start_gunicorn, urljoin_location)

sys.path.insert(0, str(ROOT))
from lti_tool.config import normalise_database_url  # noqa: E402

ERROR_CODE = re.compile(r'data-error-code="([^"]+)"')


@dataclass
class Attempt:
    started: float
    finished: float
    kind: str  # ok | refused:<code> | outage | error:<what>


def attempt(pupil: Pupil, base: str, platforms: Platforms) -> Attempt:
    browser = Browser(timeout=30)
    started = time.monotonic()

    def done(kind: str) -> Attempt:
        return Attempt(started, time.monotonic(), kind)

    def judge(status: int, headers: dict, body: str, step: str) -> Attempt:
        code = (ERROR_CODE.search(body) or [None, ""])[1]
        if status == 503 and code == "service_unavailable" and headers.get("retry-after", "").isdigit():
            return done("outage")
        if 400 <= status < 500 and code:
            return done(f"refused:{code}")
        return done(f"error:{step} {status} {code or body[:60]!r}")

    try:
        status, headers, body = login_initiation(browser, pupil, base)
        if status != 302:
            return judge(status, headers, body, "login")
        status, headers, body = post_id_token(browser, pupil, base, platforms, headers["location"])
        if status != 303:
            return judge(status, headers, body, "launch")
        status, headers, body = browser.request("GET", urljoin_location(base, headers["location"]))
        if status != 200:
            return judge(status, headers, body, "first page")
        return done("ok")
    except OSError as exc:
        return done(f"error:{exc.__class__.__name__}")


class Load:
    """Pupils launching without pause from ``concurrency`` threads until stopped."""

    def __init__(self, base: str, platforms: Platforms, pupils, concurrency: int):
        self.base, self.platforms = base, platforms
        self.pupils = iter(pupils)
        self.lock = threading.Lock()
        self.attempts: list[Attempt] = []
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(concurrency)]

    def _run(self):
        while not self.stop.is_set():
            with self.lock:
                pupil = next(self.pupils)
            result = attempt(pupil, self.base, self.platforms)
            with self.lock:
                self.attempts.append(result)

    def __enter__(self):
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *_exc):
        self.stop.set()
        for thread in self.threads:
            thread.join()


def endless_pupils(clients, prefix: str):
    for batch in itertools.count():
        yield from make_pupils(clients, 1000, f"{prefix}-{batch}", seed=batch)


def report(name: str, attempts: list[Attempt], fault_start: float, fault_end: float) -> int:
    phases = {"before": [], "during": [], "after": []}
    for a in attempts:
        phase = "before" if a.finished < fault_start else "during" if a.started <= fault_end else "after"
        phases[phase].append(a)
    errors = 0
    print(f"\n{name}: the fault lasted {fault_end - fault_start:4.1f} s")
    for phase, items in phases.items():
        kinds = Counter(a.kind for a in items)
        ok, outage = kinds.pop("ok", 0), kinds.pop("outage", 0)
        refused = {k.split(":", 1)[1]: v for k, v in kinds.items() if k.startswith("refused:")}
        other = {k.split(":", 1)[1]: v for k, v in kinds.items() if k.startswith("error:")}
        errors += sum(other.values())
        print(f"  {phase:<7} launches {len(items):5}  through {ok:5}  outage pages (503, Retry-After) {outage:4}  "
              f"refused {sum(refused.values()):4} {dict(sorted(refused.items())) or ''}  "
              f"other {sum(other.values())} {other or ''}")
    back = [a.finished for a in attempts if a.kind == "ok" and a.started > fault_end]
    if back:
        print(f"  first launch through {min(back) - fault_end:4.1f} s after the service was back")
    else:
        print("  no launch went through after the fault")
        errors += 1
    return errors


def check_seats(url: str) -> int:
    """Every counter equals its seat rows; nothing over budget or capacity."""
    engine = create_engine(url)
    with engine.connect() as connection:
        orders = connection.execute(text("""
            select o.id, o.seats_budget, o.seats_taken,
                   (select count(*) from seats s where s.order_id = o.id and s.status = 'active')
            from orders o""")).all()
        rounds = connection.execute(text("""
            select r.id, r.capacity, r.seats_taken,
                   (select count(*) from seats s where s.round_pk = r.id and s.status = 'active')
            from course_rounds r""")).all()
    engine.dispose()
    bad = [o for o in orders if o[2] != o[3] or o[2] > o[1]] + [r for r in rounds if r[2] != r[3] or r[2] > r[1]]
    taken = sum(o[2] for o in orders)
    print(f"  seats: {taken} taken in {len(orders)} orders; counters equal to seat rows and within budget: "
          f"{'yes' if not bad else f'NO ({len(bad)} differ)'}")
    return len(bad)


def restart_postgres() -> None:
    version = sorted(os.listdir("/etc/postgresql"))[-1]
    subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart"], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)


def wait_for_port(port: int, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"nothing listens on {port}")


def start_redis(port: int) -> subprocess.Popen:
    process = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    wait_for_port(port)
    return process


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--drill", choices=["database", "redis", "all"], default="all")
    parser.add_argument("--seconds", type=float, default=30, help="length of each drill")
    parser.add_argument("--down", type=float, default=5, help="seconds Redis stays down")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--postgres", default=os.environ.get("TEST_DATABASE_URL",
                                                             "postgresql://postgres@127.0.0.1:5432/test"))
    args = parser.parse_args()
    import logging

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    drills = ["database", "redis"] if args.drill == "all" else [args.drill]

    platforms = Platforms()
    clients = make_clients(platforms, 20, 12)
    plan = plan_seats(make_pupils(clients, 2000, "plan", seed=2027))
    admin_url = normalise_database_url(args.postgres)
    name = f"lti_drill_{os.getpid()}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT", pool_pre_ping=True)
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = admin_url.rsplit("/", 1)[0] + f"/{name}"
    folder = Path(tempfile.mkdtemp(prefix="fault_drills_"))
    redis_port = free_port()
    redis_process = start_redis(redis_port)
    server = None
    failures = 0
    try:
        port = free_port()
        settings = {"ENV": "development", "BASE_URL": f"http://127.0.0.1:{port}", "DATABASE_URL": url,
                    "KEYS_DIR": str(folder / "keys"), "SECRET_KEY": uuid.uuid4().hex * 2, "SANDBOX": False,
                    "OUTBOUND_ALLOW_PRIVATE": True,  # the simulated platforms serve their keys on 127.0.0.1
                    "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0", "UPLOAD_DIR": str(folder / "uploads"),
                    "RATE_LIMIT_PER_ADDRESS": 0, "RATE_LIMIT_PER_REGISTRATION": 0}
        env = {f"LTI_TOOL_{k}": ("true" if v else "false") if isinstance(v, bool) else str(v)
               for k, v in settings.items()}
        subprocess.run([sys.executable, "-m", "flask", "--app", "lti_tool", "db", "upgrade"], check=True,
                       env={**os.environ, **env}, cwd=ROOT, stdout=subprocess.DEVNULL)
        prepare_tool(settings, clients, 12, plan)
        server = start_gunicorn("lti_tool:create_app()", env, args.workers, 1, folder / "tool.log", "/lti/jwks",
                                port=port)
        print(f"drills against gunicorn ({args.workers} workers) with PostgreSQL and Redis on 127.0.0.1; "
              f"{args.concurrency} pupils launching at a time, without pause")
        for drill in drills:
            with Load(server.base, platforms, endless_pupils(clients, drill), args.concurrency) as load:
                time.sleep(args.seconds / 3)
                fault_start = time.monotonic()
                if drill == "database":
                    restart_postgres()
                else:
                    redis_process.terminate()
                    redis_process.wait()
                    time.sleep(args.down)
                    redis_process = start_redis(redis_port)
                fault_end = time.monotonic()
                time.sleep(max(0.0, args.seconds - (fault_end - fault_start) - args.seconds / 3))
            failures += report(f"{drill} {'restarted' if drill == 'database' else f'down for {args.down:g} s'}",
                               load.attempts, fault_start, fault_end)
            failures += check_seats(url)
    finally:
        if server is not None:
            server.stop()
        redis_process.terminate()
        redis_process.wait()
        platforms.server.shutdown()
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
        shutil.rmtree(folder, ignore_errors=True)
    if failures:
        raise SystemExit(f"{failures} problem(s)")


if __name__ == "__main__":
    main()
