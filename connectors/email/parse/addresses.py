"""Address headers (From, To, Cc, Reply-To, Sender) to the parties of the event."""

from __future__ import annotations

import re
from email import errors as email_errors
from email import policy
from email.message import Message
from email.utils import getaddresses
from typing import Any

from connectors.email.parse.charsets import (
    _ENCODED_WORD,
    _UNLABELLED,
    _clean_line,
    _codec,
    _decode_words,
    _has_surrogates,
    _repair_surrogates,
)
from connectors.email.parse.structure import _raw_header
from hub.contract import IdentityKind, Party

_ADDRESS_BREAKER = re.compile(r"[\s<>]")


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


# An address standing alone among words: "Big Bug bb@bug.com".
_BARE_ADDRESS = re.compile(r"(?<![^\s,;])[^\s<>()\[\],;:\"@]+@[^\s<>()\[\],;:\"@]+\.[^\s<>()\[\],;:\"@]+(?![^\s,;])")


def _bare_address(value: str) -> tuple[str, str] | None:
    """(name, address) of a header that names someone without angle brackets around the address."""
    match = _BARE_ADDRESS.search(value)
    if match is None or not _usable(match.group()):
        return None
    return (value[: match.start()] + value[match.end() :]).strip(" \t,;\"'"), match.group()


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
    if not any(_usable(address) for _, address in found):
        bare = _bare_address(_decode_words(raw_value, name, defects))
        if bare is not None:
            defects.append(f"{name}: an address without angle brackets; the words around it read as the name")
            found = [bare]
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
