"""webhook-dispatcher's deliveries against the real store and a real receiver: an event's
record, its signed attempt, the retry schedule and giving up."""

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest

from lanegate.events import InstanceState
from lanegate.outbound import Outbound
from lanegate.secrets import Keyring
from lanegate.signing import standard_signature
from lanegate.store import Document, Store
from lanegate.store.grouped import grouped_inserts, grouped_updates
from tests.support.gateway import eventually
from tests.support.receiver import Receiver
from tests.support.store_proxy import StoreProxy
from webhook_dispatcher.deliveries import DISABLED_ERROR, Deliverer, Policy
from webhook_dispatcher.poller import Poller
from webhook_dispatcher.records import Records

SECRET = "whsec-unit-tests-0123456789"
SCHEDULE = (0.3, 0.3)  # two retries after the first attempt, then the delivery is dead


@pytest.fixture
async def deliverer(bare_store: Store) -> AsyncIterator[Deliverer]:
    """A deliverer with a short retry schedule, no jitter, and a plain-text keyring."""
    http = Outbound(allow_private=True, timeout=5)
    policy = Policy(timeout=5, schedule=SCHEDULE, jitter=0.0, disable_after=3600)
    records = Records(bare_store, lease_seconds=30)
    running = Deliverer(records, http, policy, concurrency=2, keyring=Keyring(""))
    yield running
    await running.pool.close(1)
    await http.close()


@pytest.fixture
def poller(bare_store: Store, deliverer: Deliverer) -> Poller:
    """The retry poller, ticked by hand."""
    return Poller(Records(bare_store, lease_seconds=30), deliverer, interval=60)


async def hooked_instance(store: Store, receiver: Receiver, **fields: Any) -> None:
    """Instance `i` of tenant `t` with its webhook at the receiver."""
    await store.instances.insert_one(
        {
            "_id": "i",
            "tenantId": "t",
            "webhookUrl": receiver.url(),
            "webhookSecret": SECRET,
            **fields,
        }
    )


def connected() -> InstanceState:
    return InstanceState(tenantId="t", instanceName="i", state="open", phoneNumber="491510000")


async def record_of(store: Store, event: InstanceState) -> Document:
    found = await store.webhook_deliveries.find_one({"_id": event.id})
    assert found is not None
    return found


async def attempted(deliverer: Deliverer, event: InstanceState) -> None:
    """Hand the deliverer an event as the broker does and wait for the attempt it starts."""
    await deliverer.handle(event)
    await deliverer.pool.join()


async def retried_until(
    status: str, poller: Poller, deliverer: Deliverer, store: Store, event: InstanceState
) -> None:
    """Run the poller's passes and their attempts until the event's delivery is `status`."""

    async def reached() -> bool:
        await poller.tick()
        await deliverer.pool.join()
        return bool(status == (await record_of(store, event))["status"])

    await eventually(reached, timeout=10)


async def test_an_event_is_recorded_and_posted_once_signed(
    bare_store: Store, deliverer: Deliverer, receiver: Receiver
) -> None:
    await hooked_instance(bare_store, receiver)
    event = connected()

    await attempted(deliverer, event)
    await attempted(deliverer, event)  # delivered again by the broker

    assert 1 == len(receiver.requests)
    posted = receiver.requests[0]
    stamp = int(posted.headers["webhook-timestamp"])
    signature = standard_signature(event.id, stamp, posted.body, SECRET)
    assert (event.id, signature) == (
        posted.headers["webhook-id"],
        posted.headers["webhook-signature"],
    )
    record = await record_of(bare_store, event)
    assert ("delivered", 1, 204) == (
        record["status"],
        record["attemptCount"],
        record["lastStatusCode"],
    )
    assert "instance.connected" == record["event"]


async def test_a_burst_of_one_instances_events_reads_its_settings_once_and_nothing_is_kept(
    store_alone: str, bare_store: Store, receiver: Receiver
) -> None:
    await hooked_instance(bare_store, receiver)
    proxy = StoreProxy(urlsplit(store_alone).port or 27017)
    await proxy.start()
    through_proxy = Store(proxy.uri, bare_store.db.name)
    http = Outbound(allow_private=True, timeout=5)
    policy = Policy(timeout=5, schedule=SCHEDULE, jitter=0.0, disable_after=3600)
    deliverer = Deliverer(
        Records(through_proxy, lease_seconds=30), http, policy, concurrency=2, keyring=Keyring("")
    )
    try:
        proxy.hold("find", "instances")
        burst = [connected() for _ in range(10)]
        handled = asyncio.gather(*(deliverer.handle(event) for event in burst))

        async def one_read_held() -> bool:
            return proxy.held == 1  # every event of the burst is already waiting by then

        await eventually(one_read_held, timeout=10)
        proxy.release()
        await handled
        await deliverer.pool.join()
        reads = proxy.seen["find", "instances"]
        await bare_store.instances.update_one(
            {"_id": "i"}, {"$set": {"webhookEvents": ["message.status"]}}
        )
        late = connected()
        await attempted(deliverer, late)
    finally:
        await deliverer.pool.close(1)
        await http.close()
        await through_proxy.close()
        await proxy.close()

    assert 1 == reads
    assert {e.id for e in burst} == {r.headers["webhook-id"] for r in receiver.requests}
    assert None is await bare_store.webhook_deliveries.find_one({"_id": late.id})


