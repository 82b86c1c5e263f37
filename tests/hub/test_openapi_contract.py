"""The OpenAPI document against the server: valid 3.1, every operation named, every example round-tripped.

A generated client is only as good as the document: these tests fail when
the document and the server disagree. Each operation's documented request
(its parameter and body examples) is sent to a real app on a seeded
database, and the answer must have a documented status and match that
status's schema. Probes without a token, with unknown ids, with a body that
is not JSON and with one too large must get documented answers too.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from openapi_schema_validator import OAS31Validator
from openapi_spec_validator import validate

from hub import create_app
from hub.canned import create_canned
from hub.customers import merge
from hub.events import Channel
from hub.ingest import ingest_many
from hub.integrations import targets, webhook_settings
from hub.integrations.subscriptions import create_subscription
from hub.models import Role
from hub.runtime import Runtime
from hub.web.api.openapi import EVENT_EXAMPLE, openapi_document
from tests.conftest import AppFactory, make_agent
from tests.hub.events import event
from tests.hub.receiver import Receiver, receiving

DOCUMENT = openapi_document()
OPERATIONS = [
    (path, method, operation)
    for path, operations in DOCUMENT["paths"].items()
    for method, operation in operations.items()
]
#: Examples that cannot succeed in this setup, and the documented answer they get instead.
EXPECTED_FAILURES = {
    # No channel connector is loaded here, so no sender: the documented 422.
    "postReply": 422,
}
MAX_BODY = 4096


def test_the_document_is_valid_openapi_3_1() -> None:
    validate(DOCUMENT)
    assert DOCUMENT["openapi"] == "3.1.0"


def test_every_operation_has_a_unique_operation_id_and_tags() -> None:
    seen: dict[str, str] = {}
    everything = [*OPERATIONS, *((name, m, op) for name, ops in DOCUMENT["webhooks"].items() for m, op in ops.items())]
    for path, method, operation in everything:
        where = f"{method.upper()} {path}"
        assert operation.get("operationId"), f"{where} has no operationId"
        assert operation.get("tags"), f"{where} has no tags"
        assert operation["operationId"] not in seen, f"{where} repeats {seen.get(operation['operationId'])}'s id"
        seen[operation["operationId"]] = where
    declared = {tag["name"] for tag in DOCUMENT["tags"]}
    assert {tag for _, _, op in everything for tag in op["tags"]} <= declared


def _schema_of(response: dict[str, Any]) -> dict[str, Any] | None:
    if "$ref" in response:
        response = DOCUMENT["components"]["responses"][response["$ref"].rsplit("/", 1)[1]]
    content = response.get("content", {}).get("application/json")
    return None if content is None else dict(content["schema"])


def _validator(schema: dict[str, Any]) -> OAS31Validator:
    # The document's components beside the schema, so its $refs resolve.
    return OAS31Validator({**schema, "components": DOCUMENT["components"]})


def test_every_documented_example_matches_its_schema() -> None:
    checked = 0
    for name, schema in DOCUMENT["components"]["schemas"].items():
        if "example" in schema:
            _validator({"$ref": f"#/components/schemas/{name}"}).validate(schema["example"])
            checked += 1
    for response in DOCUMENT["components"]["responses"].values():
        content = response["content"]["application/json"]
        _validator(content["schema"]).validate(content["example"])
        checked += 1
    for _, _, operation in OPERATIONS:
        content = operation.get("requestBody", {}).get("content", {}).get("application/json", {})
        if "example" in content:
            _validator(content["schema"]).validate(content["example"])
            checked += 1
        for parameter in operation.get("parameters", []):
            if "example" in parameter:
                _validator(parameter["schema"]).validate(parameter["example"])
                checked += 1
    assert checked > 20


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with receiving() as found:
        yield found


@pytest.fixture
def contract(
    make_app: AppFactory, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> tuple[FlaskClient, dict[str, str]]:
    """An app on a database seeded so the document's example ids exist; an admin's headers."""
    real = targets.system_resolver
    # The examples' subscriber host; there is no DNS for it here.
    monkeypatch.setattr(
        targets,
        "system_resolver",
        lambda host, port: ["127.0.0.1"] if host == "hooks.example.com" else real(host, port),
    )
    app: Flask = make_app(
        app={"max_body_bytes": MAX_BODY}, webhooks={"allowed_hosts": ["127.0.0.1", "hooks.example.com"]}
    )
    runtime: Runtime = app.extensions["corridor"]
    headers = {"Authorization": f"Bearer {make_agent(runtime, Role.ADMIN)}"}
    # One at a time, so that ids are 1, 2, 3 in this order: Ana (email), Bea (SMS), Cai (chat).
    for item in [
        event(Channel.EMAIL, "ana.lima@example.com", external_id="<a0@mail.example.com>", subject="Order 48213"),
        event(Channel.SMS, "+14155550123", external_id="SM8d2f0c0e5b9a4c4f9d0b6f1e2a3c4d5e", text="my order?"),
        event(Channel.CHAT, "visitor-7", session="chat-7", text="order status"),
    ]:
        with runtime.database.write() as session:
            ingest_many(session, [item], source="test")
    with runtime.database.write() as session:
        merge(session, 3, 2, actor_id=None)
        # Snippet 1, for the canned-response examples.
        create_canned(
            session, shortcut="thanks", title="Thanks", text="Thanks, {{customer.first_name}}!", actor_id=None
        )
        create_subscription(
            session, webhook_settings(runtime.settings), url=receiver.url, events=["interaction.created"],
            actor_id=None,
        )  # fmt: skip
    client = app.test_client()
    # An event posted through the API, with a file: what GET /api/events/{id} and
    # /api/attachments/{id} answer for. Their ids depend on the seeding above.
    posted = client.post(
        "/api/events",
        headers=headers,
        json={**EVENT_EXAMPLE, "attachments": [{"filename": "label.pdf", "content_type": "application/pdf",
                                                 "content_base64": "JVBERi0xLjQK"}]},
    )  # fmt: skip
    assert posted.status_code == 202, posted.json
    runtime.journal.drain()
    outcome = client.get(posted.headers["Location"], headers=headers).json
    timeline = client.get(f"/api/customers/{outcome['customer_id']}/timeline", headers=headers).json
    [attachment] = [a for i in timeline["interactions"] for a in i["attachments"]]
    SEEDED_IDS.update(getEventOutcome=posted.json["journal_id"], getAttachment=attachment["id"])
    return client, headers


#: Path ids known only once the database is seeded, by operationId.
SEEDED_IDS: dict[str, int] = {}


def _url(path: str, operation: dict[str, Any], ids: int | None = None) -> tuple[str, dict[str, Any]]:
    if ids is None and operation.get("operationId") in SEEDED_IDS:
        ids = SEEDED_IDS[operation["operationId"]]
    query: dict[str, Any] = {}
    for parameter in operation.get("parameters", []):
        if parameter["in"] == "path":
            assert "example" in parameter, f"path parameter {parameter['name']} has no example"
            path = path.replace("{" + parameter["name"] + "}", str(ids if ids is not None else parameter["example"]))
        elif parameter["in"] == "query" and "example" in parameter:
            query[parameter["name"]] = parameter["example"]
    return path, query


def _check(operation: dict[str, Any], response: Any, what: str) -> None:
    status = str(response.status_code)
    documented = operation["responses"]
    assert status in documented, f"{what}: the server answered {status}, the document has {sorted(documented)}"
    schema = _schema_of(documented[status])
    if schema is not None:
        assert response.is_json, f"{what}: {status} is documented as JSON"
        _validator(schema).validate(response.json)


@pytest.mark.parametrize(
    ("path", "method", "operation"), OPERATIONS, ids=[op["operationId"] for _, _, op in OPERATIONS]
)
def test_the_server_answers_as_documented(
    contract: tuple[FlaskClient, dict[str, str]], path: str, method: str, operation: dict[str, Any]
) -> None:
    client, headers = contract
    secured = operation.get("security") != []
    body = operation.get("requestBody", {}).get("content", {}).get("application/json", {}).get("example")
    if operation.get("requestBody", {}).get("required"):
        assert body is not None, "a required body needs an example"
    url, query = _url(path, operation)

    if secured:
        anonymous = client.open(url, method=method, query_string=query, json=body)
        assert anonymous.status_code == 401
        _check(operation, anonymous, "without a token")
    if "{" in path:
        missing_url, _ = _url(path, operation, ids=999_999)
        missing = client.open(missing_url, method=method, query_string=query, json=body, headers=headers)
        assert missing.status_code == 404, missing.json
        _check(operation, missing, "an unknown id")
    if "requestBody" in operation:
        text = client.open(url, method=method, query_string=query, data="source_id=2", headers=headers,
                           content_type="text/plain")  # fmt: skip
        assert text.status_code == 415, text.json
        _check(operation, text, "a body that is not JSON")
        large = client.open(url, method=method, query_string=query, headers=headers, content_type="application/json",
                            data=json.dumps({"text": "x" * MAX_BODY}))  # fmt: skip
        assert large.status_code == 413, large.json
        _check(operation, large, "a body that is too large")

    response = client.open(url, method=method, query_string=query, json=body, headers=headers)
    expected = EXPECTED_FAILURES.get(operation["operationId"])
    if expected is None:
        assert 200 <= response.status_code < 300, (response.status_code, response.get_json(silent=True))
    else:
        assert response.status_code == expected, response.get_json(silent=True)
    _check(operation, response, "the documented example")


def test_an_unreachable_database_is_a_documented_503_with_retry_after(tmp_path: Path) -> None:
    app = create_app(
        overrides={
            "app": {"instance_dir": str(tmp_path), "secret_key": "test"},
            # Nothing listens on port 1: every connection is refused.
            "database": {"url": "postgresql+psycopg://corridor@127.0.0.1:1/corridor"},
            "journal": {"processor": "worker"},
        },
        environ={},
    )
    client = app.test_client()
    for path, method, token in [("/api/health", "get", None), ("/api/conversations", "get", "cor_x")]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = client.open(path, method=method, headers=headers)
        assert response.status_code == 503, response.get_json(silent=True)
        assert response.headers["Retry-After"] == "5"
        _check(DOCUMENT["paths"][path][method], response, "an unreachable database")
    app.extensions["corridor"].database.dispose()
