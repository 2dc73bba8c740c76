"""Provider callbacks in: signatures checked on the raw body, then handed to provider-sender.

Nothing from a callback is processed here; a verified body is published as
`provider.callback` for provider-sender to normalise. A bad signature gets
401 and publishes nothing.
"""

import hmac

from aiohttp import web

from ingress_api.endpoints import API
from lanegate.errors import Forbidden, NotFound, Unauthorized
from lanegate.events import ProviderCallback
from lanegate.providers.cloud_api import SIGNATURE_HEADER as HUB_HEADER
from lanegate.providers.cloud_api import verify_hub_signature
from lanegate.providers.waha import SIGNATURE_HEADER as WAHA_HEADER
from lanegate.providers.waha import verify_waha_signature
from lanegate.service import BROKER, KEYRING, STORE
from lanegate.store import Document


async def _instance(request: web.Request, provider: str) -> Document:
    instance = await request.app[STORE].instances.find_one(
        {"_id": request.match_info["instanceName"], "provider": provider}
    )
    if instance is None:
        raise NotFound("No such instance for this provider")
    return instance


async def _forward(request: web.Request, instance: Document, body: bytes) -> web.Response:
    await request.app[BROKER].publish(
        ProviderCallback(
            tenantId=instance["tenantId"],
            instanceName=instance["_id"],
            provider=instance["provider"],
            body=body.decode(errors="replace"),
        )
    )
    return web.json_response({"received": True})


@API.get(
    "/webhooks/cloud/{instanceName}",
    summary="Meta's webhook verification handshake (hub.challenge)",
    tag="provider-callbacks",
    auth="none",
    errors=(403, 404),
)
async def cloud_handshake(request: web.Request) -> web.Response:
    """Echo `hub.challenge` when `hub.verify_token` is the instance's verify token."""
    instance = await _instance(request, "cloud_api")
    config = request.app[KEYRING].open_config(instance.get("providerConfig"))
    expected = str(config.get("verifyToken", ""))
    token = request.query.get("hub.verify_token", "")
    if (
        request.query.get("hub.mode") != "subscribe"
        or not expected
        or not hmac.compare_digest(token.encode(), expected.encode())
    ):
        raise Forbidden("Verification token mismatch")
    return web.Response(text=request.query.get("hub.challenge", ""))


@API.post(
    "/webhooks/cloud/{instanceName}",
    summary="Meta Cloud API callbacks (statuses, inbound messages), signed with the app secret",
    tag="provider-callbacks",
    auth="none",
    errors=(401, 404),
)
async def cloud_callback(request: web.Request) -> web.Response:
    """Verify `X-Hub-Signature-256` against the raw body, then hand the body on."""
    instance = await _instance(request, "cloud_api")
    body = await request.read()
    config = request.app[KEYRING].open_config(instance.get("providerConfig"))
    secret = str(config.get("appSecret", ""))
    if not secret or not verify_hub_signature(body, secret, request.headers.get(HUB_HEADER)):
        raise Unauthorized("Invalid signature")
    return await _forward(request, instance, body)


@API.post(
    "/webhooks/waha/{instanceName}",
    summary="WAHA callbacks (message, message.ack, session.status), HMAC-SHA512 signed",
    tag="provider-callbacks",
    auth="none",
    errors=(401, 404),
)
async def waha_callback(request: web.Request) -> web.Response:
    """Verify `X-Webhook-Hmac` against the raw body, then hand the body on."""
    instance = await _instance(request, "waha")
    body = await request.read()
    config = request.app[KEYRING].open_config(instance.get("providerConfig"))
    key = str(config.get("hmacKey", ""))
    if not key or not verify_waha_signature(body, key, request.headers.get(WAHA_HEADER)):
        raise Unauthorized("Invalid signature")
    return await _forward(request, instance, body)
