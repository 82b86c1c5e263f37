"""The timeline agents scroll and the search supervisors run."""

from __future__ import annotations

from flask.testing import FlaskClient

from hub.events import Channel, Direction, InteractionKind
from hub.runtime import Runtime
from tests.hub.events import event, put


def test_timeline_pages_are_stable_while_new_interactions_arrive(
    runtime: Runtime, client: FlaskClient, auth: dict[str, str]
) -> None:
    results = put(runtime, *[event(Channel.SMS, "+14155550100", hours=h, text=f"message {h}") for h in range(25)])
    customer = results[0].customer_id
    seen: list[int] = []
    cursor = None
    arrivals = iter(range(100, 110))
    while True:
        url = f"/api/customers/{customer}/timeline?limit=10" + (f"&cursor={cursor}" if cursor else "")
        page = client.get(url, headers=auth).json
        seen.extend(i["id"] for i in page["interactions"])
        # Newer messages keep arriving while the agent scrolls back.
        put(runtime, event(Channel.SMS, "+14155550100", hours=next(arrivals)))
        cursor = page["next_cursor"]
        if not cursor:
            break
    original = [r.interaction_id for r in reversed(results)]
    assert seen == original  # every original once, in order, nothing skipped or repeated


def test_timeline_rejects_a_forged_cursor(runtime: Runtime, client: FlaskClient, auth: dict[str, str]) -> None:
    [result] = put(runtime, event(Channel.SMS, "+14155550100"))
    response = client.get(f"/api/customers/{result.customer_id}/timeline?cursor=bm9wZQ", headers=auth)
    assert response.status_code == 400
    assert response.json["error"]["field"] == "cursor"


def test_search_filters_highlights_and_escapes(runtime: Runtime, client: FlaskClient, auth: dict[str, str]) -> None:
    put(
        runtime,
        event(Channel.EMAIL, "ana@example.com", hours=0, subject="Refund", text="Please refund <b>order</b> 48213"),
        event(Channel.VOICE, "+14155550100", hours=1, kind=InteractionKind.CALL, text="Caller asked about refund"),
        event(Channel.SMS, "+14155550100", hours=2, direction=Direction.OUTBOUND, text="Your refund is on its way"),
        event(Channel.EMAIL, "bo@example.com", hours=3, text="Nothing to see"),
    )
    everything = client.get("/api/search?q=refund", headers=auth).json["hits"]
    assert [h["channel"] for h in everything] == ["sms", "voice", "email"]  # newest first
    email_hit = everything[2]
    assert "<mark>" in email_hit["snippet"].lower()
    assert "<b>" not in email_hit["snippet"]  # the customer's text is escaped, only <mark> is ours
    calls = client.get("/api/search?q=refund&channel=voice", headers=auth).json["hits"]
    assert [h["channel"] for h in calls] == ["voice"]
    outbound = client.get("/api/search?q=refund&direction=outbound", headers=auth).json["hits"]
    assert [h["channel"] for h in outbound] == ["sms"]
    ranged = client.get(
        "/api/search?q=refund&since=2026-11-02T09:30:00Z&until=2026-11-02T10:30:00Z", headers=auth
    ).json["hits"]
    assert [h["channel"] for h in ranged] == ["voice"]
    by_customer = client.get(f"/api/search?q=refund&customer={everything[0]['customer_id']}", headers=auth).json
    assert {h["channel"] for h in by_customer["hits"]} == {"sms", "voice"}
    assert client.get('/api/search?q="48213 refund"', headers=auth).json["hits"] == []  # word order matters
    phrase = client.get('/api/search?q="asked about refund"', headers=auth).json["hits"]
    assert [h["channel"] for h in phrase] == ["voice"]
    prefix = client.get("/api/search?q=48213&order=relevance", headers=auth).json["hits"]
    assert [h["channel"] for h in prefix] == ["email"]


def test_search_paginates_with_a_cursor(runtime: Runtime, client: FlaskClient, auth: dict[str, str]) -> None:
    put(runtime, *[event(Channel.SMS, "+14155550100", hours=h, text=f"parcel update {h}") for h in range(7)])
    first = client.get("/api/search?q=parcel&limit=5", headers=auth).json
    second = client.get(f"/api/search?q=parcel&limit=5&cursor={first['next_cursor']}", headers=auth).json
    assert len(first["hits"]) == 5
    assert len(second["hits"]) == 2
    assert second["next_cursor"] is None
    ids = [h["interaction_id"] for h in first["hits"] + second["hits"]]
    assert len(set(ids)) == 7


def test_search_input_errors_name_the_field(client: FlaskClient, auth: dict[str, str]) -> None:
    for query, field in [
        ("", "q"),
        ("q=!!!", "q"),
        ("q=x&channel=fax", "channel"),
        ("q=x&since=last+week", "since"),
        ("q=x&limit=0", "limit"),
        ("q=x&order=random", "order"),
    ]:
        response = client.get(f"/api/search?{query}", headers=auth)
        assert response.status_code == 400, query
        assert response.json["error"]["field"] == field, query


def test_a_transcript_appended_later_is_searchable(runtime: Runtime, client: FlaskClient, auth: dict[str, str]) -> None:
    from hub.events import InteractionUpdate
    from tests.hub.events import at

    put(runtime, event(Channel.VOICE, "+14155550100", external_id="CA7", kind=InteractionKind.CALL))
    put(
        runtime,
        InteractionUpdate(
            channel=Channel.VOICE, external_id="CA7", update_id="TR7", occurred_at=at(1),
            text_append="Hi, this is about the broken kettle, please call back", kind=InteractionKind.VOICEMAIL,
        ),
    )  # fmt: skip
    hits = client.get("/api/search?q=kettle", headers=auth).json["hits"]
    assert len(hits) == 1
    assert hits[0]["channel"] == "voice"
