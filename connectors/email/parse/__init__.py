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
"""

from __future__ import annotations

import binascii
import codecs
import functools
import hashlib
import io
import mimetypes
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from email import errors as email_errors
from email import policy
from email.generator import BytesGenerator
from email.message import Message
from email.parser import BytesParser
from email.utils import collapse_rfc2231_value, getaddresses, parsedate_to_datetime
from typing import Any

from hub.events import (
    FUTURE_TOLERANCE,
    Attachment,
    Channel,
    ChannelEvent,
    DeliveryStatus,
    Direction,
    IdentityKind,
    InteractionUpdate,
    JSONValue,
    Party,
)
from hub.sanitise import UnsanitisableHtml, html_to_text, sanitise_html

RAW_CONTENT_TYPE = "message/rfc822"
#: Domain of the synthetic Message-ID given to a message that has none. The
#: ``.invalid`` TLD (RFC 2606) can never collide with a real mail domain.
SYNTHETIC_ID_DOMAIN = "corridor.invalid"

# Every pattern is compiled once, here: the stdlib parser compiles a new one for
# each multipart boundary, which would evict these from re's cache and have
# them compiled again and again during a backfill.
_CAMEL_CASE_GAP = re.compile(r"(?<!^)(?=[A-Z])")
_FOLD = re.compile(r"\r?\n(?=[ \t])")
_WHITESPACE = re.compile(r"\s+")
_Q_ESCAPE = re.compile(rb"=([0-9A-Fa-f]{2})")
_LIST_SEPARATOR = re.compile(r"[\s,]+")
_UNKNOWN_ZONE = re.compile(r"-0000\s*(\(.*\))?$")
_ADDRESS_BREAKER = re.compile(r"[\s<>]")
_LABEL_PUNCTUATION = re.compile(r"[-_ ]")
_BLANK_LINES = re.compile(r"\n{3,}")
_META_CHARSET = re.compile(rb"<meta[^>]+charset=[\"']?([\w.:-]+)", re.IGNORECASE)
_PATH_SEPARATOR = re.compile(r"[\\/]")
_DIGIT_OR_AT = re.compile(r"\d|@")
_DELAY_WARNING = re.compile(r"\b(delay(ed)?|warning)\b", re.IGNORECASE)
_PARAGRAPH_BREAK_CRLF = re.compile(r"\r?\n\s*\r?\n")
_REPORT_FIELD = re.compile(r"^([A-Za-z-]+)[ \t]*:(.*(?:\r?\n[ \t].*)*)", re.MULTILINE)
_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")
_BOUNCED_ADDRESS = re.compile(r"<?([^\s<>@:;,]+@[^\s<>@:;,]+\.[^\s<>@:;,]+?)>?:?\s")
# Metadata is shown to agents and stored as JSON; a 50 kB To header is an attack
# or a mailing-list accident, not something to copy around.
_METADATA_TEXT_LIMIT = 998
_METADATA_LIST_LIMIT = 50
_ERROR_MESSAGE_LIMIT = 1000


# -- the entry point ------------------------------------------------------------


def parse_message(raw: bytes, *, received_at: datetime, mailbox_address: str) -> ChannelEvent:
    """Read one raw email message into the event the hub ingests.

    ``received_at`` (the IMAP INTERNALDATE; a naive value is taken as UTC) stands
    in for a missing or unusable Date. A message From ``mailbox_address`` is
    outbound: mail the support mailbox sent, found in its Sent folder.

    Never raises for a message it cannot fully understand: it degrades and lists
    what it recovered in ``defects``. Raises :class:`ValueError` only for input
    that is empty or does not start with a header field, i.e. is not an email.
    """
    if not isinstance(raw, bytes | bytearray):
        raise TypeError(f"raw must be bytes, not {type(raw).__name__}")
    raw = bytes(raw)
    start = _message_start(raw)
    received = _as_utc(received_at)
    defects: list[str] = []
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


def _message_start(raw: bytes) -> int:
    """Offset of the first header line; ValueError if there is none."""
    start = 0
    if raw.startswith(b"\xef\xbb\xbf"):  # a UTF-8 BOM some export tools prepend
        start = 3
    while start < len(raw) and raw[start] in b" \t\r\n":
        start += 1
    if start == len(raw):
        raise ValueError("not an email message: the input is empty")
    if not _HEADER_START.match(raw, start):
        raise ValueError("not an email message: it does not start with a header field")
    return start


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
    plain = _clean_text("\n\n".join(part for part in body.plain if part.strip()))
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


# -- MIME structure -------------------------------------------------------------


_BLANK_LINE = re.compile(rb"\r?\n\r?\n")
# What Python's feedparser accepts as a header line: a name and a colon, or a fold.
_PARSER_HEADER_LINE = re.compile(rb"^(?:From |[!-9;-~]+:|[ \t])")
# RFC 5322's obsolete syntax allows blanks before the colon ("Message-ID : <...>");
# Python does not, and would end the headers there.
_OBSOLETE_NAME = re.compile(rb"^([!-9;-~]+)[ \t]+:")


def _split_header_block(source: bytes) -> tuple[bytes, bytes, bytes]:
    """(header block, separator, body), split at the first blank line."""
    match = _BLANK_LINE.search(source)
    if match is None:
        return source, b"", b""
    return source[: match.start()], match.group(), source[match.end() :]


def _parse_mime(source: bytes, defects: list[str]) -> tuple[Message, bytes]:
    """The parsed message and its raw header block, with a broken header block repaired first.

    Python's parser ends the headers at the first line it does not accept and
    makes every header after it (often the Message-ID) body text. Two kinds of
    line cause that on real mail: a field name with blanks before its colon
    (obsolete but legal syntax) and a long header folded by a broken mailer
    without the leading whitespace. The first is rewritten; the second is joined
    to the header above it when another header follows it. A nameless line at
    the end of the block is more likely the body starting without its blank
    line, and is left alone.
    """
    header_block, separator, body = _split_header_block(source)
    lines = header_block.splitlines(keepends=True)
    renamed = 0
    for i, line in enumerate(lines):
        obsolete = None if _PARSER_HEADER_LINE.match(line) else _OBSOLETE_NAME.match(line)
        if obsolete is not None:
            lines[i] = obsolete.group(1) + b":" + line[obsolete.end() :]
            renamed += 1
    named = [i for i, line in enumerate(lines) if _PARSER_HEADER_LINE.match(line) and line[:1] not in b" \t"]
    last_header = named[-1] if named else -1
    orphans = [i for i in range(1, max(last_header, 0)) if not _PARSER_HEADER_LINE.match(lines[i]) and lines[i].strip()]
    for i in orphans:
        lines[i] = b" " + lines[i]
    if renamed:
        defects.append(f"{renamed} header name(s) with blanks before the colon read as headers")
    if orphans:
        defects.append(f"{len(orphans)} header line(s) without a name joined to the header above (broken folding)")
    if renamed or orphans:
        header_block = b"".join(lines)
        source = header_block + separator + body
    # The structure is parsed with compat32: it is ten times faster than the
    # default policy (which re-parses Content-Type on every access) and never
    # raises when a header is read. Headers are then read raw and decoded where
    # they are used, with email.policy.default's own header parsers for
    # addresses (_policy_header) and our charset fallbacks for everything else.
    msg = BytesParser(_Part, policy=policy.compat32).parsebytes(source)
    return msg, header_block


class _Part(Message):
    """A parsed message or MIME part that works out each header and parameter once.

    compat32's Message scans (and lower-cases) its whole header list on every
    lookup and parses Content-Type again for every parameter asked for, and
    the readers below ask a message some twenty such questions (about 6 % of
    the parser's time saved). A part is never changed after parsing, so an
    answer, once worked out, stays right.
    """

    def __init__(self, policy: policy.Policy = policy.compat32) -> None:
        super().__init__(policy)
        #: Lower-cased header name -> its first value, as written.
        self.first_values: dict[str, Any] | None = None
        #: What _content_type() found.
        self.content_type: str | None = None
        #: Content-Type's parameters as get_params() reads them (None: unreadable).
        self.params: list[tuple[str, Any]] | None = None
        self.params_read = False


def _note_mime_defects(msg: Message, defects: list[str]) -> None:
    """Structural problems Python's parser recorded, in words (e.g. "close boundary not found")."""
    for part in _walk(msg):
        for defect in getattr(part, "defects", ()):
            words = _CAMEL_CASE_GAP.sub(" ", type(defect).__name__.removesuffix("Defect")).lower()
            defects.append(f"MIME: {words} ({_content_type(part)})")


def _walk(part: Message, depth: int = 0) -> Iterator[Message]:
    """All parts, depth-first, without recursing forever into hostile nesting."""
    yield part
    if depth <= 50:
        for child in _children(part):
            yield from _walk(child, depth + 1)


def _children(part: Message) -> list[Message]:
    """The sub-parts of a multipart or message/* part; [] for a leaf."""
    # get_payload() on a leaf decodes 8-bit text with the part's charset label
    # and raises ValueError on a label holding a NUL; on a container it only
    # returns the list.
    if not part.is_multipart():
        return []
    payload = part.get_payload()
    return [child for child in payload if isinstance(child, Message)] if isinstance(payload, list) else []


_MIME_TYPE = re.compile(r"[a-z0-9!#$&^_.+-]+/[a-z0-9!#$&^_.+-]+")


def _content_type(part: Message) -> str:
    if isinstance(part, _Part):
        if part.content_type is None:
            part.content_type = _read_content_type(part)
        return part.content_type
    return _read_content_type(part)


def _read_content_type(part: Message) -> str:
    try:
        ctype = part.get_content_type()
    except Exception:  # a broken Content-Type reads as RFC 2045's default
        return "text/plain"
    return ctype if _MIME_TYPE.fullmatch(ctype) else "text/plain"


# -- headers --------------------------------------------------------------------


def _raw_header(msg: Message, name: str) -> str | None:
    """The first value of header ``name`` as written (unfolded, not decoded)."""
    wanted = name.lower()
    if isinstance(msg, _Part):
        if msg.first_values is None:
            msg.first_values = {}
            for key, value in msg.raw_items():
                msg.first_values.setdefault(key.lower(), value)
        found = msg.first_values.get(wanted)
        return None if found is None else _unfold(found)
    for key, value in msg.raw_items():
        if key.lower() == wanted:
            return _unfold(value)
    return None


def _unfold(value: Any) -> str:
    return _FOLD.sub("", str(value)).replace("\r", " ").replace("\n", " ")


@functools.cache
def _header_pattern(name: str) -> re.Pattern[bytes]:
    return re.compile(rb"^" + re.escape(name.encode()) + rb"[ \t]*:(.*(?:\r?\n[ \t].*)*)", re.IGNORECASE | re.MULTILINE)


def _raw_header_by_pattern(header_block: bytes, name: str) -> str | None:
    """Header ``name`` found by pattern in the raw header block, for when the parser lost it."""
    match = _header_pattern(name).search(header_block)
    if match is None:
        return None
    return _WHITESPACE.sub(" ", match.group(1).decode("utf-8", "surrogateescape")).strip()


def _policy_header(name: str, raw_value: str) -> Any:
    """Header ``name`` parsed by ``email.policy.default`` (RFC 5322 syntax, RFC 2047 words)."""
    return policy.default.header_factory(name, raw_value)


# Address headers as most mail writes them: "Jane Doe <jane@example.org>" or a
# bare address, comma-separated, ASCII, without quotes, comments, groups or
# encoded words. email.policy.default needs about 0.1 ms for one of those (a
# third of the parser's time in a backfill); this pattern reads it with the
# same result (a property test holds the two to that), and anything else still
# goes to the policy.
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]"
_DOT_ATOM = rf"{_ATEXT}+(?:\.{_ATEXT}+)*"
_SIMPLE_MAILBOX = re.compile(
    rf"[ \t]*(?:(?:((?:{_ATEXT}+ )*{_ATEXT}+) *)?<({_DOT_ATOM}@{_DOT_ATOM})>|({_DOT_ATOM}@{_DOT_ATOM}))[ \t]*"
)
_ADDRESS_HEADERS = frozenset({"From", "To", "Cc", "Bcc", "Reply-To", "Sender"})
_NOT_SIMPLE = re.compile(r'["()\\;:\[\]]|=\?')


