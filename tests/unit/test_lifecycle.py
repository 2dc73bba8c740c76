"""Each message transition against the real wire store: it moves only from the status it
expects, and writes what it promises in that one update."""

import asyncio
import json
import time
from datetime import UTC, datetime, timedelta

from lanegate import lifecycle
from lanegate.broker import Broker
from lanegate.events import expired
from lanegate.lifecycle import Status
from lanegate.store import Document, Store
from tests.conftest import AMQP_URL
from tests.support.gateway import hearing
from tests.support.messages import stored_message

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


async def read(store: Store, message: Document) -> Document:
    found = await store.messages.find_one({"_id": message["_id"]})
    assert found is not None
    return found


def test_every_status_is_either_waiting_or_final() -> None:
    assert set(Status) == set(lifecycle.WAITING) | set(lifecycle.FINAL)
    assert not set(lifecycle.WAITING) & set(lifecycle.FINAL)
    assert set(lifecycle.CANCELABLE) < set(lifecycle.PLANNED) < set(lifecycle.WAITING)


async def test_a_pending_message_is_claimed_for_dispatch_once(bare_store: Store) -> None:
    message = await stored_message(bare_store, Status.PENDING)

    claimed = await lifecycle.claim_for_dispatch(bare_store, message["_id"], NOW, {"lane": 1})

    assert {"_id": message["_id"], "lane": "normal"} == claimed
    stored = await read(bare_store, message)
    assert ("dispatching", NOW) == (stored["status"], stored["dispatchedAt"])
    assert await lifecycle.claim_for_dispatch(bare_store, message["_id"], NOW, {}) is None


async def test_a_message_past_its_valid_until_is_not_claimed_for_dispatch(
    bare_store: Store,
) -> None:
    message = await stored_message(bare_store, Status.PENDING, validUntil=NOW)

    assert await lifecycle.claim_for_dispatch(bare_store, message["_id"], NOW, {}) is None
    assert "pending" == (await read(bare_store, message))["status"]


async def test_only_a_dispatched_message_is_claimed_for_send(bare_store: Store) -> None:
    dispatched = await stored_message(bare_store, Status.DISPATCHING)
    pending = await stored_message(bare_store, Status.PENDING)

    claimed = await lifecycle.claim_for_send(bare_store, dispatched["_id"], NOW)

    assert claimed is not None
    assert ("sending", NOW) == (claimed["status"], claimed["sendingAt"])
    assert await lifecycle.claim_for_send(bare_store, dispatched["_id"], NOW) is None
    assert await lifecycle.claim_for_send(bare_store, pending["_id"], NOW) is None
    assert "pending" == (await read(bare_store, pending))["status"]


async def test_mark_sent_records_the_send_in_the_same_write_only_from_sending(
    bare_store: Store,
) -> None:
    message = await stored_message(bare_store, Status.SENDING)

    assert await lifecycle.mark_sent(
        bare_store, message["_id"], at=NOW, provider_message_id="p1", text="hi", attempts=2
    )

    stored = await read(bare_store, message)
    assert ("sent", NOW, "p1", "hi", 2) == (
        stored["status"],
        stored["sentAt"],
        stored["providerMessageId"],
        stored["textSent"],
        stored["attempts"],
    )
    assert not await lifecycle.mark_sent(
        bare_store, message["_id"], at=NOW, provider_message_id="x"
    )
    assert "p1" == (await read(bare_store, message))["providerMessageId"]


async def test_defer_parks_a_sending_message_until_a_time(bare_store: Store) -> None:
    message = await stored_message(bare_store, Status.SENDING)
    until = NOW + timedelta(minutes=5)

    assert await lifecycle.defer(bare_store, message["_id"], until, attempts=1)

    stored = await read(bare_store, message)
    assert ("deferred", until, 1) == (stored["status"], stored["deferredUntil"], stored["attempts"])
    assert not await lifecycle.defer(bare_store, message["_id"], until)


async def test_hand_back_returns_a_message_to_pending_only_from_the_status_named(
    bare_store: Store,
) -> None:
    deferred = await stored_message(bare_store, Status.DEFERRED)
    sending = await stored_message(bare_store, Status.SENDING)

    assert not await lifecycle.hand_back(bare_store, deferred["_id"], Status.SENDING)
    assert await lifecycle.hand_back(bare_store, deferred["_id"], Status.DEFERRED)
    assert await lifecycle.hand_back(bare_store, sending["_id"], Status.SENDING)

    assert ["pending", "pending"] == [
        (await read(bare_store, m))["status"] for m in (deferred, sending)
    ]


