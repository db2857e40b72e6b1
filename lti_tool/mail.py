"""Outgoing e-mail (the municipal contacts' weekly digest): one plain-text message through the SMTP server of the
settings ``SMTP_HOST``, ``SMTP_PORT`` (465: TLS from the start), ``SMTP_STARTTLS`` (else STARTTLS, when on),
``SMTP_USERNAME``/``SMTP_PASSWORD`` (a login when a user name is set) and ``MAIL_FROM``.

Without ``SMTP_HOST`` nothing is sent: a log line says so. Anything that goes wrong is a :class:`MailError`.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from urllib.parse import urlsplit

from .config import settings

log = logging.getLogger(__name__)

SMTP_TIMEOUT_SECONDS = 30
IMPLICIT_TLS_PORT = 465


class MailError(Exception):
    """A message could not be sent (bad address, server unreachable, refused, TLS or login failed)."""


def mail_configured() -> bool:
    """Is an SMTP server set (``SMTP_HOST``)?"""
    return bool(settings().smtp_host.strip())


def _sender() -> str:
    config = settings()
    if config.mail_from.strip():
        return config.mail_from.strip()
    host = urlsplit(config.base_url).hostname or "localhost"
    return f"no-reply@{host}"


def _valid_address(address: str) -> bool:
    local, at, domain = address.rpartition("@")
    return bool(at and local and domain) and not any(c.isspace() or c in "<>,;\"" for c in address)


def build_message(to: str, subject: str, body: str) -> EmailMessage:
    """The message as it is sent: plain text in UTF-8, marked as sent automatically."""
    address = (to or "").strip()
    if not _valid_address(address):
        raise MailError(f"not an e-mail address: {to!r}")
    sender = _sender()
    message = EmailMessage()
    try:
        message["From"] = sender
        message["To"] = address
        message["Subject"] = subject
    except ValueError as error:  # a line break in a header
        raise MailError(str(error)) from error
    message["Date"] = formatdate(localtime=False, usegmt=True)
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(body, charset="utf-8")
    return message


def _connect(config) -> smtplib.SMTP:
    if config.smtp_port == IMPLICIT_TLS_PORT:
        return smtplib.SMTP_SSL(config.smtp_host, config.smtp_port, timeout=SMTP_TIMEOUT_SECONDS,
                                context=ssl.create_default_context())
    return smtplib.SMTP(config.smtp_host, config.smtp_port, timeout=SMTP_TIMEOUT_SECONDS)


def send_mail(to: str, subject: str, body: str) -> None:
    """Send one plain-text message to ``to``. Without ``SMTP_HOST``: nothing is sent (logged). Raises
    :class:`MailError` when the message cannot be sent."""
    config = settings()
    message = build_message(to, subject, body)
    if not config.smtp_host.strip():
        log.info("e-mail not sent (SMTP_HOST is not set): %s", subject)
        return
    try:
        client = _connect(config)
        try:
            if config.smtp_starttls and config.smtp_port != IMPLICIT_TLS_PORT:
                client.starttls(context=ssl.create_default_context())
            if config.smtp_username:
                client.login(config.smtp_username, config.smtp_password)
            client.send_message(message)
        finally:
            try:
                client.quit()
            except (smtplib.SMTPException, OSError):
                client.close()
    except (smtplib.SMTPException, OSError, ValueError) as error:
        raise MailError(f"sending to {message['To']} through {config.smtp_host}:{config.smtp_port} failed: "
                        f"{error}") from error
    log.info("e-mail sent to %s: %s", message["To"], subject)
