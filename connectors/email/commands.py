"""``corridor email ...``: intake on demand and the folder cursors.

``corridor email sync --once`` runs one catch-up pass over every configured
folder with a progress bar per folder (the first pass of a big mailbox is a
backfill of thousands of messages, and an operator wants to see it move);
without ``--once`` it keeps watching, like the worker's intake loop.
``corridor email status`` shows how far each folder has been ingested.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Sequence
from typing import Any

import click

from connectors.email.intake import (
    CONNECTOR,
    FolderCursor,
    FolderIntake,
    SyncReport,
    cursor_key,
    folder_intakes,
    intake_worker,
    stop_parsers,
    sync_once,
)
from connectors.email.settings import EmailSettings, MailboxSettings
from hub.contract import Database, all_state


class _ProgressDisplay:
    """A click progress bar for one folder, opened when the pass knows its total."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.bar: Any = None
        self.shown = 0

    def __call__(self, done: int, total: int) -> None:
        if self.bar is None:
            if total == 0:
                return
            self.bar = click.progressbar(length=total, label=self.label, show_pos=True, show_percent=True)
            self.bar.__enter__()
        self.bar.update(done - self.shown)
        self.shown = done

    def for_intake(self, _intake: FolderIntake) -> _ProgressDisplay:
        return self

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None


def _describe(cursor: FolderCursor | None) -> str:
    if cursor is None:
        return "not synced yet"
    modseq = "-" if cursor.highestmodseq is None else str(cursor.highestmodseq)
    return f"uidvalidity={cursor.uidvalidity} last_uid={cursor.last_uid} highestmodseq={modseq}"


def email_commands(database: Database, settings: EmailSettings, mailboxes: Sequence[MailboxSettings]) -> click.Group:
    """The ``email`` command group, bound to the running hub's database and settings."""

    @click.group("email")
    def email() -> None:
        """Email: mailbox intake and its cursors."""

    @email.command("sync")
    @click.option("--once", is_flag=True, help="One catch-up pass over every mailbox folder, then exit.")
    def sync(once: bool) -> None:
        """Bring every configured mailbox folder onto the timeline.

        With --once: one pass, with progress, then a line per folder; exits 1
        if any folder could not be read. Without: keeps watching (IDLE or
        polling) until interrupted, as `corridor worker` does.
        """
        intakes = folder_intakes(database, settings, mailboxes)
        if not once:
            _watch(intakes)
            return
        failed = False
        try:
            for intake in intakes:
                display = _ProgressDisplay(intake.key)
                try:
                    (outcome,) = sync_once([intake], display.for_intake)
                finally:
                    display.close()
                if isinstance(outcome, SyncReport):
                    click.echo(outcome.summary())
                else:
                    failed = True
                    click.echo(f"{intake.key}: failed: {type(outcome).__name__}: {outcome}", err=True)
        finally:
            # The folders' passes share the parser processes; done with them now.
            stop_parsers()
        if failed:
            raise SystemExit(1)

    @email.command("status")
    def status() -> None:
        """Each folder's cursor: UIDVALIDITY, the last UID on the timeline, HIGHESTMODSEQ."""
        with database.read() as session:
            saved = all_state(session, CONNECTOR)
        for mailbox in mailboxes:
            for folder in mailbox.folders:
                key = cursor_key(mailbox, folder)
                cursor = FolderCursor.from_state(saved.pop(key, None))
                click.echo(f"{key} ({mailbox.user} at {mailbox.host}:{mailbox.port}): {_describe(cursor)}")
        for key, value in sorted(saved.items()):
            click.echo(f"{key} (no longer configured): {_describe(FolderCursor.from_state(value))}")

    return email


def _watch(intakes: Sequence[FolderIntake]) -> None:
    stop = threading.Event()

    def shutdown(signum: int, _frame: Any) -> None:
        click.echo(f"signal {signum}: stopping")
        stop.set()

    signal.signal(signal.SIGTERM, shutdown)
    signal.signal(signal.SIGINT, shutdown)
    click.echo(f"watching {', '.join(intake.key for intake in intakes)} (Ctrl-C stops)")
    intake_worker(intakes)(stop)
