"""The body of a message sorted into plain text, HTML and attachments."""

from __future__ import annotations

import mimetypes
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from email import policy
from email.message import Message
from email.parser import BytesParser

from connectors.email.parse.charsets import (
    _clean_line,
    _clean_text,
    _decode_text,
    _decode_words,
    _has_surrogates,
    _note_unstorable,
    _repair_surrogates,
)
from connectors.email.parse.headers import _ids_in
from connectors.email.parse.structure import _children, _content_type, _param, _Part, _part_bytes, _raw_header
from hub.contract import Attachment, UnsanitisableHtml, html_to_text, sanitise_html

_META_CHARSET = re.compile(rb"<meta[^>]+charset=[\"']?([\w.:-]+)", re.IGNORECASE)
_PATH_SEPARATOR = re.compile(r"[\\/]")


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
        repaired = _with_the_boundary_used(part, ctype, defects) if depth <= 50 else None
        if repaired is not None:
            defects.append(f"{ctype}: the parts use another boundary than the one declared; read with theirs")
            _collect_body(repaired, body, defects, depth + 1)
            return
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


# A delimiter line followed by a part's first header: "--b1_4f2a\r\nContent-Type: ...".
_DELIMITER = re.compile(rb"^--([ -~]{1,70}?)[ \t]*\r?\n[!-9;-~]+[ \t]*:", re.MULTILINE)


def _with_the_boundary_used(part: Message, ctype: str, defects: list[str]) -> Message | None:
    """The multipart parsed again with the boundary its parts really use, or None.

    Some mailers declare one boundary and write another (a template's, or one
    rewritten by a gateway). Python then finds no parts and leaves the raw
    MIME, base64 and all, where the text should be.
    """
    found = _DELIMITER.search(_part_bytes(part, defects))
    if found is None or found.group(1) == (_param(part, "boundary") or "").encode("ascii", "replace"):
        return None
    header = f"Content-Type: {ctype}; boundary=".encode() + b'"' + found.group(1).replace(b'"', b"") + b'"\r\n\r\n'
    reparsed = BytesParser(_Part, policy=policy.compat32).parsebytes(header + _part_bytes(part, []))
    return reparsed if reparsed.is_multipart() and _children(reparsed) else None


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
    if "\ufffd" in filename:
        filename = _raw_filename(part) or filename
    where = "attachment filename"
    filename = _repair_surrogates(_decode_words(filename, where, defects), where, defects)
    filename = _safe_filename(filename)
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


_QUOTED_PAIR = re.compile(r"\\(.)")
_RAW_PARAMETERS = {
    name: re.compile(rf"(?:^|;)[ \t]*{name}[ \t]*=[ \t]*(?:\"((?:[^\"\\]|\\.)*)\"|([^;\s]+))", re.IGNORECASE)
    for name in ("filename", "name")
}


def _raw_filename(part: Message) -> str | None:
    """The file name as the sender wrote it, 8-bit bytes kept, for the charset fallbacks to read.

    The stdlib reads a file name in raw 8-bit bytes (UTF-8 from most clients)
    as replacement characters ("ci��le.txt"); the raw header still holds them.
    """
    for header, parameter in (("Content-Disposition", "filename"), ("Content-Type", "name")):
        match = _RAW_PARAMETERS[parameter].search(_raw_header(part, header) or "")
        if match is not None and _has_surrogates(match.group()):
            return _QUOTED_PAIR.sub(r"\1", match.group(1)) if match.group(1) is not None else match.group(2)
    return None


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


def _sanitise_html(html: str, defects: list[str]) -> str:
    """HTML safe for an agent's browser; dropped (with a defect) when it cannot be made so."""
    _note_unstorable(html, "HTML", defects)
    try:
        return sanitise_html(_clean_text(html))
    except UnsanitisableHtml as exc:
        defects.append(f"HTML could not be sanitised ({exc}); only the text is kept")
        return ""


def _html_to_text(html: str, *, drop_quotes: bool, defects: list[str]) -> str:
    """Readable text of an HTML body, optionally without the quoted history."""
    return _clean_text(html_to_text(html, drop_quotes=drop_quotes))
