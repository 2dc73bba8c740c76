"""Secrets at rest: a full run with every provider's secrets leaves none in plain form in the
store or in any service's log, and plaintext from before sealing keeps working and gets sealed."""

import asyncio
import json
import subprocess
import sys
import uuid
from typing import Any

import pytest

from devtools.stack import free_port
from lanegate.secrets import PREFIX, SECRET_FIELDS, Keyring, new_key
from lanegate.signing import verify_gateway_signature
from tests.conftest import SECRET_KEY
from tests.simulators.meta import MetaSimulator
from tests.simulators.waha import WahaSimulator
from tests.support.gateway import FAST_LANES, Gateway, eventually
from tests.support.receiver import Receiver, event_named
from tests.support.store_proxy import StoreProxy

pytestmark = pytest.mark.e2e

CONTACT = "5491187654321"
WAHA_PHONE = "5491155550000"


async def _create(gateway: Gateway, key: str, name: str, body: dict[str, Any]) -> None:
    status, answer = await gateway.call(
        "POST", "/instance/create", key=key, json={"instanceName": name, **body}
    )
    assert 201 == status, answer


async def _send(gateway: Gateway, key: str, name: str, to: str) -> str:
    status, answer = await gateway.call(
        "POST",
        "/message/text",
        key=key,
        json={"instanceName": name, "to": to, "text": "hi", "lane": "urgent"},
    )
    assert 202 == status, answer
    return str(answer["id"])


async def test_no_secret_reaches_the_store_or_a_log_in_plain_form(
    gateway: Gateway, meta: MetaSimulator, waha: WahaSimulator, receiver: Receiver
) -> None:
    tenant_id, key = await gateway.tenant()
    secret = {p: f"whsec-{p}-{uuid.uuid4().hex}" for p in ("sandbox", "cloud", "waha")}
    names = {p: f"{tenant_id}__support__{p}" for p in secret}
    base = {"webhookUrl": receiver.url(), "lanes": FAST_LANES}

    await _create(gateway, key, names["sandbox"], {**base, "webhookSecret": secret["sandbox"]})
    number = meta.add_number(f"{gateway.api}/webhooks/cloud/{names['cloud']}")
    verify_token = f"verify-{uuid.uuid4().hex}"
    cloud_config = {
        "phoneNumberId": number.phone_number_id,
        "wabaId": number.waba_id,
        "accessToken": number.access_token,
        "appSecret": number.app_secret,
        "verifyToken": verify_token,
        "baseUrl": meta.url,
    }
    await _create(
        gateway,
        key,
        names["cloud"],
        {
            **base,
            "webhookSecret": secret["cloud"],
            "provider": "cloud_api",
            "providerConfig": cloud_config,
        },
    )
    session = f"s{uuid.uuid4().hex[:8]}"
    await _create(
        gateway,
        key,
        names["waha"],
        {
            **base,
            "webhookSecret": secret["waha"],
            "provider": "waha",
            "providerConfig": {"baseUrl": waha.url, "apiKey": waha.api_key, "session": session},
        },
    )

    # Sessions: sandbox scan, Cloud API connect, WAHA start and scan (signed callbacks).
    assert 202 == (await gateway.call("POST", f"/sandbox/{names['sandbox']}/scan", key=key))[0]
    for name in (names["cloud"], names["waha"]):
        assert 200 == (await gateway.call("POST", f"/instance/{name}/connect", key=key))[0]
    await waha.scan(session, WAHA_PHONE)
    await receiver.wait_for(event_named("instance.connected", phoneNumber=WAHA_PHONE))
    status, _ = await gateway.call(
        "GET",
        f"/webhooks/cloud/{names['cloud']}?hub.mode=subscribe&hub.verify_token={verify_token}"
        "&hub.challenge=42",
    )
    assert 200 == status
    # Inbound callbacks (signed with the app secret and the WAHA HMAC key), then sends.
    assert 200 == await meta.inbound(number, CONTACT, {"type": "text", "text": {"body": "Hi"}})
    assert 200 == await waha.inbound(session, CONTACT, "Hi")
    await receiver.wait_for(event_named("message.received", **{"from": CONTACT}), count=2)
    sent = [await _send(gateway, key, names[p], CONTACT) for p in secret]
    for message_id in sent:
        await receiver.wait_for(event_named("message.status", id=message_id, status="delivered"))

    # Every webhook of these instances was signed with the instance's own secret.
    for request in receiver.requests:
        event = json.loads(request.body)
        provider = next((p for p, n in names.items() if n == event["instanceName"]), None)
        if provider is not None:
            signature = request.headers["x-gateway-signature"]
            assert verify_gateway_signature(request.body, secret[provider], signature)

    hmac_key = waha.sessions[session].hmac_key
    used = [*secret.values(), number.access_token, number.app_secret, verify_token]
    used += [waha.api_key, hmac_key, key, gateway.admin_key, SECRET_KEY]
    async with gateway.mongo() as client:
        db = client.lanegate_test
        stored = await db.instances.find({"tenantId": tenant_id}).to_list(None)
        everything = ""
        for collection in await db.list_collection_names():
            docs = await db[collection].find({}).to_list(None)
            everything += json.dumps(docs, default=str)
    logs = "".join(p.read_text() for p in gateway.stack.log_dir.glob("*.log"))
    assert {"in store": [], "in logs": []} == {
        "in store": [s for s in used if s in everything],
        "in logs": [s for s in used if s in logs],
    }
    sealed = [doc["webhookSecret"] for doc in stored]
    for doc in stored:
        sealed += [v for k, v in doc["providerConfig"].items() if k in SECRET_FIELDS]
    assert 3 + 3 + 2 == len(sealed)  # webhook secrets, cloud_api secrets, waha secrets
    assert all(value.startswith(PREFIX) for value in sealed)


