"""The search page in a real browser, on the demo data, as a supervisor and as an agent.

What a supervisor does with it: finds order 48213 and Maria Keller's number
as an agent would paste it, narrows by a facet, exports every match (and the
export is in the audit trail), saves the search and runs it again, pages
deeper, and opens a hit at the interaction it found.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import phonenumbers
from playwright.sync_api import Page, expect
from sqlalchemy import select

from hub.demo import DEMO_AGENT_EMAIL, DEMO_PASSWORD, DEMO_SUPERVISOR_EMAIL, SHOWCASE_EMAIL, SHOWCASE_ORDER, load_demo
from hub.events import IdentityKind
from hub.models import AuditRecord, Customer, Identity, Interaction
from hub.runtime import Runtime
from tests.hub.console import log_in_page

SCREENSHOT = Path("/tmp/corridor-search.png")


def _search(page: Page, text: str) -> None:
    page.fill("#q", text)
    with page.expect_navigation():
        page.press("#q", "Enter")


def _hit_ids(page: Page) -> list[int]:
    return [int(i) for i in page.locator(".hit").evaluate_all("els => els.map(e => e.dataset.interaction)")]


def _total(page: Page) -> int:
    return int(page.locator(".results-head .count strong").inner_text().replace(",", ""))


def test_a_supervisor_searches_narrows_exports_saves_and_opens_a_hit(runtime: Runtime, served: str, page: Page) -> None:
    load_demo(runtime, echo=lambda _line: None)
    with runtime.database.read() as db:
        maria = db.scalars(
            select(Identity.customer_id).where(Identity.kind == IdentityKind.EMAIL, Identity.value == SHOWCASE_EMAIL)
        ).one()
        number = db.scalars(
            select(Identity.value).where(Identity.customer_id == maria, Identity.kind == IdentityKind.PHONE)
        ).one()
        mentions = set(db.scalars(select(Interaction.id).where(Interaction.text.contains(SHOWCASE_ORDER))))
        marias_calls_and_texts = set(
            db.scalars(
                select(Interaction.id).where(
                    Interaction.customer_id == maria, Interaction.channel.in_(("voice", "sms"))
                )
            )
        )

    log_in_page(page, served, DEMO_SUPERVISOR_EMAIL, DEMO_PASSWORD, "/inbox")
    page.click("header.top nav a:has-text('Search')")
    expect(page.locator("h1")).to_have_text("Search")
    _search(page, SHOWCASE_ORDER)
    # Every interaction that mentions the order, each with the number highlighted.
    assert set(_hit_ids(page)) >= mentions
    assert _total(page) == len(_hit_ids(page))
    assert page.locator(".hit .snippet mark", has_text=SHOWCASE_ORDER).count() >= len(mentions)
    channel_counts = page.locator("section.facet[aria-label=Channel] .n").all_inner_texts()
    assert sum(int(n) for n in channel_counts) == _total(page)
    page.screenshot(path=str(SCREENSHOT), full_page=True)

    # A facet narrows, and its chip widens again.
    email = page.locator("section.facet[aria-label=Channel] a", has_text="Email")
    expected = int(email.locator(".n").inner_text())
    with page.expect_navigation():
        email.click()
    assert {b.lower() for b in page.locator(".hit .badge").all_inner_texts()} == {"email"}
    assert len(_hit_ids(page)) == _total(page) == expected
    with page.expect_navigation():
        page.click(".chips .chip")
    assert _total(page) == sum(int(n) for n in channel_counts)

    # Maria's number as an agent copies it from a signature: her calls and texts.
    typed = phonenumbers.format_number(phonenumbers.parse(number), phonenumbers.PhoneNumberFormat.NATIONAL)
    assert typed != number
    _search(page, typed)
    assert set(_hit_ids(page)) == marias_calls_and_texts
    assert set(page.locator(".hit .who").all_inner_texts()) == {"Maria Keller"}

    # The export holds every match, and the audit trail says who took it.
    _search(page, SHOWCASE_ORDER)
    with page.expect_download() as download:
        page.click("a.export")
    rows = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text(encoding="utf-8"))))
    assert sorted(int(r["interaction_id"]) for r in rows) == sorted(_hit_ids(page))
    with runtime.database.read() as db:
        record = db.scalars(select(AuditRecord).where(AuditRecord.action == "search.export")).one()
        assert record.details["q"] == SHOWCASE_ORDER
        assert record.details["rows"] == len(rows)
        assert record.details["complete"] is True

    # Saved, listed, run again with one click.
    page.fill("#save-name", "Order 48213")
    with page.expect_navigation():
        page.click("form.save button")
    expect(page.locator(".flash")).to_contain_text("Search saved")
    _search(page, "refund")
    with page.expect_navigation():
        page.click(".facet.saved a:has-text('Order 48213')")
    assert page.locator("#q").input_value() == SHOWCASE_ORDER
    assert set(_hit_ids(page)) >= mentions

    # Deeper pages follow on without repeating a hit.
    _search(page, "order")
    first = _hit_ids(page)
    assert len(first) == 25
    assert _total(page) > 25
    with page.expect_navigation():
        page.click("a:has-text('More results')")
    second = _hit_ids(page)
    assert second
    assert not set(first) & set(second)

    # A hit opens its conversation at the interaction it found.
    target = second[-1]
    with page.expect_navigation():
        page.locator(f".hit[data-interaction='{target}'] a.hit-body").click()
    assert page.url.endswith(f"#interaction-{target}")
    expect(page.locator(f"#interaction-{target}")).to_be_in_viewport()


def test_an_agent_searches_but_cannot_export(runtime: Runtime, served: str, page: Page) -> None:
    load_demo(runtime, echo=lambda _line: None)
    log_in_page(page, served, DEMO_AGENT_EMAIL, DEMO_PASSWORD, "/search")
    _search(page, SHOWCASE_EMAIL.upper())  # an address, in any case
    assert _total(page) > 0
    with runtime.database.read() as db:
        maria = db.scalars(select(Customer.id).where(Customer.display_name == "Maria Keller")).one()
    assert {int(h) for h in page.locator(".hit .who").evaluate_all("els => els.map(e => e.href.split('/').pop())")} == {
        maria
    }
    expect(page.locator("a.export")).to_have_count(0)
    answer = page.request.get(served + f"/api/search/export?q={SHOWCASE_ORDER}")
    assert answer.status == 403
    # Nothing to search for is said on the page, not a 500.
    page.goto(served + "/search?q=%22%22", wait_until="domcontentloaded")
    expect(page.locator(".flash.error")).to_contain_text("nothing to search for")
