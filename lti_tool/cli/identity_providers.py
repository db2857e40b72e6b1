"""``identity-providers``: the school identity providers of the second door (Feide, Skolfederation, any OpenID
Connect provider or SAML federation)."""

from __future__ import annotations

from pathlib import Path
from xml.etree import ElementTree

import click
from flask import current_app
from flask.cli import AppGroup

from .. import outbound
from ..clock import now
from ..config import settings
from ..db import new_session
from ..domain.errors import DomainError
from ..models import PROTOCOL_SAML, AuditEntry
from ..services import identity as identity_service
from .common import actor, fail

MD_NS = "urn:oasis:names:tc:SAML:2.0:metadata"
MAX_METADATA_BYTES = 50 * 1024 * 1024  # a national federation's metadata is a few MB


@click.group("identity-providers", cls=AppGroup)
def identity_providers_cli() -> None:
    """School identity providers (Feide, Skolfederation) for pupils whose platform is not an LTI platform."""


def _fetch_metadata(url: str) -> str:
    """A federation's or IdP's metadata, fetched through the outbound guard."""
    with outbound.session(outbound.OutboundPolicy.from_settings(current_app.config)) as http:
        try:
            response = http.get(url, timeout=settings().http_timeout_seconds, max_bytes=MAX_METADATA_BYTES)
            response.raise_for_status()
        except (outbound.OutboundError, OSError) as error:
            raise click.ClickException(f"could not fetch the metadata: {error}") from error
        return response.text


def _metadata_name(xml: str) -> str:
    """The federation's name (EntitiesDescriptor Name) or the IdP's entity id: the provider's issuer."""
    try:
        root = ElementTree.fromstring(xml.encode())
    except ElementTree.ParseError as error:
        raise click.ClickException(f"the metadata is not XML: {error}") from error
    if root.tag == f"{{{MD_NS}}}EntitiesDescriptor":
        idps = root.findall(f".//{{{MD_NS}}}IDPSSODescriptor")
        if not idps:
            raise click.ClickException("the metadata holds no identity provider (IDPSSODescriptor)")
        return root.get("Name") or root.get("ID") or "federation"
    if root.tag == f"{{{MD_NS}}}EntityDescriptor" and root.find(f"{{{MD_NS}}}IDPSSODescriptor") is not None:
        return root.get("entityID", "")
    raise click.ClickException("the metadata is neither a federation's nor an identity provider's")


def _audit(session, action: str, target: str, by: str | None, **details) -> None:
    session.add(AuditEntry(actor=actor(by), action=action, target=target, details=details))


@identity_providers_cli.command("add")
@click.option("--profile", type=click.Choice(sorted(identity_service.PROFILES)), required=True,
              help="feide or oidc (OpenID Connect); skolfederation or saml (SAML 2.0).")
@click.option("--name", required=True, help="Shown on the sign-in button's page, e.g. 'Feide'.")
@click.option("--country", type=click.Choice(["SE", "NO"]), required=True,
              help="Whose pupils sign in here: the invitation page offers the providers of its country.")
@click.option("--issuer", help="OpenID Connect: the issuer (Feide: https://auth.dataporten.no).")
@click.option("--client-id", help="OpenID Connect: the tool's client id at the provider.")
@click.option("--client-secret", envvar="LTI_TOOL_IDP_CLIENT_SECRET",
              help="OpenID Connect: the client secret (or LTI_TOOL_IDP_CLIENT_SECRET; never in a file).")
