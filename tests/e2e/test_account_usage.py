"""`GET /account/usage`: the counts kept as things happen equal exactly what a known run did,
read without the messages themselves; a bad range is a 400."""

import json
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.e2e.test_cloud_api import cloud_instance, contact_writes, send_text
from tests.e2e.test_otp import code_in, phone_text, send_otp, verify
from tests.simulators.meta import MetaSimulator
from tests.support.gateway import Gateway, eventually, settled
from tests.support.receiver import Received, Receiver, event_named

pytestmark = pytest.mark.e2e

FAILING = ("5491199990001", "5491199990002")
REACHED = tuple(f"54911555000{n:02d}" for n in range(5))
NOTHING = dict.fromkeys(
    (
        "accepted",
        "sent",
        "delivered",
        "read",
        "failed",
        "canceled",
        "webhooksDelivered",
        "webhooksFailed",
        "otpSent",
        "otpVerified",
    ),
    0,
)
FAST_RECEIPTS = {"deliveredAfterMs": 0, "readAfterMs": 0}


async def _send(gateway: Gateway, key: str, name: str, to: str, **fields: Any) -> str:
    status, body = await gateway.call(
        "POST",
        "/message/text",
        key=key,
        json={"instanceName": name, "to": to, "text": "Hi"} | fields,
    )
    assert 202 == status, body
    return str(body["id"])


def _webhook_ids(receiver: Receiver, path: str) -> set[str]:
    """The distinct deliveries the receiver saw at `path` (a retried one counts once)."""

    def at(r: Received) -> bool:
        return r.path == path

    return {
        next(v for k, v in r.headers.items() if k.lower() == "webhook-id")
        for r in receiver.matching(at)
    }


def _today() -> str:
    return datetime.now(UTC).date().isoformat()


async def _usage(gateway: Gateway, key: str, **query: str) -> dict[str, Any]:
    status, body = await gateway.call("GET", "/account/usage", key=key, params=query)
    assert 200 == status, body
    return dict(body)


async def _usage_once(
    gateway: Gateway, key: str, counts_in: Callable[[dict[str, Any]], bool], **query: str
) -> dict[str, Any]:
    """The usage once `counts_in` finds the counts awaited in it, or as it last was after
    10 s."""
    seen: dict[str, Any] = {}

    async def counted() -> bool:
        seen.update(await _usage(gateway, key, **query))
        return counts_in(seen)

    await settled(counted)
    return seen


async def test_usage_equals_what_a_known_run_did_and_is_not_read_from_messages(
    gateway: Gateway, receiver: Receiver
) -> None:
    receiver.answer = lambda r: 500 if r.path == "/broken" else 204
    tenant_id, key, main = await gateway.tenant_with_instance(
        receiver.url(), fields={"providerConfig": {"failNumbers": list(FAILING)} | FAST_RECEIPTS}
    )
    broken = await gateway.instance(
        tenant_id, key, receiver.url("/broken"), fields={"providerConfig": FAST_RECEIPTS}
    )
    reached = [await _send(gateway, key, main, to) for to in REACHED]
    failed = [await _send(gateway, key, main, to) for to in FAILING]
    held = await _send(gateway, key, main, REACHED[0], requiresApproval=True)
    status, body = await gateway.call("POST", f"/message/{held}/cancel", key=key)
    assert (200, "canceled") == (status, body["status"]), body
    other = await _send(gateway, key, broken, REACHED[1])
    sent = await send_otp(gateway, key, main, REACHED[2])
    code = code_in(await phone_text(gateway, sent["messageId"]))
    status, body = await verify(gateway, key, id=sent["id"], code=code)
    assert 200 == status, body

    for message_id in [*reached, sent["messageId"]]:
        await receiver.wait_for(event_named("message.status", id=message_id, status="read"))
    for message_id in failed:
        await receiver.wait_for(event_named("message.status", id=message_id, status="failed"))
    async with gateway.mongo() as client:

        async def other_read() -> bool:
            found = await client.lanegate_test.messages.find_one({"_id": other})
            return found is not None and found.get("readAt") is not None

        await eventually(other_read)

    def expected() -> dict[str, dict[str, int]]:
        return {
            main: NOTHING
            | {
                "accepted": 9,
                "sent": 6,
                "delivered": 6,
                "read": 6,
                "failed": 2,
                "canceled": 1,
                "webhooksDelivered": len(_webhook_ids(receiver, "/hook")),
                "otpSent": 1,
                "otpVerified": 1,
            },
            broken: NOTHING
            | {
                "accepted": 1,
                "sent": 1,
                "delivered": 1,
                "read": 1,
                "webhooksFailed": len(_webhook_ids(receiver, "/broken")),
            },
        }

    counted: list[dict[str, Any]] = [{}]

    async def counted_as_it_happened() -> bool:
        usage = await _usage(gateway, key, **{"from": _today(), "to": _today()})
        [day] = usage["periods"]
        counted[0] = day["byInstance"]
        return bool(counted[0] == expected())

    # Every delivery at /broken is retried until it is given up (dead).
    await settled(counted_as_it_happened, timeout=60)
    assert expected() == counted[0]
    usage = await _usage(gateway, key)
    today = usage["periods"][-1]
    total = Counter(expected()[main]) + Counter(expected()[broken])
    assert (_today(), 30) == (today["period"], len(usage["periods"]))
    assert NOTHING | dict(total) == today["totals"] == usage["totals"]
    assert {"whatsapp": today["totals"]} == today["byChannel"]
    assert all(p["totals"] == NOTHING for p in usage["periods"][:-1])

    async with gateway.mongo() as client:
        await client.lanegate_test.messages.delete_many({"tenantId": tenant_id})
    assert usage == await _usage(gateway, key)
    months = await _usage(gateway, key, granularity="month", instanceName=broken)
    assert (12, expected()[broken]) == (len(months["periods"]), months["totals"])
    assert [_today()[:7]] == [p["period"] for p in months["periods"][-1:]]


