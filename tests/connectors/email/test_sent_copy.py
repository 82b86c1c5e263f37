"""Copies of sent replies in the mailbox's Sent folder, filed in the real Dovecot.

The Dovecot of this module marks "Sent Items" as \\Sent (RFC 6154), a name
chosen so that only SPECIAL-USE, not a guess at "Sent", can find it. The
customer writes, the agent answers through the API, aiosmtpd receives the
reply, and the copy is read back from Dovecot byte for byte.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from imapclient import IMAPClient
from sqlalchemy import func, select
from werkzeug.test import TestResponse

from connectors.email import sent as sent_module
from connectors.email.intake import CONNECTOR, cursor_key
from connectors.email.sender import SmtpSender
from connectors.email.sent import CLAIM_SECONDS, MAX_ATTEMPTS, STATE_CONNECTOR, SentCopies
from connectors.email.settings import MailboxSettings
from hub.events import Channel
from hub.models import Interaction, Role
from hub.replies import due_deliveries
from hub.runtime import Runtime
from hub.state import all_state, load_state, replace_state
from tests.conftest import make_agent
from tests.connectors.email.conftest import PASSWORD, USER, intake_of, mailbox_of, sync
from tests.connectors.email.messages import customer_message
from tests.connectors.email.test_sender import (
    CUSTOMER,
    FIRST_ID,
    conversation_of,
    customer_writes,
    interactions,
    send_reply,
    the_reply,
)
from tests.services import Dovecot, SmtpServer
from tests.waiting import wait_until

SENT = "Sent Items"


@pytest.fixture
def mail_server(start_dovecot: Callable[..., Dovecot]) -> Dovecot:
    """In this module the support mailbox has a folder the server marks \\Sent."""
    server = start_dovecot(special_use={SENT: "\\Sent"})
    server.add_user(USER, PASSWORD)
    return server


def folder_contents(server: Dovecot, folder: str = SENT) -> list[tuple[bytes, tuple[bytes, ...]]]:
    """Each message of ``folder`` as the server stores it: its bytes and its flags."""
    imap = server.client(USER, PASSWORD)
    try:
        imap.select_folder(folder, readonly=True)
        uids = imap.search("ALL")
        fetched = imap.fetch(uids, ["BODY.PEEK[]", "FLAGS"]) if uids else {}
        return [(data[b"BODY[]"], tuple(data[b"FLAGS"])) for _, data in sorted(fetched.items())]
    finally:
        imap.logout()


def agent_of(runtime: Runtime) -> dict[str, str]:
    return {"Authorization": f"Bearer {make_agent(runtime, Role.AGENT)}"}


def first_mail(runtime: Runtime, imap: IMAPClient) -> None:
    customer_writes(
        runtime, imap, customer_message(1, sender=CUSTOMER, message_id=FIRST_ID, subject="Order 4711 arrived damaged")
    )


def reply_while_the_server_is_down(
    runtime: Runtime, client: FlaskClient, auth: dict[str, str], mail_server: Dovecot, imap: IMAPClient
) -> tuple[int, TestResponse]:
    """The customer writes; the agent answers while the IMAP server is down, so the copy waits for a retry.

    Returns the conversation and the answer to the reply.
    """
    first_mail(runtime, imap)
    conversation = conversation_of(client, auth)
    imap.logout()
    mail_server.stop()
    return conversation, send_reply(client, auth, conversation)


@contextmanager
def running(loop: Callable[[threading.Event], None]) -> Iterator[None]:
    stop = threading.Event()
    thread = threading.Thread(target=loop, args=(stop,), daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=10)
        assert not thread.is_alive(), "the intake loop did not stop within 10 s of being asked"


def test_the_reply_is_filed_in_the_servers_sent_folder_and_the_watched_copy_stays_one_interaction(
    make_email_app: Any,
    mail_server: Dovecot,
    smtp_server: SmtpServer,
    imap: IMAPClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    app: Flask = make_email_app({"folders": ["INBOX", SENT]})
    runtime: Runtime = app.extensions["corridor"]
    client, auth = app.test_client(), agent_of(runtime)
    first_mail(runtime, imap)
    conversation = conversation_of(client, auth)

    # The worker watches both folders (IDLE) while the agent answers, as in
    # production: it reads the copy back within a fraction of a second.
    caplog.set_level(logging.DEBUG, logger="connectors.email.intake")
    with running(runtime.registry.workers["email intake"]):
        # Answer once the Sent folder is being watched: a message appended
        # while IDLE is being entered waits for the next re-issue (see
        # FolderIntake._idle), which is not what this test is about.
        assert wait_until(lambda: f"support/{SENT}: idling" in caplog.messages, 10)
        assert send_reply(client, auth, conversation).status_code == 201
        (sent,) = smtp_server.wait_for(1)
        assert wait_until(lambda: _cursor_last_uid(runtime, SENT) == 1, 10), "the copy was never read back"

    ((copy, flags),) = folder_contents(mail_server)
    assert copy == sent.data  # exactly what the customer received
    assert b"\\Seen" in flags  # nobody's unread mail
    reply = the_reply(client, auth, conversation)
    assert reply["status"] == "sent"
    assert reply["metadata"]["sent_copy"] == {"status": "saved", "folder": SENT}
    # Read back from the watched folder, the copy is the reply itself, not a second message.
    assert [i["direction"] for i in interactions(client, auth, conversation)] == ["inbound", "outbound"]
    with runtime.database.read() as session:
        assert session.scalar(select(func.count()).select_from(Interaction)) == 2
    again = sync(intake_of(runtime, SENT))
    assert (again.new, again.duplicates) == (0, 0)


class WatchedCopies(SentCopies):
    """The real :class:`SentCopies`, noting what the timeline says about a reply when its copy is filed."""

    def __init__(self, runtime: Runtime) -> None:
        super().__init__(runtime.database, [mailbox_of(runtime)])
        self.runtime = runtime
        self.status_at_filing: list[str | None] = []

    def file(self, mailbox: MailboxSettings, message_id: str, raw: bytes, sent_at: datetime) -> None:
        with self.runtime.database.read() as session:
            status = session.scalar(select(Interaction.status).where(Interaction.external_id == message_id))
        self.status_at_filing.append(status)
        super().file(mailbox, message_id, raw, sent_at)


def test_the_copy_is_filed_only_once_the_reply_is_recorded_under_its_message_id(
    runtime: Runtime, client: FlaskClient, auth: dict[str, str], mail_server: Dovecot, imap: IMAPClient
) -> None:
    # A copy filed any earlier could be read back from a watched Sent folder
    # before the hub knows the reply by its Message-ID, and become a second
    # interaction (and then block the reply's own rename).
    copies = WatchedCopies(runtime)
    runtime.registry.senders[Channel.EMAIL] = SmtpSender([mailbox_of(runtime)], sent_copies=copies)
    first_mail(runtime, imap)

    assert send_reply(client, auth, conversation_of(client, auth)).status_code == 201

    assert copies.status_at_filing == ["sent"]
    assert len(folder_contents(mail_server)) == 1


def test_the_configured_sent_folder_wins_over_the_servers(
    make_email_app: Any, mail_server: Dovecot, smtp_server: SmtpServer, imap: IMAPClient
) -> None:
    imap.create_folder("Answered by Corridor")
    app: Flask = make_email_app({"sent_folder": "Answered by Corridor"})
    runtime: Runtime = app.extensions["corridor"]
    client, auth = app.test_client(), agent_of(runtime)
    first_mail(runtime, imap)

    assert send_reply(client, auth, conversation_of(client, auth)).status_code == 201

    (sent,) = smtp_server.wait_for(1)
    assert [data for data, _ in folder_contents(mail_server, "Answered by Corridor")] == [sent.data]
    assert folder_contents(mail_server) == []


def test_without_a_sent_folder_copies_are_skipped_and_that_is_logged_once(
    make_email_app: Any,
    start_dovecot: Callable[..., Dovecot],
    smtp_server: SmtpServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    plain = start_dovecot()  # SPECIAL-USE spoken, but no folder marked \Sent
    plain.add_user(USER, PASSWORD)
    app: Flask = make_email_app({"port": plain.port})
    runtime: Runtime = app.extensions["corridor"]
    client, auth = app.test_client(), agent_of(runtime)
    imap = plain.client(USER, PASSWORD)
    try:
        first_mail(runtime, imap)
        caplog.set_level(logging.INFO, logger="connectors.email.sent")
        conversation = conversation_of(client, auth)

        for _ in range(2):
            assert send_reply(client, auth, conversation).status_code == 201

        smtp_server.wait_for(2)
        assert [name for _, _, name in imap.list_folders()] == ["INBOX"]  # nothing created by guesswork
    finally:
        imap.logout()
    notices = [r.getMessage() for r in caplog.records if r.name == "connectors.email.sent"]
    assert notices == [
        "mailbox 'support': replies are not copied to a Sent folder: the server marks no folder \\Sent "
        "(RFC 6154 SPECIAL-USE); name one with sent_folder"
    ]
    for reply in (i for i in interactions(client, auth, conversation) if i["direction"] == "outbound"):
        assert reply["metadata"]["sent_copy"]["status"] == "skipped"


def test_copy_to_sent_off_files_nothing(
    make_email_app: Any, mail_server: Dovecot, smtp_server: SmtpServer, imap: IMAPClient
) -> None:
    app: Flask = make_email_app({"copy_to_sent": False})
    runtime: Runtime = app.extensions["corridor"]
    client, auth = app.test_client(), agent_of(runtime)
    first_mail(runtime, imap)
    conversation = conversation_of(client, auth)

    assert send_reply(client, auth, conversation).status_code == 201

    smtp_server.wait_for(1)
    assert folder_contents(mail_server) == []
    assert "sent_copy" not in the_reply(client, auth, conversation)["metadata"]


@pytest.mark.parametrize("first_append_arrived", [False, True], ids=["server-down", "answer-lost"])
def test_a_copy_that_cannot_be_filed_leaves_the_reply_sent_and_a_retry_files_it_once(
    runtime: Runtime,
    client: FlaskClient,
    auth: dict[str, str],
    mail_server: Dovecot,
    smtp_server: SmtpServer,
    imap: IMAPClient,
    caplog: pytest.LogCaptureFixture,
    first_append_arrived: bool,
) -> None:
    conversation, response = reply_while_the_server_is_down(runtime, client, auth, mail_server, imap)

    # The mail went out: the reply is sent, whatever became of the copy.
    assert (response.status_code, response.json["status"]) == (201, "sent")
    (sent,) = smtp_server.wait_for(1)
    reply = the_reply(client, auth, conversation)
    assert reply["status"] == "sent"
    note = reply["metadata"]["sent_copy"]
    assert (note["status"], note["attempts"]) == ("failed", 1)
    assert note["error"].startswith("ConnectionRefusedError")
    (warning,) = [r.getMessage() for r in caplog.records if r.name == "connectors.email.sent"]
    assert warning.startswith(
        f"mailbox 'support': the copy of reply {reply['external_id']} could not be filed in the Sent folder "
        "(attempt 1, will retry): ConnectionRefusedError"
    )

    mail_server.start()
    if first_append_arrived:
        # The first APPEND got through but its answer was lost on the way back.
        mail_server.append(USER, PASSWORD, SENT, sent.data)
    copies = SentCopies(runtime.database, [mailbox_of(runtime)])
    assert copies.retry_due() == 0  # backing off
    assert copies.retry_due(datetime.now(UTC) + timedelta(minutes=2)) == 1

    assert [data for data, _ in folder_contents(mail_server)] == [sent.data]
    assert the_reply(client, auth, conversation)["metadata"]["sent_copy"] == {"status": "saved", "folder": SENT}
    assert copies.retry_due(datetime.now(UTC) + timedelta(days=1)) == 0  # nothing left waiting
    # Never sent again, never failed.
    assert len(smtp_server.messages) == 1
    assert due_deliveries(runtime.database, now=datetime.now(UTC) + timedelta(days=1)) == []


def test_two_workers_finding_the_same_copy_due_file_it_once(
    runtime: Runtime,
    client: FlaskClient,
    auth: dict[str, str],
    mail_server: Dovecot,
    smtp_server: SmtpServer,
    imap: IMAPClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two worker processes retry copies; the one that claims a copy files it, the other leaves it."""
    conversation, _ = reply_while_the_server_is_down(runtime, client, auth, mail_server, imap)
    (sent,) = smtp_server.wait_for(1)
    mail_server.start()

    # The first worker has looked in the Sent folder, found no copy, and is
    # about to APPEND when the second finds the same copy due.
    looked, go_on = threading.Event(), threading.Event()
    holds = sent_module._holds

    def holds_then_pause(imap_client: IMAPClient, folder: str, message_id: str) -> bool:
        found = holds(imap_client, folder, message_id)
        if threading.current_thread().name == "first worker":
            looked.set()
            go_on.wait(10)
        return found

    monkeypatch.setattr(sent_module, "_holds", holds_then_pause)
    due = datetime.now(UTC) + timedelta(minutes=2)
    first, second = (SentCopies(runtime.database, [mailbox_of(runtime)]) for _ in range(2))
    tried_by_first: list[int] = []
    worker = threading.Thread(target=lambda: tried_by_first.append(first.retry_due(due)), name="first worker")
    worker.start()
    try:
        assert looked.wait(10), "the first worker never looked in the Sent folder"
        assert second.retry_due(due) == 0
    finally:
        go_on.set()
        worker.join(10)

    assert tried_by_first == [1]
    assert [data for data, _ in folder_contents(mail_server)] == [sent.data]
    assert the_reply(client, auth, conversation)["metadata"]["sent_copy"] == {"status": "saved", "folder": SENT}
    with runtime.database.read() as session:
        assert all_state(session, STATE_CONNECTOR) == {}


