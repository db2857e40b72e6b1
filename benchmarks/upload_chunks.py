"""Video hand-ins: throughput of a file sent in resumable pieces (the pupil page's script: name the file, PATCH
each piece at its offset, finish) against the same file sent whole by the plain form (one multipart POST),
measured in the same run against the same tool served over HTTP on 127.0.0.1 (SQLite, a temporary upload
directory). Both end as the same hand-in, checked by content. Prints MB/s of each, the ratio, the requests made
and the time of the finish (moving the assembled file into the store, never copying it).

    python benchmarks/upload_chunks.py [--mb 64] [--chunk-mb 5] [--rounds 3]
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import statistics
import sys
import tempfile
import threading
import time
import uuid
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import requests
from werkzeug.serving import make_server

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lti_tool import create_app  # noqa: E402
from lti_tool.cli import prepare_demo  # noqa: E402
from lti_tool.db import new_session  # noqa: E402
from lti_tool.domain.claims import ROLE_LEARNER  # noqa: E402
from lti_tool.models import (Assignment, Course, CourseModule, CourseRound, Deployment, Launch,  # noqa: E402
                             Submission)
from lti_tool.services import seats  # noqa: E402
from lti_tool.web.launch_token import issue_launch_token  # noqa: E402

COURSE = "DANS-BENCH"
# An MP4 header (ftyp, free, mdat) the tool sniffs as video/mp4; the rest of the file is random bytes.
MP4_HEAD = (bytes.fromhex("00000020667479706973736f0000020069736f6d69736f32617663316d703431")
            + bytes.fromhex("0000000866726565") + bytes.fromhex("000000086d646174"))


def prepare(app) -> tuple[int, str]:
    """A video course with one file assignment, a pupil with a seat, a launch: (assignment id, launch token)."""
    prepare_demo(app, catalog=False)
    with new_session(app) as session:
        session.add(Course(code=COURSE, version=1, status="active", subject="dance", title={"sv": "Dans"},
                           languages=["sv"], content_hash="0" * 64))
        closes = date.today() + timedelta(days=30)
        session.add(CourseRound(course_code=COURSE, round_id="r1", starts_on=closes,
                                ends_on=closes + timedelta(days=90), enrolment_closes_on=closes,
                                withdrawal_deadline=closes, capacity=10,
                                min_participants=1, seats_taken=0, status="open"))
        module = CourseModule(course_code=COURSE, key="m1", position=1, title={"sv": "Modul"})
        session.add(module)
        session.flush()
        assignment = Assignment(module_id=module.id, key="a1", position=1, title={"sv": "Filma"},
                                instructions_markdown={"sv": "Filma."}, instructions_html={"sv": "<p>Filma.</p>"},
                                submission="file", max_score=Decimal("10"))
        session.add(assignment)
        deployment = session.query(Deployment).order_by(Deployment.id).first()
        seats.set_order(session, "SE-1490", COURSE, "r1", 5)
        seats.reserve_seat(session, registration_id=deployment.registration_id, sub="bench-pupil",
                           municipality_id="SE-1490", course_code=COURSE)
        round_pk = session.query(CourseRound.id).filter(CourseRound.course_code == COURSE).scalar()
        launch = Launch(id=str(uuid.uuid4()), registration_id=deployment.registration_id, deployment_pk=deployment.id,
                        message_type="LtiResourceLinkRequest", sub="bench-pupil", role=ROLE_LEARNER, roles=[],
                        context_id="bench", resource_link_id="bench", custom={}, municipality_id="SE-1490",
                        resolution_method="deployment", locale="sv", course_code=COURSE,
                        round_pk=round_pk)
        session.add(launch)
        session.commit()
        assignment_id, launch_id = assignment.id, launch.id
    with app.app_context():
        return assignment_id, issue_launch_token(launch_id)


def single(base: str, token: str, assignment_id: int, path: Path) -> int:
    """The plain form: the whole file in one multipart POST. Requests made."""
    with open(path, "rb") as handle:
        answer = requests.post(f"{base}/assignment/{assignment_id}?lt={token}",
                               files={"file": ("dans.mp4", handle, "video/mp4")}, allow_redirects=False, timeout=600)
    assert answer.status_code == 303, answer.text[:300]
    return 1


def chunked(base: str, token: str, assignment_id: int, path: Path, web: requests.Session) -> tuple[int, float]:
    """The page's script: name the file, each piece at its offset, finish. Requests made, seconds of the finish."""
    size = path.stat().st_size
    started = web.post(f"{base}/assignment/{assignment_id}/uploads?lt={token}", timeout=60,
                       json={"name": "dans.mp4", "size": size, "type": "video/mp4",
                             "lastModified": time.time_ns() // 1_000_000})
    assert started.status_code == 201, started.text[:300]
    upload = started.json()
    made, offset = 1, 0
    with open(path, "rb") as handle:
        while offset < size:
            piece = handle.read(upload["chunk"])
            answer = web.patch(f"{base}{upload['url']}&offset={offset}", data=piece, timeout=600,
                               headers={"Content-Type": "application/offset+octet-stream"})
            assert answer.status_code == 200, answer.text[:300]
            offset = answer.json()["offset"]
            made += 1
    finishing = time.perf_counter()
    done = web.post(f"{base}{upload['finish']}", json={}, timeout=600)
    assert done.status_code == 200, done.text[:300]
    return made + 1, time.perf_counter() - finishing


def stored_size(app) -> int:
    with new_session(app) as session:
        submission = session.query(Submission).one()
        assert submission.content_type == "video/mp4"
        return submission.file_size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mb", type=float, default=64, help="size of the video file (MB)")
    parser.add_argument("--chunk-mb", type=float, default=5, help="size of a piece (MB), UPLOAD_CHUNK_MB")
    parser.add_argument("--rounds", type=int, default=3, help="uploads of each kind; the median is printed")
    args = parser.parse_args()
    logging.disable(logging.INFO)
    with tempfile.TemporaryDirectory() as folder, socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        probe.close()
        base = f"http://127.0.0.1:{port}"
        app = create_app({"DATABASE_URL": f"sqlite:///{folder}/bench.db", "KEYS_DIR": f"{folder}/keys",
                          "UPLOAD_DIR": f"{folder}/uploads", "BASE_URL": base, "SANDBOX_BASE_URL": base,
                          "LOG_LEVEL": "WARNING", "UPLOAD_CHUNK_MB": args.chunk_mb,
                          "UPLOAD_MAX_MB_BY_COURSE": {COURSE: max(args.mb * 2, 50)}})
        assignment_id, token = prepare(app)
        path = Path(folder) / "dans.mp4"
        size = int(args.mb * 1024 * 1024)
        with open(path, "wb") as out:
            out.write(MP4_HEAD)
            out.write(os.urandom(size - len(MP4_HEAD)))
        server = make_server("127.0.0.1", port, app, threaded=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            web = requests.Session()
            rates = {"single": [], "chunked": []}
            requests_made = {"single": 0, "chunked": 0}
            finishes = []
            for _ in range(args.rounds):
                begun = time.perf_counter()
                requests_made["single"] = single(base, token, assignment_id, path)
                rates["single"].append(args.mb / (time.perf_counter() - begun))
                assert stored_size(app) == size
                begun = time.perf_counter()
                requests_made["chunked"], finish = chunked(base, token, assignment_id, path, web)
                rates["chunked"].append(args.mb / (time.perf_counter() - begun))
                finishes.append(finish)
                assert stored_size(app) == size
            leftovers = [p for p in (Path(folder) / "uploads" / "partial").glob("*/*") if p.is_file()]
        finally:
            server.shutdown()
            thread.join(5)
    whole, pieces = statistics.median(rates["single"]), statistics.median(rates["chunked"])
    print(f"video of {args.mb:g} MB, pieces of {args.chunk_mb:g} MB, median of {args.rounds} uploads of each kind")
    print(f"single:  {whole:8.1f} MB/s  ({requests_made['single']} request: the whole file in one multipart POST)")
    print(f"chunked: {pieces:8.1f} MB/s  ({requests_made['chunked']} requests: name, pieces, finish; "
          f"finish {statistics.median(finishes) * 1000:.0f} ms)  ratio {pieces / whole:5.2f}x of single")
    print(f"partial files left behind: {len(leftovers)}")
    if leftovers:
        raise SystemExit("partial files were left behind")


if __name__ == "__main__":
    main()
