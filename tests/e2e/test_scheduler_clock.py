"""The scheduler on an injected clock, against the real store and broker: caps over an hour."""

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from operator import itemgetter
from typing import Any, cast

import pytest

from lane_scheduler.ownership import SHARDS, Ownership, assign, shard_of
from lane_scheduler.scheduler import Scheduler
from lanegate.broker import Broker
from lanegate.events import (
    InstanceConfigured,
    InstanceState,
    MessageAccepted,
    MessageCanceled,
    MessageStatus,
    handed_back,
)
from lanegate.store import Store
from lanegate.store.grouped import grouped_updates
from tests.conftest import AMQP_URL
from tests.support.gateway import eventually, hearing

pytestmark = pytest.mark.e2e

INSTANCE = "clock__support__main"
GONE = "clock__support__gone"  # deleted after accepting messages: no instance document


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        # Whole seconds: times pass through stored datetimes (microseconds) and events, and a
        # send time rounded up past a clock that never moves would hold its line forever.
        self.now = float(int(time.time()))

    def __call__(self) -> float:
        return self.now


def _at(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


async def _seed(store: Store, clock: Clock, lanes: dict[str, Any], count: int) -> list[str]:
    await store.instances.insert_one(
        {
            "_id": INSTANCE,
            "tenantId": "clock",
            "provider": "sandbox",
            "state": "open",
            "lanes": lanes,
            "timezone": "UTC",
        }
    )
    ids = [f"m{i}" for i in range(count)]
    for i, message_id in enumerate(ids):
        queued = _at(clock.now - 60 + i)
        await store.messages.insert_one(
            {
                "_id": message_id,
                "tenantId": "clock",
                "instanceName": INSTANCE,
                "to": "5491100000004",
                "lane": "normal",
                "priority": 5,
                "status": "pending",
                "queuedAt": queued,
                "createdAt": queued,
            }
        )
    return ids


async def _play_sender(store: Store, scheduler: Scheduler, clock: Clock) -> list[str]:
    """Report every dispatched message as sent at the clock's time, until nothing more goes."""
    sent: list[str] = []
    while True:
        scheduler.poke()

        async def dispatched() -> bool:
            return await store.messages.count_documents({"status": "dispatching"}) > 0

        try:
            # Long enough for a loaded machine: the wait that ends each round is the quiet one.
            await eventually(dispatched, timeout=3)
        except TimeoutError:
            return sent
        async for doc in store.messages.find({"status": "dispatching"}):
            await store.messages.update_one(
                {"_id": doc["_id"]}, {"$set": {"status": "sent", "sentAt": _at(clock.now)}}
            )
            await scheduler.handle(
                MessageStatus(
                    occurredAt=_at(clock.now),
                    tenantId="clock",
                    instanceName=INSTANCE,
                    messageId=doc["_id"],
                    status="sent",
                    to=doc["to"],
                    lane=doc["lane"],
                )
            )
            sent.append(doc["_id"])


def _scheduler(store: Store, broker: Broker, clock: Clock, replica: str) -> Scheduler:
    return Scheduler(
        store, broker, replica=replica, dispatch_timeout=60, lease_seconds=6, clock=clock
    )


async def _started(scheduler: Scheduler) -> None:
    """Start a replica and wait until it holds its shards and has loaded them."""
    await scheduler.start()

    async def loaded() -> bool:
        return scheduler.loaded()

    await eventually(loaded)


async def _holding(store: Store, broker: Broker, clock: Clock, replica: str) -> Scheduler:
    """A replica that owns every shard and has loaded its lines; its loops are not running."""
    scheduler = _scheduler(store, broker, clock, replica)
    await scheduler.ownership.prepare()
    await scheduler.balance()
    return scheduler


async def _seeded(
    parts: tuple[Store, Broker], lanes: dict[str, Any], count: int
) -> tuple[Store, Clock, Scheduler]:
    """A clock, `count` seeded messages and a replica holding their line (loops not running)."""
    store, broker = parts
    clock = Clock()
    await _seed(store, clock, lanes, count)
    return store, clock, await _holding(store, broker, clock, "replica-a")


def _first_event(
    clock: Clock, message_id: str, instance: str = INSTANCE, ago: float = 60
) -> MessageAccepted:
    """The message.accepted that first queued a message (a seeded one: a minute ago)."""
    return MessageAccepted(
        occurredAt=_at(clock.now - ago),
        tenantId="clock",
        instanceName=instance,
        messageId=message_id,
        lane="normal",
    )


async def test_caps_survive_a_replica_crash_and_the_rest_goes_when_the_hour_rolls(
    parts: tuple[Store, Broker],
) -> None:
    store, broker = parts
    clock = Clock()
    ids = await _seed(store, clock, {"normal": {"delayMs": [0, 0], "perHour": 2}}, 4)
    first_send = clock.now

    crashed = _scheduler(store, broker, clock, "replica-a")
    await _started(crashed)
    assert ["m0", "m1"] == await _play_sender(store, crashed, clock)
    await crashed.stop(release=False)  # as a crash: its leases stay until they run out

    clock.now += 30
    successor = _scheduler(store, broker, clock, "replica-b")
    await _started(successor)
    try:
        assert [] == await _play_sender(store, successor, clock)
        clock.now = first_send + 3599
        await successor.balance()
        assert [] == await _play_sender(store, successor, clock)

        clock.now = first_send + 3600
        await successor.balance()
        assert ["m2", "m3"] == await _play_sender(store, successor, clock)
    finally:
        await successor.stop()
    statuses = [doc["status"] async for doc in store.messages.find({"_id": {"$in": ids}})]
    assert ["sent"] * 4 == statuses


async def test_a_replica_fenced_out_of_its_shard_sends_nothing_more(
    parts: tuple[Store, Broker],
) -> None:
    store, broker = parts
    old_clock, new_clock = Clock(), Clock()
    await _seed(store, old_clock, {"normal": {"delayMs": [0, 0]}}, 1)
    await store.instances.update_one({"_id": INSTANCE}, {"$set": {"state": "close"}})
    stale = await _holding(store, broker, old_clock, "replica-a")

    # A paused replica: its own clock says its lease is fine, the others' clocks say it ran out.
    new_clock.now += 30
    newer = _scheduler(store, broker, new_clock, "replica-b")
    await _started(newer)
    await newer.stop(release=False)

    await stale.handle(
        InstanceState(
            occurredAt=_at(old_clock.now), tenantId="clock", instanceName=INSTANCE, state="open"
        )
    )
    await stale.tick()

    [message] = [doc async for doc in store.messages.find({"_id": "m0"})]
    record = await store.lane_state.find_one({"_id": INSTANCE})
    assert "pending" == message["status"]
    assert record is not None and "lastDispatchAt" not in record
    assert INSTANCE not in stale.planner


async def test_a_message_decided_while_the_lease_lapsed_goes_once_the_lease_is_renewed(
    parts: tuple[Store, Broker],
) -> None:
    store, clock, scheduler = await _seeded(parts, {"normal": {"delayMs": [0, 0]}}, 1)

    clock.now += 10  # the renewal is late (a store restart): the lease looks lapsed here
    await scheduler.tick()
    [message] = [doc async for doc in store.messages.find({"_id": "m0"})]
    assert "pending" == message["status"]

    await scheduler.balance()  # renewed under the same epoch
    await scheduler.tick()
    [message] = [doc async for doc in store.messages.find({"_id": "m0"})]
    assert "dispatching" == message["status"]


async def _holding_every_shard(store: Store, clock: Clock) -> Ownership:
    """replica-a, alone, after its first pass: it holds every shard."""
    ownership = Ownership(store, "replica-a", clock, lease_seconds=6)
    await ownership.prepare()
    await ownership.balance()
    assert SHARDS == len(ownership.epochs)
    return ownership


async def test_a_released_shard_is_nobodys_until_its_new_owner_is_seen(
    parts: tuple[Store, Broker],
) -> None:
    store, _ = parts
    clock = Clock()
    first = await _holding_every_shard(store, clock)

    await store.scheduler_replicas.insert_one({"_id": "replica-b", "seenAt": _at(clock.now)})
    changes = await first.balance()
    moved = next(iter(changes.lost))
    name = next(f"n{i}" for i in range(10_000) if shard_of(f"n{i}") == moved)
    # Events for it wait for the next pass instead of looping back to this replica.
    assert first.owner_of(name) is None
    assert {
        shard for shard in range(SHARDS) if assign(shard, ["replica-a", "replica-b"]) == "replica-b"
    } == changes.lost


async def test_a_lease_taken_by_another_replica_is_lost_at_the_next_renewal(
    parts: tuple[Store, Broker],
) -> None:
    store, _ = parts
    clock = Clock()
    ownership = await _holding_every_shard(store, clock)
    await store.scheduler_shards.update_one(
        {"_id": 5}, {"$set": {"owner": "replica-z"}, "$inc": {"epoch": 1}}
    )
    clock.now += 1
    changes = await ownership.balance()
    assert {5} == changes.lost
    assert 5 not in ownership.epochs
    renewed = [doc async for doc in store.scheduler_shards.find({"owner": "replica-a"})]
    assert SHARDS - 1 == len(renewed)
    assert all(
        doc["until"].timestamp() == pytest.approx(clock.now + 6, abs=0.01) for doc in renewed
    )


async def test_a_holder_whose_renewal_is_late_is_still_where_its_events_go(
    parts: tuple[Store, Broker],
) -> None:
    # On a slow store renewals come late; sending the events round the retry queue meanwhile
    # spent their attempts (the long fault run, seed 562073120).
    store, _ = parts
    clock = Clock()
    holder = await _holding_every_shard(store, clock)
    other = Ownership(store, "replica-b", clock, lease_seconds=6)
    changes = await other.rebalance()  # reads whose the leases are; takes none of them
    assert (set(), {}) == (changes.lost, changes.gained)

    clock.now += 30  # both see replica-a's leases as lapsed: it has not renewed them
    name = "late__support__main"
    assert holder.epoch(name) is None
    assert ("replica-a", "replica-a") == (holder.owner_of(name), other.owner_of(name))


async def test_an_event_for_a_shard_whose_renewal_is_late_waits_for_the_renewal(
    parts: tuple[Store, Broker],
) -> None:
    store, clock, scheduler = await _seeded(parts, {"normal": {"delayMs": [0, 0]}}, 0)
    await store.messages.insert_one(
        {
            "_id": "late",
            "tenantId": "clock",
            "instanceName": INSTANCE,
            "to": "5491100000004",
            "lane": "normal",
            "priority": 5,
            "status": "pending",
            "queuedAt": _at(clock.now),
            "createdAt": _at(clock.now),
        }
    )
    clock.now += 10  # the lease looks lapsed until the next renewal
    handling = asyncio.create_task(scheduler.handle(_first_event(clock, "late", ago=0)))
    await asyncio.sleep(0.5)
    assert not handling.done()  # not sent round the retry queue: it waits for the renewal

    await scheduler.balance()
    await handling
    await scheduler.tick()
    [message] = [doc async for doc in store.messages.find({"_id": "late"})]
    assert "dispatching" == message["status"]


async def test_a_shard_claimed_again_sends_nothing_until_its_new_load(
    parts: tuple[Store, Broker],
) -> None:
    # Lines planned under the earlier claim went under the new epoch before the new load
    # stamped it, were fenced out, and the shard was claimed again, round after round.
    store, _, scheduler = await _seeded(parts, {"normal": {"delayMs": [0, 0]}}, 1)
    shard = shard_of(INSTANCE)
    scheduler.ownership.forget(shard)  # lost (a renewal too late); the lease still names it
    async with scheduler._shards._load_lock:  # the new claim's load waits on a slow store
        await scheduler._shards._ownership_pass()
        assert shard in scheduler.ownership.epochs
        await scheduler.tick()
        assert [] == [doc async for doc in store.messages.find({"status": "dispatching"})]
        assert shard in scheduler.ownership.epochs  # not fenced out by its own claim

    await scheduler.balance()
    await scheduler.tick()
    [message] = [doc async for doc in store.messages.find({"_id": "m0"})]
    assert "dispatching" == message["status"]


async def test_after_a_reconnect_a_message_whose_event_was_lost_is_found_and_sent(
    parts: tuple[Store, Broker],
) -> None:
    store, broker = parts
    clock = Clock()
    await _seed(store, clock, {"normal": {"delayMs": [0, 0]}}, 0)
    scheduler = _scheduler(store, broker, clock, "replica-a")
    await _started(scheduler)
    try:
        # Stored as accepted, but its event was lost (forwarded into a private queue that
        # went with the connection): nothing tells the scheduler about it.
        await store.messages.insert_one(
            {
                "_id": "lost",
                "tenantId": "clock",
                "instanceName": INSTANCE,
                "to": "5491100000004",
                "lane": "normal",
                "priority": 5,
                "status": "pending",
                "queuedAt": _at(clock.now),
                "createdAt": _at(clock.now),
            }
        )
        await broker.connection.reconnect()

        async def dispatched() -> bool:
            message = await store.messages.find_one({"_id": "lost"})
            return message is not None and "dispatching" == message["status"]

        await eventually(dispatched, timeout=10)
    finally:
        await scheduler.stop()


class Crash(Exception):
    """The replica dies here."""


async def test_a_replica_killed_right_after_a_claim_has_counted_that_send(
    parts: tuple[Store, Broker],
) -> None:
    store, broker = parts
    clock = Clock()
    ids = await _seed(store, clock, {"normal": {"delayMs": [0, 0], "perHour": 2}}, 3)
    crashed = await _holding(store, broker, clock, "replica-a")
    claims = grouped_updates(store, store.messages)
    claim = claims.update_and_read

    async def claim_then_die(*args: Any, **kwargs: Any) -> Any:
        await claim(*args, **kwargs)
        raise Crash

    claims.update_and_read = claim_then_die  # type: ignore[method-assign]
    try:
        with pytest.raises(Crash):
            await crashed.tick()
    finally:
        del claims.update_and_read
    assert ["dispatching", "pending", "pending"] == [
        doc["status"] async for doc in store.messages.find({"_id": {"$in": ids}})
    ]

    # Its successor finds the claimed message in flight: with it, the cap has room for one.
    clock.now += 30
    successor = _scheduler(store, broker, clock, "replica-b")
    await _started(successor)
    try:
        assert ["m0", "m1"] == sorted(await _play_sender(store, successor, clock))
    finally:
        await successor.stop()
    assert ["sent", "sent", "pending"] == [
        doc["status"] async for doc in store.messages.find({"_id": {"$in": ids}})
    ]


async def test_a_late_copy_of_a_messages_first_event_does_not_free_its_slot(
    parts: tuple[Store, Broker],
) -> None:
    store, clock, scheduler = await _seeded(parts, {"normal": {"delayMs": [60_000, 60_000]}}, 2)
    await scheduler.tick()
    assert scheduler.planner.in_flight(INSTANCE, "m0")

    # The event that first queued m0, delivered again (its consumer crashed before the ack).
    accepted = _first_event(clock, "m0")
    await scheduler.handle(accepted)
    await scheduler.tick()
    assert scheduler.planner.in_flight(INSTANCE, "m0")
    assert ["dispatching", "pending"] == [doc["status"] async for doc in store.messages.find({})]

    # Handed back by provider-sender (deferred): now the slot is free again.
    await store.messages.update_one({"_id": "m0"}, {"$set": {"status": "deferred"}})
    await scheduler.handle(accepted)
    assert not scheduler.planner.in_flight(INSTANCE, "m0")


async def test_a_hand_back_frees_the_slot_once_the_store_says_the_message_came_back(
    parts: tuple[Store, Broker],
) -> None:
    store, clock, scheduler = await _seeded(parts, {"normal": {"delayMs": [60_000, 60_000]}}, 2)
    await scheduler.tick()
    message = await store.messages.find_one({"_id": "m0"})
    assert message is not None
    back = handed_back(message, at=_at(clock.now))

    # A copy of an earlier hand-back while m0 is on its way again: its slot stays taken.
    await scheduler.handle(back)
    assert scheduler.planner.in_flight(INSTANCE, "m0")

    await store.messages.update_one({"_id": "m0"}, {"$set": {"status": "deferred"}})
    await scheduler.handle(back)
    assert not scheduler.planner.in_flight(INSTANCE, "m0")


async def test_a_late_copy_arriving_while_the_claim_is_out_does_not_free_the_slot(
    parts: tuple[Store, Broker],
) -> None:
    # Between the decision and the claim's answer the store still says `pending`.
    store, clock, scheduler = await _seeded(parts, {"normal": {"delayMs": [60_000, 60_000]}}, 2)
    copy = _first_event(clock, "m0")
    claim = store.messages.find_one_and_update

    async def copy_then_claim(*args: Any, **kwargs: Any) -> Any:
        if args[0].get("_id") == "m0" and args[0].get("status") == "pending":
            await scheduler.handle(copy)
        return await claim(*args, **kwargs)

    store.messages.find_one_and_update = copy_then_claim  # type: ignore[method-assign]
    try:
        await scheduler.tick()
    finally:
        del store.messages.find_one_and_update
    assert scheduler.planner.in_flight(INSTANCE, "m0")
    assert 1 == scheduler.planner.depth()["normal"]  # m1 only: m0 is not waiting again


async def test_a_message_a_flush_withdrew_holds_its_line_until_its_outcome(
    parts: tuple[Store, Broker],
) -> None:
    # Tried once, so a flush hands it to provider-sender (`dispatching`) instead of
    # canceling it; the scheduler, which still had it waiting, must not send past it.
    store, _, scheduler = await _seeded(parts, {"normal": {"delayMs": [0, 0]}}, 2)
    await store.messages.update_one(
        {"_id": "m0"}, {"$set": {"status": "dispatching", "withdraw": "canceled"}}
    )
    await scheduler.tick()
    await scheduler.tick()
    assert scheduler.planner.in_flight(INSTANCE, "m0")
    assert ["dispatching", "pending"] == [doc["status"] async for doc in store.messages.find({})]

    await store.messages.update_one({"_id": "m0"}, {"$set": {"status": "canceled"}})
    await scheduler.handle(
        MessageCanceled(tenantId="clock", instanceName=INSTANCE, messageId="m0", status="canceled")
    )
    await scheduler.tick()
    assert ["canceled", "dispatching"] == [doc["status"] async for doc in store.messages.find({})]


async def test_after_a_reconnect_the_instance_state_is_read_again(
    parts: tuple[Store, Broker],
) -> None:
    store, broker = parts
    clock = Clock()
    await _seed(store, clock, {"normal": {"delayMs": [0, 0]}}, 0)
    scheduler = _scheduler(store, broker, clock, "replica-a")
    await _started(scheduler)
    try:
        assert "open" == scheduler.planner.queue_of(INSTANCE).state
        # The instance closed and its event was lost with the connection.
        await store.instances.update_one(
            {"_id": INSTANCE}, {"$set": {"state": "close", "stateChangedAt": _at(clock.now)}}
        )
        await broker.connection.reconnect()

        async def closed() -> bool:
            return "close" == scheduler.planner.queue_of(INSTANCE).state

        await eventually(closed, timeout=10)
    finally:
        await scheduler.stop()


async def _accepted_for_gone(
    store: Store, clock: Clock, message_id: str, instance: str = GONE, **fields: Any
) -> MessageAccepted:
    """Store a message accepted for an instance as its delete ran (after its send had read
    the instance, before it stored the message); returns the event that announces it."""
    await store.messages.insert_one(
        {
            "_id": message_id,
            "tenantId": "clock",
            "instanceName": instance,
            "to": "5491100000004",
            "lane": "normal",
            "priority": 5,
            "status": "pending",
            "queuedAt": _at(clock.now),
            "createdAt": _at(clock.now),
            **fields,
        }
    )
    return _first_event(clock, message_id, instance, ago=0)


async def test_a_message_accepted_for_a_deleted_instance_is_canceled_and_a_copy_does_nothing(
    parts: tuple[Store, Broker],
) -> None:
    store, broker = parts
    clock = Clock()
    scheduler = await _holding(store, broker, clock, "replica-a")
    accepted = await _accepted_for_gone(store, clock, "late")

    async with hearing(AMQP_URL, broker.namespace, "message.canceled") as next_event:
        await scheduler.handle(accepted)
        assert ("late", "canceled") == itemgetter("messageId", "status")(await next_event())
    canceled_at = _at(clock.now)
    clock.now += 2
    await scheduler.handle(accepted)  # delivered again (its consumer crashed before the ack)

    [message] = [doc async for doc in store.messages.find({"_id": "late"})]
    assert ("canceled", canceled_at) == (message["status"], message["canceledAt"])
    assert GONE not in scheduler.planner


async def test_a_replica_loading_its_shards_ends_the_waiting_messages_of_a_deleted_instance(
    parts: tuple[Store, Broker],
) -> None:
    store, broker = parts
    clock = Clock()
    await _accepted_for_gone(store, clock, "untried")
    await _accepted_for_gone(store, clock, "awaiting", status="pending_approval")
    await _accepted_for_gone(store, clock, "tried", attempts=1)  # the phone may have it
    await _accepted_for_gone(store, clock, "on_its_way", status="sending")

    async with (
        hearing(AMQP_URL, broker.namespace, "message.canceled") as next_canceled,
        hearing(AMQP_URL, broker.namespace, "message.dispatch") as next_dispatch,
    ):
        await _holding(store, broker, clock, "replica-a")
        told = {(await next_canceled())["messageId"], (await next_canceled())["messageId"]}
        assert {"untried", "awaiting"} == told
        assert "tried" == (await next_dispatch())["messageId"]  # provider-sender asks the phone

    found = {
        doc["_id"]: (doc["status"], doc.get("withdraw")) async for doc in store.messages.find()
    }
    assert {
        "untried": ("canceled", None),
        "awaiting": ("canceled", None),
        "tried": ("dispatching", "canceled"),
        "on_its_way": ("sending", None),
    } == found


async def test_a_deleted_instances_line_is_dropped_and_what_it_still_held_canceled(
    parts: tuple[Store, Broker],
) -> None:
    # m0 was accepted while the delete ran: the scheduler had queued it, the delete missed it.
    store, broker = parts
    clock = Clock()
    await _seed(store, clock, {"normal": {"delayMs": [0, 0]}}, 1)
    scheduler = await _holding(store, broker, clock, "replica-a")
    await store.instances.delete_one({"_id": INSTANCE})

    async with hearing(AMQP_URL, broker.namespace, "message.canceled") as next_event:
        await scheduler.handle(InstanceConfigured(tenantId="clock", instanceName=INSTANCE))
        assert ("m0", "canceled") == itemgetter("messageId", "status")(await next_event())
    assert INSTANCE not in scheduler.planner
    assert ["canceled"] == [doc["status"] async for doc in store.messages.find({})]


class DeletedWhileRead:
    """The instances collection, where the first read of `name` returns the document as it
    was after the document is deleted and `meanwhile` has run: a delete that lands while an
    event loads the instance, and the delete's `instance.configured` handled meanwhile."""

    def __init__(
        self, real: Any, name: str, meanwhile: Callable[[], Awaitable[None]], *, later: bool
    ) -> None:
        self.real, self.name, self.later = real, name, later
        self.meanwhile: Callable[[], Awaitable[None]] | None = meanwhile
        self.running: set[asyncio.Task[None]] = set()

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self.real, attribute)

    async def find_one(self, query: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        found = await self.real.find_one(query, *args, **kwargs)
        if query.get("_id") == self.name and self.meanwhile is not None:
            meanwhile, self.meanwhile = self.meanwhile, None
            await self.real.delete_one({"_id": self.name})
            if self.later:  # the load goes on (its line appears) while `meanwhile` runs
                self.running.add(asyncio.ensure_future(meanwhile()))
            else:
                await meanwhile()
        return found


@pytest.mark.parametrize(
    ("loading", "later"),
    [
        ("the logout's instance.state", False),
        ("the delete's announcement", False),
        ("the logout's instance.state", True),  # the line appears while the load goes on
    ],
)
async def test_events_loading_an_instance_together_see_its_delete(
    parts: tuple[Store, Broker], loading: str, later: bool
) -> None:
    # Two events of an instance the replica has not loaded yet: the logout's state change and
    # the delete's announcement. One starts the load, which reads the instance just before
    # the delete; the other arrives meanwhile and waits on the same load.
    store, broker = parts
    clock = Clock()
    scheduler = await _holding(store, broker, clock, "replica-a")
    brief = "clock__support__brief"  # created after the replica loaded, deleted at once
    await store.instances.insert_one({"_id": brief, "tenantId": "clock", "provider": "sandbox"})
    logged_out = InstanceState(
        occurredAt=_at(clock.now), tenantId="clock", instanceName=brief, state="close"
    )
    announced = InstanceConfigured(tenantId="clock", instanceName=brief)
    first, meanwhile = (
        (logged_out, announced) if loading.startswith("the logout") else (announced, logged_out)
    )
    handled: list[asyncio.Task[None]] = []

    async def arrives_meanwhile() -> None:
        handled.append(asyncio.create_task(scheduler.handle(meanwhile)))
        await asyncio.wait(handled, timeout=0.5)

    deleted = DeletedWhileRead(store.instances, brief, arrives_meanwhile, later=later)
    store.instances = cast(Any, deleted)
    await scheduler.handle(first)
    await asyncio.gather(*deleted.running)
    await asyncio.gather(*handled)
    assert brief not in scheduler.planner  # no line left for a deleted instance

    late = await _accepted_for_gone(store, clock, "late", brief)
    async with hearing(AMQP_URL, broker.namespace, "message.canceled") as next_event:
        await scheduler.handle(late)
        assert "late" == (await next_event())["messageId"]
