"""TLS to the mailbox's servers, for real: a private CA, Dovecot with ``ssl = required``, aiosmtpd with TLS.

The CA and the servers' certificate are made for the test session (trustme).
The TLS Dovecot refuses every login before TLS (see ``tests.services.TLS_HOST``)
and the STARTTLS SMTP server refuses mail before STARTTLS, so a client that
quietly skipped TLS could not pass these tests. Certificates from another CA,
and servers without STARTTLS, must fail the connection with an error that
names the mailbox and is logged, never fall back to plain text.
"""

from __future__ import annotations

import logging
import re
import threading
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from connectors.email.connection import MailboxTlsError, open_imap
from connectors.email.sender import SmtpSender
from connectors.email.settings import MailboxSettings
from hub import create_app
from hub.config import SettingsError
from hub.events import Channel
from hub.models import Interaction, Role
from hub.outbound import OutboundMessage, SendError
from hub.runtime import Runtime
from tests.conftest import make_agent
from tests.connectors.email.conftest import PASSWORD, USER, intake_of, mailbox_table, sync
from tests.connectors.email.messages import MAILBOX_ADDRESS, customer_message
from tests.services import Dovecot, SmtpServer, TlsFiles, make_self_signed_tls_files
from tests.waiting import wait_until

CUSTOMER = "jane.doe@example.org"


@pytest.fixture
def mail_server(start_dovecot: Any, tls_files: TlsFiles) -> Dovecot:
    """In this module the support mailbox lives on a Dovecot that speaks only TLS."""
    server: Dovecot = start_dovecot(tls=tls_files)
    server.add_user(USER, PASSWORD)
    return server


def imap_settings(server: Dovecot, tls: str, ca_file: Path | None) -> dict[str, Any]:
    """The mailbox keys that point the intake at ``server`` with ``tls``."""
    values: dict[str, Any] = {"tls": tls, "port": server.tls_port if tls == "ssl" else server.port}
    if ca_file is not None:
        values["ca_file"] = str(ca_file)
    return values


def mailbox_settings(table: dict[str, Any]) -> MailboxSettings:
    return MailboxSettings.from_table(0, table)


def reply(to: str = CUSTOMER) -> OutboundMessage:
    return OutboundMessage(
        interaction_id=1, channel=Channel.EMAIL, external_id="corridor-0f1e2d3c", to_address=to,
        from_address=MAILBOX_ADDRESS, subject="Re: Order 4711", text="A replacement lid is on its way.",
    )  # fmt: skip


def tls_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    """What the intake logged about TLS failures."""
    return [
        record.getMessage()
        for record in caplog.records
        if record.name == "connectors.email.intake" and "MailboxTlsError" in record.getMessage()
    ]


def logins(server: Dovecot) -> list[str]:
    """Dovecot's log lines of successful logins of the support user."""
    return [line for line in server.log_path.read_text().splitlines() if f"Login: user=<{USER}>" in line]


# -- intake --------------------------------------------------------------------------


@pytest.mark.parametrize("tls", ["ssl", "starttls"])
def test_intake_over_tls_puts_the_mail_on_the_timeline(
    make_email_app: Any, mail_server: Dovecot, tls_files: TlsFiles, tls: str
) -> None:
    runtime: Runtime = make_email_app(imap_settings(mail_server, tls, tls_files.ca_file)).extensions["corridor"]
    mail_server.append(USER, PASSWORD, "INBOX", customer_message(1, sender=CUSTOMER))

    report = sync(intake_of(runtime))

    assert report.new == 1
    with runtime.database.read() as session:
        assert list(session.scalars(select(Interaction.external_id))) == ["msg-1@example.org"]
    # The server logs how each login was protected; ours came over TLS.
    assert logins(mail_server)[-1].count(", TLS,") == 1