async def test_records_created_together_share_one_insert_and_a_repeat_finds_its_record(
    bare_store: Store,
) -> None:
    records = Records(bare_store, lease_seconds=30)
    fields = [
        {"_id": f"e{n}", "tenantId": "t", "instanceName": "i", "url": "u", "body": "{}"}
        for n in range(20)
    ]

    created = await asyncio.gather(*(records.create(f, f"claim{f['_id']}") for f in fields))
    assert (
        2 == grouped_inserts(bare_store, bare_store.webhook_deliveries).writes
    )  # the first alone, the 19 made meanwhile together
    again, fresh = await records.create(fields[3], "another")

    assert [(f"e{n}", f"claime{n}", True) for n in range(20)] == [
        (record["_id"], record["claim"], was_created) for record, was_created in created
    ]
    assert ("claime3", False) == (again["claim"], fresh)
    assert 20 == await bare_store.webhook_deliveries.count_documents({"status": "pending"})


async def test_outcomes_recorded_together_each_say_whether_their_claim_held(
    bare_store: Store,
) -> None:
    records = Records(bare_store, lease_seconds=30)
    for n in range(3):
        fields = {"_id": f"e{n}", "tenantId": "t", "instanceName": "i", "url": "u", "body": "{}"}
        await records.create(fields, f"mine{n}")
    await bare_store.webhook_deliveries.update_one({"_id": "e1"}, {"$set": {"claim": "theirs"}})

    held = await asyncio.gather(
        *(records.finish(f"e{n}", f"mine{n}", None, "dead", error="x") for n in range(3))
    )

    assert [True, False, True] == held
    assert 1 == grouped_updates(bare_store, bare_store.webhook_deliveries).writes
    stored = bare_store.webhook_deliveries.find({}, {"status": 1, "claim": 1}).sort("_id", 1)
    assert [("dead", None), ("pending", "theirs"), ("dead", None)] == [
        (r["status"], r["claim"]) async for r in stored
    ]


async def test_an_event_the_instance_does_not_want_is_not_recorded(
    bare_store: Store, deliverer: Deliverer, receiver: Receiver
) -> None:
    await hooked_instance(bare_store, receiver, webhookEvents=["message.status"])
    event = connected()

    await attempted(deliverer, event)

    assert await bare_store.webhook_deliveries.find_one({"_id": event.id}) is None
    assert [] == receiver.requests


async def test_a_failed_attempt_is_retried_on_the_schedule_until_it_succeeds(
    bare_store: Store, deliverer: Deliverer, poller: Poller, receiver: Receiver
) -> None:
    receiver.answer = lambda _: 500
    await hooked_instance(bare_store, receiver)
    event = connected()

    await attempted(deliverer, event)

    record = await record_of(bare_store, event)
    first = record["attempts"][0]["at"]
    assert ("retrying", 500) == (record["status"], record["lastStatusCode"])
    assert timedelta(seconds=SCHEDULE[0]) - timedelta(milliseconds=1) <= (
        record["nextAttemptAt"] - first
    )
    assert record["nextAttemptAt"] - first <= timedelta(seconds=SCHEDULE[0] + 0.01)
    assert 0 == await poller.tick()  # not due yet

    receiver.answer = lambda _: 204

    await retried_until("delivered", poller, deliverer, bare_store, event)
    record = await record_of(bare_store, event)
    assert [500, 204] == [attempt["statusCode"] for attempt in record["attempts"]]
    assert 2 == len(receiver.requests)


async def test_a_delivery_is_given_up_after_the_last_scheduled_retry(
    bare_store: Store, deliverer: Deliverer, poller: Poller, receiver: Receiver
) -> None:
    receiver.answer = lambda _: 503
    await hooked_instance(bare_store, receiver)
    event = connected()
    await attempted(deliverer, event)

    await retried_until("dead", poller, deliverer, bare_store, event)
    record = await record_of(bare_store, event)
    assert (1 + len(SCHEDULE), None) == (record["attemptCount"], record["nextAttemptAt"])
    assert 1 + len(SCHEDULE) == len(receiver.requests)


async def test_a_retry_after_longer_than_the_schedule_wins(
    bare_store: Store, deliverer: Deliverer, receiver: Receiver
) -> None:
    receiver.answer = lambda _: 429
    receiver.reply_headers = lambda _: {"Retry-After": "120"}
    await hooked_instance(bare_store, receiver)
    event = connected()

    await attempted(deliverer, event)

    record = await record_of(bare_store, event)
    waited = record["nextAttemptAt"] - record["attempts"][0]["at"]
    assert "retrying" == record["status"]
    assert timedelta(seconds=119) <= waited <= timedelta(seconds=121)


async def test_an_endpoint_answering_gone_is_disabled_and_its_delivery_dead(
    bare_store: Store, deliverer: Deliverer, receiver: Receiver
) -> None:
    receiver.answer = lambda _: 410
    await hooked_instance(bare_store, receiver)
    event = connected()

    await attempted(deliverer, event)
    later = InstanceState(tenantId="t", instanceName="i", state="close")
    await attempted(deliverer, later)

    assert "dead" == (await record_of(bare_store, event))["status"]
    instance = await bare_store.instances.find_one({"_id": "i"})
    assert instance is not None
    assert (False, "endpoint answered 410 Gone") == (
        instance["webhookEnabled"],
        instance["webhookDisabledReason"],
    )
    # Recorded dead without a post, to be replayed once the endpoint is enabled again.
    stored = await record_of(bare_store, later)
    assert ("dead", DISABLED_ERROR, 0) == (
        stored["status"],
        stored["lastError"],
        stored["attemptCount"],
    )
    notice = await bare_store.webhook_deliveries.find_one({"event": "instance.webhook_disabled"})
    assert notice is not None and "dead" == notice["status"]
    assert 1 == len(receiver.requests)
