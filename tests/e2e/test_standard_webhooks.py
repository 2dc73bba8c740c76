"""Webhook secrets in the Standard Webhooks form (`whsec_<base64>`): real deliveries verify
with the `standardwebhooks` package, the plain form keeps its signatures, bad ones are 400."""

import asyncio
import base64
import hashlib
import hmac
import json
import re
import secrets
import shutil
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from lanegate.signing import verify_gateway_signature
from tests.support.gateway import Gateway
from tests.support.receiver import Received, Receiver, event_named

pytestmark = pytest.mark.e2e

WHSEC = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
ROOT = Path(__file__).parents[2]
# A plain secret beyond ASCII: its UTF-8 bytes key webhook-signature.
PLAIN_SECRET = "sécret-plain-ümlaut-ão-0123456789"


async def _create(gateway: Gateway, key: str, tenant_id: str, url: str, secret: str) -> str:
    return await gateway.instance(tenant_id, key, url, connect=False, webhook_secret=secret)


async def _connected(gateway: Gateway, key: str, name: str, receiver: Receiver) -> Received:
    """Scan the sandbox phone and return the `instance.connected` delivery it causes."""
    status, body = await gateway.call("POST", f"/sandbox/{name}/scan", key=key)
    assert 202 == status, body
    [hook] = await receiver.wait_for(
        lambda r: (
            json.loads(r.body)["event"] == "instance.connected"
            and json.loads(r.body)["instanceName"] == name
        )
    )
    return hook


async def test_a_whsec_secret_signs_deliveries_standard_webhooks_libraries_accept(
    gateway: Gateway, receiver: Receiver
) -> None:
    tenant_id, key = await gateway.tenant()
    name = await _create(gateway, key, tenant_id, receiver.url(), WHSEC)

    hook = await _connected(gateway, key, name, receiver)

    assert "instance.connected" == Webhook(WHSEC).verify(hook.body, hook.headers)["event"]
    # x-gateway-signature stays keyed by the secret exactly as written.
    assert verify_gateway_signature(hook.body, WHSEC, hook.headers["x-gateway-signature"])
    with pytest.raises(WebhookVerificationError):
        Webhook(WHSEC.encode()).verify(hook.body, hook.headers)


async def test_a_message_status_delivery_verifies_with_the_library(
    gateway: Gateway, receiver: Receiver
) -> None:
    tenant_id, key = await gateway.tenant()
    name = await _create(gateway, key, tenant_id, receiver.url(), WHSEC)
    await _connected(gateway, key, name, receiver)
    status, answer = await gateway.call(
        "POST",
        "/message/text",
        key=key,
        json={"instanceName": name, "to": "5491112345678", "text": "hi", "lane": "urgent"},
    )
    assert 202 == status, answer

    [hook] = await receiver.wait_for(event_named("message.status", id=answer["id"], status="sent"))

    verified = Webhook(WHSEC).verify(hook.body, hook.headers)
    assert (answer["id"], "sent") == (verified["data"]["id"], verified["data"]["status"])


async def test_a_plain_secret_keeps_both_signatures_as_before(
    gateway: Gateway, receiver: Receiver
) -> None:
    tenant_id, key = await gateway.tenant()
    plain = "a-plain-secret-of-32-characters!"
    name = await _create(gateway, key, tenant_id, receiver.url(), plain)

    hook = await _connected(gateway, key, name, receiver)

    expected = hmac.new(plain.encode(), hook.body, hashlib.sha256).hexdigest()
    assert expected == hook.headers["x-gateway-signature"]
    assert "instance.connected" == Webhook(plain.encode()).verify(hook.body, hook.headers)["event"]


async def test_a_secret_patched_to_whsec_signs_the_next_deliveries(
    gateway: Gateway, receiver: Receiver
) -> None:
    tenant_id, key = await gateway.tenant()
    name = await _create(
        gateway, key, tenant_id, receiver.url(), "a-plain-secret-of-32-characters!"
    )
    status, body = await gateway.call(
        "PATCH", f"/instance/{name}", key=key, json={"webhookSecret": WHSEC}
    )
    assert 200 == status, body

    hook = await _connected(gateway, key, name, receiver)

    assert "instance.connected" == Webhook(WHSEC).verify(hook.body, hook.headers)["event"]


