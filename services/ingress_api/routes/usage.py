"""`GET /account/usage`: what a tenant's instances did per day or month, from the counts kept
as it happened."""

from aiohttp import web

from ingress_api.accounts.usage import day_records, summed, usage_range
from ingress_api.auth import authenticate
from ingress_api.registry import API
from ingress_api.requests import read_query
from ingress_api.schemas.usage import UsageQuery, UsageView
from lanegate.events import utcnow
from lanegate.service import STORE


@API.get(
    "/account/usage",
    summary="Messages accepted, sent, delivered, read, failed and canceled, webhook deliveries "
    "and one-time codes, per UTC day or month, by channel and instance",
    tag="account",
    query=UsageQuery,
    response=UsageView,
    errors=(400, 401, 403),
    scope="account:read",
)
async def account_usage(request: web.Request) -> web.Response:
    caller = await authenticate(request)
    query = read_query(request, UsageQuery)
    start, end = usage_range(query.from_, query.to, query.granularity, utcnow().date())
    records = await day_records(
        request.app[STORE], caller.tenant_id, start, end, query.instanceName
    )
    answer = {
        "from": start.isoformat(),
        "to": end.isoformat(),
        "granularity": query.granularity,
        "instanceName": query.instanceName,
        **summed(records, start, end, query.granularity),
    }
    return web.json_response(answer)
