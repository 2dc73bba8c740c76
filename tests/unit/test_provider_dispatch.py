"""provider-sender's dispatch against the real store, broker and the sandbox phone: claim, send,
then record the send, park the message, hand it back or fail it."""

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from aio_pika.exceptions import ChannelInvalidStateError
from structlog.testing import capture_logs

from lanegate.broker import Broker, Retry
from lanegate.events import MessageDispatch, utcnow
from lanegate.lifecycle import Status
from lanegate.outbound import Outbound
from lanegate.providers.sandbox import Sandbox
from lanegate.secrets import Keyring
from lanegate.store import Document, Store
from provider_sender.callbacks import GatewayCallbacks
from provider_sender.dispatch import Dispatcher
from provider_sender.files import Files
from tests.conftest import AMQP_URL
from tests.support.gateway import eventually, hearing
from tests.support.messages import stored_message

CLAIM_TIMEOUT = 30.0
BACKOFF = 60.0
MAX_ATTEMPTS = 3


@pytest.fixture
async def dispatcher(bare_store: Store, bare_broker: Broker) -> AsyncIterator[Dispatcher]:
    """provider-sender's dispatcher with the sandbox phone as its only provider."""
    callbacks = GatewayCallbacks(bare_store, bare_broker)
    # Receipts far off: a test ends before the phone reports anything on its own.
    sandbox = Sandbox(bare_store, callbacks, delivered_after=600, read_after=900)
    http = Outbound(allow_private=True, timeout=5)
    yield Dispatcher(
        bare_store,
        bare_broker,
        {"sandbox": sandbox},
        CLAIM_TIMEOUT,
        callbacks=callbacks,
        files=Files(bare_store, http, max_bytes=1024, timeout=5),
        keyring=Keyring(""),
        max_attempts=MAX_ATTEMPTS,
        backoff=BACKOFF,
    )
    await sandbox.close()
    await http.close()


async def sandbox_instance(store: Store, **fields: Any) -> None:
    """Instance `i` of tenant `t` on the sandbox phone, connected unless `fields` say not."""
    await store.instances.insert_one(
        {"_id": "i", "tenantId": "t", "provider": "sandbox", "state": "open", **fields}
    )


async def dispatched(store: Store, status: Status = Status.DISPATCHING, **fields: Any) -> Document:
    """A text message of instance `i` handed to provider-sender."""
    return await stored_message(
        store, status, provider="sandbox", type="text", content={"text": "hi"}, **fields
    )


def dispatch_of(message: Document) -> MessageDispatch:
    return MessageDispatch(
        tenantId="t", instanceName="i", messageId=message["_id"], lane=message["lane"]
    )


async def read(store: Store, message: Document) -> Document:
    found = await store.messages.find_one({"_id": message["_id"]})
    assert found is not None
    return found


async def received(store: Store, message: Document) -> int:
    """How many copies of the message the sandbox phone got."""
    record = await store.sandbox_outbox.find_one({"_id": message["_id"]})
    return int(record["received"]) if record else 0


async def test_a_dispatched_message_is_sent_once_and_reported(
    bare_store: Store, bare_broker: Broker, dispatcher: Dispatcher
) -> None:
    await sandbox_instance(bare_store)
    message = await dispatched(bare_store)

    async with hearing(AMQP_URL, bare_broker.namespace, "message.status") as next_status:
        await dispatcher.handle(dispatch_of(message))
        reported = await next_status()
        await dispatcher.handle(dispatch_of(message))  # delivered again after a crash
        reported_again = await next_status()

    stored = await read(bare_store, message)
    assert ("sent", "hi", 1) == (stored["status"], stored["textSent"], stored["attempts"])
    assert 1 == await received(bare_store, message)
    assert ("sent", stored["providerMessageId"]) == (
        reported["status"],
        reported["providerMessageId"],
    )
    assert reported["id"] == reported_again["id"]  # told again under the same id