@pytest.mark.parametrize(
    "secret",
    [
        "whsec_not!base64!at!all",
        "whsec_" + base64.b64encode(b"sixteen-bytes-ab").decode(),  # under 24 bytes
        "whsec_" + base64.b64encode(bytes(65)).decode(),  # over 64 bytes
        "whsec_" + "A" * 33,  # a stray base64 character
    ],
)
async def test_a_malformed_whsec_secret_is_400_at_create_and_patch_and_changes_nothing(
    gateway: Gateway, receiver: Receiver, secret: str
) -> None:
    tenant_id, key = await gateway.tenant()
    name = f"{tenant_id}__support__{uuid.uuid4().hex[:6]}"
    body = {"instanceName": name, "webhookUrl": receiver.url(), "webhookSecret": secret}

    status, answer = await gateway.call("POST", "/instance/create", key=key, json=body)

    assert (400, ["webhookSecret"]) == (status, answer["issues"][0]["path"])
    assert "whsec_" in answer["issues"][0]["message"]
    assert 404 == (await gateway.call("GET", f"/instance/{name}/status", key=key))[0]

    name = await _create(gateway, key, tenant_id, receiver.url(), WHSEC)
    status, answer = await gateway.call(
        "PATCH", f"/instance/{name}", key=key, json={"webhookSecret": secret}
    )
    assert (400, ["webhookSecret"]) == (status, answer["issues"][0]["path"])
    hook = await _connected(gateway, key, name, receiver)
    assert "instance.connected" == Webhook(WHSEC).verify(hook.body, hook.headers)["event"]


def _readme_receivers() -> dict[str, str]:
    """The receivers the webhooks guide shows: Python and Node for a whsec_ secret, and the
    plain-secret form of each."""
    text = (ROOT / "docs" / "webhooks.md").read_text()
    section = text[text.index("Standard Webhooks form") :]
    python = re.search(r"```python\n(.*?)```", section, re.S)
    node = re.search(r"```js\n(.*?)```", section, re.S)
    plain = re.search(r"With a plain secret: `(.+?)` in Python,\s+`(.+?)` in Node", section)
    assert python and node and plain, "the webhooks guide's receivers moved"
    return {
        "python": python.group(1),
        "node": node.group(1),
        "python_plain": plain.group(1),
        "node_plain": plain.group(2),
    }


async def _two_deliveries(gateway: Gateway, receiver: Receiver) -> tuple[Received, Received]:
    """An `instance.connected` delivery signed with WHSEC and one with PLAIN_SECRET."""
    tenant_id, key = await gateway.tenant()
    standard = await _create(gateway, key, tenant_id, receiver.url(), WHSEC)
    plain = await _create(gateway, key, tenant_id, receiver.url(), PLAIN_SECRET)
    return (
        await _connected(gateway, key, standard, receiver),
        await _connected(gateway, key, plain, receiver),
    )


async def test_the_readmes_python_receivers_verify_real_deliveries(
    gateway: Gateway, receiver: Receiver
) -> None:
    readme = _readme_receivers()
    standard, plain = await _two_deliveries(gateway, receiver)

    receiving: dict[str, Any] = {
        "WEBHOOK_SECRET": WHSEC,
        "request_body_bytes": standard.body,
        "request": SimpleNamespace(headers=standard.headers),
    }
    exec(readme["python"], receiving)
    plain_webhook = eval(readme["python_plain"], {"Webhook": Webhook, "secret": PLAIN_SECRET})

    assert "instance.connected" == receiving["event"]["event"]
    assert "instance.connected" == plain_webhook.verify(plain.body, plain.headers)["event"]


async def test_the_readmes_node_receivers_verify_real_deliveries(
    gateway: Gateway, receiver: Receiver
) -> None:
    node = shutil.which("node")
    if node is None or not (ROOT / "node_modules" / "standardwebhooks").is_dir():
        pytest.skip("needs node and `npm install --no-save standardwebhooks` in the repository")
    readme = _readme_receivers()
    standard, plain = await _two_deliveries(gateway, receiver)
    # Under the repository, so the import finds its node_modules.
    script = ROOT / "var" / f"readme-receiver-{uuid.uuid4().hex[:8]}.mjs"
    script.parent.mkdir(exist_ok=True)
    script.write_text(
        "const delivery = JSON.parse(process.env.DELIVERY);\n"
        "const rawBody = Buffer.from(delivery.body, 'base64');\n"
        "const req = { headers: delivery.headers };\n"
        f"{readme['node']}\n"
        "const secret = process.env.PLAIN_SECRET;\n"
        "const other = JSON.parse(process.env.PLAIN_DELIVERY);\n"
        f"const plain = {readme['node_plain']};\n"
        "const plainEvent = plain.verify(Buffer.from(other.body, 'base64'), other.headers);\n"
        "console.log(JSON.stringify([event.event, plainEvent.event]));\n"
    )

    def delivery(hook: Received) -> str:
        return json.dumps({"body": base64.b64encode(hook.body).decode(), "headers": hook.headers})

    try:
        run = await asyncio.create_subprocess_exec(
            node,
            str(script),
            env={
                "WEBHOOK_SECRET": WHSEC,
                "PLAIN_SECRET": PLAIN_SECRET,
                "DELIVERY": delivery(standard),
                "PLAIN_DELIVERY": delivery(plain),
            },
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await run.communicate()
    finally:
        script.unlink()

    assert (0, ["instance.connected", "instance.connected"]) == (
        run.returncode,
        json.loads(out) if run.returncode == 0 else err.decode(),
    )
