"""SMTP: an aiosmtpd server per test that records what it receives, or refuses it when told to."""

from __future__ import annotations

import errno
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Literal

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from tests.services.process import SERVICE_TIMEOUT, free_port, require
from tests.services.tls import TlsFiles


@dataclass(frozen=True)
class ReceivedMessage:
    """One message the test SMTP server accepted."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes
    #: Whether the message came over TLS (implicit or after STARTTLS).
    tls: bool = False
    #: The login the client authenticated with, if any.
    login: str | None = None
    #: Whether the client sent it as internationalized email (MAIL FROM ... SMTPUTF8).
    smtputf8: bool = False


class _RecordingHandler:
    """aiosmtpd handler: records each message, or refuses it when told to."""

    def __init__(self) -> None:
        self.messages: list[ReceivedMessage] = []
        self.refused = 0
        self.refusal: str | None = None
        self.refusals_left: int | None = None
        # handle_DATA runs on the controller's event-loop thread; tests wait
        # on the main thread.
        self.changed = threading.Condition()

    # aiosmtpd finds hooks by this exact name and passes all three positionally.
    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        """Called by aiosmtpd at the end of DATA; the returned line is the reply."""
        with self.changed:
            if self.refusal is not None:
                reply = self.refusal
                self.refused += 1
                if self.refusals_left is not None:
                    self.refusals_left -= 1
                    if self.refusals_left <= 0:
                        self.refusal, self.refusals_left = None, None
                self.changed.notify_all()
                return reply
            content = envelope.original_content or b""
            transport = server.transport
            login = session.auth_data.login if isinstance(session.auth_data, LoginPassword) else None
            self.messages.append(
                ReceivedMessage(
                    mail_from=envelope.mail_from or "",
                    rcpt_tos=tuple(envelope.rcpt_tos),
                    data=content,
                    # Both implicit TLS and STARTTLS leave the SSL object on the transport.
                    tls=transport is not None and transport.get_extra_info("ssl_object") is not None,
                    login=login.decode() if login is not None else None,
                    smtputf8=envelope.smtp_utf8,
                )
            )
            self.changed.notify_all()
        return "250 2.0.0 OK: queued"


SmtpTls = Literal["ssl", "starttls"]


class SmtpServer:
    """An SMTP server on loopback that records what it receives.

    With ``tls="ssl"`` it speaks implicit TLS; with ``"starttls"`` it offers
    STARTTLS and refuses mail and logins before it. With ``login`` (user,
    password) it offers AUTH and accepts exactly those; each message records
    the login it came with (AUTH is not made compulsory: aiosmtpd warns about
    that without STARTTLS, not knowing the connection is TLS from the start).
    With ``smtputf8=False`` it does not offer internationalized email
    (RFC 6531), as many relays still do not.
    """

    def __init__(
        self,
        *,
        tls: SmtpTls | None = None,
        tls_files: TlsFiles | None = None,
        login: tuple[str, str] | None = None,
        smtputf8: bool = True,
    ) -> None:
        if (tls is None) != (tls_files is None):
            raise ValueError("tls and tls_files go together")
        self._handler = _RecordingHandler()
        self._controller: Controller | None = None
        self._host = "127.0.0.1"
        self._port = 0
        self._options: dict[str, object] = {"enable_SMTPUTF8": smtputf8}
        if tls_files is not None:
            context = tls_files.server_context()
            if tls == "ssl":
                # The whole connection is encrypted, so AUTH may be offered at once.
                self._options.update(ssl_context=context, auth_require_tls=False)
            else:
                self._options.update(tls_context=context, require_starttls=True)
        if login is not None:
            self._login = login
            self._options.update(authenticator=self._authenticate)

    def _authenticate(
        self, _server: SMTP, _session: Session, _envelope: Envelope, _mechanism: str, auth_data: object
    ) -> AuthResult:
        """aiosmtpd's authenticator hook: only the configured login gets in."""
        given = (auth_data.login, auth_data.password) if isinstance(auth_data, LoginPassword) else None
        success = given == (self._login[0].encode(), self._login[1].encode())
        # auth_data is what the session keeps (and handle_DATA records).
        return AuthResult(success=success, auth_data=auth_data if success else None)

    def start(self) -> None:
        """Listen on a free loopback port."""
        # aiosmtpd 1.4's Controller cannot take port=0: after binding, it
        # connects to self.port (still 0) to check it serves, and that fails.
        # So pick a free port, and try again if someone took it meanwhile.
        for _attempt in range(5):
            port = free_port()
            controller = Controller(
                self._handler, hostname=self._host, port=port, ready_timeout=SERVICE_TIMEOUT, **self._options
            )
            try:
                controller.start()
            except OSError as error:
                if error.errno == errno.EADDRINUSE:
                    continue
                raise
            self._controller, self._port = controller, port
            return
        raise RuntimeError("no free port for the SMTP server after 5 attempts")

    def stop(self) -> None:
        """Stop listening."""
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    @property
    def host(self) -> str:
        """Address to connect to."""
        return self._host

    @property
    def port(self) -> int:
        """Port to connect to."""
        return self._port

    @property
    def messages(self) -> list[ReceivedMessage]:
        """Messages accepted so far, oldest first (a copy)."""
        with self._handler.changed:
            return list(self._handler.messages)

    @property
    def refused(self) -> int:
        """How many messages were refused so far."""
        with self._handler.changed:
            return self._handler.refused

    def refuse(self, reply: str = "451 4.3.0 Temporary failure, try again later", count: int | None = None) -> None:
        """Answer the end of DATA with ``reply`` instead of accepting.

        ``count`` refusals, then accept again; ``None`` refuses until
        :meth:`accept`. A 4xx reply is a temporary failure (the sender should
        retry), a 5xx one permanent, e.g. ``"550 5.1.1 No such user"``.
        """
        if not re.fullmatch(r"[45]\d\d .+", reply):
            raise ValueError(f"a refusal is a 4xx or 5xx reply line, not {reply!r}")
        with self._handler.changed:
            self._handler.refusal = reply
            self._handler.refusals_left = count

    def accept(self) -> None:
        """Accept messages again."""
        with self._handler.changed:
            self._handler.refusal = None
            self._handler.refusals_left = None

    def clear(self) -> None:
        """Forget the messages and refusals recorded so far."""
        with self._handler.changed:
            self._handler.messages.clear()
            self._handler.refused = 0

    def wait_for(self, n: int, timeout: float = 5.0) -> list[ReceivedMessage]:
        """Wait until at least ``n`` messages have arrived; return them all.

        Raises ``TimeoutError`` naming how many did arrive.
        """
        with self._handler.changed:
            arrived = self._handler.changed.wait_for(lambda: len(self._handler.messages) >= n, timeout)
            if not arrived:
                raise TimeoutError(
                    f"expected {n} message(s) within {timeout}s, got {len(self._handler.messages)} "
                    f"(refused {self._handler.refused})"
                )
            return list(self._handler.messages)


@pytest.fixture
def start_smtp_server() -> Iterator[Callable[..., SmtpServer]]:
    """Starts SMTP servers for one test (``tls``, ``tls_files``, ``login``, ``smtputf8``); all stopped afterwards."""
    servers: list[SmtpServer] = []

    def start(
        *,
        tls: SmtpTls | None = None,
        tls_files: TlsFiles | None = None,
        login: tuple[str, str] | None = None,
        smtputf8: bool = True,
    ) -> SmtpServer:
        server = SmtpServer(tls=tls, tls_files=tls_files, login=login, smtputf8=smtputf8)
        servers.append(server)
        try:
            server.start()
        except (RuntimeError, OSError, TimeoutError) as error:
            require("smtp", f"aiosmtpd could not start: {error}")
        return server

    try:
        yield start
    finally:
        for server in servers:
            server.stop()


@pytest.fixture
def smtp_server(start_smtp_server: Callable[..., SmtpServer]) -> SmtpServer:
    """A recording SMTP server for one test (it starts in milliseconds)."""
    return start_smtp_server()
