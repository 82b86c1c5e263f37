"""The MIME structure of a message: the header block repaired, the tree parsed, and what a part says.

Headers are read raw here (unfolded, not decoded); each reader decodes what it
uses with the charset fallbacks of :mod:`.charsets`.
"""

from __future__ import annotations

import functools
import io
import re
from collections.abc import Iterator
from email import policy
from email.generator import BytesGenerator
from email.message import Message
from email.parser import BytesParser
from email.utils import collapse_rfc2231_value
from typing import Any

from connectors.email.parse.charsets import _WHITESPACE, _header_charset

_CAMEL_CASE_GAP = re.compile(r"(?<!^)(?=[A-Z])")
_FOLD = re.compile(r"\r?\n(?=[ \t])")


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
    transcoded = _transcode_8bit_headers(lines, header_block + body[:_CHARSET_SEARCH_LIMIT], defects)
    if renamed or orphans or transcoded:
        header_block = b"".join(lines)
        source = header_block + separator + body
    # The structure is parsed with compat32: it is ten times faster than the
    # default policy (which re-parses Content-Type on every access) and never
    # raises when a header is read. Headers are then read raw and decoded where
    # they are used, with email.policy.default's own header parsers for
    # addresses (_policy_header) and our charset fallbacks for everything else.
    msg = BytesParser(_Part, policy=policy.compat32).parsebytes(source)
    return msg, header_block


_DECLARED_CHARSET = re.compile(rb"charset\s*=\s*[\"']?([A-Za-z0-9._:+-]+)", re.IGNORECASE)
#: How much of a message is searched for the charsets it declares.
_CHARSET_SEARCH_LIMIT = 65536


def _transcode_8bit_headers(lines: list[bytes], declaring: bytes, defects: list[str]) -> bool:
    """Rewrite header lines of raw 8-bit text in no declared charset as UTF-8; whether any was.

    Python keeps such bytes as surrogate escapes, and the readers below take
    them for UTF-8 or else Windows-1252: right for Latin text, mojibake for
    GB2312 or Shift_JIS ("×ª·¢" for "转发"). Their charset is the one the
    message declares for its text, or else a detected one; both are worked
    out over all such lines at once, which is far more reliable than one
    header at a time.
    """
    foreign = [i for i, line in enumerate(lines) if not line.isascii() and not _is_utf8(line)]
    if not foreign:
        return False
    declared = dict.fromkeys(m.group(1).decode("ascii") for m in _DECLARED_CHARSET.finditer(declaring))
    found = _header_charset(b"\n".join(lines[i] for i in foreign), declared)
    if found is None:
        return False
    codec, how = found
    for i in foreign:
        try:
            lines[i] = lines[i].decode(codec).encode("utf-8")
        except UnicodeDecodeError:
            continue  # left to the readers' fallbacks
    defects.append(f"headers: undeclared 8-bit text read as {codec} ({how})")
    return True


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


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
