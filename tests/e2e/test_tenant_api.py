"""The seed-004 contract endpoint by endpoint, with two tenants to prove isolation."""

import asyncio
import json

import pytest

from ingress_api.accounts.keys import hash_key
from ingress_api.auth import KeyCache
from lanegate.events import utcnow
from lanegate.store import Store
from tests.support.gateway import Gateway, eventually
from tests.support.messages import DB
from tests.support.receiver import Receiver, event_named

pytestmark = pytest.mark.e2e

SECRET = "s3cret-s3cret-s3cret"


async def test_instance_listing_and_objects_carry_provider_and_capabilities(
    gateway: Gateway, receiver: Receiver
) -> None:
    tenant_id, key = await gateway.tenant()
    first = await gateway.instance(tenant_id, key, receiver.url())
    second = await gateway.instance(tenant_id, key, receiver.url(), connect=False)
    other_tenant, other_key = await gateway.tenant()
    await gateway.instance(other_tenant, other_key, receiver.url(), connect=False)

    status, listed = await gateway.call("GET", "/instances", key=key)

    assert 200 == status
    assert sorted([first, second]) == [i["instanceName"] for i in listed]
    one = next(i for i in listed if i["instanceName"] == first)
    assert ("sandbox", "open", "support") == (one["provider"], one["state"], one["clientId"])
    assert (False, False, False) == (
        one["supportsTemplates"],
        one["supportsButtons"],
        one["hasWindowRestriction"],
    )
    assert "webhookSecret" not in json.dumps(listed)
    assert SECRET not in json.dumps(listed)

    status, by_client = await gateway.call("GET", "/instances/support", key=key)
    assert (200, 2) == (status, len(by_client))
    status, none = await gateway.call("GET", "/instances/nobody", key=key)
    assert (200, []) == (status, none)


async def test_create_rejects_bad_names_short_secrets_and_duplicates(
    gateway: Gateway, receiver: Receiver
) -> None:
    tenant_id, key = await gateway.tenant()
    base = {"webhookUrl": receiver.url(), "webhookSecret": SECRET}

    status, body = await gateway.call(
        "POST", "/instance/create", key=key, json={**base, "instanceName": f"{tenant_id}_x_y"}
    )
    assert (400, ["instanceName"]) == (status, body["issues"][0]["path"])
    status, body = await gateway.call(
        "POST",
        "/instance/create",
        key=key,
        json={**base, "instanceName": f"{tenant_id}__a__b", "webhookSecret": "too-short"},
    )
    assert (400, ["webhookSecret"]) == (status, body["issues"][0]["path"])
    status, body = await gateway.call(
        "POST", "/instance/create", key=key, json={**base, "instanceName": "other__a__b"}
    )
    assert (403, "FORBIDDEN") == (status, body["code"])

    name = f"{tenant_id}__a__b"
    assert (
        201
        == (
            await gateway.call(
                "POST", "/instance/create", key=key, json={**base, "instanceName": name}
            )
        )[0]
    )
    status, body = await gateway.call(
        "POST", "/instance/create", key=key, json={**base, "instanceName": name}
    )
    assert (409, "CONFLICT") == (status, body["code"])


async def test_device_is_known_once_connected(gateway: Gateway, receiver: Receiver) -> None:
    tenant_id, key = await gateway.tenant()
    closed = await gateway.instance(tenant_id, key, receiver.url(), connect=False)
    opened = await gateway.instance(tenant_id, key, receiver.url())

    assert (200, {"device": None, "platform": None}) == await gateway.call(
        "GET", f"/instance/{closed}/device", key=key
    )
    status, body = await gateway.call("GET", f"/instance/{opened}/device", key=key)
    assert (200, "WHATSAPP") == (status, body["platform"])
    assert body["device"]


