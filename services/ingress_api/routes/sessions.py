"""Linking a number: QR code, pairing code, connect, live session state and logout, each asked
of provider-sender over the broker (504 when it does not answer in time, 502 on its error)."""

from typing import Any

from aiohttp import web

from ingress_api.accept.lookups import LOOKUPS
from ingress_api.auth import authenticate
from ingress_api.countries import instance_context
from ingress_api.registry import API
from ingress_api.requests import own_instance, read_json
from ingress_api.rpc import SESSION_ERRORS, ask
from ingress_api.schemas.sessions import PairingCode, PairingCodeRequest, QrCode, SessionView
from lanegate.service import STORE
from lanegate.store import Document


async def _instance(request: web.Request) -> Document:
    return await own_instance(
        request.app[STORE], await authenticate(request), request.match_info["name"]
    )


def _session(instance: Document, answer: dict[str, Any]) -> web.Response:
    return web.json_response(
        {
            "instanceName": instance["_id"],
            "state": answer["state"],
            "phoneNumber": answer.get("phoneNumber"),
            "providerStatus": answer.get("providerStatus"),
        }
    )


@API.get(
    "/instance/{name}/qr",
    summary="The QR code to scan with WhatsApp to link the number",
    tag="instances",
    response=QrCode,
    errors=SESSION_ERRORS,
    # The QR code links a phone to the instance, so it needs the same scope as the pairing code.
    scope="instances:write",
)
async def qr(request: web.Request) -> web.Response:
    """A PNG QR code as a data URL, fetched from the provider through provider-sender."""
    instance = await _instance(request)
    answer = await ask(request, instance, "qr")
    return web.json_response({"qrcode": answer["qrcode"]})


@API.post(
    "/instance/{name}/pairing-code",
    summary="A code to type in WhatsApp to link the number without scanning",
    tag="instances",
    body=PairingCodeRequest,
    response=PairingCode,
    errors=SESSION_ERRORS,
    scope="instances:write",
)
async def pairing_code(request: web.Request) -> web.Response:
    """An 8-character pairing code for the number in the body."""
    caller = await authenticate(request)
    instance = await own_instance(request.app[STORE], caller, request.match_info["name"])
    body = await read_json(request, PairingCodeRequest, instance_context(caller, instance))
    answer = await ask(request, instance, "pairing_code", {"phoneNumber": body.phoneNumber})
    return web.json_response({"pairingCode": answer["pairingCode"]})


@API.post(
    "/instance/{name}/connect",
    summary="Start the instance's session at its provider",
    tag="instances",
    response=SessionView,
    errors=SESSION_ERRORS,
    scope="instances:write",
)
async def connect(request: web.Request) -> web.Response:
    """Create or start the session; a Cloud API number opens once Meta confirms it."""
    instance = await _instance(request)
    try:
        return _session(instance, await ask(request, instance, "start"))
    finally:
        request.app[LOOKUPS].forget_instance(instance["tenantId"], instance["_id"])


@API.get(
    "/instance/{name}/session",
    summary="The session's state as the provider reports it now",
    tag="instances",
    response=SessionView,
    errors=SESSION_ERRORS,
    scope="instances:read",
)
async def session(request: web.Request) -> web.Response:
    """Ask the provider for the session's state (the stored state follows it)."""
    instance = await _instance(request)
    return _session(instance, await ask(request, instance, "status"))


@API.post(
    "/instance/{name}/logout",
    summary="Unlink the number; a new QR scan is needed afterwards",
    tag="instances",
    response=SessionView,
    errors=SESSION_ERRORS,
    scope="instances:write",
)
async def logout(request: web.Request) -> web.Response:
    """Log the session out at the provider; the instance goes `close`."""
    instance = await _instance(request)
    answer = await ask(request, instance, "logout")
    return _session(instance, {"state": answer["state"], "phoneNumber": None})
