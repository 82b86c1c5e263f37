"""Reports for supervisors: KPI definitions (kpis.py), the rollups they read (rollup.py),
the dashboard and audit pages (views.py, charts.py), the audit trail (audit.py) and
satisfaction surveys (csat.py).

The hub plugs reports in the way a connector plugs in: :func:`init_reports`
registers the blueprint, the worker loop that keeps the rollups current and
the ``corridor reports`` commands on the registry.
"""

from __future__ import annotations

import dataclasses
import logging
import threading

import click
from flask.cli import with_appcontext

from hub.config import Settings, SettingsError
from hub.db import Database
from hub.registry import Registry

log = logging.getLogger(__name__)

#: New interactions rolled up per transaction by the worker.
REFRESH_STEP = 5_000


@dataclasses.dataclass(frozen=True)
class ReportsSettings:
    refresh_interval: float

    def validate(self) -> None:
        if not 0.05 <= self.refresh_interval <= 3600:
            raise SettingsError(
                f"HUB_REPORTS_REFRESH_INTERVAL: between 0.05 and 3600 seconds, got {self.refresh_interval}"
            )


@dataclasses.dataclass(frozen=True)
class AuditSettings:
    retention_days: int

    def validate(self) -> None:
        if self.retention_days < 0:
            raise SettingsError(f"HUB_AUDIT_RETENTION_DAYS: 0 (forever) or more, got {self.retention_days}")


@dataclasses.dataclass(frozen=True)
class CsatSettings:
    enabled: bool
    cooldown_days: int
    low_score: int
    low_score_action: str
    answer_days: int

    def validate(self) -> None:
        if self.cooldown_days < 0:
            raise SettingsError(f"HUB_CSAT_COOLDOWN_DAYS: 0 or more, got {self.cooldown_days}")
        if not 0 <= self.low_score <= 5:
            raise SettingsError(f"HUB_CSAT_LOW_SCORE: between 0 (none is low) and 5, got {self.low_score}")
        if self.low_score_action not in {"flag", "reopen", "none"}:
            raise SettingsError(f"HUB_CSAT_LOW_SCORE_ACTION: one of flag, reopen, none, got {self.low_score_action!r}")
        if self.answer_days < 1:
            raise SettingsError(f"HUB_CSAT_ANSWER_DAYS: at least 1, got {self.answer_days}")


def update_reports(database: Database, settings: Settings) -> None:
    """One pass of the worker: survey answers by text message, then the rollups, then audit retention."""
    from hub.reports import audit, csat, rollup

    with database.write() as session:
        csat.match_answers(session, settings.section("csat", CsatSettings))
    # One transaction per step: on SQLite a catch-up over a long backlog must
    # not hold the write lock the journal processor needs for all of it.
    while True:
        with database.write() as session:
            if not rollup.refresh(session, limit=REFRESH_STEP).interactions:
                break
    with database.write() as session:
        audit.purge(session, settings.section("audit", AuditSettings).retention_days)


def init_reports(registry: Registry) -> None:
    """Register the reports blueprint, worker loop and commands; reads (and so checks) their settings."""
    from hub.reports import rollup
    from hub.reports.views import reports

    settings = registry.settings.section("reports", ReportsSettings)
    # Read now so that a bad setting stops start-up, not the first close.
    registry.settings.section("audit", AuditSettings)
    registry.settings.section("csat", CsatSettings)
    database = registry.database
    registry.add_blueprint(reports)

    def step() -> None:
        update_reports(database, registry.settings)

    def loop(stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                step()
            except Exception:  # a bad row must not end the loop; the next pass retries
                log.exception("reports refresh failed")
            stop.wait(settings.refresh_interval)

    registry.add_worker("reports", loop)

    @click.group("reports")
    def group() -> None:
        """The dashboard's rollups."""

    @group.command("refresh")
    @with_appcontext
    def refresh_command() -> None:
        """Bring the rollups up to date with the timeline (the worker does this every refresh_interval)."""
        step()
        click.echo("reports are up to date")

    @group.command("rebuild")
    @with_appcontext
    def rebuild_command() -> None:
        """Forget the rollups and compute them again from the whole timeline."""
        with database.write() as session:
            result = rollup.rebuild(session)
        click.echo(f"rebuilt: {result.interactions:,} interactions, {result.conversations:,} conversations")

    registry.add_command(group)