async def test_finish_ends_only_a_sending_message_with_its_fields(bare_store: Store) -> None:
    sending = await stored_message(bare_store, Status.SENDING)
    pending = await stored_message(bare_store, Status.PENDING)
    error = {"code": "outcome_unknown", "message": "m"}

    assert await lifecycle.finish(bare_store, sending["_id"], Status.FAILED, error=error)
    assert not await lifecycle.finish(bare_store, pending["_id"], Status.FAILED, error=error)

    stored = await read(bare_store, sending)
    assert ("failed", error) == (stored["status"], stored["error"])
    assert "pending" == (await read(bare_store, pending))["status"]


async def test_moves_made_at_once_each_hear_whether_theirs_applied(bare_store: Store) -> None:
    racing = await stored_message(bare_store, Status.SENDING)
    others = [await stored_message(bare_store, Status.SENDING) for _ in range(3)]
    pending = await stored_message(bare_store, Status.PENDING)

    # The first write holds the first move of each message: some apply, one does not, so
    # the stamps read back say whose did; the racing message's other moves follow it.
    outcomes = await asyncio.gather(
        lifecycle.mark_sent(bare_store, racing["_id"], at=NOW, provider_message_id="p1"),
        lifecycle.finish(bare_store, racing["_id"], Status.FAILED, error={"code": "x"}),
        lifecycle.defer(bare_store, racing["_id"], NOW),
        *(
            lifecycle.mark_sent(bare_store, m["_id"], at=NOW, provider_message_id="p")
            for m in others
        ),
        lifecycle.mark_sent(bare_store, pending["_id"], at=NOW, provider_message_id="p"),
    )

    assert [True, False, False, True, True, True, False] == outcomes
    assert "sent" == (await read(bare_store, racing))["status"]
    assert "pending" == (await read(bare_store, pending))["status"]


async def test_mark_undelivered_fails_only_a_sent_message(bare_store: Store) -> None:
    sent = await stored_message(bare_store, Status.SENT, providerMessageId="p1")
    await stored_message(bare_store, Status.SENDING, providerMessageId="p2")
    error = {"code": "131026", "message": "Not delivered"}

    failed = await lifecycle.mark_undelivered(bare_store, {"providerMessageId": "p1"}, error, NOW)

    assert failed is not None
    assert (sent["_id"], "failed", error, NOW) == (
        failed["_id"],
        failed["status"],
        failed["error"],
        failed["failedAt"],
    )
    assert (
        await lifecycle.mark_undelivered(bare_store, {"providerMessageId": "p2"}, error, NOW)
        is None
    )
    assert (
        await lifecycle.mark_undelivered(bare_store, {"providerMessageId": "p1"}, error, NOW)
        is None
    )


async def test_approve_moves_an_untried_message_to_pending_and_can_be_taken_back(
    bare_store: Store,
) -> None:
    message = await stored_message(bare_store, Status.PENDING_APPROVAL)
    tried = await stored_message(bare_store, Status.PENDING_APPROVAL, attempts=1)

    before = await lifecycle.approve(bare_store, {"_id": message["_id"]}, NOW)

    assert before is not None
    assert "pending_approval" == before["status"]
    stored = await read(bare_store, message)
    assert ("pending", NOW) == (stored["status"], stored["approvedAt"])
    assert await lifecycle.approve(bare_store, {"_id": tried["_id"]}, NOW) is None
    await lifecycle.take_back_approval(bare_store, message["_id"])
    assert "pending_approval" == (await read(bare_store, message))["status"]


async def test_retire_ends_an_untried_message_in_an_allowed_status(bare_store: Store) -> None:
    message = await stored_message(bare_store, Status.PENDING_APPROVAL)
    pending = await stored_message(bare_store, Status.PENDING)
    tried = await stored_message(bare_store, Status.PENDING, attempts=1)
    only_approval = (Status.PENDING_APPROVAL,)

    rejected = await lifecycle.retire(
        bare_store, {"_id": message["_id"]}, Status.REJECTED, NOW, allowed=only_approval
    )
    refused = await lifecycle.retire(
        bare_store, {"_id": pending["_id"]}, Status.REJECTED, NOW, allowed=only_approval
    )
    tried_one = await lifecycle.retire(bare_store, {"_id": tried["_id"]}, Status.CANCELED, NOW)

    assert rejected is not None
    assert (None, None) == (refused, tried_one)
    stored = await read(bare_store, message)
    assert ("rejected", NOW) == (stored["status"], stored["rejectedAt"])
    assert ["pending", "pending"] == [
        (await read(bare_store, m))["status"] for m in (pending, tried)
    ]


