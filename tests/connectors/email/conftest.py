"""Fixtures for the email tests that run against the real servers.

``app`` is overridden here: in this directory the suite's ``runtime``,
``client`` and ``auth`` fixtures are those of a Corridor with the email
connector enabled, reading a private Dovecot and sending through a private
aiosmtpd, on the per-test database (SQLite and PostgreSQL lanes). Tests that
take neither (the parser's, the settings') start no server.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from imapclient import IMAPClient

from connectors.email.intake import FolderIntake, Progress, SyncReport, disconnect, folder_intakes
from connectors.email.settings import EmailSettings, MailboxSettings
from hub.runtime import Runtime
from tests.conftest import AppFactory
from tests.connectors.email.messages import MAILBOX_ADDRESS
from tests.services import Dovecot, SmtpServer

USER = "support"
PASSWORD = "correct horse battery staple"
#: Small enough that a few hundred messages make several batches.
BATCH_SIZE = 50


@pytest.fixture
def password_file(tmp_path: Path) -> Path:
    path = tmp_path / "imap-password"
    path.write_text(PASSWORD + "\n")
    path.chmod(0o600)
    return path


@pytest.fixture
def mail_server(dovecot: Dovecot) -> Dovecot:
    """The Dovecot with the support mailbox's account."""
    dovecot.add_user(USER, PASSWORD)
    return dovecot


def mailbox_table(dovecot: Dovecot, smtp: SmtpServer | None, password_file: Path, **extra: Any) -> dict[str, Any]:
    """One ``[email] mailboxes`` entry for the test servers."""
    table: dict[str, Any] = {
        "name": "support",
        "host": dovecot.host,
        "port": dovecot.port,
        "tls": "none",
        "user": USER,
        "password_file": str(password_file),
        "address": MAILBOX_ADDRESS,
    }
    if smtp is not None:
        table.update(smtp_host=smtp.host, smtp_port=smtp.port, smtp_tls="none")
    table.update(extra)
    return table


@pytest.fixture
def email_sections(
    mail_server: Dovecot, smtp_server: SmtpServer, password_file: Path
) -> Callable[..., dict[str, dict[str, Any]]]:
    """Settings of a Corridor reading the test Dovecot and sending through the test SMTP server."""

    def sections(mailbox: dict[str, Any] | None = None, **email: Any) -> dict[str, dict[str, Any]]:
        values: dict[str, Any] = {
            "mailboxes": [mailbox_table(mail_server, smtp_server, password_file, **(mailbox or {}))],
            "batch_size": BATCH_SIZE,
            "idle_timeout": 60,
            "poll_interval": 1,
        }
        values.update(email)
        return {"app": {"connectors": ["email"]}, "email": values}

    return sections


@pytest.fixture
def make_email_app(make_app: AppFactory, email_sections: Callable[..., dict[str, dict[str, Any]]]) -> Any:
    def factory(mailbox: dict[str, Any] | None = None, **sections: Any) -> Flask:
        settings = email_sections(mailbox, **sections.pop("email", {}))
        settings.update(sections)
        return make_app(**settings)

    return factory


@pytest.fixture
def app(make_email_app: Any) -> Flask:
    app: Flask = make_email_app()
    return app


@pytest.fixture
def imap(mail_server: Dovecot) -> Iterator[IMAPClient]:
    """A second client on the support mailbox: what the customer's mail does to it."""
    client = mail_server.client(USER, PASSWORD)
    try:
        yield client
    finally:
        # Also when the test logged it out already or stopped the server under it.
        disconnect(client)


def mailbox_of(runtime: Runtime) -> MailboxSettings:
    (mailbox,) = runtime.settings.section("email", EmailSettings).mailbox_settings()
    return mailbox


def intake_of(runtime: Runtime, folder: str = "INBOX", **options: Any) -> FolderIntake:
    """The intake of one folder of the configured mailbox, as the worker builds it (parser processes too)."""
    settings = runtime.settings.section("email", EmailSettings)
    (intake,) = folder_intakes(runtime.database, settings, [replace(mailbox_of(runtime), folders=(folder,))], **options)
    return intake


def sync(intake: FolderIntake, progress: Progress | None = None) -> SyncReport:
    """One catch-up pass on a connection of its own, as `corridor email sync --once` runs it."""
    client = intake.connect()
    try:
        return intake.catch_up(client, progress)
    finally:
        disconnect(client)
