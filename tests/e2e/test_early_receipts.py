"""Receipts that come before their send is recorded (a provider reporting at once, the
sender's write still under way) are applied once it is, once each, with their events."""

from collections.abc import Sequence
from typing import Any

import pytest

from lanegate import lifecycle
from lanegate.attachments import Attachment
from lanegate.broker import Broker
from lanegate.events import MessageDispatch, utcnow
from lanegate.outbound import Outbound
from lanegate.providers import Sent
from lanegate.providers.sandbox import Sandbox
from lanegate.secrets import Keyring
from lanegate.store import Document, Store
from provider_sender.callbacks import GatewayCallbacks
from provider_sender.dispatch import Dispatcher
from provider_sender.files import Files
from tests.conftest import AMQP_URL
from tests.support.gateway import hearing

pytestmark = pytest.mark.e2e

INSTANCE = {"_id": "early__support__main", "tenantId": "early"}


class ReportingFirst(Sandbox):
    """The sandbox phone, whose delivered and read receipts arrive before its answer."""

    async def send(
        self,
        instance: Document,
        message: Document,
        text: str | None,
        *,
        files: Sequence[Attachment] = (),
    ) -> Sent:
        sent = await super().send(instance, message, text, files=files)
        for status in ("delivered", "read"):
            assert not await self._callbacks.receipt(instance, sent.provider_message_id, status)
        return sent


async def _message(store: Store, status: str) -> None:
    await store.instances.insert_one(INSTANCE | {"provider": "sandbox", "state": "open"})
    await store.messages.insert_one(
        {
            "_id": "m1",
            "tenantId": "early",
            "instanceName": INSTANCE["_id"],
            "provider": "sandbox",
            "to": "5491100000005",
            "lane": "urgent",
            "content": {"text": "hi"},
            "status": status,
            "queuedAt": utcnow(),
        }
    )


async def _counted(store: Store) -> dict[str, int]:
    """The tenant's usage counts (of every day: the test may cross midnight)."""
    days = await store.usage_days.find({"tenantId": "early"}).to_list(None)
    return {k: sum(int(day.get(k, 0)) for day in days) for k in ("sent", "delivered", "read")}


async def test_receipts_before_the_send_is_recorded_are_applied_after_it_in_order(
    parts: tuple[Store, Broker],
) -> None:
    store, broker = parts
    await _message(store, "dispatching")
    callbacks = GatewayCallbacks(store, broker)
    sandbox = ReportingFirst(store, callbacks, delivered_after=60, read_after=60)
    http = Outbound(allow_private=True, timeout=5)
    dispatcher = Dispatcher(
        store,
        broker,
        {"sandbox": sandbox},
        60,
        callbacks=callbacks,
        files=Files(store, http, max_bytes=1024, timeout=5),
        keyring=Keyring(""),
    )
    event = MessageDispatch(
        tenantId="early", instanceName=INSTANCE["_id"], messageId="m1", lane="urgent"
    )
    try:
        async with hearing(AMQP_URL, broker.namespace, "message.status") as next_status:
            await dispatcher.handle(event)
            heard = [(await next_status())["status"] for _ in range(3)]
    finally:
        await sandbox.close()
        await http.close()

    message = await store.messages.find_one({"_id": "m1"})
    assert message is not None
    assert ("sent", "read") == (message["status"], message["receipt"])
    assert message["deliveredAt"] is not None and message["readAt"] is not None
    assert ["sent", "delivered", "read"] == heard
    assert {"sent": 1, "delivered": 1, "read": 1} == await _counted(store)
    assert 0 == await store.early_receipts.count_documents({})


async def test_a_send_recorded_while_its_receipt_is_kept_gets_it_once(
    parts: tuple[Store, Broker], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The receipt misses the send, the send is recorded and finds nothing kept, then the
    receipt is kept: its second look applies it, and the send's later look adds nothing."""
    store, broker = parts
    await _message(store, "sending")
    callbacks = GatewayCallbacks(store, broker)
    keep = store.early_receipts.update_one

    async def send_recorded_first(*args: Any, **kwargs: Any) -> Any:
        assert await lifecycle.mark_sent(store, "m1", at=utcnow(), provider_message_id="P1")
        await callbacks.apply_early_receipts(INSTANCE, "P1")
        return await keep(*args, **kwargs)

    monkeypatch.setattr(store.early_receipts, "update_one", send_recorded_first)
    assert await callbacks.receipt(INSTANCE, "P1", "delivered")
    monkeypatch.undo()
    await callbacks.apply_early_receipts(INSTANCE, "P1")
    assert not await callbacks.receipt(INSTANCE, "P1", "delivered")  # a replay

    assert {"sent": 0, "delivered": 1, "read": 0} == await _counted(store)
    message = await store.messages.find_one({"_id": "m1"})
    assert message is not None and "delivered" == message["receipt"]


async def test_a_receipt_for_a_send_never_recorded_is_kept_until_it_expires(
    parts: tuple[Store, Broker],
) -> None:
    store, broker = parts
    assert not await GatewayCallbacks(store, broker).receipt(INSTANCE, "phone-sent", "read")
    [kept] = await store.early_receipts.find({}).to_list(None)
    assert ("phone-sent", "read", "early") == (
        kept["providerMessageId"],
        kept["status"],
        kept["tenantId"],
    )
    assert kept["expiresAt"] > utcnow()