async def _with_plaintext_secret(gateway: Gateway, receiver: Receiver) -> tuple[str, str, str]:
    """An instance whose webhook secret is stored in plain form, as before sealing: its
    tenant's key, its name and the secret."""
    tenant_id, key = await gateway.tenant()
    name = await gateway.instance(tenant_id, key, receiver.url(), connect=False)
    legacy = f"legacy-plain-{uuid.uuid4().hex}"
    async with gateway.mongo() as client:
        instances = client.lanegate_test.instances
        await instances.update_one({"_id": name}, {"$set": {"webhookSecret": legacy}})
    return key, name, legacy


async def test_plaintext_from_before_keeps_working_and_is_sealed_at_ingress_start(
    gateway: Gateway, receiver: Receiver
) -> None:
    key, name, legacy = await _with_plaintext_secret(gateway, receiver)
    async with gateway.mongo() as client:
        instances = client.lanegate_test.instances
        assert 202 == (await gateway.call("POST", f"/sandbox/{name}/scan", key=key))[0]
        [hook] = await receiver.wait_for(event_named("instance.connected"))
        assert verify_gateway_signature(hook.body, legacy, hook.headers["x-gateway-signature"])

        gateway.stack.stop("ingress_api")
        gateway.stack.start("ingress_api")

        async def sealed() -> bool:
            doc = await instances.find_one({"_id": name})
            return bool(doc and str(doc["webhookSecret"]).startswith(PREFIX))

        await eventually(sealed)
        doc = await instances.find_one({"_id": name}) or {}
        assert legacy == Keyring(SECRET_KEY).decrypt(doc["webhookSecret"])
    status, _ = await gateway.call(
        "POST", f"/sandbox/{name}/inbound", key=key, json={"from": CONTACT, "text": "again"}
    )
    assert 202 == status
    [hook] = await receiver.wait_for(event_named("message.received", text="again"))
    assert verify_gateway_signature(hook.body, legacy, hook.headers["x-gateway-signature"])


async def test_ingress_serves_while_its_start_up_reseal_waits_on_the_store(
    gateway: Gateway, receiver: Receiver
) -> None:
    key, name, legacy = await _with_plaintext_secret(gateway, receiver)
    proxy = StoreProxy(gateway.stack.store_port)
    await proxy.start()
    async with gateway.mongo() as client:
        instances = client.lanegate_test.instances
        proxy.hold("update", "instances")
        stack = gateway.stack
        await asyncio.to_thread(stack.stop, "ingress_api")
        await asyncio.to_thread(
            stack.start, "ingress_api", wait=False, env={"LANEGATE_MONGO_URI": proxy.uri}
        )
        try:

            async def resealing() -> bool:
                return proxy.held > 0

            await eventually(resealing, timeout=30)
            await eventually(lambda: gateway.ready("ingress_api"), timeout=30)
            status, body = await gateway.call("GET", f"/instance/{name}/status", key=key)
            assert 200 == status, body
            assert 0 < proxy.held
            assert legacy == (await instances.find_one({"_id": name}) or {})["webhookSecret"]

            proxy.release()

            async def sealed() -> bool:
                doc = await instances.find_one({"_id": name}) or {}
                return str(doc.get("webhookSecret")).startswith(PREFIX)

            await eventually(sealed)
        finally:
            await proxy.close()
            await asyncio.to_thread(stack.stop, "ingress_api")
            await asyncio.to_thread(stack.start, "ingress_api")


@pytest.mark.parametrize(
    ("secret_key", "reason"),
    [
        ("", "LANEGATE_SECRET_KEY is not set"),
        (new_key(), "No key in LANEGATE_SECRET_KEY opens"),
        ("not-a-key", "must be comma-separated Fernet keys"),
    ],
)
async def test_a_service_without_the_right_key_refuses_to_start_and_says_why(
    gateway: Gateway, receiver: Receiver, secret_key: str, reason: str
) -> None:
    tenant_id, key = await gateway.tenant()
    await gateway.instance(tenant_id, key, receiver.url(), connect=False)  # a sealed secret
    env = {
        **gateway.stack.env,
        "LANEGATE_SECRET_KEY": secret_key,
        "LANEGATE_TEMPLATE_SYNC_PORT": str(free_port()),
    }
    result = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "template_sync"],
        env=env,
        capture_output=True,
        timeout=60,
    )
    assert 0 != result.returncode
    assert reason in result.stdout.decode() + result.stderr.decode()
