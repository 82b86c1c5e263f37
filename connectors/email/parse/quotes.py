"""The new part of a reply: the text without the quoted history below or between it."""

from __future__ import annotations

import re

from connectors.email.parse.body import _html_to_text
from connectors.email.parse.charsets import _WHITESPACE, _clean_text

_DIGIT_OR_AT = re.compile(r"\d|@")


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