async def test_a_message_for_a_session_not_open_goes_back_to_the_scheduler(
    bare_store: Store, bare_broker: Broker, dispatcher: Dispatcher
) -> None:
    await sandbox_instance(bare_store, state="close")
    message = await dispatched(bare_store)

    async with hearing(AMQP_URL, bare_broker.namespace, "message.handed_back") as next_back:
        await dispatcher.handle(dispatch_of(message))
        back = await next_back()

    assert "pending" == (await read(bare_store, message))["status"]
    assert message["_id"] == back["messageId"]
    assert 0 == await received(bare_store, message)


async def test_a_refusal_that_cannot_be_retried_fails_the_message(
    bare_store: Store, bare_broker: Broker, dispatcher: Dispatcher
) -> None:
    await sandbox_instance(bare_store, providerConfig={"failNumbers": ["4915100000000"]})
    message = await dispatched(bare_store)

    async with hearing(AMQP_URL, bare_broker.namespace, "message.status") as next_status:
        await dispatcher.handle(dispatch_of(message))
        reported = await next_status()

    stored = await read(bare_store, message)
    assert ("failed", "undeliverable", 1) == (
        stored["status"],
        stored["error"]["code"],
        stored["attempts"],
    )
    assert ("failed", "undeliverable") == (reported["status"], reported["error"]["code"])


async def test_a_retryable_failure_parks_the_message_for_the_backoff_and_frees_its_slot(
    bare_store: Store, bare_broker: Broker, dispatcher: Dispatcher
) -> None:
    fault = {"kind": "error", "until": utcnow() + timedelta(minutes=5)}
    await sandbox_instance(bare_store, sandboxFault=fault)
    message = await dispatched(bare_store)
    before = utcnow()

    async with hearing(AMQP_URL, bare_broker.namespace, "message.handed_back") as next_back:
        await dispatcher.handle(dispatch_of(message))
        back = await next_back()

    stored = await read(bare_store, message)
    assert ("deferred", 1) == (stored["status"], stored["attempts"])
    assert before + timedelta(seconds=BACKOFF) <= stored["deferredUntil"]
    assert stored["deferredUntil"] <= utcnow() + timedelta(seconds=BACKOFF)
    assert message["_id"] == back["messageId"]


async def test_the_last_allowed_attempt_that_fails_gives_the_message_up(
    bare_store: Store, dispatcher: Dispatcher
) -> None:
    fault = {"kind": "error", "until": utcnow() + timedelta(minutes=5)}
    await sandbox_instance(bare_store, sandboxFault=fault)
    message = await dispatched(bare_store, attempts=MAX_ATTEMPTS - 1)

    await dispatcher.handle(dispatch_of(message))

    stored = await read(bare_store, message)
    assert ("failed", "sandbox_unavailable", MAX_ATTEMPTS) == (
        stored["status"],
        stored["error"]["code"],
        stored["attempts"],
    )
    assert stored["error"]["message"].startswith(f"Gave up after {MAX_ATTEMPTS} attempts")


async def test_a_paused_instance_parks_the_message_without_calling_the_provider(
    bare_store: Store, dispatcher: Dispatcher
) -> None:
    until = utcnow() + timedelta(minutes=10)
    paused = {"since": utcnow(), "until": until, "reason": "ban risk", "by": "provider"}
    await sandbox_instance(bare_store, paused=paused)
    message = await dispatched(bare_store)

    await dispatcher.handle(dispatch_of(message))

    stored = await read(bare_store, message)
    assert ("deferred", 0) == (stored["status"], stored["attempts"])
    assert abs(stored["deferredUntil"] - until) < timedelta(milliseconds=1)
    assert 0 == await received(bare_store, message)


async def test_an_attempt_that_may_have_reached_the_phone_is_not_sent_twice(
    bare_store: Store, dispatcher: Dispatcher
) -> None:
    # The phone gets the message, but its answer never comes back.
    fault = {"kind": "timeout", "until": utcnow() + timedelta(minutes=5)}
    await sandbox_instance(bare_store, sandboxFault=fault)
    message = await dispatched(bare_store)
    await dispatcher.handle(dispatch_of(message))
    parked = await read(bare_store, message)
    assert ("deferred", 1) == (parked["status"], parked["attempts"])

    await bare_store.instances.update_one({"_id": "i"}, {"$unset": {"sandboxFault": ""}})
    await bare_store.messages.update_one(
        {"_id": message["_id"]}, {"$set": {"status": Status.DISPATCHING}}
    )
    await dispatcher.handle(dispatch_of(message))

    assert "sent" == (await read(bare_store, message))["status"]
    assert 1 == await received(bare_store, message)


