"""Real services the test suite starts for itself: PostgreSQL, Dovecot, SMTP, the search engine, Chromium.

Loaded as a pytest plugin (``pytest_plugins = ["tests.services"]`` in the
top-level conftest), which loads one module per service with its fixtures:
``postgres`` (``postgres_url``), ``dovecot`` (``dovecot``, ``start_dovecot``),
``smtp`` (``smtp_server``, ``start_smtp_server``), ``search_engine``
(``search_engine_url``), ``browser`` (``browser``, ``page``) and ``tls``
(``tls_files``, ``foreign_ca_file``, for Dovecot and SMTP with TLS);
``process`` holds what every starter needs. Every service runs privately on
a free loopback port with its state in a temporary directory, so tests never
touch (or depend on) a system-wide server, and two test runs on one machine do
not collide.

When a service cannot run here, :func:`require` skips the test on a
developer's machine but fails it under CI (``CI=true``): a green CI run must
mean every test really ran against the real thing.
"""

from __future__ import annotations

from tests.services.dovecot import Dovecot
from tests.services.postgres import PostgresCluster, fresh_postgres_database
from tests.services.process import LOG_TAIL_LINES, SERVICE_TIMEOUT, free_port, log_tail, port_is_open, require
from tests.services.smtp import ReceivedMessage, SmtpServer, SmtpTls
from tests.services.tls import TLS_HOST, TlsFiles, make_self_signed_tls_files, make_tls_files

pytest_plugins = [
    "tests.services.postgres",
    "tests.services.tls",
    "tests.services.dovecot",
    "tests.services.smtp",
    "tests.services.search_engine",
    "tests.services.browser",
]

__all__ = [
    "LOG_TAIL_LINES",
    "SERVICE_TIMEOUT",
    "TLS_HOST",
    "Dovecot",
    "PostgresCluster",
    "ReceivedMessage",
    "SmtpServer",
    "SmtpTls",
    "TlsFiles",
    "free_port",
    "fresh_postgres_database",
    "log_tail",
    "make_self_signed_tls_files",
    "make_tls_files",
    "port_is_open",
    "require",
]
