"""``platforms``: platform registrations (issuer + client id) and their deployments."""

from __future__ import annotations

from urllib.parse import urlsplit

import click
from flask.cli import AppGroup

from ..config import settings
from ..db import new_session
from ..domain.errors import DomainError
from ..models import DEPLOYMENT_INACTIVE, Registration
from ..services import platforms as platform_service
from ..services import registrations as registration_service
from .common import BY_HELP, actor, audit, fail


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
@click.option("--by", help=BY_HELP)
def platforms_add(name, issuer, client_id, auth_login_url, auth_token_url, jwks_url, token_audience, by) -> None:
    """Register a platform; prints the new registration's id."""
    for label, url in (("--auth-login-url", auth_login_url), ("--auth-token-url", auth_token_url),
                       ("--jwks-url", jwks_url), ("--issuer", issuer)):
        parts = urlsplit(url)
        if parts.scheme not in ("https", "http") or not parts.netloc:
            raise click.BadParameter(f"{url!r} is not an http(s) URL", param_hint=label)
    with new_session() as session:
        try:
            registration = platform_service.add_registration(
                session, name=name, issuer=issuer, client_id=client_id, auth_login_url=auth_login_url,
                auth_token_url=auth_token_url, jwks_url=jwks_url, token_audience=token_audience)
        except DomainError as error:
            fail(error)
        audit(session, by, "registration.add", f"registration {registration.id}", name=registration.name,
              issuer=registration.issuer, client_id=registration.client_id,
              values=registration_service.snapshot(registration))
        session.commit()
        click.echo(registration.id)


@platforms_cli.command("list")
def platforms_list() -> None:
    """One line per registration: id, name, issuer, client id, status, deployments."""
    with new_session() as session:
        for r in platform_service.list_registrations(session):
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
    with new_session() as session:
        try:
            registration = registration_service.approve_registration(session, registration_id, actor=actor(by),
                                                                     replaces=replaces)
        except DomainError as error:
            session.rollback()
            pending = session.get(Registration, registration_id)
            review = registration_service.review(session, pending) if pending is not None else None
            if review is not None and review.replaces is not None:
                _echo_comparison(review)
            fail(error)
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
    with new_session() as session:
        try:
            registration_service.reject_registration(session, registration_id, actor=actor(by))
        except DomainError as error:
            session.rollback()
            fail(error)
        session.commit()
    click.echo(f"registration {registration_id} rejected and deleted")


@platforms_cli.command("show")
@click.argument("registration_id", type=int)
def platforms_show(registration_id: int) -> None:
    """Everything about one registration, with its deployments and their municipalities."""
    base = settings().base_url
    with new_session() as session:
        try:
            r = platform_service.get_registration(session, registration_id)
        except DomainError as error:
            fail(error)
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
@click.option("--by", help=BY_HELP)
def platforms_remove(registration_id: int, by: str | None) -> None:
    """Remove a registration, its deployments and its launches."""
    with new_session() as session:
        try:
            registration = platform_service.get_registration(session, registration_id)
            values = {"name": registration.name, "issuer": registration.issuer, "client_id": registration.client_id,
                      **registration_service.snapshot(registration)}
            deployments = {d.deployment_id: sorted(m.municipality_id for m in d.municipalities)
                           for d in registration.deployments}
            platform_service.remove_registration(session, registration_id)
        except DomainError as error:
            fail(error)
        audit(session, by, "registration.remove", f"registration {registration_id}", issuer=values["issuer"],
              client_id=values["client_id"], values=values, municipalities=deployments)
        session.commit()
    click.echo(f"removed registration {registration_id}")


@platforms_cli.command("add-deployment")
@click.option("--issuer", required=True)
@click.option("--client-id", required=True)
@click.option("--deployment-id", required=True)
@click.option("--municipality", "municipalities", multiple=True, required=True,
              help="SE-1490 or NO-0301; repeat for a deployment shared by several municipalities.")
@click.option("--custom-param", help="Signed custom parameter naming the municipality on a shared deployment.")
@click.option("--by", help=BY_HELP)
def platforms_add_deployment(issuer, client_id, deployment_id, municipalities, custom_param, by) -> None:
    """Bind a deployment to its municipality (or municipalities) and approve it. Audited as in the console: the
    municipalities before, after, added and removed, the status and the custom parameter before and after."""
    with new_session() as session:
        try:
            registration = platform_service.find_registration(session, issuer, client_id)
            existing = next((d for d in registration.deployments if d.deployment_id == deployment_id), None)
            before = tuple(sorted(m.municipality_id for m in existing.municipalities)) if existing else ()
            status_before = existing.status if existing else None
            param_before = existing.custom_param if existing else None
            deployment = platform_service.bind_deployment(session, registration, deployment_id,
                                                          list(municipalities), custom_param)
        except (DomainError, ValueError) as error:
            fail(error)
        session.flush()
        change = platform_service.BindingChange(before, tuple(sorted(m.municipality_id
                                                                     for m in deployment.municipalities)))
        audit(session, by, "deployment.bind", f"deployment {deployment.deployment_id}",
              registration=registration.id, **change.details(),
              status={"before": status_before, "after": deployment.status},
              custom_param={"before": param_before, "after": deployment.custom_param})
        session.commit()
        bound = ", ".join(sorted(m.municipality_id for m in deployment.municipalities))
        click.echo(f"deployment {deployment.deployment_id} active for {bound}")


@platforms_cli.command("deactivate-deployment")
@click.option("--issuer", required=True)
@click.option("--client-id", required=True)
@click.option("--deployment-id", required=True)
@click.option("--by", help=BY_HELP)
def platforms_deactivate_deployment(issuer, client_id, deployment_id, by) -> None:
    """Turn a deployment off: its launches are refused until it is added again. Audited as in the console."""
    with new_session() as session:
        try:
            registration = platform_service.find_registration(session, issuer, client_id)
            existing = next((d for d in registration.deployments if d.deployment_id == deployment_id), None)
            status_before = existing.status if existing else None
            deployment = platform_service.set_deployment_status(session, registration, deployment_id,
                                                                DEPLOYMENT_INACTIVE)
        except DomainError as error:
            fail(error)
        audit(session, by, "deployment.deactivate", f"deployment {deployment_id}", registration=registration.id,
              status={"before": status_before, "after": deployment.status},
              municipalities=sorted(m.municipality_id for m in deployment.municipalities))
        session.commit()
    click.echo(f"deployment {deployment_id} inactive")
