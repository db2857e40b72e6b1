"""Seat contention: many pupils of one municipality launch at once against a small budget.

Prints, for SQLite and (when reachable) PostgreSQL: seats requested, seats granted, the budget, overruns
(must be 0), requests per second of the guarded seat reservation, and the same for a baseline measured in
the same run under the same concurrency: one bare INSERT per request with no budget at all.

    python benchmarks/seat_contention.py [--requests 2000] [--budget 50] [--threads 16]
                                         [--postgres postgresql://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

from sqlalchemy import create_engine, func, select, text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lti_tool import create_app  # noqa: E402
from lti_tool.db import get_engine, new_session, upgrade  # noqa: E402
from lti_tool.domain.seats import SeatRefusedError  # noqa: E402
from lti_tool.models import (Course, CoursePrice, CourseRound, LoginState, Municipality, Order,  # noqa: E402
                             Registration, Seat)
from lti_tool.services import seats  # noqa: E402


def prepare(app, budget: int) -> int:
    upgrade(app)
    with new_session(app) as session:
        session.add(Municipality(id="SE-1490", country="SE", code="1490", name="Borås"))
        registration = Registration(name="bench", issuer="https://lms.example", client_id="bench",
                                    auth_login_url="https://lms.example/auth", auth_token_url="https://lms.example/token",
                                    jwks_url="https://lms.example/jwks")
        session.add(registration)
        session.add(Course(code="BENCH-1", version=1, status="active", title={"sv": "Bänk"}, languages=["sv"],
                           content_hash="0" * 64))
        session.add(CoursePrice(course_code="BENCH-1", country="SE", amount=Decimal("1900"), currency="SEK"))
        closes = date.today() + timedelta(days=30)
        session.add(CourseRound(course_code="BENCH-1", round_id="r1", starts_on=closes,
                                ends_on=closes + timedelta(days=90),
                                enrolment_closes_on=closes, withdrawal_deadline=closes, capacity=100000,
                                min_participants=1, seats_taken=0, status="open"))
        session.flush()
        seats.set_order(session, "SE-1490", "BENCH-1", "r1", budget)
        session.commit()
        return registration.id


def run(pool_size: int, requests: int, work) -> tuple[list, float]:
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=pool_size) as pool:
        results = list(pool.map(work, range(requests)))
    return results, time.perf_counter() - started


def measure(label: str, url: str, requests: int, budget: int, threads: int) -> None:
    with tempfile.TemporaryDirectory() as keys:
        app = create_app({"DATABASE_URL": url, "KEYS_DIR": keys, "SANDBOX": False})
        registration_id = prepare(app, budget)

        def reserve(i: int) -> str:
            with new_session(app) as session:
                try:
                    outcome = seats.reserve_seat(session, registration_id=registration_id, sub=f"pupil-{i}",
                                                 municipality_id="SE-1490", course_code="BENCH-1").outcome
                except SeatRefusedError as refusal:
                    session.rollback()
                    return refusal.code
                session.commit()
                return outcome

        def baseline(i: int) -> str:
            # The least a request can write: one row, one commit, no budget.
            with new_session(app) as session:
                session.add(LoginState(state=f"bench-{uuid.uuid4().hex}", nonce=uuid.uuid4().hex,
                                       registration_id=registration_id,
                                       expires_at=datetime.now(timezone.utc)))
                session.commit()
                return "written"

        outcomes, seconds = run(threads, requests, reserve)
        _, base_seconds = run(threads, requests, baseline)
        with new_session(app) as session:
            order = session.scalars(select(Order)).one()
            rows = session.scalar(select(func.count()).select_from(Seat).where(Seat.status == "active"))
        granted = outcomes.count("granted")
        overruns = max(0, order.seats_taken - budget) + max(0, rows - budget) + max(0, granted - budget)
        rate, base_rate = requests / seconds, requests / base_seconds
        print(f"{label:<11} requested {requests:>6}  granted {granted:>5}  budget {budget:>5}  "
              f"counter {order.seats_taken:>5}  seat rows {rows:>5}  overruns {overruns}  "
              f"{rate:8.0f} req/s  (baseline bare insert {base_rate:8.0f} req/s, ratio {base_rate / rate:4.2f}x)")
        get_engine(app).dispose()
        if overruns or granted != min(budget, requests):
            raise SystemExit(f"{label}: budget overrun or seats lost")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--budget", type=int, default=50)
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--postgres", default=os.environ.get("TEST_DATABASE_URL",
                                                             "postgresql://postgres@127.0.0.1:5432/test"))
    args = parser.parse_args()
    print(f"{args.requests} seat requests from distinct pupils of one municipality, {args.threads} threads")
    with tempfile.TemporaryDirectory() as folder:
        measure("SQLite", f"sqlite:///{folder}/bench.db", args.requests, args.budget, args.threads)
    if args.postgres:
        from lti_tool.config import normalise_database_url

        admin_url = normalise_database_url(args.postgres)
        name = f"lti_bench_{os.getpid()}"
        try:
            admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
            with admin.connect() as connection:
                connection.execute(text(f'CREATE DATABASE "{name}"'))
        except Exception as exc:  # no server: SQLite only
            print(f"PostgreSQL    not reachable ({exc.__class__.__name__}): skipped")
            return
        try:
            measure("PostgreSQL", admin_url.rsplit("/", 1)[0] + f"/{name}", args.requests, args.budget, args.threads)
        finally:
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()


if __name__ == "__main__":
    main()
