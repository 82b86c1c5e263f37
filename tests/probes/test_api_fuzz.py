"""Schemathesis over every operation of /api/openapi.json: no 5xx, and nothing acknowledged is lost.

Bounded and repeatable: a fixed number of examples per operation, derandomised
(the same requests every run), no example database; about a minute for both
lanes (SQLite and PostgreSQL). A failure prints the request that caused it.
After the requests, the journal is processed: an event the API answered 2xx
for must not end failed.
"""

from __future__ import annotations

import os

import schemathesis
from flask import Flask
from hypothesis import HealthCheck, Phase, given, settings
from sqlalchemy import select

from hub.models import JournalEntry, JournalStatus, Role
from hub.runtime import Runtime
from hub.web.api.openapi import openapi_document
from tests.conftest import make_agent
from tests.hub.events import event_json, post_event

#: Examples per operation and database: 21 operations x 2 lanes x 30 stay well under two minutes.
#: CORRIDOR_FUZZ_EXAMPLES=1000 probes deeper, by hand.
EXAMPLES = int(os.environ.get("CORRIDOR_FUZZ_EXAMPLES", "30"))


def _seeded(app: Flask) -> dict[str, str]:
    """A database with something in it, so ids like 1 find a customer, a conversation, a journal entry."""
    runtime: Runtime = app.extensions["corridor"]
    auth = {"Authorization": f"Bearer {make_agent(runtime, Role.ADMIN)}"}
    client = app.test_client()
    post_event(client, event_json(), auth)
    post_event(client, event_json(channel="sms", **{"from": "+14155550123"}), auth)
    return auth


def test_every_operation_answers_without_a_5xx_and_loses_nothing(app: Flask, runtime: Runtime) -> None:
    auth = _seeded(app)
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", app)
    probed = {r.ok().label for r in schema.get_all_operations()}
    described = {f"{m.upper()} {p}" for p, methods in openapi_document()["paths"].items() for m in methods}
    # Schemathesis leaves out the document it was loaded from; it is fetched above.
    assert probed == described - {"GET /api/openapi.json"}, "every described operation is probed"
    failures: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()

        @settings(
            max_examples=EXAMPLES,
            derandomize=True,
            database=None,
            deadline=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy())
        def probe(case: schemathesis.Case) -> None:
            response = case.call(headers=auth)
            if response.status_code >= 500:
                failures.append(
                    f"{response.status_code} {case.method} {case.formatted_path} query={case.query} "
                    f"body={case.body!r:.300}"
                )

        probe()
    assert failures == []
    runtime.journal.drain()
    with runtime.database.read() as session:
        failed = list(
            session.execute(
                select(JournalEntry.id, JournalEntry.error).where(JournalEntry.status == JournalStatus.FAILED)
            )
        )
    assert failed == [], "acknowledged with a 2xx, then failed processing"
