"""What a tenant holds in the store, to prove a request changed nothing."""

from typing import Any

from tests.support.gateway import Gateway

# Collections holding tenant data; counters (rate limits, usage) and key records change on
# every authenticated request by design, so they are left out.
TENANT_COLLECTIONS = (
    "instances",
    "messages",
    "contacts",
    "templates",
    "webhook_deliveries",
    "conversation_windows",
    "inbound_messages",
    "chats",
    "sources",
    "statuses",
    "contact_comments",
    "groups",
)


async def tenant_data(gateway: Gateway, *tenant_ids: str) -> dict[str, Any]:
    """Every stored document of these tenants, and how many tenants exist."""
    async with gateway.mongo() as client:
        db = client.lanegate_test
        held: dict[str, Any] = {"tenant count": await db.tenants.count_documents({})}
        held["tenants"] = await db.tenants.find({"_id": {"$in": list(tenant_ids)}}).to_list(None)
        for name in TENANT_COLLECTIONS:
            found = db[name].find({"tenantId": {"$in": list(tenant_ids)}}).sort("_id", 1)
            held[name] = await found.to_list(None)
    return held
