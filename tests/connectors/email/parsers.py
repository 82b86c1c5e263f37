"""Parsers for the parser-pool tests: the real one, except that chosen messages kill their process.

They live in a module of their own because worker processes import a parser
by its module and name: a function defined inside a test could not be sent.
The kill is SIGKILL, as from the OOM killer: no exception, no cleanup, the
process is simply gone.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from connectors.email.intake import event_from_imap
from hub.events import ChannelEvent

#: A message with this header kills the process that parses it, every time.
KILLS_ALWAYS = b"X-Test-Kill-Parser: always"
#: ``X-Test-Kill-Parser: once <path>``: kills it the first time only (<path> remembers).
KILLS_ONCE = b"X-Test-Kill-Parser: once "


def killing_parser(raw: bytes, context: Mapping[str, Any]) -> ChannelEvent:
    """:func:`event_from_imap`, unless the message asks to kill the parser's process."""
    if KILLS_ALWAYS in raw:
        os.kill(os.getpid(), signal.SIGKILL)
    if KILLS_ONCE in raw:
        flag = Path(raw.split(KILLS_ONCE, 1)[1].split(b"\r\n", 1)[0].decode())
        if not flag.exists():
            flag.touch()
            os.kill(os.getpid(), signal.SIGKILL)
    return event_from_imap(raw, context)


def worker_pid(raw: bytes, context: Mapping[str, Any]) -> ChannelEvent:
    """:func:`event_from_imap`, with the id of the process that parsed it in the metadata."""
    event = event_from_imap(raw, context)
    return replace(event, metadata={**event.metadata, "parsed_by": os.getpid()})
