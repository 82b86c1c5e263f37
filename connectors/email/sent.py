"""Copies of agents' replies in the mailbox's Sent folder.

SMTP only delivers; a mail client files what it sends in the Sent folder
itself. Corridor does the same, so that whoever reads the support mailbox in
a mail client sees the answers beside the questions: once a reply has left
over SMTP and the hub has recorded it, the exact bytes that were sent are
APPENDed to the Sent folder, flagged \\Seen and dated when they were sent.

Which folder: the mailbox's ``sent_folder``; else the one the server marks
\\Sent (RFC 6154 SPECIAL-USE), discovered once per mailbox and process; else
none, and copies are skipped (logged once per mailbox, noted on each reply).

A copy that cannot be filed never touches the reply: the mail went out, and
the reply stays sent. The failure is logged, noted in the reply's metadata
(``sent_copy``) and kept in connector state (the bytes with it) for the
worker, which tries again with backoff and gives up with a note after
:data:`MAX_ATTEMPTS`. A retry first looks for the Message-ID in the folder,
so an APPEND whose answer was lost is not filed twice; and a worker claims a
copy before it tries, so two worker processes never file the same one.

When the Sent folder is also watched, the intake reads the copy back; its
Message-ID is the reply's external id, so the hub's dedupe keeps the reply
once. That is why the copy is filed only after the hub has recorded the reply
under that id (``SendResult.after_recorded``), never before.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from imapclient import IMAPClient
from sqlalchemy.orm import Session

from connectors.email.connection import open_imap
from connectors.email.intake import disconnect
from connectors.email.settings import MailboxSettings
from hub.contract import (
    Channel,
    Database,
    InteractionUpdate,
    JSONValue,
    all_state,
    delete_state,
    ingest,
    replace_state,
    save_state,
)

log = logging.getLogger(__name__)

#: ``hub.state`` connector name of copies waiting for another attempt; keys are Message-IDs.
STATE_CONNECTOR = "email-sent-copies"
#: Attempts, the first included, before a copy is given up.
MAX_ATTEMPTS = 10
#: Seconds the worker waits between looks for copies that are due.
RETRY_CHECK_INTERVAL = 30.0
#: Seconds an IMAP operation may block.
IMAP_TIMEOUT = 30.0
#: Seconds a worker has for one attempt before another may take the copy:
#: well beyond the connection and APPEND it makes (each bounded by IMAP_TIMEOUT).
CLAIM_SECONDS = 10 * IMAP_TIMEOUT
#: The RFC 6154 attribute of the folder sent mail goes to.
SENT_ATTRIBUTE = b"\\Sent"

_SEEN = b"\\Seen"
#: Journal source of the notes recorded on replies.
_SOURCE = "email.sent_copy"


def retry_delay(attempts: int) -> timedelta:
    """1, 2, 4 ... minutes after the ``attempts``-th failure, at most an hour."""
    return min(timedelta(minutes=2 ** max(attempts - 1, 0)), timedelta(hours=1))


def sent_folder_of(client: IMAPClient) -> str | None:
    """The folder the server marks \\Sent, or None (also when it does not speak SPECIAL-USE).

    No guessing by name: "Sent" may be a folder people use for something
    else, and a copy in the wrong place is worse than none.
    """
    if not client.has_capability("SPECIAL-USE"):
        return None
    for flags, _delimiter, name in client.list_folders():
        if SENT_ATTRIBUTE in flags:
            return str(name)
    return None


class SentCopies:
    """Files sent replies in their mailbox's Sent folder, and retries those that failed."""

    def __init__(
        self, database: Database, mailboxes: Sequence[MailboxSettings], *, timeout: float = IMAP_TIMEOUT
    ) -> None:
        self._database = database
        self._mailboxes = {mailbox.name: mailbox for mailbox in mailboxes}
        self._timeout = timeout
        # Mailbox name -> the discovered Sent folder, or None when the server marks none.
        self._discovered: dict[str, str | None] = {}
        self._lock = threading.Lock()

    def file(self, mailbox: MailboxSettings, message_id: str, raw: bytes, sent_at: datetime) -> None:
        """File the copy of a reply that was just sent and recorded under ``message_id``."""
        self._attempt(mailbox, message_id, raw, sent_at, attempts=1)

    def retry_due(self, now: datetime | None = None) -> int:
        """Try again every copy whose next attempt is due; returns how many were tried."""
        now = now or datetime.now(UTC)
        with self._database.read() as session:
            waiting = all_state(session, STATE_CONNECTOR)
        due = sorted(
            (datetime.fromisoformat(value["next_attempt_at"]), message_id, value)
            for message_id, value in waiting.items()
        )
        tried = 0
        for next_attempt_at, message_id, value in due:
            if next_attempt_at > now:
                break
            if not self._claim(message_id, value, now):
                continue  # another worker process took it (or just filed it)
            tried += 1
            raw = base64.b64decode(value["raw"])
            attempts = int(value["attempts"]) + 1
            sent_at = datetime.fromisoformat(value["sent_at"])
            mailbox = self._mailboxes.get(value["mailbox"])
            if mailbox is None:
                self._failed(
                    value["mailbox"], message_id, raw, sent_at, MAX_ATTEMPTS,
                    f"mailbox {value['mailbox']!r} is no longer configured",
                )  # fmt: skip
                continue
            self._attempt(mailbox, message_id, raw, sent_at, attempts=attempts)
        return tried

    def worker(self, stop: threading.Event) -> None:
        """The ``email sent copies`` worker loop: retries due copies until ``stop`` is set."""
        while not stop.is_set():
            try:
                self.retry_due()
            except Exception:  # the database may be away for a moment; the copies wait in it
                log.exception("retrying Sent folder copies failed; trying again in %.0f s", RETRY_CHECK_INTERVAL)
            stop.wait(RETRY_CHECK_INTERVAL)

    def _claim(self, message_id: str, waiting: dict[str, Any], now: datetime) -> bool:
        """Take the copy for this attempt, unless another worker process has since taken it.

        Two workers may find the same copy due. Each would look for it in the
        Sent folder, both find none, and both file it. Only the one that moves
        the copy's next attempt out by :data:`CLAIM_SECONDS` tries; a worker
        that dies meanwhile leaves the copy to be tried again once that passes.
        """
        claimed = {**waiting, "next_attempt_at": (now + timedelta(seconds=CLAIM_SECONDS)).isoformat()}
        with self._database.write() as session:
            return replace_state(session, STATE_CONNECTOR, message_id, waiting, claimed)

    # -- one attempt ----------------------------------------------------------------

    def _attempt(self, mailbox: MailboxSettings, message_id: str, raw: bytes, sent_at: datetime, attempts: int) -> None:
        try:
            folder = self._file(mailbox, message_id, raw, sent_at, look_first=attempts > 1)
        except Exception as exc:  # the server, the network, TLS, a missing folder: noted and retried
            with self._lock:
                # The \Sent folder may have been renamed or removed: look again next time.
                self._discovered.pop(mailbox.name, None)
            self._failed(mailbox.name, message_id, raw, sent_at, attempts, f"{type(exc).__name__}: {exc}")
            return
        note: dict[str, JSONValue]
        if folder is None:
            note = {"status": "skipped", "reason": "the server marks no folder \\Sent; set sent_folder"}
        else:
            note = {"status": "saved", "folder": folder}
            if attempts > 1:
                log.info(
                    "mailbox %r: the copy of reply %s is in %r (attempt %d)", mailbox.name, message_id, folder, attempts
                )
        with self._database.write() as session:
            _note(session, message_id, note, attempts)
            if attempts > 1:
                delete_state(session, STATE_CONNECTOR, message_id)

    def _file(
        self, mailbox: MailboxSettings, message_id: str, raw: bytes, sent_at: datetime, *, look_first: bool
    ) -> str | None:
        """APPEND the copy; returns the folder, or None when the mailbox has no Sent folder."""
        folder = mailbox.sent_folder or None
        if folder is None:
            with self._lock:
                if mailbox.name in self._discovered and self._discovered[mailbox.name] is None:
                    return None  # known to have none: no connection just to learn that again
                folder = self._discovered.get(mailbox.name)
        client = open_imap(mailbox, timeout=self._timeout)
        try:
            if folder is None:
                folder = self._discover(mailbox, client)
                if folder is None:
                    return None
            if look_first and _holds(client, folder, message_id):
                return folder
            client.append(folder, raw, flags=[_SEEN], msg_time=sent_at)
            return folder
        finally:
            disconnect(client)

    def _discover(self, mailbox: MailboxSettings, client: IMAPClient) -> str | None:
        found = sent_folder_of(client)
        with self._lock:
            first = mailbox.name not in self._discovered
            self._discovered[mailbox.name] = found
        if first and found is None:
            log.warning(
                "mailbox %r: replies are not copied to a Sent folder: the server marks no folder \\Sent "
                "(RFC 6154 SPECIAL-USE); name one with sent_folder",
                mailbox.name,
            )
        elif first:
            log.info("mailbox %r: replies are copied to %r, the server's \\Sent folder", mailbox.name, found)
        return found

    def _failed(
        self, mailbox_name: str, message_id: str, raw: bytes, sent_at: datetime, attempts: int, error: str
    ) -> None:
        final = attempts >= MAX_ATTEMPTS
        next_attempt_at = datetime.now(UTC) + retry_delay(attempts)
        log.log(
            logging.ERROR if final else logging.WARNING,
            "mailbox %r: the copy of reply %s could not be filed in the Sent folder (attempt %d, %s): %s",
            mailbox_name,
            message_id,
            attempts,
            "giving up: the reply was sent, only the copy is missing" if final else "will retry",
            error,
        )
        note: dict[str, JSONValue] = {"status": "failed", "error": error, "attempts": attempts}
        if not final:
            note["next_attempt_at"] = next_attempt_at.isoformat()
        with self._database.write() as session:
            _note(session, message_id, note, attempts)
            if final:
                delete_state(session, STATE_CONNECTOR, message_id)
            else:
                save_state(
                    session,
                    STATE_CONNECTOR,
                    message_id,
                    {
                        "mailbox": mailbox_name,
                        "raw": base64.b64encode(raw).decode("ascii"),
                        "sent_at": sent_at.isoformat(),
                        "attempts": attempts,
                        "next_attempt_at": next_attempt_at.isoformat(),
                        "error": error,
                    },
                )


def _holds(client: IMAPClient, folder: str, message_id: str) -> bool:
    """Whether ``folder`` already holds the message ``message_id`` (an earlier APPEND that did get through)."""
    client.select_folder(folder, readonly=True)
    return bool(client.search(["HEADER", "Message-ID", f"<{message_id}>"]))


def _note(session: Session, message_id: str, note: Mapping[str, JSONValue], attempts: int) -> None:
    """Record how the copy fared on the reply itself (``metadata.sent_copy``), through the one write path."""
    ingest(
        session,
        InteractionUpdate(
            channel=Channel.EMAIL,
            external_id=message_id,
            update_id=f"sent-copy:{message_id}:{attempts}",
            occurred_at=datetime.now(UTC),
            metadata={"sent_copy": dict(note)},
            raw=json.dumps({"sent_copy": note}).encode(),
            raw_content_type="application/json",
        ),
        source=_SOURCE,
    )
