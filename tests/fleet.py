"""Several real Corridor processes on one database, as a deployment runs them.

``Fleet`` starts ``corridor worker`` and ``corridor run --no-worker``
processes with one environment (the settings a deployment would give them),
each logging to a file of its own, and stops them all when its ``with`` block ends; tests kill
one with SIGKILL to see what its peers do.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import pytest

from tests.services.process import free_port, log_tail, port_is_open
from tests.waiting import wait_until


@dataclass
class Member:
    """One process of the fleet."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    log: IO[bytes]
    port: int | None = None

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def url(self) -> str:
        assert self.port is not None, f"{self.name} serves no HTTP"
        return f"http://127.0.0.1:{self.port}"

    def kill(self) -> None:
        """SIGKILL: no clean-up, no lease given back, as when a machine dies."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)


@dataclass
class Fleet:
    root: Path
    environ: dict[str, str]
    members: list[Member] = field(default_factory=list)

    def _start(self, name: str, *args: str) -> Member:
        log_path = self.root / f"{name}.log"
        log = log_path.open("wb")
        # Our own interpreter and module: S603 does not apply.
        process = subprocess.Popen(
            [sys.executable, "-m", "hub.cli", *args],
            env=self.environ,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.root,
        )
        member = Member(name, process, log_path, log)
        self.members.append(member)
        return member

    def worker(self, name: str) -> Member:
        """A ``corridor worker`` (journal processing, intake, retries)."""
        return self._start(name, "worker", "--interval", "0.5")

    def web(self, name: str) -> Member:
        """A ``corridor run --no-worker`` web process on a free port, once it accepts connections."""
        port = free_port()
        member = self._start(name, "run", "--no-worker", "--port", str(port))
        member.port = port
        if not wait_until(lambda: port_is_open("127.0.0.1", port) or member.process.poll() is not None, 60):
            pytest.fail(f"{name} did not listen within 60 s:\n{log_tail(member.log_path)}")
        if member.process.poll() is not None:
            pytest.fail(f"{name} exited with {member.process.returncode}:\n{log_tail(member.log_path)}")
        return member

    def logs(self) -> str:
        return "\n".join(f"--- {m.name} (pid {m.pid})\n{log_tail(m.log_path, 40)}" for m in self.members)

    def __enter__(self) -> Fleet:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        for member in self.members:
            if member.process.poll() is None:
                member.process.terminate()
        for member in self.members:
            try:
                member.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                member.process.kill()
                member.process.wait(timeout=10)
            member.log.close()


def fleet_environ(database_url: str, instance_dir: Path, **settings: str) -> dict[str, str]:
    """The environment every process of a deployment shares: one database, one secret, these settings."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("HUB_") and k != "PROMETHEUS_MULTIPROC_DIR"}
    environ.update(
        HUB_DATABASE_URL=database_url,
        HUB_APP_SECRET_KEY="fleet-secret",
        HUB_APP_INSTANCE_DIR=str(instance_dir),
        HUB_JOURNAL_PROCESSOR="worker",
    )
    environ.update({f"HUB_{name.upper()}": value for name, value in settings.items()})
    return environ
