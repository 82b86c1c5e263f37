"""Real services the test suite starts for itself: PostgreSQL, Dovecot, SMTP, with TLS where asked.

Loaded as a pytest plugin (``pytest_plugins = ["tests.services"]`` in the
top-level conftest). Every service runs privately on a free loopback port with
its state in a temporary directory, so tests never touch (or depend on) a
system-wide server, and two test runs on one machine do not collide.

When a service cannot run here, :func:`require` skips the test on a
developer's machine but fails it under CI (``CI=true``): a green CI run must
mean every test really ran against the real thing.
"""

from __future__ import annotations

import errno
import grp
import ipaddress
import os
import pwd
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Literal, NoReturn

import psycopg
import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from imapclient import IMAPClient
from psycopg import sql
from sqlalchemy.engine import URL, make_url

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping

    from aiosmtpd.smtp import SMTP, Envelope, Session

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


def _wait_until(condition: Callable[[], bool], timeout: float, interval: float = 0.005) -> bool:
    """Poll ``condition()`` until it is true or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def _process_gone(pid: int) -> bool:
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


# PostgreSQL -------------------------------------------------------------------


def _postgres_bindir() -> Path | None:
    """The newest PostgreSQL server binaries on this machine, if any."""

    def major(bindir: Path) -> float:
        try:
            return float(bindir.parent.name)
        except ValueError:
            return -1.0

    def has_server(bindir: Path) -> bool:
        return (bindir / "initdb").is_file() and (bindir / "pg_ctl").is_file()

    # Debian keeps each major version under /usr/lib/postgresql/N/bin and
    # puts only client wrappers on PATH, so look there first.
    for candidate in sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=major, reverse=True):
        if has_server(candidate):
            return candidate
    pg_config = shutil.which("pg_config")
    if pg_config is not None:
        try:
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, check=True, timeout=10
            ).stdout.strip()
        except (subprocess.SubprocessError, OSError):
            return None
        if has_server(Path(out)):
            return Path(out)
    return None


def _admin_connection(url: URL, dbname: str | None = None) -> psycopg.Connection[tuple[object, ...]]:
    """An autocommit psycopg connection for CREATE/DROP DATABASE on ``url``'s server."""
    return psycopg.connect(
        host=url.host,
        port=url.port,
        user=url.username,
        password=url.password,
        dbname=dbname or url.database or "postgres",
        autocommit=True,
        connect_timeout=10,
    )


def fresh_postgres_database(base_url: str, name: str) -> str:
    """(Re)create an empty database ``name`` on ``base_url``'s server.

    Returns its SQLAlchemy URL. Any existing database of that name is dropped
    first, together with its open connections, so a test always starts from an
    empty schema (migration tests in particular).
    """
    url = make_url(base_url)
    if name == url.database:
        raise ValueError(f"refusing to recreate the base database {name!r}; pick another name")
    # Connect to the base database, not "postgres": a server given through
    # HUB_TEST_POSTGRES_URL may not let us into its maintenance database.
    with _admin_connection(url) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return url.set(database=name).render_as_string(hide_password=False)


