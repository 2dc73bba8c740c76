"""The web console in headless Chromium: sign in, connect a number by QR, send, watch it go."""

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from tests.e2e.test_cloud_api import CONTACT, contact_writes
from tests.simulators.meta import MetaSimulator
from tests.support.cloud import cloud_config, create_cloud
from tests.support.gateway import Gateway
from tests.support.receiver import Receiver, event_named

pytestmark = pytest.mark.e2e

SHOTS = Path("var/console-screenshots")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Chromium's own background traffic has nowhere to go on these machines.
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield launched
        await launched.close()


async def shot(page: Page, name: str) -> None:
    # Playwright creates the folder; the files are test artifacts, never committed.
    await page.screenshot(path=SHOTS / f"{name}.png", full_page=True)


async def test_connect_by_qr_and_send_a_message(
    gateway: Gateway, receiver: Receiver, browser: Browser
) -> None:
    tenant_id, key = await gateway.tenant()
    name = f"{tenant_id}__support__console"
    page = await browser.new_page(viewport={"width": 390, "height": 844})  # a phone screen
    await page.goto(gateway.api + "/console")

    await page.fill("input[name=apikey]", key)
    await page.click("#sign-in button")
    await expect(page.locator("h1")).to_have_text("Instances")
    assert key not in page.url
    await shot(page, "01-instances")

    form = page.locator("#create-instance")
    await form.locator("input[name=instanceName]").fill(name)
    await form.locator("input[name=webhookUrl]").fill(receiver.url())
    await form.locator("input[name=webhookSecret]").fill("short")
    await form.locator("button").click()
    await expect(form.locator(".errors")).to_contain_text("webhookSecret")
    await form.locator("input[name=webhookSecret]").fill("s3cret-s3cret-s3cret")
    await form.locator("button").click()

    await expect(page.locator("h1")).to_have_text(name)
    qr = page.locator("#qr-image")
    await expect(qr).to_be_visible()
    assert (await qr.get_attribute("src") or "").startswith("data:image/png;base64,")
    assert 0 < await qr.evaluate("img => img.naturalWidth")
    await expect(page.locator("#state")).to_have_text("close")
    await shot(page, "02-instance-qr")

    await page.click("#simulate-scan")
    await expect(page.locator("#state")).to_have_text("open", timeout=15000)
    await expect(qr).to_have_count(0)
    await shot(page, "03-instance-open")

    await page.click("nav >> text=Send test")
    send = page.locator("#send-test")
    await send.locator("select[name=instanceName]").select_option(name)
    await send.locator("input[name=to]").fill("5491112345678")
    await send.locator("textarea[name=text]").fill("{Hello|Hi} from the console")
    await send.locator("select[name=lane]").select_option("urgent")
    await send.locator("button").click()
    await shot(page, "04-send")
    await page.click("#sent-link")
    await expect(page.locator("#message-status")).to_have_text("sent", timeout=20000)
    await shot(page, "05-message")

    await page.click("nav >> text=Messages")
    await expect(page.locator("#messages tbody tr")).to_have_count(1)
    await expect(page.locator("#messages .status")).to_have_text("sent")
    await shot(page, "06-messages")


async def test_console_pages_forbid_inline_scripts_and_other_origins(gateway: Gateway) -> None:
    status, _ = await gateway.call("GET", "/console/static/../main.py")
    assert 404 == status
    async with aiohttp.ClientSession() as http, http.get(gateway.api + "/console") as response:
        policy = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "default-src 'self'" in policy


async def _sign_in(page: Page, gateway: Gateway, key: str) -> None:
    await page.goto(gateway.api + "/console")
    await page.fill("input[name=apikey]", key)
    await page.click("#sign-in button")
    await expect(page.locator("h1")).to_have_text("Instances")


async def test_approve_a_held_message_and_replay_a_dead_webhook(
    gateway: Gateway, browser: Browser
) -> None:
    failing = True
    hook = Receiver(answer=lambda _: 500 if failing else 204).start()
    try:
        tenant_id, key = await gateway.tenant()
        name = await gateway.instance(tenant_id, key, hook.url())  # its connected event fails
        page = await browser.new_page(viewport={"width": 1280, "height": 900})
        await _sign_in(page, gateway, key)
        await expect(page.locator(f'tr[data-instance="{name}"] .caps')).to_contain_text("normal 0/")

        await page.click("nav >> text=Send test")
        send = page.locator("#send-test")
        await send.locator("select[name=instanceName]").select_option(name)
        await send.locator("input[name=to]").fill("5491112345678")
        await send.locator("textarea[name=text]").fill("needs a yes")
        await send.locator("select[name=lane]").select_option("urgent")
        await send.locator("input[name=requiresApproval]").check()
        await send.locator("button").click()
        await page.click("#sent-link")
        await expect(page.locator("#message-status")).to_have_text("pending_approval")
        await shot(page, "07-message-approval")
        await page.click("#approve-message")
        await expect(page.locator("#message-status")).to_have_text("sent", timeout=20000)

        await page.click("nav >> text=Webhooks")
        await page.locator("#delivery-filters select[name=status]").select_option("dead")
        await page.click("#delivery-filters button")
        dead = page.locator("#deliveries tbody tr", has_text="instance.connected").filter(
            has=page.locator(".status.dead")
        )
        await expect(dead).to_have_count(1, timeout=20000)
        await shot(page, "08-webhooks-dead")
        await dead.locator("a").click()
        await expect(page.locator("#delivery-status")).to_have_text("dead")
        failing = False
        await page.click("#delivery button[data-replay]")
        await expect(page.locator("#delivery-status")).to_have_text("delivered", timeout=20000)
        await shot(page, "09-delivery-replayed")
        assert 1 <= len(hook.matching(event_named("instance.connected")))
    finally:
        hook.stop()


