"""IMAP intake: every message of a watched folder on the timeline, exactly once.

One :class:`FolderIntake` per mailbox folder. Its cursor (UIDVALIDITY, the last
UID ingested and, where the server offers CONDSTORE, HIGHESTMODSEQ) lives in
:mod:`hub.state` under ``"<mailbox name>/<folder>"`` and is saved **in the same
transaction** as the interactions it covers: a crash between "ingested" and
"cursor advanced" cannot happen, so a pass resumes exactly where the committed
data ends. Nothing is inferred from \\Seen flags or dates, which people and
other clients change.

A pass (:meth:`FolderIntake.catch_up`) asks for every UID above the cursor
(and, when the mailbox sets ``since``, arrived on or after that day), then, in
batches of ``batch_size``, oldest first:

1. fetches ``BODY.PEEK[]`` (never sets \\Seen) and INTERNALDATE, plus
   X-GM-MSGID on Gmail, in one FETCH;
2. parses each message; one the parser refuses is journaled as failed with its
   error (:func:`hub.ingest.record_unparseable`) and never holds up the rest;
3. in one write transaction: ``ingest_many`` of the whole batch, each message
   journaled with its own INTERNALDATE, and the cursor.

A pass of more than one batch (a backfill, a catch-up after downtime) with
``parse_processes`` parses in worker processes (:mod:`.pool`), overlapped with
the rest: while the workers parse batch N, this thread commits batch N-1 and
downloads batch N+1. Batches still commit one at a time and in UID order,
each with the cursor that covers it, so the guarantees above do not change:
an interruption loses at most work that was not committed, and the next pass
does it again.

A changed UIDVALIDITY means the server renumbered the folder: the pass starts
again from UID 1, and the hub's dedupe on Message-ID (the interaction's
external id) keeps every message once. Between passes the folder is watched
with IDLE (re-issued every ``idle_timeout`` seconds) or, without IDLE, polled
every ``poll_interval`` seconds. IDLE is only a hint: every wake-up and every
reconnect runs the same UID catch-up, so a missed notification costs latency,
never mail. Lost connections are retried with exponential backoff and jitter.
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError

from connectors.email.connection import open_imap
from connectors.email.parse import RAW_CONTENT_TYPE, SYNTHETIC_ID_DOMAIN, parse_message
from connectors.email.pool import Parsed, ParseJob, default_processes, parse_each, prepare, shared, shutdown
from connectors.email.settings import EmailSettings, MailboxSettings
from hub.contract import (
    ChannelEvent,
    Database,
    IngestResult,
    LeaseLost,
    holds_lease,
    ingest_many,
    load_state,
    mail_failed,
    mail_synced,
    new_owner,
    record_unparseable,
    release_lease,
    save_state,
    take_lease,
)

log = logging.getLogger(__name__)

#: ``hub.state`` connector name; keys are "<mailbox name>/<folder>".
CONNECTOR = "email"
#: Seconds a socket operation may block before the connection counts as lost.
SOCKET_TIMEOUT = 60.0
#: How often a thread waiting in IDLE looks at its stop event.
STOP_CHECK_INTERVAL = 0.5
#: Catch-up passes in a row before IDLE starts anyway (see FolderIntake._settle).
SETTLE_PASSES = 4
#: First reconnect delay and the longest one, in seconds.
BACKOFF_BASE = 1.0
BACKOFF_MAX = 300.0

#: Called with (messages done, messages to do) after each committed batch.
Progress = Callable[[int, int], None]

_GMAIL_CAPABILITY = b"X-GM-EXT-1"
_FETCH_ITEMS = [b"BODY.PEEK[]", b"INTERNALDATE"]


# -- the cursor -----------------------------------------------------------------


@dataclass(frozen=True)
class FolderCursor:
    """How far a folder has been ingested."""

    uidvalidity: int
    last_uid: int
    #: The folder's HIGHESTMODSEQ when a pass last completed; None while a
    #: pass is under way or the server has no CONDSTORE.
    highestmodseq: int | None = None

    def as_state(self) -> dict[str, Any]:
        return {"uidvalidity": self.uidvalidity, "last_uid": self.last_uid, "highestmodseq": self.highestmodseq}

    @classmethod
    def from_state(cls, value: Mapping[str, Any] | None) -> FolderCursor | None:
        if not value:
            return None
        modseq = value.get("highestmodseq")
        return cls(int(value["uidvalidity"]), int(value["last_uid"]), int(modseq) if modseq is not None else None)


def cursor_key(mailbox: MailboxSettings, folder: str) -> str:
    """Where a folder's cursor is saved in ``hub.state``."""
    return f"{mailbox.name}/{folder}"