async def test_a_due_deferred_message_goes_back_to_pending_on_its_wake_up(
    bare_store: Store, bare_broker: Broker, dispatcher: Dispatcher
) -> None:
    await sandbox_instance(bare_store)
    message = await dispatched(bare_store, Status.DEFERRED, deferredUntil=utcnow())

    async with hearing(AMQP_URL, bare_broker.namespace, "message.handed_back") as next_back:
        await dispatcher.handle(dispatch_of(message))
        back = await next_back()

    assert "pending" == (await read(bare_store, message))["status"]
    assert message["_id"] == back["messageId"]


async def test_a_young_send_claim_is_left_to_its_sender(
    bare_store: Store, dispatcher: Dispatcher
) -> None:
    await sandbox_instance(bare_store)
    message = await dispatched(bare_store, Status.SENDING, sendingAt=utcnow())

    with pytest.raises(Retry):
        await dispatcher.handle(dispatch_of(message))

    assert "sending" == (await read(bare_store, message))["status"]


async def test_a_send_claim_left_by_a_crash_ends_as_the_provider_knows_it(
    bare_store: Store, dispatcher: Dispatcher
) -> None:
    await sandbox_instance(bare_store)
    crashed = utcnow() - timedelta(seconds=CLAIM_TIMEOUT + 1)
    reached = await dispatched(bare_store)
    await dispatcher.handle(dispatch_of(reached))
    await bare_store.messages.update_one(
        {"_id": reached["_id"]}, {"$set": {"status": Status.SENDING, "sendingAt": crashed}}
    )
    lost = await dispatched(bare_store, Status.SENDING, sendingAt=crashed)

    await dispatcher.handle(dispatch_of(reached))
    await dispatcher.handle(dispatch_of(lost))

    assert "sent" == (await read(bare_store, reached))["status"]
    stored = await read(bare_store, lost)
    assert ("failed", "outcome_unknown") == (stored["status"], stored["error"]["code"])
    assert [1, 0] == [await received(bare_store, m) for m in (reached, lost)]


async def test_a_withdrawn_message_the_phone_never_got_is_canceled(
    bare_store: Store, bare_broker: Broker, dispatcher: Dispatcher
) -> None:
    await sandbox_instance(bare_store)
    message = await dispatched(bare_store, attempts=1, withdraw=Status.CANCELED)

    async with hearing(AMQP_URL, bare_broker.namespace, "message.canceled") as next_canceled:
        await dispatcher.handle(dispatch_of(message))
        announced = await next_canceled()

    assert "canceled" == (await read(bare_store, message))["status"]
    assert message["_id"] == announced["messageId"]
    assert 0 == await received(bare_store, message)


async def test_a_receipt_the_sandbox_phone_cannot_report_is_logged_as_lost(
    bare_store: Store, bare_broker: Broker, monkeypatch: pytest.MonkeyPatch
) -> None:
    callbacks = GatewayCallbacks(bare_store, bare_broker)

    async def dropped(*args: object, **kwargs: object) -> None:
        raise ChannelInvalidStateError("closed")  # the broker away when the receipt came

    monkeypatch.setattr(callbacks, "receipt", dropped)
    sandbox = Sandbox(bare_store, callbacks, delivered_after=0, read_after=0)
    await sandbox_instance(bare_store)
    message = await dispatched(bare_store)
    instance = await bare_store.instances.find_one({"_id": "i"})
    assert instance is not None
    try:
        with capture_logs() as logs:
            await sandbox.send(instance, message, "hi")

            async def logged() -> bool:
                return any(e["event"] == "sandbox callback lost" for e in logs)

            await eventually(logged, timeout=10)
    finally:
        await sandbox.close()
    [lost] = [e for e in logs if e["event"] == "sandbox callback lost"]
    assert "ChannelInvalidStateError" in lost["error"]