def _simple_addresses(raw_value: str) -> list[tuple[str, str]] | None:
    """(display name, address) pairs of a plain address header; None when it is not that simple."""
    if not raw_value.isascii() or _NOT_SIMPLE.search(raw_value):
        return None
    found = []
    for item in raw_value.split(","):
        match = _SIMPLE_MAILBOX.fullmatch(item)
        if match is None:
            return None
        found.append((match.group(1) or "", match.group(2) or match.group(3)))
    return found


def _header_text(msg: Message, name: str, defects: list[str]) -> str:
    """Header ``name`` decoded by ``email.policy.default``, with our own decoder as fallback."""
    raw_value = _raw_header(msg, name)
    if raw_value is None:
        return ""
    simple = _simple_addresses(raw_value) if name in _ADDRESS_HEADERS else None
    if simple is not None:
        return ", ".join(f"{display} <{address}>" if display else address for display, address in simple)
    try:
        header = _policy_header(name, raw_value)
        decoded = str(header)
        charset_trouble = any(
            isinstance(d, email_errors.CharsetError | email_errors.UndecodableBytesDefect)
            for d in getattr(header, "defects", ())
        )
    except Exception as exc:  # the stdlib header parser has crashed on real mail before
        defects.append(f"{name} header could not be parsed ({type(exc).__name__}); decoded leniently")
        return _clean_line(_decode_words(raw_value, name, defects))
    # Python decodes undeclared 8-bit and unknown charsets as UTF-8 with U+FFFD,
    # which turns a Latin-1 "café" into "caf?". Our decoder knows more charsets.
    if charset_trouble or ("\ufffd" in decoded and "\ufffd" not in raw_value) or _has_surrogates(decoded):
        return _clean_line(_decode_words(raw_value, name, defects))
    return _clean_line(decoded)


