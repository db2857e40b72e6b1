"""Command line: ``flask --app lti_tool <group> <command>``. Groups are nouns, commands verbs."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from importlib import resources
from urllib.parse import urlsplit

import click
from flask import Flask, current_app
from flask.cli import AppGroup, with_appcontext
from sqlalchemy import func, select

from . import services
from .db import new_session, upgrade
from .domain.errors import DomainError
from .lti import get_lti
from .models import DEPLOYMENT_INACTIVE, Municipality, Registration
from .services import registrations as registration_service


def _fail(error: Exception) -> None:
    raise click.ClickException(str(error))


# -- municipalities ----------------------------------------------------------------------------------

@click.group("municipalities", cls=AppGroup)
def municipalities_cli() -> None:
    """The municipality registry (kommuner / kommuner): official SCB and SSB lists."""


@municipalities_cli.command("import")
@click.option("--country", type=click.Choice(["SE", "NO"], case_sensitive=False), required=True)
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
def municipalities_import(country: str, path: str) -> None:
    """Load an official list (SE: municipalities.csv of SCB codes; NO: kommuner CSV of SSB codes).

    Idempotent: a second import of the same file changes nothing. A file with any error changes nothing.
    """
    from catalog_sync.municipalities import MunicipalityImportError, import_municipalities

    with new_session() as session:
        try:
            report = import_municipalities(session, path, country)
        except MunicipalityImportError as error:
            for line in error.errors:
                click.echo(f"error: {line}", err=True)
            raise click.ClickException(f"{path}: not imported, {len(error.errors)} error(s)") from error
        session.commit()
    click.echo(f"{country.upper()}: {report.summary()}")


@municipalities_cli.command("list")
@click.option("--country", type=click.Choice(["SE", "NO"], case_sensitive=False))
def municipalities_list(country: str | None) -> None:
    """List the registry: id, name, county."""
    with new_session() as session:
        query = select(Municipality).order_by(Municipality.id)
        if country:
            query = query.where(Municipality.country == country.upper())
        rows = session.scalars(query).all()
        for m in rows:
            county = f"{m.county_code} {m.county_name or ''}".strip() if m.county_code else ""
            click.echo(f"{m.id}\t{m.name}\t{county}")
        click.echo(f"{len(rows)} municipalities", err=True)


@municipalities_cli.command("add-contact")
@click.option("--municipality", required=True, help="SE-1490 or NO-0301")
@click.option("--issuer", required=True)
@click.option("--client-id", required=True)
@click.option("--sub", required=True, help="The person's LTI user id (sub) in that platform.")
def municipalities_add_contact(municipality: str, issuer: str, client_id: str, sub: str) -> None:
    """List the municipality's arts-school contact: launching as an institution or system administrator of that
    platform, they open the municipal console (a course role, such as a course's Administrator, never does)."""
    from .domain.resolution import parse_municipality_id
    from .models import MunicipalContact

    with new_session() as session:
        try:
            registration = services.find_registration(session, issuer, client_id)
            municipality_id = parse_municipality_id(municipality)
        except (DomainError, ValueError) as error:
            _fail(error)
        if session.get(Municipality, municipality_id) is None:
            _fail(ValueError(f"unknown municipality {municipality_id}"))
        exists = session.scalar(select(MunicipalContact.id).where(
            MunicipalContact.municipality_id == municipality_id, MunicipalContact.registration_id == registration.id,
            MunicipalContact.sub == sub))
        if exists is None:
            session.add(MunicipalContact(municipality_id=municipality_id, registration_id=registration.id, sub=sub))
            session.commit()
    click.echo(f"{sub} is an arts-school contact of {municipality_id} (the console opens when they launch as an "
               f"institution or system administrator)")


# -- platforms (registrations and deployments) -------------------------------------------------------

@click.group("platforms", cls=AppGroup)
def platforms_cli() -> None:
    """Platform registrations (issuer + client id) and their deployments."""


@platforms_cli.command("add")
@click.option("--name", required=True)
@click.option("--issuer", required=True)
@click.option("--client-id", required=True)
@click.option("--auth-login-url", required=True, help="The platform's OIDC authorization endpoint.")
@click.option("--auth-token-url", required=True, help="The platform's OAuth 2 token endpoint.")
@click.option("--jwks-url", required=True, help="The platform's public keys.")
@click.option("--token-audience", help="Audience of service token requests, when not the token URL.")
def platforms_add(name, issuer, client_id, auth_login_url, auth_token_url, jwks_url, token_audience) -> None:
    """Register a platform; prints the new registration's id."""
    for label, url in (("--auth-login-url", auth_login_url), ("--auth-token-url", auth_token_url),
                       ("--jwks-url", jwks_url), ("--issuer", issuer)):
        parts = urlsplit(url)
        if parts.scheme not in ("https", "http") or not parts.netloc:
            raise click.BadParameter(f"{url!r} is not an http(s) URL", param_hint=label)
    with new_session() as session:
        try:
            registration = services.add_registration(
                session, name=name, issuer=issuer, client_id=client_id, auth_login_url=auth_login_url,
                auth_token_url=auth_token_url, jwks_url=jwks_url, token_audience=token_audience)
        except DomainError as error:
            _fail(error)
        session.commit()
        click.echo(registration.id)


@platforms_cli.command("list")
def platforms_list() -> None:
    """One line per registration: id, name, issuer, client id, status, deployments."""
    with new_session() as session:
        for r in services.list_registrations(session):
            click.echo(f"{r.id}\t{r.name}\t{r.issuer}\t{r.client_id}\t{r.status}\t{len(r.deployments)} deployment(s)")


def _echo_comparison(review: registration_service.Review) -> None:
    """A pending re-registration beside the active registration it would replace; differences marked ``*``."""
    click.echo(f"re-registration of active registration {review.replaces.id} (same issuer and client id):")
    for field in review.fields:
        mark = "*" if field.differs else " "
        click.echo(f" {mark} {field.field}: {field.current or '-'} -> {field.proposed or '-'}")


@platforms_cli.command("approve")
@click.argument("registration_id", type=int)
@click.option("--replaces", type=int, metavar="ID",
              help="Approve a re-registration as the replacement of active registration ID (same issuer and client "
                   "id): ID takes its login, token and key URLs; the pending registration is merged into it.")
@click.option("--by", help="Who approves, for the audit log (default: the operating-system user).")
def platforms_approve(registration_id: int, replaces: int | None, by: str | None) -> None:
    """Approve a pending registration made by dynamic registration (bind its deployments with add-deployment).
    A re-registration of an active registration is approved only with --replaces (see platforms show)."""
    from .cli_privacy import _actor

    with new_session() as session:
        try:
            registration = registration_service.approve_registration(session, registration_id, actor=_actor(by),
                                                                     replaces=replaces)
        except DomainError as error:
            session.rollback()
            pending = session.get(Registration, registration_id)
            review = registration_service.review(session, pending) if pending is not None else None
            if review is not None and review.replaces is not None:
                _echo_comparison(review)
            _fail(error)
        session.commit()
        if registration.id != registration_id:
            click.echo(f"registration {registration.id} now uses the URLs of re-registration {registration_id}")
        else:
            click.echo(f"registration {registration_id} approved")


@platforms_cli.command("reject")
@click.argument("registration_id", type=int)
@click.option("--by", help="Who rejects, for the audit log (default: the operating-system user).")
def platforms_reject(registration_id: int, by: str | None) -> None:
    """Delete a pending registration (a dynamic registration or re-registration nobody should approve)."""
    from .cli_privacy import _actor

    with new_session() as session:
        try:
            registration_service.reject_registration(session, registration_id, actor=_actor(by))
        except DomainError as error:
            session.rollback()
            _fail(error)
        session.commit()
    click.echo(f"registration {registration_id} rejected and deleted")


@platforms_cli.command("show")
@click.argument("registration_id", type=int)
def platforms_show(registration_id: int) -> None:
    """Everything about one registration, with its deployments and their municipalities."""
    base = current_app.config["BASE_URL"]
    with new_session() as session:
        try:
            r = services.get_registration(session, registration_id)
        except DomainError as error:
            _fail(error)
        click.echo(f"id: {r.id}\nname: {r.name}\nissuer: {r.issuer}\nclient id: {r.client_id}\n"
                   f"auth login url: {r.auth_login_url}\nauth token url: {r.auth_token_url}\n"
                   f"jwks url: {r.jwks_url}\ntoken audience: {r.token_audience or '(the token url)'}\n"
                   f"status: {r.status}\n"
                   f"tool login url: {base}/lti/login/{r.id}\ntool redirect url: {base}/lti/launch\n"
                   f"tool jwks url: {base}/lti/jwks\ndeployments:")
        for d in sorted(r.deployments, key=lambda d: d.deployment_id):
            municipalities = ", ".join(sorted(m.municipality_id for m in d.municipalities)) or "-"
            shared = f" (custom parameter {d.custom_param})" if d.custom_param else ""
            click.echo(f"  {d.deployment_id}\t{d.status}\t{municipalities}{shared}")
        review = registration_service.review(session, r)
        if review.replaces is not None:
            _echo_comparison(review)


@platforms_cli.command("remove")
@click.argument("registration_id", type=int)
def platforms_remove(registration_id: int) -> None:
    """Remove a registration, its deployments and its launches."""
    with new_session() as session:
        try:
            services.remove_registration(session, registration_id)
        except DomainError as error:
            _fail(error)
        session.commit()
    click.echo(f"removed registration {registration_id}")


@platforms_cli.command("add-deployment")
@click.option("--issuer", required=True)
@click.option("--client-id", required=True)
@click.option("--deployment-id", required=True)
@click.option("--municipality", "municipalities", multiple=True, required=True,
              help="SE-1490 or NO-0301; repeat for a deployment shared by several municipalities.")
@click.option("--custom-param", help="Signed custom parameter naming the municipality on a shared deployment.")
def platforms_add_deployment(issuer, client_id, deployment_id, municipalities, custom_param) -> None:
    """Bind a deployment to its municipality (or municipalities) and approve it."""
    with new_session() as session:
        try:
            registration = services.find_registration(session, issuer, client_id)
            deployment = services.bind_deployment(session, registration, deployment_id, list(municipalities),
                                                  custom_param)
        except (DomainError, ValueError) as error:
            _fail(error)
        session.commit()
        bound = ", ".join(sorted(m.municipality_id for m in deployment.municipalities))
        click.echo(f"deployment {deployment.deployment_id} active for {bound}")


@platforms_cli.command("deactivate-deployment")
@click.option("--issuer", required=True)
@click.option("--client-id", required=True)
@click.option("--deployment-id", required=True)
def platforms_deactivate_deployment(issuer, client_id, deployment_id) -> None:
    """Turn a deployment off: its launches are refused until it is added again."""
    with new_session() as session:
        try:
            registration = services.find_registration(session, issuer, client_id)
            services.set_deployment_status(session, registration, deployment_id, DEPLOYMENT_INACTIVE)
        except DomainError as error:
            _fail(error)
        session.commit()
    click.echo(f"deployment {deployment_id} inactive")


# -- catalog -----------------------------------------------------------------------------------------

@click.group("catalog", cls=AppGroup)
def catalog_cli() -> None:
    """The national course catalog (synced from the feed, never edited here)."""


@catalog_cli.command("sync")
@click.option("--source", required=True, help="An https URL or a file path of the feed (kulturskola-catalog/1).")
@click.option("--dry-run", is_flag=True, help="Show what would change; change nothing.")
def catalog_sync_command(source: str, dry_run: bool) -> None:
    """Fetch, validate and apply the feed in one transaction. A feed with any error changes nothing.

    Over HTTP(S) the last successful sync's ETag / Last-Modified are sent: a 304 does nothing.
    """
    import sys

    from catalog_sync.sync import sync_catalog_from_source

    from .db import SESSIONMAKER_KEY

    def with_bar(courses):
        with click.progressbar(courses, label="courses", item_show_func=lambda c: c and c.get("code")) as bar:
            yield from bar

    report = sync_catalog_from_source(current_app.extensions[SESSIONMAKER_KEY], source, dry_run=dry_run,
                                      config=current_app.config,
                                      progress=with_bar if sys.stdout.isatty() else None)
    if not report.ok:
        for line in report.errors:
            click.echo(line, err=True)
        raise click.ClickException(report.summary())
    for line in report.diff_lines() if dry_run else ():
        click.echo(line)
    click.echo(report.summary())


@catalog_cli.command("history")
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True)
def catalog_history(limit: int) -> None:
    """The latest syncs: when, result, counts (added/updated/retired/unchanged), source, first errors."""
    from catalog_sync.sync import history

    with new_session() as session:
        runs = history(session, limit)
    if not runs:
        click.echo("no syncs yet")
        return
    click.echo(f"{'when (UTC)':<19}  {'result':<12}  {'add':>4} {'upd':>4} {'ret':>4} {'same':>4}  source")
    for run in runs:
        click.echo(f"{run.started_at:%Y-%m-%d %H:%M:%S}  {run.result:<12}  {run.added:>4} {run.updated:>4} "
                   f"{run.retired:>4} {run.unchanged:>4}  {run.source}")
        for error in run.errors[:3]:
            click.echo(f"    {error}")
        if len(run.errors) > 3:
            click.echo(f"    ... and {len(run.errors) - 3} more")


