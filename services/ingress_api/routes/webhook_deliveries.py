"""Webhook deliveries: list, inspect and replay them (the dispatcher does the posting)."""

import base64
import json
from datetime import datetime
from typing import Any

from aiohttp import web

from ingress_api.auth import Caller, authenticate
from ingress_api.registry import API
from ingress_api.requests import own_instance, read_json, read_query
from ingress_api.schemas.webhook_deliveries import (
    BulkReplay,
    DeliveryDetail,
    DeliveryPage,
    DeliveryQuery,
    ReplayAccepted,
)
from lanegate.errors import Conflict, InvalidInput, NotFound
from lanegate.service import BROKER, STORE
from lanegate.store import Document
from lanegate.timestamps import iso_utc
from lanegate.webhook_replays import REPLAYABLE, reset_deliveries

# Most deliveries one bulk replay resets; call again for the rest (those are no longer dead).
BULK_REPLAY_LIMIT = 1000


def summary(record: Document) -> dict[str, Any]:
    """A stored delivery as the list shows it."""
    return {
        "id": record["_id"],
        "instanceName": record["instanceName"],
        "event": record["event"],
        "url": record["url"],
        "status": record["status"],
        "attemptCount": record.get("attemptTotal", 0),
        "lastStatusCode": record.get("lastStatusCode"),
        "lastError": record.get("lastError"),
        "createdAt": iso_utc(record["createdAt"]),
        "nextAttemptAt": iso_utc(record.get("nextAttemptAt")),
        "deliveredAt": iso_utc(record.get("deliveredAt")),
    }


def detail(record: Document) -> dict[str, Any]:
    """A stored delivery with its payload and every attempt."""
    attempts = [
        {
            "at": iso_utc(a["at"]),
            "statusCode": a.get("statusCode"),
            "durationMs": a.get("durationMs", 0.0),
            "error": a.get("error"),
        }
        for a in record.get("attempts", [])
    ]
    return summary(record) | {"payload": json.loads(record["body"]), "attempts": attempts}


def _cursor(record: Document) -> str:
    raw = f"{record['createdAt'].isoformat()}|{record['_id']}"
    return base64.urlsafe_b64encode(raw.encode()).decode()


def _after_cursor(cursor: str) -> dict[str, Any]:
    try:
        created, _, last_id = base64.urlsafe_b64decode(cursor.encode()).decode().partition("|")
        at = datetime.fromisoformat(created)
    except ValueError as e:
        raise InvalidInput([(["cursor"], "Not a cursor this API returned")]) from e
    return {"$or": [{"createdAt": {"$lt": at}}, {"createdAt": at, "_id": {"$lt": last_id}}]}


async def _query(request: web.Request, caller: Caller, params: DeliveryQuery) -> dict[str, Any]:
    query: dict[str, Any] = {"tenantId": caller.tenant_id}
    if params.instanceName is not None:
        await own_instance(request.app[STORE], caller, params.instanceName)
        query["instanceName"] = params.instanceName
    if params.status is not None:
        query["status"] = params.status
    if params.event is not None:
        query["event"] = params.event
    if params.messageId is not None:
        query["messageId"] = params.messageId
    if params.since is not None:
        query["createdAt"] = {"$gte": params.since}
    if params.cursor is not None:
        query = {"$and": [query, _after_cursor(params.cursor)]}
    return query


@API.get(
    "/webhooks/deliveries",
    summary="Your webhook deliveries, newest first (filter by instance, status, event, since)",
    tag="webhooks",
    query=DeliveryQuery,
    response=DeliveryPage,
    errors=(400, 401, 403, 404),
    scope="messages:read",
)
async def list_deliveries(request: web.Request) -> web.Response:
    """One page of the caller's deliveries; `nextCursor` fetches the next."""
    caller = await authenticate(request)
    params = read_query(request, DeliveryQuery)
    query = await _query(request, caller, params)
    cursor = (
        request.app[STORE]
        .webhook_deliveries.find(query, {"body": 0, "attempts": 0})
        .sort([("createdAt", -1), ("_id", -1)])
        .limit(params.limit + 1)
    )
    records = [record async for record in cursor]
    page = records[: params.limit]
    more = len(records) > params.limit
    return web.json_response(
        {
            "deliveries": [summary(record) for record in page],
            "nextCursor": _cursor(page[-1]) if more else None,
        }
    )


