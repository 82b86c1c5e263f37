"""The test services themselves work: each one is exercised the way the suite uses it."""

from __future__ import annotations

import json
import smtplib
import urllib.error
import urllib.request
from email.message import EmailMessage
from typing import TYPE_CHECKING, Any

import pytest
import sqlalchemy as sa
from imapclient import IMAPClient
from imapclient.exceptions import LoginError

from tests.services import fresh_postgres_database, port_is_open, require

if TYPE_CHECKING:
    from collections.abc import Callable

    from osmem_server import OsmemServer
    from playwright.sync_api import Page

    from tests.services import Dovecot, SmtpServer, TlsFiles

MESSAGE = b"From: a@example.com\r\nTo: b@example.com\r\nSubject: hello\r\nMessage-ID: <1@example.com>\r\n\r\nBody.\r\n"


def test_require_skips_locally_and_fails_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="thing unavailable: gone"):
        require("thing", "gone")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="thing unavailable: gone"):
        require("thing", "gone")


@pytest.mark.postgres
def test_postgres_answers(postgres_url: str) -> None:
    engine = sa.create_engine(postgres_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT 1")).scalar_one() == 1
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_fresh_postgres_database_is_empty_every_time(postgres_url: str) -> None:
    url = fresh_postgres_database(postgres_url, "corridor_services_check")
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE leftover (id int)"))
        # The recreate must succeed even with this engine's connection still pooled.
        assert fresh_postgres_database(postgres_url, "corridor_services_check") == url
        engine.dispose()
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT to_regclass('leftover')")).scalar_one() is None
    finally:
        engine.dispose()


def _fetch_bodies(imap: IMAPClient, folder: str) -> dict[int, bytes]:
    imap.select_folder(folder, readonly=True)
    uids = imap.search(["ALL"])
    if not uids:
        return {}
    fetched = imap.fetch(uids, ["BODY.PEEK[]", "FLAGS"])
    # PEEK must leave the message unread: the email connector relies on it.
    assert all(b"\\Seen" not in item[b"FLAGS"] for item in fetched.values())
    return {uid: item[b"BODY[]"] for uid, item in fetched.items()}


def test_dovecot_append_then_fetch(dovecot: Dovecot) -> None:
    dovecot.add_user("alice", "secret")
    uid = dovecot.append("alice", "secret", "INBOX", MESSAGE)
    imap = dovecot.client("alice", "secret")
    try:
        assert _fetch_bodies(imap, "INBOX") == {uid: MESSAGE}
    finally:
        imap.logout()


def test_dovecot_rejects_a_wrong_password(dovecot: Dovecot) -> None:
    dovecot.add_user("alice", "secret")
    with pytest.raises(LoginError):
        dovecot.client("alice", "wrong")


def test_dovecot_restart_keeps_port_message_and_uid(dovecot: Dovecot) -> None:
    dovecot.add_user("alice", "secret")
    uid = dovecot.append("alice", "secret", "Archive", MESSAGE)
    validity = dovecot.uidvalidity("alice", "secret", "Archive")
    port = dovecot.port

    dovecot.stop()
    assert not port_is_open(dovecot.host, port)
    dovecot.start()

    assert dovecot.port == port
    assert dovecot.uidvalidity("alice", "secret", "Archive") == validity
    imap = dovecot.client("alice", "secret")
    try:
        assert _fetch_bodies(imap, "Archive") == {uid: MESSAGE}
    finally:
        imap.logout()


@pytest.mark.parametrize("folder", ["INBOX", "Archive"])
def test_dovecot_reset_uidvalidity_keeps_messages(dovecot: Dovecot, folder: str) -> None:
    dovecot.add_user("alice", "secret")
    dovecot.append("alice", "secret", folder, MESSAGE)
    old = dovecot.uidvalidity("alice", "secret", folder)

    new = dovecot.reset_uidvalidity("alice", "secret", folder)

    assert new != old
    assert dovecot.uidvalidity("alice", "secret", folder) == new
    imap = dovecot.client("alice", "secret")
    try:
        assert list(_fetch_bodies(imap, folder).values()) == [MESSAGE]
    finally:
        imap.logout()


def _send(server: SmtpServer, subject: str) -> None:
    message = EmailMessage()
    message["From"] = "agent@corridor.test"
    message["To"] = "customer@example.com"
    message["Subject"] = subject
    message.set_content("Hello.")
    with smtplib.SMTP(server.host, server.port, timeout=10) as client:
        client.send_message(message)


def test_smtp_records_what_it_receives(smtp_server: SmtpServer) -> None:
    _send(smtp_server, "first")

    [received] = smtp_server.wait_for(1, timeout=5)

    assert received.mail_from == "agent@corridor.test"
    assert received.rcpt_tos == ("customer@example.com",)
    assert b"Subject: first" in received.data


def test_smtp_refuses_when_told_then_accepts(smtp_server: SmtpServer) -> None:
    smtp_server.refuse("451 4.3.0 Try again later", count=1)
    with pytest.raises(smtplib.SMTPDataError) as refused:
        _send(smtp_server, "first try")
    assert refused.value.smtp_code == 451

    _send(smtp_server, "second try")

    assert [m.data.count(b"second try") for m in smtp_server.wait_for(1)] == [1]
    assert smtp_server.refused == 1


def test_smtp_wait_for_names_what_arrived(smtp_server: SmtpServer) -> None:
    with pytest.raises(TimeoutError, match="got 0"):
        smtp_server.wait_for(1, timeout=0.05)


def test_tls_dovecot_refuses_any_login_before_tls_and_serves_starttls_and_implicit_tls(
    start_dovecot: Callable[..., Dovecot], tls_files: TlsFiles
) -> None:
    server = start_dovecot(tls=tls_files, special_use={"Sent Items": "\\Sent"})
    server.add_user("alice", "secret-1")

    plain = IMAPClient(server.host, port=server.port, ssl=False, timeout=10)
    try:
        # What the TLS tests rely on: a client that skips TLS cannot log in.
        with pytest.raises(LoginError, match="PRIVACYREQUIRED"):
            plain.login("alice", "secret-1")
        plain.starttls(tls_files.client_context())
        plain.login("alice", "secret-1")
        assert ((b"\\HasNoChildren", b"\\Sent"), b".", "Sent Items") in plain.list_folders()
    finally:
        plain.logout()
    implicit = server.client("alice", "secret-1")  # the implicit-TLS port
    implicit.logout()


def test_tls_smtp_refuses_mail_before_starttls_and_records_tls_and_login(
    start_smtp_server: Callable[..., SmtpServer], tls_files: TlsFiles
) -> None:
    server = start_smtp_server(tls="starttls", tls_files=tls_files, login=("alice", "secret-1"))
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "agent@corridor.test", "customer@example.com", "hi"
    message.set_content("Hello.")

    with (
        smtplib.SMTP(server.host, server.port, timeout=10) as client,
        pytest.raises(smtplib.SMTPSenderRefused, match="Must issue a STARTTLS command first"),
    ):
        client.send_message(message)
    with smtplib.SMTP(server.host, server.port, timeout=10) as client:
        client.starttls(context=tls_files.client_context())
        client.login("alice", "secret-1")
        client.send_message(message)

    (received,) = server.wait_for(1)
    assert (received.tls, received.login) == (True, "alice")


def _search(url: str, method: str, path: str, body: object = None) -> Any:
    """One JSON request to the search engine, as a client library would send it."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url + path, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


def test_search_engine_finds_what_was_indexed_and_each_test_gets_an_empty_cluster(
    search_engine: OsmemServer, search_engine_url: str
) -> None:
    _search(search_engine_url, "PUT", "/interactions", {"mappings": {"properties": {"text": {"type": "text"}}}})
    _search(search_engine_url, "PUT", "/interactions/_doc/1?refresh=true", {"text": "Where is my parcel?"})

    found = _search(search_engine_url, "POST", "/interactions/_search", {"query": {"match": {"text": "parcel"}}})

    assert [hit["_id"] for hit in found["hits"]["hits"]] == ["1"]
    other = search_engine.clone()
    try:
        with pytest.raises(urllib.error.HTTPError) as missing:
            _search(other.url, "GET", "/interactions")
        assert missing.value.code == 404
        missing.value.close()
    finally:
        other.close()


def test_chromium_renders_a_page(page: Page) -> None:
    page.set_content("<p id=greeting>Hello from Corridor</p>")

    assert page.inner_text("#greeting") == "Hello from Corridor"