@pytest.mark.parametrize(
    ("query", "path"),
    [
        ({"from": "2026-02-30"}, ["from"]),
        ({"to": "yesterday"}, ["to"]),
        ({"from": "2026-03-02", "to": "2026-03-01"}, ["from"]),
        ({"from": "2024-01-01", "to": "2025-01-01"}, ["from"]),
        ({"granularity": "week"}, ["granularity"]),
        ({"since": "2026-01-01"}, ["since"]),
    ],
)
async def test_a_bad_range_is_a_400_naming_it(
    gateway: Gateway, query: dict[str, str], path: list[str]
) -> None:
    _, key = await gateway.tenant()
    status, body = await gateway.call("GET", "/account/usage", key=key, params=query)
    assert (400, "Validation error") == (status, body["error"]), body
    assert [path] == [issue["path"] for issue in body["issues"]]


async def test_usage_needs_account_read_and_is_documented(gateway: Gateway) -> None:
    _, key = await gateway.tenant()
    status, narrow = await gateway.call(
        "POST", "/account/keys", key=key, json={"name": "n", "scopes": ["messages:read"]}
    )
    assert 201 == status, narrow
    status, body = await gateway.call("GET", "/account/usage", key=narrow["apiKey"])
    assert 403 == status, body
    _, spec = await gateway.call("GET", "/openapi.json")
    answer = spec["paths"]["/account/usage"]["get"]["responses"]["200"]
    assert "UsageView" in json.dumps(answer)
    whole_year = (datetime.now(UTC).date() - timedelta(days=365)).isoformat()
    status, body = await gateway.call("GET", "/account/usage", key=key, params={"from": whole_year})
    assert (200, 366) == (status, len(body["periods"]))


async def test_a_flush_counts_the_messages_it_cancels(gateway: Gateway, receiver: Receiver) -> None:
    _, key, name = await gateway.tenant_with_instance(receiver.url())
    for to in REACHED[:3]:
        await _send(gateway, key, name, to, requiresApproval=True)

    status, body = await gateway.call("POST", f"/instance/{name}/queue/flush", key=key)

    assert (200, 3) == (status, body["flushed"]), body
    usage = await _usage_once(
        gateway,
        key,
        lambda u: 3 == u["totals"]["canceled"] == u["totals"]["accepted"],
        **{"from": _today()},
    )
    counted = usage["periods"][0]["byInstance"][name]
    messages = ("accepted", "sent", "delivered", "read", "failed", "canceled")
    assert (3, 0, 0, 0, 0, 3) == tuple(counted[field] for field in messages)


async def test_a_message_undelivered_after_it_went_counts_as_sent_and_failed(
    gateway: Gateway, meta: MetaSimulator, receiver: Receiver
) -> None:
    name, key, number = await cloud_instance(gateway, meta, receiver)
    await contact_writes(meta, number, receiver)
    meta.fail_next(131026, asynchronous=True)
    message_id = await send_text(gateway, key, name)
    await receiver.wait_for(event_named("message.status", id=message_id, status="failed"))

    def counted(totals: dict[str, int]) -> tuple[int, ...]:
        return tuple(totals[field] for field in ("accepted", "sent", "failed"))

    usage = await _usage_once(
        gateway, key, lambda u: (1, 1, 1) == counted(u["totals"]), **{"from": _today()}
    )

    [day] = usage["periods"]
    assert (1, 1, 1) == counted(day["totals"])
    assert ["whatsapp"] == list(day["byChannel"])
