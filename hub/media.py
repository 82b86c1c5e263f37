"""Files a provider keeps -- call recordings, MMS and WhatsApp media -- brought into Corridor.

A provider's webhook names such a file by URL (``AttachmentRecord.url``) and
Corridor stores no bytes for it yet. The connector that knows the provider
registers a :class:`MediaFetcher` for its channels
(``registry.add_media_fetcher``); the hub never learns how to reach the
provider, only how to ask. Two ways in:

* **on demand** (:func:`open_attachment`): an agent plays the recording or
  opens the photo; the bytes are fetched, stored content-addressed like every
  other attachment (``AttachmentBlob``, sha256) and served; the next play is
  local;
* **ahead of time** (:func:`prefetch`, the worker's ``media prefetch`` loop,
  for channels whose connector asks for it, e.g. ``[twilio] fetch_media``):
  each new file is downloaded soon after it arrives, in batches, retried with
  backoff, so it stays playable after the provider deletes it.

No database transaction is open while a provider is being asked: a slow
provider must not hold SQLite's write lock the journal processor needs. Two
fetches of the same file (two agents pressing play, or an agent and the
worker) both store it; the blob is keyed by its digest, so it is kept once.

What a provider sends is not believed about its type: :func:`checked_type`
names the type from the bytes, and a file that claims to be a picture or a
recording but is not one is stored as ``application/octet-stream``, which the
attachment views only ever offer as a download.
"""

from __future__ import annotations

import enum
import hashlib
import logging
import random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from hub.db import Database
from hub.events import Channel
from hub.ingest.statements import BLOB, insert_ignoring_conflicts
from hub.models import AttachmentBlob, AttachmentRecord, Interaction, utcnow

log = logging.getLogger(__name__)

#: Files claimed per prefetch pass: one short transaction claims them, the
#: downloads follow outside any transaction, one more stores them all.
PREFETCH_BATCH = 20
#: How long a claimed file is left to the worker that claimed it before
#: another may try (a worker killed mid-download leaves its claim behind).
CLAIM_SECONDS = 600
#: Attempts before the worker gives a file up (an agent can still press play):
#: with the backoff below, about a day and a half of trying.
MAX_ATTEMPTS = 12
_FIRST_RETRY_SECONDS = 30.0
_LONGEST_RETRY_SECONDS = 6 * 3600.0


class MediaProblem(enum.StrEnum):
    """Why a file the provider keeps could not be had, as the agent and the API are told."""

    #: The provider has no such file any more (a deleted recording: 404).
    GONE = "gone"
    #: The provider refused the account's credentials (401/403).
    REFUSED = "refused"
    #: No answer in time, no connection, or a server error at the provider.
    UNREACHABLE = "unreachable"
    #: Larger than the connector's limit.
    TOO_LARGE = "too_large"
    #: The URL is not one of the provider's own API addresses: never requested.
    NOT_ALLOWED = "not_allowed"
    #: No enabled connector fetches files of this channel.
    NOT_CONFIGURED = "not_configured"


#: Problems a retry cannot mend: the worker stops trying at once.
_PERMANENT = frozenset({MediaProblem.GONE, MediaProblem.TOO_LARGE, MediaProblem.NOT_ALLOWED})
#: The API's status for each: the provider's failures are a bad gateway, what
#: Corridor will not or cannot ask for is the file's absence.
HTTP_STATUS = {
    MediaProblem.GONE: 404,
    MediaProblem.REFUSED: 502,
    MediaProblem.UNREACHABLE: 502,
    MediaProblem.TOO_LARGE: 502,
    MediaProblem.NOT_ALLOWED: 404,
    MediaProblem.NOT_CONFIGURED: 404,
}


class MediaUnavailable(Exception):
    """The file could not be fetched; ``message`` says why in words an agent understands."""

    def __init__(self, problem: MediaProblem, message: str) -> None:
        super().__init__(message)
        self.problem = problem
        self.message = message

    @property
    def permanent(self) -> bool:
        return self.problem in _PERMANENT

    @property
    def http_status(self) -> int:
        return HTTP_STATUS[self.problem]


@dataclass(frozen=True, slots=True)
class FetchedMedia:
    """A file's bytes as the provider served them, with the type it declared."""

    content: bytes
    content_type: str


class MediaFetcher(Protocol):
    """Fetches files a provider keeps, with the account's credentials (a connector implements it).

    ``fetch`` must refuse (``MediaProblem.NOT_ALLOWED``, without a request) a
    URL that is not the provider's own API, since the URL came in a payload;
    must bound the time and the size; raises :class:`MediaUnavailable` for
    every failure.
    """

    def fetch(self, url: str) -> FetchedMedia: ...


