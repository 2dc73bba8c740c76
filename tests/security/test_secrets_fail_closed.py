"""Secrets fail closed: no sealing key outside development, no short operator key, and a
tenant's secret that looks sealed is sealed again rather than stored as given."""

import asyncio
import subprocess
import sys
import uuid
from typing import Any

import pytest

from devtools.stack import delete_topology, free_port, wait_http
from lanegate.secrets import Keyring, SecretKeyError, is_sealed, new_key, require_keys
from lanegate.signing import verify_gateway_signature
from tests.conftest import AMQP_URL, SECRET_KEY
from tests.support.gateway import FAST_LANES, Gateway
from tests.support.receiver import Receiver, event_named

ADMIN_KEY = "a" * 32


def test_a_missing_secret_key_is_refused_outside_development() -> None:
    with pytest.raises(SecretKeyError, match=r"LANEGATE_SECRET_KEY is not set.*LANEGATE_ENV"):
        require_keys("", ADMIN_KEY, development=False)
    with pytest.raises(SecretKeyError, match="LANEGATE_SECRET_KEY is not set"):
        require_keys(" ", ADMIN_KEY, development=False)
    for no_key in (",", " , ,"):  # only separators: no key at all, not a list of keys
        with pytest.raises(SecretKeyError, match="LANEGATE_SECRET_KEY is not set"):
            require_keys(no_key, ADMIN_KEY, development=False)
    require_keys("", ADMIN_KEY, development=True)
    require_keys(new_key(), ADMIN_KEY, development=False)


def test_an_operator_key_under_32_characters_is_refused() -> None:
    with pytest.raises(SecretKeyError, match="LANEGATE_ADMIN_KEY must be at least 32 characters"):
        require_keys(new_key(), "a" * 31, development=True)
    require_keys(new_key(), "", development=False)  # no key: the admin API is off


def test_a_look_alike_is_sealed_again_with_a_key() -> None:
    keyring = Keyring(new_key())
    forged = keyring.encrypt("what the forger wants used")
    stored = keyring.encrypt(forged)
    assert (True, forged) == (stored != forged and is_sealed(stored), keyring.decrypt(stored))


@pytest.mark.parametrize("given", ["enc:v1:not-a-token", "plain:v1:x", "plain:v1:enc:v1:y"])
def test_without_a_key_a_look_alike_is_kept_marked_and_opens_as_given(given: str) -> None:
    bare = Keyring("")
    stored = bare.encrypt(given)
    assert stored != given and not is_sealed(stored)
    assert given == bare.decrypt(stored)
    keyring = Keyring(new_key())
    resealed = keyring.reseal(stored)
    assert is_sealed(resealed) and given == keyring.decrypt(resealed)


def _run_service(env: dict[str, str]) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "template_sync"], env=env, capture_output=True, timeout=60
    )


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"LANEGATE_SECRET_KEY": ""}, "LANEGATE_SECRET_KEY is not set"),
        ({"LANEGATE_ADMIN_KEY": "x" * 31}, "LANEGATE_ADMIN_KEY must be at least 32 characters"),
        (
            {"LANEGATE_ADMIN_KEY": "x" * 31, "LANEGATE_ENV": "development"},
            "LANEGATE_ADMIN_KEY must be at least 32 characters",
        ),
    ],
)
async def test_a_service_refuses_to_start_and_says_why(
    gateway: Gateway, changes: dict[str, str], reason: str
) -> None:
    env = {**gateway.stack.env, "LANEGATE_TEMPLATE_SYNC_PORT": str(free_port()), **changes}
    result = await asyncio.to_thread(_run_service, env)
    assert 0 != result.returncode
    assert reason in result.stdout.decode() + result.stderr.decode()


