"""Three ``corridor worker`` processes on one PostgreSQL and one real Dovecot folder.

Each worker runs the folder's intake; the folder's lease lets one read it at
a time. Killing that one with SIGKILL (no clean-up, its lease left to lapse)
hands the folder to another within a lease period, and no message is read
twice: not on the timeline, not in the journal.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from hub.db import Database
from hub.leases import lease_holder
from hub.migrate import upgrade
from hub.models import Interaction, JournalEntry
from tests.connectors.email.conftest import PASSWORD, USER, mailbox_table
from tests.connectors.email.messages import append_all, customer_message
from tests.fleet import Fleet, fleet_environ
from tests.services import Dovecot
from tests.services.postgres import fresh_postgres_database
from tests.waiting import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

#: Short, so the test waits seconds; the default is 30.
LEASE_SECONDS = 3
LEASE = "email:support/INBOX"


def counts(database: Database) -> tuple[int, int, int]:
    """Interactions, distinct Message-IDs among them, and journal entries of the folder."""
    with database.read() as session:
        interactions = session.scalar(select(func.count()).select_from(Interaction)) or 0
        distinct = session.scalar(select(func.count(func.distinct(Interaction.external_id)))) or 0
        journaled = (
            session.scalar(
                select(func.count()).select_from(JournalEntry).where(JournalEntry.source.like("email:%INBOX"))
            )
            or 0
        )
    return interactions, distinct, journaled


def test_a_killed_folder_owner_is_replaced_within_the_lease_period_and_no_mail_is_read_twice(
    mail_server: Dovecot, password_file: Path, postgres_url: str, tmp_path: Path
) -> None:
    url = fresh_postgres_database(postgres_url, "corridor_folder_lease")
    database = Database(url)
    # Migrated once, before the workers start (each would otherwise race the others to it).
    upgrade(database)
    environ = fleet_environ(
        url,
        tmp_path / "instance",
        app_connectors='["email"]',
        email_mailboxes=json.dumps([mailbox_table(mail_server, None, password_file)]),
        email_lease_seconds=str(LEASE_SECONDS),
        email_parse_processes="0",
        email_poll_interval="1",
    )
    imap = mail_server.client(USER, PASSWORD)
    append_all(imap, "INBOX", [customer_message(n) for n in range(60)])
    try:
        with Fleet(tmp_path, environ) as fleet:
            workers = [fleet.worker(f"worker-{n}") for n in range(3)]
            assert wait_until(lambda: counts(database)[0] == 60, 90), fleet.logs()
            holder = lease_holder(database, LEASE)
            assert holder is not None
            [owner] = [w for w in workers if f":{w.pid}:" in holder]
            # Only the owner ever read the folder.
            assert [w.name for w in workers if "reads the folder now" in w.log_path.read_text()] == [owner.name]

            owner.kill()
            killed = time.monotonic()
            append_all(imap, "INBOX", [customer_message(n) for n in range(60, 90)])
            assert wait_until(lambda: lease_holder(database, LEASE) not in (None, holder), 4 * LEASE_SECONDS)
            taken_over = time.monotonic() - killed
            # Lapsed within a period of the last renewal, then taken at the
            # next try (every third of a period); a second's slack for a busy machine.
            assert taken_over <= LEASE_SECONDS * 4 / 3 + 1.0, f"taken over after {taken_over:.1f} s"
            assert wait_until(lambda: counts(database)[0] == 90, 60), fleet.logs()
            time.sleep(LEASE_SECONDS)  # anything read twice would have arrived by now
            assert counts(database) == (90, 90, 90)
            successor = lease_holder(database, LEASE)
            assert successor is not None
            readers = [w.name for w in workers if w is not owner and "reads the folder now" in w.log_path.read_text()]
            assert len(readers) == 1
            print(f"taken over {taken_over:.2f} s after the kill (lease {LEASE_SECONDS} s)")
    finally:
        imap.logout()
        database.dispose()