_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([QqBb])\?([^?\s]*)\?=")
_BETWEEN_WORDS = re.compile(r"(\?=)[ \t]+(?==\?)")


def _decode_words(value: str, where: str, defects: list[str]) -> str:
    """Decode RFC 2047 encoded words and stray 8-bit bytes with our charset fallbacks."""
    value = _BETWEEN_WORDS.sub(r"\1", value)  # whitespace between encoded words is not text (RFC 2047 6.2)

    def decode_word(match: re.Match[str]) -> str:
        charset, encoding, payload = match.groups()
        charset = charset.split("*", 1)[0]  # RFC 2231 language suffix: utf-8*en
        data = payload.encode("ascii", "surrogateescape")
        try:
            if encoding in "Bb":
                data = binascii.a2b_base64(data + b"=" * (-len(data) % 4))
            else:
                data = _Q_ESCAPE.sub(lambda m: bytes([int(m.group(1), 16)]), data.replace(b"_", b" "))
        except (binascii.Error, ValueError):
            defects.append(f"{where}: an encoded word could not be decoded; kept as written")
            return match.group()
        return _decode_text(data, charset, where, defects)

    return _repair_surrogates(_ENCODED_WORD.sub(decode_word, value), where, defects)


def _message_id(msg: Message, header_block: bytes, raw: bytes, defects: list[str]) -> str:
    value = _raw_header(msg, "Message-ID")
    if value is None:
        value = _raw_header_by_pattern(header_block, "Message-ID")
        if value is not None:
            defects.append("Message-ID recovered by pattern from the raw headers")
    ids = _ids_in(value or "")
    if not ids:
        if value and value.strip():
            defects.append(f"Message-ID {value.strip()[:80]!r} is unusable; synthetic id used")
        else:
            defects.append("no Message-ID; synthetic id derived from the message content")
        return _synthetic_id(raw)
    if "<" not in (value or ""):
        defects.append("Message-ID without angle brackets")
    return ids[0]


def _synthetic_id(raw: bytes) -> str:
    # The same bytes fetched again (a resync, a second label folder) get the same
    # id, so the hub's (channel, external_id) dedupe still holds.
    return f"sha256:{hashlib.sha256(raw).hexdigest()}@{SYNTHETIC_ID_DOMAIN}"


def _ids_from_header(msg: Message, header_block: bytes, name: str, defects: list[str]) -> list[str]:
    value = _raw_header(msg, name)
    if value is None:
        value = _raw_header_by_pattern(header_block, name)
        if value is None:
            return []
        defects.append(f"{name} recovered by pattern from the raw headers")
    return _ids_in(value)


_BRACKETED_ID = re.compile(r"<([^<>]*)>")
_ID_NOISE = re.compile(r"[\s\x00-\x1f\x7f]+")


def _ids_in(value: str) -> list[str]:
    """Message-IDs in a header value, brackets and stray whitespace removed, case kept.

    Bracketed ids win; only a value without any is split into bare tokens (some
    mailers write ``In-Reply-To: 1234.5678@host``). Whitespace inside brackets
    is a fold in the wrong place, never part of the id.
    """
    ids = [_ID_NOISE.sub("", found) for found in _BRACKETED_ID.findall(value)]
    ids = [i for i in ids if i]
    if not ids:
        tokens = _LIST_SEPARATOR.split(value)
        ids = [_ID_NOISE.sub("", token).strip("<>\"'()[];") for token in tokens if "@" in token]
    return _dedupe(_repair_surrogates(i, "message id", []) for i in ids if i)


def _subject(msg: Message, defects: list[str]) -> str:
    # Our own decoder, not the policy's: real subjects carry encoded words in
    # misspelt charsets and raw 8-bit text, which it turns into U+FFFD.
    return _clean_line(_decode_words(_raw_header(msg, "Subject") or "", "Subject", defects))


def _occurred_at(msg: Message, received_at: datetime, defects: list[str]) -> datetime:
    value = (_raw_header(msg, "Date") or "").strip()
    if not value:
        defects.append("no Date header; the time the mailbox received it is used")
        return received_at
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        defects.append(f"Date {value[:80]!r} is unreadable; the time the mailbox received it is used")
        return received_at
    if moment.tzinfo is None:
        # parsedate_to_datetime returns naive for "-0000" (RFC 5322: UTC, local
        # zone unknown), which is not a defect, and for a missing zone, which is.
        if not _UNKNOWN_ZONE.search(value):
            defects.append("Date has no time zone; read as UTC")
        moment = moment.replace(tzinfo=UTC)
    moment = moment.astimezone(UTC)
    if moment - received_at > FUTURE_TOLERANCE:
        defects.append(f"Date {value[:80]!r} is after the mailbox received it; the received time is used")
        return received_at
    return moment


# -- addresses ------------------------------------------------------------------


def _usable(address: str) -> bool:
    """An address mail can be sent to: a local part, an "@" and a domain."""
    local, at, domain = address.rpartition("@")
    if "@" in local and not local.startswith('"'):  # "a@@b": only a quoted local part may hold an "@"
        return False
    return bool(at and local and domain) and _ADDRESS_BREAKER.search(address) is None


def _parties(msg: Message, name: str, defects: list[str]) -> list[Party]:
    """The addresses in header ``name``, unusable ones dropped, each address once.

    Never raises: a malformed Reply-To or Cc must not cost the message.
    """
    try:
        return _read_parties(msg, name, defects)
    except Exception as exc:  # the header is lost, the message is not
        defects.append(f"{name} header could not be read ({type(exc).__name__}); ignored")
        return []


def _read_parties(msg: Message, name: str, defects: list[str]) -> list[Party]:
    raw_value = _raw_header(msg, name)
    if raw_value is None or not raw_value.strip():
        return []
    for charset, _, _ in _ENCODED_WORD.findall(raw_value):
        # The policy decodes these silently (often correctly, by luck); say so.
        label = charset.split("*", 1)[0].lower()
        if label not in _UNLABELLED and _codec(label) is None:
            defects.append(f"{name}: encoded word in unknown charset {label!r}; read as utf-8 or cp1252")
    found = _simple_addresses(raw_value) or []
    try:
        if not found:
            header = _policy_header(name, raw_value)
            found = [(a.display_name, a.addr_spec) for a in getattr(header, "addresses", ())]
    except Exception as exc:  # broken address headers are common; fall back below
        defects.append(f"{name} header could not be parsed ({type(exc).__name__})")
    if not any(_usable(address) for _, address in found):
        # The strict parser gave nothing usable; the lenient compat parser often
        # still finds the address in "Jane <jane@example.com" and the like.
        try:
            lenient = getaddresses([_decode_words(raw_value, name, defects)])
        except Exception:  # nothing more to recover
            lenient = []
        if any(_usable(address) for _, address in lenient):
            defects.append(f"{name} header is malformed; addresses recovered leniently")
            found = lenient
    parties: list[Party] = []
    seen: set[str] = set()
    for display_name, address in found:
        address = _clean_line(_repair_surrogates(address, name, defects)).strip("<>")
        if not _usable(address) or address.casefold() in seen:
            continue
        seen.add(address.casefold())
        display = _clean_line(_repair_surrogates(display_name, name, defects))
        parties.append(Party(address=address, name=display, kind=IdentityKind.EMAIL))
    return parties