@pytest.mark.e2e
def test_development_runs_without_a_secret_key(gateway: Gateway) -> None:
    namespace = f"lgtest-{uuid.uuid4().hex[:8]}"
    port = free_port()
    env = {
        **gateway.stack.env,
        "LANEGATE_SECRET_KEY": "",
        "LANEGATE_ENV": "development",
        "LANEGATE_NAMESPACE": namespace,
        "LANEGATE_MONGO_DB": f"lanegate_own_{uuid.uuid4().hex[:8]}",
        "LANEGATE_TEMPLATE_SYNC_PORT": str(port),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "template_sync"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/readyz", 60)
    finally:
        process.terminate()
        process.wait(30)
        asyncio.run(delete_topology(AMQP_URL, namespace))


@pytest.mark.e2e
async def test_a_tenant_secret_that_looks_sealed_is_sealed_again(
    gateway: Gateway, receiver: Receiver
) -> None:
    keyring = Keyring(SECRET_KEY)
    tenant_id, key = await gateway.tenant()
    forged = keyring.encrypt("the-forgers-choice")
    name = f"{tenant_id}__support__forged"
    cloud = f"{tenant_id}__support__cloud"
    forged_config = {
        "phoneNumberId": "123456789",
        "wabaId": "987654321",
        "accessToken": keyring.encrypt("token"),
        "appSecret": keyring.encrypt("app"),
        "verifyToken": keyring.encrypt("verify"),
    }
    bodies: list[tuple[str, dict[str, Any]]] = [
        (name, {"webhookSecret": forged, "lanes": FAST_LANES}),
        (
            cloud,
            {"webhookSecret": forged, "provider": "cloud_api", "providerConfig": forged_config},
        ),
    ]
    for instance, body in bodies:
        status, answer = await gateway.call(
            "POST",
            "/instance/create",
            key=key,
            json={"instanceName": instance, "webhookUrl": receiver.url(), **body},
        )
        assert 201 == status, answer
    async with gateway.mongo() as client:
        stored = await client.lanegate_test.instances.find_one({"_id": cloud})
    assert stored is not None
    for field, given in forged_config.items():
        if given.startswith("enc:v1:"):
            kept = stored["providerConfig"][field]
            assert (True, given) == (kept != given, keyring.decrypt(kept)), field

    status, _ = await gateway.call(
        "PATCH", f"/instance/{cloud}", key=key, json={"webhookSecret": forged}
    )
    assert 200 == status
    async with gateway.mongo() as client:
        stored = await client.lanegate_test.instances.find_one({"_id": cloud})
    assert stored is not None
    assert (True, forged) == (
        stored["webhookSecret"] != forged,
        keyring.decrypt(stored["webhookSecret"]),
    )

    # The webhook is signed with the secret as the tenant gave it, not with what it would open to.
    assert 202 == (await gateway.call("POST", f"/sandbox/{name}/scan", key=key))[0]
    [hook] = await receiver.wait_for(event_named("instance.connected"))
    assert verify_gateway_signature(hook.body, forged, hook.headers["x-gateway-signature"])


@pytest.mark.e2e
async def test_look_alike_provider_secrets_are_sealed_again_for_waha_and_on_patch(
    gateway: Gateway, receiver: Receiver
) -> None:
    keyring = Keyring(SECRET_KEY)
    tenant_id, key = await gateway.tenant()
    waha, cloud = f"{tenant_id}__support__waha", f"{tenant_id}__support__cloud"
    forged = keyring.encrypt("the-forgers-choice")
    common = {"webhookUrl": receiver.url(), "webhookSecret": "s3cret-s3cret-s3cret"}
    configs = {
        waha: ("waha", {"baseUrl": "https://waha.example", "apiKey": forged}),
        cloud: (
            "cloud_api",
            {
                "phoneNumberId": "123456789",
                "wabaId": "987654321",
                "accessToken": "token",
                "appSecret": "app-secret",
                "verifyToken": "verify-me-please",
            },
        ),
    }
    for name, (provider, config) in configs.items():
        body = {"instanceName": name, "provider": provider, "providerConfig": config} | common
        status, answer = await gateway.call("POST", "/instance/create", key=key, json=body)
        assert 201 == status, answer
    status, answer = await gateway.call(
        "PATCH", f"/instance/{cloud}", key=key, json={"providerConfig": {"appSecret": forged}}
    )
    assert 200 == status, answer

    kept: dict[str, Any] = {}
    async with gateway.mongo() as client:
        async for instance in client.lanegate_test.instances.find({"_id": {"$in": [waha, cloud]}}):
            kept[instance["_id"]] = instance["providerConfig"]
    for stored in (kept[waha]["apiKey"], kept[cloud]["appSecret"]):
        assert (True, forged) == (stored != forged, keyring.decrypt(stored))
