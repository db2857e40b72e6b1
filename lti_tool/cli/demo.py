"""``demo``: the database, the demo municipalities, catalog and orders, the sandbox platforms and the demo's
cross-border round (``sandbox/demo_round.py``), then serve.

:func:`prepare_demo` is also what the tests and the browser tests set up with."""

from __future__ import annotations

from datetime import date, timedelta
from importlib import resources
from typing import TYPE_CHECKING, Mapping
from urllib.parse import urlsplit, urlunsplit

import click
from flask import Flask, current_app
from flask.cli import with_appcontext
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..clock import now
from ..config import settings
from ..db import new_session, upgrade
from ..models import CourseRound, Municipality

if TYPE_CHECKING:
    from ..sandbox import SandboxPlatform

DEMO_ACTOR = "flask demo"


# Where the demo catalog's own lesson videos are (files under lti_tool/static/demo/, served by the tool): the
# catalog names them at the default BASE_URL's host, in https as the feed requires.
DEMO_VIDEO_HOST = "127.0.0.1:5000"


def demo_feed(today: date, base_url: str | None = None) -> dict:
    """The project's own demo catalog, its rounds moved so that the first is open for enrolment today; with
    ``base_url``, its own lesson videos at the tool's host (still https: the tool plays an https video at its own
    host from its static files, see ``web.media``)."""
    import json

    feed = json.loads((resources.files("lti_tool") / "demo_data" / "catalog.json").read_text("utf-8"))
    feed["generated_at"] = now().strftime("%Y-%m-%dT%H:%M:%SZ")
    host = urlsplit(base_url).netloc if base_url else ""
    for course in feed["courses"]:
        for module in course["modules"]:
            for lesson in module["lessons"]:
                video = urlsplit(lesson.get("video_url") or "")
                if host and video.netloc == DEMO_VIDEO_HOST:
                    lesson["video_url"] = urlunsplit(("https", host, video.path, "", ""))
        for index, round_ in enumerate(course["rounds"]):
            closes = today + timedelta(days=30 + 210 * index)
            round_.update(enrolment_closes_on=closes.isoformat(),
                          starts_on=(closes + timedelta(days=7)).isoformat(),
                          withdrawal_deadline=(closes + timedelta(days=21)).isoformat(),
                          ends_on=(closes + timedelta(days=140)).isoformat())
    return feed


def prepare_demo_round(session: Session, platforms: Mapping[str, SandboxPlatform]) -> CourseRound | None:
    """The demo's cross-border round, when its course is in the catalog: the providing school, an order with
    seats for each of its pupils' municipalities, its teacher who launches from their own sandbox platform and
    one who signs in by e-mail; idempotent (nothing already there is changed)."""
    from ..models import Course, Order, RoundTeacher
    from ..sandbox import demo_round
    from ..services import round_teachers
    from ..services.seats import set_order

    course_round = session.scalar(select(CourseRound).where(CourseRound.course_code == demo_round.COURSE,
                                                            CourseRound.round_id == demo_round.ROUND))
    course = session.get(Course, demo_round.COURSE)
    if course_round is None or course is None:
        return None
    if not course.providing_school:
        round_teachers.set_providing_school(session, course.code, demo_round.PROVIDING_SCHOOL, actor=DEMO_ACTOR)
    for municipality in demo_round.MUNICIPALITIES:
        ordered = session.scalar(select(Order.id).where(Order.municipality_id == municipality,
                                                        Order.round_pk == course_round.id))
        if ordered is None:
            set_order(session, municipality, demo_round.COURSE, demo_round.ROUND, demo_round.SEATS)
    registration = platforms[demo_round.TEACHER_PLATFORM].ensure_registration(session)
    named = select(RoundTeacher.id).where(RoundTeacher.round_pk == course_round.id)
    if session.scalar(named.where(RoundTeacher.registration_id == registration.id,
                                  RoundTeacher.sub == demo_round.TEACHER_SUB)) is None:
        round_teachers.add_launch_teacher(session, course_round.id, issuer=registration.issuer,
                                          client_id=registration.client_id, sub=demo_round.TEACHER_SUB,
                                          name=demo_round.TEACHER_NAME, actor=DEMO_ACTOR)
    if session.scalar(named.where(RoundTeacher.email == demo_round.EMAIL_TEACHER)) is None:
        round_teachers.add_email_teacher(session, course_round.id, email=demo_round.EMAIL_TEACHER,
                                         name=demo_round.EMAIL_TEACHER_NAME, actor=DEMO_ACTOR)
    return course_round


def prepare_second_door(app: Flask) -> list[str]:
    """The sandbox's school identity providers (Feide-style OpenID Connect, Skolfederation-style SAML, the latter
    where xmlsec1 is installed) and one seat invitation of the demo round for a Norwegian and a Swedish
    municipality: the lines to print (each invitation's link)."""
    from ..domain.errors import DomainError
    from ..identity import SignInError
    from ..sandbox import demo_round, idp_oidc
    from ..services import invitations

    lines = []
    with app.app_context(), new_session(app) as session:
        base = settings(app).sandbox_base_url
        idp_oidc.ensure_sandbox_oidc_provider(session, base)
        try:
            from ..identity.saml import xmlsec_binary
            from ..sandbox import idp_saml

            xmlsec_binary()
            idp_saml.ensure_sandbox_saml_provider(session, base)
        except SignInError as error:  # no xmlsec1: the Swedish door stays closed in the demo, said so
            lines.append(f"  (no Skolfederation sandbox: {error})")
        for municipality, country_door in (("NO-0301", "Sandbox Feide"), ("SE-1490", "Sandbox Skolfederation")):
            try:
                [issued] = invitations.issue(session, municipality_id=municipality, course_code=demo_round.COURSE,
                                             round_id=demo_round.ROUND, count=1, expires_at=None,
                                             created_by=DEMO_ACTOR)
            except DomainError as error:  # no order, or its places all taken or invited
                lines.append(f"  {municipality}: no invitation ({error})")
                continue
            lines += [f"  a place from {municipality}, signing in with {country_door}:",
                      f"    {invitations.join_url(issued.code)}"]
        session.commit()
    return lines


