"""The sandbox phone's controls: scan the QR, write to the number (simulated, no WhatsApp)."""

from datetime import timedelta
from typing import Any

from aiohttp import web

from ingress_api.auth import Caller, authenticate
from ingress_api.countries import instance_context
from ingress_api.registry import API
from ingress_api.requests import own_instance, read_json
from ingress_api.schemas.sandbox import SandboxAccepted, SandboxBan, SandboxFault, SandboxInbound
from lanegate.errors import InvalidInput
from lanegate.events import ProviderCommand, utcnow
from lanegate.service import BROKER, STORE
from lanegate.store import Document


async def _sandbox_instance(request: web.Request, caller: Caller | None = None) -> Document:
    caller = caller or await authenticate(request)
    instance = await own_instance(request.app[STORE], caller, request.match_info["name"])
    if instance["provider"] != "sandbox":
        raise InvalidInput([(["instanceName"], "Instance does not use the sandbox provider")])
    return instance


async def _command(
    request: web.Request,
    instance: Document,
    command: str,
    payload: dict[str, Any] | None = None,
    **answer: Any,
) -> web.Response:
    """Hand the simulated phone a command through provider-sender; answer 202."""
    await request.app[BROKER].publish(
        ProviderCommand(
            tenantId=instance["tenantId"],
            instanceName=instance["_id"],
            command=command,
            payload=payload or {},
        )
    )
    return web.json_response({"instanceName": instance["_id"], **answer}, status=202)


@API.post(
    "/sandbox/{name}/scan",
    summary="The sandbox phone scans the QR code",
    tag="sandbox",
    response=SandboxAccepted,
    status=202,
    errors=(400, 401, 403, 404),
    scope="instances:write",
)
async def scan(request: web.Request) -> web.Response:
    """The simulated phone scans the QR; the instance goes `connecting`, then `open`."""
    instance = await _sandbox_instance(request)
    return await _command(request, instance, "sandbox.scan", state="connecting")


@API.post(
    "/sandbox/{name}/inbound",
    summary="Somebody writes to the sandbox number",
    tag="sandbox",
    body=SandboxInbound,
    response=SandboxAccepted,
    status=202,
    errors=(400, 401, 403, 404),
    scope="instances:write",
)
async def inbound(request: web.Request) -> web.Response:
    """Somebody writes to the sandbox number; a `message.received` webhook follows."""
    caller = await authenticate(request)
    instance = await _sandbox_instance(request, caller)
    body = await read_json(request, SandboxInbound, instance_context(caller, instance))
    payload = body.model_dump(by_alias=True)
    return await _command(request, instance, "sandbox.inbound", payload, accepted=True)


@API.post(
    "/sandbox/{name}/disconnect",
    summary="The sandbox phone unlinks the session",
    tag="sandbox",
    response=SandboxAccepted,
    status=202,
    errors=(400, 401, 403, 404),
    scope="instances:write",
)
async def disconnect(request: web.Request) -> web.Response:
    """The simulated phone unlinks; the instance goes `close` and its messages wait."""
    instance = await _sandbox_instance(request)
    return await _command(request, instance, "sandbox.disconnect", state="close")


@API.post(
    "/sandbox/{name}/ban",
    summary="The sandbox provider signals a ban: the instance is paused",
    tag="sandbox",
    body=SandboxBan,
    response=SandboxAccepted,
    status=202,
    errors=(400, 401, 403, 404),
    scope="instances:write",
)
async def ban(request: web.Request) -> web.Response:
    """Simulate a provider ban signal; sends stop until the instance connects again."""
    instance = await _sandbox_instance(request)
    body = await read_json(request, SandboxBan)
    payload = {"reason": body.reason, "seconds": body.seconds}
    return await _command(request, instance, "sandbox.ban", payload, accepted=True)


@API.post(
    "/sandbox/{name}/fault",
    summary="The sandbox provider fails every send for a while",
    tag="sandbox",
    body=SandboxFault,
    response=SandboxAccepted,
    status=202,
    errors=(400, 401, 403, 404),
    scope="instances:write",
)
async def fault(request: web.Request) -> web.Response:
    """Simulate a provider outage: sends fail with an error or a lost answer for `seconds`."""
    instance = await _sandbox_instance(request)
    body = await read_json(request, SandboxFault)
    until = utcnow() + timedelta(seconds=body.seconds)
    await request.app[STORE].instances.update_one(
        {"_id": instance["_id"], "tenantId": instance["tenantId"]},
        {"$set": {"sandboxFault": {"kind": body.kind, "until": until}}},
    )
    return web.json_response({"instanceName": instance["_id"], "accepted": True}, status=202)
