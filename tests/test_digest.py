"""Feedback reaches home: the weekly e-mail digest to a municipality's arts school. Counts per ordered course round
and how to open the console, never a pupil's name, pseudonym or id; in the municipality's language; sent through
a real SMTP server (aiosmtpd on 127.0.0.1); a server that is down or a bad address is counted, never raised; the
address set (audited) and the digest printed or sent from the CLI."""

from __future__ import annotations

import logging
import socket
from datetime import timedelta
from email import message_from_bytes
from email.header import decode_header, make_header
from email.policy import default as default_policy

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select

from lti_tool import clock
from lti_tool.db import new_session
from lti_tool.mail import MailError, send_mail
from lti_tool.models import INVITATION_ISSUED, AuditEntry, Municipality, Order, SeatInvitation
from lti_tool.services import digest
from lti_tool.services.delivery import pupil_label

from . import test_progress_export
from .test_progress_export import SCHOOL_PUPIL

content = test_progress_export.content  # fixtures of another module, used here by name
boras = test_progress_export.boras

PUPILS = ("p-alva", "p-bo", "p-cleo", "p-oslo", SCHOOL_PUPIL)
PRIVATE = (*PUPILS, *(pupil_label(sub) for sub in PUPILS), "Alva Andersson", "Stina Svensson", "Sjöboskolan", "rita")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Inbox:
    """What the local SMTP server received."""

    def __init__(self):
        self.envelopes = []

    async def handle_DATA(self, server, session, envelope):  # aiosmtpd's hook name
        self.envelopes.append(envelope)
        return "250 OK"

    def messages(self):
        return [message_from_bytes(e.content, policy=default_policy) for e in self.envelopes]


@pytest.fixture
def smtp():
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield controller, inbox
    finally:
        controller.stop()


@pytest.fixture
def mailing(config, app_factory, smtp):
    """An app on the same database that sends mail to the local SMTP server (no STARTTLS there)."""
    controller, _inbox = smtp
    return app_factory({**config, "SMTP_HOST": "127.0.0.1", "SMTP_PORT": controller.port, "SMTP_STARTTLS": False,
                        "MAIL_FROM": "kurser@kulturskola.example"})


def set_address(app, municipality, email):
    result = app.test_cli_runner().invoke(args=["municipalities", "digest-email", "--municipality", municipality,
                                                *(["--email", email] if email else ["--none"]), "--by", "tester"])
    assert result.exit_code == 0, result.output
    return result.output


def open_invitation(app, municipality="SE-1490", days=30):
    with new_session(app) as session:
        order = session.scalar(select(Order).where(Order.municipality_id == municipality))
        session.add(SeatInvitation(code_hash=f"{municipality}{days}".ljust(64, "b"), code_hint="OPEN",
                                   order_id=order.id, round_pk=order.round_pk, municipality_id=municipality,
                                   status=INVITATION_ISSUED, expires_at=clock.now() + timedelta(days=days),
                                   created_by="test"))
        session.commit()


def week(app, municipality="SE-1490", locale="sv"):
    now = clock.now()
    with app.app_context(), new_session(app) as session:
        return digest.digest_for(session, municipality, since=now - digest.PERIOD, until=now + timedelta(seconds=1),
                                 locale=locale)


def test_counts_per_course_and_no_personal_data(app, boras):
    open_invitation(app)
    open_invitation(app, days=-1)  # expired: not open
    made = week(app)
    now_round = next(c for c in made.courses if c.round == "now")
    assert (now_round.new_hand_ins, now_round.reviews_given, now_round.pupils_active) == (2, 2, 3)
    assert (now_round.seats_taken, now_round.seats_budget) == (3, 10)  # Alva, Bo and Stina; Cleo withdrew
    assert (now_round.invitations_redeemed, now_round.invitations_open, now_round.check_marks) == (1, 1, 1)
    assert [c.round for c in made.courses] == ["now"]  # the one round Borås ordered
    assert made.console_url == "http://localhost/municipal/" and made.console_url in made.text
    assert "Distanskurser för Borås" in made.text and "3 av 10 platser tagna" in made.text
    assert "Kurs GIT-AK-1 (GIT-AK-1 now" in made.text
    for private in PRIVATE:
        assert private not in made.text and private not in made.subject, private
    # a week later nothing new happened; the seats are still taken
    with app.app_context(), new_session(app) as session:
        quiet = digest.digest_for(session, "SE-1490", since=clock.now() + timedelta(days=1), locale="sv")
    first = next(c for c in quiet.courses if c.round == "now")
    assert (first.new_hand_ins, first.reviews_given, first.pupils_active, first.seats_taken) == (0, 0, 0, 3)


