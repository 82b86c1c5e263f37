"""The header fields that name a message and place it: Message-ID, In-Reply-To and References, Subject, Date."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from email.message import Message
from email.utils import parsedate_to_datetime

from connectors.email.parse.charsets import _clean_line, _decode_words, _repair_surrogates
from connectors.email.parse.structure import _raw_header, _raw_header_by_pattern
from hub.contract import FUTURE_TOLERANCE

_LIST_SEPARATOR = re.compile(r"[\s,]+")
_UNKNOWN_ZONE = re.compile(r"-0000\s*(\(.*\))?$")


#: Domain of the synthetic Message-ID given to a message that has none. The
#: ``.invalid`` TLD (RFC 2606) can never collide with a real mail domain.
SYNTHETIC_ID_DOMAIN = "corridor.invalid"


def _message_id(msg: Message, header_block: bytes, raw: bytes, defects: list[str]) -> str:
    value = _raw_header(msg, "Message-ID")
    if value is None:
        value = _raw_header_by_pattern(header_block, "Message-ID")
        if value is not None:
            defects.append("Message-ID recovered by pattern from the raw headers")
    _repair_surrogates(value or "", "Message-ID", defects)  # for its defects: the ids are cleaned below
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
    _repair_surrogates(value, name, defects)  # for its defects: the ids are cleaned below
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


# -- metadata -------------------------------------------------------------------


def _dedupe(values: Iterable[str], exclude: str | None = None) -> list[str]:
    seen: set[str] = set()
    kept: list[str] = []
    for value in values:
        if value and value != exclude and value not in seen:
            seen.add(value)
            kept.append(value)
    return kept
