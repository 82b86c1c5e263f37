"""The ``corridor`` command: serve, migrate, manage agents, demo data, search, journal, worker.

Every command is an entry point: it opens its own transaction(s) and prints
what it did. Connectors add their own commands (``corridor email sync``).
"""

from __future__ import annotations

import importlib.util
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import click
from alembic import command
from flask import Flask
from flask.cli import FlaskGroup, with_appcontext
from sqlalchemy import select
from sqlalchemy.orm import Session

from hub import create_app, media
from hub.auth import (
    AgentChangeRefused,
    check_new_password,
    create_agent,
    end_sessions,
    issue_token,
    set_active,
    set_password,
)
from hub.config import SettingsError
from hub.customers import NotFound, audit
from hub.erasure import apply_retention, compact, erase_customer
from hub.identity import normalise_email
from hub.integrations import webhook_settings
from hub.integrations.commands import webhook
from hub.integrations.worker import WebhookWorker
from hub.journal import due_entries, received_entries, replay
from hub.live import prune as live_prune
from hub.metrics import prepare_multiprocess
from hub.migrate import alembic_config, current_revision, head_revision, is_current, upgrade
from hub.models import Agent, JournalEntry, JournalStatus, Role
from hub.replies import deliver, due_deliveries
from hub.runtime import Runtime, current_runtime
from hub.search.commands import engine_of, search, verify_engine
from hub.search.indexer import run as run_indexer

log = logging.getLogger("corridor")

#: How ``corridor run`` (and the tests' loopback servers) configure waitress.
#: poll(), not waitress's default select(): select() refuses a descriptor
#: numbered 1024 or more, and the server's loop thread then dies while the
#: listening socket keeps accepting, so every request hangs unanswered.
WAITRESS_OPTIONS: dict[str, Any] = {"ident": "corridor", "asyncore_use_poll": True}


def _create_app() -> Flask:
    try:
        return create_app()
    except SettingsError as exc:
        click.echo(f"Corridor cannot start: {exc}", err=True)
        sys.exit(2)


