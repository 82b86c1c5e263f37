"""The ``corridor`` command: serve, migrate, manage agents, demo data, search, journal, worker.

Every command is an entry point: it opens its own transaction(s) and prints
what it did. Connectors add their own commands (``corridor email sync``).
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

import click
from alembic import command
from flask import Flask
from flask.cli import FlaskGroup, with_appcontext
from sqlalchemy import func, select

from hub import create_app
from hub.auth import create_agent, issue_token
from hub.config import SettingsError
from hub.identity import normalise_email
from hub.journal import due_entries, received_entries, replay
from hub.metrics import prepare_multiprocess
from hub.migrate import alembic_config, current_revision, head_revision, is_current, upgrade
from hub.models import Agent, Interaction, JournalEntry, JournalStatus, Role
from hub.replies import deliver, due_deliveries
from hub.runtime import Runtime, current_runtime

log = logging.getLogger("corridor")


def _create_app() -> Flask:
    try:
        return create_app()
    except SettingsError as exc:
        click.echo(f"Corridor cannot start: {exc}", err=True)
        sys.exit(2)


@click.group(cls=FlaskGroup, create_app=_create_app, add_default_commands=False, add_version_option=False)
def cli() -> None:
    """Corridor: one timeline per customer, across every channel."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def main() -> None:
    cli(prog_name="corridor")


def _runtime() -> Runtime:
    return current_runtime()


# -- database ------------------------------------------------------------------------


@cli.group()
def db() -> None:
    """The database schema."""


@db.command("upgrade")
@with_appcontext
def db_upgrade() -> None:
    """Apply every migration not yet applied."""
    database = _runtime().database
    before = current_revision(database)
    upgrade(database)
    after = current_revision(database)
    click.echo(f"database at {after}" + ("" if before == after else f" (was {before or 'empty'})"))


@db.command("current")
@with_appcontext
def db_current() -> None:
    """Which migration the database is at, and the newest there is."""
    database = _runtime().database
    click.echo(f"current: {current_revision(database) or 'empty'}; newest: {head_revision(database)}")


@db.command("revision")
@click.option("-m", "--message", required=True, help="What the migration does, e.g. 'add conversation tags'.")
@with_appcontext
def db_revision(message: str) -> None:
    """Write a new migration from the difference between the models and the database."""
    database = _runtime().database
    if not is_current(database):
        raise click.ClickException("the database is not at the newest migration; run `corridor db upgrade` first")
    command.revision(alembic_config(database), message=message, autogenerate=True)


# -- agents --------------------------------------------------------------------------


@cli.group()
def user() -> None:
    """Agents who work in Corridor."""


@user.command("create")
@click.argument("email")
@click.option("--name", default="", help="Display name (default: the email).")
@click.option("--role", type=click.Choice([r.value for r in Role]), default=Role.AGENT.value, show_default=True)
@click.option(
    "--password",
    envvar="CORRIDOR_PASSWORD",
    default=None,
    help="Password for the web pages (or CORRIDOR_PASSWORD). Without one, the agent uses the API only.",
)
@with_appcontext
def user_create(email: str, name: str, role: str, password: str | None) -> None:
    """Create an agent and print their API token (shown once)."""
    with _runtime().database.write() as session:
        try:
            agent, token = create_agent(session, email=email, name=name, role=Role(role), password=password)
        except ValueError as exc:
            raise click.BadParameter(str(exc)) from None
        click.echo(f"created {agent.role} {agent.email} (id {agent.id})")
    click.echo(f"API token: {token}")


@user.command("token")
@click.argument("email")
@with_appcontext
def user_token(email: str) -> None:
    """Issue a new API token for an agent (the old one stops working)."""
    with _runtime().database.write() as session:
        agent = session.scalar(select(Agent).where(Agent.email == normalise_email(email)))
        if agent is None:
            raise click.BadParameter(f"no agent {email}")
        token = issue_token(agent)
    click.echo(f"API token: {token}")


# -- demo and serving ----------------------------------------------------------------


@cli.command("demo")
@click.option("--customers", default=60, show_default=True, help="How many customers to invent.")
@click.option("--if-empty", is_flag=True, help="Do nothing when the database has customers already.")
@click.option("--seed", default=7, show_default=True)
@with_appcontext
def demo(customers: int, if_empty: bool, seed: int) -> None:
    """Load realistic demo data through the real ingest pipeline."""
    from hub.demo import load_demo

    runtime = _runtime()
    upgrade(runtime.database)
    summary = load_demo(runtime, customers=customers, seed=seed, if_empty=if_empty, echo=click.echo)
    click.echo(summary)


