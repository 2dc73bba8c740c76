"""Helpers for the webhook tests: a small stack's settings, events to publish, stored records."""

from collections.abc import Callable
from typing import Any

from lanegate.events import MessageReceived
from tests.support.gateway import Gateway
from tests.support.receiver import Received, Receiver

SECRET = "s3cret-s3cret-s3cret"
SCHEDULE = "[0.2, 0.4, 0.8, 1.2]"  # five attempts over about 2.6 s
DISABLE_AFTER = 5.0


def received(tenant: str, name: str, n: int) -> MessageReceived:
    return MessageReceived(
        tenantId=tenant,
        instanceName=name,
        sender="5491112345678",
        text=f"hello {n}",
        providerMessageId=f"P{n}",
        sentAt=1773596760,
    )


async def instance(hooks: Gateway, url: str) -> tuple[str, str, str]:
    """A fresh tenant with one unconnected instance (this stack has no provider-sender) whose
    webhook is `url`; (tenant, key, instance)."""
    return await hooks.tenant_with_instance(url, connect=False, webhook_secret=SECRET)


async def delivery(hooks: Gateway, delivery_id: str) -> dict[str, Any]:
    """The stored delivery of an event ({} while the dispatcher has not recorded it yet)."""
    async with hooks.mongo() as client:
        record = await client.lanegate_test.webhook_deliveries.find_one({"_id": delivery_id})
    return record or {}


async def stored_instance(hooks: Gateway, name: str) -> dict[str, Any]:
    async with hooks.mongo() as client:
        record = await client.lanegate_test.instances.find_one({"_id": name})
    assert record is not None
    return record


def with_id(webhook_id: str) -> Callable[[Received], bool]:
    return lambda request: request.headers["webhook-id"] == webhook_id


def all_ids(receiver: Receiver) -> list[str]:
    return [r.headers["webhook-id"] for r in receiver.matching(lambda _: True)]