def _sender(msg: Message, from_parties: list[Party], defects: list[str]) -> Party | None:
    """From, or Reply-To and then Sender when From names nobody reachable."""
    if from_parties:
        return from_parties[0]
    for name in ("Reply-To", "Sender"):
        parties = _parties(msg, name, defects)
        if parties:
            defects.append(f"From has no usable address; sender taken from {name}")
            return parties[0]
    defects.append("no usable sender address in From, Reply-To or Sender")
    return None


def _recipients(to_parties: list[Party], cc_parties: list[Party]) -> list[Party]:
    seen: set[str] = set()
    recipients: list[Party] = []
    # To before Cc: for mail the mailbox sent, recipients[0] is the customer.
    for party in [*to_parties, *cc_parties]:
        if party.address.casefold() not in seen:
            seen.add(party.address.casefold())
            recipients.append(party)
    return recipients


# -- text and charsets ----------------------------------------------------------

# Labels seen on real mail that Python does not know, and what their senders meant.
_CHARSET_MISSPELLINGS = {
    "uft-8": "utf-8",
    "ut-8": "utf-8",
    "utf-8y": "utf-8",
    "unicode-1-1-utf-8": "utf-8",
    "x-unicode20utf8": "utf-8",
    "cp-1252": "cp1252",
    "win-1252": "cp1252",
    "windows1252": "cp1252",
    "iso-8859-8-i": "iso8859-8",
    "x-sjis": "cp932",
    "x-mac-roman": "mac_roman",
    "x-euc-jp": "euc_jp",
    "x-gbk": "gb18030",
}
# Labels that name no charset at all: the bytes have to be sniffed.
_UNLABELLED = {
    *("", "us-ascii", "ascii", "us_ascii", "ansi_x3.4-1968"),
    *("unknown-8bit", "x-unknown", "unknown", "8bit", "default", "x-user-defined"),
}
# Senders label text with a charset and then use its common superset (Windows
# code pages, GB18030): decoding with the superset reads what they meant and is
# not a defect (the WHATWG encoding standard does the same).
_SUPERSETS = {
    "latin-1": "cp1252",
    "iso8859-1": "cp1252",
    "iso8859-9": "cp1254",
    "iso8859-11": "cp874",
    "tis-620": "cp874",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "euc_kr": "cp949",
    "shift_jis": "cp932",
    "big5": "big5hkscs",
}
# ISO-2022-JP mail from Windows (Microsoft's CP50220/50221) carries Windows-31J
# characters Python's codecs reject: circled digits, Roman numerals, "㈱".
# _decode_windows_iso2022_jp reads them; Python's own variants come first.
_WINDOWS_ISO2022_JP = "x-windows-iso2022jp"
_EXTENSIONS = {"iso2022_jp": ("iso2022_jp", "iso2022_jp_ext", "iso2022_jp_2", _WINDOWS_ISO2022_JP)}
_UTF8_MULTIBYTE = re.compile(rb"[\xc2-\xf4][\x80-\xbf]+")


_CHARSET_LABEL = re.compile(r"[A-Za-z0-9._:+() -]{1,64}")
# Python codecs that are no charset: a label naming one is as good as unknown.
_NOT_CHARSETS = {"undefined", "idna", "punycode", "unicode_escape", "raw_unicode_escape", "mbcs", "oem"}


def _codec(label: str) -> str | None:
    """The Python text codec for a charset label, or None when it names none."""
    if not _CHARSET_LABEL.fullmatch(label):
        return None  # codecs.lookup raises ValueError, not LookupError, on NULs and surrogates
    for candidate in (label, label.replace("_", "-"), _LABEL_PUNCTUATION.sub("", label)):
        try:
            name = codecs.lookup(candidate).name
            b"".decode(name)  # LookupError for bytes-to-bytes codecs (base64, zlib, rot13)
        except LookupError:
            continue
        return None if name in _NOT_CHARSETS else name
    return None


def _sniff(data: bytes) -> tuple[str, str]:
    """(text, codec) for bytes of unknown charset: UTF-8 if it is valid, else Windows-1252."""
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        # cp1252 maps every byte but five; those become U+FFFD, which is still
        # readable, where a strict decode would lose the whole message.
        return data.decode("cp1252", "replace"), "cp1252"


def _decode_text(data: bytes, declared: str | None, where: str, defects: list[str]) -> str:
    """Bytes to readable text, whatever the declared charset says.

    Tries, in order: the declared charset (or the superset senders mean by it),
    a known misspelling, and finally sniffing (UTF-8, else Windows-1252). Every
    step that departs from what the message declared is recorded in ``defects``.
    """
    if not data:
        return ""
    label = (declared or "").strip().strip("\"'").lower()
    if label in _UNLABELLED:
        if data.isascii():
            return data.decode("ascii")
        text, used = _sniff(data)
        described = f"charset {label!r}" if label else "no charset"
        defects.append(f"{where}: {described} but 8-bit text; read as {used}")
        return text
    codec = _CHARSET_MISSPELLINGS.get(label) or _codec(label)
    if codec is None:
        text, used = _sniff(data)
        defects.append(f"{where}: unknown charset {label!r}; read as {used}")
        return text
    if label in _CHARSET_MISSPELLINGS and _codec(label) is None:
        defects.append(f"{where}: misspelt charset {label!r} read as {codec}")
    # Mail labelled Latin-1 that is really UTF-8 (a webmail that forgot to
    # update its header) would read as "CafÃ©"; valid multi-byte UTF-8 is
    # practically never accidental in Latin text.
    if codec in {"ascii", "latin-1", "iso8859-1", "cp1252", "iso8859-15"} and _UTF8_MULTIBYTE.search(data):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            pass
        else:
            defects.append(f"{where}: labelled {label!r} but the text is UTF-8; read as utf-8")
            return text
    for candidate in _EXTENSIONS.get(codec, (_SUPERSETS.get(codec, codec),)):
        try:
            if candidate == _WINDOWS_ISO2022_JP:
                return _decode_windows_iso2022_jp(data)
            return data.decode(candidate)
        except (UnicodeDecodeError, LookupError):
            continue
    if codec != "utf-8":
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            pass
        else:
            defects.append(f"{where}: not valid {label!r}; the text is UTF-8, read as utf-8")
            return text
    elif not _UTF8_MULTIBYTE.search(data):
        # Labelled UTF-8 without a single UTF-8 sequence: a Windows client
        # that mislabelled its ANSI code page.
        defects.append(f"{where}: labelled {label!r} but not UTF-8; read as cp1252")
        return data.decode("cp1252", "replace")
    defects.append(f"{where}: invalid bytes for charset {label!r}; unreadable characters replaced")
    try:
        return data.decode(_SUPERSETS.get(codec, codec), "replace")
    except (LookupError, UnicodeError):  # codecs whose error handling ignores "replace"
        return _sniff(data)[0]


