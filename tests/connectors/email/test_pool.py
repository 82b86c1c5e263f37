"""Parsing in worker processes: the same events as in-process, and no message lost or doubled when one dies.

The first half drives :class:`ParsePool` directly with parsers that kill their
own process on chosen messages (SIGKILL, as the OOM killer does). The second
half runs the real intake against Dovecot with parser processes, kills them in
the middle of a backfill, and counts what reached the timeline.
"""

from __future__ import annotations

import errno
import os
import signal
import sys
import threading
import types
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.cli import ScriptInfo
from imapclient import IMAPClient
from sqlalchemy import select

from connectors.email import pool as pool_module
from connectors.email.intake import CONNECTOR, event_from_imap, intake_worker, stop_parsers
from connectors.email.pool import CRASH_ATTEMPTS, ParseItem, ParsePool, parse_each, shared
from hub.cli import cli
from hub.events import ChannelEvent
from hub.models import Interaction, JournalEntry, JournalStatus
from hub.runtime import Runtime
from hub.state import load_state
from tests.connectors.email.conftest import BATCH_SIZE, intake_of, sync
from tests.connectors.email.messages import MAILBOX_ADDRESS, append_all, customer_message
from tests.connectors.email.parsers import KILLS_ALWAYS, KILLS_ONCE, killing_parser, worker_pid
from tests.waiting import alive, wait_until

CONTEXT = {"received_at": "2024-03-22T12:00:00+00:00", "mailbox_address": MAILBOX_ADDRESS}
NOT_AN_EMAIL = b"\x89PNG\r\n\x1a\r\n\x01\x02 an image someone saved into the folder"
DIED = f"the parser's process died while reading this message ({CRASH_ATTEMPTS} times)"


def as_items(messages: Sequence[bytes]) -> list[ParseItem]:
    return [(raw, CONTEXT) for raw in messages]


def with_header(n: int, header: bytes) -> bytes:
    """Customer message ``n`` with one more header line."""
    return header + b"\r\n" + customer_message(n)


def ids(n: int) -> str:
    return f"msg-{n}@example.org"


@pytest.fixture
def pool() -> Iterator[ParsePool]:
    pool = ParsePool(killing_parser, 2)
    try:
        yield pool
    finally:
        pool.close()


# -- the pool -------------------------------------------------------------------


def test_workers_parse_exactly_what_the_intake_parses_in_process_in_the_order_given(pool: ParsePool) -> None:
    messages = [customer_message(n) for n in range(30)]
    messages.insert(7, NOT_AN_EMAIL)

    parsed = pool.submit(as_items(messages)).result()

    assert parsed == parse_each(killing_parser, as_items(messages))
    assert [p.event.external_id for p in parsed if p.event] == [ids(n) for n in range(30)]
    assert parsed[7].event is None
    assert parsed[7].error is not None
    assert parsed[7].error.startswith("ValueError: not an email message")
    assert pool.restarts == 0


def test_messages_are_parsed_in_the_worker_processes_not_here() -> None:
    pool = ParsePool(worker_pid, 2)
    try:
        parsed = pool.submit(as_items([customer_message(n) for n in range(40)])).result()
        workers = {p.event.metadata["parsed_by"] for p in parsed if p.event}
        # A batch goes out as one chunk per worker; which worker takes which
        # chunk is the OS's business, so both may go to the first one ready.
        assert len(pool.pids()) == 2
        assert workers <= set(pool.pids())
        assert os.getpid() not in workers
    finally:
        pool.close()


def test_a_message_that_kills_its_parser_fails_alone_and_the_rest_are_parsed(pool: ParsePool) -> None:
    messages = [customer_message(n) for n in range(20)]
    messages[5] = with_header(5, KILLS_ALWAYS)

    parsed = pool.submit(as_items(messages)).result()

    assert [p.error for p in parsed] == [None] * 5 + [DIED] + [None] * 14
    assert [p.event.external_id for p in parsed if p.event] == [ids(n) for n in range(20) if n != 5]
    assert pool.restarts == 1 + CRASH_ATTEMPTS  # the batch's crash, then each try of the message alone
    # The workers were started again and parse as before.
    (after,) = pool.submit(as_items([customer_message(99)])).result()
    assert after.event is not None