@catalog_cli.command("list")
def catalog_list() -> None:
    """The courses with status, version and rounds (id, status, seats taken / capacity)."""
    from catalog_sync.sync import list_courses

    with new_session() as session:
        courses = list_courses(session)
        for course in courses:
            rounds = ", ".join(f"{r.round_id} ({r.status}, {r.seats_taken}/{r.capacity})" for r in course.rounds)
            title = course.title.get("sv") or course.title.get("nb") or ""
            click.echo(f"{course.code}\tv{course.version}\t{course.status}\t{title}\t{rounds or '-'}")
    click.echo(f"{len(courses)} course(s)", err=True)


# -- keys --------------------------------------------------------------------------------------------

@click.group("keys", cls=AppGroup)
def keys_cli() -> None:
    """The tool's signing keys (JWKS at /lti/jwks)."""


@keys_cli.command("list")
def keys_list() -> None:
    """The published keys: the current one and retired ones in their grace period."""
    for key in get_lti().keys.published():
        state = "current" if key.retired_at is None else f"retired {key.retired_at:%Y-%m-%d %H:%M} UTC"
        click.echo(f"{key.kid}\t{state}")


@keys_cli.command("rotate")
def keys_rotate() -> None:
    """Make a new key that signs from now on; the old one stays published for the grace period."""
    store = get_lti().keys
    key, removed = store.rotate()
    click.echo(f"new signing key {key.kid}; retired keys stay published for {store.grace.days} day(s)")
    for kid in removed:
        click.echo(f"removed expired key {kid}")


