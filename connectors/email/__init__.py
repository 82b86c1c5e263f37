"""The email channel: IMAP intake, MIME parsing and SMTP replies.

* :mod:`.settings` -- the ``[email]`` section: mailboxes, validated;
* :mod:`.parse` -- one raw RFC 5322 message to a :class:`hub.events.ChannelEvent`,
  pure (bytes in, value out), testable without a database or a mailbox;
* :mod:`.intake` -- per folder: UID cursor, backfill in batches, IDLE or
  polling, reconnects; each batch and its cursor in one transaction;
* :mod:`.connection` -- opening the IMAP and SMTP connections, TLS verified;
* :mod:`.sender` -- agents' replies over SMTP, threaded by Message-ID;
* :mod:`.sent` -- copies of sent replies in the mailbox's Sent folder;
* :mod:`.commands` -- ``corridor email sync [--once]`` and ``corridor email status``.

:func:`init_connector` wires them into the hub. Its imports are local so that
importing the parser (in its tests, say) never drags in IMAP, SMTP or the
database layer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hub.contract import Registry


def init_connector(registry: Registry) -> None:
    """Register the SMTP sender, the intake and Sent-copy workers, the replay parser and the CLI.

    Raises :class:`hub.config.SettingsError` (stopping start-up) when no
    mailbox is configured or a mailbox's password or CA file cannot be read:
    better a clear message at start than a worker that fails to log in every
    minute.
    """
    from connectors.email.commands import email_commands
    from connectors.email.connection import tls_context
    from connectors.email.intake import event_from_imap, folder_intakes, intake_worker
    from connectors.email.sender import SmtpSender
    from connectors.email.sent import SentCopies
    from connectors.email.settings import EmailSettings
    from hub.contract import Channel, SettingsError

    settings = registry.settings.section("email", EmailSettings)
    mailboxes = settings.mailbox_settings()
    if not mailboxes:
        raise SettingsError(
            "[email] mailboxes: the email connector is enabled but no mailbox is configured (see config/defaults.toml)"
        )
    for mailbox in mailboxes:
        mailbox.password()
        mailbox.smtp_password()
        if mailbox.tls != "none":
            tls_context(mailbox, "imap")
        if mailbox.smtp_tls != "none":
            tls_context(mailbox, "smtp")
    sent_copies = SentCopies(registry.database, mailboxes)
    registry.add_sender(Channel.EMAIL, SmtpSender(mailboxes, sent_copies=sent_copies))
    registry.add_worker("email sent copies", sent_copies.worker)
    registry.add_worker("email intake", intake_worker(folder_intakes(registry.database, settings, mailboxes)))
    registry.add_parser("email", lambda raw, context: [event_from_imap(raw, context)])
    registry.add_command(email_commands(registry.database, settings, mailboxes))
