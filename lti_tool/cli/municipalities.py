"""``municipalities``: the municipality registry (official SCB and SSB lists) and the arts-school contacts."""

from __future__ import annotations

import click
from flask.cli import AppGroup
from sqlalchemy import select

from ..db import new_session
from ..domain.errors import DomainError
from ..models import Municipality
from ..services.identity import find_person_registration
from .common import BY_HELP, audit, fail


@click.group("municipalities", cls=AppGroup)
def municipalities_cli() -> None:
    """The municipality registry (kommuner / kommuner): official SCB and SSB lists."""


@municipalities_cli.command("import")
@click.option("--country", type=click.Choice(["SE", "NO"], case_sensitive=False), required=True)
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--by", help=BY_HELP)
def municipalities_import(country: str, path: str, by: str | None) -> None:
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
        if report.added or report.updated:
            audit(session, by, "municipalities.import", f"country {country.upper()}", added=sorted(report.added),
                  updated=sorted(report.updated), unchanged=report.unchanged)
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
@click.option("--sub", required=True, help="The person's LTI user id (sub) in that platform, or their user id at a "
                                           "school identity provider (identity-providers list: its issuer and "
                                           "client id; Feide: the Feide user id).")
@click.option("--by", help=BY_HELP)
def municipalities_add_contact(municipality: str, issuer: str, client_id: str, sub: str, by: str | None) -> None:
    """List the municipality's arts-school contact: launching as an institution or system administrator of that
    platform, they open the municipal console (a course role, such as a course's Administrator, never does). A
    contact who signs in at a school identity provider (Feide, Skolfederation) opens it from "My courses"."""
    from ..domain.resolution import parse_municipality_id
    from ..models import MunicipalContact

    with new_session() as session:
        try:
            registration = find_person_registration(session, issuer, client_id)
            municipality_id = parse_municipality_id(municipality)
        except (DomainError, ValueError) as error:
            fail(error)
        if session.get(Municipality, municipality_id) is None:
            fail(ValueError(f"unknown municipality {municipality_id}"))
        exists = session.scalar(select(MunicipalContact.id).where(
            MunicipalContact.municipality_id == municipality_id, MunicipalContact.registration_id == registration.id,
            MunicipalContact.sub == sub))
        if exists is None:
            session.add(MunicipalContact(municipality_id=municipality_id, registration_id=registration.id, sub=sub))
            audit(session, by, "municipal_contact.add", f"municipality {municipality_id}",
                  registration=registration.id, sub=sub)
            session.commit()
    click.echo(f"{sub} is an arts-school contact of {municipality_id} (the console opens when they launch as an "
               f"institution or system administrator)")


@municipalities_cli.command("digest-email")
@click.option("--municipality", required=True, help="SE-1490 or NO-0301")
@click.option("--email", help="Where the arts school wants the weekly digest (counts and a link, no personal data)")
@click.option("--none", "no_email", is_flag=True, help="No digest any more")
@click.option("--by", help="Who changes it (for the audit log; default: the OS user)")
def municipalities_digest_email(municipality: str, email: str | None, no_email: bool, by: str | None) -> None:
    """Set or remove the address of the municipality's weekly e-mail digest (audited)."""
    from ..domain.resolution import parse_municipality_id
    from ..services.digest import set_digest_email
    from .common import actor

    if bool(email) == no_email:
        raise click.UsageError("give either --email or --none")
    with new_session() as session:
        try:
            place = set_digest_email(session, parse_municipality_id(municipality), None if no_email else email,
                                     actor=actor(by))
            session.commit()
        except (DomainError, ValueError) as error:
            fail(error)
        click.echo(f"{place.id}: weekly digest to {place.digest_email}" if place.digest_email
                   else f"{place.id}: no weekly digest")