@dataclass(frozen=True, slots=True)
class StoredFile:
    """An attachment's bytes and what Corridor knows of them, ready to serve."""

    filename: str
    content_type: str
    content: bytes


# -- the type, from the bytes -------------------------------------------------------------------

#: Types whose bytes :func:`sniff` recognises. A declared type among them that
#: the bytes do not bear out is not believed.
_RECOGNISED = ("image/", "audio/", "video/", "application/pdf")


def sniff(content: bytes) -> str | None:
    """The type the bytes themselves show (magic numbers), or None when they show none."""
    head = content[:16]
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "image/webp"
    if head.startswith(b"RIFF") and head[8:12] == b"WAVE":
        return "audio/wav"
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    if head.startswith(b"OggS"):
        return "audio/ogg"
    if head.startswith(b"#!AMR"):
        return "audio/amr"
    if head.startswith(b"ID3") or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        # An ID3 tag, or an MPEG audio frame's sync bits (after JPEG's FF D8).
        return "audio/mpeg"
    if head[4:8] == b"ftyp":
        return "video/mp4"
    return None


def checked_type(content: bytes, declared: str) -> str:
    """The type to store a fetched file under: the bytes' own, never a claim they contradict.

    A provider (or whoever sent the customer's file through it) may declare
    anything; a browser shown ``image/jpeg`` that is really HTML would be
    asked to render it. Recognised bytes name their type; bytes that are not
    what a declared picture, recording, video or PDF would be become
    ``application/octet-stream``; other declared types (vCard, plain text)
    are kept, and are only ever downloaded.
    """
    found = sniff(content)
    if found is not None:
        if found == "video/mp4" and declared.lower().startswith("audio/"):
            return "audio/mp4"  # the same container, holding sound only
        return found
    plain = declared.split(";")[0].strip().lower()
    if not plain or plain.startswith(_RECOGNISED) or "html" in plain or "xml" in plain:
        return "application/octet-stream"
    return plain


# -- storing ---------------------------------------------------------------------------------


def _store(session: Session, record: AttachmentRecord, fetched: FetchedMedia) -> StoredFile:
    """Keep the bytes content-addressed and point the record at them (idempotent)."""
    digest = hashlib.sha256(fetched.content).hexdigest()
    insert_ignoring_conflicts(session, BLOB, [{"sha256": digest, "content": fetched.content}])
    record.sha256 = digest
    record.size = len(fetched.content)
    record.content_type = checked_type(fetched.content, fetched.content_type)[:255]
    record.fetch_due_at = None
    record.fetch_error = None
    return StoredFile(record.filename, record.content_type, fetched.content)


def _fetcher_for(fetchers: Mapping[Channel, MediaFetcher], channel: Channel) -> MediaFetcher:
    fetcher = fetchers.get(channel)
    if fetcher is None:
        raise MediaUnavailable(
            MediaProblem.NOT_CONFIGURED,
            f"This file is kept at the provider, and no connector enabled here fetches {channel} files.",
        )
    return fetcher


def open_attachment(
    database: Database, fetchers: Mapping[Channel, MediaFetcher], attachment_id: int
) -> StoredFile | None:
    """An attachment's bytes, fetched from the provider first if Corridor does not have them.

    None when there is no such attachment. Raises :class:`MediaUnavailable`
    when the bytes are neither here nor to be had; the reason is kept on the
    attachment (``fetch_error``), so the page that shows it can say why, and
    logged.
    """
    with database.read() as session:
        record = session.get(AttachmentRecord, attachment_id)
        if record is None:
            return None
        if record.sha256 is not None:
            blob = session.get(AttachmentBlob, record.sha256)
            if blob is not None:
                return StoredFile(record.filename, record.content_type, bytes(blob.content))
        url = record.url
        channel = session.scalar(select(Interaction.channel).where(Interaction.id == record.interaction_id))
    if url is None or channel is None:
        raise MediaUnavailable(MediaProblem.GONE, "This file was not kept: it came without its contents.")
    try:
        fetched = _fetcher_for(fetchers, channel).fetch(url)
    except MediaUnavailable as exc:
        log.warning("attachment %d: not fetched from the provider (%s): %s", attachment_id, exc.problem, exc.message)
        with database.write() as session:
            failed = session.get(AttachmentRecord, attachment_id)
            if failed is not None and failed.sha256 is None:
                failed.fetch_error = exc.message
                if exc.permanent:
                    failed.fetch_due_at = None
        raise
    with database.write() as session:
        record = session.get(AttachmentRecord, attachment_id)
        if record is None:  # erased while it was being fetched
            return None
        stored = _store(session, record, fetched)
    log.info("attachment %d: fetched from the provider, %d bytes", attachment_id, len(fetched.content))
    return stored