async def test_a_waiting_message_says_why_and_the_number_pauses_and_resumes(
    gateway: Gateway, receiver: Receiver, browser: Browser
) -> None:
    tenant_id, key = await gateway.tenant()
    name = await gateway.instance(tenant_id, key, receiver.url(), connect=False)
    status, sent = await gateway.call(
        "POST",
        "/message/text",
        key=key,
        json={"instanceName": name, "to": "5491112345678", "text": "waits"},
    )
    assert (202, "close") == (status, sent["instanceState"])
    page = await browser.new_page(viewport={"width": 1280, "height": 900})
    await _sign_in(page, gateway, key)

    await page.click("nav >> text=Messages")
    await expect(page.locator("#messages .waiting")).to_have_text(" — waiting: instance close")
    await page.locator("#messages tbody a").click()
    await expect(page.locator("#message .waiting")).to_contain_text("waiting: instance close")
    await shot(page, "10-message-waiting")

    await page.goto(f"{gateway.api}/console#/instance/{name}")
    await page.click("#pause-instance")
    await expect(page.locator("#pause")).to_contain_text("paused by the tenant (by tenant")
    _, shown = await gateway.call("GET", f"/instance/{name}/status", key=key)
    assert "tenant" == shown["pause"]["by"]
    await shot(page, "11-instance-paused")
    await page.click("#resume-instance")
    await expect(page.locator("#pause")).to_have_text("no")
    _, shown = await gateway.call("GET", f"/instance/{name}/status", key=key)
    assert None is shown["pause"]


async def test_a_cloud_number_meta_refused_shows_why_its_messages_wait(
    gateway: Gateway, meta: MetaSimulator, receiver: Receiver, browser: Browser
) -> None:
    tenant_id, key = await gateway.tenant()
    name = f"{tenant_id}__shop__main"
    number = meta.add_number(f"{gateway.api}/webhooks/cloud/{name}")
    created = await create_cloud(
        gateway, key, name, receiver, cloud_config(number, meta, accessToken="EAAG-wrong")
    )
    assert "close" == created["status"]
    await contact_writes(meta, number, receiver)  # opens the 24-hour window
    status, sent = await gateway.call(
        "POST",
        "/message/text",
        key=key,
        json={"instanceName": name, "to": CONTACT, "text": "waits"},
    )
    assert (202, "close") == (status, sent["instanceState"]), sent
    page = await browser.new_page(viewport={"width": 1280, "height": 900})
    await _sign_in(page, gateway, key)

    row = page.locator(f"#instances tr[data-instance='{name}']")
    await expect(row.locator(".refusal")).to_contain_text("Invalid OAuth access token")
    await page.click("nav >> text=Messages")
    await expect(page.locator("#messages .waiting")).to_contain_text(
        "waiting: instance close (Meta error 190: Invalid OAuth access token)"
    )
    await shot(page, "12-cloud-number-refused")


async def test_a_file_is_previewed_then_queued(
    gateway: Gateway, receiver: Receiver, browser: Browser, tmp_path: Path
) -> None:
    tenant = await gateway.tenant_with_instance(receiver.url(), connect=False)
    bad = tmp_path / "bad.csv"
    bad.write_text("to,message\n5511999998888,primeira\n12,segunda\n")
    good = tmp_path / "good.csv"
    good.write_text("to,message\n5511999998888,primeira\n5511988887777,segunda\n")
    page = await browser.new_page()
    await page.goto(gateway.api + "/console")
    await page.fill("input[name=apikey]", tenant.key)
    await page.click("#sign-in button")
    await expect(page.locator("h1")).to_have_text("Instances")

    await page.click("nav >> text=Import")
    form = page.locator("#import-file")
    await form.locator("select[name=connectorId]").select_option(tenant.name)
    await form.locator("input[name=file]").set_input_files(bad)
    await form.locator("button").click()
    await expect(page.locator("#import-summary")).to_have_text(
        "2 rows, 1 with problems: fix the file and preview again."
    )
    await expect(page.locator("#import-preview tbody tr")).to_have_count(2)
    await expect(page.locator("#import-preview tr.row-problem")).to_contain_text("to:")
    await expect(page.locator("#import-queue")).to_be_disabled()
    await shot(page, "07-import-preview")

    await form.locator("input[name=file]").set_input_files(good)
    await form.locator("button").click()
    await expect(page.locator("#import-summary")).to_have_text("2 rows, 0 with problems.")
    await page.click("#import-queue")
    await expect(page.locator("#import-result")).to_have_text("Queued 2 messages.")
    status, listed = await gateway.call("GET", "/api/queue/list", key=tenant.key)
    assert (200, 2) == (status, listed["meta"]["total"])


async def test_a_number_whose_caps_its_health_halved_says_so(
    gateway: Gateway, receiver: Receiver, browser: Browser
) -> None:
    tenant_id, key = await gateway.tenant()
    name = await gateway.instance(
        tenant_id, key, receiver.url(), fields={"health": {"minScore": 70}}
    )
    people = [f"5491166{n:06d}" for n in range(20)]
    messages = [{"instanceName": name, "to": n, "text": "hola", "lane": "urgent"} for n in people]
    status, body = await gateway.call("POST", "/message/bulk", key=key, json={"messages": messages})
    assert 202 == status, body
    await receiver.wait_for(event_named("instance.health", status="restricted"), timeout=60)

    page = await browser.new_page(viewport={"width": 1280, "height": 900})
    await _sign_in(page, gateway, key)
    caps = page.locator(f'tr[data-instance="{name}"] .caps')
    await expect(caps).to_contain_text("normal 0/250")
    await expect(caps.locator(".health")).to_have_text(" (halved: health 60 under 70)")
    await shot(page, "14-instance-health-halved")
