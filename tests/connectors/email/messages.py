"""Email messages as customers' mail clients write them, for the intake and reply tests.

Built in memory (a backfill of hundreds costs nothing) and put into the test
Dovecot through one IMAP connection with MULTIAPPEND.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

from imapclient import IMAPClient

MAILBOX_ADDRESS = "support@corridor.example"
#: When the customers in these tests write (recent, so no Date is "in the future").
START = datetime.now(UTC).replace(microsecond=0) - timedelta(days=3)


def customer_message(
    n: int,
    *,
    sender: str | None = None,
    subject: str | None = None,
    body: str | None = None,
    date: datetime | None = None,
    message_id: str | None = None,
    in_reply_to: str | None = None,
    references: Sequence[str] = (),
    to: str = MAILBOX_ADDRESS,
) -> bytes:
    """Message ``n`` of a customer: a plain-text mail as Thunderbird sends it."""
    sender = sender or f"customer{n % 40}@example.org"
    headers = [
        f"From: Customer {n % 40} <{sender}>",
        f"To: Corridor Support <{to}>",
        f"Subject: {subject if subject is not None else f'Order {4700 + n} question'}",
        f"Date: {format_datetime(date or START + timedelta(minutes=n))}",
        f"Message-ID: <{message_id or f'msg-{n}@example.org'}>",
    ]
    chain = [*references, *([in_reply_to] if in_reply_to else [])]
    if in_reply_to:
        headers.append(f"In-Reply-To: <{in_reply_to}>")
    if chain:
        headers.append("References: " + " ".join(f"<{ref}>" for ref in chain))
    headers += [
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=UTF-8; format=flowed",
        "Content-Transfer-Encoding: 8bit",
        "User-Agent: Mozilla Thunderbird",
    ]
    text = body if body is not None else f"Hello,\n\nwhere is order {4700 + n}? It was due last week.\n\nThanks"
    return ("\r\n".join(headers) + "\r\n\r\n" + text.replace("\n", "\r\n") + "\r\n").encode()


def append_all(imap: IMAPClient, folder: str, messages: Sequence[bytes], chunk: int = 500) -> None:
    """Append ``messages`` in order, a few hundred per MULTIAPPEND command."""
    for start in range(0, len(messages), chunk):
        imap.multiappend(folder, list(messages[start : start + chunk]))
