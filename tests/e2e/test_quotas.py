"""Per-tenant quotas: instances (403) and messages per UTC day (429 until midnight), counted in
the store, all or nothing for bulk; the day's count taken in blocks against the real store."""

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest

from ingress_api.accept.counter_blocks import REREAD_SECONDS
from ingress_api.accept.quotas import MessageCounter, MonthCounter
from lanegate.errors import MessageQuotaExceeded, MonthlyMessageQuotaExceeded
from lanegate.store import Store
from tests.support.counting import CountsReservations
from tests.support.gateway import Gateway
from tests.support.receiver import Receiver

pytestmark = pytest.mark.e2e

TO = "5491112345678"


async def _tenant(gateway: Gateway, **quotas: int) -> tuple[str, str]:
    tenant_id = f"q{datetime.now(UTC).strftime('%H%M%S%f')}"
    status, body = await gateway.call(
        "POST",
        "/admin/tenants",
        json={"id": tenant_id, "name": tenant_id, **quotas},
        headers={"apikey": gateway.admin_key},
    )
    assert 201 == status, body
    return tenant_id, body["apiKey"]


async def _messages(gateway: Gateway, tenant_id: str) -> int:
    async with gateway.mongo() as client:
        return await client.lanegate_test.messages.count_documents({"tenantId": tenant_id})


async def test_instance_quota_gives_403_and_the_operator_can_raise_it(
    gateway: Gateway, receiver: Receiver
) -> None:
    tenant_id, key = await _tenant(gateway, maxInstances=1)
    await gateway.instance(tenant_id, key, receiver.url(), connect=False)
    body = {
        "instanceName": f"{tenant_id}__support__second",
        "webhookUrl": receiver.url(),
        "webhookSecret": "s" * 20,
    }
    status, answer = await gateway.call("POST", "/instance/create", key=key, json=body)
    assert (403, "QUOTA_EXCEEDED") == (status, answer["code"])
    assert "1 instances" in answer["error"]
    async with gateway.mongo() as client:
        held = await client.lanegate_test.instances.count_documents({"tenantId": tenant_id})
    assert 1 == held
    status, view = await gateway.call(
        "PATCH",
        f"/admin/tenants/{tenant_id}",
        json={"maxInstances": 2},
        headers={"apikey": gateway.admin_key},
    )
    assert (200, 2) == (status, view["maxInstances"])
    status, _ = await gateway.call("POST", "/instance/create", key=key, json=body)
    assert 201 == status


async def test_daily_message_quota_covers_every_send_and_bulk_is_all_or_nothing(
    gateway: Gateway, receiver: Receiver
) -> None:
    tenant_id, key = await _tenant(gateway, maxMessagesPerDay=3)
    name = await gateway.instance(tenant_id, key, receiver.url(), connect=False)
    text = {"instanceName": name, "to": TO, "text": "hi"}

    async def send(path: str, body: dict[str, Any]) -> tuple[int, Any]:
        return await gateway.call("POST", path, key=key, json=body)

    assert 202 == (await send("/message/text", {**text, "externalId": "once"}))[0]
    # A repeat of an accepted externalId is no new message and costs nothing.
    assert 200 == (await send("/message/text", {**text, "externalId": "once"}))[0]
    routed = {"tenantId": tenant_id, "clientId": "support", "to": TO, "text": "hi", "type": "text"}
    assert 202 == (await send("/message/send", routed))[0]
    status, answer = await send("/message/bulk", {"messages": [text, text]})
    assert (429, "QUOTA_EXCEEDED") == (status, answer["code"])
    assert 2 == await _messages(gateway, tenant_id)
    assert 202 == (await send("/message/bulk", {"messages": [text]}))[0]
    status, answer = await send("/message/text", text)
    assert (429, "QUOTA_EXCEEDED") == (status, answer["code"])
    assert 3 == await _messages(gateway, tenant_id)