def test_norwegian_digest_in_bokmal(app, boras):
    made = week(app, "NO-0301", "nb")
    assert "Fjernkurs for Oslo" in made.text and "Kurs GIT-AK-1 (nb)" in made.text
    oslo = next(c for c in made.courses if c.round == "now")
    assert (oslo.new_hand_ins, oslo.reviews_given, oslo.pupils_active, oslo.seats_taken) == (1, 1, 1, 1)
    assert pupil_label("p-oslo") not in made.text and "p-oslo" not in made.text


def test_a_municipality_without_orders(app, content):
    made = week(app, "SE-1440")  # Ale ordered in the fixture; Kiruna did not
    assert made.courses and week(app, "SE-2584").courses == []
    assert "har inte beställt någon distanskurs ännu" in week(app, "SE-2584").text


def test_sent_through_smtp_in_each_municipalitys_language(app, mailing, smtp, boras):
    _controller, inbox = smtp
    set_address(app, "SE-1490", "kulturskolan@boras.example")
    set_address(app, "NO-0301", "kulturskolen@oslo.example")
    with mailing.app_context(), new_session(mailing) as session:
        assert digest.send_digests(session) == 2
    messages = {str(m["To"]): m for m in inbox.messages()}
    assert set(messages) == {"kulturskolan@boras.example", "kulturskolen@oslo.example"}
    assert [e.mail_from for e in inbox.envelopes] == ["kurser@kulturskola.example"] * 2
    boras_mail, oslo_mail = messages["kulturskolan@boras.example"], messages["kulturskolen@oslo.example"]
    assert "Borås" in str(make_header(decode_header(boras_mail["Subject"])))
    assert "Oslo" in str(oslo_mail["Subject"]) and boras_mail["Auto-Submitted"] == "auto-generated"
    body = boras_mail.get_content()
    assert "3 av 10 platser tagna" in body and "http://localhost/municipal/" in body
    assert "1 av 10 plasser tatt" in oslo_mail.get_content()
    for envelope in inbox.envelopes:
        raw = envelope.content.decode("utf-8", "replace") + str(message_from_bytes(envelope.content,
                                                                                   policy=default_policy).get_content())
        for private in PRIVATE:
            assert private not in raw, private


def test_smtp_down_or_a_bad_address_is_counted_not_raised(app, config, app_factory, mailing, smtp, boras, caplog):
    _controller, inbox = smtp
    set_address(app, "SE-1490", "kulturskolan@boras.example")
    with new_session(app) as session:  # an address nobody checked (set outside the CLI)
        session.get(Municipality, "NO-0301").digest_email = "not an address"
        session.commit()
    with mailing.app_context(), new_session(mailing) as session, caplog.at_level(logging.WARNING):
        run = digest.deliver_digests(session)
    assert (run.sent, run.failed, run.failures) == (1, 1, ["NO-0301"]) and len(inbox.envelopes) == 1
    assert "digest of NO-0301 not sent" in caplog.text
    down = app_factory({**config, "SMTP_HOST": "127.0.0.1", "SMTP_PORT": free_port(), "SMTP_STARTTLS": False})
    with down.app_context(), new_session(down) as session, caplog.at_level(logging.WARNING):
        assert digest.send_digests(session) == 0
        run = digest.deliver_digests(session)
    assert (run.sent, run.failed) == (0, 2) and "digest of SE-1490 not sent" in caplog.text
    with down.app_context(), pytest.raises(MailError):
        send_mail("kulturskolan@boras.example", "Test", "Body")


