"""Operator endpoints for the operator view: tenants, instances and disabled webhooks across
every tenant, and the broker's dead letters with replay and purge."""

from collections.abc import Awaitable, Callable

from aiohttp import web

from ingress_api.auth import require_admin
from ingress_api.operator_overview import (
    Page,
    disabled_webhooks_page,
    instances_page,
    tenants_page,
)
from ingress_api.registry import API
from ingress_api.requests import check_paging, page_meta, read_query
from ingress_api.schemas.operator_overview import (
    DeadLetterQuery,
    DeadLetterQueue,
    DeadLetterQueues,
    DisabledWebhookList,
    InstanceOverviewList,
    InstanceOverviewQuery,
    OverviewPage,
    Purged,
    Replayed,
    ReplayQuery,
    TenantOverviewList,
)
from lanegate import dead_letters
from lanegate.dead_letters import SERVICE_QUEUES
from lanegate.events import utcnow
from lanegate.service import BROKER, STORE


async def _listed[Q: OverviewPage](
    request: web.Request,
    model: type[Q],
    read: Callable[[Q, int, int], Awaitable[Page]],
    narrow: str,
) -> web.Response:
    """One page of an operator listing: the query checked (400 past what paging may reach),
    then `read(query, skip, limit)` answered with its page's meta."""
    require_admin(request)
    query = read_query(request, model)
    check_paging(query.page, query.limit, None, narrow=narrow, cursors=False)
    total, rows = await read(query, (query.page - 1) * query.limit, query.limit)
    return web.json_response({"data": rows, "meta": page_meta(total, query.page, query.limit)})


@API.get(
    "/admin/overview/tenants",
    summary="Tenants with their plan, instance and live key counts and today's usage (from the "
    "usage counters)",
    tag="admin",
    auth="admin",
    query=OverviewPage,
    response=TenantOverviewList,
    errors=(400, 401),
)
async def tenants_overview(request: web.Request) -> web.Response:
    store = request.app[STORE]
    return await _listed(
        request,
        OverviewPage,
        lambda _, skip, limit: tenants_page(store, skip, limit, utcnow().date()),
        "list them all with `lanegate --json tenants list`",
    )


@API.get(
    "/admin/overview/instances",
    summary="Every instance of every tenant (or of one): state, pause and messages waiting per "
    "lane",
    tag="admin",
    auth="admin",
    query=InstanceOverviewQuery,
    response=InstanceOverviewList,
    errors=(400, 401),
)
async def instances_overview(request: web.Request) -> web.Response:
    store = request.app[STORE]
    return await _listed(
        request,
        InstanceOverviewQuery,
        lambda query, skip, limit: instances_page(store, query.tenantId, skip, limit),
        "narrow it with tenantId",
    )


@API.get(
    "/admin/overview/disabled-webhooks",
    summary="Instance webhooks that are off (410 Gone, failing too long, or turned off by the "
    "tenant), most recent first",
    tag="admin",
    auth="admin",
    query=OverviewPage,
    response=DisabledWebhookList,
    errors=(400, 401),
)
async def disabled_webhooks(request: web.Request) -> web.Response:
    store = request.app[STORE]
    return await _listed(
        request,
        OverviewPage,
        lambda _, skip, limit: disabled_webhooks_page(store, skip, limit),
        "turn webhooks back on (each instance's webhookEnabled) to shorten it",
    )


def _asked_queue(request: web.Request) -> str:
    """The service queue whose dead letters the operator asks for; 404 for another name."""
    require_admin(request)
    queue = request.match_info["queue"]
    dead_letters.dead_queue(request.app[BROKER], queue)
    return queue


@API.get(
    "/admin/dead-letters",
    summary="Every dead-letter queue of the broker: its count and first messages with the "
    "reason each carries",
    tag="admin",
    auth="admin",
    query=DeadLetterQuery,
    response=DeadLetterQueues,
    errors=(400, 401),
)
async def list_dead_letter_queues(request: web.Request) -> web.Response:
    require_admin(request)
    limit = read_query(request, DeadLetterQuery).limit
    queues = []
    for queue in SERVICE_QUEUES:
        count, rows = await dead_letters.peek(request.app[BROKER], queue, limit)
        queues.append({"queue": queue, "count": count, "messages": rows})
    return web.json_response({"queues": queues})


@API.get(
    "/admin/dead-letters/{queue}",
    summary="One dead-letter queue: its count and first messages with their reasons",
    tag="admin",
    auth="admin",
    query=DeadLetterQuery,
    response=DeadLetterQueue,
    errors=(400, 401, 404),
)
async def list_dead_letters(request: web.Request) -> web.Response:
    queue = _asked_queue(request)
    limit = read_query(request, DeadLetterQuery).limit
    count, rows = await dead_letters.peek(request.app[BROKER], queue, limit)
    return web.json_response({"queue": queue, "count": count, "messages": rows})


@API.post(
    "/admin/dead-letters/{queue}/replay",
    summary="Put a dead-letter queue's messages back on their service queue with fresh attempts",
    tag="admin",
    auth="admin",
    query=ReplayQuery,
    response=Replayed,
    errors=(400, 401, 404),
)
async def replay_dead_letters(request: web.Request) -> web.Response:
    queue = _asked_queue(request)
    limit = read_query(request, ReplayQuery).limit
    replayed = await dead_letters.replay(request.app[BROKER], queue, limit)
    return web.json_response({"queue": queue, "replayed": replayed})


@API.delete(
    "/admin/dead-letters/{queue}",
    summary="Drop every message of a dead-letter queue",
    tag="admin",
    auth="admin",
    response=Purged,
    errors=(401, 404),
)
async def purge_dead_letters(request: web.Request) -> web.Response:
    queue = _asked_queue(request)
    purged = await dead_letters.purge(request.app[BROKER], queue)
    return web.json_response({"queue": queue, "purged": purged})
