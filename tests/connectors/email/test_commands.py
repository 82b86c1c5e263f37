"""``corridor email sync --once`` and ``corridor email status`` as an operator runs them."""

from __future__ import annotations

import re
from typing import Any

from click.testing import CliRunner, Result
from flask import Flask
from flask.cli import ScriptInfo
from imapclient import IMAPClient

from hub.cli import cli
from tests.connectors.email.conftest import BATCH_SIZE, PASSWORD, USER
from tests.connectors.email.messages import append_all, customer_message
from tests.services import Dovecot


def corridor(app: Flask, *args: str) -> Result:
    return CliRunner().invoke(cli, list(args), obj=ScriptInfo(create_app=lambda: app), catch_exceptions=False)


def test_sync_once_reads_every_folder_with_progress_and_status_shows_the_cursors(
    make_email_app: Any, imap: IMAPClient
) -> None:
    app = make_email_app({"folders": ["INBOX", "Orders"]})
    imap.create_folder("Orders")
    append_all(imap, "INBOX", [customer_message(n) for n in range(BATCH_SIZE + 7)])
    append_all(imap, "Orders", [customer_message(n, message_id=f"order-{n}@example.org") for n in range(3)])
    before = corridor(app, "email", "status")

    result = corridor(app, "email", "sync", "--once")

    assert "support/INBOX (" in before.output
    assert before.output.count("not synced yet") == 2
    assert result.exit_code == 0, result.output
    assert "support/INBOX" in result.output  # the progress bar's label
    assert f"support/INBOX: {BATCH_SIZE + 7} new, 0 already on the timeline, 0 failed" in result.output
    assert "support/Orders: 3 new, 0 already on the timeline, 0 failed" in result.output
    status = corridor(app, "email", "status")
    assert re.search(
        rf"support/INBOX \(support at [\d.:]+\): uidvalidity=\d+ last_uid={BATCH_SIZE + 7} ", status.output
    )
    assert re.search(r"support/Orders \(support at [\d.:]+\): uidvalidity=\d+ last_uid=3 ", status.output)
    again = corridor(app, "email", "sync", "--once")
    assert "support/INBOX: 0 new" in again.output


def test_sync_once_reports_a_folder_it_cannot_read_and_exits_non_zero(
    make_email_app: Any, mail_server: Dovecot
) -> None:
    app = make_email_app({"folders": ["INBOX", "No such folder"]})
    mail_server.append(USER, PASSWORD, "INBOX", customer_message(1))

    result = CliRunner().invoke(cli, ["email", "sync", "--once"], obj=ScriptInfo(create_app=lambda: app))

    assert result.exit_code == 1
    assert "support/INBOX: 1 new" in result.output  # the other folder was still read
    assert "support/No such folder: failed:" in result.output