def test_starttls_refused_is_a_mail_error(config, app_factory, smtp):
    controller, inbox = smtp  # the local server offers no STARTTLS
    app = app_factory({**config, "SMTP_HOST": "127.0.0.1", "SMTP_PORT": controller.port, "SMTP_STARTTLS": True})
    with app.app_context(), pytest.raises(MailError, match="STARTTLS"):
        send_mail("kulturskolan@boras.example", "Test", "Body")
    assert inbox.envelopes == []


def test_without_smtp_host_nothing_is_sent(app, boras, caplog):
    set_address(app, "SE-1490", "kulturskolan@boras.example")
    with app.app_context(), caplog.at_level(logging.INFO):
        send_mail("kulturskolan@boras.example", "Test", "Body")
        with new_session(app) as session:
            assert digest.send_digests(session) == 0
    assert "SMTP_HOST is not set" in caplog.text
    with app.app_context():
        for bad in ("no-at-sign", "a@b.example\r\nBcc: x@y.example", ""):
            with pytest.raises(MailError):
                send_mail(bad, "Test", "Body")
        with pytest.raises(MailError):
            send_mail("kulturskolan@boras.example", "Subject\r\nBcc: x@y.example", "Body")


def test_the_address_is_set_and_removed_audited(app, demo):
    assert "weekly digest to kulturskolan@boras.example" in set_address(app, "se-1490", "kulturskolan@boras.example")
    assert "no weekly digest" in set_address(app, "SE-1490", None)
    runner = app.test_cli_runner()
    for args in (["--email", "not an address"], ["--email", "x@y.example", "--none"], []):
        result = runner.invoke(args=["municipalities", "digest-email", "--municipality", "SE-1490", *args])
        assert result.exit_code != 0, args
    assert runner.invoke(args=["municipalities", "digest-email", "--municipality", "SE-9999",
                               "--email", "x@y.example"]).exit_code == 1
    with new_session(app) as session:
        assert session.get(Municipality, "SE-1490").digest_email is None
        audit = list(session.scalars(select(AuditEntry).where(AuditEntry.action == digest.ACTION_DIGEST_EMAIL)
                                     .order_by(AuditEntry.id)))
    assert [(a.actor, a.target, a.details) for a in audit] == [
        ("cli tester", "municipality SE-1490", {"from": None, "to": "kulturskolan@boras.example"}),
        ("cli tester", "municipality SE-1490", {"from": "kulturskolan@boras.example", "to": None})]


def test_the_cli_prints_and_sends(app, mailing, smtp, boras):
    _controller, inbox = smtp
    set_address(app, "SE-1490", "kulturskolan@boras.example")
    printed = app.test_cli_runner().invoke(args=["report", "digest"])
    assert printed.exit_code == 0, printed.output
    assert "To: kulturskolan@boras.example" in printed.output and "3 av 10 platser tagna" in printed.output
    assert "Oslo" not in printed.output  # no address: no digest
    oslo = app.test_cli_runner().invoke(args=["report", "digest", "--municipality", "NO-0301"])
    assert oslo.exit_code == 0 and "To: -" in oslo.output and "Fjernkurs for Oslo" in oslo.output
    refused = app.test_cli_runner().invoke(args=["report", "digest", "--send"])  # this app has no SMTP_HOST
    assert refused.exit_code == 1 and "SMTP_HOST" in refused.output and inbox.envelopes == []
    sent = mailing.test_cli_runner().invoke(args=["report", "digest", "--send", "--municipality", "SE-1490"])
    assert sent.exit_code == 0, sent.output
    assert "digests sent: 1, failed: 0" in sent.output and len(inbox.envelopes) == 1
    with new_session(app) as session:
        session.get(Municipality, "SE-1490").digest_email = "broken address"
        session.commit()
    failed = mailing.test_cli_runner().invoke(args=["report", "digest", "--send"])
    assert failed.exit_code == 1 and "failed: 1 (SE-1490)" in failed.output
