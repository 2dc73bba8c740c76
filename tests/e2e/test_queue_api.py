"""Listing, contacts and rate limits (the queue API of seeds 002 and 003)."""

import asyncio
from typing import Any

import aiohttp
import pytest

from ingress_api.auth import Caller
from ingress_api.requests import NEWEST_FIRST, listing_plan
from ingress_api.schemas.message_reads import MessageQuery
from tests.support.explain import index_used
from tests.support.gateway import Gateway
from tests.support.receiver import Receiver

pytestmark = pytest.mark.e2e


async def _queue(gateway: Gateway, key: str, name: str, **fields: Any) -> str:
    body = {"instanceName": name, "to": "5491112345678", "text": "hello", **fields}
    status, answer = await gateway.call("POST", "/message/text", key=key, json=body)
    assert 202 == status, answer
    return str(answer["id"])


async def test_listing_filters_pages_and_sorts_newest_first(
    gateway: Gateway, receiver: Receiver
) -> None:
    tenant_id, key = await gateway.tenant()
    first = await gateway.instance(tenant_id, key, receiver.url(), connect=False)
    second = await gateway.instance(tenant_id, key, receiver.url(), connect=False)
    ids = [
        await _queue(gateway, key, first, lane="bulk"),
        await _queue(gateway, key, first, text="your invoice is ready"),
        await _queue(gateway, key, second, to="5491199999999"),
    ]
    other_tenant, other_key = await gateway.tenant()
    other = await gateway.instance(other_tenant, other_key, receiver.url(), connect=False)
    await _queue(gateway, other_key, other)

    status, page = await gateway.call("GET", "/messages", key=key)
    assert 200 == status
    assert list(reversed(ids)) == [m["id"] for m in page["data"]]
    assert {"total": 3, "page": 1, "limit": 50, "pages": 1} == page["meta"]

    cases = {
        f"instanceName={first}": ids[1::-1],
        "lane=bulk": ids[:1],
        "status=PENDING": list(reversed(ids)),
        "status=sent": [],
        "search=INVOICE": ids[1:2],
        "search=5491199": ids[2:],
        "messageType=geral": list(reversed(ids)),
    }
    for query, expected in cases.items():
        status, page = await gateway.call("GET", f"/messages?{query}", key=key)
        assert (200, expected) == (status, [m["id"] for m in page["data"]]), query

    _, paged = await gateway.call("GET", "/messages?limit=2&page=2", key=key)
    assert ([ids[0]], {"total": 3, "page": 2, "limit": 2, "pages": 2}) == (
        [m["id"] for m in paged["data"]],
        paged["meta"],
    )


@pytest.mark.parametrize(
    "query", ["limit=251", "page=0", "status=lost", "dateFrom=yesterday", "colour=red"]
)
async def test_listing_rejects_bad_filters(gateway: Gateway, query: str) -> None:
    _, key = await gateway.tenant()
    status, body = await gateway.call("GET", f"/messages?{query}", key=key)
    assert (400, "Validation error") == (status, body["error"])


@pytest.mark.parametrize(
    ("filters", "index"),
    [
        ({}, "tenant_created_id"),
        ({"status": "sent"}, "tenant_status_created_id"),
        ({"instanceName": "t__a__b", "status": "sent"}, "tenant_instanceName_created_id"),
        ({"externalId": "REF-1", "lane": "bulk"}, "tenant_externalId_created_id"),
        ({"lane": "bulk", "search": "x"}, "tenant_lane_created_id"),
        ({"messageType": "MARKETING"}, "tenant_messageType_created_id"),
        ({"search": "x", "dateFrom": "2026-01-01T00:00:00Z"}, "tenant_created_id"),
    ],
)
async def test_every_listing_query_runs_on_an_index(
    gateway: Gateway, filters: dict[str, str], index: str
) -> None:
    where, chosen = listing_plan(Caller("t", "k"), MessageQuery.model_validate(filters))
    assert index == chosen
    async with gateway.mongo() as client:
        explained = await (
            client.lanegate_test.messages.find(where).sort(NEWEST_FIRST).hint(chosen).explain()
        )
    if "ferretdbVersion" in explained.get("serverInfo", {}):
        pytest.skip("FerretDB v1 ignores index hints: PostgreSQL plans the query")
    assert index == index_used(explained)


async def test_contact_messages_page_with_a_cursor(gateway: Gateway, receiver: Receiver) -> None:
    tenant_id, key = await gateway.tenant()
    name = await gateway.instance(tenant_id, key, receiver.url(), connect=False)
    ids = [await _queue(gateway, key, name, to="5491177777777") for _ in range(3)]
    await _queue(gateway, key, name, to="5491166666666")

    status, first = await gateway.call("GET", "/contacts/+5491177777777/messages?limit=2", key=key)
    assert (200, ids[:0:-1]) == (status, [m["id"] for m in first["messages"]])
    cursor = first["pagination"]["next"]
    _, second = await gateway.call(
        "GET", f"/contacts/5491177777777/messages?limit=2&cursor={cursor}", key=key
    )
    assert ([ids[0]], None) == ([m["id"] for m in second["messages"]], second["pagination"]["next"])
    status, _ = await gateway.call(
        "GET", "/contacts/5491177777777/messages?cursor=garbage", key=key
    )
    assert 400 == status


