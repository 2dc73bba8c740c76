"""Asking provider-sender (`provider.rpc`) or template-sync (`template.rpc`) over the broker and
waiting: 504 when no answer comes in time, 502 when the provider answers with an error."""

import math
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any, cast

from aiohttp import web

from lanegate.broker import RpcClient, RpcTimeout
from lanegate.errors import (
    BadGateway,
    GatewayTimeout,
    NotFound,
    TargetNotAllowed,
    Unavailable,
    Unprocessable,
    WhatsAppApiError,
    WhatsAppNotConfigured,
    WhatsAppRateLimited,
)
from lanegate.events import InstanceStateName, ProviderRpc, RpcOperation, TemplateRpc, utcnow
from lanegate.providers.calls import TARGET_REFUSED
from lanegate.service import BROKER, SETTINGS
from lanegate.store import Document

RPC = web.AppKey("rpc", RpcClient)

# What a route answering with a session operation's outcome may answer: `ask`'s errors and the
# caller's own (400 - 404).
SESSION_ERRORS = (400, 401, 403, 404, 422, 502, 503, 504)


async def rpc_client(app: web.Application) -> AsyncIterator[None]:
    """The reply queue for session requests, open for the app's lifetime."""
    client = RpcClient(app[BROKER])
    await client.start()
    app[RPC] = client
    yield
    await client.close()


class SessionUnsupported(Unprocessable):
    """Raised when the instance's provider has no such session operation (a Cloud API number
    has no QR code to scan)."""


def _refused(message: str) -> TargetNotAllowed:
    """The outbound guard refused a call to the instance's base URL (not a public address, or
    a redirect): the tenant's configuration (422)."""
    return TargetNotAllowed(
        [(["providerConfig", "baseUrl"], message)],
        "The instance's provider base URL was refused; the gateway only calls public addresses"
        " and follows no redirects",
    )


async def ask(
    request: web.Request,
    instance: Document,
    operation: RpcOperation,
    payload: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One session operation run by provider-sender; its answer or the mapped error."""
    rpc, wait = request.app[RPC], request.app[SETTINGS].rpc_timeout_seconds
    event = ProviderRpc(
        tenantId=instance["tenantId"],
        instanceName=instance["_id"],
        operation=operation,
        payload=payload or {},
        replyTo=rpc.reply_to,
        deadline=utcnow() + timedelta(seconds=wait),
    )
    try:
        answer = await rpc.call(event, wait)
    except RpcTimeout as e:
        raise GatewayTimeout("The WhatsApp provider did not answer in time; retry") from e
    except ConnectionError as e:
        raise Unavailable("Message queue unavailable, retry shortly") from e
    error = answer.get("error")
    if isinstance(error, dict):
        if error.get("unsupported"):
            raise SessionUnsupported(str(error.get("message")))
        if error.get("code") == TARGET_REFUSED:
            raise _refused(str(error.get("message")))
        raise BadGateway(f"WhatsApp provider error: {error.get('message')}")
    return answer


# A number check outlives the create that asked for it: it lands on the instance however
# long provider-sender takes to get to it, within reason.
NUMBER_CHECK_LIFETIME_SECONDS = 600.0


async def check_number(request: web.Request, instance: Document) -> InstanceStateName:
    """Have provider-sender open the instance's session (a Cloud API number: check its
    credentials with Meta) and wait briefly: the state it reached, or `connecting` while the
    check goes on (its outcome lands on the instance)."""
    rpc, wait = request.app[RPC], request.app[SETTINGS].number_check_wait_seconds
    event = ProviderRpc(
        tenantId=instance["tenantId"],
        instanceName=instance["_id"],
        operation="start",
        replyTo=rpc.reply_to,
        deadline=utcnow() + timedelta(seconds=NUMBER_CHECK_LIFETIME_SECONDS),
    )
    try:
        answer = await rpc.call(event, wait, expires_in=NUMBER_CHECK_LIFETIME_SECONDS)
    except RpcTimeout:
        return "connecting"
    except ConnectionError as e:
        raise Unavailable("Message queue unavailable, retry shortly") from e
    state = answer.get("state")
    if isinstance(answer.get("error"), dict) or state not in ("open", "connecting", "close"):
        return "close"
    return cast(InstanceStateName, state)


async def ask_template_sync(request: web.Request, instance: Document) -> dict[str, Any]:
    """Have template-sync pull the instance's templates now; its answer or the mapped error."""
    rpc, wait = request.app[RPC], request.app[SETTINGS].rpc_timeout_seconds
    event = TemplateRpc(
        tenantId=instance["tenantId"],
        instanceName=instance["_id"],
        replyTo=rpc.reply_to,
        deadline=utcnow() + timedelta(seconds=wait),
    )
    try:
        answer = await rpc.call(event, wait)
    except RpcTimeout as e:
        raise GatewayTimeout("Template sync did not finish in time; list templates later") from e
    except ConnectionError as e:
        raise Unavailable("Message queue unavailable, retry shortly") from e
    error = answer.get("error")
    if not isinstance(error, dict):
        return answer
    message = str(error.get("message"))
    code = error.get("code")
    if code == WhatsAppNotConfigured.code:
        raise WhatsAppNotConfigured(message)
    if code == WhatsAppRateLimited.code:
        after = max(1, math.ceil(float(error.get("retryAfter") or 1)))
        raise WhatsAppRateLimited(message, headers={"Retry-After": str(after)})
    if code == NotFound.code:
        raise NotFound(message)
    if code == TARGET_REFUSED:
        raise _refused(message)
    raise WhatsAppApiError(message)