_ISO2022_JP_ESCAPE = re.compile(rb"\x1b(\(B|\(J|\(I|\$@|\$B)")


def _decode_windows_iso2022_jp(data: bytes) -> str:
    """ISO-2022-JP as Windows writes it, read through its Shift_JIS twin (cp932).

    Each JIS X 0208 byte pair maps arithmetically onto a Shift_JIS pair, and
    cp932 knows the NEC and IBM extension rows that ISO-2022-JP proper lacks.
    Raises UnicodeDecodeError like a codec when the bytes are not ISO-2022-JP.
    """
    shift_jis = bytearray()
    mode = b"(B"
    position = 0
    for match in [*_ISO2022_JP_ESCAPE.finditer(data), None]:
        end = match.start() if match is not None else len(data)
        chunk = data[position:end]
        if mode in {b"$@", b"$B"}:
            pairs = chunk.replace(b"\r", b"").replace(b"\n", b"")
            if len(pairs) % 2 or not all(0x21 <= byte <= 0x7E for byte in pairs):
                raise UnicodeDecodeError("iso2022_jp", data, position, end, "not a JIS X 0208 byte pair")
            for first, second in zip(pairs[::2], pairs[1::2], strict=True):
                lead = ((first - 0x21) >> 1) + 0x81
                trail = second + (0x1F if first % 2 else 0x7E)
                if first % 2 and trail >= 0x7F:
                    trail += 1
                shift_jis += bytes([lead + 0x40 if lead > 0x9F else lead, trail])
        elif mode == b"(I":  # half-width katakana: JIS X 0201 bytes shifted up
            shift_jis += bytes(byte + 0x80 for byte in chunk if 0x21 <= byte <= 0x5F)
        else:
            shift_jis += chunk
        if match is not None:
            mode = match.group(1)
            position = match.end()
    return bytes(shift_jis).decode("cp932")


_SURROGATES = re.compile(r"[\udc80-\udcff]+")
_LONE_SURROGATES = re.compile(r"[\ud800-\udfff]")


def _has_surrogates(value: str) -> bool:
    return _LONE_SURROGATES.search(value) is not None


def _repair_surrogates(value: str, where: str, defects: list[str]) -> str:
    """Turn bytes Python kept as lone surrogates back into readable characters.

    The stdlib parser keeps undeclared 8-bit bytes in headers as surrogate
    escapes; they would make the text unstorable (not encodable as UTF-8).
    Each run is decoded on its own so that correctly decoded text around it
    is left untouched.
    """
    if not _has_surrogates(value):
        return value

    def decode_run(match: re.Match[str]) -> str:
        data = match.group().encode("utf-8", "surrogateescape")
        text, used = _sniff(data)
        if used != "utf-8":
            defects.append(f"{where}: undeclared 8-bit text read as {used}")
        return text

    repaired = _SURROGATES.sub(decode_run, value)
    return _LONE_SURROGATES.sub("\ufffd", repaired)


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")


def _clean_line(value: str) -> str:
    """A header value fit for one line of display: no controls, no line breaks."""
    value = _LONE_SURROGATES.sub("\ufffd", value)
    return _WHITESPACE.sub(" ", _CONTROL.sub("", value)).strip()


def _clean_text(value: str) -> str:
    """Body text with one newline convention and nothing a database rejects (NUL)."""
    value = _LONE_SURROGATES.sub("\ufffd", value).replace("\r\n", "\n").replace("\r", "\n")
    value = _CONTROL.sub("", value)
    return _BLANK_LINES.sub("\n\n", "\n".join(line.rstrip() for line in value.split("\n"))).strip("\n")


def _unflow(text: str, delete_space: bool) -> str:
    """Undo RFC 3676 format=flowed: soft line breaks rejoined, quote depth kept."""
    out: list[str] = []
    pending: list[str] = []
    pending_depth = 0

    def flush() -> None:
        out.append(">" * pending_depth + (" " if pending_depth else "") + "".join(pending))
        pending.clear()

    for line in text.split("\n"):
        depth = len(line) - len(line.lstrip(">"))
        content = line[depth:]
        content = content.removeprefix(" ")  # space-stuffing (RFC 3676 4.4)
        if pending and depth != pending_depth:
            flush()  # a quote depth change ends a paragraph, whatever the sender flowed
        pending_depth = depth
        soft = content.endswith(" ") and content != "-- "
        pending.append(content[:-1] if soft and delete_space else content)
        if not soft:
            flush()
    if pending:
        flush()
    return "\n".join(out)


# -- body and attachments -------------------------------------------------------


@dataclass
class _Body:
    plain: list[str] = field(default_factory=list)
    html: list[str] = field(default_factory=list)
    attachments: list[_Found] = field(default_factory=list)


@dataclass(frozen=True)
class _Found:
    """An attachment before it is named (unnamed ones are numbered at the end)."""

    filename: str
    content_type: str
    content: bytes
    content_id: str | None
    inline: bool


def _collect_body(part: Message, body: _Body, defects: list[str], depth: int = 0) -> None:
    """Sort a MIME tree into plain text, HTML and attachments."""
    ctype = _content_type(part)
    maintype = ctype.split("/", 1)[0]
    if maintype == "multipart" and part.is_multipart() and depth <= 50:
        children = _children(part)
        if ctype == "multipart/alternative":
            _collect_alternative(children, body, defects, depth)
        elif ctype == "multipart/report" and children:
            # RFC 6522: the first part is for humans; the rest (the machine-readable
            # report, the returned message) are kept as attachments.
            _collect_body(children[0], body, defects, depth + 1)
            for child in children[1:]:
                body.attachments.append(_attachment(child, defects))
        else:
            for child in children:
                _collect_body(child, body, defects, depth + 1)
        return
    if maintype == "multipart":
        # A multipart without a usable boundary: Python leaves the body as one
        # string. Showing it as text beats hiding the customer's words.
        defects.append(f"{ctype} without usable parts; its body is shown as text")
        body.plain.append(_part_text(part, defects))
        return
    subtype = ctype.split("/", 1)[-1]
    if maintype == "text" and subtype in {"plain", "html"} and not _is_attached_file(part):
        if subtype == "plain":
            body.plain.append(_part_text(part, defects))
        else:
            body.html.append(_part_text(part, defects))
        return
    body.attachments.append(_attachment(part, defects))


