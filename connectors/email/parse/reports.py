"""Machine-sent mail: auto-replies, and delivery reports (bounces) with what they report on."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from email.message import Message

from connectors.email.parse.addresses import _usable
from connectors.email.parse.charsets import _WHITESPACE, _clean_line, _decode_text, _repair_surrogates
from connectors.email.parse.headers import _LIST_SEPARATOR, _ids_in
from connectors.email.parse.structure import (
    _children,
    _content_type,
    _param,
    _part_bytes,
    _raw_header,
    _raw_header_by_pattern,
    _walk,
)
from hub.contract import Channel, DeliveryStatus, InteractionUpdate, Party

_DELAY_WARNING = re.compile(r"\b(delay(ed)?|warning)\b", re.IGNORECASE)
_PARAGRAPH_BREAK_CRLF = re.compile(r"\r?\n\s*\r?\n")
_REPORT_FIELD = re.compile(r"^([A-Za-z-]+)[ \t]*:(.*(?:\r?\n[ \t].*)*)", re.MULTILINE)
_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")
_BOUNCED_ADDRESS = re.compile(r"<?([^\s<>@:;,]+@[^\s<>@:;,]+\.[^\s<>@:;,]+?)>?:?\s")


_ERROR_MESSAGE_LIMIT = 1000


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
