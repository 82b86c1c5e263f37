"""Bytes of any declared, misdeclared or undeclared charset to readable text.

Also the RFC 2047 encoded words of headers, the lone surrogates Python leaves
for undeclared 8-bit bytes, and the clean-up that makes a value fit to store
and show (one line for a header, one newline convention for a body).
"""

from __future__ import annotations

import binascii
import codecs
import re
from collections.abc import Iterable

import charset_normalizer

_WHITESPACE = re.compile(r"\s+")
_Q_ESCAPE = re.compile(rb"=([0-9A-Fa-f]{2})")
_LABEL_PUNCTUATION = re.compile(r"[-_ ]")
_BLANK_LINES = re.compile(r"\n{3,}")


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


# Charsets undeclared 8-bit header text is detected among: the ones whose text
# comes in runs of high bytes (East Asian multi-byte, Cyrillic, Greek, Hebrew,
# Arabic, Thai). Latin text has its high bytes alone between letters ("café")
# and stays with the Windows-1252 fallback.
_DETECTABLE = ["gb18030", "big5", "cp932", "euc_jp", "cp949", "cp1251", "koi8_r", "cp1253", "cp1255", "cp1256", "cp874"]
_HIGH_BYTES = re.compile(rb"[\x80-\xff]+")
_LATIN_CODECS = {"ascii", "utf-8", "latin-1", "iso8859-1", "cp1252", "iso8859-15"}


def _header_charset(data: bytes, declared: Iterable[str]) -> tuple[str, str] | None:
    """(codec, how it was found) for header bytes in no declared charset that are not UTF-8.

    The message's own charset comes first (a mailer writes raw headers in the
    charset of its body), then detection, for text that is not Latin.
    """
    for label in declared:
        codec = _CHARSET_MISSPELLINGS.get(label.lower()) or _codec(label.lower())
        if codec is None or codec in _LATIN_CODECS:
            continue
        codec = _SUPERSETS.get(codec, codec)
        try:
            data.decode(codec)
        except (UnicodeDecodeError, LookupError):
            continue
        return codec, "the charset the message declares"
    runs = _HIGH_BYTES.findall(data)
    if sum(len(run) for run in runs if len(run) > 1) < 0.75 * sum(len(run) for run in runs):
        return None
    best = charset_normalizer.from_bytes(data, cp_isolation=_DETECTABLE).best()
    if best is None:
        return None
    return _SUPERSETS.get(best.encoding, best.encoding), "detected"


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
        _note_unstorable(value, where, defects)
        return value

    def decode_run(match: re.Match[str]) -> str:
        data = match.group().encode("utf-8", "surrogateescape")
        text, used = _sniff(data)
        if used != "utf-8":
            defects.append(f"{where}: undeclared 8-bit text read as {used}")
        return text

    repaired = _SURROGATES.sub(decode_run, value)
    _note_unstorable(repaired, where, defects)
    return _LONE_SURROGATES.sub("\ufffd", repaired)


_UNSTORABLE = re.compile(r"[\x00\ud800-\udfff]")


def _note_unstorable(value: str, where: str, defects: list[str]) -> None:
    """Flag ``where`` when it holds what no database stores (NUL, unpaired surrogates), which the cleaners replace."""
    if _UNSTORABLE.search(value):
        defects.append(f"{where}: NUL or unpaired surrogate characters removed")


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