async def test_every_media_type_is_accepted_and_sent(gateway: Gateway, receiver: Receiver) -> None:
    tenant_id, key = await gateway.tenant()
    name = await gateway.instance(tenant_id, key, receiver.url())
    sends = {
        "image": {"imageUrl": "https://cdn.example.com/photo.jpg", "caption": "{Look|See}"},
        "document": {
            "documentUrl": "https://cdn.example.com/invoice.pdf",
            "fileName": "invoice-001.pdf",
            "caption": "Your invoice",
        },
        "audio": {"audioUrl": "https://cdn.example.com/audio.ogg"},
        "video": {"videoUrl": "https://cdn.example.com/video.mp4", "caption": "Watch"},
    }
    ids = {}
    for kind, fields in sends.items():
        status, body = await gateway.call(
            "POST",
            f"/message/{kind}",
            key=key,
            json={"instanceName": name, "to": "5491112345678", "lane": "urgent", **fields},
        )
        assert (202, "pending") == (status, body["status"]), body
        ids[kind] = body["id"]
    for kind, message_id in ids.items():
        await receiver.wait_for(event_named("message.status", id=message_id, status="sent"))
        _, message = await gateway.call("GET", f"/message/{message_id}", key=key)
        assert (kind, "sent") == (message["type"], message["status"])
    async with gateway.mongo() as client:
        image = await client.lanegate_test.sandbox_outbox.find_one({"_id": ids["image"]})
    assert image is not None and image["text"] in ("Look", "See")


@pytest.mark.parametrize(
    ("kind", "fields", "path"),
    [
        ("image", {"caption": "no url"}, ["imageUrl"]),
        ("image", {"imageUrl": "ftp://cdn.example.com/a.jpg"}, ["imageUrl"]),
        ("document", {"documentUrl": "not a url"}, ["documentUrl"]),
        ("video", {"videoUrl": "https://x.example/v.mp4", "caption": "{open"}, ["caption"]),
    ],
)
async def test_media_sends_validate_their_fields(
    gateway: Gateway, receiver: Receiver, kind: str, fields: dict[str, str], path: list[str]
) -> None:
    tenant_id, key = await gateway.tenant()
    name = await gateway.instance(tenant_id, key, receiver.url(), connect=False)
    status, body = await gateway.call(
        "POST",
        f"/message/{kind}",
        key=key,
        json={"instanceName": name, "to": "5491112345678", **fields},
    )
    assert (400, path) == (status, body["issues"][0]["path"])


async def test_routed_send_prefers_the_primary_open_instance(
    gateway: Gateway, receiver: Receiver
) -> None:
    tenant_id, key = await gateway.tenant()
    await gateway.instance(tenant_id, key, receiver.url())
    primary = await gateway.instance(tenant_id, key, receiver.url())
    closed = await gateway.instance(tenant_id, key, receiver.url(), connect=False)
    await gateway.call("PATCH", f"/instance/{closed}", key=key, json={"isPrimary": True})
    await gateway.call("PATCH", f"/instance/{primary}", key=key, json={"isPrimary": True})

    status, body = await gateway.call(
        "POST",
        "/message/send",
        key=key,
        json={
            "tenantId": tenant_id,
            "clientId": "support",
            "to": "5491112345678",
            "type": "text",
            "text": "Hello!",
        },
    )

    assert (202, primary) == (status, body["instanceName"])
    _, listed = await gateway.call("GET", "/instances/support", key=key)
    assert [primary] == [i["instanceName"] for i in listed if i["isPrimary"]]


async def test_routed_send_errors(gateway: Gateway, receiver: Receiver) -> None:
    tenant_id, key = await gateway.tenant()
    await gateway.instance(tenant_id, key, receiver.url(), connect=False)
    base = {"tenantId": tenant_id, "clientId": "support", "to": "5491112345678"}

    status, body = await gateway.call(
        "POST", "/message/send", key=key, json={**base, "type": "sticker"}
    )
    assert (400, ["type"]) == (status, body["issues"][0]["path"])
    status, body = await gateway.call(
        "POST", "/message/send", key=key, json={**base, "type": "image"}
    )
    assert (400, ["imageUrl"]) == (status, body["issues"][0]["path"])
    status, body = await gateway.call(
        "POST",
        "/message/send",
        key=key,
        json={**base, "type": "text", "text": "x", "clientId": "ghost"},
    )
    assert 404 == status
    status, body = await gateway.call(
        "POST",
        "/message/send",
        key=key,
        json={**base, "type": "text", "text": "x", "tenantId": "other"},
    )
    assert 403 == status


