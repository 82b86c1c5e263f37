"""The ``[email]`` settings section, typed and validated.

``config/defaults.toml`` documents every key; :class:`EmailSettings` has exactly
those keys (``Settings.section`` refuses any drift). Each entry of
``mailboxes`` is a TOML table read into a :class:`MailboxSettings`, with every
problem reported under its position, e.g. ``[email] mailboxes[0].tls: ...``, so
an operator knows which mailbox and which key to fix.

Passwords are never settings values: a mailbox names an environment variable
or a file, and the secret is read only when a connection is made. Neither the
secret nor where it lives appears in a repr.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from hub.contract import SettingsError, read_secret

TLS_MODES = ("ssl", "starttls", "none")
_IMAP_PORTS = {"ssl": 993, "starttls": 143, "none": 143}
_SMTP_PORTS = {"ssl": 465, "starttls": 587, "none": 25}
# RFC 2177 asks clients to re-issue IDLE at least every 29 minutes, because
# servers may drop a client idle for 30.
MAX_IDLE_TIMEOUT = 29 * 60
MAX_BATCH_SIZE = 10_000
#: More parser processes than this is a typo, not a machine.
MAX_PARSE_PROCESSES = 64
_ADDRESS = re.compile(r"[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")

_MAILBOX_KEYS = frozenset(
    {
        *("name", "host", "port", "tls", "user", "password_env", "password_file", "folders", "address"),
        *("smtp_host", "smtp_port", "smtp_tls", "smtp_user", "smtp_password_env", "smtp_password_file"),
        *("since", "mark_seen", "ca_file", "smtp_ca_file", "sent_folder", "copy_to_sent"),
    }
)


@dataclass(frozen=True)
class MailboxSettings:
    """One mailbox: where its mail is read (IMAP) and how replies leave it (SMTP)."""

    #: Names the mailbox in cursors ("<name>/<folder>") and journal sources.
    name: str
    host: str
    port: int
    tls: str
    user: str
    #: The address customers write to; replies go out from it.
    address: str
    folders: tuple[str, ...]
    smtp_host: str
    smtp_port: int
    smtp_tls: str
    smtp_user: str
    #: First day to backfill (INTERNALDATE, the server's arrival date); None: everything.
    since: date | None
    #: Set \\Seen on what was ingested. Off by default: Corridor is a reader,
    #: and a support mailbox may also be read by people in a mail client.
    mark_seen: bool
    #: PEM file of the certificate authorities the IMAP server's certificate
    #: is verified against, instead of the system's ("": the system's). Also
    #: how a self-signed server certificate is trusted: name the certificate.
    #: There is deliberately no way to switch verification off.
    ca_file: str = ""
    #: The same for the SMTP server (default: ``ca_file``).
    smtp_ca_file: str = ""
    #: Where copies of sent replies are filed; "": the folder the server marks
    #: \Sent (RFC 6154 SPECIAL-USE), if any.
    sent_folder: str = ""
    #: File a copy of every sent reply in the Sent folder. Off for servers
    #: that file what they relay themselves (a copy there would show twice).
    copy_to_sent: bool = True
    password_env: str = field(default="", repr=False)
    password_file: str = field(default="", repr=False)
    smtp_password_env: str = field(default="", repr=False)
    smtp_password_file: str = field(default="", repr=False)

    @property
    def domain(self) -> str:
        """The domain of :attr:`address` (generated Message-IDs end in it)."""
        return self.address.rpartition("@")[2].lower()

    def password(self) -> str:
        """The IMAP password, from the environment variable or the file named."""
        return _secret(self.password_env, self.password_file, f"[email] mailbox {self.name!r} password")

    def smtp_password(self) -> str:
        """The SMTP password; the IMAP one unless the mailbox names its own."""
        if self.smtp_password_env or self.smtp_password_file:
            return _secret(
                self.smtp_password_env, self.smtp_password_file, f"[email] mailbox {self.name!r} smtp_password"
            )
        return self.password()

    @classmethod
    def from_table(cls, position: int, table: Any) -> MailboxSettings:
        """Read one ``mailboxes`` entry; raises :class:`SettingsError` naming the key at fault."""
        where = f"[email] mailboxes[{position}]"
        if not isinstance(table, dict):
            raise SettingsError(
                f'{where}: expected a table like {{"name": "support", "host": "imap.example.com", ...}}, '
                f"got {type(table).__name__}"
            )
        unknown = sorted(table.keys() - _MAILBOX_KEYS)
        if unknown:
            raise SettingsError(f"{where}.{unknown[0]}: unknown key (known: {', '.join(sorted(_MAILBOX_KEYS))})")
        read = _TableReader(where, table)
        host = read.text("host", required=True)
        tls = read.choice("tls", TLS_MODES, "ssl")
        user = read.text("user", required=True)
        address = read.text("address") or (user if _ADDRESS.fullmatch(user) else "")
        if not address:
            raise SettingsError(
                f"{where}.address: required (the address replies go out from), e.g. support@example.com"
            )
        if not _ADDRESS.fullmatch(address):
            raise SettingsError(f"{where}.address: expected an email address, got {address!r}")
        name = read.text("name") or address
        if "/" in name:
            # The cursor key is "<name>/<folder>": a slash would make it ambiguous.
            raise SettingsError(f"{where}.name: must not contain '/', got {name!r}")
        password_env = read.text("password_env")
        password_file = read.text("password_file")
        if password_env and password_file:
            raise SettingsError(f"{where}.password_env: give password_env or password_file, not both")
        if not password_env and not password_file:
            raise SettingsError(
                f"{where}.password_env: required: the name of an environment variable holding the password "
                "(or password_file)"
            )
        smtp_password_env = read.text("smtp_password_env")
        smtp_password_file = read.text("smtp_password_file")
        if smtp_password_env and smtp_password_file:
            raise SettingsError(f"{where}.smtp_password_env: give smtp_password_env or smtp_password_file, not both")
        folders = read.folders()
        smtp_tls = read.choice("smtp_tls", TLS_MODES, tls)
        ca_file = read.text("ca_file")
        return cls(
            name=name,
            host=host,
            port=read.port("port", _IMAP_PORTS[tls]),
            tls=tls,
            user=user,
            address=address,
            folders=folders,
            smtp_host=read.text("smtp_host") or host,
            smtp_port=read.port("smtp_port", _SMTP_PORTS[smtp_tls]),
            smtp_tls=smtp_tls,
            smtp_user=read.text("smtp_user") or user,
            since=read.since(),
            mark_seen=read.flag("mark_seen"),
            ca_file=ca_file,
            smtp_ca_file=read.text("smtp_ca_file") or ca_file,
            sent_folder=read.text("sent_folder"),
            copy_to_sent=read.flag("copy_to_sent", default=True),
            password_env=password_env,
            password_file=password_file,
            smtp_password_env=smtp_password_env,
            smtp_password_file=smtp_password_file,
        )


def _secret(env: str, file: str, name: str) -> str:
    if env:
        value = os.environ.get(env)
        if value is None:
            # The variable's name is configuration, not a secret: say which one.
            raise SettingsError(f"{name}: the environment variable {env} is not set")
        secret = read_secret(value, "", name)
    else:
        secret = read_secret("", file, name)
    if not secret:
        raise SettingsError(f"{name}: empty")
    return secret


class _TableReader:
    """Typed access to one mailbox table, with errors that name the key."""

    def __init__(self, where: str, table: dict[str, Any]) -> None:
        self.where = where
        self.table = table

    def text(self, key: str, *, required: bool = False) -> str:
        value = self.table.get(key, "")
        if not isinstance(value, str):
            raise SettingsError(f"{self.where}.{key}: expected a string, got {value!r}")
        value = value.strip()
        if required and not value:
            raise SettingsError(f"{self.where}.{key}: required")
        return value

    def choice(self, key: str, options: tuple[str, ...], default: str) -> str:
        value = self.text(key) or default
        if value not in options:
            raise SettingsError(f"{self.where}.{key}: one of {', '.join(options)}, got {value!r}")
        return value

    def port(self, key: str, default: int) -> int:
        value = self.table.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
            raise SettingsError(f"{self.where}.{key}: expected a port number 1-65535, got {value!r}")
        return value

    def flag(self, key: str, *, default: bool = False) -> bool:
        value = self.table.get(key, default)
        if not isinstance(value, bool):
            raise SettingsError(f"{self.where}.{key}: expected true or false, got {value!r}")
        return value

    def folders(self) -> tuple[str, ...]:
        value = self.table.get("folders", ["INBOX"])
        if not isinstance(value, list) or not value:
            raise SettingsError(f'{self.where}.folders: expected a non-empty list of folder names, e.g. ["INBOX"]')
        seen: set[str] = set()
        for index, folder in enumerate(value):
            if not isinstance(folder, str) or not folder.strip():
                raise SettingsError(f"{self.where}.folders[{index}]: expected a folder name, got {folder!r}")
            if folder in seen:
                raise SettingsError(f"{self.where}.folders[{index}]: {folder!r} is listed twice")
            seen.add(folder)
        return tuple(value)

    def since(self) -> date | None:
        value = self.text("since")
        if not value:
            return None
        try:
            if not _DATE.fullmatch(value):
                raise ValueError
            return date.fromisoformat(value)
        except ValueError:
            raise SettingsError(f"{self.where}.since: expected a date YYYY-MM-DD or empty, got {value!r}") from None


@dataclass(frozen=True)
class EmailSettings:
    """The ``[email]`` section: the mailboxes and how intake paces itself."""

    #: The raw tables, as configured; :meth:`mailbox_settings` reads them.
    mailboxes: list[Any]
    poll_interval: int
    idle_timeout: int
    batch_size: int
    #: Worker processes that parse mail during a backfill; -1: one per CPU,
    #: 0: parse in the intake's own thread.
    parse_processes: int
    #: Seconds a worker's hold on a folder lasts unless renewed (hub.leases).
    lease_seconds: int

    def validate(self) -> None:
        """Raise :class:`SettingsError` naming the first malformed key."""
        if not 3 <= self.lease_seconds <= 3600:
            raise SettingsError(f"[email] lease_seconds: expected 3 to 3600 seconds, got {self.lease_seconds}")
        if not 1 <= self.poll_interval <= 86_400:
            raise SettingsError(f"[email] poll_interval: expected 1 to 86400 seconds, got {self.poll_interval}")
        if not 1 <= self.idle_timeout <= MAX_IDLE_TIMEOUT:
            raise SettingsError(
                f"[email] idle_timeout: expected 1 to {MAX_IDLE_TIMEOUT} seconds (servers drop clients idle "
                f"for 30 minutes), got {self.idle_timeout}"
            )
        if not 1 <= self.batch_size <= MAX_BATCH_SIZE:
            raise SettingsError(f"[email] batch_size: expected 1 to {MAX_BATCH_SIZE}, got {self.batch_size}")
        if not -1 <= self.parse_processes <= MAX_PARSE_PROCESSES:
            raise SettingsError(
                f"[email] parse_processes: expected -1 (one per CPU), 0 (none) or up to {MAX_PARSE_PROCESSES}, "
                f"got {self.parse_processes}"
            )
        self.mailbox_settings()

    def mailbox_settings(self) -> tuple[MailboxSettings, ...]:
        """Every configured mailbox, read and checked."""
        mailboxes = tuple(MailboxSettings.from_table(i, table) for i, table in enumerate(self.mailboxes))
        names: dict[str, int] = {}
        addresses: dict[str, int] = {}
        for position, mailbox in enumerate(mailboxes):
            if mailbox.name in names:
                raise SettingsError(
                    f"[email] mailboxes[{position}].name: {mailbox.name!r} is also mailboxes[{names[mailbox.name]}]'s"
                )
            names[mailbox.name] = position
            # Replies pick their mailbox by address: two with one address
            # would make that choice arbitrary.
            key = mailbox.address.casefold()
            if key in addresses:
                raise SettingsError(
                    f"[email] mailboxes[{position}].address: {mailbox.address!r} is also mailboxes[{addresses[key]}]'s"
                )
            addresses[key] = position
        return mailboxes