class PostgresCluster:
    """A private, throw-away PostgreSQL cluster on a free loopback port.

    Durability is switched off (fsync, synchronous_commit, full_page_writes):
    the data dies with the test run anyway, and it makes DDL-heavy tests fast.
    """

    DATABASE = "corridor_test"

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.root = Path(tempfile.mkdtemp(prefix="corridor-pg-"))
        self.datadir = self.root / "data"
        self.logfile = self.root / "postgres.log"
        self.port = 0
        # initdb refuses to run as root, so as root everything runs as the
        # postgres OS user, which must then own the directory.
        self._as_user: list[str] = []
        if os.geteuid() == 0:
            try:
                owner = pwd.getpwnam("postgres")
            except KeyError:
                self._cleanup_dir()
                require("postgresql", "running as root and there is no 'postgres' OS user for initdb")
            os.chown(self.root, owner.pw_uid, owner.pw_gid)
            self._as_user = ["runuser", "-u", "postgres", "--"]

    @property
    def url(self) -> str:
        """SQLAlchemy URL of the ``corridor_test`` database."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{self.DATABASE}"

    def _run(self, args: list[str], what: str) -> None:
        result = subprocess.run(
            [*self._as_user, *args],
            capture_output=True,
            text=True,
            timeout=SERVICE_TIMEOUT * 2,
            check=False,
            stdin=subprocess.DEVNULL,
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"{what} failed (exit {result.returncode}):\n{result.stdout}\n{result.stderr}\n"
                f"--- {self.logfile} ---\n{log_tail(self.logfile)}"
            )

    def start(self) -> None:
        """initdb, start the server, create ``corridor_test``."""
        self._run(
            [
                str(self.bindir / "initdb"),
                "-D", str(self.datadir),
                "-U", "postgres",
                "--auth=trust",
                "-E", "UTF8",
                "--locale=C.UTF-8",
                "--no-sync",
            ],
            "initdb",
        )  # fmt: skip
        # The port is free when picked but may be taken before the postmaster
        # binds it; a few attempts make that race harmless.
        last_error: RuntimeError | None = None
        for _attempt in range(5):
            self.port = free_port()
            options = (
                f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.root} "
                "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
            )
            try:
                self._run(
                    [
                        str(self.bindir / "pg_ctl"),
                        "-D", str(self.datadir),
                        "-l", str(self.logfile),
                        "-w", "-t", str(int(SERVICE_TIMEOUT)),
                        "-o", options,
                        "start",
                    ],
                    "pg_ctl start",
                )  # fmt: skip
            except RuntimeError as error:
                last_error = error
                if "already in use" in log_tail(self.logfile):
                    continue
                raise
            break
        else:
            assert last_error is not None
            raise last_error
        with _admin_connection(make_url(self.url), "postgres") as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.DATABASE)))

    def stop(self) -> None:
        """Stop the server at once (no checkpoint: the data is thrown away) and delete it."""
        if self.port and (self.datadir / "postmaster.pid").exists():
            try:
                self._run(
                    [
                        str(self.bindir / "pg_ctl"),
                        "-D",
                        str(self.datadir),
                        "-m",
                        "immediate",
                        "-w",
                        "stop",
                    ],
                    "pg_ctl stop",
                )
            finally:
                self._cleanup_dir()
        else:
            self._cleanup_dir()

    def _cleanup_dir(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def _normalise_postgres_url(raw: str) -> str:
    """Accept libpq-style URLs in HUB_TEST_POSTGRES_URL; the app needs psycopg 3's dialect."""
    url = make_url(raw)
    if url.drivername in {"postgres", "postgresql"}:
        url = url.set(drivername="postgresql+psycopg")
    return url.render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """SQLAlchemy URL of an empty-at-start PostgreSQL database for this session.

    ``HUB_TEST_POSTGRES_URL`` names an existing server's database to use
    instead; otherwise a private cluster is started and removed at the end.
    """
    given = os.environ.get("HUB_TEST_POSTGRES_URL")
    if given:
        url = _normalise_postgres_url(given)
        try:
            with _admin_connection(make_url(url)) as conn:
                conn.execute("SELECT 1")
        except psycopg.Error as error:
            require("postgresql", f"HUB_TEST_POSTGRES_URL={given!r} does not answer: {error}")
        yield url
        return

    bindir = _postgres_bindir()
    if bindir is None:
        require(
            "postgresql",
            "no server binaries under /usr/lib/postgresql/*/bin or from pg_config (apt-get install postgresql)",
        )
    cluster = PostgresCluster(bindir)
    try:
        cluster.start()
    except (RuntimeError, OSError, psycopg.Error, subprocess.SubprocessError) as error:
        cluster.stop()
        require("postgresql", f"could not start a private cluster: {error}")
    try:
        yield cluster.url
    finally:
        cluster.stop()


# TLS --------------------------------------------------------------------------

#: Where the TLS-only Dovecot listens: a loopback address other than the one
#: clients connect from (127.0.0.1). Dovecot counts a connection whose two ends
#: share an address as secure and accepts a plaintext login on it even with
#: ``ssl = required``; from another address it refuses, so a client that skips
#: TLS fails its test instead of passing unnoticed.
TLS_HOST = "127.0.0.2"