def demo_round_lines(app: Flask) -> list[str]:
    """The demo round's ready-made launches (label and address), in English, for the terminal."""
    from flask_babel import force_locale

    from ..sandbox import demo_round, get_platforms

    platforms = get_platforms(app)
    base = settings(app).sandbox_base_url.rstrip("/")
    with new_session(app) as session:
        names = {m.id: m.name for m in session.scalars(select(Municipality))}
    lines = []
    with app.test_request_context(), force_locale("en"):
        for launch in demo_round.LAUNCHES:
            label = launch.label(names.get(launch.municipality, launch.municipality), platforms[launch.platform].name)
            lines += [f"  {label}", f"    {base}{launch.path()}"]
    return lines


def prepare_demo(app: Flask, *, catalog: bool = True) -> None:
    """Schema, the demo municipalities, the sandbox platforms' registrations and (``catalog``) the demo catalog
    with orders and the demo's cross-border round; idempotent."""
    from catalog_sync.municipalities import import_municipalities
    from catalog_sync.sync import sync_catalog, validate_feed

    from ..sandbox import get_platforms
    from ..services.seats import national_today, set_order

    upgrade(app)
    with new_session(app) as session:
        data = resources.files("lti_tool") / "demo_data"
        for country in ("SE", "NO"):
            with resources.as_file(data / f"municipalities-{country.lower()}.csv") as path:
                import_municipalities(session, path, country)
        platforms = get_platforms(app)
        for platform in platforms.values():  # the first first: it keeps the registration it always had
            platform.ensure_registration(session)
        session.commit()
        count = session.scalar(select(func.count()).select_from(Municipality))
        from ..models import Course, Order

        if catalog and session.scalar(select(func.count()).select_from(Course)) == 0:
            feed = demo_feed(national_today(), settings(app).base_url)
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
        if catalog and prepare_demo_round(session, platforms) is not None:
            session.commit()
    names = ", ".join(platform.name for platform in platforms.values())
    click.echo(f"demo ready: {count} municipalities, sandbox platforms registered ({names})")


def use_port(app: Flask, port: int) -> None:
    """Serve the demo on another port: BASE_URL takes it, and the sandbox's own address follows unless it was
    set explicitly (SANDBOX_BASE_URL)."""
    from ..config import sandbox_default_url

    base = urlsplit(settings(app).base_url)
    derived = settings(app).sandbox_base_url == sandbox_default_url(settings(app).base_url)
    app.config["BASE_URL"] = urlunsplit(base._replace(netloc=f"{base.hostname}:{port}"))
    if derived:
        app.config["SANDBOX_BASE_URL"] = sandbox_default_url(app.config["BASE_URL"])
    from .. import lti as lti_protocol

    lti_protocol.init_app(app)  # the launch checks (target_link_uri is ours) take the new address
    if settings(app).sandbox:
        from ..sandbox.views import make_parties

        make_parties(app)  # the sandbox platforms and identity providers move with it


@click.command("demo")
@click.option("--no-serve", is_flag=True, help="Prepare the database and the sandbox, then stop.")
@click.option("--port", type=click.IntRange(1, 65535), help="Serve on this port (BASE_URL's otherwise, 5000).")
@with_appcontext
def demo_command(no_serve: bool, port: int | None) -> None:
    """Prepare the database, demo municipalities and the sandbox platform, then serve on BASE_URL."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    if port is not None:
        use_port(app, port)
    config = settings(app)
    if not config.sandbox:
        raise click.ClickException("the sandbox is off (production, or LTI_TOOL_SANDBOX=0): no demo")
    prepare_demo(app)
    from ..sandbox import demo_round

    click.echo(f"the cross-border round {demo_round.COURSE} {demo_round.ROUND}: ready-made launches (also on the "
               f"sandbox page)")
    for line in demo_round_lines(app):
        click.echo(line)
    click.echo(f"  its second teacher signs in by e-mail: {demo_round.EMAIL_TEACHER} ({demo_round.EMAIL_TEACHER_NAME})")
    click.echo("pupils without an LTI platform: seat invitations and the school sign-in (more on the sandbox page)")
    for line in prepare_second_door(app):
        click.echo(line)
    if no_serve:
        return
    base = urlsplit(config.base_url)
    click.echo(f"open {config.sandbox_base_url}/sandbox/ and launch as a pupil; the tool runs at "
               f"{config.base_url} ({now():%H:%M} UTC)")
    from werkzeug.serving import run_simple

    # Flask's app.run() refuses to start inside the flask command; serve with werkzeug directly.
    run_simple(base.hostname or "127.0.0.1", base.port or 5000, app, threaded=True, use_reloader=False)
