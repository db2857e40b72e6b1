"""``demo``: the database, the demo municipalities, catalog and orders, and the sandbox platform, then serve.

:func:`prepare_demo` is also what the tests and the browser tests set up with."""

from __future__ import annotations

from datetime import date, timedelta
from importlib import resources
from urllib.parse import urlsplit

import click
from flask import Flask, current_app
from flask.cli import with_appcontext
from sqlalchemy import func, select

from ..clock import now
from ..config import settings
from ..db import new_session, upgrade
from ..models import Municipality


def demo_feed(today: date) -> dict:
    """The project's own demo catalog, its rounds moved so that the first is open for enrolment today."""
    import json

    feed = json.loads((resources.files("lti_tool") / "demo_data" / "catalog.json").read_text("utf-8"))
    feed["generated_at"] = now().strftime("%Y-%m-%dT%H:%M:%SZ")
    for course in feed["courses"]:
        for index, round_ in enumerate(course["rounds"]):
            closes = today + timedelta(days=30 + 210 * index)
            round_.update(enrolment_closes_on=closes.isoformat(),
                          starts_on=(closes + timedelta(days=7)).isoformat(),
                          withdrawal_deadline=(closes + timedelta(days=21)).isoformat(),
                          ends_on=(closes + timedelta(days=140)).isoformat())
    return feed


def prepare_demo(app: Flask, *, catalog: bool = True) -> None:
    """Schema, the demo municipalities, the sandbox registration and (``catalog``) the demo catalog with
    orders; idempotent."""
    from catalog_sync.municipalities import import_municipalities
    from catalog_sync.sync import sync_catalog, validate_feed

    from ..sandbox import get_platform
    from ..services.seats import national_today, set_order

    upgrade(app)
    with new_session(app) as session:
        data = resources.files("lti_tool") / "demo_data"
        for country in ("SE", "NO"):
            with resources.as_file(data / f"municipalities-{country.lower()}.csv") as path:
                import_municipalities(session, path, country)
        get_platform(app).ensure_registration(session)
        session.commit()
        count = session.scalar(select(func.count()).select_from(Municipality))
        from ..models import Course, CourseRound, Order

        if catalog and session.scalar(select(func.count()).select_from(Course)) == 0:
            feed = demo_feed(national_today())
            errors = validate_feed(feed)
            if errors:
                raise click.ClickException("; ".join(errors))
            sync_catalog(session, feed)
            session.commit()
            # Every demo municipality orders the first round of every course: 3 seats each.
            if session.scalar(select(func.count()).select_from(Order)) == 0:
                for round_ in session.scalars(select(CourseRound).where(CourseRound.round_id == "round-1")):
                    for municipality in session.scalars(select(Municipality.id)):
                        set_order(session, municipality, round_.course_code, round_.round_id, 3)
                session.commit()
    click.echo(f"demo ready: {count} municipalities, sandbox platform registered")


@click.command("demo")
@click.option("--no-serve", is_flag=True, help="Prepare the database and the sandbox, then stop.")
@with_appcontext
def demo_command(no_serve: bool) -> None:
    """Prepare the database, demo municipalities and the sandbox platform, then serve on BASE_URL."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    config = settings(app)
    if not config.sandbox:
        raise click.ClickException("the sandbox is off (production, or LTI_TOOL_SANDBOX=0): no demo")
    prepare_demo(app)
    if no_serve:
        return
    base = urlsplit(config.base_url)
    click.echo(f"open {config.sandbox_base_url}/sandbox/ and launch as a pupil; the tool runs at "
               f"{config.base_url} ({now():%H:%M} UTC)")
    from werkzeug.serving import run_simple

    # Flask's app.run() refuses to start inside the flask command; serve with werkzeug directly.
    run_simple(base.hostname or "127.0.0.1", base.port or 5000, app, threaded=True, use_reloader=False)
