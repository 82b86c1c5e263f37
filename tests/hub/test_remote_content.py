"""Email HTML never loads anything remote on its own; inline images come from Corridor, to agents only."""

from __future__ import annotations

import lxml.html
from flask.testing import FlaskClient
from sqlalchemy import update

from hub.events import Attachment
from hub.ingest import ingest
from hub.models import Interaction
from hub.runtime import Runtime
from hub.sanitise import sanitise_html
from tests.hub.events import event

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
TRACKED = """
<p>Your order has shipped!</p>
<img src="https://track.example/open.gif?recipient=ana.lima%40example.com" width="1" height="1">
<img src="//track.example/protocol-relative.gif"><img src=" HTTPS://track.example/spaced.gif">
<img srcset="https://track.example/1x.png 1x, https://track.example/2x.png 2x">
<div style="background-image:url(https://track.example/bg.png)">styled</div>
<table background="https://track.example/table.png"><tr><td>cell</td></tr></table>
<style>@import url(https://track.example/import.css); p { background: url(https://track.example/p.png) }</style>
<link rel="stylesheet" href="https://track.example/style.css">
<video poster="https://track.example/poster.png"></video>
<img src="cid:logo@shop.example" alt="Shop logo">
<a href="https://shop.example/orders/48213">your order</a>
"""


def fetching(html: str) -> list[str]:
    """Every URL a browser would fetch by itself when showing ``html`` (links are not fetched)."""
    tree = lxml.html.fragment_fromstring(html, create_parent="div")
    found = []
    for element in tree.iter():
        for name, value in element.attrib.items():
            if name == "href" and element.tag == "a":
                continue
            if "track.example" in value or (name == "src" and not value.startswith("/api/attachments/")):
                found.append(f"<{element.tag} {name}={value!r}>")
    found += [f"<{e.tag}>" for e in tree.iter("style", "link")]
    return found


def stored(runtime: Runtime, html: str) -> int:
    logo = Attachment(
        filename="logo.png", content_type="image/png", size=len(PNG), content=PNG, content_id="logo@shop.example",
        inline=True,
    )  # fmt: skip
    with runtime.database.write() as session:
        result = ingest(session, event(html=html, attachments=(logo,)), source="test")
    assert result.interaction_id is not None, result.error
    return result.interaction_id


def shown(client: FlaskClient, auth: dict[str, str], interaction_id: int) -> dict[str, object]:
    answer = client.get(f"/api/conversations/{_conversation(client, auth, interaction_id)}", headers=auth).json
    (found,) = [i for i in answer["interactions"] if i["id"] == interaction_id]
    result: dict[str, object] = found
    return result


def _conversation(client: FlaskClient, auth: dict[str, str], interaction_id: int) -> int:
    customers = client.get("/api/customers?email=ana.lima@example.com", headers=auth).json["customers"]
    timeline = client.get(f"/api/customers/{customers[0]['id']}/timeline", headers=auth).json["interactions"]
    (found,) = [i for i in timeline if i["id"] == interaction_id]
    conversation: int = found["conversation_id"]
    return conversation


def test_a_tracking_pixel_and_every_other_remote_source_is_gone_and_the_inline_logo_comes_from_corridor(
    client: FlaskClient, runtime: Runtime, auth: dict[str, str]
) -> None:
    interaction = shown(client, auth, stored(runtime, TRACKED))
    html = str(interaction["html"])

    assert fetching(html) == []
    assert "Your order has shipped!" in html
    assert 'href="https://shop.example/orders/48213"' in html  # links stay: following one is a choice
    [logo] = interaction["attachments"]  # type: ignore[misc]
    assert f'src="/api/attachments/{logo["id"]}"' in html
    served = client.get(f"/api/attachments/{logo['id']}", headers=auth)
    assert served.status_code == 200
    assert served.data == PNG
    assert served.headers["Content-Type"] == "image/png"
    assert served.headers["X-Content-Type-Options"] == "nosniff"
    # Only to someone logged in.
    assert client.get(f"/api/attachments/{logo['id']}").status_code == 401
    assert client.get("/api/attachments/999999", headers=auth).status_code == 404


def test_html_stored_before_the_rule_is_returned_without_remote_sources_too(
    client: FlaskClient, runtime: Runtime, auth: dict[str, str]
) -> None:
    interaction_id = stored(runtime, "<p>old</p>")
    with runtime.database.write() as session:
        session.execute(
            update(Interaction)
            .where(Interaction.id == interaction_id)
            .values(html='<p>old</p><img src="https://track.example/old.gif"><img src="cid:logo@shop.example">')
        )
    html = str(shown(client, auth, interaction_id)["html"])
    assert fetching(html) == []
    assert "/api/attachments/" in html


def test_the_sanitiser_keeps_cid_images_and_drops_every_remote_source() -> None:
    cleaned = sanitise_html(TRACKED)
    assert "track.example" not in cleaned
    assert 'src="cid:logo@shop.example"' in cleaned
    assert sanitise_html(cleaned) is cleaned