def source_for(mailbox: MailboxSettings, folder: str) -> str:
    """The journal source of a folder's messages; "email" names the replay parser."""
    return f"email:{mailbox.name}/{folder}"


# -- parsing, shared with journal replay ---------------------------------------


def event_from_imap(raw: bytes, context: Mapping[str, Any]) -> ChannelEvent:
    """Parse one fetched message; also the replay parser for ``email:*`` journal entries.

    ``context`` holds what the parser needs besides the bytes: ``received_at``
    (INTERNALDATE, ISO 8601), ``mailbox_address`` and, on Gmail, ``gmail_msgid``.
    Raises :class:`ValueError` for bytes that are not an email at all.
    """
    received_at = datetime.fromisoformat(str(context["received_at"]))
    event = parse_message(raw, received_at=received_at, mailbox_address=str(context["mailbox_address"]))
    gmail_msgid = context.get("gmail_msgid")
    if gmail_msgid is None:
        return event
    metadata = {**event.metadata, "gmail_msgid": str(gmail_msgid)}
    if is_synthetic_id(event.external_id):
        # Gmail shows one message in every label folder it carries. Its content
        # hash would usually agree across them, but X-GM-MSGID is Gmail's own
        # promise that it is one message, so an id-less message gets its id
        # from that and is deduplicated across folders whatever the bytes say.
        external_id = f"gmail-{int(gmail_msgid):x}@{SYNTHETIC_ID_DOMAIN}"
        metadata["message_id"] = external_id
        return replace(event, external_id=external_id, metadata=metadata)
    return replace(event, metadata=metadata)


def is_synthetic_id(external_id: str) -> bool:
    """Whether the parser made the id up because the message had none."""
    return external_id.endswith(f"@{SYNTHETIC_ID_DOMAIN}")


# -- one pass -------------------------------------------------------------------


@dataclass
class SyncReport:
    """What one pass over a folder did."""

    key: str
    #: Messages found above the cursor.
    total: int = 0
    new: int = 0
    duplicates: int = 0
    #: Journaled with an error: the parser refused them or the pipeline failed
    #: (those the journal replay retries).
    failed: int = 0
    #: The folder's UIDVALIDITY had changed and it was read again from UID 1.
    resynced: bool = False
    cursor: FolderCursor | None = None
    #: SELECT alone showed that nothing had arrived: the session's view of the
    #: folder is all on the timeline, so IDLE may start (it reports only what
    #: the session has not been told of yet).
    settled: bool = False
    #: Messages of ``total`` in committed batches so far.
    done: int = 0

    def summary(self) -> str:
        parts = [f"{self.new} new", f"{self.duplicates} already on the timeline", f"{self.failed} failed"]
        if self.resynced:
            parts.append("resynced after a UIDVALIDITY change")
        where = f"uidvalidity {self.cursor.uidvalidity}, last uid {self.cursor.last_uid}" if self.cursor else "empty"
        return f"{self.key}: {', '.join(parts)} ({where})"


@dataclass(frozen=True, slots=True)
class _Fetched:
    """One message of a batch as the server sent it."""

    uid: int
    raw: bytes
    #: What the parser needs besides the bytes, journaled with them for replay.
    context: dict[str, Any]


@dataclass(frozen=True, slots=True)
class _Planned:
    """One batch of a pass: its UIDs and the cursor that commits with it."""

    uids: list[int]
    cursor: FolderCursor


