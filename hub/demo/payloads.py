"""What the providers send, shaped as the real connectors receive it: RFC 822 mail, Twilio forms, chat frames."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email.charset import QP, Charset
from email.header import Header
from email.message import Message
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.policy import compat32
from email.utils import format_datetime, formataddr

from hub.events import Party

FORM = "application/x-www-form-urlencoded"
TWILIO_API = "https://api.twilio.com/2010-04-01"


@dataclass
class _Mail:
    """An email already in the story, for the next one to quote and reference."""

    message_id: str
    subject: str
    body: str
    at: datetime
    author: str
    refs: tuple[str, ...]


def _quote(mail: _Mail) -> str:
    quoted = "\n".join(f"> {line}" if line else ">" for line in mail.body.splitlines())
    return f"On {mail.at:%a, %d %b %Y at %H:%M}, {mail.author} wrote:\n{quoted}"


def _rfc822(
    sender: Party,
    recipient: Party,
    subject: str,
    at: datetime,
    message_id: str,
    refs: Sequence[str],
    text: str,
    html: str | None,
) -> bytes:
    """The message as a mailer sends it: RFC 2047 names, quoted-printable UTF-8 bodies.

    Built with the compat32 MIME classes: the modern EmailMessage API parses
    every header it is given, which made it most of the demo's load time.
    """
    utf8 = Charset("utf-8")
    utf8.body_encoding = QP
    plain = MIMEText(text, "plain", utf8)  # type: ignore[arg-type]  # typeshed wants str; a Charset works
    message: Message
    if html is None:
        message = plain
    else:
        # A boundary derived from the Message-ID keeps the payload reproducible.
        boundary = "==_" + hashlib.sha256(message_id.encode()).hexdigest()[:28]
        message = MIMEMultipart("alternative", boundary=boundary)
        rich = MIMEText(html, "html", utf8)  # type: ignore[arg-type]
        for part in (plain, rich):
            del part["MIME-Version"]  # only the top level carries it
            message.attach(part)
    message["From"] = formataddr((sender.name, sender.address))
    message["To"] = formataddr((recipient.name, recipient.address))
    message["Subject"] = Header(subject, "utf-8").encode() if not subject.isascii() else subject
    message["Date"] = format_datetime(at)
    message["Message-ID"] = f"<{message_id}>"
    if refs:
        message["In-Reply-To"] = f"<{refs[-1]}>"
        message["References"] = " ".join(f"<{r}>" for r in refs)
    return message.as_bytes(policy=compat32.clone(linesep="\r\n"))


def _html(text: str) -> str:
    """A plain reply as the simple HTML a help-desk mailer sends beside it."""
    paragraphs = "".join(
        "<p>" + block.replace("&", "&amp;").replace("<", "&lt;").replace("\n", "<br>") + "</p>"
        for block in text.split("\n\n")
    )
    return f'<div style="font-family:Arial,sans-serif;font-size:14px">{paragraphs}</div>'