async def _own_delivery(request: web.Request, caller: Caller) -> Document:
    record = await request.app[STORE].webhook_deliveries.find_one(
        {"_id": request.match_info["id"], "tenantId": caller.tenant_id}
    )
    if record is None:
        raise NotFound("Delivery not found")
    return record


@API.get(
    "/webhooks/deliveries/{id}",
    summary="One delivery with its payload and every attempt (status code, duration, error)",
    tag="webhooks",
    response=DeliveryDetail,
    errors=(401, 404),
    scope="messages:read",
)
async def get_delivery(request: web.Request) -> web.Response:
    """One of the caller's deliveries; another tenant's id reads as not found."""
    caller = await authenticate(request)
    return web.json_response(detail(await _own_delivery(request, caller)))


async def _reset(request: web.Request, caller: Caller, ids: list[str], instance_name: str) -> int:
    """Make deliveries due now with a fresh retry schedule, then tell the dispatcher."""
    store, broker = request.app[STORE], request.app[BROKER]
    return await reset_deliveries(store, broker, caller.tenant_id, instance_name, ids)


async def _require_enabled(request: web.Request, caller: Caller, instance_name: str) -> None:
    instance = await own_instance(request.app[STORE], caller, instance_name)
    if instance.get("webhookEnabled") is False:
        raise Conflict(
            "The instance webhook is disabled; re-enable it with PATCH /instance/{name} "
            '{"webhookEnabled": true} first'
        )


@API.post(
    "/webhooks/deliveries/{id}/replay",
    summary="Deliver one event again (dead, delivered or waiting for a retry)",
    tag="webhooks",
    response=ReplayAccepted,
    status=202,
    errors=(401, 404, 409),
    scope="messages:write",
)
async def replay_one(request: web.Request) -> web.Response:
    """Reset one delivery so the dispatcher attempts it now with a fresh retry schedule."""
    caller = await authenticate(request)
    record = await _own_delivery(request, caller)
    await _require_enabled(request, caller, record["instanceName"])
    if record["status"] not in REPLAYABLE or record.get("claim") is not None:
        raise Conflict("Delivery is being attempted right now")
    replayed = await _reset(request, caller, [record["_id"]], record["instanceName"])
    if not replayed:
        raise Conflict("Delivery is being attempted right now")
    return web.json_response({"replayed": 1, "deliveryIds": [record["_id"]]}, status=202)


@API.post(
    "/webhooks/replay",
    summary="Deliver again an instance's dead deliveries created since a time",
    tag="webhooks",
    body=BulkReplay,
    response=ReplayAccepted,
    status=202,
    errors=(400, 401, 403, 404, 409),
    scope="messages:write",
)
async def replay_many(request: web.Request) -> web.Response:
    """Reset up to 1,000 dead deliveries of one instance; call again while `replayed` is 1,000."""
    caller = await authenticate(request)
    body = await read_json(request, BulkReplay)
    await _require_enabled(request, caller, body.instanceName)
    cursor = (
        request.app[STORE]
        .webhook_deliveries.find(
            {
                "tenantId": caller.tenant_id,
                "instanceName": body.instanceName,
                "status": body.status,
                "createdAt": {"$gte": body.since},
            },
            {"_id": 1},
        )
        .sort("createdAt", 1)
        .limit(BULK_REPLAY_LIMIT)
    )
    ids = [record["_id"] async for record in cursor]
    replayed = await _reset(request, caller, ids, body.instanceName)
    return web.json_response({"replayed": replayed, "deliveryIds": ids}, status=202)