class FolderIntake:
    """Keeps one folder of one mailbox on the timeline."""

    def __init__(
        self,
        database: Database,
        mailbox: MailboxSettings,
        folder: str,
        *,
        batch_size: int,
        idle_timeout: float = 300.0,
        poll_interval: float = 60.0,
        use_idle: bool | None = None,
        backoff_base: float = BACKOFF_BASE,
        backoff_max: float = BACKOFF_MAX,
        parse_processes: int = 0,
        lease_seconds: float = 30.0,
    ) -> None:
        """``use_idle=None`` uses IDLE where the server offers it; False always polls.

        ``parse_processes``: worker processes that parse during a pass of more
        than one batch; 0 parses in this process.
        """
        self.database = database
        self.mailbox = mailbox
        self.folder = folder
        self.batch_size = batch_size
        self.idle_timeout = idle_timeout
        self.poll_interval = poll_interval
        self.use_idle = use_idle
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.parse_processes = parse_processes
        #: One worker reads the folder at a time (hub.leases); see run().
        self.lease_name = f"email:{cursor_key(mailbox, folder)}"
        self.lease_period = timedelta(seconds=lease_seconds)
        self.owner = new_owner()
        self._leased = False
        self.key = cursor_key(mailbox, folder)
        self.source = source_for(mailbox, folder)

    def __repr__(self) -> str:
        return f"<FolderIntake {self.key} on {self.mailbox.host}:{self.mailbox.port}>"

    # -- connection -------------------------------------------------------------

    def connect(self) -> IMAPClient:
        """A logged-in client with CONDSTORE enabled where offered.

        TLS as the mailbox says, verified (:mod:`connectors.email.connection`);
        a certificate or STARTTLS failure raises :class:`MailboxTlsError`,
        which names the mailbox and is retried like any lost connection.
        """
        client = open_imap(self.mailbox, timeout=SOCKET_TIMEOUT)
        try:
            # Aware datetimes: INTERNALDATE with its zone, not local wall time.
            client.normalise_times = False
            capabilities = client.capabilities()
            if b"CONDSTORE" in capabilities and b"ENABLE" in capabilities:
                # Must precede SELECT, which then reports HIGHESTMODSEQ.
                client.enable("CONDSTORE")
        except BaseException:
            disconnect(client)
            raise
        return client

    def backoff(self, failures: int) -> float:
        """Seconds to wait after the ``failures``-th consecutive failure."""
        delay: float = min(self.backoff_max, self.backoff_base * 2.0 ** max(failures - 1, 0))
        # Jitter spreads the reconnects of many folders (and many Corridors)
        # after a server restart, instead of all of them at the same instant.
        return delay * random.uniform(0.5, 1.0)  # noqa: S311 -- timing jitter, not security

    # -- catch-up ---------------------------------------------------------------

    def catch_up(self, client: IMAPClient, progress: Progress | None = None) -> SyncReport:
        """Ingest every message above the cursor, in batches, oldest first."""
        report = SyncReport(self.key)
        # EXAMINE unless we are to set \Seen: a read-only selection cannot
        # change a flag, whatever a buggy fetch would do.
        selected = client.select_folder(self.folder, readonly=not self.mailbox.mark_seen)
        uidvalidity = int(selected[b"UIDVALIDITY"])
        uidnext = _int_or_none(selected.get(b"UIDNEXT"))
        modseq = _int_or_none(selected.get(b"HIGHESTMODSEQ"))
        with self.database.read() as session:
            cursor = FolderCursor.from_state(load_state(session, CONNECTOR, self.key))
        log.debug("%s: UIDVALIDITY %d UIDNEXT %s HIGHESTMODSEQ %s; %s", self.key, uidvalidity, uidnext, modseq, cursor)
        if cursor is not None and cursor.uidvalidity != uidvalidity:
            log.warning(
                "%s: UIDVALIDITY changed from %d to %d; reading the folder again (duplicates are skipped)",
                self.key,
                cursor.uidvalidity,
                uidvalidity,
            )
            report.resynced = True
            cursor = None
        report.cursor = cursor
        last_uid = cursor.last_uid if cursor is not None else 0
        if cursor is not None and _nothing_new(cursor, uidnext, modseq):
            report.settled = not _grew_during_select(client)
            if progress is not None:
                progress(0, 0)
            mail_synced(self.mailbox.name, self.folder, 0)
            return report

        uids = self._uids_after(client, last_uid)
        report.total = len(uids)
        if progress is not None:
            progress(0, len(uids))
        # Once the pass is through, every UID below UIDNEXT as of the SELECT
        # has been seen or was filtered out for good (by ``since``: an
        # INTERNALDATE never changes), so the cursor may jump there.
        final_uid = max([last_uid, *uids, (uidnext or 1) - 1])
        batches = list(_chunks(uids, self.batch_size)) or [[]]
        plan: list[_Planned] = []
        for number, batch in enumerate(batches, start=1):
            last = number == len(batches)
            next_cursor = FolderCursor(
                uidvalidity,
                final_uid if last else batch[-1],
                # Only a completed pass may record HIGHESTMODSEQ: an interrupted
                # one with the new value would make the next pass skip the rest.
                modseq if last else None,
            )
            if batch or next_cursor != cursor:
                plan.append(_Planned(batch, next_cursor))
        gmail = _GMAIL_CAPABILITY in client.capabilities()
        # One batch has nothing to overlap with, and the message IDLE
        # announced is parsed sooner here than worker processes could start.
        if self.parse_processes and len(plan) > 1:
            self._pipelined(client, plan, gmail, report, progress)
        else:
            for planned in plan:
                fetched = self._fetch(client, planned.uids, gmail=gmail)
                parsed = parse_each(event_from_imap, [(item.raw, item.context) for item in fetched])
                self._commit(client, planned, fetched, parsed, report, progress)
        mail_synced(self.mailbox.name, self.folder, report.total)
        return report

    def _pipelined(
        self, client: IMAPClient, plan: list[_Planned], gmail: bool, report: SyncReport, progress: Progress | None
    ) -> None:
        """The batches of a backfill, each parsed in the worker processes while this thread works on the others.

        Batch N is downloaded and handed to the workers; while they parse it,
        batch N-1 (parsed meanwhile) is committed and batch N+1 downloaded.
        Batches commit here, one at a time and in order, so at most two are
        in memory, and a failure anywhere ends the pass with every committed
        batch complete and nothing after it. (Downloading in a thread of its
        own as well was measured: no faster, as that thread and the commits
        then wait for each other's turn with the GIL.)
        """
        with shared(event_from_imap, self.parse_processes).lease() as pool:
            parsing: deque[tuple[_Planned, list[_Fetched], ParseJob]] = deque()
            for planned in plan:
                fetched = self._fetch(client, planned.uids, gmail=gmail)
                parsing.append((planned, fetched, pool.submit([(item.raw, item.context) for item in fetched])))
                if len(parsing) > 1:
                    earlier, its_messages, its_parse = parsing.popleft()
                    self._commit(client, earlier, its_messages, its_parse.result(), report, progress)
            while parsing:
                earlier, its_messages, its_parse = parsing.popleft()
                self._commit(client, earlier, its_messages, its_parse.result(), report, progress)

    def _uids_after(self, client: IMAPClient, last_uid: int) -> list[int]:
        criteria: list[Any] = ["UID", f"{last_uid + 1}:*"]
        if self.mailbox.since is not None:
            criteria += ["SINCE", self.mailbox.since]
        # "n:*" matches the highest UID even when it is below n (RFC 3501 6.4.8).
        return sorted(uid for uid in client.search(criteria) if uid > last_uid)

    def _commit(
        self,
        client: IMAPClient,
        planned: _Planned,
        fetched: Sequence[_Fetched],
        parsed: Sequence[Parsed],
        report: SyncReport,
        progress: Progress | None,
    ) -> None:
        """Put one parsed batch on the timeline with its cursor, in one transaction."""
        events: list[ChannelEvent] = []
        contexts: list[dict[str, Any]] = []
        with self.database.write() as session:
            if self._leased and not holds_lease(session, self.lease_name, self.owner):
                # Paused past the lease (a stall, a partition): another worker
                # may be reading the folder now, so nothing of this batch is kept.
                raise LeaseLost(f"{self.key}: the folder's lease lapsed before this batch could be committed")
            stored = FolderCursor.from_state(load_state(session, CONNECTOR, self.key))
            for item, outcome in zip(fetched, parsed, strict=True):
                if outcome.event is None:
                    record_unparseable(
                        session,
                        source=self.source,
                        raw=item.raw,
                        content_type=RAW_CONTENT_TYPE,
                        error=outcome.error or "unparseable",
                        context=item.context,
                    )
                    report.failed += 1
                    continue
                events.append(outcome.event)
                contexts.append(item.context)
            # Each message is journaled with its own context, so a replay
            # parses exactly what was ingested (a message without a usable
            # Date takes its time from its own INTERNALDATE).
            _count(report, ingest_many(session, events, source=self.source, contexts=contexts))
            # Another process (a `corridor email sync --once` beside the
            # worker) may have gone further; a cursor never moves back.
            cursor = planned.cursor
            if stored is None or stored.uidvalidity != cursor.uidvalidity or stored.last_uid <= cursor.last_uid:
                save_state(session, CONNECTOR, self.key, cursor.as_state())
        if self.mailbox.mark_seen and planned.uids:
            # Only after the commit: a message is marked read once it is safe.
            client.add_flags(planned.uids, [b"\\Seen"], silent=True)
        report.cursor = cursor
        report.done += len(planned.uids)
        if progress is not None and planned.uids:
            progress(report.done, report.total)

    def _fetch(self, client: IMAPClient, uids: list[int], *, gmail: bool) -> list[_Fetched]:
        if not uids:
            return []
        response = client.fetch(uids, [*_FETCH_ITEMS, b"X-GM-MSGID"] if gmail else _FETCH_ITEMS)
        missing = [uid for uid in uids if uid not in response]
        if missing:
            # Gone between SEARCH and FETCH (expunged by someone else) is fine;
            # a server that just did not answer must not cost us the message.
            still_there = set(client.search(["UID", ",".join(map(str, missing))]))
            if still_there & set(missing):
                raise IMAPClientError(f"{self.key}: the server returned no data for UIDs {sorted(still_there)}")
            log.info("%s: UIDs %s were expunged before they could be fetched", self.key, missing)
        fetched = []
        for uid in uids:
            data = response.get(uid)
            if data is None:
                continue
            raw = data.get(b"BODY[]") or b""
            received_at = data.get(b"INTERNALDATE")
            if not isinstance(received_at, datetime):
                received_at = datetime.now(UTC)
            elif received_at.tzinfo is None:
                received_at = received_at.replace(tzinfo=UTC)
            context: dict[str, Any] = {
                "received_at": received_at.isoformat(),
                "mailbox_address": self.mailbox.address,
            }
            if data.get(b"X-GM-MSGID") is not None:
                context["gmail_msgid"] = int(data[b"X-GM-MSGID"])
            fetched.append(_Fetched(uid, bytes(raw), context))
        return fetched

    # -- watching ---------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Read the folder while this process holds its lease, until ``stop`` is set.

        Several workers on one database each run every folder's intake; the
        folder's lease (hub.leases) lets one of them read it at a time. The
        others try again every third of a lease period, so when the holder
        dies one of them takes the folder over within a period and a third.
        """
        while not stop.is_set():
            if not take_lease(self.database, self.lease_name, self.owner, self.lease_period):
                stop.wait(self.lease_period.total_seconds() / 3)
                continue
            log.info("%s: this worker reads the folder now (%s)", self.key, self.owner)
            holding = threading.Event()
            keeper = threading.Thread(
                target=self._keep_lease, args=(stop, holding), name=f"email lease {self.key}", daemon=True
            )
            self._leased = True
            keeper.start()
            try:
                self._read(holding)
            finally:
                self._leased = False
                holding.set()
                keeper.join()
            if stop.is_set():
                release_lease(self.database, self.lease_name, self.owner)
            else:
                log.warning("%s: the folder's lease was lost; another worker may read it now", self.key)

    def _keep_lease(self, stop: threading.Event, holding: threading.Event) -> None:
        """Renew the lease every third of its period; set ``holding`` when it is lost or ``stop`` is set."""
        every = self.lease_period.total_seconds() / 3
        while not holding.is_set():
            if stop.wait(every) or holding.is_set():
                break
            try:
                renewed = take_lease(self.database, self.lease_name, self.owner, self.lease_period)
            except Exception as exc:  # the database is away: the lease runs out unless it comes back in time
                log.warning("%s: renewing the lease failed: %s", self.key, exc)
                continue
            if not renewed:
                break
        holding.set()

    def _read(self, stop: threading.Event) -> None:
        """Catch up, then watch the folder, until ``stop`` is set; reconnects on failure."""
        failures = 0
        while not stop.is_set():
            delay = 0.0
            client: IMAPClient | None = None
            try:
                client = self.connect()
                self._settle(client)
                failures = 0
                self._watch(client, stop)
            except Exception as exc:  # server gone, network down, database busy: all retried
                mail_failed(self.mailbox.name, self.folder)
                failures += 1
                delay = self.backoff(failures)
                connection_trouble = isinstance(exc, IMAPClientError | OSError)
                log.log(
                    logging.WARNING if connection_trouble else logging.ERROR,
                    "%s: %s: %s; trying again in %.1f s",
                    self.key,
                    type(exc).__name__,
                    exc,
                    delay,
                    exc_info=not connection_trouble,
                )
            finally:
                if client is not None:
                    disconnect(client)
            if delay:
                stop.wait(delay)

    def _watch(self, client: IMAPClient, stop: threading.Event) -> None:
        idle = client.has_capability("IDLE") if self.use_idle is None else self.use_idle
        while not stop.is_set():
            if idle:
                self._idle(client, stop)
            elif stop.wait(self.poll_interval):
                return
            if stop.is_set():
                return
            self._settle(client)

    def _settle(self, client: IMAPClient) -> None:
        """Catch up until a SELECT shows nothing new, so that IDLE misses nothing.

        A pass that fetched anything may have been told of newer mail in the
        middle of it (and IDLE would not repeat that news), so it is followed
        by another pass; a few at most, in case a server never settles.
        """
        for _ in range(SETTLE_PASSES):
            report = self.catch_up(client)
            if report.total or report.resynced:
                log.info("%s", report.summary())
            if report.settled:
                return

    def _idle(self, client: IMAPClient, stop: threading.Event) -> None:
        """Wait in IDLE until the server announces mail, ``idle_timeout`` passes or ``stop`` is set.

        Mail delivered in the few milliseconds between the last SELECT and the
        server's "+ idling" can go unannounced (seen with Dovecot 2.3 under
        load); the catch-up at the next re-issue finds it, so ``idle_timeout``
        bounds how late such a message can be.
        """
        client.idle()
        log.debug("%s: idling", self.key)
        try:
            deadline = time.monotonic() + self.idle_timeout
            while not stop.is_set():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return
                wait = min(remaining, STOP_CHECK_INTERVAL)
                started = time.monotonic()
                responses = client.idle_check(timeout=wait)
                if any(_announces_mail(response) for response in responses):
                    return
                if not responses and time.monotonic() - started < wait / 2:
                    # The socket was readable but held no response: the server
                    # closed it. idle_done() below raises and we reconnect.
                    return
        finally:
            client.idle_done()


def _announces_mail(response: Any) -> bool:
    if not isinstance(response, tuple) or len(response) < 2:
        return False
    # "* 12 EXISTS": mail arrived. "* BYE": the server is leaving; the
    # catch-up that follows finds out whether the connection is still good.
    return response[1] in (b"EXISTS", b"RECENT") or response[0] == b"BYE"


def _nothing_new(cursor: FolderCursor, uidnext: int | None, modseq: int | None) -> bool:
    """Whether SELECT alone shows nothing arrived since the cursor (no SEARCH needed).

    UIDNEXT says it exactly and every IMAP4rev1 server sends it; HIGHESTMODSEQ
    (which also moves with flag changes) stands in only where it is missing.
    """
    if uidnext is not None:
        return uidnext <= cursor.last_uid + 1
    return modseq is not None and cursor.highestmodseq == modseq


def _grew_during_select(client: IMAPClient) -> bool:
    """Whether the server announced more messages while answering the SELECT.

    Mail arriving during a command is announced by an EXISTS after its data,
    and is then no news to IDLE: sleeping on it would leave the message
    waiting until the next IDLE timeout. imaplib keeps every untagged response
    of the selection (SELECT flushes them first); IMAPClient reports only the
    first EXISTS, so the list is read here.
    """
    responses = getattr(getattr(client, "_imap", None), "untagged_responses", None)
    if not isinstance(responses, dict):
        return True  # cannot tell: one more pass is cheap
    return len(set(responses.get("EXISTS", ()))) > 1


def _count(report: SyncReport, results: Sequence[IngestResult]) -> None:
    for result in results:
        if result.error:
            report.failed += 1
        elif result.duplicate:
            report.duplicates += 1
        else:
            report.new += 1


def _int_or_none(value: Any) -> int | None:
    return int(value) if value is not None else None


def _chunks(values: list[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def disconnect(client: IMAPClient) -> None:
    """Log out politely, or just drop the socket when the connection is gone."""
    try:
        client.logout()
    except Exception:  # the connection is already dead; nothing to say goodbye to
        # Closing a dead socket cannot fail in a way that matters.
        with contextlib.suppress(Exception):
            client.shutdown()


# -- every folder of every mailbox ----------------------------------------------


def folder_intakes(
    database: Database, settings: EmailSettings, mailboxes: Sequence[MailboxSettings], **options: Any
) -> list[FolderIntake]:
    """One intake per configured folder."""
    configured: dict[str, Any] = {
        "batch_size": settings.batch_size,
        "idle_timeout": settings.idle_timeout,
        "poll_interval": settings.poll_interval,
        "parse_processes": parse_processes(settings),
        "lease_seconds": settings.lease_seconds,
    }
    return [
        FolderIntake(database, mailbox, folder, **{**configured, **options})
        for mailbox in mailboxes
        for folder in mailbox.folders
    ]


def parse_processes(settings: EmailSettings) -> int:
    """``[email] parse_processes`` as a number of worker processes (-1: one per CPU)."""
    return default_processes() if settings.parse_processes < 0 else settings.parse_processes


def prepare_parsing(intakes: Sequence[FolderIntake]) -> None:
    """Have the parser processes' fork server start now, while IMAP connects, not at the first backfill."""
    if any(intake.parse_processes for intake in intakes):
        prepare(event_from_imap)


