"""provider-sender against the real store and broker: a claim and the send it wins survive
their delivery's end, and how the send ended is logged when nobody waits for it any more."""

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest
from aio_pika.exceptions import ChannelInvalidStateError
from structlog.testing import capture_logs

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
from tests.support.gateway import eventually

pytestmark = pytest.mark.e2e

INSTANCE = "claim__support__main"


class HeldSandbox(Sandbox):
    """The sandbox phone, answering a send only once the test lets it."""

    def __init__(self, store: Store, broker: Broker) -> None:
        super().__init__(store, GatewayCallbacks(store, broker), delivered_after=60, read_after=60)
        self.entered = asyncio.Event()
        self.release = asyncio.Event()

    async def send(
        self,
        instance: Document,
        message: Document,
        text: str | None,
        *,
        files: Sequence[Attachment] = (),
    ) -> Sent:
        self.entered.set()
        await self.release.wait()
        return await super().send(instance, message, text, files=files)


@contextlib.asynccontextmanager
async def dispatching_m1(
    store: Store, broker: Broker
) -> AsyncIterator[tuple[Dispatcher, HeldSandbox]]:
    """Message m1 waiting for its send, and a dispatcher sending through a held sandbox."""
    await store.instances.insert_one(
        {"_id": INSTANCE, "tenantId": "claim", "provider": "sandbox", "state": "open"}
    )
    await store.messages.insert_one(
        {
            "_id": "m1",
            "tenantId": "claim",
            "instanceName": INSTANCE,
            "provider": "sandbox",
            "to": "5491100000005",
            "lane": "urgent",
            "content": {"text": "hi"},
            "status": "dispatching",
            "queuedAt": utcnow(),
        }
    )
    sandbox = HeldSandbox(store, broker)
    http = Outbound(allow_private=True, timeout=5)
    files = Files(store, http, max_bytes=1024 * 1024, timeout=5)
    dispatcher = Dispatcher(
        store,
        broker,
        {"sandbox": sandbox},
        60,
        callbacks=GatewayCallbacks(store, broker),
        files=files,
        keyring=Keyring(""),
    )
    try:
        yield dispatcher, sandbox
    finally:
        await sandbox.close()
        await http.close()


async def cancelled_once(dispatcher: Dispatcher, reached: asyncio.Event) -> None:
    """Handle m1's dispatch and cancel it once `reached` is set (what a dropped broker
    connection does to a running handler)."""
    event = MessageDispatch(tenantId="claim", instanceName=INSTANCE, messageId="m1", lane="urgent")
    handling = asyncio.create_task(dispatcher.handle(event))
    await reached.wait()
    handling.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await handling


@contextlib.asynccontextmanager
async def held_send(store: Store, broker: Broker) -> AsyncIterator[HeldSandbox]:
    """A claimed send of message m1 held inside the sandbox, its delivery cancelled; the
    sandbox, to release it."""
    async with dispatching_m1(store, broker) as (dispatcher, sandbox):
        await cancelled_once(dispatcher, sandbox.entered)
        yield sandbox


async def m1_sent(store: Store) -> None:
    async def sent() -> bool:
        message = await store.messages.find_one({"_id": "m1"})
        return message is not None and "sent" == message["status"]

    await eventually(sent, timeout=10)


async def test_a_send_cancelled_with_its_delivery_still_finishes_and_is_recorded(
    parts: tuple[Store, Broker],
) -> None:
    store, broker = parts
    async with held_send(store, broker) as sandbox:
        sandbox.release.set()

        await m1_sent(store)
        record = await store.sandbox_outbox.find_one({"_id": "m1"})
        assert record is not None and 1 == record["received"]


async def test_a_send_whose_report_fails_after_its_delivery_ended_is_logged(
    parts: tuple[Store, Broker], monkeypatch: pytest.MonkeyPatch
) -> None:
    store, broker = parts

    async def dropped(*args: object, **kwargs: object) -> None:
        raise ChannelInvalidStateError("closed")  # the connection that ended the delivery

    async with held_send(store, broker) as sandbox:
        monkeypatch.setattr(broker, "publish", dropped)
        with capture_logs() as logs:
            sandbox.release.set()
            await m1_sent(store)

            async def logged() -> bool:
                return any(e["event"] == "send finished after its delivery ended" for e in logs)

            await eventually(logged, timeout=10)
    [finished] = [e for e in logs if e["event"] == "send finished after its delivery ended"]
    assert "ChannelInvalidStateError" in finished["error"]


async def test_a_delivery_cancelled_while_its_claim_is_answered_still_sends(
    parts: tuple[Store, Broker], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The claim is written, but its answer comes late (a grouped write behind another) and
    the delivery is cancelled meanwhile: the send must still happen, not leave m1 `sending`
    until it ends as outcome_unknown."""
    store, broker = parts
    claim_for_send = lifecycle.claim_for_send
    written, answer = asyncio.Event(), asyncio.Event()

    async def late_answer(*args: Any) -> Document | None:
        claimed = await claim_for_send(*args)
        written.set()
        await answer.wait()
        return claimed

    monkeypatch.setattr(lifecycle, "claim_for_send", late_answer)
    async with dispatching_m1(store, broker) as (dispatcher, sandbox):
        await cancelled_once(dispatcher, written)
        answer.set()
        sandbox.release.set()

        await m1_sent(store)
    record = await store.sandbox_outbox.find_one({"_id": "m1"})
    assert record is not None and 1 == record["received"]
