"""``privacy``: pupils' data: ``privacy export``, ``privacy erase`` and ``privacy purge`` (retention)."""

from __future__ import annotations

import json
import os
import shutil
from datetime import timedelta
from pathlib import Path

import click
from flask.cli import AppGroup

from ..clock import now
from ..config import settings
from ..db import new_session
from ..domain.errors import DomainError
from ..services import privacy, upload_sessions
from ..uploads import UploadError, UploadStore, download_name
from .common import actor

COUNT_LABELS = {
    "submissions": "hand-ins",
    "submission_versions": "earlier versions of hand-ins",
    "files": "hand-in files",
    "reviews": "reviews",
    "lesson_progress": "lesson marks",
    "waitlist_entries": "waiting-list entries",
    "roster_rows": "roster rows",
    "outbox_rows": "grade messages",
    "launches": "launch records",
    "launches_deleted": "launch records deleted",
    "launches_anonymised": "launch records kept without personal fields",
    "seats_anonymised": "seats anonymised (kept for invoices)",
    "municipal_contacts": "arts-school contact rows",
    "access_log": "access-log entries",
}


def _store() -> UploadStore:
    config = settings()
    return UploadStore(config.upload_dir, config.upload_max_bytes, ())


def _pupil_options(command):
    for option in reversed([
        click.option("--pupil", "sub", required=True, help="The pupil's LTI user id (sub)."),
        click.option("--issuer", help="The platform's issuer (with --client-id)."),
        click.option("--client-id", help="The registration's client id (with --issuer)."),
        click.option("--registration", "registration_id", type=int, help="The registration id (platforms list)."),
        click.option("--by", help="Who runs this, for the audit log (default: the operating-system user)."),
    ]):
        command = option(command)
    return command


def _resolve(session, sub, issuer, client_id, registration_id) -> privacy.Pupil:
    try:
        return privacy.resolve_pupil(session, sub, registration_id=registration_id, issuer=issuer,
                                     client_id=client_id)
    except privacy.AmbiguousPupilError as error:
        lines = "\n".join(f"  --registration {r.id}   {r.name} (issuer {r.issuer}, client id {r.client_id})"
                          for r in error.registrations)
        raise click.ClickException(f"{error.detail}:\n{lines}") from error
    except DomainError as error:
        raise click.ClickException(error.detail) from error


def _summary(counts: dict[str, int]) -> list[str]:
    return [f"  {COUNT_LABELS.get(name, name)}: {value}" for name, value in counts.items()]


def _write_private(path: str, text: str) -> None:
    """The export holds a minor's data: readable by its owner only."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(text)


@click.group("privacy", cls=AppGroup)
def privacy_cli() -> None:
    """Pupils' data: export what is stored about a pupil, erase it, purge what is past the retention period."""


@privacy_cli.command("export")
@_pupil_options
@click.option("--output", type=click.Path(dir_okay=False), help="Write the JSON here (default: print it).")
@click.option("--files-dir", type=click.Path(file_okay=False), help="Copy the pupil's hand-in files into this folder.")
def privacy_export(sub, issuer, client_id, registration_id, by, output, files_dir) -> None:
    """Everything stored about one pupil (registration + sub) as JSON: launches, seats, waiting lists, lesson
    marks, hand-ins with their files' names, types and sizes, feedback and scores, roster rows, grades sent
    to the platform, and who opened the pupil's work. The export is written to the audit log."""
    with new_session() as session:
        pupil = _resolve(session, sub, issuer, client_id, registration_id)
        result = privacy.export_pupil(session, pupil, secret=settings().secret_key,
                                      retention_days=settings().retention_days)
        document = result.document
        if files_dir:
            folder = Path(files_dir)
            folder.mkdir(parents=True, exist_ok=True)
            store = _store()
            by_id = {item["id"]: item for item in document["hand_ins"]}
            for file in result.files:
                # Named by the tool with the extension of the sniffed type, never the uploaded name (that is
                # in the document): a file is never copied out as something it is not.
                entry = by_id[file.submission_id]
                if file.version is not None:  # an earlier version's file
                    entry = next(v for v in entry["earlier_versions"] if v["version"] == file.version)
                parts = [str(file.submission_id)] + ([f"v{file.version}"] if file.version is not None else [])
                name = download_name(parts, entry["file"]["content_type"])
                try:
                    shutil.copyfile(store.path(file.file_key), folder / name)
                    entry["file"]["copied_as"] = name
                except (OSError, UploadError):
                    entry["file"]["missing"] = True
        privacy.record_access(session, actor=actor(by), action=privacy.ACCESS_EXPORT,
                              pseudonym=document["pupil"]["audit_pseudonym"], registration=pupil.registration_id,
                              files=len(result.files) if files_dir else 0)
        session.commit()
    text = json.dumps(document, ensure_ascii=False, indent=2)
    if output:
        _write_private(output, text + "\n")
        click.echo(f"written to {output}", err=True)
    else:
        click.echo(text)


