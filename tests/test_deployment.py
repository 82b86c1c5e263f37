"""The deployment files say what the CLI and the settings schema accept.

No container registry is reachable here, so no image is built: instead
every command in compose.yaml, the Dockerfile and the systemd units is
parsed by the real ``corridor`` CLI, and every HUB_* variable they set is
loaded and validated by the real settings code (config/defaults.toml).
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

import click
import pytest
import yaml

from hub.cli import cli
from hub.config import HubSettings, load_settings

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = yaml.safe_load((ROOT / "compose.yaml").read_text())
UNITS = sorted((ROOT / "config" / "systemd").glob("*.service"))


def parse_command(argv: list[str]) -> click.Command:
    """The ``corridor`` subcommand ``argv`` runs, its options parsed as the CLI would (or an error)."""
    assert argv[0].endswith("corridor"), argv
    command: click.Command = cli
    args = argv[1:]
    while isinstance(command, click.Group):
        assert args, f"{argv}: names a group, not a command"
        name, args = args[0], args[1:]
        assert name in command.commands, f"{argv}: no subcommand {name!r} (`corridor --help` lists them)"
        command = command.commands[name]
    command.make_context(command.name or "corridor", list(args))
    return command


def test_a_command_or_option_the_cli_does_not_have_is_caught() -> None:
    with pytest.raises(click.NoSuchOption):
        parse_command(["corridor", "run", "--workers", "2"])
    with pytest.raises(AssertionError, match="no subcommand"):
        parse_command(["corridor", "serve"])


def substituted(value: str) -> str:
    """A compose value with ``${VAR:-default}`` and ``${VAR:?message}`` as a user would have them filled."""
    value = re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", value)
    return re.sub(r"\$\{[A-Z_]+:\?[^}]*\}", "filled-in-by-the-user", value)


def corridor_services() -> dict[str, dict[str, Any]]:
    return {name: s for name, s in COMPOSE["services"].items() if s.get("image") == "corridor:latest"}


def test_compose_runs_postgres_elasticsearch_the_migration_web_live_streams_and_workers() -> None:
    assert {"postgres", "elasticsearch", "migrate", "web", "live", "worker"} <= set(COMPOSE["services"])
    commands = {name: parse_command(s["command"]).name for name, s in corridor_services().items()}
    assert commands == {"migrate": "upgrade", "web": "run", "live": "live", "worker": "worker"}
    # The release step before the processes that need the new schema.
    for name in ("web", "live", "worker"):
        assert COMPOSE["services"][name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    # The web processes serve pages and webhooks only: workers and streams are services of their own.
    assert {"--no-worker", "--no-live"} <= set(COMPOSE["services"]["web"]["command"])


@pytest.mark.parametrize("service", sorted(corridor_services()))
def test_every_compose_setting_is_one_the_schema_declares_and_accepts(service: str) -> None:
    environment = {k: substituted(str(v)) for k, v in corridor_services()[service]["environment"].items()}
    hub = {k: v for k, v in environment.items() if k.startswith("HUB_")}
    assert hub, service
    settings = load_settings(environ=hub)
    HubSettings.from_settings(settings)
    assert settings.raw("journal")["processor"] == "worker"
    assert settings.raw("search")["backend"] == "elasticsearch"


def test_the_dockerfile_command_is_a_corridor_command() -> None:
    [cmd] = [line for line in (ROOT / "Dockerfile").read_text().splitlines() if line.startswith("CMD ")]
    assert parse_command(json.loads(cmd.removeprefix("CMD "))).name == "run"


@pytest.mark.parametrize("unit", UNITS, ids=lambda p: p.name)
def test_systemd_units_run_corridor_commands_with_known_settings(unit: Path) -> None:
    lines = unit.read_text().splitlines()
    for line in lines:
        if line.startswith("ExecStart=") and "/corridor " in line:
            parse_command(shlex.split(line.removeprefix("ExecStart=").replace("%i", "5001")))
        if line.startswith("Environment=HUB_"):
            name, value = line.removeprefix("Environment=").split("=", 1)
            load_settings(environ={name: value})


def test_the_example_environment_file_names_known_settings() -> None:
    example = ROOT / "config" / "systemd" / "corridor.env.example"
    pairs = [line.split("=", 1) for line in example.read_text().splitlines() if line and not line.startswith("#")]
    hub = {name: value for name, value in pairs if name.startswith("HUB_") and name != "HUB_CONFIG"}
    HubSettings.from_settings(load_settings(environ=hub))
