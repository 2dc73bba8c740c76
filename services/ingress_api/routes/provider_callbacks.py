"""Provider callbacks in: the signature checked on the raw body, the shape checked with
provider-sender's parser, then published sealed as `provider.callback`."""

import hmac
from collections.abc import Callable

from aiohttp import web

from ingress_api.registry import API
from lanegate.errors import Forbidden, InvalidInput, Unauthorized
from lanegate.events import CALLBACK_SEAL_LABEL, ProviderCallback
from lanegate.providers import CallbackRefused, Report
from lanegate.providers.cloud_api import SIGNATURE_HEADER as HUB_HEADER
from lanegate.providers.cloud_api import verify_hub_signature
from lanegate.providers.cloud_callbacks import parse_callback_body as parse_cloud
from lanegate.providers.waha import SIGNATURE_HEADER as WAHA_HEADER
from lanegate.providers.waha import verify_waha_signature
from lanegate.providers.waha_callbacks import parse_callback_body as parse_waha
from lanegate.service import BROKER, KEYRING, STORE
from lanegate.signing import event_seal
from lanegate.store import Document

Verify = Callable[[bytes, str, str | None], bool]

# What an unknown instance's callbacks are checked against: never a valid answer either way.
NO_SECRET = "no instance has this secret"


async def _instance(request: web.Request, provider: str) -> Document | None:
    found: Document | None = await request.app[STORE].instances.find_one(
        {"_id": request.match_info["instanceName"], "provider": provider}
    )
    return found


async def _verified(
    request: web.Request, provider: str, secret_field: str, header: str, verify: Verify
) -> tuple[Document, bytes]:
    """The instance and the raw body of a callback signed with the instance's secret; the
    same 401 whether the instance is unknown or the signature wrong."""
    instance = await _instance(request, provider)
    body = await request.read()
    config = request.app[KEYRING].open_config(instance.get("providerConfig") if instance else None)
    secret = str(config.get(secret_field, ""))
    # An unknown instance's body is hashed too, so it answers no sooner than a bad signature.
    signed = verify(body, secret or NO_SECRET, request.headers.get(header))
    if instance is None or not secret or not signed:
        raise Unauthorized("Invalid signature")
    return instance, body


def _check_shape(parse: Callable[[bytes], list[Report]], body: bytes) -> None:
    try:
        parse(body)
    except CallbackRefused as e:
        raise InvalidInput(e.issues) from e


async def _forward(request: web.Request, instance: Document, body: bytes) -> web.Response:
    event = ProviderCallback(
        tenantId=instance["tenantId"],
        instanceName=instance["_id"],
        provider=instance["provider"],
        body=body.decode(errors="replace"),
    )
    keys = request.app[KEYRING].derived_keys(CALLBACK_SEAL_LABEL)
    if keys:
        event = event.model_copy(update={"seal": event_seal(event.sealed_content(), keys[0])})
    await request.app[BROKER].publish(event)
    return web.json_response({"received": True})


@API.get(
    "/webhooks/cloud/{instanceName}",
    summary="Meta's webhook verification handshake (hub.challenge)",
    tag="provider-callbacks",
    auth="none",
    errors=(403,),
)
async def cloud_handshake(request: web.Request) -> web.Response:
    """Echo `hub.challenge` when `hub.verify_token` is the instance's verify token."""
    instance = await _instance(request, "cloud_api")
    config = request.app[KEYRING].open_config(instance.get("providerConfig") if instance else None)
    expected = str(config.get("verifyToken", ""))
    token = request.query.get("hub.verify_token", "")
    if (
        instance is None
        or request.query.get("hub.mode") != "subscribe"
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
    errors=(400, 401, 413),
)
async def cloud_callback(request: web.Request) -> web.Response:
    """Verify `X-Hub-Signature-256` against the raw body, check its shape, then hand it on."""
    instance, body = await _verified(
        request, "cloud_api", "appSecret", HUB_HEADER, verify_hub_signature
    )
    _check_shape(parse_cloud, body)
    return await _forward(request, instance, body)


@API.post(
    "/webhooks/waha/{instanceName}",
    summary="WAHA callbacks (message, message.ack, session.status), HMAC-SHA512 signed",
    tag="provider-callbacks",
    auth="none",
    errors=(400, 401, 413),
)
async def waha_callback(request: web.Request) -> web.Response:
    """Verify `X-Webhook-Hmac` against the raw body, check its shape, then hand it on."""
    instance, body = await _verified(request, "waha", "hmacKey", WAHA_HEADER, verify_waha_signature)
    _check_shape(parse_waha, body)
    return await _forward(request, instance, body)