class _CorridorGroup(FlaskGroup):
    """Flask's command group without Flask's own options (--app, --env-file, --debug).

    Corridor builds its app itself and takes settings from HUB_* and
    HUB_CONFIG; `corridor --help` should show Corridor's commands, not
    options that would load another application.
    """

    def __init__(self, **extra: Any) -> None:
        super().__init__(**extra)
        self.params = [p for p in self.params if p.name not in {"app", "env_file", "debug"}]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """A connector's commands exist only while it is enabled; asked for while it is not, say how to enable it."""
        found = super().get_command(ctx, cmd_name)
        if found is not None or not cmd_name.isidentifier() or importlib.util.find_spec("connectors") is None:
            return found
        if importlib.util.find_spec(f"connectors.{cmd_name}") is None:
            return None

        @click.command(cmd_name, context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
        def disabled() -> None:
            raise click.UsageError(
                f"`corridor {cmd_name}` belongs to the {cmd_name} connector, which is not enabled here. Enable it "
                f"with HUB_APP_CONNECTORS='[\"{cmd_name}\"]' (a JSON list, with any others you use) or "
                f"[app] connectors in the config file, with the same settings the server runs with."
            )

        return disabled


@click.group(
    cls=_CorridorGroup,
    create_app=_create_app,
    add_default_commands=False,
    add_version_option=False,
    load_dotenv=False,
    set_debug_flag=False,
)
def cli() -> None:
    """Corridor: one timeline per customer, across every channel."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Both search clients log every request at INFO: hundreds a second from the indexer.
    for name in ("opensearch", "elastic_transport.transport"):
        logging.getLogger(name).setLevel(logging.WARNING)


cli.add_command(search)


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


#: Where `corridor user create` and `corridor user password` read a password
#: from when not from a prompt: never from the command line, which every
#: user of the machine can read in `ps`.
PASSWORD_VARIABLE = "CORRIDOR_PASSWORD"  # noqa: S105 (the name of a variable, not a password)


def _read_password(ask: bool) -> str | None:
    """The password from CORRIDOR_PASSWORD, else typed at a prompt (twice) when ``ask``."""
    from_environment = os.environ.get(PASSWORD_VARIABLE)
    if from_environment:
        return from_environment
    if not ask:
        return None
    password: str = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        check_new_password(password)
    except AgentChangeRefused as exc:
        raise click.BadParameter(f"a password {exc.message}", param_hint="password") from None
    return password


def _agent(session: Session, email: str) -> Agent:
    try:
        address = normalise_email(email)
    except ValueError:
        raise click.BadParameter(f"not an email address: {email}", param_hint="EMAIL") from None
    agent = session.scalar(select(Agent).where(Agent.email == address))
    if agent is None:
        raise click.BadParameter(f"no agent {email}", param_hint="EMAIL")
    return agent


@user.command("create")
@click.argument("email")
@click.option("--name", default="", help="Display name (default: the email).")
@click.option("--role", type=click.Choice([r.value for r in Role]), default=Role.AGENT.value, show_default=True)
@click.option(
    "--password",
    "ask",
    is_flag=True,
    help=f"Ask for a console password at a prompt (or set {PASSWORD_VARIABLE}). "
    "Without either, the agent uses the API only.",
)
@with_appcontext
def user_create(email: str, name: str, role: str, ask: bool) -> None:
    """Create an agent and print their API token (shown once)."""
    password = _read_password(ask)
    with _runtime().database.write() as session:
        try:
            agent, token = create_agent(session, email=email, name=name, role=Role(role), password=password)
        except ValueError as exc:
            raise click.BadParameter(str(exc)) from None
        click.echo(f"created {agent.role} {agent.email} (id {agent.id})")
    click.echo(f"API token: {token}")


@user.command("list")
@with_appcontext
def user_list() -> None:
    """Every agent: id, email, role, whether active, whether they can log in to the console."""
    with _runtime().database.read() as session:
        agents = list(session.scalars(select(Agent).order_by(Agent.id)))
    for agent in agents:
        state = "active" if agent.active else "deactivated"
        login = "console+api" if agent.password_hash else "api only"
        click.echo(f"{agent.id}\t{agent.email}\t{agent.role}\t{state}\t{login}\t{agent.name}")


@user.command("deactivate")
@click.argument("email")
@with_appcontext
def user_deactivate(email: str) -> None:
    """Stop an agent: their sessions and API token stop working; their history stays."""
    with _runtime().database.write() as session:
        agent = _agent(session, email)
        try:
            set_active(session, agent, False, actor_id=None)
        except AgentChangeRefused as exc:
            raise click.ClickException(f"{agent.email} not deactivated: {exc.message}") from None
    click.echo(f"deactivated {agent.email}; their sessions and API token no longer work")


@user.command("password")
@click.argument("email")
@with_appcontext
def user_password(email: str) -> None:
    """Set an agent's console password (prompted, or CORRIDOR_PASSWORD); their sessions end."""
    password = _read_password(True)
    assert password is not None
    with _runtime().database.write() as session:
        set_password(session, _agent(session, email), password)
    click.echo(f"password changed for {email}; every session of theirs has ended")


@user.command("logout")
@click.argument("email")
@with_appcontext
def user_logout(email: str) -> None:
    """Log an agent out everywhere: every console session of theirs ends (the API token stays)."""
    with _runtime().database.write() as session:
        agent = _agent(session, email)
        end_sessions(agent)
        audit(session, None, "agent.logout_everywhere", "agent", agent.id)
    click.echo(f"every session of {agent.email} has ended")


@user.command("token")
@click.argument("email")
@with_appcontext
def user_token(email: str) -> None:
    """Issue a new API token for an agent (the old one stops working)."""
    with _runtime().database.write() as session:
        token = issue_token(_agent(session, email))
    click.echo(f"API token: {token}")


# -- customers -----------------------------------------------------------------------


@cli.group()
def customer() -> None:
    """Customers: erasure on request (GDPR)."""


@customer.command("erase")
@click.argument("customer_id", type=click.IntRange(1, 2**63 - 1))
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option(
    "--no-vacuum",
    is_flag=True,
    help="Skip rewriting the SQLite files (VACUUM), which also clears pages freed before secure_delete was on.",
)
@with_appcontext
def customer_erase(customer_id: int, yes: bool, no_vacuum: bool) -> None:
    """Erase one person: interactions, identities, attachments, journal payloads, search documents."""
    runtime = _runtime()
    if not yes:
        click.confirm(f"Erase customer {customer_id} and everything about them? This cannot be undone", abort=True)
    with runtime.database.write() as session:
        try:
            erased = erase_customer(session, customer_id, search=runtime.search, actor_id=None)
        except NotFound as exc:
            raise click.BadParameter(str(exc), param_hint="CUSTOMER_ID") from None
    compact(runtime.database, vacuum=not no_vacuum)
    counts = ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in erased.counts().items())
    click.echo(f"erased customer {customer_id} (ids {', '.join(map(str, erased.customer_ids))}): {counts}")


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
    # Who answered and how satisfied customers were, for the dashboard (does nothing when present).
    from hub.demo_reports import add_report_demo

    add_report_demo(runtime, seed=seed, echo=click.echo)


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
#: Seconds between prunings of the live feed ([live] retention_hours).
LIVE_PRUNE_EVERY = 600.0


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