#: How much lower the CPU priority of the worker ``corridor run`` starts is:
#: the lowest there is. On a small machine the web process and the worker
#: compete for the cores: requests (a provider waiting for its 2xx, an agent
#: for a page) go first, and the journal processor, whose work is already
#: durable, catches up in the gaps. The web process is held to about one core
#: by the GIL, so with two or more the worker still has most of one. Measured
#: on two cores under webhook load: niceness 10 gave the web process 99 % of
#: a core instead of 93 %; 19 gave it 103 % and 3-5 % more requests per
#: second again, and the worker kept up all the same (no backlog at the end
#: of any run). /api/health turns degraded if it ever does not.
WORKER_NICENESS = 19


def start_worker(environ: Mapping[str, str] | None = None) -> subprocess.Popen[bytes]:
    """``corridor worker`` as a child of this process, stopping when this process is gone.

    It reads its settings from ``environ`` (default: this process's), so it
    runs on the same database with the same connectors.
    """
    command = ["worker", "--parent-pid", str(os.getpid()), "--nice", str(WORKER_NICENESS)]
    # Our own interpreter and module, no user input: S603 does not apply.
    return subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", "hub.cli", *command],
        env=dict(environ) if environ is not None else None,
    )


@cli.command("run")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True)
@click.option("--threads", default=8, show_default=True)
@click.option(
    "--worker/--no-worker",
    default=True,
    show_default=True,
    help="Start `corridor worker` beside the web server (journal processing, intake, retries).",
)
@with_appcontext
def run(host: str, port: int, threads: int, worker: bool) -> None:
    """Serve Corridor (migrations applied first), with a worker process beside it."""
    from flask import current_app
    from waitress import serve

    runtime = _runtime()
    upgrade(runtime.database)
    # Before any metric is made: the worker inherits the directory, and
    # /metrics adds up what both processes counted (hub.metrics).
    prepare_multiprocess(runtime.instance_dir)
    supervisor = _WorkerSupervisor() if worker else None
    if supervisor is not None:
        # The worker processes what the web server journals, on the other
        # core: the web process only checks, journals and answers.
        runtime.journal.detach()
        supervisor.start()
    click.echo(
        f"Corridor on http://{host}:{port}  (database: {runtime.database.dialect}, search: {runtime.search.name}"
        f"{', worker pid ' + str(supervisor.pid) if supervisor else ''})"
    )
    # SIGTERM (systemd, docker stop) ends the server like Ctrl-C, so the
    # worker is stopped in turn rather than left to notice it is orphaned.
    signal.signal(signal.SIGTERM, lambda _signum, _frame: sys.exit(0))
    try:
        serve(current_app._get_current_object(), host=host, port=port, threads=threads, ident="corridor")  # type: ignore[attr-defined]
    finally:
        if supervisor is not None:
            supervisor.stop()


class _WorkerSupervisor:
    """Keeps `corridor run`'s worker running: what the web journals waits for it."""

    CHECK_EVERY = 2.0

    def __init__(self) -> None:
        self.child: subprocess.Popen[bytes] | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="worker supervisor", daemon=True)

    @property
    def pid(self) -> int:
        return self.child.pid if self.child else 0

    def start(self) -> None:
        self.child = start_worker()
        self._thread.start()

    def _watch(self) -> None:
        restarts = 0
        while not self._stop.wait(self.CHECK_EVERY):
            if self.child is None or self.child.poll() is None:
                continue
            restarts += 1
            delay = min(2.0**restarts, 60.0)
            log.error("the worker exited with status %s; starting it again in %.0f s", self.child.returncode, delay)
            if self._stop.wait(delay):
                return
            self.child = start_worker()

    def stop(self) -> None:
        self._stop.set()
        if self.child is not None and self.child.poll() is None:
            self.child.terminate()
            try:
                self.child.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.child.kill()


# -- search --------------------------------------------------------------------------


@cli.group()
def search() -> None:
    """The full-text index."""


@search.command("reindex")
@with_appcontext
def search_reindex() -> None:
    """Rebuild the index from the database, with progress."""
    runtime = _runtime()
    started = time.perf_counter()
    with runtime.database.write() as session:
        total = session.scalar(select(func.count()).select_from(Interaction)) or 0
        with click.progressbar(length=max(int(total), 1), label="indexing interactions") as bar:
            last = [0]

            def progress(done: int, _total: int) -> None:
                bar.update(done - last[0])
                last[0] = done

            count = runtime.search.rebuild(session, progress)
    elapsed = time.perf_counter() - started
    click.echo(f"indexed {count} interactions in {elapsed:.1f} s ({runtime.search.name})")


@search.command("check")
@with_appcontext
def search_check() -> None:
    """Whether the index agrees with the database."""
    runtime = _runtime()
    with runtime.database.read() as session:
        health = runtime.search.health(session)
    click.echo(" ".join(f"{k}={v}" for k, v in health.items()))
    if not health.get("ok"):
        sys.exit(1)


# -- journal -------------------------------------------------------------------------


@cli.group()
def journal() -> None:
    """Raw payloads as they arrived, and replay of those that failed."""