def attachment_problem(database: Database, attachment_id: int) -> str | None:
    """Why the attachment's last fetch failed (None if it did not, or it is stored); no provider is asked."""
    with database.read() as session:
        record = session.get(AttachmentRecord, attachment_id)
        if record is None or record.sha256 is not None:
            return None
        return record.fetch_error


# -- the worker's prefetch ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PrefetchPass:
    """What one pass did: files stored, failures to try again later, failures given up."""

    stored: int = 0
    retrying: int = 0
    given_up: int = 0


def retry_delay(attempts: int) -> timedelta:
    """The wait before attempt ``attempts + 1``: doubling from 30 s to 6 h, with jitter."""
    seconds = min(_FIRST_RETRY_SECONDS * 2 ** max(attempts - 1, 0), _LONGEST_RETRY_SECONDS)
    # Jitter so that files that failed together (the provider was down) do
    # not all come back in the same second.
    return timedelta(seconds=seconds * random.uniform(0.8, 1.2))  # noqa: S311 -- spreading load, not a secret


def _claim(
    database: Database, channels: frozenset[Channel], now: datetime, limit: int
) -> list[tuple[int, str, Channel]]:
    """Due files of ``channels``, each moved out of the queue for CLAIM_SECONDS so no other worker takes it."""
    with database.write() as session:
        query = (
            select(AttachmentRecord.id, AttachmentRecord.url, AttachmentRecord.fetch_attempts, Interaction.channel)
            .join(Interaction, Interaction.id == AttachmentRecord.interaction_id)
            .where(AttachmentRecord.fetch_due_at <= now, Interaction.channel.in_(sorted(channels)))
            .order_by(AttachmentRecord.fetch_due_at)
            .limit(limit)
        )
        if not database.is_sqlite:
            query = query.with_for_update(skip_locked=True, of=AttachmentRecord)
        claimed = []
        for attachment_id, url, attempts, channel in session.execute(query).all():
            # Compare-and-set on the attempt count: a second worker that read
            # the same row (SQLite has no SKIP LOCKED) changes nothing and skips it.
            moved = session.execute(
                update(AttachmentRecord)
                .where(AttachmentRecord.id == attachment_id, AttachmentRecord.fetch_attempts == attempts)
                .values(
                    fetch_due_at=now + timedelta(seconds=CLAIM_SECONDS),
                    fetch_attempts=AttachmentRecord.fetch_attempts + 1,
                )
            )
            if moved.rowcount == 1 and url:  # type: ignore[attr-defined]  # CursorResult of an UPDATE
                claimed.append((attachment_id, url, channel))
    return claimed


def prefetch(
    database: Database,
    fetchers: Mapping[Channel, MediaFetcher],
    channels: frozenset[Channel],
    *,
    now: datetime | None = None,
    limit: int = PREFETCH_BATCH,
) -> PrefetchPass:
    """Download one batch of files due for ``channels``; store them, or schedule the next attempt.

    Idempotent: a file once stored leaves the queue, so running this twice
    asks the provider once; a file stored meanwhile by an agent's play is not
    stored again.
    """
    if not channels:
        return PrefetchPass()
    now = now or utcnow()
    claimed = _claim(database, channels, now, limit)
    if not claimed:
        return PrefetchPass()
    outcomes: dict[int, FetchedMedia | MediaUnavailable] = {}
    for attachment_id, url, channel in claimed:
        try:
            outcomes[attachment_id] = _fetcher_for(fetchers, channel).fetch(url)
        except MediaUnavailable as exc:
            outcomes[attachment_id] = exc
    stored = retrying = given_up = 0
    with database.write() as session:
        for attachment_id, outcome in outcomes.items():
            record = session.get(AttachmentRecord, attachment_id)
            if record is None or record.sha256 is not None:
                continue  # erased, or an agent's play stored it meanwhile
            if isinstance(outcome, FetchedMedia):
                _store(session, record, outcome)
                stored += 1
                continue
            record.fetch_error = outcome.message
            if outcome.permanent or record.fetch_attempts >= MAX_ATTEMPTS:
                record.fetch_due_at = None
                given_up += 1
                log.warning(
                    "attachment %d: not downloaded after %d attempts, giving up (%s): %s",
                    attachment_id, record.fetch_attempts, outcome.problem, outcome.message,
                )  # fmt: skip
            else:
                record.fetch_due_at = now + retry_delay(record.fetch_attempts)
                retrying += 1
                log.info(
                    "attachment %d: download failed (%s), trying again at %s",
                    attachment_id, outcome.problem, record.fetch_due_at,
                )  # fmt: skip
    if stored:
        log.info("media prefetch: %d files stored", stored)
    return PrefetchPass(stored=stored, retrying=retrying, given_up=given_up)