def start_live(environ: Mapping[str, str] | None = None) -> subprocess.Popen[bytes]:
    """``corridor live`` (the stream server) as a child of this process, like :func:`start_worker`."""
    return subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", "hub.cli", "live", "--parent-pid", str(os.getpid())],
        env=dict(environ) if environ is not None else None,
    )


@cli.command("live")
@click.option("--host", default=None, help="Listen here (default: [live] host).")
@click.option("--port", type=int, default=None, help="Listen on this port (default: [live] port).")
@click.option("--parent-pid", type=int, default=None, hidden=True, help="Stop when this process is gone.")
@with_appcontext
def live(host: str | None, port: int | None, parent_pid: int | None) -> None:
    """Serve live-update streams (server-sent events) to consoles and chat widgets."""
    import asyncio

    from hub.live.server import StreamServer, StreamSettings

    runtime = _runtime()
    runtime.journal.detach()
    settings = runtime.hub.live
    origin = "/".join(runtime.hub.app.public_base_url.split("/")[:3])
    server = StreamServer(
        runtime.database,
        StreamSettings(
            secret=runtime.secret_key,
            token_ttl=settings.token_ttl_seconds,
            heartbeat=settings.heartbeat_seconds,
            retry_ms=settings.retry_ms,
            poll_interval=settings.poll_interval,
            max_streams=settings.max_streams,
            allowed_origins=(origin, *settings.allowed_origins),
        ),
    )

    def watch_parent() -> None:
        while parent_pid is not None and os.getppid() == parent_pid:
            time.sleep(1.0)
        log.warning("parent process %s is gone: stopping", parent_pid)
        server.stop()

    if parent_pid is not None:
        threading.Thread(target=watch_parent, name="parent watch", daemon=True).start()
    signal.signal(signal.SIGTERM, lambda _signum, _frame: server.stop())
    signal.signal(signal.SIGINT, lambda _signum, _frame: server.stop())
    asyncio.run(server.serve(host or settings.host, settings.port if port is None else port))


def public_url_mismatch(public_base_url: str, port: int) -> str | None:
    """A warning when a loopback public URL names another port than the one served.

    Links (the demo's, the survey's) and Twilio's signatures (``corridor
    twilio simulate`` signs for the public URL) would all be for a port
    nothing listens on. A public URL elsewhere (a proxy in front) is left alone.
    """
    parts = urlsplit(public_base_url)
    if parts.hostname not in ("127.0.0.1", "localhost", "::1"):
        return None
    named = parts.port or (443 if parts.scheme == "https" else 80)
    if named == port:
        return None
    fixed = parts._replace(netloc=f"{parts.hostname}:{port}").geturl()
    return (
        f"note: HUB_APP_PUBLIC_BASE_URL is {public_base_url} but Corridor serves port {port}: links and Twilio "
        f"signatures use the former. Set HUB_APP_PUBLIC_BASE_URL={fixed} (make run PORT={port} does)."
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
@click.option(
    "--live/--no-live",
    "live_streams",
    default=True,
    show_default=True,
    help="Start `corridor live` beside the web server (the consoles' live updates).",
)
@with_appcontext
def run(host: str, port: int, threads: int, worker: bool, live_streams: bool) -> None:
    """Serve Corridor (migrations applied first), with a worker and the stream server beside it."""
    from flask import current_app
    from waitress import serve

    runtime = _runtime()
    upgrade(runtime.database)
    verify_engine(runtime)
    # Before any metric is made: the worker inherits the directory, and
    # /metrics adds up what both processes counted (hub.metrics).
    prepare_multiprocess(runtime.instance_dir)
    supervisor = _WorkerSupervisor(start_worker, "worker") if worker else None
    if supervisor is not None:
        # The worker processes what the web server journals, on the other
        # core: the web process only checks, journals and answers.
        runtime.journal.detach()
        supervisor.start()
    # Streams are held open for hours: in waitress they would take the
    # threads webhooks need, so a process of their own serves them.
    streams = _WorkerSupervisor(start_live, "stream server") if live_streams else None
    if streams is not None:
        streams.start()
    click.echo(
        f"Corridor on http://{host}:{port}  (database: {runtime.database.dialect}, search: {runtime.search.name}"
        f"{f', live streams on port {runtime.hub.live.port}' if streams else ''}"
        f"{', worker pid ' + str(supervisor.pid) if supervisor else ''})"
    )
    mismatch = public_url_mismatch(runtime.hub.app.public_base_url, port)
    if mismatch:
        click.echo(mismatch, err=True)
    # SIGTERM (systemd, docker stop) ends the server like Ctrl-C, so the
    # worker is stopped in turn rather than left to notice it is orphaned.
    signal.signal(signal.SIGTERM, lambda _signum, _frame: sys.exit(0))
    try:
        serve(current_app._get_current_object(), host=host, port=port, threads=threads, **WAITRESS_OPTIONS)  # type: ignore[attr-defined]
    finally:
        if supervisor is not None:
            supervisor.stop()
        if streams is not None:
            streams.stop()


class _WorkerSupervisor:
    """Keeps one of `corridor run`'s children running (the worker: what the web journals waits for it)."""

    CHECK_EVERY = 2.0

    def __init__(self, start: Any, name: str) -> None:
        self.start_child = start
        self.name = name
        self.child: subprocess.Popen[bytes] | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="worker supervisor", daemon=True)

    @property
    def pid(self) -> int:
        return self.child.pid if self.child else 0

    def start(self) -> None:
        self.child = self.start_child()
        self._thread.start()

    def _watch(self) -> None:
        restarts = 0
        while not self._stop.wait(self.CHECK_EVERY):
            if self.child is None or self.child.poll() is None:
                continue
            restarts += 1
            delay = min(2.0**restarts, 60.0)
            log.error(
                "the %s exited with status %s; starting it again in %.0f s", self.name, self.child.returncode, delay
            )
            if self._stop.wait(delay):
                return
            self.child = self.start_child()

    def stop(self) -> None:
        self._stop.set()
        if self.child is not None and self.child.poll() is None:
            self.child.terminate()
            try:
                self.child.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.child.kill()


