"""Posting webhooks the way Twilio does: form-encoded, signed for the public URL.

The signature is computed here with Twilio's own ``RequestValidator`` over the
body decoded by the standard library, independently of the connector's parser,
so a test signs exactly what Twilio would and the server has to agree.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from flask.testing import FlaskClient
from sqlalchemy import func, select
from twilio.request_validator import RequestValidator
from werkzeug.test import TestResponse

from hub.models import Interaction, JournalEntry
from hub.runtime import Runtime
from tests.connectors.twilio.samples import AUTH_TOKEN

#: The public base URL of the app under test (what Twilio is configured to call).
PUBLIC_URL = "https://corridor.example.com"
FORM = "application/x-www-form-urlencoded"


def signature(url: str, body: bytes, token: str = AUTH_TOKEN) -> str:
    """What Twilio puts in X-Twilio-Signature when it posts ``body`` to ``url``."""
    params = dict(parse_qsl(body.decode("ascii"), keep_blank_values=True))
    return str(RequestValidator(token).compute_signature(url, params))


def post(
    client: FlaskClient,
    path: str,
    body: bytes,
    *,
    signed_for: str | None = None,
    token: str = AUTH_TOKEN,
    unsigned: bool = False,
    headers: dict[str, str] | None = None,
    remote_addr: str = "127.0.0.1",
    processed: bool = True,
) -> TestResponse:
    """POST ``body`` to ``path`` as Twilio would, signed for ``signed_for`` (default: the public URL).

    The webhook answers once the request is journaled; the journal processor
    puts it on the timeline right after. With ``processed`` (the default) the
    test runs the processor before returning, as a deployment's would run;
    without, the test sees what stands between the answer and the processing.
    """
    all_headers = dict(headers or {})
    if not unsigned:
        all_headers["X-Twilio-Signature"] = signature(signed_for or PUBLIC_URL + path, body, token)
    response = client.post(
        path, data=body, content_type=FORM, headers=all_headers, environ_base={"REMOTE_ADDR": remote_addr}
    )
    if processed:
        runtime: Runtime = client.application.extensions["corridor"]
        runtime.journal.drain()
    return response


def count(runtime: Runtime, model: type[Any]) -> int:
    with runtime.database.read() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def journal(runtime: Runtime) -> list[JournalEntry]:
    """Every journal row, oldest first."""
    with runtime.database.read() as session:
        return list(session.scalars(select(JournalEntry).order_by(JournalEntry.id)))


def interaction(runtime: Runtime, external_id: str) -> Interaction:
    with runtime.database.read() as session:
        found = session.scalar(select(Interaction).where(Interaction.external_id == external_id))
    assert found is not None, f"no interaction {external_id}"
    return found