def test_a_worker_that_dies_once_costs_no_message_of_any_batch_in_flight(pool: ParsePool, tmp_path: Path) -> None:
    flag = tmp_path / "died-once"
    first = [customer_message(n) for n in range(30)]
    first[12] = with_header(12, KILLS_ONCE + str(flag).encode())
    second = [customer_message(n) for n in range(30, 60)]

    # Both batches are with the workers when one of them dies.
    in_flight = [pool.submit(as_items(first)), pool.submit(as_items(second))]
    parsed = [p for job in in_flight for p in job.result()]

    assert flag.exists()  # it did die
    assert pool.restarts == 1
    assert [p.error for p in parsed] == [None] * 60
    assert [p.event.external_id for p in parsed if p.event] == [ids(n) for n in range(60)]


def test_a_parser_the_workers_cannot_run_is_run_here_instead_of_failing_every_message(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A parser from a module only this process has: a worker cannot load it.
    module = types.ModuleType("corridor_test_parent_only")

    def parse_here(raw: bytes, context: Mapping[str, Any]) -> ChannelEvent:
        return worker_pid(raw, context)

    parse_here.__module__ = module.__name__
    parse_here.__qualname__ = "parse_here"
    module.parse_here = parse_here  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, module.__name__, module)
    pool = ParsePool(parse_here, 2)
    try:
        parsed = pool.submit(as_items([customer_message(n) for n in range(6)])).result()
        later = pool.submit(as_items([customer_message(6)])).result()

        assert [p.event.external_id for p in [*parsed, *later] if p.event] == [ids(n) for n in range(7)]
        assert {p.event.metadata["parsed_by"] for p in [*parsed, *later] if p.event} == {os.getpid()}
        assert pool.unusable is not None
    finally:
        pool.close()
    assert pool.unusable is None  # the next backfill tries the workers again


