"""Receipts that come before their send is recorded (a provider reporting at once, the
sender's write still under way) are applied once it is, once each, with their events."""

import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest

from lanegate import lifecycle, usage
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
    """The tenant's usage counts (of every day: the test may cross midnight), those the
    process holds written first."""
    await usage.grouped(store).write_held()
    days = await store.usage_days.find({"tenantId": "early"}).to_list(None)
    return {k: sum(int(day.get(k, 0)) for day in days) for k in ("sent", "delivered", "read")}


@contextlib.asynccontextmanager
async def _dispatcher(
    store: Store, broker: Broker, callbacks: GatewayCallbacks
) -> AsyncIterator[Dispatcher]:
    """provider-sender's dispatcher over a sandbox whose receipts come before its answer."""
    sandbox = ReportingFirst(store, callbacks, delivered_after=60, read_after=60)
    http = Outbound(allow_private=True, timeout=5)
    try:
        yield Dispatcher(
            store,
            broker,
            {"sandbox": sandbox},
            60,
            callbacks=callbacks,
            files=Files(store, http, max_bytes=1024, timeout=5),
            keyring=Keyring(""),
        )
    finally:
        await sandbox.close()
        await http.close()


DISPATCH = MessageDispatch(
    tenantId="early", instanceName=INSTANCE["_id"], messageId="m1", lane="urgent"
)


async def test_receipts_before_the_send_is_recorded_are_applied_after_it_in_order(
    parts: tuple[Store, Broker],
) -> None:
    store, broker = parts
    await _message(store, "dispatching")
    callbacks = GatewayCallbacks(store, broker)
    async with (
        _dispatcher(store, broker, callbacks) as dispatcher,
        hearing(AMQP_URL, broker.namespace, "message.status") as next_status,
    ):
        await dispatcher.handle(DISPATCH)
        heard = [(await next_status())["status"] for _ in range(3)]

    message = await store.messages.find_one({"_id": "m1"})
    assert message is not None
    assert ("sent", "read") == (message["status"], message["receipt"])
    assert message["deliveredAt"] is not None and message["readAt"] is not None
    assert ["sent", "delivered", "read"] == heard
    assert {"sent": 1, "delivered": 1, "read": 1} == await _counted(store)
    assert 0 == await store.early_receipts.count_documents({})


async def test_a_redelivered_dispatch_applies_what_its_send_left_kept(
    parts: tuple[Store, Broker],
) -> None:
    """A sender that stopped between recording the send and applying its kept receipts (a
    crash, a failed publish) leaves them to the dispatch's redelivery."""
    store, broker = parts
    await _message(store, "sending")
    callbacks = GatewayCallbacks(store, broker)
    assert not await callbacks.receipt(INSTANCE, "P1", "delivered")
    assert await lifecycle.mark_sent(store, "m1", at=utcnow(), provider_message_id="P1")
    async with _dispatcher(store, broker, callbacks) as dispatcher:
        await dispatcher.handle(DISPATCH)

    message = await store.messages.find_one({"_id": "m1"})
    assert message is not None and message["deliveredAt"] is not None
    assert {"sent": 0, "delivered": 1, "read": 0} == await _counted(store)
    assert 0 == await store.early_receipts.count_documents({})


async def test_a_failure_kept_for_its_send_pauses_the_number_once_applied(
    parts: tuple[Store, Broker],
) -> None:
    store, broker = parts
    await _message(store, "sending")
    callbacks = GatewayCallbacks(store, broker)
    spam = [{"code": 131048, "title": "Spam rate limit hit"}]
    assert not await callbacks.receipt(INSTANCE, "P1", "failed", errors=spam)
    assert await lifecycle.mark_sent(store, "m1", at=utcnow(), provider_message_id="P1")
    await callbacks.apply_early_receipts(INSTANCE, "P1")
    assert not await callbacks.receipt(INSTANCE, "P1", "failed", errors=spam)  # a replay

    message = await store.messages.find_one({"_id": "m1"})
    instance = await store.instances.find_one({"_id": INSTANCE["_id"]})
    assert message is not None and instance is not None
    assert ("failed", "131048") == (message["status"], message["error"]["code"])
    assert "provider" == instance["paused"]["by"]
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


async def test_a_receipt_for_a_send_never_recorded_is_kept_until_it_expires_a_replay_is_not(
    parts: tuple[Store, Broker],
) -> None:
    store, broker = parts
    await _message(store, "sending")
    callbacks = GatewayCallbacks(store, broker)
    assert await lifecycle.mark_sent(store, "m1", at=utcnow(), provider_message_id="P1")
    assert await callbacks.receipt(INSTANCE, "P1", "delivered")
    assert not await callbacks.receipt(INSTANCE, "P1", "delivered")  # a replay: not kept
    assert not await callbacks.receipt(INSTANCE, "phone-sent", "read")

    [kept] = await store.early_receipts.find({}).to_list(None)
    assert ("phone-sent", "read", "early") == (
        kept["providerMessageId"],
        kept["status"],
        kept["tenantId"],
    )
    assert kept["expiresAt"] > utcnow()
