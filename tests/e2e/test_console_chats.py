"""The console's chats in headless Chromium: an inbound message unread, read, answered urgently."""

from typing import Any

import pytest
from playwright.async_api import Browser, expect

from tests.e2e.test_console import _sign_in, browser, shot
from tests.support.gateway import Gateway, eventually
from tests.support.receiver import Receiver, event_named

pytestmark = pytest.mark.e2e

__all__ = ["browser"]  # the Chromium fixture of the console tests, shared

ANA = "5491155550101"
# Delivered quickly, read never within the test: the view stops at "delivered".
RECEIPTS = {"deliveredAfterMs": 300, "readAfterMs": 600_000}


async def _chat(gateway: Gateway, key: str, name: str) -> dict[str, Any]:
    status, body = await gateway.call("GET", f"/chats?instanceName={name}", key=key)
    assert 200 == status, body
    [chat] = body["chats"]
    return dict(chat)


async def test_answer_an_inbound_message_from_the_chat_view(
    gateway: Gateway, receiver: Receiver, browser: Browser
) -> None:
    _, key, name = await gateway.tenant_with_instance(
        receiver.url(), fields={"providerConfig": RECEIPTS}
    )
    status, _ = await gateway.call(
        "POST", f"/sandbox/{name}/inbound", key=key, json={"from": ANA, "text": "¿Tienen stock?"}
    )
    assert 202 == status
    await receiver.wait_for(event_named("message.received", **{"from": ANA}))
    await eventually(lambda: _unread_is(gateway, key, name, 1))

    page = await browser.new_page(viewport={"width": 390, "height": 844})  # a phone screen
    await _sign_in(page, gateway, key)
    await page.click("nav >> text=Chats")
    row = page.locator(f'#chats li[data-contact="{ANA}"]')
    await expect(row.locator(".badge")).to_have_text("1")
    await expect(row.locator(".last")).to_have_text("¿Tienen stock?")
    await shot(page, "20-chats")

    await row.locator("a").click()
    await expect(page.locator("#thread .bubble.inbound .text")).to_have_text(["¿Tienen stock?"])
    await eventually(lambda: _unread_is(gateway, key, name, 0))
    assert (await _chat(gateway, key, name))["readAt"] is not None

    await page.locator("#reply textarea[name=text]").fill("Sí, ¿cuántos necesitás?")
    await page.locator("#reply button").click()
    outbound = page.locator("#thread .bubble.outbound")
    await expect(outbound).to_have_count(1)
    message_id = await outbound.get_attribute("data-message")
    status, sent = await gateway.call("GET", f"/message/{message_id}", key=key)
    assert (200, "urgent", ANA) == (status, sent["lane"], sent["to"])
    await expect(outbound.locator(".tick")).to_have_attribute(
        "data-status", "delivered", timeout=20000
    )
    await shot(page, "21-chat-delivered")
    async with gateway.mongo() as client:
        phone = await client.lanegate_test.sandbox_outbox.find_one({"_id": message_id})
    assert phone is not None
    assert ("Sí, ¿cuántos necesitás?", "urgent") == (phone["text"], phone["lane"])

    # The thread reads oldest at the top, like a messenger; what comes in while it is open
    # shows up and is read there.
    await _inbound(gateway, key, name, ANA, "Tres, gracias")
    await expect(page.locator("#thread .bubble .text")).to_have_text(
        ["¿Tienen stock?", "Sí, ¿cuántos necesitás?", "Tres, gracias"]
    )
    await eventually(lambda: _unread_is(gateway, key, name, 0))


async def _unread_is(gateway: Gateway, key: str, name: str, count: int) -> bool:
    status, body = await gateway.call("GET", f"/chats?instanceName={name}", key=key)
    return 200 == status and [count] == [c["unread"] for c in body["chats"]]


async def test_the_chat_view_shows_the_api_error_for_a_bad_number(
    gateway: Gateway, receiver: Receiver, browser: Browser
) -> None:
    _, key, name = await gateway.tenant_with_instance(receiver.url(), connect=False)
    page = await browser.new_page(viewport={"width": 1280, "height": 900})
    await _sign_in(page, gateway, key)
    await page.goto(f"{gateway.api}/console#/chat/{name}/not-a-number")
    await expect(page.locator("#view .errors")).to_contain_text("phone")
    await expect(page.locator("#reply")).to_have_count(1)


async def _inbound(gateway: Gateway, key: str, name: str, sender: str, text: str) -> None:
    status, body = await gateway.call(
        "POST", f"/sandbox/{name}/inbound", key=key, json={"from": sender, "text": text}
    )
    assert 202 == status, body


async def _kept(gateway: Gateway, key: str, query: str, count: int) -> bool:
    status, body = await gateway.call("GET", f"/chats?{query}&limit=100", key=key)
    return 200 == status and count == sum(c["unread"] for c in body["chats"])


async def test_chats_page_filter_by_instance_and_load_older_messages(
    gateway: Gateway, receiver: Receiver, browser: Browser
) -> None:
    tenant_id, key, name = await gateway.tenant_with_instance(receiver.url())
    other = await gateway.instance(tenant_id, key, receiver.url())
    # 26 people write once (one more than a page of chats); the first of them 31 times.
    people = [f"54911556{n:05d}" for n in range(26)]
    for n, person in enumerate(people):
        await _inbound(gateway, key, name, person, f"hola {n}")
    for n in range(1, 31):
        await _inbound(gateway, key, name, people[0], f"otra {n}")
    await _inbound(gateway, key, other, ANA, "por el otro número")
    await eventually(lambda: _kept(gateway, key, f"instanceName={name}", 56), timeout=60)
    await eventually(lambda: _kept(gateway, key, f"instanceName={other}", 1))

    page = await browser.new_page(viewport={"width": 1280, "height": 900})
    await _sign_in(page, gateway, key)
    await page.click("nav >> text=Chats")
    await expect(page.locator("#chats li")).to_have_count(25)
    await page.click("#more-chats")
    await expect(page.locator("#chats li")).to_have_count(27)
    await expect(page.locator("#more-chats")).to_have_count(0)

    await page.locator("#chat-filters select[name=instanceName]").select_option(other)
    await page.click("#chat-filters button")
    await expect(page.locator("#chats li")).to_have_count(1)
    await expect(page.locator(f'#chats li[data-contact="{ANA}"]')).to_have_count(1)

    # The thread is the conversation oldest first (the API's order, reversed), a page at a time.
    _, conversation = await gateway.call(
        "GET", f"/contacts/{people[0]}/messages?instanceName={name}&limit=100", key=key
    )
    oldest_first = [m["text"] for m in reversed(conversation["messages"])]
    await page.goto(f"{gateway.api}/console#/chat/{name}/{people[0]}")
    texts = page.locator("#thread .bubble .text")
    await expect(texts).to_have_text(oldest_first[1:])
    await page.click("#older-messages")
    await expect(texts).to_have_text(oldest_first)
    await expect(page.locator("#older-messages")).to_have_count(0)
    await shot(page, "22-chat-older")
