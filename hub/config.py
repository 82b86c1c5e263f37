"""Settings: one documented defaults file, overridden by a file and by HUB_* variables.

``config/defaults.toml`` is the schema. A setting that is not in it does not
exist, and its type is the type of its default. Overrides come from the TOML
file named by ``HUB_CONFIG`` and then from ``HUB_<SECTION>_<KEY>`` environment
variables. Anything unknown or malformed raises :class:`SettingsError` naming
the setting, so a typo stops start-up instead of being ignored.

The hub reads its own sections into typed dataclasses; each connector does the
same for its section with :meth:`Settings.section`.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import tomllib
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

DEFAULTS_FILE = Path(__file__).resolve().parent.parent / "config" / "defaults.toml"
ENV_PREFIX = "HUB_"
CONFIG_FILE_VARIABLE = "HUB_CONFIG"

T = TypeVar("T")


class SettingsError(ValueError):
    """A setting is unknown or malformed. The message names it."""


def _env_name(section: str, key: str) -> str:
    return f"{ENV_PREFIX}{section}_{key}".upper()


def _coerce(name: str, default: Any, value: Any) -> Any:
    """Coerce ``value`` to the type of ``default``; strings come from the environment."""
    expected = type(default)
    if isinstance(value, str) and expected is not str:
        text = value.strip()
        try:
            if expected is bool:
                lowered = text.lower()
                if lowered in {"1", "true", "yes", "on"}:
                    return True
                if lowered in {"0", "false", "no", "off"}:
                    return False
                raise ValueError
            if expected is int:
                return int(text)
            if expected is float:
                return float(text)
            value = json.loads(text)
        except ValueError:
            raise SettingsError(f"{name}: expected {expected.__name__}, got {value!r}") from None
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if type(value) is not expected:
        raise SettingsError(f"{name}: expected {expected.__name__}, got {type(value).__name__} {value!r}")
    return value


class Settings:
    """All settings, validated, by section. Immutable once loaded."""

    def __init__(self, values: Mapping[str, Mapping[str, Any]]) -> None:
        self._values = {s: dict(v) for s, v in values.items()}

    def raw(self, section: str) -> dict[str, Any]:
        """A copy of one section as plain values."""
        if section not in self._values:
            raise SettingsError(f"[{section}]: unknown settings section")
        return dict(self._values[section])

    def section(self, name: str, cls: type[T]) -> T:
        """Build the dataclass ``cls`` from section ``name``, checking every field.

        The dataclass's fields must be exactly the section's keys, so the
        defaults file and the code cannot drift apart unnoticed.
        """
        values = self.raw(name)
        if not dataclasses.is_dataclass(cls):
            raise TypeError(f"{cls!r} is not a dataclass")
        hints = typing.get_type_hints(cls)
        fields = {f.name for f in dataclasses.fields(cls)}
        missing = fields - values.keys()
        if missing:
            raise SettingsError(
                f"[{name}] {sorted(missing)[0]}: declared in code but missing from {DEFAULTS_FILE.name}"
            )
        unused = values.keys() - fields
        if unused:
            raise SettingsError(f"[{name}] {sorted(unused)[0]}: in {DEFAULTS_FILE.name} but not read by {cls.__name__}")
        for key in fields:
            _check_type(f"{_env_name(name, key)} ([{name}] {key})", hints[key], values[key])
        instance = cls(**values)
        validate = getattr(instance, "validate", None)
        if validate is not None:
            validate()
        return instance


def _check_type(name: str, hint: Any, value: Any) -> None:
    origin = typing.get_origin(hint) or hint
    if origin in (list, tuple):
        if not isinstance(value, list | tuple):
            raise SettingsError(f"{name}: expected a list, got {value!r}")
        return
    if origin is dict:
        if not isinstance(value, dict):
            raise SettingsError(f"{name}: expected a table, got {value!r}")
        return
    if origin is types.UnionType or origin is typing.Union:
        return
    if isinstance(origin, type) and not isinstance(value, origin):
        raise SettingsError(f"{name}: expected {origin.__name__}, got {value!r}")


def load_settings(
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> Settings:
    """Load defaults, then the HUB_CONFIG file, then HUB_* variables, then ``overrides``.

    ``overrides`` is for tests and embedding; it is validated like the rest.
    """
    environ = os.environ if environ is None else environ
    with DEFAULTS_FILE.open("rb") as f:
        defaults: dict[str, dict[str, Any]] = tomllib.load(f)
    merged = {section: dict(values) for section, values in defaults.items()}

    def apply(section: str, key: str, value: Any, origin: str) -> None:
        if section not in defaults:
            raise SettingsError(f"{origin}: unknown settings section [{section}]")
        if key not in defaults[section]:
            known = ", ".join(sorted(defaults[section]))
            raise SettingsError(f"{origin}: unknown setting [{section}] {key} (known: {known})")
        merged[section][key] = _coerce(origin, defaults[section][key], value)

    config_file = environ.get(CONFIG_FILE_VARIABLE)
    if config_file:
        path = Path(config_file)
        try:
            with path.open("rb") as f:
                from_file = tomllib.load(f)
        except OSError as exc:
            raise SettingsError(f"{CONFIG_FILE_VARIABLE}: cannot read {path}: {exc}") from None
        except tomllib.TOMLDecodeError as exc:
            raise SettingsError(f"{CONFIG_FILE_VARIABLE}: {path} is not valid TOML: {exc}") from None
        for section, values in from_file.items():
            if not isinstance(values, dict):
                raise SettingsError(f"{path}: {section} must be a [section]")
            for key, value in values.items():
                apply(section, key, value, f"{path} [{section}] {key}")

    sections_by_length = sorted(defaults, key=len, reverse=True)
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX) or name == CONFIG_FILE_VARIABLE:
            continue
        rest = name[len(ENV_PREFIX) :].lower()
        for section in sections_by_length:
            if rest.startswith(section + "_"):
                apply(section, rest[len(section) + 1 :], value, name)
                break
        else:
            raise SettingsError(f"{name}: unknown setting (no section matches)")

    for section, values in (overrides or {}).items():
        for key, value in values.items():
            apply(section, key, value, _env_name(section, key))
    return Settings(merged)


def read_secret(value: str, file: str, name: str) -> str:
    """A secret given directly (usually from the environment) or in a file.

    The secret itself never appears in an error message.
    """
    if value and file:
        raise SettingsError(f"{name}: give the value or a file, not both")
    if file:
        try:
            return Path(file).read_text().strip()
        except OSError as exc:
            raise SettingsError(f"{name}_file: cannot read {file}: {exc.strerror}") from None
    return value


# -- The hub's own sections ---------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class AppSettings:
    secret_key: str = dataclasses.field(repr=False)
    public_base_url: str
    connectors: list[str]
    max_body_bytes: int
    instance_dir: str
    log_format: str

    def validate(self) -> None:
        if self.log_format not in {"text", "json"}:
            raise SettingsError(f"HUB_APP_LOG_FORMAT: one of text, json, got {self.log_format!r}")
        if not self.public_base_url.startswith(("http://", "https://")):
            raise SettingsError(
                f"HUB_APP_PUBLIC_BASE_URL: must start with http:// or https://, got {self.public_base_url!r}"
            )
        if self.max_body_bytes < 1024:
            raise SettingsError(f"HUB_APP_MAX_BODY_BYTES: at least 1024, got {self.max_body_bytes}")


@dataclasses.dataclass(frozen=True)
class AuthSettings:
    session_idle_minutes: int
    login_max_failures: int
    login_block_minutes: int

    def validate(self) -> None:
        if not 1 <= self.session_idle_minutes <= 60 * 24 * 31:
            raise SettingsError(
                f"HUB_AUTH_SESSION_IDLE_MINUTES: between 1 and 44640 (31 days), got {self.session_idle_minutes}"
            )
        if not 1 <= self.login_max_failures <= 1000:
            raise SettingsError(f"HUB_AUTH_LOGIN_MAX_FAILURES: between 1 and 1000, got {self.login_max_failures}")
        if not 1 <= self.login_block_minutes <= 60 * 24:
            raise SettingsError(f"HUB_AUTH_LOGIN_BLOCK_MINUTES: between 1 and 1440, got {self.login_block_minutes}")


@dataclasses.dataclass(frozen=True)
class DatabaseSettings:
    url: str = dataclasses.field(repr=False)
    sqlite_synchronous: str
    pool_size: int

    def validate(self) -> None:
        if self.sqlite_synchronous.upper() not in {"OFF", "NORMAL", "FULL", "EXTRA"}:
            raise SettingsError(
                f"HUB_DATABASE_SQLITE_SYNCHRONOUS: one of OFF, NORMAL, FULL, EXTRA, got {self.sqlite_synchronous!r}"
            )
        if self.url and not self.url.startswith(("sqlite", "postgresql")):
            raise SettingsError("HUB_DATABASE_URL: Corridor runs on sqlite:/// or postgresql+psycopg:// URLs")
        if self.url.startswith("sqlite") and self.url.rstrip("/").endswith(("sqlite:", ":memory:")):
            # Every connection would get a database of its own, and the inbox needs a file beside it.
            raise SettingsError("HUB_DATABASE_URL: a SQLite database lives in a file: sqlite:///path/to/corridor.db")


#: The search backends ``[search] backend`` may name; the last two are engines.
SEARCH_BACKENDS = ("auto", "sqlite", "postgres", "elasticsearch", "opensearch")


@dataclasses.dataclass(frozen=True)
class SearchSettings:
    backend: str
    url: str
    api_key: str = dataclasses.field(repr=False)
    api_key_file: str
    username: str
    password: str = dataclasses.field(repr=False)
    password_file: str
    ca_file: str
    index_prefix: str
    shards: int
    replicas: int
    request_timeout: float
    batch_size: int
    lag_threshold: float
    retry_seconds: float
    facet_sample: int

    @property
    def engine(self) -> bool:
        """Whether the backend is an external search engine (fed from the outbox)."""
        return self.backend in {"elasticsearch", "opensearch"}

    @property
    def urls(self) -> list[str]:
        return [u.strip() for u in self.url.split(",") if u.strip()]

    def validate(self) -> None:
        if self.backend not in SEARCH_BACKENDS:
            raise SettingsError(f"HUB_SEARCH_BACKEND: one of {', '.join(SEARCH_BACKENDS)}, got {self.backend!r}")
        if self.engine:
            if not self.urls:
                raise SettingsError(f"HUB_SEARCH_URL: required with HUB_SEARCH_BACKEND={self.backend}")
            for url in self.urls:
                if not url.startswith(("http://", "https://")):
                    raise SettingsError(f"HUB_SEARCH_URL: must start with http:// or https://, got {url!r}")
        if not re.fullmatch(r"[a-z0-9][a-z0-9_.-]{0,100}", self.index_prefix):
            raise SettingsError(
                f"HUB_SEARCH_INDEX_PREFIX: lowercase letters, digits, '-', '_' and '.', got {self.index_prefix!r}"
            )
        if not 1 <= self.shards <= 1024:
            raise SettingsError(f"HUB_SEARCH_SHARDS: between 1 and 1024, got {self.shards}")
        if not 0 <= self.replicas <= 16:
            raise SettingsError(f"HUB_SEARCH_REPLICAS: between 0 and 16, got {self.replicas}")
        if not 0.1 <= self.request_timeout <= 600:
            raise SettingsError(f"HUB_SEARCH_REQUEST_TIMEOUT: between 0.1 and 600 seconds, got {self.request_timeout}")
        if not 1 <= self.batch_size <= 10_000:
            raise SettingsError(f"HUB_SEARCH_BATCH_SIZE: between 1 and 10000, got {self.batch_size}")
        if self.lag_threshold <= 0:
            raise SettingsError(f"HUB_SEARCH_LAG_THRESHOLD: must be > 0 seconds, got {self.lag_threshold}")
        if not 0 <= self.retry_seconds <= 3600:
            raise SettingsError(f"HUB_SEARCH_RETRY_SECONDS: between 0 and 3600 seconds, got {self.retry_seconds}")
        if not 100 <= self.facet_sample <= 10_000_000:
            raise SettingsError(f"HUB_SEARCH_FACET_SAMPLE: between 100 and 10000000, got {self.facet_sample}")
        if self.username and not (self.password or self.password_file):
            raise SettingsError("HUB_SEARCH_PASSWORD: required with HUB_SEARCH_USERNAME (or HUB_SEARCH_PASSWORD_FILE)")

    def credentials(self) -> tuple[str, tuple[str, str] | None]:
        """The API key ("" when none) and the basic-auth pair (None when none), read from where they are kept."""
        api_key = read_secret(self.api_key, self.api_key_file, "HUB_SEARCH_API_KEY")
        basic = None
        if self.username:
            basic = (self.username, read_secret(self.password, self.password_file, "HUB_SEARCH_PASSWORD"))
        return api_key, basic


@dataclasses.dataclass(frozen=True)
class IdentitySettings:
    default_region: str

    def validate(self) -> None:
        import phonenumbers

        if self.default_region.upper() not in phonenumbers.SUPPORTED_REGIONS:
            raise SettingsError(
                f"HUB_IDENTITY_DEFAULT_REGION: not a region phonenumbers knows: {self.default_region!r}"
            )


@dataclasses.dataclass(frozen=True)
class ThreadingSettings:
    window_hours: int

    def validate(self) -> None:
        if self.window_hours < 0:
            raise SettingsError(f"HUB_THREADING_WINDOW_HOURS: must be >= 0, got {self.window_hours}")


@dataclasses.dataclass(frozen=True)
class JournalSettings:
    processor: str
    batch_size: int
    poll_interval: float
    max_waiting: int

    def validate(self) -> None:
        if self.processor not in {"web", "worker"}:
            raise SettingsError(f"HUB_JOURNAL_PROCESSOR: one of web, worker, got {self.processor!r}")
        if not 1 <= self.batch_size <= 10_000:
            raise SettingsError(f"HUB_JOURNAL_BATCH_SIZE: between 1 and 10000, got {self.batch_size}")
        if not 0.001 <= self.poll_interval <= 60:
            raise SettingsError(f"HUB_JOURNAL_POLL_INTERVAL: between 0.001 and 60 seconds, got {self.poll_interval}")
        if not 0 <= self.max_waiting <= 1000:
            raise SettingsError(f"HUB_JOURNAL_MAX_WAITING: between 0 and 1000, got {self.max_waiting}")


@dataclasses.dataclass(frozen=True)
class RetentionSettings:
    journal_payload_days: int
    interaction_days: int
    interval_minutes: int

    def validate(self) -> None:
        for name in ("journal_payload_days", "interaction_days"):
            if getattr(self, name) < 0:
                raise SettingsError(
                    f"HUB_RETENTION_{name.upper()}: 0 (keep forever) or more, got {getattr(self, name)}"
                )
        if not 1 <= self.interval_minutes <= 60 * 24 * 7:
            raise SettingsError(f"HUB_RETENTION_INTERVAL_MINUTES: between 1 and 10080, got {self.interval_minutes}")


@dataclasses.dataclass(frozen=True)
class LiveSettings:
    host: str
    port: int
    public_url: str
    allowed_origins: list[str]
    token_ttl_seconds: int
    heartbeat_seconds: float
    retry_ms: int
    poll_interval: float
    max_streams: int
    retention_hours: int

    def validate(self) -> None:
        if not 0 <= self.port <= 65535:
            raise SettingsError(f"HUB_LIVE_PORT: a TCP port, got {self.port}")
        if not 30 <= self.token_ttl_seconds <= 86_400:
            raise SettingsError(f"HUB_LIVE_TOKEN_TTL_SECONDS: between 30 and 86400, got {self.token_ttl_seconds}")
        if not 1 <= self.heartbeat_seconds <= 300:
            raise SettingsError(f"HUB_LIVE_HEARTBEAT_SECONDS: between 1 and 300, got {self.heartbeat_seconds}")
        if not 0.005 <= self.poll_interval <= 10:
            raise SettingsError(f"HUB_LIVE_POLL_INTERVAL: between 0.005 and 10 seconds, got {self.poll_interval}")
        if self.retention_hours < 1:
            raise SettingsError(f"HUB_LIVE_RETENTION_HOURS: at least 1, got {self.retention_hours}")
        for origin in self.allowed_origins:
            if not origin.startswith(("http://", "https://")) or origin.rstrip("/") != origin:
                raise SettingsError(f"HUB_LIVE_ALLOWED_ORIGINS: scheme://host[:port] without a path, got {origin!r}")


@dataclasses.dataclass(frozen=True)
class MetricsSettings:
    token: str = dataclasses.field(repr=False)
    allow_from: list[str]

    def validate(self) -> None:
        import ipaddress

        for network in self.allow_from:
            try:
                ipaddress.ip_network(network, strict=False)
            except ValueError:
                raise SettingsError(f"HUB_METRICS_ALLOW_FROM: not an address or network: {network!r}") from None


@dataclasses.dataclass(frozen=True)
class HubSettings:
    """The hub's own settings, typed. Connectors read their sections themselves."""

    app: AppSettings
    auth: AuthSettings
    database: DatabaseSettings
    search: SearchSettings
    identity: IdentitySettings
    threading: ThreadingSettings
    journal: JournalSettings
    retention: RetentionSettings
    live: LiveSettings
    metrics: MetricsSettings

    @classmethod
    def from_settings(cls, settings: Settings) -> HubSettings:
        return cls(
            app=settings.section("app", AppSettings),
            auth=settings.section("auth", AuthSettings),
            database=settings.section("database", DatabaseSettings),
            search=settings.section("search", SearchSettings),
            identity=settings.section("identity", IdentitySettings),
            threading=settings.section("threading", ThreadingSettings),
            journal=settings.section("journal", JournalSettings),
            retention=settings.section("retention", RetentionSettings),
            live=settings.section("live", LiveSettings),
            metrics=settings.section("metrics", MetricsSettings),
        )
