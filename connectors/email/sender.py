"""Agents' email replies over SMTP, threaded so the customer's mail client keeps them together.

The hub calls :meth:`SmtpSender.send` after the reply is committed as a queued
interaction (and again, on the worker's schedule, after a temporary failure).
The Message-ID is derived from the interaction's external id, which is stable
across retries: a retry after a lost answer re-sends the same message under
the same id, which receiving servers and clients recognise as one. The id goes
back to the hub as :attr:`SendResult.provider_id` and becomes the
interaction's external id, so the customer's answer (In-Reply-To: that id) and
a bounce (quoting that id) find the reply.

The bytes handed to the SMTP server are the message: once the hub has recorded
the reply under its Message-ID, exactly those bytes are filed in the mailbox's
Sent folder (:mod:`.sent`), so whoever reads the mailbox in a mail client sees
the answer as the customer got it.
"""

from __future__ import annotations

import re
import smtplib
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.utils import formatdate

from connectors.email.connection import MailboxTlsError, open_smtp
from connectors.email.parse import SYNTHETIC_ID_DOMAIN
from connectors.email.sent import SentCopies
from connectors.email.settings import MailboxSettings
from hub.contract import Channel, OutboundMessage, SendError, SendResult

#: Seconds an SMTP conversation may stall before the attempt counts as failed
#: (and is retried): replies are sent from the agent's request.
SMTP_TIMEOUT = 30.0
#: References kept on a reply. Long threads would otherwise grow the header
#: without bound; RFC 5322 3.6.4 allows trimming the middle, and the first and
#: the latest ids are what clients thread by.
MAX_REFERENCES = 20

# What may stand in the left part of a Message-ID (RFC 5322 dot-atom text).
_NOT_ATOM = re.compile(r"[^A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+")
_ENHANCED_STATUS = re.compile(r"\b([245]\.\d{1,3}\.\d{1,3})\b")
_MESSAGE_ID = re.compile(r"[^\s<>@]+@[^\s<>@]+")


def message_id_for(external_id: str, domain: str) -> str:
    """The Message-ID (without brackets) of the reply whose external id is ``external_id``.

    Deterministic, so every retry of one reply carries the same id.
    """
    local = _NOT_ATOM.sub("-", external_id).strip(".-") or "reply"
    return f"{local}@{_ascii_domain(domain) or domain}"


def deliverable_address(address: str) -> str:
    """``address`` with an internationalised domain in its ASCII form (``bücher.example`` -> ``xn--bcher-kva.example``).

    The two name one mailbox (RFC 5890), and the ASCII form goes through
    every SMTP server, where the Unicode one needs SMTPUTF8 (RFC 6531). Only
    a non-ASCII local part (``jörg@``) has no ASCII form and still does.
    """
    local, at, domain = address.rpartition("@")
    if not at or domain.isascii():
        return address
    ascii_domain = _ascii_domain(domain)
    return f"{local}@{ascii_domain}" if ascii_domain is not None else address


def _ascii_domain(domain: str) -> str | None:
    try:
        return domain.encode("idna").decode("ascii")
    except UnicodeError:
        return None


def email_references(thread_refs: Sequence[str]) -> list[str]:
    """The ids in ``thread_refs`` that are real Message-IDs, oldest first.

    The conversation's email interactions include replies not sent yet (their
    id is still the hub's own) and messages that had no Message-ID (the
    parser's synthetic ids): no mail client knows those, so they are left out.
    """
    refs = [
        ref
        for ref in thread_refs
        if _MESSAGE_ID.fullmatch(ref) and not ref.endswith(f"@{SYNTHETIC_ID_DOMAIN}") and "\x00" not in ref
    ]
    if len(refs) > MAX_REFERENCES:
        refs = [refs[0], *refs[-(MAX_REFERENCES - 1) :]]
    return refs