def test_where_no_process_can_be_started_messages_are_parsed_here(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_processes(**_options: Any) -> None:
        raise BlockingIOError(errno.EAGAIN, "Resource temporarily unavailable")

    monkeypatch.setattr(pool_module, "ProcessPoolExecutor", no_processes)
    pool = ParsePool(worker_pid, 2)

    parsed = pool.submit(as_items([customer_message(n) for n in range(4)])).result()

    assert [p.event.external_id for p in parsed if p.event] == [ids(n) for n in range(4)]
    assert {p.event.metadata["parsed_by"] for p in parsed if p.event} == {os.getpid()}
    assert pool.unusable == "BlockingIOError: [Errno 11] Resource temporarily unavailable"


def test_closing_the_pool_stops_its_workers() -> None:
    pool = ParsePool(worker_pid, 2)
    parsed = pool.submit(as_items([customer_message(n) for n in range(10)])).result()
    workers = {p.event.metadata["parsed_by"] for p in parsed if p.event}
    assert workers
    assert all(alive(pid) for pid in workers)

    pool.close()

    assert not pool.running
    assert pool.pids() == []
    assert wait_until(lambda: not any(alive(pid) for pid in workers), 10)


def test_idle_workers_stop_by_themselves_and_start_again_when_needed() -> None:
    pool = ParsePool(worker_pid, 1, idle_timeout=0.5)
    try:
        with pool.lease():
            (first,) = pool.submit(as_items([customer_message(1)])).result()
        assert first.event is not None
        worker = first.event.metadata["parsed_by"]

        assert wait_until(lambda: not pool.running, 10)
        assert wait_until(lambda: not alive(worker), 10)
        with pool.lease():
            (again,) = pool.submit(as_items([customer_message(2)])).result()
        assert again.event is not None
        assert again.event.metadata["parsed_by"] != worker
    finally:
        pool.close()


def test_no_processes_means_parsing_in_this_process() -> None:
    pool = ParsePool(worker_pid, 0)

    parsed = pool.submit(as_items([customer_message(n) for n in range(5)])).result()

    assert {p.event.metadata["parsed_by"] for p in parsed if p.event} == {os.getpid()}
    assert not pool.running


# -- in the intake --------------------------------------------------------------

KEY = "support/INBOX"


def timeline_ids(runtime: Runtime) -> list[str]:
    with runtime.database.read() as session:
        query = select(Interaction.external_id).where(Interaction.channel == "email").order_by(Interaction.id)
        return list(session.scalars(query))


@pytest.fixture
def no_parsers_left_running() -> Iterator[None]:
    """Stop the process's shared parser pools after the test, as the worker and the CLI do."""
    try:
        yield
    finally:
        stop_parsers()


@pytest.mark.usefixtures("no_parsers_left_running")
def test_a_backfill_with_parser_processes_is_on_the_timeline_once_in_uid_order(
    runtime: Runtime, imap: IMAPClient
) -> None:
    messages: list[bytes] = [customer_message(n) for n in range(230)]
    messages.insert(101, NOT_AN_EMAIL)
    append_all(imap, "INBOX", messages)
    progress: list[tuple[int, int]] = []

    report = sync(intake_of(runtime, parse_processes=2), lambda done, total: progress.append((done, total)))

    assert shared(event_from_imap, 2).running  # the backfill did use the workers
    assert timeline_ids(runtime) == [ids(n) for n in range(230)]
    assert (report.total, report.new, report.duplicates, report.failed) == (231, 230, 0, 1)
    assert progress == [(0, 231), *((done, 231) for done in range(BATCH_SIZE, 231, BATCH_SIZE)), (231, 231)]
    with runtime.database.read() as session:
        (failed,) = session.scalars(select(JournalEntry).where(JournalEntry.status == JournalStatus.FAILED)).all()
        cursor = load_state(session, CONNECTOR, KEY)
    assert failed.payload == NOT_AN_EMAIL
    assert failed.error is not None
    assert failed.error.startswith("ValueError: not an email message")
    assert cursor is not None
    assert cursor["last_uid"] == 231


@pytest.mark.usefixtures("no_parsers_left_running")
def test_parser_processes_killed_mid_backfill_lose_and_double_nothing(runtime: Runtime, imap: IMAPClient) -> None:
    append_all(imap, "INBOX", [customer_message(n) for n in range(300)])
    pool = shared(event_from_imap, 2)
    restarts = pool.restarts
    killed: list[int] = []

    def kill_the_parsers(done: int, _total: int) -> None:
        # The batch after this one is with the workers (or about to be).
        if done == BATCH_SIZE:
            killed.extend(pool.pids())
            for pid in killed:
                os.kill(pid, signal.SIGKILL)

    report = sync(intake_of(runtime, parse_processes=2), kill_the_parsers)

    assert killed
    assert pool.restarts > restarts
    assert (report.new, report.duplicates, report.failed) == (300, 0, 0)
    assert Counter(timeline_ids(runtime)) == Counter(ids(n) for n in range(300))
    assert timeline_ids(runtime) == [ids(n) for n in range(300)]


@pytest.mark.usefixtures("no_parsers_left_running")
def test_a_pipelined_backfill_marks_seen_what_it_committed(
    make_email_app: Callable[..., Flask], imap: IMAPClient
) -> None:
    runtime: Runtime = make_email_app({"mark_seen": True}).extensions["corridor"]
    append_all(imap, "INBOX", [customer_message(n) for n in range(BATCH_SIZE * 3 + 1)])

    report = sync(intake_of(runtime, parse_processes=2))

    assert report.new == BATCH_SIZE * 3 + 1
    imap.select_folder("INBOX", readonly=True)
    flags = imap.get_flags(imap.search("ALL"))
    assert len(flags) == BATCH_SIZE * 3 + 1
    assert all(b"\\Seen" in flagged for flagged in flags.values())


@pytest.mark.usefixtures("no_parsers_left_running")
def test_the_worker_loop_stops_its_parser_processes_when_it_stops(runtime: Runtime, imap: IMAPClient) -> None:
    append_all(imap, "INBOX", [customer_message(n) for n in range(120)])
    intake = intake_of(runtime, parse_processes=2, use_idle=False, poll_interval=0.2)

    stop = _run_in_thread(intake_worker([intake]))
    try:
        assert wait_until(lambda: len(timeline_ids(runtime)) == 120, 30)
        workers = shared(event_from_imap, 2).pids()
        assert workers
    finally:
        stop()

    assert not shared(event_from_imap, 2).running
    assert wait_until(lambda: not any(alive(pid) for pid in workers), 10)


def test_sync_once_leaves_no_parser_processes_behind(make_email_app: Callable[..., Flask], imap: IMAPClient) -> None:
    app = make_email_app(email={"parse_processes": 2})
    append_all(imap, "INBOX", [customer_message(n) for n in range(BATCH_SIZE * 3)])

    result = CliRunner().invoke(cli, ["email", "sync", "--once"], obj=ScriptInfo(create_app=lambda: app))

    assert result.exit_code == 0, result.output
    assert f"support/INBOX: {BATCH_SIZE * 3} new, 0 already on the timeline, 0 failed" in result.output
    assert not shared(event_from_imap, 2).running


def _run_in_thread(loop: Callable[[threading.Event], None]) -> Callable[[], None]:
    """Start a worker loop as `corridor worker` does; returns what stops it (and checks that it stopped)."""
    stop = threading.Event()
    thread = threading.Thread(target=loop, args=(stop,), daemon=True)
    thread.start()

    def stopper() -> None:
        stop.set()
        thread.join(timeout=30)
        assert not thread.is_alive(), "the intake loop did not stop within 30 s of being asked"

    return stopper