# -- search --------------------------------------------------------------------------


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
    verify_engine(runtime)
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

    def prune_live_feed() -> None:
        with runtime.database.write() as session:
            pruned = live_prune(session, timedelta(hours=runtime.hub.live.retention_hours))
        if pruned:
            log.info("pruned %d live events older than %d h", pruned, runtime.hub.live.retention_hours)

    def watch_parent(stop: threading.Event) -> None:
        # Started by `corridor run`: a worker outliving its web server
        # (killed with SIGKILL, say) would keep the database busy for nobody.
        while not stop.wait(1.0):
            if os.getppid() != parent_pid:
                # Stop first: the parent's end of stdout may be gone with it,
                # so saying so can fail.
                stop.set()
                log.warning("parent process %s is gone: stopping", parent_pid)

    def retention() -> None:
        settings = runtime.hub.retention
        if not (settings.journal_payload_days or settings.interaction_days):
            return
        while True:  # in short transactions, until nothing is older than the limits
            with runtime.database.write() as session:
                done = apply_retention(
                    session,
                    search=runtime.search,
                    journal_days=settings.journal_payload_days,
                    interaction_days=settings.interaction_days,
                )
            if not (done.journal_entries or done.interactions) or stop.is_set():
                break

    def prefetch_media() -> None:
        # Pass after pass while whole batches come back: a backlog (the
        # setting just turned on) drains without waiting an interval per batch.
        while not stop.is_set():
            done = media.prefetch(runtime.database, runtime.registry.media_fetchers, prefetch_channels)
            if done.stored + done.retrying + done.given_up < media.PREFETCH_BATCH:
                break

    prefetch_channels = frozenset(runtime.registry.prefetch_channels)
    loops: dict[str, Any] = {
        "journal processing": runtime.journal.run,
        "retention": lambda s: _every(runtime.hub.retention.interval_minutes * 60.0, retention, s, "retention"),
        "reply retries": lambda s: _every(interval, retry_replies, s, "reply retries"),
        "journal replay": lambda s: _every(interval, replay_journal, s, "journal replay"),
        "live feed pruning": lambda s: _every(LIVE_PRUNE_EVERY, prune_live_feed, s, "live feed pruning"),
        "webhook delivery": WebhookWorker(runtime.database, webhook_settings(runtime.settings)).run,
        **runtime.registry.workers,
    }
    if prefetch_channels:
        loops["media prefetch"] = lambda s: _every(interval, prefetch_media, s, "media prefetch")
    engine = engine_of(runtime)
    if engine is not None:
        database = runtime.database
        loops["search indexer"] = lambda s: run_indexer(database, engine, s)
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


cli.add_command(webhook)


if __name__ == "__main__":
    main()