@pytest.mark.parametrize("tls", ["ssl", "starttls"])
def test_a_certificate_from_another_ca_stops_the_intake_with_a_logged_error_naming_the_mailbox(
    make_email_app: Any,
    mail_server: Dovecot,
    foreign_ca_file: Path,
    caplog: pytest.LogCaptureFixture,
    tls: str,
) -> None:
    runtime: Runtime = make_email_app(imap_settings(mail_server, tls, foreign_ca_file)).extensions["corridor"]
    mail_server.append(USER, PASSWORD, "INBOX", customer_message(1))
    logins_before = len(logins(mail_server))
    intake = intake_of(runtime, backoff_base=0.05, backoff_max=0.1)

    with pytest.raises(MailboxTlsError) as raised:
        intake.connect()
    # The worker's loop logs it and keeps trying, with backoff, without a traceback storm.
    caplog.set_level(logging.WARNING, logger="connectors.email.intake")
    stop = threading.Event()
    loop = threading.Thread(target=intake.run, args=(stop,), daemon=True)
    loop.start()
    try:
        assert wait_until(lambda: len(tls_warnings(caplog)) >= 2, 10), caplog.text
    finally:
        stop.set()
        loop.join(timeout=10)

    message = str(raised.value)
    assert message.startswith(f"mailbox 'support': the IMAP server {mail_server.host}:")
    assert f"does not verify against ca_file {foreign_ca_file}: unable to get local issuer certificate" in message
    (first, *_) = tls_warnings(caplog)
    assert first.startswith("support/INBOX: MailboxTlsError: mailbox 'support': the IMAP server")
    assert "trying again in" in first
    assert len(logins(mail_server)) == logins_before  # never logged in, not even in plain text
    with runtime.database.read() as session:
        assert session.scalars(select(Interaction)).first() is None


def test_without_ca_file_the_systems_cas_decide_and_a_private_ca_is_refused(
    make_email_app: Any, mail_server: Dovecot
) -> None:
    runtime: Runtime = make_email_app(imap_settings(mail_server, "ssl", None)).extensions["corridor"]

    with pytest.raises(
        MailboxTlsError, match=r"does not verify against the system's CAs \(a private CA goes in ca_file\)"
    ):
        intake_of(runtime).connect()


def test_starttls_configured_but_not_offered_fails_without_logging_in(dovecot: Dovecot, password_file: Path) -> None:
    # The suite's usual Dovecot runs with ssl = no: no STARTTLS in its capabilities.
    dovecot.add_user(USER, PASSWORD)
    table = mailbox_table(dovecot, None, password_file, tls="starttls")

    with pytest.raises(MailboxTlsError) as raised:
        open_imap(mailbox_settings(table), timeout=5)

    assert str(raised.value) == (
        f"mailbox 'support': the IMAP server 127.0.0.1:{dovecot.port} does not offer STARTTLS, and "
        'tls = "starttls" never logs in without it (for an implicit-TLS port, tls = "ssl")'
    )
    assert logins(dovecot) == []


# -- replies -------------------------------------------------------------------------


def smtp_mailbox(server: SmtpServer, password_file: Path, tls: str, ca_file: Path) -> MailboxSettings:
    return mailbox_settings(
        {
            "name": "support", "host": "imap.invalid", "user": USER, "password_file": str(password_file),
            "address": MAILBOX_ADDRESS, "smtp_host": server.host, "smtp_port": server.port, "smtp_tls": tls,
            "ca_file": str(ca_file),
        }
    )  # fmt: skip


@pytest.mark.parametrize("tls", ["ssl", "starttls"])
def test_a_reply_goes_out_over_tls_and_logs_in_only_then(
    start_smtp_server: Any, tls_files: TlsFiles, password_file: Path, tls: str
) -> None:
    server: SmtpServer = start_smtp_server(tls=tls, tls_files=tls_files, login=(USER, PASSWORD))
    sender = SmtpSender([smtp_mailbox(server, password_file, tls, tls_files.ca_file)])

    result = sender.send(reply())

    (received,) = server.wait_for(1)
    assert (received.tls, received.login, received.rcpt_tos) == (True, USER, (CUSTOMER,))
    assert result.provider_id == "corridor-0f1e2d3c@corridor.example"


def test_a_self_signed_server_is_trusted_by_naming_its_certificate(
    start_smtp_server: Any, password_file: Path, tmp_path: Path
) -> None:
    # Why there is no "verify = false": a server without a CA is trusted by
    # pinning its own certificate, and verification stays on.
    self_signed = make_self_signed_tls_files(tmp_path / "tls", "127.0.0.1")
    server: SmtpServer = start_smtp_server(tls="ssl", tls_files=self_signed, login=(USER, PASSWORD))
    sender = SmtpSender([smtp_mailbox(server, password_file, "ssl", self_signed.cert_file)])

    sender.send(reply())

    (received,) = server.wait_for(1)
    assert received.tls


@pytest.mark.parametrize("tls", ["ssl", "starttls"])
def test_an_smtp_certificate_from_another_ca_keeps_the_reply_queued_with_the_reason(
    start_smtp_server: Any, tls_files: TlsFiles, foreign_ca_file: Path, password_file: Path, tls: str
) -> None:
    server: SmtpServer = start_smtp_server(tls=tls, tls_files=tls_files, login=(USER, PASSWORD))
    sender = SmtpSender([smtp_mailbox(server, password_file, tls, foreign_ca_file)])

    with pytest.raises(SendError) as raised:
        sender.send(reply())

    failure = raised.value
    assert (failure.code, failure.permanent) == ("smtp_tls", False)  # retried: an admin can fix the CA
    assert failure.message == (
        f"mailbox 'support': the SMTP server 127.0.0.1:{server.port} presented a certificate that does not verify "
        f"against smtp_ca_file {foreign_ca_file}: unable to get local issuer certificate"
    )
    assert server.messages == []