@privacy_cli.command("erase")
@_pupil_options
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def privacy_erase(sub, issuer, client_id, registration_id, by, yes) -> None:
    """Erase one pupil's personal data and hand-ins (files too). Seats stay, anonymised, so seat counts and
    cost reports do not change. The audit log records the erasure under a pseudonym, not the sub."""
    with new_session() as session:
        pupil = _resolve(session, sub, issuer, client_id, registration_id)
        plan = privacy.count_pupil_data(session, pupil)
    if plan.total() == 0:
        click.echo(f"nothing is stored about {sub} under registration {pupil.registration_id}")
        return
    click.echo(f"pupil {sub} at registration {pupil.registration_id}:")
    for line in _summary(plan.counts):
        click.echo(line)
    if plan.active_seats:
        click.echo(f"note: {plan.active_seats} seat(s) in rounds that have not ended stay taken and keep counting; "
                   "if the pupil launches the course again, that is a new pupil", err=True)
    if not yes:
        click.confirm("Erase this for good?", abort=True)
    with new_session() as session:
        report = privacy.erase_pupil(session, pupil, secret=settings().secret_key, actor=actor(by))
        session.commit()
    failed = _remove_files(report.file_keys)
    click.echo(f"erased: {report.total()} row(s) removed or anonymised, "
               f"{len(report.file_keys) - len(failed)} file(s) removed")
    if failed:
        raise click.ClickException(f"{len(failed)} file(s) could not be removed: {', '.join(failed)}")


def _remove_files(keys) -> list[str]:
    store, failed = _store(), []
    for key in keys:
        try:
            store.delete(key)
        except (OSError, UploadError):
            failed.append(key)
    return failed


@privacy_cli.command("purge")
@click.option("--older-than-days", "days", type=click.IntRange(min=1),
              help="Default: LTI_TOOL_RETENTION_DAYS (365).")
@click.option("--dry-run", is_flag=True, help="Count what would go; change nothing.")
@click.option("--by", help="Who runs this, for the audit log (default: the operating-system user).")
def privacy_purge(days, dry_run, by) -> None:
    """Delete pupils' data older than the retention period (daily from cron): hand-ins and their files,
    reviews, lesson marks, launch records, old waiting-list and roster rows, finished grade messages, the
    access log; seats of rounds that ended before then keep only an anonymous marker (invoices unchanged)."""
    days = days or settings().retention_days
    cutoff = now() - timedelta(days=days)
    # Unfinished uploads in pieces are not kept for the retention period: only UPLOAD_SESSION_HOURS after their
    # last piece (the pupil may go on until then).
    upload_cutoff = now() - timedelta(hours=settings().upload_session_hours)
    with new_session() as session:
        report = privacy.purge_expired(session, cutoff=cutoff, actor=actor(by))
        stale_uploads = upload_sessions.purge_stale(session, cutoff=upload_cutoff)
        if dry_run:
            session.rollback()
        else:
            session.commit()
        referenced = privacy.referenced_file_keys(session)
        under_way = upload_sessions.open_tokens(session)
        session.rollback()
    store = _store()
    planned = set(report.file_keys)
    strays = [k for k in store.keys_older_than(cutoff) if k not in referenced and k not in planned]
    partials = sorted({*stale_uploads, *(t for t in store.partial_tokens_older_than(upload_cutoff)
                                          if t not in under_way)})
    head = "would purge" if dry_run else "purged"
    click.echo(f"{head} data older than {days} days (before {cutoff.date().isoformat()}):")
    for line in _summary(report.counts):
        click.echo(line)
    click.echo(f"  stray upload files: {len(strays)}")
    click.echo(f"  unfinished uploads (no piece for {settings().upload_session_hours:g} hours): {len(partials)}")
    if dry_run:
        return
    failed = _remove_files([*report.file_keys, *strays])
    for token in partials:
        try:
            store.delete_partial(token)
        except (OSError, UploadError):
            failed.append(f"partial/{token}")
    if failed:
        raise click.ClickException(f"{len(failed)} file(s) could not be removed: {', '.join(failed)}")

