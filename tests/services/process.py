"""Starting and stopping a service for the tests: free ports, waiting, log tails, and :func:`require`."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

import pytest

#: Upper bound for any single wait on a service (start, stop, readiness).
#: Generous because CI machines are shared; a healthy service needs far less.
SERVICE_TIMEOUT = 30.0

#: How many lines of a service's log to put in an error message.
LOG_TAIL_LINES = 40


def require(service: str, reason: str) -> NoReturn:
    """Give up on a test because ``service`` is unavailable.

    Skips the test normally; fails it when ``CI=true``, because under CI a
    missing service is a broken setup, never a reason to silently skip.
    """
    message = f"{service} unavailable: {reason}"
    if os.environ.get("CI") == "true":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now.

    Another process may take it before the caller binds it; starters that use
    this retry on "address in use".
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def port_is_open(host: str, port: int) -> bool:
    """Whether something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    """The last ``lines`` lines of a log file, for error messages."""
    try:
        text = path.read_text(errors="replace")
    except OSError as error:
        return f"(no log at {path}: {error})"
    tail = text.splitlines()[-lines:]
    return "\n".join(tail) if tail else f"(log {path} is empty)"


def wait_until(condition: Callable[[], bool], timeout: float, interval: float = 0.005) -> bool:
    """Poll ``condition()`` until it is true or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def process_gone(pid: int) -> bool:
    """Whether ``pid`` has exited.

    A daemon is reparented to PID 1; in a container PID 1 may not reap it, so a
    zombie counts as gone (it holds no sockets and no files).
    """
    try:
        status = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    # The state field follows the parenthesised command name, which may itself
    # contain spaces or parentheses: split after the last ")".
    state = status.rsplit(")", 1)[1].split()[0]
    return state in {"Z", "X"}
