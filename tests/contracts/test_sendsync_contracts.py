"""The SendSync API's own request and answer examples, run against the gateway."""

import json
import re
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.support.gateway import Gateway, eventually
from tests.support.receiver import Receiver

pytestmark = pytest.mark.e2e

EXAMPLES = Path(__file__).parent / "sendsync"
ISO_MILLIS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def example(name: str) -> dict[str, Any]:
    return dict(json.loads((EXAMPLES / f"{name}.json").read_text()))


def credentials(auth: str, key: str) -> dict[str, str]:
    """The key sent the way the example sends it."""
    return {"Authorization": f"Bearer {key}"} if auth == "bearer" else {"X-API-Key": key}


async def call(
    gateway: Gateway, method: str, path: str, headers: dict[str, str], **kw: Any
) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession() as http,
        http.request(method, gateway.api + path, headers=headers, **kw) as response,
    ):
        return response.status, await response.json()


def form_of(seed: dict[str, Any], connector: str) -> aiohttp.FormData:
    form = aiohttp.FormData()
    for name, value in (seed["form"] | {"connectorId": connector}).items():
        form.add_field(name, value)
    file = seed["file"]
    form.add_field(file["field"], file["bytes"].encode(), filename=file["name"])
    return form


@pytest.mark.parametrize(
    "name", ["send_bearer", "send_api_key", "send_attachment_url", "send_multipart"]
)
async def test_a_send_example_answers_the_seeds_message_object(
    gateway: Gateway, receiver: Receiver, name: str
) -> None:
    seed = example(name)
    tenant = await gateway.tenant_with_instance(receiver.url(), connect=False)
    headers = credentials(seed["auth"], tenant.key)
    if "form" in seed:
        status, answer = await call(
            gateway, "POST", "/api/queue/send", headers, data=form_of(seed, tenant.name)
        )
    else:
        body = seed["request"] | {"connectorId": tenant.name}
        status, answer = await call(gateway, "POST", "/api/queue/send", headers, json=body)

    expected = seed["answer"]
    assert 201 == status, answer
    assert set(expected) == set(answer)
    same = ("status", "to", "message", "priority", "messageType", "externalId")
    assert {k: expected[k] for k in same} == {k: answer[k] for k in same}
    assert tenant.name == answer["connectorId"]
    assert ISO_MILLIS.match(answer["createdAt"])


async def test_the_bulk_example_queues_both_messages(gateway: Gateway, receiver: Receiver) -> None:
    seed = example("bulk")
    tenant = await gateway.tenant_with_instance(receiver.url(), connect=False)
    body = {"messages": [m | {"connectorId": tenant.name} for m in seed["request"]["messages"]]}
    status, answer = await call(
        gateway, "POST", "/api/queue/bulk", credentials("bearer", tenant.key), json=body
    )
    assert 201 == status, answer
    assert 2 == answer["count"]
    assert [("PENDING", "MARKETING", m["to"]) for m in body["messages"]] == [
        (m["status"], m["messageType"], m["to"]) for m in answer["messages"]
    ]


async def test_the_list_example_finds_the_sent_message_by_its_reference(
    gateway: Gateway, receiver: Receiver
) -> None:
    seed = example("list")
    tenant = await gateway.tenant_with_instance(receiver.url())
    headers = credentials(seed["auth"], tenant.key)
    shown = seed["answer"]["data"][0]
    form = aiohttp.FormData()
    fields = {
        "connectorId": tenant.name,
        "to": shown["to"],
        "message": shown["message"],
        "messageType": shown["messageType"],
        "externalId": shown["externalId"],
    }
    for name, value in fields.items():
        form.add_field(name, value)
    form.add_field("attachments", b"%PDF-1.4 file", filename="file.pdf")
    status, queued = await call(gateway, "POST", "/api/queue/send", headers, data=form)
    assert 201 == status, queued

    async def listed_as_sent() -> bool:
        _, page = await call(gateway, "GET", f"/api/queue/list?{seed['query']}", headers)
        return bool(page["data"])

    await eventually(listed_as_sent)
    status, page = await call(gateway, "GET", f"/api/queue/list?{seed['query']}", headers)
    assert 200 == status
    [item] = page["data"]
    assert set(shown) <= set(item)
    same = ("id", "to", "message", "status", "priority", "messageType", "externalId")
    assert {k: queued.get(k, shown[k]) for k in same} | {"status": "SENT"} == {
        k: item[k] for k in same
    }
    assert ISO_MILLIS.match(item["sentAt"])
    [attachment] = item["attachments"]
    assert "file.pdf" == attachment["originalFileName"]
    assert {"total": 1, "page": 1, "limit": 50, "pages": 1} == page["meta"]
    async with (
        aiohttp.ClientSession() as http,
        http.get(attachment["url"], headers=headers) as response,
    ):
        assert (200, b"%PDF-1.4 file") == (response.status, await response.read())


async def test_the_login_example_signs_a_user_in_and_its_token_works_as_bearer(
    gateway: Gateway,
) -> None:
    seed = example("login")
    tenant_id, _ = await gateway.tenant()
    # The seed's own address and password, made unique and long enough for this gateway.
    login = {
        "email": f"{uuid.uuid4().hex[:8]}.{seed['request']['email']}",
        "password": seed["request"]["password"] * 2,
    }
    status, _ = await gateway.call(
        "POST",
        f"/admin/tenants/{tenant_id}/users",
        json=login | {"role": "member"},
        headers={"apikey": gateway.admin_key},
    )
    assert 201 == status
    status, answer = await call(gateway, "POST", "/api/auth/login", {}, json=login)
    assert (200, login["email"], tenant_id) == (
        status,
        answer["user"]["email"],
        answer["user"]["tenantId"],
    )
    status, connectors = await call(
        gateway, "GET", "/api/connectors", credentials("bearer", answer["access_token"])
    )
    assert (200, []) == (status, connectors)
    wrong = login | {"password": "not-the-password"}
    assert 401 == (await call(gateway, "POST", "/api/auth/login", {}, json=wrong))[0]