@dataclass(frozen=True)
class TlsFiles:
    """A throw-away certificate authority and a server certificate it issued, as PEM files."""

    ca_file: Path
    #: The server's certificate, then the CA's.
    cert_file: Path
    key_file: Path

    def server_context(self) -> ssl.SSLContext:
        """What a test server presents."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert_file, self.key_file)
        return context

    def client_context(self) -> ssl.SSLContext:
        """A verifying client context that trusts this CA only."""
        return ssl.create_default_context(cafile=str(self.ca_file))


def make_tls_files(directory: Path, *hosts: str) -> TlsFiles:
    """A new CA in ``directory`` and a certificate it issued for ``hosts`` (names or IP addresses)."""
    directory.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA(organization_name="Corridor tests")
    issued = ca.issue_cert(*hosts)
    files = TlsFiles(directory / "ca.pem", directory / "server-chain.pem", directory / "server.key")
    ca.cert_pem.write_to_path(str(files.ca_file))
    files.cert_file.write_bytes(b"".join(blob.bytes() for blob in issued.cert_chain_pems))
    issued.private_key_pem.write_to_path(str(files.key_file))
    # Dovecot's login processes run as its own unprivileged users when we are
    # root; the master reads the files, but keep them readable all the same.
    for path in (files.ca_file, files.cert_file, files.key_file):
        path.chmod(0o644)
    directory.chmod(0o755)
    return files


def make_self_signed_tls_files(directory: Path, host: str) -> TlsFiles:
    """A certificate for ``host`` (an IP address) that signed itself, as small servers and appliances have.

    Its own ``ca_file``: trusting a self-signed server means naming its certificate.
    """
    directory.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"self-signed {host}")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(host))]), critical=False)
        .sign(key, hashes.SHA256())
    )
    files = TlsFiles(directory / "self-signed.pem", directory / "self-signed.pem", directory / "self-signed.key")
    files.cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    files.key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return files


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    """A CA and a certificate for the test servers' loopback addresses, made once per session."""
    return make_tls_files(tmp_path_factory.mktemp("tls"), TLS_HOST, "127.0.0.1", "localhost")


@pytest.fixture(scope="session")
def foreign_ca_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA that issued none of the test servers' certificates (as a mailbox's ``ca_file``: the wrong one)."""
    return make_tls_files(tmp_path_factory.mktemp("foreign-tls"), TLS_HOST).ca_file


# Dovecot (IMAP) ---------------------------------------------------------------

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
# Written by tests/services.py for one test run; not a production config.
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
        return self._pid is not None and not _process_gone(self._pid)

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

        if not _wait_until(pid_written, SERVICE_TIMEOUT):
            raise RuntimeError(f"dovecot wrote no {pid_file}\n{self._diagnostics()}")
        self._pid = int(pid_file.read_text().strip())
        if not _wait_until(self._greets, SERVICE_TIMEOUT, interval=0.01):
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
        if not _wait_until(lambda: _process_gone(pid), SERVICE_TIMEOUT):
            raise RuntimeError(f"dovecot master {pid} survived SIGTERM\n{self._diagnostics()}")
        if not _wait_until(lambda: not port_is_open(self.host, self.port), SERVICE_TIMEOUT):
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


def _started_dovecot(*, tls: TlsFiles | None = None, special_use: Mapping[str, str] | None = None) -> Dovecot:
    server = Dovecot(tls=tls, special_use=special_use)
    try:
        server.start()
    except (RuntimeError, OSError, subprocess.SubprocessError) as error:
        server.close()
        require("dovecot", str(error))
    return server


@pytest.fixture
def dovecot() -> Iterator[Dovecot]:
    """A running, empty Dovecot for one test (it starts in milliseconds)."""
    server = _started_dovecot()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def start_dovecot() -> Iterator[Callable[..., Dovecot]]:
    """Starts Dovecots configured for one test (``tls``, ``special_use``); all are stopped afterwards."""
    servers: list[Dovecot] = []

    def start(*, tls: TlsFiles | None = None, special_use: Mapping[str, str] | None = None) -> Dovecot:
        server = _started_dovecot(tls=tls, special_use=special_use)
        servers.append(server)
        return server

    try:
        yield start
    finally:
        for server in servers:
            server.close()


# SMTP -------------------------------------------------------------------------


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


def _started_smtp_server(
    *,
    tls: SmtpTls | None = None,
    tls_files: TlsFiles | None = None,
    login: tuple[str, str] | None = None,
    smtputf8: bool = True,
) -> SmtpServer:
    server = SmtpServer(tls=tls, tls_files=tls_files, login=login, smtputf8=smtputf8)
    try:
        server.start()
    except (RuntimeError, OSError, TimeoutError) as error:
        require("smtp", f"aiosmtpd could not start: {error}")
    return server


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    """A recording SMTP server for one test (it starts in milliseconds)."""
    server = _started_smtp_server()
    try:
        yield server
    finally:
        server.stop()


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
        server = _started_smtp_server(tls=tls, tls_files=tls_files, login=login, smtputf8=smtputf8)
        servers.append(server)
        return server

    try:
        yield start
    finally:
        for server in servers:
            server.stop()