async def test_retire_all_cancels_every_untried_waiting_message_of_a_match(
    bare_store: Store,
) -> None:
    untried = [
        await stored_message(bare_store, Status.PENDING),
        await stored_message(bare_store, Status.PENDING_APPROVAL),
    ]
    kept = [
        await stored_message(bare_store, Status.PENDING, attempts=1),
        await stored_message(bare_store, Status.DEFERRED),
        await stored_message(bare_store, Status.PENDING, instanceName="other"),
    ]

    count = await lifecycle.retire_all(bare_store, {"instanceName": "i"}, Status.CANCELED, NOW)

    assert 2 == count
    assert ["canceled", "canceled"] == [(await read(bare_store, m))["status"] for m in untried]
    assert ["pending", "deferred", "pending"] == [
        (await read(bare_store, m))["status"] for m in kept
    ]


async def test_withdraw_hands_a_tried_message_to_the_sender_to_settle(
    bare_store: Store, bare_broker: Broker
) -> None:
    untried = await stored_message(bare_store, Status.PENDING)
    tried = await stored_message(bare_store, Status.PENDING, attempts=1)

    async with hearing(AMQP_URL, bare_broker.namespace, "message.dispatch") as next_event:
        withdrawn = await lifecycle.withdraw(
            bare_store, bare_broker, {"instanceName": "i"}, Status.CANCELED, NOW
        )
        event = await next_event()

    assert withdrawn is not None
    assert (tried["_id"], "normal") == (event["messageId"], event["lane"])
    stored = await read(bare_store, tried)
    assert ("dispatching", "canceled", NOW) == (
        stored["status"],
        stored["withdraw"],
        stored["dispatchedAt"],
    )
    assert "pending" == (await read(bare_store, untried))["status"]
    again = await lifecycle.withdraw(
        bare_store, bare_broker, {"instanceName": "i"}, Status.CANCELED, NOW
    )
    assert again is None


async def test_end_waiting_ends_an_untried_message_and_withdraws_a_tried_one(
    bare_store: Store, bare_broker: Broker
) -> None:
    untried = await stored_message(bare_store, Status.PENDING, validUntil=NOW)
    tried = await stored_message(bare_store, Status.PENDING, attempts=2, validUntil=NOW)

    async with hearing(AMQP_URL, bare_broker.namespace, "message.expired") as next_expired:
        ended = await lifecycle.end_waiting(
            bare_store, bare_broker, {"_id": untried["_id"]}, Status.EXPIRED, NOW, expired
        )
        announced = await next_expired()
    withdrawn = await lifecycle.end_waiting(
        bare_store, bare_broker, {"_id": tried["_id"]}, Status.EXPIRED, NOW, expired
    )
    nothing = await lifecycle.end_waiting(
        bare_store, bare_broker, {"_id": untried["_id"]}, Status.EXPIRED, NOW, expired
    )

    assert ("ended", "withdrawn", None) == (ended, withdrawn, nothing)
    assert untried["_id"] == announced["messageId"]
    stored = await read(bare_store, untried)
    assert ("expired", NOW) == (stored["status"], stored["expiredAt"])
    stored = await read(bare_store, tried)
    assert ("dispatching", "expired") == (stored["status"], stored["withdraw"])


async def test_hand_to_sender_later_reaches_the_senders_queue_through_its_delay(
    bare_store: Store, bare_broker: Broker
) -> None:
    message = await stored_message(bare_store, Status.DEFERRED)
    channel = await bare_broker.connection.channel()
    queue = await channel.get_queue(bare_broker.queue_name("provider-sender"))

    await lifecycle.hand_to_sender(bare_broker, message, after=0.0)

    deadline = time.monotonic() + 10
    while (delivered := await queue.get(no_ack=True, fail=False)) is None:
        assert time.monotonic() < deadline, "no dispatch reached provider-sender's queue"
        await asyncio.sleep(0.05)
    body = json.loads(delivered.body)
    assert ("message.dispatch", message["_id"]) == (body["kind"], body["messageId"])
    await channel.close()