def test_smtp_starttls_configured_but_not_offered_sends_nothing(
    smtp_server: SmtpServer, tls_files: TlsFiles, password_file: Path
) -> None:
    sender = SmtpSender([smtp_mailbox(smtp_server, password_file, "starttls", tls_files.ca_file)])

    with pytest.raises(SendError) as raised:
        sender.send(reply())

    assert raised.value.code == "smtp_tls"
    assert raised.value.message == (
        f"mailbox 'support': the SMTP server 127.0.0.1:{smtp_server.port} does not offer STARTTLS, and "
        'smtp_tls = "starttls" never logs in without it (for an implicit-TLS port, smtp_tls = "ssl")'
    )
    assert smtp_server.messages == []


def test_a_reply_through_the_api_over_starttls_is_sent(
    make_email_app: Any, start_smtp_server: Any, tls_files: TlsFiles, mail_server: Dovecot
) -> None:
    server: SmtpServer = start_smtp_server(tls="starttls", tls_files=tls_files, login=(USER, PASSWORD))
    app = make_email_app(
        {
            **imap_settings(mail_server, "ssl", tls_files.ca_file),
            "smtp_host": server.host, "smtp_port": server.port, "smtp_tls": "starttls",
        }
    )  # fmt: skip
    runtime: Runtime = app.extensions["corridor"]
    mail_server.append(USER, PASSWORD, "INBOX", customer_message(1, sender=CUSTOMER, subject="Lid broken"))
    sync(intake_of(runtime))
    auth = {"Authorization": f"Bearer {make_agent(runtime, Role.AGENT)}"}
    client = app.test_client()
    (customer,) = client.get("/api/customers", query_string={"email": CUSTOMER}, headers=auth).json["customers"]
    conversation = client.get(f"/api/customers/{customer['id']}", headers=auth).json["conversations"][0]["id"]

    response = client.post(
        f"/api/conversations/{conversation}/replies", json={"channel": "email", "text": "On its way."}, headers=auth
    )

    assert response.status_code == 201, response.json
    (received,) = server.wait_for(1)
    assert received.tls


# -- settings ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ca_file", "reason"),
    [("missing.pem", "No such file or directory"), ("not-a-certificate.pem", "NO_CERTIFICATE_OR_CRL_FOUND")],
)
def test_a_ca_file_that_cannot_be_read_stops_start_up_naming_the_key(
    password_file: Path, tmp_path: Path, ca_file: str, reason: str
) -> None:
    (tmp_path / "not-a-certificate.pem").write_text("this is not a certificate\n")
    table = {
        "name": "support", "host": "imap.example.com", "user": USER, "password_file": str(password_file),
        "address": MAILBOX_ADDRESS, "ca_file": str(tmp_path / ca_file),
    }  # fmt: skip

    with pytest.raises(SettingsError) as raised:
        create_app(
            overrides={
                "app": {"connectors": ["email"], "instance_dir": str(tmp_path)},
                "email": {"mailboxes": [table]},
            },
            environ={},
        )

    message = str(raised.value)
    assert message.startswith(
        f"[email] mailbox 'support' ca_file: cannot load CA certificates from {tmp_path / ca_file}"
    )
    assert reason in message


def test_smtp_trusts_the_imap_ca_file_unless_given_its_own(password_file: Path) -> None:
    base = {"name": "support", "host": "mail.example.com", "user": USER, "password_file": str(password_file),
            "address": MAILBOX_ADDRESS}  # fmt: skip

    assert (mailbox_settings(base).ca_file, mailbox_settings(base).smtp_ca_file) == ("", "")
    shared = mailbox_settings({**base, "ca_file": "/etc/corridor/ca.pem"})
    assert (shared.ca_file, shared.smtp_ca_file) == ("/etc/corridor/ca.pem", "/etc/corridor/ca.pem")
    own = mailbox_settings({**base, "ca_file": "/etc/corridor/ca.pem", "smtp_ca_file": "/etc/ssl/certs/ca.pem"})
    assert own.smtp_ca_file == "/etc/ssl/certs/ca.pem"
    with pytest.raises(SettingsError, match=re.escape("[email] mailboxes[0].tls_verify: unknown key")):
        mailbox_settings({**base, "tls_verify": False})  # verification cannot be switched off
