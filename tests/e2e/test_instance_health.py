"""A number's health score: counted as its messages are sent, answered and flagged."""

from typing import Any

import pytest

from tests.support.gateway import Gateway, eventually
from tests.support.receiver import Receiver

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