def _collect_alternative(children: list[Message], body: _Body, defects: list[str], depth: int) -> None:
    """multipart/alternative: the plain version for text, the richest HTML for display."""
    versions = []
    for child in children:
        version = _Body()
        _collect_body(child, version, defects, depth + 1)
        versions.append(version)
    plain = next((v.plain for v in versions if any(p.strip() for p in v.plain)), [])
    # RFC 2046: the last alternative is the richest, so its HTML wins.
    html = next((v.html for v in reversed(versions) if v.html), [])
    body.plain.extend(plain)
    body.html.extend(html)
    for version in versions:
        body.attachments.extend(version.attachments)


def _is_attached_file(part: Message) -> bool:
    try:
        return part.get_content_disposition() == "attachment" or bool(part.get_filename())
    except Exception:  # an unreadable disposition: treat the part as body
        return False


def _param(part: Message, name: str) -> str | None:
    """Parameter ``name`` of the part's Content-Type, RFC 2231 values decoded."""
    if not isinstance(part, _Part):
        try:
            value = part.get_param(name)
        except Exception:  # a broken Content-Type parameter means "not given"
            return None
    else:
        # get_param() parses the whole header for each parameter; a part is
        # asked for three or four. The first with the name wins, as there.
        if not part.params_read:
            try:
                part.params = part.get_params()
            except Exception:  # a broken Content-Type parameter means "not given"
                part.params = None
            part.params_read = True
        wanted = name.lower()
        value = next((v for k, v in part.params or () if k.lower() == wanted), None)
    if isinstance(value, tuple):  # RFC 2231: (charset, language, value)
        return collapse_rfc2231_value(value)
    return str(value) if value is not None else None


def _part_bytes(part: Message, defects: list[str]) -> bytes:
    """The decoded content of a leaf part (Content-Transfer-Encoding undone)."""
    try:
        payload = part.get_payload(decode=True)
    except Exception as exc:  # a broken transfer encoding must not cost the message
        defects.append(f"{_content_type(part)} part could not be decoded ({type(exc).__name__}); kept as sent")
        payload = None
    if isinstance(payload, bytes):
        return payload
    return _serialised_payload(part, defects)


def _serialised_payload(part: Message, defects: list[str]) -> bytes:
    """The body of a part Python parsed into sub-messages (message/rfc822, delivery reports)."""
    buffer = io.BytesIO()
    try:
        BytesGenerator(buffer, mangle_from_=False, policy=policy.compat32.clone(linesep="\r\n")).flatten(part)
    except Exception as exc:  # the generator cannot re-create every broken message
        defects.append(f"{_content_type(part)} part could not be re-serialised ({type(exc).__name__})")
        return b""
    return _split_header_block(buffer.getvalue())[2]


def _part_text(part: Message, defects: list[str]) -> str:
    data = _part_bytes(part, defects)
    ctype = _content_type(part)
    charset = _param(part, "charset")
    if charset is None and ctype == "text/html":
        meta = _META_CHARSET.search(data[:4096])
        charset = meta.group(1).decode("ascii") if meta else None
    text = _decode_text(data, charset, ctype, defects)
    if ctype == "text/plain" and (_param(part, "format") or "").lower() == "flowed":
        text = _unflow(text.replace("\r\n", "\n"), (_param(part, "delsp") or "").lower() == "yes")
    return text


def _attachment(part: Message, defects: list[str]) -> _Found:
    ctype = _content_type(part)
    filename = ""
    try:
        filename = part.get_filename() or ""
    except Exception:  # an unreadable filename gets a generated one
        defects.append(f"{ctype} attachment: filename unreadable; a name was generated")
    filename = _safe_filename(
        _repair_surrogates(_decode_words(filename, "attachment filename", defects), "attachment filename", defects)
    )
    content_id_header = _raw_header(part, "Content-ID")
    content_ids = _ids_in(content_id_header or "")
    content_id = (
        content_ids[0]
        if content_ids
        else _clean_line(_repair_surrogates(content_id_header or "", "Content-ID", [])) or None
    )
    try:
        disposition = part.get_content_disposition()
    except Exception:  # unreadable disposition: decide by Content-ID below
        disposition = None
    return _Found(
        filename=filename,
        content_type=ctype,
        content=_part_bytes(part, defects),
        content_id=content_id,
        # Without a disposition, a part with a Content-ID is an image the HTML
        # refers to (multipart/related); with one, the sender said which it is.
        inline=disposition == "inline" or (disposition is None and content_id is not None),
    )


def _safe_filename(name: str) -> str:
    # Some clients send the sender's full path ("C:\\Users\\jane\\scan.pdf");
    # only the last component is the file's name, and it must not climb paths.
    name = _PATH_SEPARATOR.split(_clean_line(name))[-1].strip().strip(".")
    return name[:255]


_EXTENSION_OVERRIDES = {
    "message/rfc822": ".eml",
    "message/delivery-status": ".txt",
    "text/rfc822-headers": ".txt",
    "text/plain": ".txt",
    "image/jpeg": ".jpg",
    "application/octet-stream": ".bin",
}


def _named_attachments(found: Iterable[_Found]) -> Iterator[Attachment]:
    """Attachments, each with a filename (``attachment-2.pdf`` when the sender gave none)."""
    for number, item in enumerate(found, start=1):
        filename = item.filename
        if not filename:
            extension = (
                _EXTENSION_OVERRIDES.get(item.content_type) or mimetypes.guess_extension(item.content_type) or ".bin"
            )
            filename = f"attachment-{number}{extension}"
        yield Attachment(
            filename=filename,
            content_type=item.content_type,
            size=len(item.content),
            content=item.content,
            content_id=item.content_id,
            inline=item.inline,
        )


# -- HTML -----------------------------------------------------------------------


# Elements that hold the quoted history in replies written by the big clients:
# Gmail, Apple Mail and Thunderbird (blockquote type=cite), Yahoo.
def _sanitise_html(html: str, defects: list[str]) -> str:
    """HTML safe for an agent's browser; dropped (with a defect) when it cannot be made so."""
    try:
        return sanitise_html(_clean_text(html))
    except UnsanitisableHtml as exc:
        defects.append(f"HTML could not be sanitised ({exc}); only the text is kept")
        return ""


def _html_to_text(html: str, *, drop_quotes: bool, defects: list[str]) -> str:
    """Readable text of an HTML body, optionally without the quoted history."""
    return _clean_text(html_to_text(html, drop_quotes=drop_quotes))


# -- the new part of a reply ----------------------------------------------------