@keys_cli.command("purge")
def keys_purge() -> None:
    """Delete retired keys whose grace period is over (also done by every rotation)."""
    removed = get_lti().keys.purge()
    click.echo(f"removed {len(removed)} expired key(s)")


# -- logins ------------------------------------------------------------------------------------------

@click.group("logins", cls=AppGroup)
def logins_cli() -> None:
    """One-time login states and nonces."""


@logins_cli.command("purge")
def logins_purge() -> None:
    """Delete expired login states (run from cron; Redis expires them by itself)."""
    with new_session() as session:
        count = get_lti().logins.purge_expired(session)
        session.commit()
    click.echo(f"removed {count} expired login state(s)")


# -- demo --------------------------------------------------------------------------------------------

def demo_feed(today: date) -> dict:
    """The project's own demo catalog, its rounds moved so that the first is open for enrolment today."""
    import json

    feed = json.loads((resources.files("lti_tool") / "demo_data" / "catalog.json").read_text("utf-8"))
    feed["generated_at"] = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
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
    from .services.seats import national_today, set_order
    from .web.sandbox import get_platform

    upgrade(app)
    with new_session(app) as session:
        data = resources.files("lti_tool") / "demo_data"
        for country in ("SE", "NO"):
            with resources.as_file(data / f"municipalities-{country.lower()}.csv") as path:
                import_municipalities(session, path, country)
        get_platform(app).ensure_registration(session)
        session.commit()
        count = session.scalar(select(func.count()).select_from(Municipality))
        from .models import Course, CourseRound, Order

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
    if not app.config["SANDBOX"]:
        raise click.ClickException("the sandbox is off (production, or LTI_TOOL_SANDBOX=0): no demo")
    prepare_demo(app)
    if no_serve:
        return
    base = urlsplit(app.config["BASE_URL"])
    click.echo(f"open {app.config['SANDBOX_BASE_URL']}/sandbox/ and launch as a pupil; the tool runs at "
               f"{app.config['BASE_URL']} ({datetime.now(timezone.utc):%H:%M} UTC)")
    from werkzeug.serving import run_simple

    # Flask's app.run() refuses to start inside the flask command; serve with werkzeug directly.
    run_simple(base.hostname or "127.0.0.1", base.port or 5000, app, threaded=True, use_reloader=False)