def test_a_claimed_copy_whose_worker_died_is_tried_again_once_the_claim_runs_out(
    runtime: Runtime,
    client: FlaskClient,
    auth: dict[str, str],
    mail_server: Dovecot,
    smtp_server: SmtpServer,
    imap: IMAPClient,
) -> None:
    reply_while_the_server_is_down(runtime, client, auth, mail_server, imap)
    (sent,) = smtp_server.wait_for(1)
    mail_server.start()
    now = datetime.now(UTC) + timedelta(minutes=2)
    with runtime.database.write() as session:
        ((message_id, waiting),) = all_state(session, STATE_CONNECTOR).items()
        # What a worker that died right after claiming the copy leaves behind.
        claimed = {**waiting, "next_attempt_at": (now + timedelta(seconds=CLAIM_SECONDS)).isoformat()}
        assert replace_state(session, STATE_CONNECTOR, message_id, waiting, claimed)
        assert not replace_state(session, STATE_CONNECTOR, message_id, waiting, claimed)  # taken already

    copies = SentCopies(runtime.database, [mailbox_of(runtime)])
    assert copies.retry_due(now) == 0
    assert copies.retry_due(now + timedelta(seconds=CLAIM_SECONDS + 1)) == 1
    assert [data for data, _ in folder_contents(mail_server)] == [sent.data]


