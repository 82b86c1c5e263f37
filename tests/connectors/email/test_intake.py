"""IMAP intake against a real Dovecot: every message on the timeline exactly once.

Each test puts mail into the private Dovecot the way a mail server would
deliver it and reads the outcome from the database the hub writes: the
timeline, the journal and the folder cursor.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError
from sqlalchemy import select

from connectors.email.intake import CONNECTOR, event_from_imap
from hub.events import ChannelEvent
from hub.journal import replay
from hub.models import Interaction, JournalEntry, JournalStatus
from hub.runtime import Runtime
from hub.state import load_state
from tests.connectors.email.conftest import BATCH_SIZE, PASSWORD, USER, intake_of, sync
from tests.connectors.email.messages import START, append_all, customer_message
from tests.services import Dovecot
from tests.waiting import wait_until

KEY = "support/INBOX"
SOURCE = "email:support/INBOX"


def timeline_ids(runtime: Runtime) -> list[str]:
    """External ids of the email interactions, in the order they were stored."""
    with runtime.database.read() as session:
        query = select(Interaction.external_id).where(Interaction.channel == "email").order_by(Interaction.id)
        return list(session.scalars(query))


def interaction(runtime: Runtime, external_id: str) -> Interaction:
    with runtime.database.read() as session:
        found = session.scalars(select(Interaction).where(Interaction.external_id == external_id)).one()
        return found


def saved_cursor(runtime: Runtime) -> dict[str, Any] | None:
    with runtime.database.read() as session:
        return load_state(session, CONNECTOR, KEY)


def seen_uids(imap: IMAPClient) -> list[int]:
    imap.select_folder("INBOX", readonly=True)
    return [uid for uid, data in imap.fetch(imap.search("ALL"), ["FLAGS"]).items() if b"\\Seen" in data[b"FLAGS"]]


@contextmanager
def running(loop: Callable[[threading.Event], None]) -> Iterator[threading.Event]:
    """Run a worker loop in a thread, as `corridor worker` does, and stop it afterwards."""
    stop = threading.Event()
    thread = threading.Thread(target=loop, args=(stop,), daemon=True)
    thread.start()
    try:
        yield stop
    finally:
        stop.set()
        thread.join(timeout=10)
        assert not thread.is_alive(), "the intake loop did not stop within 10 s of being asked"


def test_backfill_puts_every_message_on_the_timeline_once_oldest_first(runtime: Runtime, imap: IMAPClient) -> None:
    messages = [customer_message(n) for n in range(320)]
    append_all(imap, "INBOX", messages)
    progress: list[tuple[int, int]] = []

    report = sync(intake_of(runtime), lambda done, total: progress.append((done, total)))

    assert timeline_ids(runtime) == [f"msg-{n}@example.org" for n in range(320)]
    assert (report.total, report.new, report.duplicates, report.failed) == (320, 320, 0, 0)
    assert progress == [(0, 320), *((done, 320) for done in range(BATCH_SIZE, 320, BATCH_SIZE)), (320, 320)]
    imap.select_folder("INBOX", readonly=True)
    uids = imap.search("ALL")
    assert saved_cursor(runtime) == {
        "uidvalidity": report.cursor.uidvalidity if report.cursor else None,
        "last_uid": max(uids),
        "highestmodseq": report.cursor.highestmodseq if report.cursor else None,
    }
    assert report.cursor is not None
    assert report.cursor.highestmodseq is not None  # Dovecot offers CONDSTORE
    assert seen_uids(imap) == []  # read with BODY.PEEK[]: nobody's unread mail turns read
    again = sync(intake_of(runtime))
    assert (again.total, again.new) == (0, 0)
    assert len(timeline_ids(runtime)) == 320


def test_mark_seen_flags_what_was_ingested(make_email_app: Any, imap: IMAPClient) -> None:
    runtime = make_email_app({"mark_seen": True}).extensions["corridor"]
    append_all(imap, "INBOX", [customer_message(n) for n in range(3)])

    sync(intake_of(runtime))

    imap.select_folder("INBOX", readonly=True)
    assert sorted(seen_uids(imap)) == sorted(imap.search("ALL"))


def test_since_backfills_only_mail_that_arrived_from_that_day(make_email_app: Any, imap: IMAPClient) -> None:
    cutoff = date.today() - timedelta(days=10)
    runtime = make_email_app({"since": cutoff.isoformat()}).extensions["corridor"]
    old = datetime.combine(cutoff - timedelta(days=30), datetime.min.time(), UTC)
    imap.multiappend(
        "INBOX",
        [
            {"msg": customer_message(1, date=old), "date": old},
            {"msg": customer_message(2), "date": datetime.now(UTC) - timedelta(days=2)},
        ],
    )

    report = sync(intake_of(runtime))
    imap.append("INBOX", customer_message(3))
    later = sync(intake_of(runtime))

    assert timeline_ids(runtime) == ["msg-2@example.org", "msg-3@example.org"]
    assert (report.new, later.new) == (1, 1)


def test_idle_delivers_a_new_message_to_the_timeline_within_two_seconds(
    runtime: Runtime, imap: IMAPClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="connectors.email.intake")
    with running(runtime.registry.workers["email intake"]):
        # Deliver once the server has confirmed the IDLE: what it announces
        # from then on is what this test is about (mail delivered before is
        # found by the catch-up, which the other tests cover).
        assert wait_until(lambda: any(r.getMessage() == f"{KEY}: idling" for r in caplog.records), 10)
        appended = time.monotonic()
        imap.append("INBOX", customer_message(1))
        arrived = wait_until(lambda: timeline_ids(runtime) == ["msg-1@example.org"], 2)
        elapsed = time.monotonic() - appended

    assert arrived, f"not on the timeline {elapsed:.2f} s after it was delivered"


def test_without_idle_the_folder_is_polled(runtime: Runtime, imap: IMAPClient) -> None:
    intake = intake_of(runtime, use_idle=False, poll_interval=0.2)
    with running(intake.run):
        assert wait_until(lambda: saved_cursor(runtime) is not None, 10)
        imap.append("INBOX", customer_message(1))
        assert wait_until(lambda: timeline_ids(runtime) == ["msg-1@example.org"], 5)


@pytest.mark.parametrize("parse_processes", [0, 2], ids=["in-process", "parser processes"])
def test_server_stopped_mid_backfill_then_restarted_ends_with_every_message_once(
    runtime: Runtime, mail_server: Dovecot, imap: IMAPClient, parse_processes: int
) -> None:
    append_all(imap, "INBOX", [customer_message(n) for n in range(200)])
    imap.logout()
    validity = mail_server.uidvalidity(USER, PASSWORD, "INBOX")

    def stop_after_first_batch(done: int, _total: int) -> None:
        if done == BATCH_SIZE:
            mail_server.stop()

    with pytest.raises((IMAPClientError, OSError)):
        sync(intake_of(runtime, parse_processes=parse_processes), stop_after_first_batch)
    # The batch that committed is on the timeline, with its cursor; nothing else
    # (with parser processes, the next batch was downloaded and parsed, but the
    # pass ended before its turn to commit).
    assert timeline_ids(runtime) == [f"msg-{n}@example.org" for n in range(BATCH_SIZE)]
    # HIGHESTMODSEQ is recorded only by a completed pass (else the next pass
    # could take the folder for unchanged and skip the rest).
    assert saved_cursor(runtime) == {"uidvalidity": validity, "last_uid": BATCH_SIZE, "highestmodseq": None}

    mail_server.start()
    report = sync(intake_of(runtime, parse_processes=parse_processes))

    assert (report.total, report.new, report.duplicates) == (200 - BATCH_SIZE, 200 - BATCH_SIZE, 0)
    ids = timeline_ids(runtime)
    assert Counter(ids) == Counter(f"msg-{n}@example.org" for n in range(200))


def test_the_worker_reconnects_after_the_server_restarts(runtime: Runtime, mail_server: Dovecot) -> None:
    # A short IDLE: whether the message is announced or found by the catch-up
    # of the next re-issue, it must arrive once the loop is connected again.
    intake = intake_of(runtime, backoff_base=0.05, backoff_max=0.2, idle_timeout=1)
    with running(intake.run):
        assert wait_until(lambda: saved_cursor(runtime) is not None, 10)
        mail_server.stop()
        time.sleep(0.3)  # the loop notices and backs off at least once
        mail_server.start()
        mail_server.append(USER, PASSWORD, "INBOX", customer_message(1))
        assert wait_until(lambda: timeline_ids(runtime) == ["msg-1@example.org"], 10)


def test_changed_uidvalidity_resyncs_without_duplicates(
    runtime: Runtime, mail_server: Dovecot, imap: IMAPClient
) -> None:
    append_all(imap, "INBOX", [customer_message(n) for n in range(20)])
    imap.logout()
    first = sync(intake_of(runtime))
    assert first.cursor is not None

    new_validity = mail_server.reset_uidvalidity(USER, PASSWORD, "INBOX")
    mail_server.append(USER, PASSWORD, "INBOX", customer_message(20))
    report = sync(intake_of(runtime))

    assert report.resynced
    assert (report.total, report.new, report.duplicates) == (21, 1, 20)
    assert Counter(timeline_ids(runtime)) == Counter(f"msg-{n}@example.org" for n in range(21))
    cursor = saved_cursor(runtime)
    assert cursor is not None
    assert (cursor["uidvalidity"], cursor["last_uid"]) == (new_validity, 21)
    assert new_validity != first.cursor.uidvalidity


def test_a_broken_charset_is_read_and_the_messages_after_it_arrive(runtime: Runtime, imap: IMAPClient) -> None:
    broken = (
        "From: Björn Åström <bjorn@example.se>\r\n"
        "To: support@corridor.example\r\n"
        "Subject: =?x-mac-klingon?Q?Fr=E5ga?=\r\n"
        f"Date: {START:%a, %d %b %Y %H:%M:%S +0000}\r\n"
        "Message-ID: <broken-charset@example.se>\r\n"
        "Content-Type: text/plain; charset=x-mac-klingon\r\n"
        "Content-Transfer-Encoding: 8bit\r\n\r\n"
        "Jag har fortfarande inte fått mitt paket.\r\n"
    ).encode("latin-1")
    append_all(imap, "INBOX", [customer_message(1), broken, customer_message(2)])

    report = sync(intake_of(runtime))

    assert timeline_ids(runtime) == ["msg-1@example.org", "broken-charset@example.se", "msg-2@example.org"]
    assert report.failed == 0
    stored = interaction(runtime, "broken-charset@example.se")
    assert stored.text == "Jag har fortfarande inte fått mitt paket."
    assert stored.subject == "Fråga"
    assert any("x-mac-klingon" in defect for defect in stored.defects)


def test_a_message_that_is_not_an_email_is_journaled_as_failed_and_the_rest_arrive(
    runtime: Runtime, imap: IMAPClient
) -> None:
    garbage = b"\x89PNG\r\n\x1a\r\n\x01\x02 this is an image someone saved into the folder"
    append_all(imap, "INBOX", [customer_message(1), garbage, customer_message(2)])

    report = sync(intake_of(runtime))

    assert timeline_ids(runtime) == ["msg-1@example.org", "msg-2@example.org"]
    assert (report.new, report.failed) == (2, 1)
    with runtime.database.read() as session:
        (failed,) = session.scalars(select(JournalEntry).where(JournalEntry.status == JournalStatus.FAILED)).all()
    assert failed.source == SOURCE
    assert failed.payload == garbage  # kept whole, for an admin and for a replay
    assert failed.error is not None
    assert failed.error.startswith("ValueError: not an email message")
    assert failed.context["mailbox_address"] == "support@corridor.example"
    # A replay (after a parser fix, say) parses it again; it is still no email.
    (outcome,) = replay(runtime.database, runtime.registry, [failed.id])
    assert outcome.error is not None
    assert "not an email message" in outcome.error


def test_journaled_messages_replay_to_the_same_interaction(runtime: Runtime, imap: IMAPClient) -> None:
    no_date = (
        b"From: jane.doe@example.org\r\nTo: support@corridor.example\r\nSubject: no date\r\n"
        b"Message-ID: <no-date@example.org>\r\n\r\nMy mail client forgot the Date.\r\n"
    )
    received = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=5)
    imap.multiappend(
        "INBOX",
        [
            {"msg": customer_message(1), "date": received - timedelta(hours=2)},
            {"msg": customer_message(2), "date": received - timedelta(hours=1)},
            {"msg": no_date, "date": received},
            {"msg": customer_message(3), "date": received + timedelta(hours=1)},
        ],
    )

    sync(intake_of(runtime))

    with runtime.database.read() as session:
        entries = {e.external_id: e for e in session.scalars(select(JournalEntry).where(JournalEntry.source == SOURCE))}
        stored = {i.external_id: i for i in session.scalars(select(Interaction))}
    # Every message is journaled with its own INTERNALDATE (one batch, one
    # ingest_many call, a context per message).
    assert {
        external_id: datetime.fromisoformat(entry.context["received_at"]) for external_id, entry in entries.items()
    } == {
        "msg-1@example.org": received - timedelta(hours=2),
        "msg-2@example.org": received - timedelta(hours=1),
        "no-date@example.org": received,
        "msg-3@example.org": received + timedelta(hours=1),
    }
    assert stored["no-date@example.org"].occurred_at == received
    # Whatever the context, parsing the journaled bytes again gives the same interaction.
    parser = runtime.registry.parser_for(SOURCE)
    assert parser is not None
    for external_id, entry in entries.items():
        (again,) = parser(entry.payload, dict(entry.context))
        assert isinstance(again, ChannelEvent)
        assert (again.external_id, again.occurred_at) == (external_id, stored[external_id].occurred_at)


def test_gmail_message_without_message_id_is_one_message_in_every_label_folder() -> None:
    raw = b"From: jane.doe@example.org\r\nSubject: hi\r\n\r\nNo Message-ID here.\r\n"
    context = {"received_at": "2024-03-22T12:00:00+00:00", "mailbox_address": "support@corridor.example"}

    inbox = event_from_imap(raw, {**context, "gmail_msgid": 1278455344230334865})
    # Gmail's All Mail copy of the same message, served with different bytes
    # (another header order, say), has the same X-GM-MSGID.
    all_mail = event_from_imap(raw.replace(b"Subject: hi\r\n", b""), {**context, "gmail_msgid": 1278455344230334865})
    elsewhere = event_from_imap(raw, context)

    assert inbox.external_id == all_mail.external_id == "gmail-11bdfc5cae0c8191@corridor.invalid"
    assert inbox.metadata["gmail_msgid"] == "1278455344230334865"
    assert inbox.metadata["message_id"] == inbox.external_id
    assert elsewhere.external_id.startswith("sha256:")  # not Gmail: the content hash


def test_gmail_message_with_a_message_id_keeps_it() -> None:
    raw = customer_message(7)
    context = {"received_at": "2024-03-22T12:00:00+00:00", "mailbox_address": "support@corridor.example"}

    event = event_from_imap(raw, {**context, "gmail_msgid": 42})

    assert event.external_id == "msg-7@example.org"
    assert event.metadata["gmail_msgid"] == "42"