async def test_queue_flush_and_stats(gateway: Gateway, receiver: Receiver) -> None:
    tenant_id, key = await gateway.tenant()
    name = await gateway.instance(tenant_id, key, receiver.url(), connect=False)
    for lane in ("urgent", "bulk", "bulk"):
        await gateway.call(
            "POST",
            "/message/text",
            key=key,
            json={"instanceName": name, "to": "5491112345678", "text": "q", "lane": lane},
        )

    assert (200, {"urgent": 1, "normal": 0, "bulk": 2, "total": 3}) == await gateway.call(
        "GET", f"/instance/{name}/queue", key=key
    )
    status, stats = await gateway.call("GET", "/stats", key=key)
    assert (200, 1, {"queued": 3, "sent": 0, "failed": 0}) == (
        status,
        stats["instances"],
        stats["totals"],
    )
    assert {"urgent": 1, "normal": 0, "bulk": 2, "total": 3} == stats["perInstance"][0]["queue"]

    assert (200, {"instanceName": name, "flushed": 3}) == await gateway.call(
        "POST", f"/instance/{name}/queue/flush", key=key
    )
    assert (200, {"urgent": 0, "normal": 0, "bulk": 0, "total": 0}) == await gateway.call(
        "GET", f"/instance/{name}/queue", key=key
    )

    # Canceled messages never go, even once the instance connects.
    await gateway.call("POST", f"/sandbox/{name}/scan", key=key)
    await receiver.wait_for(event_named("instance.connected"))
    async with gateway.mongo() as client:
        statuses = await client.lanegate_test.messages.distinct("status", {"instanceName": name})
    assert ["canceled"] == statuses


async def test_logout_closes_the_instance_and_delete_removes_it(
    gateway: Gateway, receiver: Receiver
) -> None:
    tenant_id, key = await gateway.tenant()
    name = await gateway.instance(tenant_id, key, receiver.url())

    status, body = await gateway.call("POST", f"/instance/{name}/logout", key=key)
    assert (200, "close") == (status, body["state"])
    await receiver.wait_for(event_named("instance.disconnected", state="close"))

    await gateway.call(
        "POST",
        "/message/text",
        key=key,
        json={"instanceName": name, "to": "5491112345678", "text": "q"},
    )
    status, body = await gateway.call("DELETE", f"/instance/{name}", key=key)
    assert (200, {"instanceName": name, "deleted": True, "canceled": 1, "loggedOut": True}) == (
        status,
        body,
    )
    assert 404 == (await gateway.call("GET", f"/instance/{name}/status", key=key))[0]


async def test_health_needs_no_key(gateway: Gateway) -> None:
    status, body = await gateway.call("GET", "/health")
    assert (200, "ok") == (status, body["status"])
    assert {"status", "tenants", "instances", "queuedMessages", "uptime"} == set(body)


@pytest.mark.parametrize(
    "headers",
    [{"X-API-Key": "{key}"}, {"Authorization": "Bearer {key}"}, {"apikey": "{key}"}],
)
async def test_key_is_accepted_in_each_header_style(
    gateway: Gateway, headers: dict[str, str]
) -> None:
    _, key = await gateway.tenant()
    status, _ = await gateway.call(
        "GET", "/instances", headers={k: v.format(key=key) for k, v in headers.items()}
    )
    assert 200 == status


