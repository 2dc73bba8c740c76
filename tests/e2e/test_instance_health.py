"""A number's health score: counted as its messages are sent, answered and flagged."""

import json
from typing import Any

import pytest

from tests.support.gateway import Gateway, eventually
from tests.support.receiver import Receiver, event_named

pytestmark = pytest.mark.e2e

PEOPLE = [f"5491166{n:06d}" for n in range(25)]


async def _health(gateway: Gateway, key: str, name: str) -> dict[str, Any]:
    status, body = await gateway.call("GET", f"/instance/{name}/health", key=key)
    assert 200 == status, body
    return dict(body)


async def test_many_sends_without_replies_lower_the_score_and_replies_restore_it(
    gateway: Gateway, receiver: Receiver
) -> None:
    tenant_id, key, name = await gateway.tenant_with_instance(receiver.url())
    fresh = await _health(gateway, key, name)
    assert (0, 100, 7) == (fresh["sent"], fresh["score"], fresh["days"])

    messages = [{"instanceName": name, "to": n, "text": "hola", "lane": "urgent"} for n in PEOPLE]
    status, body = await gateway.call("POST", "/message/bulk", key=key, json={"messages": messages})
    assert 202 == status, body

    async def counted(field: str, expected: int) -> bool:
        return bool((await _health(gateway, key, name))[field] == expected)

    await eventually(lambda: counted("sent", len(PEOPLE)), timeout=60)
    unanswered = await _health(gateway, key, name)
    assert (0, 60, 0.0) == (
        unanswered["replies"],
        unanswered["score"],
        unanswered["parts"]["replies"]["points"],
    )

    # Ten contacts answer, one of them twice: ten replies, a 40% reply rate.
    for number in [*PEOPLE[:10], PEOPLE[0]]:
        status, _ = await gateway.call(
            "POST", f"/sandbox/{name}/inbound", key=key, json={"from": number, "text": "oi"}
        )
        assert 202 == status
    # A stranger writing first is no reply.
    await gateway.call(
        "POST", f"/sandbox/{name}/inbound", key=key, json={"from": "5491177000000", "text": "?"}
    )
    await eventually(lambda: counted("replies", 10), timeout=30)
    answered = await _health(gateway, key, name)
    assert (100, 0.4) == (answered["score"], answered["parts"]["replies"]["rate"])

    status, _ = await gateway.call("POST", f"/sandbox/{name}/ban", key=key, json={})
    assert 202 == status
    await eventually(lambda: counted("reports", 1), timeout=30)
    reported = await _health(gateway, key, name)
    assert (85, 10, 0.0) == (
        reported["score"],
        reported["replies"],
        reported["parts"]["reports"]["points"],
    )

    _, other_key = await gateway.tenant()
    status, _ = await gateway.call("GET", f"/instance/{name}/health", key=other_key)
    assert 403 == status
    status, _ = await gateway.call("GET", f"/instance/{tenant_id}__support__nope/health", key=key)
    assert 404 == status


async def _status(gateway: Gateway, key: str, name: str) -> dict[str, Any]:
    status, body = await gateway.call("GET", f"/instance/{name}/status", key=key)
    assert 200 == status, body
    return dict(body)


def _caps(status: dict[str, Any]) -> tuple[int, int, int | None]:
    lanes = status["lanes"]
    return lanes["normal"]["perDay"], lanes["bulk"]["perDay"], lanes["urgent"]["perDay"]


async def _message_status(gateway: Gateway, key: str, message_id: str) -> str:
    status, body = await gateway.call("GET", f"/message/{message_id}", key=key)
    assert 200 == status, body
    return str(body["status"])


