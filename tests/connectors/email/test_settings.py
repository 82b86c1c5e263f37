"""The ``[email]`` settings: every mistake is reported under the key that holds it."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from connectors.email.settings import EmailSettings, MailboxSettings
from hub import create_app
from hub.config import SettingsError, load_settings


def email_settings(*mailboxes: dict[str, Any], **section: Any) -> EmailSettings:
    settings = load_settings(environ={}, overrides={"email": {"mailboxes": list(mailboxes), **section}})
    return settings.section("email", EmailSettings)


def mailbox(**values: Any) -> dict[str, Any]:
    table: dict[str, Any] = {
        "name": "support",
        "host": "imap.example.com",
        "user": "support@example.com",
        "password_env": "SUPPORT_IMAP_PASSWORD",
    }
    table.update(values)
    return {k: v for k, v in table.items() if v is not None}


def test_a_minimal_mailbox_gets_the_usual_ports_and_reads_inbox_only() -> None:
    (read,) = email_settings(mailbox()).mailbox_settings()

    assert (read.name, read.host, read.port, read.tls) == ("support", "imap.example.com", 993, "ssl")
    assert read.address == "support@example.com"  # the login is the address
    assert read.folders == ("INBOX",)
    assert (read.smtp_host, read.smtp_port, read.smtp_tls, read.smtp_user) == (
        "imap.example.com", 465, "ssl", "support@example.com",
    )  # fmt: skip
    assert (read.since, read.mark_seen) == (None, False)


def test_starttls_and_since_are_read() -> None:
    (read,) = email_settings(
        mailbox(tls="starttls", smtp_tls="starttls", since="2024-01-31", folders=["INBOX", "Sent"], mark_seen=True)
    ).mailbox_settings()

    assert (read.port, read.smtp_port) == (143, 587)
    assert read.since == date(2024, 1, 31)
    assert read.folders == ("INBOX", "Sent")
    assert read.mark_seen


def test_where_the_password_lives_is_kept_out_of_reprs(tmp_path: Path) -> None:
    secret = tmp_path / "imap-password"
    secret.write_text("hunter2-but-longer\n")
    (read,) = email_settings(mailbox(password_env=None, password_file=str(secret))).mailbox_settings()

    assert read.password() == "hunter2-but-longer"
    assert read.smtp_password() == "hunter2-but-longer"  # the same account unless told otherwise
    assert str(secret) not in repr(read)
    assert "hunter2" not in repr(read)


def test_a_password_variable_that_is_not_set_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SUPPORT_IMAP_PASSWORD", raising=False)
    (read,) = email_settings(mailbox()).mailbox_settings()

    with pytest.raises(SettingsError, match="SUPPORT_IMAP_PASSWORD is not set"):
        read.password()
    monkeypatch.setenv("SUPPORT_IMAP_PASSWORD", "s3cret")
    assert read.password() == "s3cret"


@pytest.mark.parametrize(
    ("table", "message"),
    [
        (mailbox(tls="tls"), "[email] mailboxes[0].tls: one of ssl, starttls, none, got 'tls'"),
        (mailbox(host=""), "[email] mailboxes[0].host: required"),
        (mailbox(port=99999), "[email] mailboxes[0].port: expected a port number 1-65535, got 99999"),
        (mailbox(smtp_port="25"), "[email] mailboxes[0].smtp_port: expected a port number"),
        (mailbox(user="support"), "[email] mailboxes[0].address: required"),
        (mailbox(address="support at example.com"), "[email] mailboxes[0].address: expected an email address"),
        (mailbox(password_env=None), "[email] mailboxes[0].password_env: required"),
        (mailbox(password_file="/run/secrets/imap"), "[email] mailboxes[0].password_env: give password_env or"),
        (mailbox(folders=[]), "[email] mailboxes[0].folders: expected a non-empty list"),
        (mailbox(folders=["INBOX", "INBOX"]), "[email] mailboxes[0].folders[1]: 'INBOX' is listed twice"),
        (mailbox(since="31.01.2024"), "[email] mailboxes[0].since: expected a date YYYY-MM-DD or empty"),
        (mailbox(since="2024-02-30"), "[email] mailboxes[0].since: expected a date YYYY-MM-DD or empty"),
        (mailbox(mark_seen="yes"), "[email] mailboxes[0].mark_seen: expected true or false"),
        (mailbox(name="support/eu"), "[email] mailboxes[0].name: must not contain '/'"),
        (mailbox(pasword_env="X"), "[email] mailboxes[0].pasword_env: unknown key"),
        ("imap.example.com", "[email] mailboxes[0]: expected a table"),
    ],
)
def test_a_malformed_mailbox_names_the_key_at_fault(table: Any, message: str) -> None:
    with pytest.raises(SettingsError, match=re.escape(message)):
        email_settings(table)


def test_two_mailboxes_with_one_name_or_one_address_are_refused() -> None:
    with pytest.raises(SettingsError, match=re.escape("[email] mailboxes[1].name: 'support' is also mailboxes[0]'s")):
        email_settings(mailbox(), mailbox(user="sales@example.com"))
    with pytest.raises(SettingsError, match=re.escape("[email] mailboxes[1].address: 'Support@Example.com' is also")):
        email_settings(mailbox(), mailbox(name="other", user="Support@Example.com"))


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"batch_size": 0}, "[email] batch_size: expected 1 to 10000"),
        ({"idle_timeout": 1800}, "[email] idle_timeout: expected 1 to 1740 seconds"),
        ({"poll_interval": 0}, "[email] poll_interval: expected 1 to 86400 seconds"),
        ({"parse_processes": -2}, "[email] parse_processes: expected -1 (one per CPU), 0 (none) or up to 64, got -2"),
        ({"parse_processes": 65}, "[email] parse_processes: expected -1 (one per CPU), 0 (none) or up to 64, got 65"),
    ],
)
def test_malformed_pacing_is_named(section: dict[str, Any], message: str) -> None:
    with pytest.raises(SettingsError, match=re.escape(message)):
        email_settings(mailbox(), **section)


def test_mailboxes_can_come_from_the_environment_as_json() -> None:
    environ = {
        "HUB_EMAIL_MAILBOXES": '[{"name": "support", "host": "imap.example.com", "user": "support@example.com", '
        '"password_env": "IMAP_PASSWORD", "tls": "starttls"}]',
        "HUB_EMAIL_BATCH_SIZE": "250",
        "HUB_EMAIL_PARSE_PROCESSES": "0",
    }
    settings = load_settings(environ=environ).section("email", EmailSettings)

    assert (settings.batch_size, settings.parse_processes) == (250, 0)
    assert [m.tls for m in settings.mailbox_settings()] == ["starttls"]


def test_the_dataclass_reads_exactly_the_keys_of_the_defaults_file() -> None:
    # Settings.section refuses drift; building the defaults proves there is none.
    defaults = load_settings(environ={}).section("email", EmailSettings)

    assert defaults.mailboxes == []
    assert (defaults.poll_interval, defaults.idle_timeout, defaults.batch_size) == (60, 300, 100)
    assert defaults.parse_processes == -1  # one parser process per CPU
    assert MailboxSettings.from_table(0, mailbox()).name == "support"


def test_enabling_the_connector_without_a_mailbox_stops_start_up(tmp_path: Path) -> None:
    overrides: dict[str, dict[str, Any]] = {
        "app": {"connectors": ["email"], "instance_dir": str(tmp_path), "secret_key": "x"},
        "database": {"url": f"sqlite:///{tmp_path / 'corridor.db'}"},
    }
    with pytest.raises(SettingsError, match=re.escape("[email] mailboxes: the email connector is enabled but no")):
        create_app(overrides=overrides, environ={})


def test_a_mailbox_whose_password_cannot_be_read_stops_start_up(tmp_path: Path) -> None:
    overrides: dict[str, dict[str, Any]] = {
        "app": {"connectors": ["email"], "instance_dir": str(tmp_path), "secret_key": "x"},
        "database": {"url": f"sqlite:///{tmp_path / 'corridor.db'}"},
        "email": {"mailboxes": [mailbox(password_env=None, password_file=str(tmp_path / "missing"))]},
    }
    with pytest.raises(SettingsError, match=re.escape("[email] mailbox 'support' password_file: cannot read")):
        create_app(overrides=overrides, environ={})


def test_mailboxes_read_from_a_config_file_as_an_array_of_tables(tmp_path: Path) -> None:
    config = tmp_path / "corridor.toml"
    config.write_text(
        "[[email.mailboxes]]\n"
        'name = "support"\nhost = "imap.example.com"\nuser = "support@example.com"\n'
        'password_env = "SUPPORT_IMAP_PASSWORD"\nfolders = ["INBOX", "Sent"]\n'
        "\n[[email.mailboxes]]\n"
        'name = "sales"\nhost = "imap.example.com"\nuser = "sales@example.com"\npassword_file = "/run/secrets/sales"\n'
    )
    settings = load_settings(environ={"HUB_CONFIG": str(config)}).section("email", EmailSettings)

    assert [(m.name, m.folders) for m in settings.mailbox_settings()] == [
        ("support", ("INBOX", "Sent")),
        ("sales", ("INBOX",)),
    ]
