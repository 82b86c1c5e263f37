"""The email channel: IMAP intake, MIME parsing and SMTP replies.

:mod:`connectors.email.parse` turns one raw RFC 5322 message into a
:class:`hub.events.ChannelEvent`. It is pure (bytes in, value out), so it is
importable and testable without a database, a mailbox or the hub running.

The IMAP poller, the SMTP sender and ``init_connector`` come in a later phase;
this package deliberately imports nothing yet, so importing the parser never
drags in the hub's database layer.
"""
