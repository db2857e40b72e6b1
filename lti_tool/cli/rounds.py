"""``rounds``: course rounds (closing enrolment, daily from cron) and their teachers (``rounds teachers``)."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from ..config import settings
from ..db import new_session
from ..domain.errors import DomainError
from ..services import round_teachers, seats
from .common import actor, audit, fail


def invitation_url(token: str) -> str:
    """The link a teacher opens from a launch in their own platform (see ``web/teacher.py: join``)."""
    return round_teachers.invitation_url(settings().base_url, token)


@click.group("rounds", cls=AppGroup)
def rounds_cli() -> None:
    """Course rounds."""


@rounds_cli.command("close-enrolment")
@click.option("--today", type=click.DateTime(formats=["%Y-%m-%d"]),
              help="Run as of this date (default: today in Sweden and Norway, whatever the server's time zone)")
@click.option("--by", help="Who runs it, for the audit log (default: the operating-system user)")
def rounds_close_enrolment(today, by) -> None:
    """Close rounds whose enrolment has closed (daily from cron, any time after midnight Swedish time): a round
    below its minimum number of participants is cancelled and its seats released at no cost; the others run."""
    with new_session() as session:
        report = seats.close_enrolment(session, today.date() if today else None)
        if report.running or report.cancelled:
            audit(session, by, "rounds.close_enrolment", "rounds", running=report.running,
                  cancelled=report.cancelled)
        session.commit()
    for label in report.running:
        click.echo(f"running: {label}")
    for label in report.cancelled:
        click.echo(f"cancelled (below minimum): {label}")
    click.echo(f"{len(report.running)} running, {len(report.cancelled)} cancelled")


@rounds_cli.group("teachers", cls=AppGroup)
def teachers_cli() -> None:
    """The teachers of a round (national staff): they see and review the whole round, across municipalities."""


@teachers_cli.command("add")
@click.option("--course", "course_code", required=True, help="Course code")
@click.option("--round", "round_id", required=True, help="Round id of the course")
@click.option("--issuer", help="The teacher's platform issuer (a teacher who arrives by launch)")
@click.option("--client-id", help="The teacher's platform client id (with --issuer)")
@click.option("--sub", help="The teacher's LTI sub in their platform (with --issuer)")
@click.option("--email", help="The e-mail of the teacher's staff sign-in (OpenID Connect, verified)")
@click.option("--name", help="The teacher's name, shown to the round's pupils")
@click.option("--by", help="Who assigns (for the audit log; default: the OS user)")
def teachers_add(course_code, round_id, issuer, client_id, sub, email, name, by) -> None:
    """Name a teacher of a round: by their platform launch (--issuer --client-id --sub) or by --email."""
    by_launch = any((issuer, client_id, sub))
    if by_launch == bool(email) or (by_launch and not all((issuer, client_id, sub))):
        raise click.UsageError("give either --issuer, --client-id and --sub, or --email")
    with new_session() as session:
        try:
            course_round = seats.get_round(session, course_code, round_id)
            if email:
                teacher = round_teachers.add_email_teacher(session, course_round.id, email=email, name=name,
                                                           actor=actor(by))
            else:
                teacher = round_teachers.add_launch_teacher(session, course_round.id, issuer=issuer,
                                                            client_id=client_id, sub=sub, name=name, actor=actor(by))
            session.commit()
        except DomainError as error:
            fail(error)
        click.echo(f"teacher {teacher.id} added to {course_code} {round_id}")


@teachers_cli.command("invite")
@click.option("--course", "course_code", required=True, help="Course code")
@click.option("--round", "round_id", required=True, help="Round id of the course")
@click.option("--name", help="The teacher's name, shown to the round's pupils")
@click.option("--days", type=click.IntRange(1, 90), default=round_teachers.INVITATION_DAYS, show_default=True,
              help="Days the link stays valid")
@click.option("--by", help="Who invites (for the audit log; default: the OS user)")
def teachers_invite(course_code, round_id, name, days, by) -> None:
    """An invitation link for a teacher who arrives from their own platform: they open it from a launch there
    (any placement of the tool in their platform), which binds that platform account to the round."""
    with new_session() as session:
        try:
            course_round = seats.get_round(session, course_code, round_id)
            teacher, token = round_teachers.invite(session, course_round.id, name=name, actor=actor(by), days=days)
            session.commit()
        except DomainError as error:
            fail(error)
        click.echo(f"teacher {teacher.id} invited; link (single use, {days} days):")
        click.echo(invitation_url(token))


@teachers_cli.command("list")
@click.option("--course", "course_code", help="Course code")
@click.option("--round", "round_id", help="Round id of the course (with --course)")
def teachers_list(course_code, round_id) -> None:
    """The rounds' teachers: id, round, name and how they arrive."""
    with new_session() as session:
        round_pk = None
        if course_code and round_id:
            try:
                round_pk = seats.get_round(session, course_code, round_id).id
            except DomainError as error:
                fail(error)
        for teacher in round_teachers.list_teachers(session, round_pk):
            course_round = teacher.round
            if course_code and course_round.course_code != course_code:
                continue
            click.echo("\t".join([str(teacher.id), course_round.course_code, course_round.round_id,
                                  teacher.name or "-", round_teachers.describe_identity(teacher)]))


@teachers_cli.command("remove")
@click.argument("teacher_id", type=int)
@click.option("--by", help="Who removes (for the audit log; default: the OS user)")
def teachers_remove(teacher_id, by) -> None:
    """Remove a teacher from their round (their reviews stay)."""
    with new_session() as session:
        try:
            round_teachers.remove_teacher(session, teacher_id, actor=actor(by))
            session.commit()
        except DomainError as error:
            fail(error)
    click.echo(f"teacher {teacher_id} removed")


@rounds_cli.command("school")
@click.option("--course", "course_code", required=True, help="Course code")
@click.option("--school", default="", help="The providing arts school's name (empty or left out: clears it)")
@click.option("--by", help="Who changes it (for the audit log; default: the OS user)")
def rounds_school(course_code, school, by) -> None:
    """Name the arts school that provides a course's teaching (shown to the course's pupils and teachers)."""
    with new_session() as session:
        try:
            course = round_teachers.set_providing_school(session, course_code, school, actor=actor(by))
            session.commit()
        except DomainError as error:
            fail(error)
        click.echo(f"{course_code}: providing school {course.providing_school or '(none)'}")