async def test_quota_answer_says_when_the_day_rolls_over(
    gateway: Gateway, receiver: Receiver
) -> None:
    tenant_id, key = await _tenant(gateway, maxMessagesPerDay=0)
    name = await gateway.instance(tenant_id, key, receiver.url(), connect=False)
    now = datetime.now(UTC)
    midnight = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            gateway.api + "/message/text",
            json={"instanceName": name, "to": TO, "text": "hi"},
            headers={"apikey": key},
        ) as response,
    ):
        answer = await response.json()
        wait = int(response.headers["Retry-After"])
    assert (429, "QUOTA_EXCEEDED") == (response.status, answer["code"])
    assert abs((midnight - now).total_seconds() - wait) < 30
    assert midnight.isoformat() in answer["error"]
    assert 0 == await _messages(gateway, tenant_id)


class CountingCounter(CountsReservations, MessageCounter):
    """A message counter that counts its store round trips."""


NOON = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0).timestamp()


async def _accepted(counter: MessageCounter, store: Store, limit: int, count: int) -> int:
    """How many of `count` messages the counter took at NOON: all or none."""
    try:
        await counter.reserve(store, "tenant", limit, count, NOON)
    except MessageQuotaExceeded:
        return 0
    return count


async def _sends(counter: MessageCounter, store: Store, limit: int, sends: int) -> int:
    """Single sends one after another, the loop turning between them as between requests."""
    accepted = 0
    for _ in range(sends):
        accepted += await _accepted(counter, store, limit, 1)
        await asyncio.sleep(0)
    return accepted


async def test_single_sends_take_the_day_in_blocks(store: Store) -> None:
    counter = CountingCounter()
    assert 100 == await _sends(counter, store, 100_000, 100)
    await counter.topped_up()
    # Blocks of 50, the next reserved when 24 are left: the 26th and the 76th sends.
    assert 3 == counter.reservations
    stored = await store.tenant_usage.find_one({})
    day = datetime.fromtimestamp(NOON, UTC).date()
    expires = datetime.combine(day + timedelta(days=2), datetime.min.time(), UTC)
    assert {
        "_id": f"tenant:{day.isoformat()}",
        "tenantId": "tenant",
        "day": day.isoformat(),
        "count": 150,
        "expiresAt": expires,
    } == stored