async def test_contacts_upsert_tag_filter_status_and_delete(gateway: Gateway) -> None:
    _, key = await gateway.tenant()
    status, created = await gateway.call(
        "POST",
        "/contacts",
        key=key,
        json={"identifier": "5491112345678", "name": "Ana", "tags": ["vip"]},
    )
    assert (201, "Ana", ["vip"], True) == (
        status,
        created["name"],
        created["tags"],
        created["active"],
    )
    status, updated = await gateway.call(
        "POST", "/contacts", key=key, json={"identifier": "5491112345678", "name": "Ana María"}
    )
    assert (200, created["id"], "Ana María", ["vip"]) == (
        status,
        updated["id"],
        updated["name"],
        updated["tags"],
    )
    await gateway.call("POST", "/contacts", key=key, json={"identifier": "5491100000000"})

    _, vip = await gateway.call("GET", "/contacts?tag=vip", key=key)
    assert ["5491112345678"] == [c["identifier"] for c in vip["contacts"]]
    _, everyone = await gateway.call("GET", "/contacts", key=key)
    assert 2 == everyone["meta"]["total"]

    status, by_phone = await gateway.call("GET", "/contacts/+5491112345678", key=key)
    assert (200, created["id"]) == (status, by_phone["id"])
    status, inactive = await gateway.call(
        "PATCH",
        f"/contacts/{created['id']}/status",
        key=key,
        json={"active": False, "reason": "opted out"},
    )
    assert (200, False, "opted out") == (status, inactive["active"], inactive["inactiveReason"])

    _, other_key = await gateway.tenant()
    assert 404 == (await gateway.call("GET", f"/contacts/{created['id']}", key=other_key))[0]
    assert 404 == (await gateway.call("DELETE", f"/contacts/{created['id']}", key=other_key))[0]

    assert 200 == (await gateway.call("DELETE", f"/contacts/{created['id']}", key=key))[0]
    assert 404 == (await gateway.call("GET", f"/contacts/{created['id']}", key=key))[0]
    status, body = await gateway.call("POST", "/contacts", key=key, json={"identifier": "+12"})
    assert (400, ["identifier"]) == (status, body["issues"][0]["path"])


async def test_rate_limit_headers_and_429_per_key(gateway: Gateway) -> None:
    tenant_id, key = await gateway.tenant()
    for _ in range(2):  # a burst that straddles a minute boundary is run again, with a new key
        _, limited = await gateway.call(
            "POST",
            f"/admin/tenants/{tenant_id}/keys",
            headers={"apikey": gateway.admin_key},
            json={"rateLimitPerMinute": 3},
        )
        answers = await _burst(gateway, limited["apiKey"], 4)
        if len({headers["X-RateLimit-Reset"] for _, headers in answers}) == 1:
            break

    assert [200, 200, 200, 429] == [status for status, _ in answers]
    assert ["2", "1", "0", "0"] == [h["X-RateLimit-Remaining"] for _, h in answers]
    _, last = answers[-1]
    assert "3" == last["X-RateLimit-Limit"]
    assert 1 <= int(last["Retry-After"]) <= 60
    # Another key of the same tenant has its own budget.
    assert 200 == (await gateway.call("GET", "/instances", key=key))[0]


async def test_the_rate_limit_holds_across_two_ingress_replicas(gateway: Gateway) -> None:
    tenant_id, _ = await gateway.tenant()
    stack = gateway.stack
    await asyncio.to_thread(stack.start_replica, "ingress_api_2", "ingress_api")
    try:
        urls = [gateway.api, stack.url("ingress_api_2")]
        for _ in range(2):  # as above: a burst that straddles a minute boundary runs again
            _, limited = await gateway.call(
                "POST",
                f"/admin/tenants/{tenant_id}/keys",
                headers={"apikey": gateway.admin_key},
                json={"rateLimitPerMinute": 4},
            )
            answers = await _burst(gateway, limited["apiKey"], 6, urls=urls)
            if len({headers["X-RateLimit-Reset"] for _, headers in answers}) == 1:
                break
    finally:
        await asyncio.to_thread(stack.stop, "ingress_api_2")
    assert [200, 200, 200, 200, 429, 429] == [status for status, _ in answers]
    assert ["3", "2", "1", "0", "0", "0"] == [h["X-RateLimit-Remaining"] for _, h in answers]


async def _burst(
    gateway: Gateway, key: str, count: int, *, urls: list[str] | None = None
) -> list[tuple[int, dict[str, str]]]:
    """`count` requests one after another, taking the ingress replicas in `urls` in turn."""
    bases = urls or [gateway.api]
    answers = []
    async with aiohttp.ClientSession() as http:
        for n in range(count):
            url = bases[n % len(bases)] + "/instances"
            async with http.get(url, headers={"apikey": key}) as response:
                answers.append((response.status, dict(response.headers)))
    return answers
