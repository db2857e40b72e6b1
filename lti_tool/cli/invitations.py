"""``invitations``: seat invitations of a municipality's arts school (the second door): issue single-use codes
against an order's budget, list them, revoke an unredeemed one. Every change is audited."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from ..db import new_session
from ..domain.errors import DomainError
from ..domain.resolution import parse_municipality_id
from ..services import invitations
from .common import actor, fail

LOCALES = ("sv", "nb", "nn", "en")


def _default_locale(municipality: str) -> str:
    return "nb" if municipality.upper().startswith("NO") else "sv"


@click.group("invitations", cls=AppGroup)
def invitations_cli() -> None:
    """Seat invitations: single-use codes a municipality's arts school gives its pupils (the second door)."""


@invitations_cli.command("issue")
@click.option("--municipality", required=True, help="SE-1490 or NO-0301")
@click.option("--course", required=True, help="Course code, e.g. GIT-AK-1")
@click.option("--round", "round_id", required=True, help="Round id, e.g. 2027-spring")
@click.option("--count", type=click.IntRange(1, invitations.MAX_PER_ISSUE), required=True,
              help="How many invitations (one per pupil)")
@click.option("--expires", type=click.DateTime(formats=["%Y-%m-%d"]),
              help="Last day the codes can be used (the municipality's day; default: INVITATION_DAYS from now, never "
                   "after the round's end)")
@click.option("--label", help="The arts school's own note on the invitations (e.g. its pupil number)")
@click.option("--format", "output", type=click.Choice(["text", "csv"]), default="text", show_default=True,
              help="text: one code and link a line; csv: a spreadsheet to send from the admin system")
@click.option("--locale", type=click.Choice(LOCALES), help="Language of the CSV's column names (default: the "
                                                            "municipality's country's)")
@click.option("--by", help="Who issues (for the audit log; default: the OS user)")
def invitations_issue(municipality, course, round_id, count, expires, label, output, locale, by) -> None:
    """Issue COUNT single-use invitations for an order. The codes are printed once: only their hashes are kept."""
    with new_session() as session:
        try:
            municipality = parse_municipality_id(municipality)
            expires_at = invitations.end_of_local_day(municipality, expires.date()) if expires else None
            issued = invitations.issue(session, municipality_id=municipality, course_code=course, round_id=round_id,
                                       count=count, expires_at=expires_at, created_by=actor(by), label=label)
            session.commit()
        except (DomainError, ValueError) as error:
            fail(error)
        if output == "csv":
            click.echo(invitations.invitations_csv(issued, locale or _default_locale(municipality)), nl=False)
        else:
            for item in issued:
                click.echo(f"{invitations.display_code(item.code)}\t{invitations.join_url(item.code)}")
        last = invitations.last_day(issued[0].invitation)
        click.echo(f"{len(issued)} invitation(s) for {municipality} {course} {round_id}, valid until {last.isoformat()}"
                   " (the codes are shown only now)", err=True)


@invitations_cli.command("list")
@click.option("--municipality", help="Only this municipality's invitations")
@click.option("--course", help="Only this course's")
@click.option("--round", "round_id", help="Only this round's")
@click.option("--status", type=click.Choice(list(invitations.STATUSES)), help="Only invitations in this state")
def invitations_list(municipality, course, round_id, status) -> None:
    """Invitations, newest first: id, municipality, course, round, code hint, status, last day, label, and for a
    redeemed one the cross-check of the pupil's school (check: not owned by the municipality)."""
    with new_session() as session:
        try:
            found = invitations.list_invitations(session, municipality_id=municipality, course_code=course,
                                                 round_id=round_id, status=status)
        except (DomainError, ValueError) as error:
            fail(error)
        for invitation in found:
            school = " ".join(filter(None, [invitation.school_name, invitation.school_owner and
                                            f"({invitation.school_owner})"]))
            click.echo("\t".join([str(invitation.id), invitation.municipality_id, invitation.round.course_code,
                                  invitation.round.round_id, f"…{invitation.code_hint}",
                                  invitations.status_of(invitation), invitations.last_day(invitation).isoformat(),
                                  invitation.label or "-", invitation.cross_check or "-", school or "-"]))
        click.echo(f"{len(found)} invitation(s)", err=True)


@invitations_cli.command("revoke")
@click.argument("invitation_id", type=int)
@click.option("--by", help="Who revokes (for the audit log; default: the OS user)")
def invitations_revoke(invitation_id, by) -> None:
    """Revoke an unredeemed invitation (a redeemed one holds a pupil's seat: withdraw the seat instead)."""
    with new_session() as session:
        try:
            invitation = invitations.revoke(session, invitation_id, actor=actor(by))
            session.commit()
        except DomainError as error:
            fail(error)
        click.echo(f"invitation {invitation.id} (…{invitation.code_hint}) {invitation.status}")