def test_a_copy_that_keeps_failing_is_given_up_with_a_note_on_the_reply(
    runtime: Runtime,
    client: FlaskClient,
    auth: dict[str, str],
    mail_server: Dovecot,
    smtp_server: SmtpServer,
    imap: IMAPClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    conversation, _ = reply_while_the_server_is_down(runtime, client, auth, mail_server, imap)
    copies = SentCopies(runtime.database, [mailbox_of(runtime)])

    now = datetime.now(UTC)
    for attempt in range(2, MAX_ATTEMPTS + 1):
        now += timedelta(hours=1)
        assert copies.retry_due(now) == 1, f"attempt {attempt} was not due"

    note = the_reply(client, auth, conversation)["metadata"]["sent_copy"]
    assert (note["status"], note["attempts"]) == ("failed", MAX_ATTEMPTS)
    assert "next_attempt_at" not in note
    (last,) = [r for r in caplog.records if r.name == "connectors.email.sent" and r.levelno == logging.ERROR]
    assert "giving up: the reply was sent, only the copy is missing" in last.getMessage()
    with runtime.database.read() as session:
        assert all_state(session, STATE_CONNECTOR) == {}
    assert the_reply(client, auth, conversation)["status"] == "sent"
    assert len(smtp_server.messages) == 1


def _cursor_last_uid(runtime: Runtime, folder: str) -> int | None:
    with runtime.database.read() as session:
        cursor = load_state(session, CONNECTOR, cursor_key(mailbox_of(runtime), folder))
    return int(cursor["last_uid"]) if cursor else None