async def test_a_score_under_the_minimum_halves_the_day_caps_until_replies_lift_it(
    gateway: Gateway, receiver: Receiver
) -> None:
    lanes = {
        "urgent": {"delayMs": [50, 100]},
        "normal": {"delayMs": [100, 200], "perDay": 2},
        "bulk": {"delayMs": [100, 200], "perDay": 2},
    }
    tenant_id, key = await gateway.tenant()
    name = await gateway.instance(
        tenant_id, key, receiver.url(), lanes=lanes, fields={"health": {"minScore": 70}}
    )
    fresh = await _status(gateway, key, name)
    assert (2, 2, None) == _caps(fresh)
    assert {"minScore": 70, "restricted": False, "since": None, "score": None} == {
        k: fresh["health"][k] for k in ("minScore", "restricted", "since", "score")
    }

    # Twenty sends nobody answers: the reply part is lost, 60 is under 70.
    people = PEOPLE[:20]
    messages = [{"instanceName": name, "to": n, "text": "hola", "lane": "urgent"} for n in people]
    status, body = await gateway.call("POST", "/message/bulk", key=key, json={"messages": messages})
    assert 202 == status, body
    [restricted] = await receiver.wait_for(
        event_named("instance.health", status="restricted"), timeout=60
    )
    told = json.loads(restricted.body)
    assert (name, True, 60, 70, 0.5, 20, 0) == (
        told["instanceName"],
        told["data"]["capsReduced"],
        told["data"]["score"],
        told["data"]["minScore"],
        told["data"]["dayCapFactor"],
        told["data"]["sent"],
        told["data"]["replies"],
    )
    assert 0.0 == told["data"]["parts"]["replies"]["points"]
    held = await _status(gateway, key, name)
    assert ((1, 1, None), True, 60) == (
        _caps(held),
        held["health"]["restricted"],
        held["health"]["score"],
    )

    # The scheduler holds to the reduced bulk cap: one of two goes today.
    ids = []
    for number in ("5491188000001", "5491188000002"):
        status, body = await gateway.call(
            "POST",
            "/message/text",
            key=key,
            json={"instanceName": name, "to": number, "text": "promo", "lane": "bulk"},
        )
        assert 202 == status, body
        ids.append(body["id"])

    async def is_sent(message_id: str) -> bool:
        return await _message_status(gateway, key, message_id) in ("sent", "delivered", "read")

    await eventually(lambda: is_sent(ids[0]), timeout=30)
    assert "pending" == await _message_status(gateway, key, ids[1])

    # Two of the twenty answer: a 10% reply rate brings the score back over 70.
    for number in people[:2]:
        status, _ = await gateway.call(
            "POST", f"/sandbox/{name}/inbound", key=key, json={"from": number, "text": "oi"}
        )
        assert 202 == status
    [recovered] = await receiver.wait_for(
        event_named("instance.health", status="recovered"), timeout=30
    )
    back = json.loads(recovered.body)["data"]
    assert (False, 1.0, 2, 70) == (
        back["capsReduced"],
        back["dayCapFactor"],
        back["replies"],
        back["minScore"],
    )
    assert back["score"] >= 70
    await eventually(lambda: is_sent(ids[1]), timeout=30)  # the full cap lets it go today
    assert (2, 2, None) == _caps(await _status(gateway, key, name))

    # Raising the minimum over the score restricts the number at once, without a send.
    status, body = await gateway.call(
        "PATCH", f"/instance/{name}", key=key, json={"health": {"minScore": 90}}
    )
    assert 200 == status, body
    assert ((1, 1, None), 90, True) == (
        _caps(body),
        body["health"]["minScore"],
        body["health"]["restricted"],
    )
    await receiver.wait_for(event_named("instance.health", status="restricted"), count=2)


@pytest.mark.parametrize(
    "health", [{"minScore": 101}, {"minScore": -1}, {"minScore": "high"}, {}, {"other": 1}]
)
async def test_a_bad_minimum_score_is_refused_and_nothing_changes(
    gateway: Gateway, receiver: Receiver, health: dict[str, Any]
) -> None:
    tenant_id, key, name = await gateway.tenant_with_instance(receiver.url(), connect=False)
    status, body = await gateway.call(
        "PATCH", f"/instance/{name}", key=key, json={"health": health}
    )
    assert 400 == status, body
    assert "Validation error" == body["error"]
    assert all(issue["path"][0] == "health" for issue in body["issues"])
    assert 40 == (await _status(gateway, key, name))["health"]["minScore"]
    status, body = await gateway.call(
        "POST",
        "/instance/create",
        key=key,
        json={
            "instanceName": f"{tenant_id}__support__other",
            "webhookUrl": receiver.url(),
            "webhookSecret": "s3cret-s3cret-s3cret",
            "health": health,
        },
    )
    assert 400 == status, body
    status, _ = await gateway.call("GET", f"/instance/{tenant_id}__support__other/status", key=key)
    assert 404 == status