def stop_parsers() -> None:
    """Stop the parser processes all folders share, now (the worker stops, a command is done)."""
    shutdown()


def intake_worker(intakes: Sequence[FolderIntake]) -> Callable[[threading.Event], None]:
    """The ``email intake`` worker loop: a thread per folder until ``stop`` is set."""

    def loop(stop: threading.Event) -> None:
        prepare_parsing(intakes)
        threads = [
            threading.Thread(target=intake.run, args=(stop,), name=f"email {intake.key}", daemon=True)
            for intake in intakes
        ]
        for thread in threads:
            thread.start()
        stop.wait()
        for thread in threads:
            thread.join(timeout=SOCKET_TIMEOUT)
        stop_parsers()

    return loop


def sync_once(
    intakes: Sequence[FolderIntake],
    progress_for: Callable[[FolderIntake], Progress | None] = lambda _intake: None,
) -> list[SyncReport | Exception]:
    """One catch-up pass over every folder; a folder that fails does not stop the others."""
    prepare_parsing(intakes)
    outcomes: list[SyncReport | Exception] = []
    for intake in intakes:
        try:
            client = intake.connect()
            try:
                outcomes.append(intake.catch_up(client, progress_for(intake)))
            finally:
                disconnect(client)
        except Exception as exc:  # reported per folder by the caller
            mail_failed(intake.mailbox.name, intake.folder)
            log.warning("%s: %s: %s", intake.key, type(exc).__name__, exc)
            outcomes.append(exc)
    return outcomes