_ATTRIBUTION_START = re.compile(r"^\s*(On|Am|Le|El|Il|Op|Em|Den|W dniu)\s", re.IGNORECASE)
_ATTRIBUTION_END = re.compile(
    r"(wrote|schrieb|a écrit|escribió|ha scritto|schreef|escreveu|skrev|napisał)\s*:\s*$", re.IGNORECASE
)
_ORIGINAL_MESSAGE = re.compile(
    r"^\s*-{2,}\s*(Original Message|Ursprüngliche Nachricht|Message d'origine|Mensaje original|"
    r"Messaggio originale|Oorspronkelijk bericht|Mensagem original)\s*-{2,}\s*$",
    re.IGNORECASE,
)
_OUTLOOK_FROM = re.compile(r"^\s*\*?(From|Von|De|Da|Van|Från|Od)\s*:\*?\s*\S", re.IGNORECASE)
_OUTLOOK_SENT = re.compile(
    r"^\s*\*?(Sent|Date|Gesendet|Datum|Envoyé|Enviado|Inviato|Verzonden|Skickat|Wysłano)\s*:", re.IGNORECASE
)
_OUTLOOK_TO_OR_SUBJECT = re.compile(
    r"^\s*\*?(To|An|À|A|Para|Aan|Till|Do|Subject|Betreff|Objet|Asunto|Oggetto|Onderwerp|Ämne|Temat)\s*:", re.IGNORECASE
)
_RULE = re.compile(r"^\s*_{8,}\s*$")
# A forwarded message is what the customer wants the agent to read, not history.
_FORWARD_MARKER = re.compile(
    r"^\s*(-{2,}\s*(Forwarded message|Weitergeleitete Nachricht|Message transféré|Mensaje reenviado)\s*-{2,}"
    r"|Begin forwarded message:)\s*$",
    re.IGNORECASE,
)


def _is_quoted(line: str) -> bool:
    return line.lstrip().startswith(">")


def _attribution_end(lines: list[str], i: int) -> int | None:
    """Index of the last line of an "On <date>, <name> wrote:" that starts at ``i``."""
    if not _ATTRIBUTION_START.match(lines[i]):
        # Thunderbird's older form: "Jane Doe <jane@example.com> wrote:" on one line.
        # Asked of every line, so the cheap necessary conditions go first: an
        # address, and a colon that only blanks follow (_ATTRIBUTION_END's end).
        line = lines[i]
        found = ("@" in line or "<" in line) and line.rstrip().endswith(":") and _ATTRIBUTION_END.search(line)
        return i if found else None
    # Gmail wraps long attributions ("On Mon, ... Jane Doe <\njane@example.com> wrote:").
    for end in range(i, min(i + 3, len(lines))):
        if _is_quoted(lines[end]) or (end > i and not lines[end].strip()):
            return None
        attribution = " ".join(lines[i : end + 1])
        # A date or an address: "On Monday the courier wrote:" is the customer's text.
        if _ATTRIBUTION_END.search(attribution) and _DIGIT_OR_AT.search(attribution):
            return end
    return None


def _outlook_block(lines: list[str], i: int) -> bool:
    """Whether an Outlook "From: / Sent: / To: / Subject:" header block starts at ``i``."""
    if not _OUTLOOK_FROM.match(lines[i]):
        return False
    following = [line for line in lines[i + 1 : i + 8] if line.strip()][:5]
    return any(_OUTLOOK_SENT.match(line) for line in following) and any(
        _OUTLOOK_TO_OR_SUBJECT.match(line) for line in following
    )


def _strip_quoted_history(text: str) -> str:
    """The text without quoted history: quote lines, attributions, Outlook blocks."""
    lines = text.split("\n")
    kept: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if _ORIGINAL_MESSAGE.match(line) or (
            _outlook_block(lines, i) and not any(_FORWARD_MARKER.match(earlier) for earlier in kept[-2:])
        ):
            # Outlook quotes without ">": everything below the block is history.
            if kept and _RULE.match(kept[-1]):
                kept.pop()
            break
        if _RULE.match(line) and i + 1 < len(lines) and _outlook_block(lines, i + 1):
            break
        end = _attribution_end(lines, i)
        if end is not None:
            rest = [later for later in lines[end + 1 :] if later.strip()]
            if all(_is_quoted(later) for later in rest):
                break  # a top-posted reply: the history follows
            i = end + 1  # an interleaved reply: drop the attribution, keep answering lines
            continue
        if not _is_quoted(line):
            kept.append(line)
        i += 1
    return _clean_text("\n".join(kept))


def _normalised(text: str) -> str:
    return _WHITESPACE.sub(" ", text).strip()


def _reply_text(text: str, plain: str, raw_html: str, defects: list[str]) -> str:
    """The new part of a reply, or "" when the whole text is new."""
    if plain.strip():
        reply = _strip_quoted_history(plain)
    elif raw_html.strip():
        reply = _strip_quoted_history(_html_to_text(raw_html, drop_quotes=True, defects=[]))
    else:
        return ""
    # reply == text is the common case (nothing quoted) and spares the
    # whitespace-insensitive comparison over the whole text.
    if not reply.strip() or reply == text or _normalised(reply) == _normalised(text):
        return ""
    return reply


# -- auto-replies and bounces ---------------------------------------------------


def _auto_reply_reason(msg: Message, defects: list[str]) -> str | None:
    """The header that marks the message as machine-sent, e.g. "Auto-Submitted: auto-replied"."""
    auto_submitted = (_raw_header(msg, "Auto-Submitted") or "").split(";", 1)[0].strip().lower()
    if auto_submitted and auto_submitted != "no":
        return f"Auto-Submitted: {_clean_line(_repair_surrogates(auto_submitted, 'Auto-Submitted', []))}"
    for name in ("X-Autoreply", "X-Autorespond"):
        value = _raw_header(msg, name)
        if value is not None and value.strip().lower() not in {"no", "false", "0"}:
            return f"{name}: {_clean_line(value)}"
    precedence = (_raw_header(msg, "Precedence") or "").strip().lower()
    if precedence in {"bulk", "junk", "list", "auto_reply"}:
        return f"Precedence: {precedence}"
    # Outlook and Exchange put this on their own automatic replies; its mere
    # presence is the signal (its value says what not to answer).
    value = _raw_header(msg, "X-Auto-Response-Suppress")
    if value is not None:
        return f"X-Auto-Response-Suppress: {_clean_line(value)}"
    return None


@dataclass(frozen=True)
class _Recipient:
    """One per-recipient block of a delivery report."""

    address: str
    action: str
    status: str
    diagnostic: str


@dataclass(frozen=True)
class _DeliveryReport:
    bounced: bool
    action: str
    recipients: tuple[_Recipient, ...]
    original_ids: tuple[str, ...]
    updates: tuple[InteractionUpdate, ...]


_STATUS_CODE = re.compile(r"\b([245]\.\d{1,3}\.\d{1,3})\b")
_SMTP_REPLY = re.compile(r"\b([45]\d\d)[ -]+(?:#?[45]\.\d{1,3}\.\d{1,3}\s*)?\S.*")
_BOUNCE_SUBJECT = re.compile(
    r"undeliver|returned mail|delivery (status notification|failure|has failed)|failure notice|"
    r"mail delivery failed|could not be delivered|non remis|unzustellbar",
    re.IGNORECASE,
)
_DAEMON_LOCAL_PARTS = {"mailer-daemon", "postmaster", "mail-daemon", "mailerdaemon"}


