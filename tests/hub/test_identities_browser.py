"""Addresses and merges in the console, in a real browser: a supervisor links a second address, unlinks it,
finds that a phone number is another customer's, previews the merge, merges, and undoes it."""

from __future__ import annotations

from playwright.sync_api import Page, expect
from sqlalchemy import select

from hub.events import Channel
from hub.models import Customer, Identity, Role
from hub.runtime import Runtime
from tests.conftest import make_agent
from tests.hub.console import log_in_page
from tests.hub.events import event, put

PASSWORD = "a long enough password"


def test_a_supervisor_links_previews_a_merge_merges_and_undoes_it(runtime: Runtime, served: str, page: Page) -> None:
    ana, texter = put(
        runtime,
        event(Channel.EMAIL, "ana@example.com", name="Ana Lima", hours=0, subject="Order 48213"),
        event(Channel.SMS, "+14155550142", hours=1, text="It's Ana, any news on 48213?"),
    )
    make_agent(runtime, Role.SUPERVISOR, email="sam@corridor.test", password=PASSWORD)
    log_in_page(page, served, "sam@corridor.test", PASSWORD)
    page.goto(f"{served}/customers/{ana.customer_id}", wait_until="domcontentloaded")

    page.select_option("#link-kind", "email")
    page.fill("#link-value", "Ana.Work@Example.com")
    with page.expect_navigation():
        page.click(".link-address button")
    expect(page.locator(".flash.ok")).to_contain_text("Linked")
    expect(page.locator(".address-list")).to_contain_text("ana.work@example.com")
    with page.expect_navigation():
        page.click("button[aria-label='Unlink ana.work@example.com']")
    expect(page.locator(".address-list")).not_to_contain_text("ana.work@example.com")

    # Her phone is another customer's: linking says so and offers the merge, previewed.
    page.select_option("#link-kind", "phone")
    page.fill("#link-value", "(415) 555-0142")
    with page.expect_navigation():
        page.click(".link-address button")
    expect(page.locator(".flash.error")).to_contain_text(f"customer {texter.customer_id}'s")
    assert "/merge?source=" in page.url
    expect(page.locator(".moves")).to_contain_text("1 addresses, 1 conversations and 1 interactions")
    with page.expect_navigation():
        page.click("button:has-text('Merge them')")
    expect(page.locator(".flash.ok")).to_contain_text(f"Merged customer {texter.customer_id}")
    expect(page.locator("#timeline")).to_contain_text("any news on 48213")
    expect(page.locator(".address-list")).to_contain_text("+14155550142")

    with page.expect_navigation():
        page.click("button:has-text('Undo the merge')")
    expect(page.locator(".flash.ok")).to_contain_text("Merge undone")
    with runtime.database.read() as session:
        owner = session.scalars(select(Identity.customer_id).where(Identity.value == "+14155550142")).one()
        merged = session.get(Customer, texter.customer_id)
        assert merged is not None
        assert (owner, merged.merged_into_id) == (texter.customer_id, None)


def test_agents_link_addresses_but_do_not_merge(runtime: Runtime, served: str, page: Page) -> None:
    [ana] = put(runtime, event(Channel.EMAIL, "ana@example.com", name="Ana Lima"))
    make_agent(runtime, Role.AGENT, email="priya@corridor.test", password=PASSWORD)
    log_in_page(page, served, "priya@corridor.test", PASSWORD)
    page.goto(f"{served}/customers/{ana.customer_id}", wait_until="domcontentloaded")
    expect(page.locator("#link-value")).to_be_visible()
    expect(page.locator("a:has-text('Merge another customer')")).to_have_count(0)
    response = page.goto(f"{served}/customers/{ana.customer_id}/merge", wait_until="domcontentloaded")
    assert response is not None
    assert response.status == 403
