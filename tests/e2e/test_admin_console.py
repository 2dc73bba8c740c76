"""The operator view (/console/admin) in headless Chromium: sign in with the operator key, see
every tenant, instance, disabled webhook and dead letter, disable a tenant, edit plans, replay
and purge dead letters."""

import uuid

import pytest
from playwright.async_api import Browser, expect

from lanegate.broker import REASON_HEADER
from lanegate.events import InstancePaused, encode
from tests.conftest import AMQP_URL
from tests.e2e.test_console import browser, shot  # noqa: F401 - the fixture
from tests.support.gateway import Gateway, TenantInstance, eventually
from tests.support.messages import send
from tests.support.queues import queued
from tests.support.receiver import Receiver, event_named

pytestmark = pytest.mark.e2e

GONE = "/gone"


async def first_tenant(gateway: Gateway, webhook_url: str, *, connect: bool) -> TenantInstance:
    """A tenant whose id sorts before the stack's other tenants, so it is on the first page."""
    tenant_id, key = await gateway.tenant(f"0{uuid.uuid4().hex[:10]}")
    name = await gateway.instance(tenant_id, key, webhook_url, connect=connect)
    return TenantInstance(tenant_id, key, name)


async def test_operator_sees_everything_disables_a_tenant_and_replays(
    gateway: Gateway,
    receiver: Receiver,
    browser: Browser,  # noqa: F811 - the fixture
) -> None:
    receiver.answer = lambda r: 410 if r.path == GONE else 204
    # The page shows the first messages of each queue: start from empty ones.
    for queue in ("webhook-dispatcher", "template-sync"):
        status, _ = await gateway.call(
            "DELETE", f"/admin/dead-letters/{queue}", headers={"apikey": gateway.admin_key}
        )
        assert 200 == status
    waiting = await first_tenant(gateway, receiver.url(), connect=False)
    gone = await first_tenant(gateway, receiver.url(GONE), connect=True)
    await send(gateway, waiting.key, waiting.name, lane="bulk")

    async def webhook_off() -> bool:
        _, (instance,) = await gateway.call("GET", "/instances", key=gone.key)
        return instance["webhookEnabled"] is False

    await eventually(webhook_off)

    async def accepted_counted() -> bool:  # a process writes its counts a second later
        _, usage = await gateway.call("GET", "/account/usage", key=waiting.key)
        return bool(1 == usage["totals"]["accepted"])

    await eventually(accepted_counted)
    namespace = gateway.namespace
    paused = InstancePaused(
        tenantId=waiting.tenant_id, instanceName=waiting.name, reason="console replay", by="tenant"
    )
    gave_up = "gave up after 8 attempts: console test"
    await queued(
        AMQP_URL,
        f"{namespace}.webhook-dispatcher.dead",
        encode(paused),
        paused.id,
        **{REASON_HEADER: gave_up},
    )
    await queued(
        AMQP_URL, f"{namespace}.template-sync.dead", b"{}", "droppable", **{REASON_HEADER: "junk"}
    )

    page = await browser.new_page(viewport={"width": 1280, "height": 900})
    response = await page.goto(gateway.api + "/console/admin")
    assert response is not None
    policy = await response.header_value("content-security-policy")
    assert "default-src 'self'" in (policy or "")
    await expect(page.locator("#nav")).to_be_hidden()
    await page.fill("input[name=apikey]", waiting.key)  # a tenant's key is not the operator's
    await page.click("#sign-in button")
    await expect(page.locator("#sign-in .errors")).to_contain_text("Invalid API key")
    await page.fill("input[name=apikey]", gateway.admin_key)
    await page.click("#sign-in button")
    await expect(page.locator("h1")).to_have_text("Operator view")
    assert gateway.admin_key not in page.url
    await expect(page.locator("#nav")).to_be_visible()

    tenant_row = page.locator(f"#tenants tr[data-tenant='{waiting.tenant_id}']")
    await expect(tenant_row).to_contain_text("1 / 0")  # one accepted today, none sent
    instance_row = page.locator(f"#all-instances tr[data-instance='{waiting.name}']")
    await expect(instance_row).to_contain_text("close")
    await expect(instance_row).to_contain_text("0 / 0 / 1")
    await expect(page.locator(f"#all-instances tr[data-instance='{gone.name}']")).to_contain_text(
        "open"
    )
    off = page.locator(f"#webhooks-off tr[data-instance='{gone.name}']")
    await expect(off).to_contain_text("410")
    dead_queue = page.locator(".dead-queue[data-queue='webhook-dispatcher']")
    await expect(dead_queue).to_contain_text(gave_up)
    await shot(page, "admin-01-overview")

    gone_row = page.locator(f"#tenants tr[data-tenant='{gone.tenant_id}']")
    await gone_row.locator("button").click()
    await expect(gone_row).to_contain_text("disabled")
    await expect(gone_row.locator("button")).to_have_text("Enable")
    status, _ = await gateway.call("GET", "/instances", key=gone.key)
    assert 401 == status

    await dead_queue.locator("button.replay").click()
    await receiver.wait_for(event_named("instance.paused", reason="console replay"))
    await expect(dead_queue).not_to_contain_text(gave_up)

    junk = page.locator(".dead-queue[data-queue='template-sync']")
    await expect(junk).to_contain_text("junk")
    await expect(junk.locator(".confirm")).to_be_hidden()  # dropping asks first
    await junk.locator("button.purge").click()
    await junk.locator(".confirm button.danger").click()
    await expect(junk.locator(".count")).to_have_text("0")
    await shot(page, "admin-02-after-actions")


async def test_operator_creates_and_edits_a_plan(
    gateway: Gateway,
    browser: Browser,  # noqa: F811 - the fixture
) -> None:
    plan_id = f"p{uuid.uuid4().hex[:8]}"
    page = await browser.new_page()
    await page.goto(gateway.api + "/console/admin")
    await page.fill("input[name=apikey]", gateway.admin_key)
    await page.click("#sign-in button")

    create = page.locator("#create-plan")
    await create.locator("input[name=id]").fill(plan_id)
    await create.locator("input[name=name]").fill("Starter")
    await create.locator("input[name=maxBulkSize]").fill("5000")
    await create.locator("button").click()
    await expect(create.locator(".errors")).to_contain_text("maxBulkSize")
    await create.locator("input[name=maxBulkSize]").fill("50")
    await create.locator("button").click()
    row = page.locator(f"#plans tr[data-plan='{plan_id}']")
    await expect(row).to_contain_text("Starter")

    await row.locator("button").click()
    edit = page.locator("#edit-plan")
    await edit.locator("input[name=name]").fill("Starter plus")
    await edit.locator("input[name=maxBulkSize]").fill("")
    await edit.locator("button").click()
    await expect(page.locator(f"#plans tr[data-plan='{plan_id}']")).to_contain_text("Starter plus")
    _, plans = await gateway.call("GET", "/admin/plans", key=gateway.admin_key)
    (plan,) = [p for p in plans if p["id"] == plan_id]
    assert ("Starter plus", None) == (plan["name"], plan["maxBulkSize"])