def _delivery_report(
    msg: Message,
    sender: Party | None,
    subject: str,
    text: str,
    bounce_id: str,
    occurred_at: datetime,
    in_reply_to: list[str],
    references: list[str],
) -> _DeliveryReport | None:
    """A delivery status notification (RFC 3464) or a classic MAILER-DAEMON bounce."""
    ctype = _content_type(msg)
    report_type = (_param(msg, "report-type") or "").lower()
    structured = ctype == "multipart/report" and report_type in {"delivery-status", "global-delivery-status"}
    local_part = sender.address.rpartition("@")[0].lower() if sender else ""
    from_daemon = local_part in _DAEMON_LOCAL_PARTS and (
        local_part != "postmaster" or bool(_BOUNCE_SUBJECT.search(subject))
    )
    if not structured and not from_daemon:
        return None

    recipients: list[_Recipient] = []
    original_ids: list[str] = []
    for part in _walk(msg):
        part_type = _content_type(part)
        if part_type in {"message/delivery-status", "message/global-delivery-status"}:
            recipients.extend(_report_recipients(part))
        elif part_type in {"message/rfc822", "message/global"} and not original_ids:
            inner = _children(part)
            if inner:
                original_ids = _ids_in(_raw_header(inner[0], "Message-ID") or "")
        elif part_type == "text/rfc822-headers" and not original_ids:
            headers = _decode_text(_part_bytes(part, []), None, part_type, [])
            original_ids = _ids_in(_raw_header_by_pattern(headers.encode("utf-8", "replace"), "Message-ID") or "")
    if not recipients:
        recipients = _recipients_from_text(text)
    if not recipients:
        # Exim names the failed recipients in a header of its own.
        for address in _LIST_SEPARATOR.split(_raw_header(msg, "X-Failed-Recipients") or ""):
            if _usable(address.strip("<>")):
                recipients.append(_Recipient(address.strip("<>"), "failed", "", ""))
    if not original_ids:
        # Classic bounces quote the returned headers inline in the text.
        quoted = _raw_header_by_pattern(text.encode("utf-8", "replace"), "Message-ID")
        original_ids = _ids_in(quoted or "")
    original_ids = [i for i in original_ids if i != bounce_id] or [*in_reply_to, *references][:1]

    failed = [r for r in recipients if r.action == "failed" or (not r.action and r.status.startswith("5"))]
    # A report that only says "delayed" or "delivered" is not a bounce: the
    # message may still arrive, so it must not be marked failed. Free-text
    # daemons say so only in the subject ("Warning: message delayed").
    if structured:
        bounced = bool(failed) or not recipients
    else:
        bounced = bool(failed) or not _DELAY_WARNING.search(subject)
    action = "failed" if bounced else (recipients[0].action if recipients else "")
    updates: tuple[InteractionUpdate, ...] = ()
    if bounced and original_ids:
        culprits = failed or recipients
        first = culprits[0] if culprits else None
        error_message = "; ".join(
            f"{r.address}: {r.diagnostic}" if r.address and r.diagnostic else (r.diagnostic or r.address)
            for r in culprits
            if r.diagnostic or r.address
        ) or _bounce_summary(text, subject)
        updates = (
            InteractionUpdate(
                channel=Channel.EMAIL,
                external_id=original_ids[0],
                update_id=f"bounce:{bounce_id}",
                occurred_at=occurred_at,
                status=DeliveryStatus.FAILED,
                error_code=(first.status or None) if first else None,
                error_message=_clean_line(error_message)[:_ERROR_MESSAGE_LIMIT],
                metadata={"bounce_message_id": bounce_id},
            ),
        )
    return _DeliveryReport(bounced, action, tuple(recipients), tuple(original_ids[:1]), updates)


def _report_recipients(part: Message) -> list[_Recipient]:
    """The per-recipient blocks of a message/delivery-status part."""
    fields: list[dict[str, str]] = []
    if part.is_multipart():
        fields.extend({k.lower(): _unfolded(str(v)) for k, v in child.raw_items()} for child in _children(part))
    else:
        # Some MTAs base64-encode the report; Python leaves it as one string.
        raw_text = _decode_text(_part_bytes(part, []), None, "delivery report", [])
        for chunk in _PARAGRAPH_BREAK_CRLF.split(raw_text):
            pairs = _REPORT_FIELD.findall(chunk)
            fields.append({k.lower(): _unfolded(v) for k, v in pairs})
    recipients = []
    for block in fields:
        if "final-recipient" not in block and "original-recipient" not in block and "status" not in block:
            continue  # the per-message block (Reporting-MTA, Arrival-Date)
        address = block.get("final-recipient") or block.get("original-recipient") or ""
        diagnostic = block.get("diagnostic-code", "")
        status_match = _STATUS_CODE.search(block.get("status", ""))
        recipients.append(
            _Recipient(
                address=address.split(";", 1)[-1].strip().strip("<>"),
                action=block.get("action", "").strip().lower(),
                status=status_match.group(1) if status_match else "",
                # "smtp; 550 5.1.1 ..." -- the type prefix means nothing to an agent.
                diagnostic=diagnostic.split(";", 1)[-1].strip() if ";" in diagnostic else diagnostic.strip(),
            )
        )
    return recipients


def _unfolded(value: str) -> str:
    return _clean_line(_repair_surrogates(value, "delivery report", []))


def _recipients_from_text(text: str) -> list[_Recipient]:
    """Failed recipients in a free-text bounce (Postfix, Exim, qmail, Exchange)."""
    recipients: list[_Recipient] = []
    seen: set[str] = set()
    paragraphs = _PARAGRAPH_BREAK.split(text)
    for paragraph in paragraphs:
        flat = _WHITESPACE.sub(" ", paragraph).strip()
        found = _BOUNCED_ADDRESS.search(flat + " ")
        reply = _SMTP_REPLY.search(flat)
        status = _STATUS_CODE.search(flat)
        if found is None or (reply is None and status is None):
            continue
        address = found.group(1)
        if address.casefold() in seen:
            continue
        seen.add(address.casefold())
        recipients.append(
            _Recipient(
                address=address,
                action="failed"
                if (reply and reply.group(1).startswith("5")) or (status and status.group(1).startswith("5"))
                else "",
                status=status.group(1) if status else "",
                diagnostic=reply.group(0)[:_ERROR_MESSAGE_LIMIT] if reply else flat[:_ERROR_MESSAGE_LIMIT],
            )
        )
    return recipients


def _bounce_summary(text: str, subject: str) -> str:
    first = next((line.strip() for line in text.split("\n") if line.strip()), "")
    return first or subject or "the message could not be delivered"


# -- metadata -------------------------------------------------------------------


def _dedupe(values: Iterable[str], exclude: str | None = None) -> list[str]:
    seen: set[str] = set()
    kept: list[str] = []
    for value in values:
        if value and value != exclude and value not in seen:
            seen.add(value)
            kept.append(value)
    return kept


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
