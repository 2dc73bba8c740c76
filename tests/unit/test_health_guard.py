"""The health flag: judged against the score and minScore, flipped once each way, and the
day caps the lane scheduler reads from it."""

import json

import pytest
from aio_pika.exceptions import ChannelInvalidStateError

from lanegate import health
from lanegate.broker import Broker
from lanegate.events import parse, utcnow
from lanegate.health_guard import DEFAULT_MIN_SCORE, counted, judge, min_score
from lanegate.lanes import DEFAULT_POLICIES, RESTRICTED_DAY_CAP_FACTOR, policies_for
from lanegate.store import Store
from lanegate.webhook_payloads import InstanceHealthWebhook
from tests.conftest import AMQP_URL
from tests.support.gateway import hearing
from webhook_dispatcher.envelope import envelope

NAME = "acme__support__main"
NOW = utcnow()  # recent: older day counts are past their expiry


def test_a_restricted_number_has_its_normal_and_bulk_day_caps_reduced() -> None:
    restricted = policies_for({"provider": "waha", "health": {"restricted": True}})
    assert DEFAULT_POLICIES["urgent"] == restricted["urgent"]
    for lane in ("normal", "bulk"):
        full = DEFAULT_POLICIES[lane]
        assert full.per_day is not None
        assert int(full.per_day * RESTRICTED_DAY_CAP_FACTOR) == restricted[lane].per_day
        assert full.per_hour == restricted[lane].per_hour
    own = policies_for(
        {"provider": "waha", "lanes": {"bulk": {"perDay": 1}}, "health": {"restricted": True}}
    )
    assert 1 == own["bulk"].per_day  # never down to no send at all
    assert DEFAULT_POLICIES == policies_for({"provider": "waha", "health": {"restricted": False}})


def test_the_minimum_score_is_the_instance_own_or_the_default() -> None:
    assert DEFAULT_MIN_SCORE == min_score({}) == min_score({"health": {"restricted": True}})
    assert 0 == min_score({"health": {"minScore": 0}})


async def _counts(store: Store, what: health.Counted, times: int) -> None:
    for _ in range(times):
        await health.count(store, "acme", NAME, what, NOW)


async def test_the_flag_is_set_under_the_minimum_and_cleared_at_it_once_each(
    bare_store: Store, bare_broker: Broker
) -> None:
    await bare_store.instances.insert_one(
        {"_id": NAME, "tenantId": "acme", "provider": "sandbox", "health": {"minScore": 70}}
    )
    await _counts(bare_store, health.Counted.SENT, health.FEWEST_SENDS_JUDGED - 1)
    assert not await judge(bare_store, bare_broker, NAME, NOW)  # too few sends to judge

    namespace = bare_broker.namespace
    async with (
        hearing(AMQP_URL, namespace, "instance.health") as told,
        hearing(AMQP_URL, namespace, "instance.configured") as configured,
    ):
        await counted(bare_store, bare_broker, "acme", NAME, health.Counted.SENT, NOW)
        restricted = await told()
        assert NAME == (await configured())["instanceName"]
        assert not await judge(bare_store, bare_broker, NAME, NOW)  # already restricted
        stored = await bare_store.instances.find_one({"_id": NAME})
        assert stored is not None
        assert (True, 60, 70) == (
            stored["health"]["restricted"],
            stored["health"]["score"],
            stored["health"]["minScore"],
        )
        assert policies_for(stored)["bulk"] != DEFAULT_POLICIES["bulk"]

        # 2 replies of 20 sends: a 10% reply rate earns a third of the reply part.
        await _counts(bare_store, health.Counted.REPLIES, 1)
        assert not await judge(bare_store, bare_broker, NAME, NOW)  # 67 is still under 70
        await counted(bare_store, bare_broker, "acme", NAME, health.Counted.REPLIES, NOW)
        recovered = await told()
        assert NAME == (await configured())["instanceName"]

    assert (True, 60, 70, 20, 0) == (
        restricted["restricted"],
        restricted["score"],
        restricted["minScore"],
        restricted["health"]["sent"],
        restricted["health"]["replies"],
    )
    assert 0.0 == restricted["health"]["parts"]["replies"]["points"]
    assert (False, 73, 2) == (
        recovered["restricted"],
        recovered["score"],
        recovered["health"]["replies"],
    )
    for event, status, factor in ((restricted, "restricted", 0.5), (recovered, "recovered", 1.0)):
        body = envelope(parse(json.dumps(event).encode()))
        assert body is not None
        assert body == InstanceHealthWebhook.model_validate(body).model_dump(exclude_unset=True)
        assert (status, status == "restricted", factor) == (
            body["data"]["status"],
            body["data"]["capsReduced"],
            body["data"]["dayCapFactor"],
        )
    stored = await bare_store.instances.find_one({"_id": NAME})
    assert stored is not None
    assert (False, 73) == (stored["health"]["restricted"], stored["health"]["score"])
    assert DEFAULT_POLICIES == policies_for(stored)


async def test_a_gone_instance_is_not_judged(bare_store: Store, bare_broker: Broker) -> None:
    assert not await judge(bare_store, bare_broker, NAME, NOW)


async def test_a_change_nobody_could_be_told_of_is_taken_back_and_told_later(
    bare_store: Store, bare_broker: Broker
) -> None:
    await bare_store.instances.insert_one({"_id": NAME, "tenantId": "acme", "provider": "sandbox"})
    await _counts(bare_store, health.Counted.SENT, health.FEWEST_SENDS_JUDGED)
    await judge(bare_store, bare_broker, NAME, NOW)  # 60: over the default 40
    await bare_store.instances.update_one({"_id": NAME}, {"$set": {"health.minScore": 61}})
    gone = Broker(AMQP_URL, bare_broker.namespace)
    await gone.connect()
    await gone.close()

    with pytest.raises(ChannelInvalidStateError):
        await judge(bare_store, gone, NAME, NOW)
    stored = await bare_store.instances.find_one({"_id": NAME})
    assert stored is not None
    assert (False, None) == (stored["health"]["restricted"], stored["health"]["since"])

    async with hearing(AMQP_URL, bare_broker.namespace, "instance.health") as told:
        assert await judge(bare_store, bare_broker, NAME, NOW)
        event = await told()
        assert (True, 61) == (event["restricted"], event["minScore"])
