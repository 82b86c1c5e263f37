"""Connections to a mailbox's servers, with TLS verified as configured.

``tls`` and ``smtp_tls`` choose implicit TLS ("ssl"), STARTTLS or, for a
server on loopback, none. With TLS the server's certificate is always
verified, chain and host name, against the system's certificate authorities
or those in the mailbox's ``ca_file`` / ``smtp_ca_file``. A private CA, or a
self-signed certificate, is trusted by naming it there; there is no switch
that turns verification off, because a copied "verify = false" would hand the
mailbox password to anyone on the path. A mailbox configured for STARTTLS
never logs in in plain text: a server that does not offer STARTTLS fails the
connection.

Every failure names the mailbox, the server and what to check: the operator
reads it in a log line of the intake or on a reply that does not go out.
"""

from __future__ import annotations

import contextlib
import smtplib
import ssl
from typing import Literal

from imapclient import IMAPClient

from connectors.email.settings import MailboxSettings
from hub.contract import SettingsError

Service = Literal["imap", "smtp"]


class MailboxTlsError(OSError):
    """TLS with one of a mailbox's servers could not be set up as configured.

    An OSError, like any other connection trouble: the intake retries with
    backoff (the server's certificate may be fixed in the meantime) and a
    reply stays queued for the worker.
    """


def tls_context(mailbox: MailboxSettings, protocol: Service) -> ssl.SSLContext:
    """A client context that verifies the server against ``ca_file`` (or ``smtp_ca_file``), else the system's CAs.

    Raises :class:`SettingsError` naming the key when the file cannot be read
    or holds no certificate.
    """
    key, ca_file = _ca_file(mailbox, protocol)
    try:
        # Certificates and host names are checked (CERT_REQUIRED and
        # check_hostname); the system's CAs are loaded only without a cafile,
        # so a private CA is the only one trusted for that server.
        return ssl.create_default_context(cafile=ca_file or None)
    except OSError as exc:  # missing file (FileNotFoundError) or no PEM certificate in it (ssl.SSLError)
        raise SettingsError(
            f"[email] mailbox {mailbox.name!r} {key}: cannot load CA certificates from {ca_file}: {exc}"
        ) from exc


def open_imap(mailbox: MailboxSettings, *, timeout: float) -> IMAPClient:
    """A client logged in to the mailbox's IMAP server, over TLS unless ``tls`` is "none"."""
    context = tls_context(mailbox, "imap") if mailbox.tls != "none" else None
    try:
        client = IMAPClient(
            mailbox.host, port=mailbox.port, ssl=mailbox.tls == "ssl", ssl_context=context, timeout=timeout
        )
    except ssl.SSLError as exc:
        raise MailboxTlsError(tls_failure(mailbox, "imap", exc)) from exc
    try:
        if mailbox.tls == "starttls":
            if not client.has_capability("STARTTLS"):
                raise MailboxTlsError(_no_starttls(mailbox, "imap"))
            try:
                client.starttls(context)
            except ssl.SSLError as exc:
                raise MailboxTlsError(tls_failure(mailbox, "imap", exc)) from exc
        client.login(mailbox.user, mailbox.password())
    except BaseException:
        # Nothing to log out of: drop the socket.
        with contextlib.suppress(Exception):
            client.shutdown()
        raise
    return client


def open_smtp(mailbox: MailboxSettings, *, timeout: float) -> smtplib.SMTP:
    """An SMTP connection to the mailbox's relay, over TLS unless ``smtp_tls`` is "none", logged in where offered."""
    context = tls_context(mailbox, "smtp") if mailbox.smtp_tls != "none" else None
    smtp: smtplib.SMTP
    try:
        if mailbox.smtp_tls == "ssl":
            smtp = smtplib.SMTP_SSL(mailbox.smtp_host, mailbox.smtp_port, timeout=timeout, context=context)
        else:
            smtp = smtplib.SMTP(mailbox.smtp_host, mailbox.smtp_port, timeout=timeout)
    except ssl.SSLError as exc:
        raise MailboxTlsError(tls_failure(mailbox, "smtp", exc)) from exc
    try:
        smtp.ehlo()
        if mailbox.smtp_tls == "starttls":
            if not smtp.has_extn("starttls"):
                raise MailboxTlsError(_no_starttls(mailbox, "smtp"))
            try:
                smtp.starttls(context=context)
            except ssl.SSLError as exc:
                raise MailboxTlsError(tls_failure(mailbox, "smtp", exc)) from exc
            smtp.ehlo()
        # A relay that offers no AUTH (a loopback or IP-trusted relay) takes
        # mail without a login; one that offers it gets ours.
        if mailbox.smtp_user and smtp.has_extn("auth"):
            smtp.login(mailbox.smtp_user, mailbox.smtp_password())
    except BaseException:
        smtp.close()
        raise
    return smtp


def tls_failure(mailbox: MailboxSettings, protocol: Service, exc: ssl.SSLError) -> str:
    """What went wrong setting up TLS with one of ``mailbox``'s servers, and what to check."""
    server = _server(mailbox, protocol)
    if isinstance(exc, ssl.SSLCertVerificationError):
        key, ca_file = _ca_file(mailbox, protocol)
        trusted = f"{key} {ca_file}" if ca_file else f"the system's CAs (a private CA goes in {key})"
        return (
            f"mailbox {mailbox.name!r}: {server} presented a certificate that does not verify against {trusted}: "
            f"{exc.verify_message or exc.reason or exc}"
        )
    mode = mailbox.tls if protocol == "imap" else mailbox.smtp_tls
    hint = "implicit TLS" if mode == "ssl" else "STARTTLS"
    return f"mailbox {mailbox.name!r}: TLS with {server} failed ({hint} configured): {exc.reason or exc}"


def _no_starttls(mailbox: MailboxSettings, protocol: Service) -> str:
    key = "tls" if protocol == "imap" else "smtp_tls"
    return (
        f'mailbox {mailbox.name!r}: {_server(mailbox, protocol)} does not offer STARTTLS, and {key} = "starttls" '
        f'never logs in without it (for an implicit-TLS port, {key} = "ssl")'
    )


def _server(mailbox: MailboxSettings, protocol: Service) -> str:
    if protocol == "imap":
        return f"the IMAP server {mailbox.host}:{mailbox.port}"
    return f"the SMTP server {mailbox.smtp_host}:{mailbox.smtp_port}"


def _ca_file(mailbox: MailboxSettings, protocol: Service) -> tuple[str, str]:
    if protocol == "imap":
        return "ca_file", mailbox.ca_file
    return "smtp_ca_file", mailbox.smtp_ca_file
