"""The fault drill: kill -9 the worker and the web process during a stream of events, then count.

A client streams events to ``POST /api/events`` and, like any integration,
sends an event again until it gets a 2xx. Part way through, the worker is
killed with SIGKILL (and started again), later the web process (and started
again). Once the journal is processed, every acknowledged event must be on
the timeline exactly once. The drill prints its counts; it runs in `make
test` (marked slow), on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from sqlalchemy import func, select

from hub.auth import create_agent
from hub.db import Database
from hub.migrate import upgrade
from hub.models import Interaction, Role
from tests.hub.events import event_json
from tests.services import free_port

EVENTS = 150
CORRIDOR = [sys.executable, "-m", "hub.cli"]


def _start(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen([*CORRIDOR, *command], env=env, stdout=out, stderr=subprocess.STDOUT)


@pytest.mark.slow
def test_kill_9_of_the_worker_and_the_web_process_loses_and_duplicates_nothing(
    database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    database = Database(database_url)
    upgrade(database)
    with database.write() as session:
        _, token = create_agent(session, email="drill@corridor.test", name="Drill", role=Role.AGENT, password=None)
    port = free_port()
    env = {
        **os.environ,
        "HUB_DATABASE_URL": database_url,
        "HUB_APP_INSTANCE_DIR": str(tmp_path / "instance"),
        "HUB_APP_SECRET_KEY": "drill",
        "HUB_JOURNAL_PROCESSOR": "worker",
        "HUB_JOURNAL_POLL_INTERVAL": "0.02",
    }
    log = tmp_path / "drill.log"
    web = _start(["run", "--no-worker", "--port", str(port)], env, log)
    worker = _start(["worker", "--interval", "0.5"], env, log)
    base = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    acknowledged: list[str] = []
    sends = 0

    def deliver(external_id: str) -> None:
        """Send until a 2xx, as an integration does; the server may be down meanwhile."""
        nonlocal sends
        body = json.dumps(event_json(external_id=external_id, text=f"drill {external_id}")).encode()
        deadline = time.monotonic() + 60
        while True:
            sends += 1
            request = urllib.request.Request(base + "/api/events", data=body, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    if 200 <= response.status < 300:
                        acknowledged.append(external_id)
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            assert time.monotonic() < deadline, f"no 2xx for {external_id} in 60 s:\n{log.read_text()[-3000:]}"
            time.sleep(0.2)

    try:
        for number in range(EVENTS):
            if number == EVENTS // 3:
                worker.kill()  # SIGKILL, mid-batch as likely as not
                worker.wait()
                worker = _start(["worker", "--interval", "0.5"], env, log)
            if number == 2 * EVENTS // 3:
                web.kill()
                web.wait()
                web = _start(["run", "--no-worker", "--port", str(port)], env, log)
            deliver(f"<drill-{number}@corridor.test>")
        deadline = time.monotonic() + 60
        while True:
            with urllib.request.urlopen(base + "/api/health", timeout=10) as response:
                if json.loads(response.read())["journal"]["received"] == 0:
                    break
            assert time.monotonic() < deadline, "the worker did not catch up"
            time.sleep(0.2)
    finally:
        for process in (web, worker):
            process.kill()
            process.wait()

    with database.read() as session:
        counts = dict(
            session.execute(
                select(Interaction.external_id, func.count())
                .where(Interaction.external_id.like("<drill-%"))
                .group_by(Interaction.external_id)
            ).all()
        )
    database.dispose()
    lost = [e for e in acknowledged if e not in counts]
    duplicated = sum(n - 1 for n in counts.values())
    with capsys.disabled():
        print(
            f"\nfault drill ({database.dialect}): {len(acknowledged)} events acknowledged in {sends} sends, "
            f"worker and web process killed with SIGKILL: lost {len(lost)}, duplicated {duplicated}"
        )
    assert len(acknowledged) == EVENTS
    assert (lost, duplicated) == ([], 0)