# -- launches ----------------------------------------------------------------------------------------

@click.group("launches", cls=AppGroup)
def launches_cli() -> None:
    """Accepted launches."""


@launches_cli.command("stats")
@click.option("--days", type=click.IntRange(min=1), help="Only launches of the last N days.")
def launches_stats(days: int | None) -> None:
    """Launches per platform and path: how the login state came back (cookie, platform_storage, new_window)."""
    since = datetime.now(timezone.utc) - timedelta(days=days) if days else None
    with new_session() as session:
        rows = services.count_launch_paths(session, since)
    if not rows:
        click.echo("no launches")
        return
    width = max(len(f"{row.platform} ({row.registration_id})") for row in rows)
    click.echo(f"{'platform':<{width}}  {'path':<16}  launches")
    for row in rows:
        click.echo(f"{row.platform + f' ({row.registration_id})':<{width}}  {row.path:<16}  {row.launches:>8}")
    totals: dict[str, int] = {}
    for row in rows:
        totals[row.path] = totals.get(row.path, 0) + row.launches
    click.echo("total: " + ", ".join(f"{path} {count}" for path, count in sorted(totals.items())))


def init_app(app: Flask) -> None:
    for command in (municipalities_cli, platforms_cli, catalog_cli, keys_cli, logins_cli, launches_cli,
                    demo_command):
        app.cli.add_command(command)


__all__ = ["init_app", "prepare_demo"]
