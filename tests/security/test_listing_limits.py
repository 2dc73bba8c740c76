"""Listings: `page` reaches at most 10,000 rows, a cursor pages deeper, `search` is bounded."""

from typing import Any

import pytest

from tests.e2e.test_cloud_api import cloud_instance
from tests.e2e.test_templates import five_templates
from tests.simulators.meta import MetaSimulator
from tests.support.gateway import Gateway
from tests.support.receiver import Receiver

pytestmark = pytest.mark.e2e


async def _bulk(gateway: Gateway, key: str, name: str, count: int) -> list[str]:
    """`count` messages accepted together (they share their acceptance time)."""
    items = [{"instanceName": name, "to": "5491112345678", "text": f"m{i}"} for i in range(count)]
    status, answer = await gateway.call("POST", "/message/bulk", key=key, json={"messages": items})
    assert 202 == status, answer
    return [m["id"] for m in answer["messages"]]


async def _follow(
    gateway: Gateway, key: str, path: str, rows: str, cursor: str | None = None
) -> list[list[Any]]:
    """Every page of a listing from `cursor` (or its first), following `pagination.next`."""
    pages = []
    for _ in range(20):
        query = f"{path}&cursor={cursor}" if cursor else path
        status, answer = await gateway.call("GET", query, key=key)
        assert 200 == status, answer
        pages.append(answer[rows])
        cursor = answer["pagination"]["next"]
        if cursor is None:
            return pages
    raise AssertionError("the cursor never reached the end")


@pytest.mark.parametrize(
    ("listing", "hint"), [("/messages?limit=250", "dateTo"), ("/contacts?limit=250", "cursor")]
)
async def test_paging_past_ten_thousand_rows_is_400_pointing_to_the_cursor(
    gateway: Gateway, listing: str, hint: str
) -> None:
    _, key = await gateway.tenant()
    status, answer = await gateway.call("GET", f"{listing}&page=41", key=key)
    assert (400, [["page"]]) == (status, [issue["path"] for issue in answer["issues"]])
    assert hint in answer["issues"][0]["message"] and "cursor" in answer["issues"][0]["message"]

    status, answer = await gateway.call("GET", f"{listing}&page=40", key=key)
    assert 200 == status, answer


async def test_a_message_cursor_pages_every_message_once_while_new_ones_arrive(
    gateway: Gateway, receiver: Receiver
) -> None:
    tenant_id, key = await gateway.tenant()
    name = await gateway.instance(tenant_id, key, receiver.url(), connect=False)
    ids = await _bulk(gateway, key, name, 5) + await _bulk(gateway, key, name, 2)

    status, first = await gateway.call("GET", "/messages?limit=3", key=key)
    assert 200 == status and first["pagination"]["next"] is not None
    newer = await _bulk(gateway, key, name, 2)
    rest = await _follow(gateway, key, "/messages?limit=3", "data", first["pagination"]["next"])

    seen = [m["id"] for page in [first["data"], *rest] for m in page]
    assert sorted(ids) == sorted(seen)
    assert not set(newer) & set(seen)
    assert [3, 3, 1] == [len(page) for page in [first["data"], *rest]]


async def test_a_contact_cursor_pages_every_contact_once(gateway: Gateway) -> None:
    _, key = await gateway.tenant()
    numbers = [f"54911{n:08d}" for n in range(5)]
    for number in numbers:
        status, _ = await gateway.call("POST", "/contacts", key=key, json={"identifier": number})
        assert status in (200, 201)

    pages = await _follow(gateway, key, "/contacts?limit=2", "contacts")

    assert numbers == [c["identifier"] for page in pages for c in page]


@pytest.mark.parametrize(
    "query",
    [
        "/messages?cursor=not-a-cursor",
        "/messages?cursor=YXxi&page=2",
        "/contacts?cursor=not-a-cursor",
        "/messages?search=" + "x" * 201,
    ],
)
async def test_bad_cursors_and_long_searches_are_400(gateway: Gateway, query: str) -> None:
    _, key = await gateway.tenant()
    status, answer = await gateway.call("GET", query, key=key)
    assert (400, "Validation error") == (status, answer["error"])


async def test_templates_page_with_a_cursor(
    gateway: Gateway, meta: MetaSimulator, receiver: Receiver
) -> None:
    name, key, number = await cloud_instance(gateway, meta, receiver)
    templates = five_templates()
    meta.set_templates(number, templates)
    status, _ = await gateway.call("POST", "/templates/sync", key=key, json={"instanceName": name})
    assert 200 == status

    names, cursor = [], None
    for _ in range(10):
        params = {"instance_id": name, "limit": "2"} | ({"cursor": cursor} if cursor else {})
        status, page = await gateway.call("GET", "/whatsapp/templates", key=key, params=params)
        assert 200 == status, page
        names += [t["name"] for t in page["data"]]
        cursor = page["pagination"]["next"]
        if cursor is None:
            break
    assert sorted(t["name"] for t in templates) == names

    for params in ({"cursor": "bm90LWpzb24"}, {"limit": "1001"}):
        status, answer = await gateway.call("GET", "/whatsapp/templates", key=key, params=params)
        assert (400, "Validation error") == (status, answer["error"]), params
