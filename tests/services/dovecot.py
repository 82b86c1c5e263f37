"""Dovecot (IMAP): a private server per test, with TLS and special-use folders where asked."""

from __future__ import annotations

import grp
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest
from imapclient import IMAPClient

from tests.services.process import (
    SERVICE_TIMEOUT,
    free_port,
    log_tail,
    port_is_open,
    process_gone,
    require,
    wait_until,
)
from tests.services.tls import TLS_HOST, TlsFiles

DOVECOT_BINARY = "/usr/sbin/dovecot"

_APPENDUID = re.compile(rb"\[APPENDUID (\d+) (\d+)\]")


class _PortTakenError(RuntimeError):
    """Dovecot could not bind its IMAP port."""


def _mailbox_dirname(folder: str) -> str:
    """Maildir++ directory of ``folder`` relative to the Maildir root.

    INBOX is the root itself; other folders are ``.Name`` with the
    hierarchy separator ``.`` (Dovecot's default for maildir). Only plain
    ASCII names are supported: others would need modified UTF-7.
    """
    if folder.upper() == "INBOX":
        return "."
    if not folder.isascii() or "/" in folder or "&" in folder:
        raise ValueError(f"unsupported folder name for direct maildir access: {folder!r}")
    return f".{folder}"


class Dovecot:
    """A private Dovecot 2.3 IMAP server on a free loopback port.

    Its configuration, sockets, logs and mail live in one temporary
    directory. :meth:`stop` and :meth:`start` keep the port and the mail
    store, so a test can take the server down in the middle of a sync and
    bring it back.

    With ``tls``, it listens on :data:`TLS_HOST` with ``ssl = required``:
    STARTTLS on :attr:`port`, implicit TLS on :attr:`tls_port`, and no login
    without TLS. ``special_use`` maps folders to create to their RFC 6154
    attribute, e.g. ``{"Sent Items": "\\Sent"}``.
    """

    def __init__(
        self,
        root: Path | None = None,
        port: int | None = None,
        *,
        tls: TlsFiles | None = None,
        special_use: Mapping[str, str] | None = None,
    ) -> None:
        if not Path(DOVECOT_BINARY).is_file():
            require("dovecot", "apt-get install dovecot-imapd")
        self.root = root or Path(tempfile.mkdtemp(prefix="corridor-dovecot-"))
        self._owns_root = root is None
        self.base_dir = self.root / "run"
        self.state_dir = self.root / "state"
        self.mail_dir = self.root / "mail"
        self.log_path = self.root / "dovecot.log"
        self.startup_output = self.root / "dovecot.startup"
        self.users_file = self.root / "users"
        self.config_path = self.root / "dovecot.conf"
        self._tls = tls
        self._special_use = dict(special_use or {})
        self._host = TLS_HOST if tls is not None else "127.0.0.1"
        self._port = port or free_port()
        self._tls_port = free_port() if tls is not None else 0
        self._may_move_port = port is None
        self._pid: int | None = None
        self._write_config()

    # -- configuration -----------------------------------------------------

    def _write_config(self) -> None:
        for directory in (self.base_dir, self.state_dir, self.mail_dir):
            directory.mkdir(parents=True, exist_ok=True)
        self.users_file.touch()
        if os.geteuid() == 0:
            # Mail processes drop to nobody/nogroup; login and auth processes
            # run as Dovecot's own users. All of them must reach into the
            # temp dir (mkdtemp makes it 0700) and read the users file.
            mail_user, mail_group = "nobody", "nogroup"
            self.root.chmod(0o755)
            self.users_file.chmod(0o644)
            os.chown(self.mail_dir, pwd.getpwnam(mail_user).pw_uid, grp.getgrnam(mail_group).gr_gid)
            process_users = ""
        else:
            # Unprivileged: every Dovecot process runs as us, and chroot (root
            # only) is switched off for the login processes.
            mail_user = pwd.getpwuid(os.getuid()).pw_name
            mail_group = grp.getgrgid(os.getgid()).gr_name
            process_users = (
                f"default_internal_user = {mail_user}\n"
                f"default_internal_group = {mail_group}\n"
                f"default_login_user = {mail_user}\n"
            )
        chroot = "" if os.geteuid() == 0 else "  chroot =\n"
        # A unique instance name keeps several servers on one machine apart
        # in Dovecot's instance registry (and in `ps`).
        instance = f"corridor-test-{uuid.uuid4().hex[:12]}"
        if self._tls is None:
            ssl_settings = "ssl = no"
        else:
            # required: no login (of any mechanism) before TLS is up.
            ssl_settings = f"ssl = required\nssl_cert = <{self._tls.cert_file}\nssl_key = <{self._tls.key_file}"
        special_folders = "".join(
            f'  mailbox "{folder}" {{\n    special_use = {attribute}\n    auto = create\n  }}\n'
            for folder, attribute in self._special_use.items()
        )
        config = f"""\
# Written by tests/services/dovecot.py for one test run; not a production config.
instance_name = {instance}
base_dir = {self.base_dir}
state_dir = {self.state_dir}
log_path = {self.log_path}
info_log_path = {self.log_path}
protocols = imap
listen = {self._host}
{ssl_settings}
disable_plaintext_auth = no
auth_mechanisms = plain login
# Dovecot holds back a failed login's answer for 2 s by default.
auth_failure_delay = 0
{process_users}
mail_location = maildir:{self.mail_dir}/%u/Maildir
# The mail store is thrown away after the test: durability is not wanted.
mail_fsync = never
namespace inbox {{
  inbox = yes
{special_folders}}}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {self.users_file}
}}
userdb {{
  driver = static
  args = uid={mail_user} gid={mail_group} home={self.mail_dir}/%u
}}
# Every failed login from an IP makes Dovecot delay that IP's next login
# attempts by 2, 4, 8... s (the "auth penalty", tracked by anvil). Tests of
# wrong credentials would then slow down every later login. The auth process
# skips the penalty when it cannot connect to this socket, and mode 0 makes
# sure it cannot. (A failed login still takes ~0.5 s: Dovecot answers
# failures from a queue it checks twice a second.)
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
service imap-login {{
{chroot}  inet_listener imap {{
    address = {self._host}
    port = {self._port}
  }}
  inet_listener imaps {{
    address = {self._host}
    port = {self._tls_port}
  }}
}}
"""
        self.config_path.write_text(config)

    # -- lifecycle ------------------------------------------------------------

    @property
    def host(self) -> str:
        """Address the IMAP listener is bound to."""
        return self._host

    @property
    def port(self) -> int:
        """Plain-text IMAP port (STARTTLS with ``tls``); the same across :meth:`stop`/:meth:`start`."""
        return self._port

    @property
    def tls_port(self) -> int:
        """Implicit-TLS IMAP port (only with ``tls``)."""
        if self._tls is None:
            raise RuntimeError("this Dovecot was started without TLS")
        return self._tls_port

    @property
    def running(self) -> bool:
        """Whether the master process is alive."""
        return self._pid is not None and not process_gone(self._pid)

    def start(self) -> None:
        """Start the server (again) and wait until it greets IMAP clients."""
        if self.running:
            return
        # A port we picked ourselves may have been taken since; move to
        # another one, but only before the first start: afterwards tests rely
        # on the port staying the same.
        for _attempt in range(5):
            try:
                self._start_once()
            except _PortTakenError:
                if not self._may_move_port:
                    raise
                self._port = free_port()
                if self._tls is not None:
                    self._tls_port = free_port()
                self._write_config()
                continue
            self._may_move_port = False
            return
        raise RuntimeError(f"no free port for dovecot after 5 attempts\n{self._diagnostics()}")

    def _start_once(self) -> None:
        pid_file = self.base_dir / "master.pid"
        # A stale pid file (after a crash) whose pid got reused would make
        # dovecot refuse to start, and us wait for the wrong process.
        pid_file.unlink(missing_ok=True)
        # Dovecot daemonizes and its background processes inherit our output
        # descriptors: capturing them through a pipe would never see EOF and
        # hang. A regular file has no such problem and keeps doveconf's
        # startup errors (config mistakes) for the error message.
        with self.startup_output.open("wb") as output:
            result = subprocess.run(
                [DOVECOT_BINARY, "-c", str(self.config_path)],
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=output,
                timeout=SERVICE_TIMEOUT,
                check=False,
            )
        if result.returncode != 0:
            message = f"dovecot exited with {result.returncode}\n{self._diagnostics()}"
            if "Address already in use" in log_tail(self.startup_output):
                raise _PortTakenError(message)
            raise RuntimeError(message)

        # The file appears before its content: wait for a whole pid, or a
        # half-written file reads as "" and the started server is orphaned.
        def pid_written() -> bool:
            try:
                return pid_file.read_text().strip().isdigit()
            except OSError:
                return False

        if not wait_until(pid_written, SERVICE_TIMEOUT):
            raise RuntimeError(f"dovecot wrote no {pid_file}\n{self._diagnostics()}")
        self._pid = int(pid_file.read_text().strip())
        if not wait_until(self._greets, SERVICE_TIMEOUT, interval=0.01):
            self.stop()
            raise RuntimeError(f"dovecot did not answer on {self.host}:{self.port}\n{self._diagnostics()}")

    def _greets(self) -> bool:
        """Whether an IMAP greeting arrives: the listener is bound and a login process runs."""
        if not self.running:
            raise RuntimeError(f"dovecot died while starting\n{self._diagnostics()}")
        try:
            with socket.create_connection((self.host, self.port), timeout=2.0) as conn:
                greeted = conn.recv(64).startswith(b"* OK")
                if greeted:
                    # Say goodbye so the log shows no "connection reset" noise.
                    conn.sendall(b"a LOGOUT\r\n")
                return greeted
        except OSError:
            return False

    def stop(self) -> None:
        """Terminate the server and all its processes; the mail store stays."""
        pid = self._pid
        if pid is None:
            return
        # SIGTERM to the master alone takes a full second (it waits for its
        # children to wind down); the master is a session leader, so signal
        # its whole process group and everything goes in milliseconds. Guard
        # against ever signalling our own group.
        try:
            if os.getpgid(pid) == pid != os.getpgrp():
                os.killpg(pid, signal.SIGTERM)
            else:
                os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        if not wait_until(lambda: process_gone(pid), SERVICE_TIMEOUT):
            raise RuntimeError(f"dovecot master {pid} survived SIGTERM\n{self._diagnostics()}")
        if not wait_until(lambda: not port_is_open(self.host, self.port), SERVICE_TIMEOUT):
            raise RuntimeError(f"port {self.port} still open after dovecot stopped\n{self._diagnostics()}")
        self._pid = None

    def close(self) -> None:
        """Stop the server and delete its directory (if this object made it)."""
        try:
            self.stop()
        finally:
            if self._owns_root:
                shutil.rmtree(self.root, ignore_errors=True)

    def _diagnostics(self) -> str:
        startup = log_tail(self.startup_output) if self.startup_output.exists() else ""
        return f"--- startup output ---\n{startup}\n--- {self.log_path} ---\n{log_tail(self.log_path)}"

    # -- users and mail ---------------------------------------------------------

    def add_user(self, name: str, password: str) -> None:
        """Create a mail account.

        Dovecot re-reads the passwd-file when its size or mtime changes, so
        the account works at once, also while the server runs.
        """
        for value in (name, password):
            if not value or any(c in value for c in ":\n\r"):
                raise ValueError(f"user names and passwords must be non-empty without ':' or newlines: {value!r}")
        with self.users_file.open("a", encoding="utf-8") as users:
            users.write(f"{name}:{{PLAIN}}{password}\n")

    def client(self, user: str, password: str) -> IMAPClient:
        """A logged-in IMAP client (plain text, or implicit TLS with ``tls``; 10 s timeout); the caller logs out."""
        if self._tls is None:
            imap = IMAPClient(self.host, port=self.port, ssl=False, timeout=10)
        else:
            imap = IMAPClient(
                self.host, port=self._tls_port, ssl=True, ssl_context=self._tls.client_context(), timeout=10
            )
        try:
            imap.login(user, password)
        except Exception:
            imap.shutdown()
            raise
        return imap

    def append(self, user: str, password: str, folder: str, message: bytes) -> int:
        """Put ``message`` into ``folder`` (created if missing); return its UID."""
        imap = self.client(user, password)
        try:
            if folder.upper() != "INBOX" and not imap.folder_exists(folder):
                imap.create_folder(folder)
            response: bytes = imap.append(folder, message)
        finally:
            imap.logout()
        match = _APPENDUID.search(response)
        if match is None:
            raise RuntimeError(f"APPEND answered without APPENDUID: {response!r}")
        return int(match.group(2))

    def uidvalidity(self, user: str, password: str, folder: str) -> int:
        """The folder's current UIDVALIDITY, as a client sees it."""
        imap = self.client(user, password)
        try:
            status = imap.folder_status(folder, [b"UIDVALIDITY"])
        finally:
            imap.logout()
        return int(status[b"UIDVALIDITY"])

    def reset_uidvalidity(self, user: str, password: str, folder: str) -> int:
        """Make Dovecot give ``folder`` a new UIDVALIDITY; return it.

        The messages stay (same files, same content) but get new UIDs, as when
        a real server loses its index: Dovecot's maildir UID map lives in
        ``dovecot-uidlist`` and its cache in ``dovecot.index*``; with both
        gone it rescans the folder and assigns a fresh UIDVALIDITY. The server
        is restarted for this (clients are disconnected) and left running.
        """
        old = self.uidvalidity(user, password, folder)
        self.stop()
        folder_dir = self.mail_dir / user / "Maildir" / _mailbox_dirname(folder)
        for path in folder_dir.iterdir():
            if path.name == "dovecot-uidlist" or path.name.startswith("dovecot.index"):
                path.unlink()
        self.start()
        new = self.uidvalidity(user, password, folder)
        if new == old:
            raise RuntimeError(f"UIDVALIDITY of {folder!r} stayed {old} after dropping its uidlist")
        return new


@pytest.fixture
def start_dovecot() -> Iterator[Callable[..., Dovecot]]:
    """Starts Dovecots configured for one test (``tls``, ``special_use``); all are stopped afterwards."""
    servers: list[Dovecot] = []

    def start(*, tls: TlsFiles | None = None, special_use: Mapping[str, str] | None = None) -> Dovecot:
        server = Dovecot(tls=tls, special_use=special_use)
        servers.append(server)
        try:
            server.start()
        except (RuntimeError, OSError, subprocess.SubprocessError) as error:
            require("dovecot", str(error))
        return server

    try:
        yield start
    finally:
        for server in servers:
            server.close()


@pytest.fixture
def dovecot(start_dovecot: Callable[..., Dovecot]) -> Dovecot:
    """A running, empty Dovecot for one test (it starts in milliseconds)."""
    return start_dovecot()
