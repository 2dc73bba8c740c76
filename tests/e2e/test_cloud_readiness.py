"""A Cloud API number is ready when its credentials are: checked with Meta at create, on a
providerConfig change and on connect; a send to a number that is not open says so."""

import json
import uuid
from typing import Any

import pytest

from tests.e2e.test_templates import meta_template
from tests.simulators.meta import MetaSimulator, Number
from tests.support.cloud import cloud_config, create_cloud
from tests.support.gateway import Gateway, eventually
from tests.support.receiver import Receiver, event_named

pytestmark = pytest.mark.e2e

CONTACT = "5491187654321"


async def fresh(gateway: Gateway, meta: MetaSimulator) -> tuple[str, str, Number]:
    """A tenant, an instance name and a number Meta knows, not yet registered."""
    tenant_id, key = await gateway.tenant()
    name = f"{tenant_id}__support__{uuid.uuid4().hex[:6]}"
    return key, name, meta.add_number(f"{gateway.api}/webhooks/cloud/{name}")


async def status_of(gateway: Gateway, key: str, name: str) -> dict[str, Any]:
    status, body = await gateway.call("GET", f"/instance/{name}/status", key=key)
    assert 200 == status, body
    return dict(body)


async def templates_synced(gateway: Gateway, key: str, name: str) -> bool:
    sync = (await status_of(gateway, key, name))["templateSync"]
    return sync is not None and sync["result"] == "ok"


def digits(number: Number) -> str:
    return "".join(c for c in number.display_phone_number if c.isdigit())


async def test_good_credentials_open_the_number_at_create_and_sync_its_templates(
    gateway: Gateway, meta: MetaSimulator, receiver: Receiver
) -> None:
    key, name, number = await fresh(gateway, meta)
    meta.set_templates(number, [meta_template("welcome", "Olá {{1}}")])

    created = await create_cloud(gateway, key, name, receiver, cloud_config(number, meta))

    assert {"instanceName": name, "status": "open"} == created
    assert (number.phone_number_id, "display_phone_number,quality_rating") in meta.phone_requests
    status = await status_of(gateway, key, name)
    assert ("open", digits(number), None) == (
        status["state"],
        status["phoneNumber"],
        status["lastError"],
    )
    told = await receiver.wait_for(event_named("instance.connected", phoneNumber=digits(number)))
    assert name == json.loads(told[0].body)["instanceName"]

    await eventually(lambda: templates_synced(gateway, key, name))
    _, body = await gateway.call(
        "GET", "/whatsapp/templates", key=key, params={"instance_id": name}
    )
    assert ["welcome"] == [t["name"] for t in body["data"]]


async def test_refused_credentials_leave_it_close_with_the_reason_until_a_patch_fixes_them(
    gateway: Gateway, meta: MetaSimulator, receiver: Receiver
) -> None:
    key, name, number = await fresh(gateway, meta)

    created = await create_cloud(
        gateway, key, name, receiver, cloud_config(number, meta, accessToken="EAAG-wrong")
    )

    assert {"instanceName": name, "status": "close"} == created
    status = await status_of(gateway, key, name)
    error = status["lastError"]
    assert ("close", "190") == (status["state"], error["code"])
    assert "Invalid OAuth access token" in error["message"] and error["at"].endswith("Z")
    told = await receiver.wait_for(event_named("instance.disconnected"))
    assert "Invalid OAuth access token" in json.loads(told[0].body)["data"]["reason"]

    code, patched = await gateway.call(
        "PATCH",
        f"/instance/{name}",
        key=key,
        json={"providerConfig": {"accessToken": number.access_token}},
    )

    assert (200, "open", None) == (code, patched["state"], patched["lastError"])
    await receiver.wait_for(event_named("instance.connected", phoneNumber=digits(number)))


async def test_a_number_of_another_business_is_refused_with_metas_code(
    gateway: Gateway, meta: MetaSimulator, receiver: Receiver
) -> None:
    key, name, number = await fresh(gateway, meta)
    other = meta.add_number("http://127.0.0.1:9/unused")

    await create_cloud(
        gateway, key, name, receiver, cloud_config(number, meta, accessToken=other.access_token)
    )

    status = await status_of(gateway, key, name)
    assert ("close", "803") == (status["state"], status["lastError"]["code"])


async def test_a_slow_check_answers_connecting_and_its_outcome_lands_later(
    gateway: Gateway, meta: MetaSimulator, receiver: Receiver
) -> None:
    key, name, number = await fresh(gateway, meta)
    held = meta.hold_number_checks(number)
    try:
        created = await create_cloud(gateway, key, name, receiver, cloud_config(number, meta))
    finally:
        held.set()  # before Meta's answer is late enough to time out in provider-sender

    assert {"instanceName": name, "status": "connecting"} == created

    async def opened() -> bool:
        return bool((await status_of(gateway, key, name))["state"] == "open")

    await eventually(opened)
    await receiver.wait_for(event_named("instance.connected", phoneNumber=digits(number)))