async def test_isolation_between_two_tenants(gateway: Gateway, receiver: Receiver) -> None:
    tenant_a, key_a = await gateway.tenant()
    name_a = await gateway.instance(tenant_a, key_a, receiver.url(), connect=False)
    _, key_b = await gateway.tenant()
    _, accepted = await gateway.call(
        "POST",
        "/message/text",
        key=key_a,
        json={"instanceName": name_a, "to": "5491112345678", "text": "a"},
    )

    for method, path, body in [
        ("GET", f"/instance/{name_a}/status", None),
        ("GET", f"/instance/{name_a}/device", None),
        ("GET", f"/instance/{name_a}/queue", None),
        ("POST", f"/instance/{name_a}/queue/flush", None),
        ("POST", f"/instance/{name_a}/logout", None),
        ("PATCH", f"/instance/{name_a}", {"displayName": "mine now"}),
        ("DELETE", f"/instance/{name_a}", None),
        ("POST", f"/sandbox/{name_a}/scan", None),
        ("POST", "/message/text", {"instanceName": name_a, "to": "5491112345678", "text": "x"}),
    ]:
        status, answer = await gateway.call(method, path, key=key_b, json=body)
        assert (403, "FORBIDDEN") == (status, answer["code"]), (method, path)
    assert 404 == (await gateway.call("GET", f"/message/{accepted['id']}", key=key_b))[0]
    _, stats_b = await gateway.call("GET", "/stats", key=key_b)
    assert (0, []) == (stats_b["instances"], stats_b["perInstance"])
    _, status_a = await gateway.call("GET", f"/instance/{name_a}/status", key=key_a)
    assert 1 == status_a["messagesQueuedCount"]


async def test_scoped_key_gets_403_insufficient_scope(gateway: Gateway, receiver: Receiver) -> None:
    tenant_id, key = await gateway.tenant()
    name = await gateway.instance(tenant_id, key, receiver.url(), connect=False)
    status, created = await gateway.call(
        "POST",
        f"/admin/tenants/{tenant_id}/keys",
        headers={"apikey": gateway.admin_key},
        json={"name": "read only", "scopes": ["instances:read"]},
    )
    assert (201, ["instances:read"]) == (status, created["scopes"])
    reader = created["apiKey"]

    assert 200 == (await gateway.call("GET", f"/instance/{name}/status", key=reader))[0]
    status, body = await gateway.call(
        "POST",
        "/message/text",
        key=reader,
        json={"instanceName": name, "to": "5491112345678", "text": "x"},
    )
    assert (403, "INSUFFICIENT_SCOPE") == (status, body["code"])


async def test_admin_lists_disables_tenants_and_revokes_keys(gateway: Gateway) -> None:
    admin = {"apikey": gateway.admin_key}
    tenant_id, key = await gateway.tenant()
    status, tenants = await gateway.call("GET", "/admin/tenants", headers=admin)
    assert 200 == status and tenant_id in [t["id"] for t in tenants]

    _, second = await gateway.call(
        "POST", f"/admin/tenants/{tenant_id}/keys", headers=admin, json={}
    )
    status, keys = await gateway.call("GET", f"/admin/tenants/{tenant_id}/keys", headers=admin)
    assert (200, 2) == (status, len(keys))
    assert "keyHash" not in json.dumps(keys) and key not in json.dumps(keys)
    assert 200 == (await gateway.call("GET", "/instances", key=second["apiKey"]))[0]

    status, revoked = await gateway.call(
        "DELETE", f"/admin/tenants/{tenant_id}/keys/{second['id']}", headers=admin
    )
    assert 200 == status and revoked["revokedAt"]
    assert 401 == (await gateway.call("GET", "/instances", key=second["apiKey"]))[0]
    assert 200 == (await gateway.call("GET", "/instances", key=key))[0]

    status, body = await gateway.call(
        "PATCH", f"/admin/tenants/{tenant_id}", headers=admin, json={"disabled": True}
    )
    assert (200, True) == (status, body["disabled"])
    assert 401 == (await gateway.call("GET", "/instances", key=key))[0]


