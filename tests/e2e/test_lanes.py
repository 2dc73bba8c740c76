"""Lanes end to end: order, gaps and caps across the real services, a scheduler restart included."""

import asyncio
import itertools
from datetime import UTC, datetime, timedelta

import pytest

from tests.support.gateway import Gateway
from tests.support.messages import outbox_counts, send, stored, wait_status
from tests.support.receiver import Receiver

pytestmark = pytest.mark.e2e


async def test_urgent_then_normal_then_bulk_and_higher_priority_first(
    gateway: Gateway, receiver: Receiver
) -> None:
    tenant_id, key = await gateway.tenant()
    name = await gateway.instance(tenant_id, key, receiver.url(), connect=False)
    queued = [
        ("bulk", await send(gateway, key, name, lane="bulk")),
        ("normal-old", await send(gateway, key, name, lane="normal")),
        ("normal-new", await send(gateway, key, name, lane="normal")),
        ("normal-p9", await send(gateway, key, name, lane="normal", priority=9)),
        ("urgent-p1", await send(gateway, key, name, lane="urgent", priority=1)),
    ]
    await gateway.call("POST", f"/sandbox/{name}/scan", key=key)

    ids = [message_id for _, message_id in queued]
    await wait_status(gateway, "sent", *ids)
    by_id = {doc["_id"]: doc["sentAt"] for doc in await stored(gateway, *ids)}
    order = sorted(queued, key=lambda item: by_id[item[1]])
    expected = ["urgent-p1", "normal-p9", "normal-old", "normal-new", "bulk"]
    assert expected == [label for label, _ in order]


async def test_every_two_sends_of_an_instance_are_at_least_the_lane_delay_apart(
    gateway: Gateway, receiver: Receiver
) -> None:
    tenant_id, key = await gateway.tenant()
    lanes = {"normal": {"delayMs": [300, 400]}}
    name = await gateway.instance(tenant_id, key, receiver.url(), lanes=lanes)
    ids = [await send(gateway, key, name, lane="normal") for _ in range(5)]

    await wait_status(gateway, "sent", *ids)
    times = sorted(doc["sentAt"].timestamp() for doc in await stored(gateway, *ids))
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    assert all(gap >= 0.299 for gap in gaps), gaps  # the store keeps milliseconds


async def test_over_cap_messages_wait_across_a_scheduler_crash_and_go_when_the_cap_allows(
    gateway: Gateway, receiver: Receiver
) -> None:
    tenant_id, key = await gateway.tenant()
    lanes = {"normal": {"delayMs": [50, 100], "perHour": 2}}
    name = await gateway.instance(tenant_id, key, receiver.url(), lanes=lanes)
    first = [await send(gateway, key, name, lane="normal") for _ in range(3)]
    await wait_status(gateway, "sent", *first[:2])

    gateway.stack.kill("lane_scheduler")
    rest = [await send(gateway, key, name, lane="normal") for _ in range(2)]
    gateway.stack.start("lane_scheduler")
    await asyncio.sleep(3)  # far past the lane delay: only the cap holds them now

    waiting = [first[2], *rest]
    assert ["pending"] * 3 == [doc["status"] for doc in await stored(gateway, *waiting)]
    assert [0, 0, 0] == await outbox_counts(gateway, *waiting)

    status, _ = await gateway.call(
        "PATCH", f"/instance/{name}", key=key, json={"lanes": {"normal": {"perHour": 5}}}
    )
    assert 200 == status
    await wait_status(gateway, "sent", *waiting)
    assert [1] * 5 == await outbox_counts(gateway, *first, *rest)


@pytest.mark.parametrize(
    "body",
    [
        {"lanes": {"bulk": {"delayMs": [9000, 8000]}}},
        {"lanes": {"normal": {"perDay": -1}}},
        {"timezone": "Mars/Olympus_Mons"},
        {"warmup": {"startPerDay": 0, "growthPercent": 40}},
        {"throughput": {"perSecond": 0}},
    ],
)
async def test_bad_pacing_settings_are_refused_and_change_nothing(
    gateway: Gateway, receiver: Receiver, body: dict[str, object]
) -> None:
    tenant_id, key = await gateway.tenant()
    name = await gateway.instance(tenant_id, key, receiver.url(), connect=False)
    status, answer = await gateway.call("PATCH", f"/instance/{name}", key=key, json=body)
    assert 400 == status
    assert "Validation error" == answer["error"]
    async with gateway.mongo() as client:
        instance = await client.lanegate_test.instances.find_one({"_id": name})
    assert instance is not None
    assert ("UTC", None) == (instance["timezone"], instance["warmup"])


async def test_pacing_settings_are_stored_as_given(gateway: Gateway, receiver: Receiver) -> None:
    tenant_id, key = await gateway.tenant()
    name = await gateway.instance(tenant_id, key, receiver.url(), connect=False)
    body = {
        "timezone": "America/Argentina/Buenos_Aires",
        "warmup": {"startPerDay": 50, "growthPercent": 40},
        "lanes": {"normal": {"delayMs": [3000, 8000], "perHour": 80, "perDay": 500}},
    }
    status, _ = await gateway.call("PATCH", f"/instance/{name}", key=key, json=body)
    assert 200 == status
    async with gateway.mongo() as client:
        instance = await client.lanegate_test.instances.find_one({"_id": name})
    assert instance is not None
    assert body["timezone"] == instance["timezone"]
    assert {"startPerDay": 50, "growthPercent": 40.0} == instance["warmup"]
    assert {"delayMs": [3000, 8000], "perHour": 80, "perDay": 500} == instance["lanes"]["normal"]


async def test_the_lanes_answer_shows_todays_warm_up_cap_and_what_the_sends_used(
    gateway: Gateway, receiver: Receiver
) -> None:
    tenant_id, key = await gateway.tenant()
    lanes = {"normal": {"delayMs": [50, 100], "perHour": 10, "perDay": 20}}
    warmup = {"startPerDay": 5, "growthPercent": 100}
    name = await gateway.instance(
        tenant_id, key, receiver.url(), lanes=lanes, fields={"warmup": warmup}
    )
    ids = [await send(gateway, key, name, lane="normal") for _ in range(2)]
    await wait_status(gateway, "sent", *ids)

    status, body = await gateway.call("GET", f"/instance/{name}/lanes", key=key)

    assert 200 == status, body
    normal, urgent = body["lanes"]["normal"], body["lanes"]["urgent"]
    assert (10, 5, 2, 2) == (
        normal["perHour"],
        normal["perDay"],  # first connected today: warm-up's first day caps it
        normal["usedLastHour"],
        normal["usedToday"],
    )
    assert (0, 0) == (urgent["usedLastHour"], urgent["usedToday"])

    async with gateway.mongo() as client:
        await client["lanegate_test"].instances.update_one(
            {"_id": name}, {"$set": {"firstConnectedAt": datetime.now(UTC) - timedelta(days=1)}}
        )
    _, body = await gateway.call("GET", f"/instance/{name}/lanes", key=key)
    assert 10 == body["lanes"]["normal"]["perDay"]  # one day on: the warm-up cap doubled
