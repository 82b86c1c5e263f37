"""Customers as agents and supervisors handle them: lookup, identities, merge and unmerge."""

from __future__ import annotations

from typing import Any

from flask.testing import FlaskClient

from hub.events import Channel, InteractionKind
from hub.ingest import ingest_many
from hub.runtime import Runtime
from tests.hub.events import event


def snapshot(client: FlaskClient, auth: dict[str, str], customer_id: int) -> dict[str, Any]:
    customer = client.get(f"/api/customers/{customer_id}", headers=auth).json
    timeline = client.get(f"/api/customers/{customer_id}/timeline?limit=200", headers=auth).json
    return {
        "id": customer["id"],
        "identities": sorted((i["kind"], i["value"]) for i in customer["identities"]),
        "conversations": sorted(c["id"] for c in customer["conversations"]),
        "interactions": sorted(i["id"] for i in timeline["interactions"]),
    }


def two_customers(runtime: Runtime) -> tuple[int, int]:
    with runtime.database.write() as session:
        results = ingest_many(
            session,
            [
                event(Channel.EMAIL, "ana@example.com", hours=0),
                event(Channel.EMAIL, "ana@example.com", hours=1),
                event(Channel.VOICE, "+14155550100", hours=2, kind=InteractionKind.CALL),
                event(Channel.SMS, "+14155550100", hours=200),
            ],
            source="test",
        )
    return results[0].customer_id or 0, results[2].customer_id or 0


def test_lookup_by_email_phone_and_name(runtime: Runtime, client: FlaskClient, auth: dict[str, str]) -> None:
    ana, _ = two_customers(runtime)
    by_email = client.get("/api/customers?email=ANA@Example.com", headers=auth).json["customers"]
    assert [c["id"] for c in by_email] == [ana]
    by_phone = client.get("/api/customers?phone=(415) 555-0100", headers=auth).json["customers"]
    assert len(by_phone) == 1
    by_name = client.get("/api/customers?name=ana", headers=auth).json["customers"]
    assert [c["id"] for c in by_name] == [ana]
    bad = client.get("/api/customers?phone=not-a-number", headers=auth)
    assert bad.status_code == 400
    assert bad.json["error"]["field"] == "phone"
    assert client.get("/api/customers", headers=auth).status_code == 400


def test_merge_then_unmerge_restores_both_customers_exactly(
    runtime: Runtime, client: FlaskClient, auth: dict[str, str]
) -> None:
    ana, caller = two_customers(runtime)
    before = snapshot(client, auth, ana), snapshot(client, auth, caller)

    merged = client.post(f"/api/customers/{ana}/merge", json={"source_id": caller}, headers=auth)
    assert merged.status_code == 200
    assert merged.json["moved"] == {"identity": 1, "conversation": 2, "interaction": 2}
    combined = snapshot(client, auth, ana)
    assert combined["interactions"] == sorted(before[0]["interactions"] + before[1]["interactions"])
    # The merged customer is a redirect: old links keep working.
    assert client.get(f"/api/customers/{caller}", headers=auth).json["id"] == ana
    # Merging again changes nothing.
    again = client.post(f"/api/customers/{ana}/merge", json={"source_id": caller}, headers=auth)
    assert again.json["id"] == merged.json["id"]

    undone = client.post(f"/api/merges/{merged.json['id']}/undo", headers=auth)
    assert undone.status_code == 200
    assert (snapshot(client, auth, ana), snapshot(client, auth, caller)) == before
    assert client.post(f"/api/merges/{merged.json['id']}/undo", headers=auth).status_code == 200  # idempotent
    assert (snapshot(client, auth, ana), snapshot(client, auth, caller)) == before


def test_merge_and_unmerge_are_audited(runtime: Runtime, client: FlaskClient, auth: dict[str, str]) -> None:
    from sqlalchemy import select

    from hub.models import AuditRecord

    ana, caller = two_customers(runtime)
    merge_id = client.post(f"/api/customers/{ana}/merge", json={"source_id": caller}, headers=auth).json["id"]
    client.post(f"/api/merges/{merge_id}/undo", headers=auth)
    with runtime.database.read() as session:
        actions = session.scalars(select(AuditRecord.action).order_by(AuditRecord.id)).all()
    assert actions[-2:] == ["customer.merge", "customer.unmerge"]


def test_an_identity_of_another_customer_cannot_be_added(
    runtime: Runtime, client: FlaskClient, auth: dict[str, str]
) -> None:
    ana, _ = two_customers(runtime)
    response = client.post(
        f"/api/customers/{ana}/identities", json={"kind": "phone", "value": "+1 415 555 0100"}, headers=auth
    )
    assert response.status_code == 409
    assert "merge" in response.json["error"]["message"]
    invalid = client.post(f"/api/customers/{ana}/identities", json={"kind": "email", "value": "nope"}, headers=auth)
    assert invalid.status_code == 400
    assert invalid.json["error"]["field"] == "value"


def test_removing_an_identity_keeps_the_history(runtime: Runtime, client: FlaskClient, auth: dict[str, str]) -> None:
    _, caller = two_customers(runtime)
    identity = client.get(f"/api/customers/{caller}", headers=auth).json["identities"][0]
    assert client.delete(f"/api/customers/{caller}/identities/{identity['id']}", headers=auth).status_code == 204
    assert client.get(f"/api/customers/{caller}", headers=auth).json["identities"] == []
    assert len(client.get(f"/api/customers/{caller}/timeline", headers=auth).json["interactions"]) == 2


def test_a_number_in_the_customers_own_national_format_is_found_on_a_us_deployment(
    client: FlaskClient, auth: dict[str, str]
) -> None:
    from tests.hub.events import event_json, post_event

    berlin = post_event(client, event_json(channel="sms", **{"from": "+493023125042"}), auth)["customer_id"]
    london = post_event(client, event_json(channel="sms", **{"from": "+447911123456"}), auth)["customer_id"]
    for typed, expected in [
        ("030 23125042", berlin),
        ("030 2312 5042", berlin),
        ("+49 30 23125042", berlin),
        ("07911 123456", london),
    ]:
        found = client.get("/api/customers", query_string={"phone": typed}, headers=auth)
        assert found.status_code == 200, (typed, found.json)
        assert [c["id"] for c in found.json["customers"]] == [expected], typed
    nowhere = client.get("/api/customers", query_string={"phone": "0151 99999999"}, headers=auth)
    assert nowhere.json["customers"] == []