async def test_admin_needs_the_operator_key(gateway: Gateway) -> None:
    _, key = await gateway.tenant()
    assert 401 == (await gateway.call("GET", "/admin/tenants", key=key))[0]
    assert 401 == (await gateway.call("GET", "/admin/tenants"))[0]
    status, body = await gateway.call(
        "POST",
        "/admin/tenants",
        headers={"apikey": gateway.admin_key},
        json={"id": "Bad Id!", "name": "x"},
    )
    assert (400, ["id"]) == (status, body["issues"][0]["path"])


async def test_key_last_used_is_recorded(gateway: Gateway) -> None:
    tenant_id, key = await gateway.tenant()
    await gateway.call("GET", "/instances", key=key)

    async def recorded() -> bool:
        _, keys = await gateway.call(
            "GET", f"/admin/tenants/{tenant_id}/keys", headers={"apikey": gateway.admin_key}
        )
        return keys[0]["lastUsedAt"] is not None

    await eventually(recorded, timeout=5)


async def test_docs_page_and_openapi_describe_every_endpoint(gateway: Gateway) -> None:
    status, doc = await gateway.call("GET", "/openapi.json")
    assert (200, "3.1.0") == (status, doc["openapi"])
    assert {"/message/text", "/instance/create", "/stats", "/health"} <= set(doc["paths"])
    assert {"message.status", "message.received", "instance.connected"} <= set(doc["webhooks"])
    status, _ = await gateway.call("GET", "/docs")
    assert 200 == status


async def test_secrets_never_reach_answers_or_logs(gateway: Gateway, receiver: Receiver) -> None:
    tenant_id, key = await gateway.tenant()
    secret = f"unique-{tenant_id}-webhook-secret"
    name = f"{tenant_id}__support__main"
    answers = [
        await gateway.call(
            "POST",
            "/instance/create",
            key=key,
            json={"instanceName": name, "webhookUrl": receiver.url(), "webhookSecret": secret},
        )
    ]
    answers.append(await gateway.call("POST", f"/sandbox/{name}/scan", key=key))
    await receiver.wait_for(event_named("instance.connected"))
    _, accepted = await gateway.call(
        "POST",
        "/message/text",
        key=key,
        json={"instanceName": name, "to": "5491112345678", "text": "x"},
    )
    await receiver.wait_for(event_named("message.status", id=accepted["id"], status="read"))
    for method, path in [
        ("GET", "/instances"),
        ("GET", f"/instance/{name}/status"),
        ("GET", "/stats"),
    ]:
        answers.append(await gateway.call(method, path, key=key))
    answers.append(
        await gateway.call(
            "PATCH", f"/instance/{name}", key=key, json={"webhookSecret": secret + "2"}
        )
    )

    text = json.dumps(answers)
    logs = "".join(p.read_text() for p in gateway.stack.log_dir.glob("*.log"))
    for value in (secret, secret + "2", key, gateway.admin_key):
        assert value not in text
        assert value not in logs


async def test_a_key_revoked_by_another_replica_stops_working_once_its_cache_entry_ends(
    gateway: Gateway,
) -> None:
    tenant_id, key = await gateway.tenant()
    store = Store(gateway.store_uri, DB)
    await store.connect()
    try:
        keys = KeyCache(ttl=0.5)
        known = await keys.lookup(store, hash_key(key))
        assert known is not None and tenant_id == known.record["tenantId"]
        # Another ingress replica revokes it: this one keeps its entry for the TTL at most.
        await store.api_keys.update_many({"tenantId": tenant_id}, {"$set": {"revokedAt": utcnow()}})
        assert known is await keys.lookup(store, hash_key(key))
        await asyncio.sleep(0.6)
        assert await keys.lookup(store, hash_key(key)) is None
        assert await keys.lookup(store, hash_key("lg_never_issued")) is None
    finally:
        await store.close()
