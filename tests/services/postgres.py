"""PostgreSQL: a private throw-away cluster per test session, or the server ``HUB_TEST_POSTGRES_URL`` names."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from sqlalchemy.engine import URL, make_url

from tests.services.process import SERVICE_TIMEOUT, free_port, log_tail, require


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