class SmtpSender:
    """Sends email replies from the configured mailboxes (implements ``hub.outbound.Sender``)."""

    def __init__(
        self,
        mailboxes: Sequence[MailboxSettings],
        *,
        timeout: float = SMTP_TIMEOUT,
        sent_copies: SentCopies | None = None,
    ) -> None:
        """``sent_copies`` files each sent reply in its mailbox's Sent folder; None files nothing."""
        if not mailboxes:
            raise ValueError("the email sender needs at least one mailbox")
        self._mailboxes = tuple(mailboxes)
        self._by_address = {m.address.casefold(): m for m in mailboxes}
        self._timeout = timeout
        self._sent_copies = sent_copies

    def from_address(self, message_channel: Channel, customer_address: str, previous_to: str | None) -> str:
        """The mailbox the customer wrote to, so the answer comes from the address they know; else the first."""
        if previous_to is not None and previous_to.strip().casefold() in self._by_address:
            return self._by_address[previous_to.strip().casefold()].address
        return self._mailboxes[0].address

    def build(self, message: OutboundMessage) -> tuple[EmailMessage, MailboxSettings]:
        """The MIME message for ``message`` and the mailbox it leaves from."""
        mailbox = self._by_address.get(message.from_address.casefold())
        if mailbox is None:
            raise SendError(
                f"no configured mailbox sends from {message.from_address!r} (was it removed from [email] mailboxes?)",
                code="unknown_mailbox",
                permanent=True,
            )
        for attachment in message.attachments:
            if attachment.content is None:
                raise SendError(
                    f"attachment {attachment.filename!r} has no content to send",
                    code="attachment_without_content",
                    permanent=True,
                )
        message_id = message_id_for(message.external_id, mailbox.domain)
        refs = email_references(message.thread_refs)
        mime = EmailMessage(policy=policy.SMTP)
        try:
            mime["From"] = deliverable_address(mailbox.address)
            mime["To"] = deliverable_address(message.to_address)
            # An agent's subject comes from a form: a line break would start a new header.
            mime["Subject"] = " ".join(message.subject.split())
            mime["Date"] = formatdate(usegmt=True)
            mime["Message-ID"] = f"<{message_id}>"
            if refs:
                mime["In-Reply-To"] = f"<{refs[-1]}>"
                mime["References"] = " ".join(f"<{ref}>" for ref in refs)
            mime.set_content(message.text)
            if message.html:
                mime.add_alternative(message.html, subtype="html")
            for attachment in message.attachments:
                maintype, _, subtype = attachment.content_type.partition("/")
                mime.add_attachment(
                    attachment.content or b"",
                    maintype=maintype or "application",
                    subtype=subtype or "octet-stream",
                    filename=attachment.filename,
                )
        except (ValueError, TypeError) as exc:  # e.g. a recipient address holding a line break
            raise SendError(
                f"the reply cannot be written as an email: {exc}", code="invalid_message", permanent=True
            ) from exc
        return mime, mailbox

    def send(self, message: OutboundMessage) -> SendResult:
        """Hand ``message`` to the mailbox's SMTP server, or raise :class:`SendError`."""
        if message.channel is not Channel.EMAIL:
            raise SendError(f"the email sender sends email, not {message.channel}", code="unsupported_channel",
                            permanent=True)  # fmt: skip
        mime, mailbox = self.build(message)
        from_address, to_address = deliverable_address(mailbox.address), deliverable_address(message.to_address)
        raw, mail_options = wire_form(mime, from_address, to_address)
        try:
            smtp = open_smtp(mailbox, timeout=self._timeout)
            try:
                if "SMTPUTF8" in mail_options and not smtp.has_extn("smtputf8"):
                    # RFC 6531 3.4: such mail must not be downgraded; it cannot go this way.
                    unicode_address = to_address if not to_address.isascii() else from_address
                    raise SendError(
                        f"{unicode_address} has a non-ASCII name before the @, which needs internationalized email "
                        f"(SMTPUTF8), and the SMTP server {mailbox.smtp_host}:{mailbox.smtp_port} does not offer it",
                        code="smtputf8_unsupported",
                        permanent=True,
                    )
                smtp.sendmail(from_address, [to_address], raw, mail_options=mail_options)
            finally:
                _quit(smtp)
        except MailboxTlsError as exc:
            # Like a refused login: an admin can fix the certificate or the
            # setting before the retries run out.
            raise SendError(str(exc), code="smtp_tls") from exc
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            words = "; ".join(f"{rcpt}: {code} {_text(reply)}" for rcpt, (code, reply) in exc.recipients.items())
            raise SendError(
                words, code=_code(words, codes[0] if codes else None), permanent=all(c >= 500 for c in codes)
            ) from exc
        except smtplib.SMTPAuthenticationError as exc:
            # Wrong credentials are a 5xx, but an admin can fix them before the
            # retries run out; failing the reply at once would lose it.
            raise SendError(
                f"the SMTP server refused the login of mailbox {mailbox.name!r}: "
                f"{exc.smtp_code} {_text(exc.smtp_error)}",
                code="smtp_auth",
            ) from exc
        except smtplib.SMTPResponseException as exc:
            words = f"{exc.smtp_code} {_text(exc.smtp_error)}"
            raise SendError(words, code=_code(words, exc.smtp_code), permanent=500 <= exc.smtp_code < 600) from exc
        except (smtplib.SMTPException, OSError) as exc:
            # Disconnects, timeouts, refused connections, TLS trouble: the
            # server may be back in a minute, so the worker retries.
            raise SendError(
                f"the SMTP server {mailbox.smtp_host}:{mailbox.smtp_port} could not be reached: {exc}",
                code="smtp_unreachable",
            ) from exc
        sent_at = datetime.now(UTC)
        message_id = str(mime["Message-ID"]).strip("<>")
        in_reply_to = str(mime["In-Reply-To"]).strip("<>") if mime["In-Reply-To"] else None
        file_copy: Callable[[], None] | None = None
        copies = self._sent_copies
        if copies is not None and mailbox.copy_to_sent:
            # Not now: the intake may read the copy back from a watched Sent
            # folder at once, and only once the hub knows the reply by this
            # Message-ID is that copy recognised as the reply itself.
            def file_copy() -> None:
                copies.file(mailbox, message_id, raw, sent_at)

        return SendResult(
            provider_id=message_id,
            status="sent",
            metadata={
                "message_id": message_id,
                "in_reply_to": in_reply_to,
                "references": email_references(message.thread_refs),
                "mailbox": mailbox.name,
            },
            after_recorded=file_copy,
        )


def wire_form(mime: EmailMessage, from_address: str, to_address: str) -> tuple[bytes, tuple[str, ...]]:
    """The message as it goes over the wire, and the MAIL options it needs.

    What ``smtplib.send_message`` would send, flattened here once so that the
    copy in the Sent folder is byte for byte what the customer received.
    """
    if from_address.isascii() and to_address.isascii():
        return mime.as_bytes(), ()
    # Non-ASCII addresses travel as UTF-8 headers (RFC 6531).
    return mime.as_bytes(policy=policy.SMTPUTF8), ("SMTPUTF8", "BODY=8BITMIME")


def _quit(smtp: smtplib.SMTP) -> None:
    # Not the context manager: its QUIT raises on an odd answer, which after
    # an accepted message would make the hub send the reply a second time.
    try:
        smtp.quit()
    except (smtplib.SMTPException, OSError):
        smtp.close()


def _text(reply: bytes | str) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)


def _code(words: str, smtp_code: int | None) -> str:
    """The enhanced status code ("5.1.1") when the server gave one, else the reply code ("550")."""
    enhanced = _ENHANCED_STATUS.search(words)
    if enhanced is not None:
        return enhanced.group(1)
    return str(smtp_code) if smtp_code is not None else "smtp"