async def test_connect_checks_again_and_a_success_clears_the_last_error(
    gateway: Gateway, meta: MetaSimulator, receiver: Receiver
) -> None:
    key, name, number = await fresh(gateway, meta)
    token = number.access_token
    await create_cloud(gateway, key, name, receiver, cloud_config(number, meta))
    number.access_token = "EAAG-revoked"  # revoked at Meta

    refused, _ = await gateway.call("POST", f"/instance/{name}/connect", key=key)

    status = await status_of(gateway, key, name)
    assert (502, "close", "190") == (refused, status["state"], status["lastError"]["code"])
    await receiver.wait_for(event_named("instance.disconnected"))

    number.access_token = token
    accepted, body = await gateway.call("POST", f"/instance/{name}/connect", key=key)

    assert (200, "open") == (accepted, body["state"])
    assert None is (await status_of(gateway, key, name))["lastError"]


async def test_a_bad_provider_config_patch_is_400_and_changes_nothing(
    gateway: Gateway, meta: MetaSimulator, receiver: Receiver
) -> None:
    key, name, number = await fresh(gateway, meta)
    await create_cloud(gateway, key, name, receiver, cloud_config(number, meta))
    # The sync an opened number starts writes its outcome: wait for it, so only PATCHes remain.
    await eventually(lambda: templates_synced(gateway, key, name))
    async with gateway.mongo() as client:
        before = await client.lanegate_test.instances.find_one({"_id": name})

        for change in ({"phoneNumberId": "not-digits"}, {"unknown": "x"}, {"accessToken": ""}):
            status, body = await gateway.call(
                "PATCH", f"/instance/{name}", key=key, json={"providerConfig": change}
            )
            assert (400, "providerConfig") == (status, body["issues"][0]["path"][0]), body

        assert before == await client.lanegate_test.instances.find_one({"_id": name})


async def test_a_send_to_an_instance_that_is_not_open_is_accepted_and_says_so(
    gateway: Gateway, receiver: Receiver
) -> None:
    tenant_id, key = await gateway.tenant()
    closed = await gateway.instance(tenant_id, key, receiver.url(), connect=False)
    opened = await gateway.instance(tenant_id, key, receiver.url())
    text = {"to": CONTACT, "text": "Hello"}

    one = await gateway.call("POST", "/message/text", key=key, json=text | {"instanceName": closed})
    bulk = await gateway.call(
        "POST",
        "/message/bulk",
        key=key,
        json={"messages": [text | {"instanceName": closed}, text | {"instanceName": opened}]},
    )
    routed = await gateway.call(
        "POST",
        "/message/send",
        key=key,
        json=text | {"type": "text", "tenantId": tenant_id, "clientId": "support"},
    )

    assert (202, "pending", "close") == (one[0], one[1]["status"], one[1]["instanceState"])
    assert 202 == bulk[0]
    assert ["close", "open"] == [m["instanceState"] for m in bulk[1]["messages"]]
    assert (202, opened, "open") == (
        routed[0],
        routed[1]["instanceName"],
        routed[1]["instanceState"],
    )
    _, queued = await gateway.call("GET", f"/message/{one[1]['id']}", key=key)
    assert "pending" == queued["status"]


async def test_a_message_to_a_refused_number_waits_and_goes_once_its_token_is_fixed(
    gateway: Gateway, meta: MetaSimulator, receiver: Receiver
) -> None:
    key, name, number = await fresh(gateway, meta)
    await create_cloud(
        gateway, key, name, receiver, cloud_config(number, meta, accessToken="EAAG-wrong")
    )
    assert 200 == await meta.inbound(number, CONTACT, {"type": "text", "text": {"body": "Hi"}})
    await receiver.wait_for(event_named("message.received", **{"from": CONTACT}))
    status, sent = await gateway.call(
        "POST",
        "/message/text",
        key=key,
        json={"instanceName": name, "to": CONTACT, "text": "{Hello|Hi} there", "lane": "urgent"},
    )
    assert (202, "close") == (status, sent["instanceState"]), sent

    code, patched = await gateway.call(
        "PATCH",
        f"/instance/{name}",
        key=key,
        json={"providerConfig": {"accessToken": number.access_token}},
    )

    assert (200, "open") == (code, patched["state"]), patched
    await receiver.wait_for(event_named("message.status", id=sent["id"], status="sent"))
    _, shown = await gateway.call("GET", f"/message/{sent['id']}", key=key)
    assert ("sent", 1) == (shown["status"], shown["attempts"])
    assert shown["sentText"] in ("Hello there", "Hi there")