@click.option("--discovery-url", help="OpenID Connect: the discovery document (Feide's by default).")
@click.option("--groups-api-url", help="Feide: the Groups API (Feide's by default).")
@click.option("--scopes", help="OpenID Connect scopes (Feide: openid userid-feide userinfo-name groups-org).")
@click.option("--metadata-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="SAML: the federation's or IdP's metadata file.")
@click.option("--metadata-url", help="SAML: where to fetch the federation's or IdP's metadata.")
@click.option("--sp-entity-id", help="SAML: the tool's entity id (default: <BASE_URL>/sign-in/saml/<profile>).")
@click.option("--by", help="Who adds it, for the audit log (default: the operating-system user).")
def add(profile, name, country, issuer, client_id, client_secret, discovery_url, groups_api_url, scopes,
        metadata_file, metadata_url, sp_entity_id, by) -> None:
    """Add a school identity provider; prints its id. A SAML provider's service provider metadata is then at
    <BASE_URL>/sign-in/<id>/metadata, for the federation's registry."""
    values = _saml_values(profile, metadata_file, metadata_url, sp_entity_id) \
        if identity_service.PROFILES[profile] == PROTOCOL_SAML \
        else _oidc_values(profile, issuer, client_id, client_secret, discovery_url, groups_api_url, scopes)
    with new_session() as session:
        try:
            provider = identity_service.add_provider(session, profile=profile, name=name, country=country, **values)
        except DomainError as error:
            fail(error)
        _audit(session, "identity_provider_add", f"identity provider {provider.id}", by, profile=profile,
               name=name, country=country, issuer=values["issuer"])
        session.commit()
        click.echo(provider.id)


def _oidc_values(profile, issuer, client_id, client_secret, discovery_url, groups_api_url, scopes) -> dict:
    feide = profile == "feide"
    issuer = issuer or ("https://auth.dataporten.no" if feide else None)
    if not issuer or not client_id or not client_secret:
        raise click.UsageError("an OpenID Connect provider needs --issuer (Feide's by default), --client-id and "
                               "--client-secret")
    discovery_url = discovery_url or (identity_service.FEIDE_DISCOVERY_URL if feide
                                      else issuer.rstrip("/") + "/.well-known/openid-configuration")
    return {"issuer": issuer, "client_id": client_id, "client_secret": client_secret, "discovery_url": discovery_url,
            "groups_api_url": groups_api_url or (identity_service.FEIDE_GROUPS_API_URL if feide else None),
            "scopes": scopes or (identity_service.FEIDE_SCOPES if feide else "openid profile")}


def _saml_values(profile, metadata_file, metadata_url, sp_entity_id) -> dict:
    if bool(metadata_file) == bool(metadata_url):
        raise click.UsageError("a SAML provider needs exactly one of --metadata-file and --metadata-url")
    xml = metadata_file.read_text(encoding="utf-8") if metadata_file else _fetch_metadata(metadata_url)
    return {"issuer": _metadata_name(xml), "client_id": sp_entity_id or f"{settings().base_url}/sign-in/saml/{profile}",
            "metadata_xml": xml, "metadata_url": metadata_url}


@identity_providers_cli.command("list")
def list_() -> None:
    """One line per provider: id, profile, country, status, name, issuer, client or SP entity id."""
    with new_session() as session:
        for p in identity_service.list_providers(session):
            click.echo(f"{p.id}\t{p.profile}\t{p.country}\t{p.status}\t{p.name}\t{p.registration.issuer}\t"
                       f"{p.registration.client_id}")


@identity_providers_cli.command("refresh-metadata")
@click.argument("provider_id", type=int)
@click.option("--by")
def refresh_metadata(provider_id: int, by: str | None) -> None:
    """Fetch a SAML provider's metadata again from its URL (for cron: federations re-sign it daily)."""
    with new_session() as session:
        try:
            provider = identity_service.get_provider(session, provider_id, active=False)
        except DomainError as error:
            fail(error)
        if provider.protocol != PROTOCOL_SAML or not provider.metadata_url:
            raise click.ClickException("only a SAML provider added with --metadata-url can be refreshed")
        xml = _fetch_metadata(provider.metadata_url)
        _metadata_name(xml)
        provider.metadata_xml, provider.metadata_fetched_at = xml, now()
        _audit(session, "identity_provider_metadata", f"identity provider {provider.id}", by,
               bytes=len(xml.encode()))
        session.commit()
        click.echo(f"metadata of identity provider {provider.id} refreshed")


@identity_providers_cli.command("disable")
@click.argument("provider_id", type=int)
@click.option("--by")
def disable(provider_id: int, by: str | None) -> None:
    """Stop offering a provider's sign-in; its pupils' seats and work stay."""
    _set_status(provider_id, identity_service.PROVIDER_DISABLED, by)


@identity_providers_cli.command("enable")
@click.argument("provider_id", type=int)
@click.option("--by")
def enable(provider_id: int, by: str | None) -> None:
    """Offer a disabled provider's sign-in again."""
    _set_status(provider_id, identity_service.PROVIDER_ACTIVE, by)


def _set_status(provider_id: int, status: str, by: str | None) -> None:
    with new_session() as session:
        try:
            provider = identity_service.set_status(session, provider_id, status)
        except DomainError as error:
            fail(error)
        _audit(session, f"identity_provider_{status}", f"identity provider {provider.id}", by)
        session.commit()
        click.echo(f"identity provider {provider.id} {status}")


@identity_providers_cli.command("remove")
@click.argument("provider_id", type=int)
@click.option("--yes", is_flag=True, help="Confirm: the seats, hand-ins and reviews of its pupils go with it.")
@click.option("--by")
def remove(provider_id: int, yes: bool, by: str | None) -> None:
    """Remove a provider and everything of the people who signed in with it (disable it to keep that)."""
    if not yes:
        raise click.UsageError("removing a provider deletes its pupils' seats and work: add --yes, or disable it")
    with new_session() as session:
        try:
            identity_service.remove_provider(session, provider_id)
        except DomainError as error:
            fail(error)
        _audit(session, "identity_provider_remove", f"identity provider {provider_id}", by)
        session.commit()
        click.echo(f"identity provider {provider_id} removed")
