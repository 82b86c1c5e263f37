"""Managing agents in the console, in a real browser: an admin adds one (the token shown once works), changes
the role, deactivates (the agent's browser and token stop at once), resets a password; no admin can lock
every admin out; an agent changes their own password and stays logged in only where they did."""

from __future__ import annotations

from playwright.sync_api import Browser, Page, expect
from sqlalchemy import select

from hub.models import Agent, Role
from hub.runtime import Runtime
from tests.conftest import make_agent
from tests.hub.console import log_in_page

ADA = ("ada@corridor.test", "ada's long password")


def _row(page: Page, runtime: Runtime, email: str) -> str:
    with runtime.database.read() as session:
        agent_id = session.scalars(select(Agent.id).where(Agent.email == email)).one()
    return f"tr#agent-{agent_id}"


def test_an_admin_adds_promotes_deactivates_and_resets_an_agent(
    runtime: Runtime, served: str, page: Page, browser: Browser
) -> None:
    make_agent(runtime, Role.ADMIN, email=ADA[0], password=ADA[1])
    log_in_page(page, served, *ADA)
    page.click("header.top nav a:has-text('Agents')")
    page.fill("#a-name", "Bo Berg")
    page.fill("#a-email", "Bo@Corridor.test")
    page.fill("#a-password", "bo's first password")
    with page.expect_navigation():
        page.click("section.new-agent button[type=submit]")
    token = page.locator("#new-token").inner_text().strip()
    assert token.startswith("cor_")
    assert page.request.get(served + "/api/me", headers={"Authorization": f"Bearer {token}"}).ok
    bo = _row(page, runtime, "bo@corridor.test")
    expect(page.locator(bo)).to_contain_text("Bo Berg")

    # Adding the same address again says why.
    page.fill("#a-name", "Bo again")
    page.fill("#a-email", "bo@corridor.test")
    with page.expect_navigation():
        page.click("section.new-agent button[type=submit]")
    expect(page.locator(".flash.error")).to_contain_text("exists already")

    page.select_option(f"{bo} select[name=role]", "supervisor")
    with page.expect_navigation():
        page.click(f"{bo} button:has-text('Set')")
    expect(page.locator(".flash.ok")).to_contain_text("Bo Berg is now supervisor")
    bo_page = browser.new_context().new_page()
    log_in_page(bo_page, served, "bo@corridor.test", "bo's first password")
    expect(bo_page.locator("header.top nav a:has-text('Reports')")).to_have_count(1)

    # Deactivated: Bo's open browser and token stop at once.
    with page.expect_navigation():
        page.click(f"{bo} button:has-text('Deactivate')")
    bo_page.goto(served + "/inbox", wait_until="domcontentloaded")
    assert "/login" in bo_page.url
    assert page.request.get(served + "/api/me", headers={"Authorization": f"Bearer {token}"}).status == 401

    # The only admin cannot lock everyone out.
    ada = _row(page, runtime, ADA[0])
    with page.expect_navigation():
        page.click(f"{ada} button:has-text('Deactivate')")
    expect(page.locator(".flash.error")).to_contain_text("only active admin")
    page.select_option(f"{ada} select[name=role]", "agent")
    with page.expect_navigation():
        page.click(f"{ada} button:has-text('Set')")
    expect(page.locator(".flash.error")).to_contain_text("only active admin")

    with page.expect_navigation():
        page.click(f"{bo} button:has-text('Reactivate')")
    page.click(f"{bo} details.reset summary")
    page.fill(f"{bo} input[name=password]", "bo's second password")
    with page.expect_navigation():
        page.click(f"{bo} button:has-text('Set password')")
    expect(page.locator(".flash.ok")).to_contain_text("New password set for Bo Berg")
    log_in_page(bo_page, served, "bo@corridor.test", "bo's first password")
    expect(bo_page.locator("[role=alert]")).to_contain_text("wrong password")
    log_in_page(bo_page, served, "bo@corridor.test", "bo's second password")
    assert bo_page.url.endswith("/inbox")
    with runtime.database.read() as session:
        roles = list(session.scalars(select(Agent.role).where(Agent.email == "bo@corridor.test")))
    assert roles == ["supervisor"]  # one Bo, and still a supervisor after the reset


def test_an_agent_changes_their_own_password(runtime: Runtime, served: str, page: Page, browser: Browser) -> None:
    make_agent(runtime, Role.AGENT, email="cy@corridor.test", password="cy's old password")
    log_in_page(page, served, "cy@corridor.test", "cy's old password")
    elsewhere = browser.new_context().new_page()
    log_in_page(elsewhere, served, "cy@corridor.test", "cy's old password")
    page.click("header.top a.agent-name")
    page.fill("#current", "not it")
    page.fill("#new-password", "cy's new password")
    page.fill("#repeat", "cy's new password")
    with page.expect_navigation():
        page.click("section.account button[type=submit]")
    expect(page.locator(".flash.error")).to_contain_text("current password is wrong")
    page.fill("#current", "cy's old password")
    page.fill("#new-password", "cy's new password")
    page.fill("#repeat", "cy's new passwort")
    with page.expect_navigation():
        page.click("section.account button[type=submit]")
    expect(page.locator(".flash.error")).to_contain_text("differ")
    page.fill("#current", "cy's old password")
    page.fill("#new-password", "cy's new password")
    page.fill("#repeat", "cy's new password")
    with page.expect_navigation():
        page.click("section.account button[type=submit]")
    expect(page.locator(".flash.ok")).to_contain_text("Password changed")
    page.goto(served + "/inbox", wait_until="domcontentloaded")
    assert page.url.endswith("/inbox")  # this browser stays logged in
    elsewhere.goto(served + "/inbox", wait_until="domcontentloaded")
    assert "/login" in elsewhere.url  # the other one is out
    # Agents do not manage agents.
    response = page.goto(served + "/admin/agents", wait_until="domcontentloaded")
    assert response is not None
    assert response.status == 403


def test_an_admins_pages_fit_a_390_px_phone(runtime: Runtime, served: str, browser: Browser) -> None:
    make_agent(runtime, Role.ADMIN, email=ADA[0], password=ADA[1])
    phone = browser.new_context(viewport={"width": 390, "height": 844}).new_page()
    log_in_page(phone, served, *ADA)
    for path in ("/inbox", "/search?q=parcel", "/admin/agents", "/admin/webhooks", "/canned", "/account"):
        phone.goto(served + path, wait_until="domcontentloaded")
        width = phone.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"{path} scrolls sideways: {width} px wide"