class GatedCounter(MessageCounter):
    """Its reservations after the first wait until the test opens the gate."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.reservations = 0

    async def _reserve(self, *args: Any) -> None:
        self.reservations += 1
        if self.reservations > 1:
            await self.gate.wait()
        await super()._reserve(*args)


async def test_a_busy_block_is_topped_up_without_a_send_waiting_on_the_store(
    store: Store,
) -> None:
    counter = GatedCounter()
    async with asyncio.timeout(10):  # a send that waited on the held-up reservation hangs
        assert 50 == await _sends(counter, store, 100_000, 50)
    # The 26th send left less than half a block: the next one is being reserved.
    assert 2 == counter.reservations
    counter.gate.set()
    await counter.topped_up()
    assert 25 == await _sends(counter, store, 100_000, 25)
    assert 2 == counter.reservations
    # A process that stops waits for its top-ups, then returns what it holds.
    assert 1 == await _accepted(counter, store, 100_000, 1)  # 24 left: one more top-up
    await counter.close(store)
    assert 3 == counter.reservations
    assert [76] == [d["count"] async for d in store.tenant_usage.find({})]


async def test_two_replicas_never_accept_more_than_the_day_holds(store: Store) -> None:
    replicas = [CountingCounter(), CountingCounter()]
    sizes = [1, 3, 1, 7, 1, 20] * 8 + [1] * 40
    accepted = [await _accepted(replicas[n % 2], store, 150, size) for n, size in enumerate(sizes)]
    # Single sends at the end use up what either replica still holds: exactly the limit.
    assert 150 == sum(accepted)
    assert sum(r.reservations for r in replicas) < len(sizes) // 2


async def test_a_bulk_larger_than_what_is_left_is_refused_whole(store: Store) -> None:
    a, b = CountingCounter(), CountingCounter()
    assert 4 == await _accepted(b, store, 10, 4)
    # A reserves 7 but only 6 fit under the limit: refused, and the 6 stay with A.
    assert 0 == await _accepted(a, store, 10, 7)
    assert 6 == await _accepted(a, store, 10, 6)
    assert (0, 0) == (await _accepted(a, store, 10, 1), await _accepted(b, store, 10, 1))
    assert (1, 2) == (a.reservations, b.reservations)


async def test_released_messages_can_be_sent_again_without_a_round_trip(store: Store) -> None:
    counter = CountingCounter()
    reservation = await counter.reserve(store, "tenant", 5, 5, NOON)
    await reservation.release(store)
    reservation = await counter.reserve(store, "tenant", 5, 5, NOON)
    await reservation.release(store, 2)
    assert [2, 0] == [await _accepted(counter, store, 5, n) for n in (2, 1)]
    assert 1 == counter.reservations


async def test_more_than_a_block_given_back_goes_to_the_store_for_every_replica(
    store: Store,
) -> None:
    a, b = MessageCounter(), MessageCounter()
    bulk = await a.reserve(store, "tenant", 1000, 1000, NOON)
    assert 0 == await _accepted(b, store, 1000, 1)  # b reads the day full
    await bulk.release(store)  # its accept failed: the client sends it again, maybe to b
    await asyncio.sleep(REREAD_SECONDS)  # b trusts its read of the counter that long
    assert 950 == await _accepted(b, store, 1000, 950)
    assert 50 == await _accepted(a, store, 1000, 50)  # the block a kept
    assert [1000] == [d["count"] async for d in store.tenant_usage.find({})]


async def test_a_process_that_stops_returns_what_it_holds(store: Store) -> None:
    stopping, staying = MessageCounter(), MessageCounter()
    assert 1 == await _accepted(stopping, store, 100, 1)  # its block holds the rest
    await stopping.close(store)
    assert [1] == [d["count"] async for d in store.tenant_usage.find({})]
    assert 99 == await _accepted(staying, store, 100, 99)


async def test_a_bulk_is_taken_whole_beside_a_single_send_taking_from_the_block(
    store: Store,
) -> None:
    counter = MessageCounter()
    assert 1 == await _accepted(counter, store, 100_000, 1)  # the block now holds 49
    # The bulk reserves what it lacks; meanwhile the single send takes one of the 49.
    bulk, single = await asyncio.gather(
        _accepted(counter, store, 100_000, 1000), _accepted(counter, store, 100_000, 1)
    )
    assert (1000, 1) == (bulk, single)


async def test_the_next_day_counts_afresh_and_keeps_the_days_apart(store: Store) -> None:
    counter = MessageCounter()
    yesterday = await counter.reserve(store, "tenant", 3, 3, NOON - 86_400)
    await counter.reserve(store, "tenant", 3, 3, NOON)
    # Messages of a day that has ended are not given to the next.
    await yesterday.release(store)
    assert 0 == await _accepted(counter, store, 3, 1)
    assert [3, 3] == [d["count"] async for d in store.tenant_usage.find({}).sort("day")]


async def test_a_month_counter_counts_calendar_months_and_says_when_the_next_begins(
    store: Store,
) -> None:
    counter = MonthCounter()
    # The last day of a month, late: its window is the month, not a fixed count of seconds.
    last_day = datetime(2027, 1, 31, 23, 0, tzinfo=UTC).timestamp()
    await counter.reserve(store, "tenant", 3, 2, datetime(2027, 1, 1, tzinfo=UTC).timestamp())
    with pytest.raises(MonthlyMessageQuotaExceeded) as refused:
        await counter.reserve(store, "tenant", 3, 2, last_day)
    # Retry-After: whole seconds to February, rounded up.
    assert "3601" == refused.value.headers["Retry-After"]
    assert "maxMessagesPerMonth" == refused.value.body()["limit"]
    await counter.reserve(store, "tenant", 3, 1, last_day)
    # February starts afresh, in a counter of its own.
    await counter.reserve(store, "tenant", 3, 3, datetime(2027, 2, 1, tzinfo=UTC).timestamp())
    await counter.close(store)
    assert [("2027-01", 3), ("2027-02", 3)] == [
        (d["month"], d["count"]) async for d in store.tenant_usage.find({}).sort("month")
    ]


async def test_a_lowered_limit_holds_though_the_process_holds_counts_reserved_under_the_old(
    store: Store,
) -> None:
    counter = MessageCounter()
    assert 2 == await _accepted(counter, store, 100_000, 2)  # a block of 50: 48 held
    # The tenant's limit is now 3: one more fits, not the 48 held.
    assert (0, 1, 0) == tuple([await _accepted(counter, store, 3, n) for n in (2, 1, 1)])
