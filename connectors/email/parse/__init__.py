"""Email parsing: one raw RFC 5322 message in, one :class:`ChannelEvent` out.

Pure: no I/O, no clock, no database. The poller hands over the bytes exactly as
the IMAP server returned them (``BODY.PEEK[]``), the time the mailbox received
the message (the IMAP INTERNALDATE) and the mailbox's own address.

Real mailboxes hold messages that no RFC describes: misspelt charsets, headers
folded by a broken mailer, missing Dates and Message-IDs, bounces in a dozen
dialects. A support tool that stalls on one of them loses a customer's words,
so the rule here is to never give up on a message: every problem worked around
is written into ``ChannelEvent.defects`` in words an admin can act on, and the
only input refused is input that is not an email at all.

This module is the entry point (:func:`parse_message`) and puts the event
together; each of the others reads one thing, in the order a message is read:

- ``structure``: the header block repaired, the MIME tree, a part's headers,
  parameters and payload;
- ``charsets``: bytes in any (mis)declared charset to text, RFC 2047 encoded
  words, and the clean-up that makes a value storable;
- ``headers``: Message-ID, In-Reply-To and References, Subject, Date;
- ``addresses``: From, To, Cc, Reply-To and Sender to parties;
- ``body``: plain text, HTML and attachments;
- ``quotes``: the new part of a reply, without the quoted history;
- ``reports``: auto-replies, and bounces with the message they report on.

Their underscored names are this package's internals, shared between its
modules; what the connector uses is :func:`parse_message`, ``RAW_CONTENT_TYPE``
and ``SYNTHETIC_ID_DOMAIN``. Every pattern is compiled once, at import: the
stdlib parser compiles a new one for each multipart boundary, which would evict
them from re's cache and have them compiled again and again during a backfill.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime
from email.message import Message

from connectors.email.parse.addresses import _header_text, _parties, _recipients, _sender
from connectors.email.parse.body import _Body, _collect_body, _html_to_text, _named_attachments, _sanitise_html
from connectors.email.parse.charsets import (
    _clean_line,
    _clean_text,
    _decode_text,
    _decode_words,
    _note_unstorable,
    _repair_surrogates,
    _sniff,
)
from connectors.email.parse.headers import (
    SYNTHETIC_ID_DOMAIN,
    _dedupe,
    _ids_from_header,
    _ids_in,
    _message_id,
    _occurred_at,
    _subject,
    _synthetic_id,
)
from connectors.email.parse.quotes import _reply_text
from connectors.email.parse.reports import _auto_reply_reason, _delivery_report, _DeliveryReport
from connectors.email.parse.structure import (
    _note_mime_defects,
    _parse_mime,
    _raw_header,
    _raw_header_by_pattern,
    _split_header_block,
)
from hub.contract import Channel, ChannelEvent, DeliveryStatus, Direction, IdentityKind, JSONValue, Party

RAW_CONTENT_TYPE = "message/rfc822"

__all__ = ["RAW_CONTENT_TYPE", "SYNTHETIC_ID_DOMAIN", "parse_message"]

# Metadata is shown to agents and stored as JSON; a 50 kB To header is an attack
# or a mailing-list accident, not something to copy around.
_METADATA_TEXT_LIMIT = 998
_METADATA_LIST_LIMIT = 50


# -- the entry point ------------------------------------------------------------


def parse_message(raw: bytes, *, received_at: datetime, mailbox_address: str) -> ChannelEvent:
    """Read one raw email message into the event the hub ingests.

    ``received_at`` (the IMAP INTERNALDATE; a naive value is taken as UTC) stands
    in for a missing or unusable Date. A message From ``mailbox_address`` is
    outbound: mail the support mailbox sent, found in its Sent folder.

    Never raises for a message it cannot fully understand: it degrades and lists
    what it recovered in ``defects``. Raises :class:`ValueError` only for input
    that is empty or has no header block at its start (after at most a few
    lines that are not headers, such as a forwarding tool's separator), i.e. is
    not an email.
    """
    if not isinstance(raw, bytes | bytearray):
        raise TypeError(f"raw must be bytes, not {type(raw).__name__}")
    raw = bytes(raw)
    start, before_headers = _message_start(raw)
    received = _as_utc(received_at)
    defects: list[str] = []
    if before_headers:
        first_line = _clean_line(_sniff(before_headers.splitlines()[0])[0])
        defects.append(f"the message starts with {first_line[:80]!r}, not a header; read from the headers after it")
    try:
        return _read_message(raw, raw[start:], received, mailbox_address, defects)
    except Exception as exc:  # the last line of defence: a parser bug must not lose mail
        defects.append(f"message could not be fully parsed ({type(exc).__name__}: {exc!r}); kept as plain text")
    try:
        return _fallback_event(raw, raw[start:], received, defects)
    except Exception as exc:  # even the fallback failed: keep the bytes, findable by their hash
        defects.append(f"headers could not be read either ({type(exc).__name__}: {exc!r})")
        return ChannelEvent(
            channel=Channel.EMAIL,
            external_id=_synthetic_id(raw),
            occurred_at=received,
            direction=Direction.INBOUND,
            sender=None,
            text=_clean_text(_sniff(raw[start:])[0]),
            raw=raw,
            raw_content_type=RAW_CONTENT_TYPE,
            delivery_status=DeliveryStatus.RECEIVED,
            defects=tuple(_clean_line(defect) for defect in defects),
        )


_HEADER_START = re.compile(rb"(?:From [^\n]*\n)?[!-9;-~]+[ \t]*:")
#: Lines a forwarding or export tool may write above the headers
#: ("---- Original email message ----"); more than this is not a mail.
_MAX_LINES_BEFORE_HEADERS = 3
# A header block worth recovering names at least one of these: "Note: call me"
# under a line of text is text, not a header.
_MESSAGE_HEADER = re.compile(
    rb"^(?:From|To|Cc|Subject|Date|Message-ID|Received|Return-Path|MIME-Version)[ \t]*:", re.IGNORECASE | re.MULTILINE
)


def _message_start(raw: bytes) -> tuple[int, bytes]:
    """Offset of the first header line, and the lines before it; ValueError if there is none.

    Mail clients show a message whose headers follow a line or two that are
    not headers, so those lines are skipped (the caller notes them as a defect)
    when a real header block follows.
    """
    start = 0
    if raw.startswith(b"\xef\xbb\xbf"):  # a UTF-8 BOM some export tools prepend
        start = 3
    while start < len(raw) and raw[start] in b" \t\r\n":
        start += 1
    if start == len(raw):
        raise ValueError("not an email message: the input is empty")
    position = start
    for _ in range(_MAX_LINES_BEFORE_HEADERS + 1):
        if _HEADER_START.match(raw, position):
            if position == start or _MESSAGE_HEADER.search(_split_header_block(raw[position:])[0]):
                return position, raw[start:position]
            break
        line_end = raw.find(b"\n", position)
        if line_end == -1:
            break
        position = line_end + 1
    raise ValueError("not an email message: it does not start with a header field")


def _as_utc(moment: datetime) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _read_message(
    raw: bytes, source: bytes, received_at: datetime, mailbox_address: str, defects: list[str]
) -> ChannelEvent:
    msg, header_block = _parse_mime(source, defects)

    external_id = _message_id(msg, header_block, raw, defects)
    in_reply_to = _ids_from_header(msg, header_block, "In-Reply-To", defects)
    references = _ids_from_header(msg, header_block, "References", defects)
    subject = _subject(msg, defects)
    occurred_at = _occurred_at(msg, received_at, defects)

    from_parties = _parties(msg, "From", defects)
    sender = _sender(msg, from_parties, defects)
    to_parties = _parties(msg, "To", defects)
    cc_parties = _parties(msg, "Cc", defects)
    recipients = _recipients(to_parties, cc_parties)
    is_outbound = sender is not None and sender.address.casefold() == mailbox_address.strip().casefold()

    body = _Body()
    _collect_body(msg, body, defects)
    plain = "\n\n".join(part for part in body.plain if part.strip())
    _note_unstorable(plain, "body", defects)
    plain = _clean_text(plain)
    raw_html = "\n".join(body.html)
    text = plain if plain.strip() else _html_to_text(raw_html, drop_quotes=False, defects=defects)
    reply_text = _reply_text(text, plain, raw_html, defects)
    html = _sanitise_html(raw_html, defects)
    attachments = tuple(_named_attachments(body.attachments))
    _note_mime_defects(msg, defects)

    report = _delivery_report(msg, sender, subject, text, external_id, occurred_at, in_reply_to, references)
    auto_reply = None if report is not None else _auto_reply_reason(msg, defects)
    if report is not None:
        # A delivery report is written by a mail system, not by a person: as a
        # SYSTEM party the hub files it under the customer of the message it
        # reports on instead of making MAILER-DAEMON a customer. Some MTAs
        # write a bare "From: MAILER-DAEMON" without a domain; that is still
        # the mail system speaking.
        sender = (
            replace(sender, kind=IdentityKind.SYSTEM)
            if sender is not None
            else Party(address="MAILER-DAEMON", name="Mail Delivery System", kind=IdentityKind.SYSTEM)
        )

    thread_refs = _dedupe(
        [*(report.original_ids if report is not None else ()), *in_reply_to, *references], exclude=external_id
    )
    reply_to = [p.address for p in _parties(msg, "Reply-To", defects)]
    if not reply_to and (_raw_header(msg, "Reply-To") or "").strip():
        defects.append("Reply-To has no usable address; replies go to the sender")
    metadata = _metadata(msg, external_id, in_reply_to, references, to_parties, cc_parties, auto_reply, report)
    if reply_to and reply_to != [sender.address if sender else ""]:
        # Web forms send From a fixed address with the customer in Reply-To;
        # the reply path needs to know where the customer wants answers.
        metadata["reply_to"] = reply_to[:_METADATA_LIST_LIMIT]
    return ChannelEvent(
        channel=Channel.EMAIL,
        external_id=external_id,
        occurred_at=occurred_at,
        direction=Direction.OUTBOUND if is_outbound else Direction.INBOUND,
        sender=sender,
        recipients=tuple(recipients),
        subject=subject,
        text=text,
        reply_text=reply_text,
        html=html,
        thread_refs=tuple(thread_refs),
        attachments=attachments,
        metadata=metadata,
        raw=raw,
        raw_content_type=RAW_CONTENT_TYPE,
        delivery_status=DeliveryStatus.SENT if is_outbound else DeliveryStatus.RECEIVED,
        defects=tuple(_dedupe(_clean_line(defect) for defect in defects)),
        opens_conversation=report is None and auto_reply is None,
        updates=report.updates if report is not None else (),
    )


def _fallback_event(raw: bytes, source: bytes, received_at: datetime, defects: list[str]) -> ChannelEvent:
    """What is left when the MIME parser itself failed: headers by pattern, body as text."""
    header_block, _, body = _split_header_block(source)
    ids = _ids_in(_raw_header_by_pattern(header_block, "Message-ID") or "")
    external_id = ids[0] if ids else _synthetic_id(raw)
    refs = [
        *_ids_in(_raw_header_by_pattern(header_block, "In-Reply-To") or ""),
        *_ids_in(_raw_header_by_pattern(header_block, "References") or ""),
    ]
    subject = _clean_line(_decode_words(_raw_header_by_pattern(header_block, "Subject") or "", "Subject", defects))
    text = _clean_text(_decode_text(body, None, "body", defects))
    return ChannelEvent(
        channel=Channel.EMAIL,
        external_id=external_id,
        occurred_at=received_at,
        direction=Direction.INBOUND,
        sender=None,
        subject=subject,
        text=text,
        thread_refs=tuple(_dedupe(refs, exclude=external_id)),
        metadata={"message_id": external_id, "auto_reply": False, "bounce": False},
        raw=raw,
        raw_content_type=RAW_CONTENT_TYPE,
        delivery_status=DeliveryStatus.RECEIVED,
        defects=tuple(_dedupe(defects)),
    )


def _metadata(
    msg: Message,
    external_id: str,
    in_reply_to: list[str],
    references: list[str],
    to_parties: list[Party],
    cc_parties: list[Party],
    auto_reply: str | None,
    report: _DeliveryReport | None,
) -> dict[str, JSONValue]:
    """Small, JSON-safe facts about the message for display and for later lookups."""
    metadata: dict[str, JSONValue] = {
        "message_id": external_id,
        "in_reply_to": in_reply_to[0] if in_reply_to else None,
        "references_count": len(references),
        "from": _header_text(msg, "From", [])[:_METADATA_TEXT_LIMIT],
        "to": [p.address for p in to_parties][:_METADATA_LIST_LIMIT],
        "cc": [p.address for p in cc_parties][:_METADATA_LIST_LIMIT],
        "auto_reply": auto_reply is not None,
        "bounce": report is not None and report.bounced,
    }
    list_id = _raw_header(msg, "List-Id")
    if list_id:
        metadata["list_id"] = _clean_line(_repair_surrogates(list_id, "List-Id", []))[:_METADATA_TEXT_LIMIT]
    if auto_reply is not None:
        metadata["auto_reply_reason"] = auto_reply[:_METADATA_TEXT_LIMIT]
    if report is not None:
        metadata["delivery_report"] = report.action or "unknown"
        metadata["bounced_recipients"] = [r.address for r in report.recipients if r.address][:_METADATA_LIST_LIMIT]
    return metadata