@journal.command("list")
@click.option(
    "--status",
    type=click.Choice([s.value for s in JournalStatus]),
    default=JournalStatus.FAILED.value,
    show_default=True,
)
@click.option("--limit", default=50, show_default=True)
@with_appcontext
def journal_list(status: str, limit: int) -> None:
    """Journal entries by status, newest first."""
    database = _runtime().database
    rows: Sequence[JournalEntry]
    if status == JournalStatus.RECEIVED:
        # On SQLite most of them wait in the inbox (hub.inbox).
        rows = received_entries(database, limit)
    else:
        with database.read() as session:
            rows = session.scalars(
                select(JournalEntry).where(JournalEntry.status == status).order_by(JournalEntry.id.desc()).limit(limit)
            ).all()
    if not rows:
        click.echo(f"no {status} entries")
    for row in rows:
        click.echo(
            f"#{row.id} {row.received_at:%Y-%m-%d %H:%M:%S} {row.source} attempts={row.attempts} {row.error or ''}"
        )


@journal.command("replay")
@click.option("--id", "entry_ids", multiple=True, type=int, help="Replay these entries (default: all that are due).")
@with_appcontext
def journal_replay(entry_ids: tuple[int, ...]) -> None:
    """Parse and process failed or deferred entries again."""
    runtime = _runtime()
    ids = list(entry_ids)
    if not ids:
        with runtime.database.read() as session:
            ids = due_entries(session, limit=10_000)
    outcomes = replay(runtime.database, runtime.registry, ids)
    ok = sum(1 for o in outcomes if o.ok)
    for outcome in outcomes:
        if not outcome.ok:
            errors = outcome.error or "; ".join(r.error or "deferred" for r in outcome.results if r.error or r.deferred)
            click.echo(f"#{outcome.entry_id}: {errors}")
    click.echo(f"replayed {len(outcomes)} entries: {ok} done, {len(outcomes) - ok} still failing or deferred")


# -- worker --------------------------------------------------------------------------


def _every(seconds: float, work: Any, stop: threading.Event, name: str) -> None:
    while not stop.is_set():
        try:
            work()
        except Exception:
            log.exception("%s failed; trying again in %s s", name, seconds)
        stop.wait(seconds)


@cli.command("worker")
@click.option("--interval", default=5.0, show_default=True, help="Seconds between retry passes.")
@click.option("--parent-pid", type=int, default=None, hidden=True, help="Stop when this process is gone.")
@click.option(
    "--nice",
    "niceness",
    type=click.IntRange(0, 19),
    default=0,
    show_default=True,
    help=f"Lower this process's CPU priority by this much (`corridor run` starts its worker with {WORKER_NICENESS}).",
)
@with_appcontext
def worker(interval: float, parent_pid: int | None, niceness: int) -> None:
    """Process the journal; run the connectors' intake loops, reply retries and journal replays until stopped."""
    if niceness:
        os.nice(niceness)
    runtime = _runtime()
    upgrade(runtime.database)
    # This process processes what any web process journals; it learns of new
    # entries by polling, so its own in-process wake-ups are not needed.
    runtime.journal.detach()
    stop = threading.Event()

    def retry_replies() -> None:
        for interaction_id in due_deliveries(runtime.database):
            deliver(runtime.database, runtime.registry.senders, interaction_id)

    def replay_journal() -> None:
        with runtime.database.read() as session:
            ids = due_entries(session)
        if ids:
            # Other workers may have found the same entries due.
            replay(runtime.database, runtime.registry, ids, due_only=True)

    def watch_parent(stop: threading.Event) -> None:
        # Started by `corridor run`: a worker outliving its web server
        # (killed with SIGKILL, say) would keep the database busy for nobody.
        while not stop.wait(1.0):
            if os.getppid() != parent_pid:
                # Stop first: the parent's end of stdout may be gone with it,
                # so saying so can fail.
                stop.set()
                log.warning("parent process %s is gone: stopping", parent_pid)

    loops: dict[str, Any] = {
        "journal processing": runtime.journal.run,
        "reply retries": lambda s: _every(interval, retry_replies, s, "reply retries"),
        "journal replay": lambda s: _every(interval, replay_journal, s, "journal replay"),
        **runtime.registry.workers,
    }
    if parent_pid is not None:
        loops["parent watch"] = watch_parent
    threads = [threading.Thread(target=loop, args=(stop,), name=name, daemon=True) for name, loop in loops.items()]

    def shutdown(signum: int, _frame: Any) -> None:
        click.echo(f"signal {signum}: stopping after the current step")
        stop.set()

    signal.signal(signal.SIGTERM, shutdown)
    signal.signal(signal.SIGINT, shutdown)
    for thread in threads:
        thread.start()
    click.echo(f"worker running: {', '.join(loops)}")
    while any(t.is_alive() for t in threads) and not stop.is_set():
        stop.wait(0.5)
    stop.set()
    for thread in threads:
        thread.join(timeout=30)


if __name__ == "__main__":
    main()
