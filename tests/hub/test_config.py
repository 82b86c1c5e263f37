"""Settings: one documented defaults file, HUB_* overrides, and loud failures."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from hub.config import HubSettings, SettingsError, load_settings


def test_defaults_are_valid_and_typed() -> None:
    hub = HubSettings.from_settings(load_settings(environ={}))
    assert hub.threading.window_hours == 72
    assert hub.search.backend == "auto"


def test_environment_overrides_defaults_and_is_coerced() -> None:
    settings = load_settings(environ={"HUB_THREADING_WINDOW_HOURS": "48", "HUB_APP_CONNECTORS": '["twilio"]'})
    hub = HubSettings.from_settings(settings)
    assert hub.threading.window_hours == 48
    assert hub.app.connectors == ["twilio"]


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"HUB_THREADING_WINDOW_HOUR": "48"}, "HUB_THREADING_WINDOW_HOUR"),
        ({"HUB_NOSUCH_THING": "1"}, "HUB_NOSUCH_THING"),
        ({"HUB_THREADING_WINDOW_HOURS": "three days"}, "HUB_THREADING_WINDOW_HOURS"),
        ({"HUB_APP_CONNECTORS": "twilio"}, "HUB_APP_CONNECTORS"),
        ({"HUB_SEARCH_BACKEND": "solr"}, "HUB_SEARCH_BACKEND"),
        ({"HUB_IDENTITY_DEFAULT_REGION": "XX"}, "HUB_IDENTITY_DEFAULT_REGION"),
        ({"HUB_DATABASE_URL": "mysql://x"}, "HUB_DATABASE_URL"),
        ({"HUB_DATABASE_URL": "sqlite://"}, "HUB_DATABASE_URL"),
        ({"HUB_DATABASE_URL": "sqlite:///:memory:"}, "HUB_DATABASE_URL"),
    ],
)
def test_unknown_or_malformed_settings_are_named(environ: dict[str, str], named: str) -> None:
    with pytest.raises(SettingsError, match=named):
        HubSettings.from_settings(load_settings(environ=environ))


def test_a_settings_file_is_read_and_checked(tmp_path: Path) -> None:
    good = tmp_path / "corridor.toml"
    good.write_text('[threading]\nwindow_hours = 24\n[identity]\ndefault_region = "GB"\n')
    hub = HubSettings.from_settings(load_settings(environ={"HUB_CONFIG": str(good)}))
    assert (hub.threading.window_hours, hub.identity.default_region) == (24, "GB")
    bad = tmp_path / "bad.toml"
    bad.write_text("[threading]\nwindow = 24\n")
    with pytest.raises(SettingsError, match=r"\[threading\] window"):
        load_settings(environ={"HUB_CONFIG": str(bad)})


def test_start_up_stops_with_a_message_naming_the_setting(tmp_path: Path) -> None:
    environ = {**os.environ, "HUB_THREADING_WINDOW_HOURS": "soon", "HUB_APP_INSTANCE_DIR": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-m", "hub.cli", "db", "current"], env=environ, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert "HUB_THREADING_WINDOW_HOURS" in result.stderr
    assert "Traceback" not in result.stderr
