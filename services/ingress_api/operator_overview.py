"""The operator's reads across every tenant: tenants with their plan, instances and usage today,
every instance with its state, pause and waiting queue per lane, and the webhook endpoints the
dispatcher turned off. The `lanegate` command and the operator API both read through here."""

from collections import defaultdict
from datetime import date
from typing import Any

from ingress_api.accounts.usage import day_records_of_tenants, summed
from ingress_api.requests import pause_view
from lanegate.lanes import LANES
from lanegate.lifecycle import WAITING
from lanegate.store import Document, Store
from lanegate.timestamps import iso_utc

Page = tuple[int, list[dict[str, Any]]]


async def tenants_page(store: Store, skip: int, limit: int | None, today: date) -> Page:
    """How many tenants there are, and those of one page by id: plan, disabled, instance and
    live key counts, and today's usage summed from the usage counters."""
    total = await store.tenants.count_documents({})
    found = store.tenants.find().sort("_id", 1).skip(skip)
    tenants = await (found if limit is None else found.limit(limit)).to_list(None)
    ids = [t["_id"] for t in tenants]
    instances: dict[str, int] = defaultdict(int)
    async for i in store.instances.find({"tenantId": {"$in": ids}}, {"tenantId": 1}):
        instances[i["tenantId"]] += 1
    keys: dict[str, int] = defaultdict(int)
    live = {"tenantId": {"$in": ids}, "revokedAt": None}
    async for k in store.api_keys.find(live, {"tenantId": 1}):
        keys[k["tenantId"]] += 1
    plan_ids = list({t["planId"] for t in tenants if t.get("planId")})
    plans = {p["_id"]: p["name"] async for p in store.plans.find({"_id": {"$in": plan_ids}})}
    usage: dict[str, list[Document]] = defaultdict(list)
    for record in await day_records_of_tenants(store, ids, today, today):
        usage[record["tenantId"]].append(record)
    rows = []
    for t in tenants:
        plan_id = t.get("planId")
        rows.append(
            {
                "id": t["_id"],
                "name": t["name"],
                "disabled": t.get("disabled", False),
                "plan": {"id": plan_id, "name": plans.get(plan_id)} if plan_id else None,
                "instances": instances[t["_id"]],
                "liveKeys": keys[t["_id"]],
                "usageToday": summed(usage[t["_id"]], today, today, "day")["totals"],
                "createdAt": iso_utc(t["createdAt"]),
            }
        )
    return total, rows


async def instances_page(store: Store, tenant_id: str | None, skip: int, limit: int | None) -> Page:
    """How many instances there are (of one tenant), and those of one page by name: state,
    pause and the messages waiting per lane."""
    match: dict[str, Any] = {} if tenant_id is None else {"tenantId": tenant_id}
    total = await store.instances.count_documents(match)
    fields = {"tenantId": 1, "provider": 1, "state": 1, "paused": 1}
    found = store.instances.find(match, fields).sort("_id", 1).skip(skip)
    instances = await (found if limit is None else found.limit(limit)).to_list(None)
    waiting: dict[str, dict[str, int]] = defaultdict(dict)
    groups = await store.messages.aggregate(
        [
            {
                "$match": {
                    "instanceName": {"$in": [i["_id"] for i in instances]},
                    "status": {"$in": list(WAITING)},
                }
            },
            {"$group": {"_id": {"i": "$instanceName", "l": "$lane"}, "n": {"$sum": 1}}},
        ]
    )
    async for g in groups:
        waiting[g["_id"]["i"]][g["_id"]["l"]] = g["n"]
    rows = []
    for i in instances:
        queue = {lane: waiting[i["_id"]].get(lane, 0) for lane in LANES}
        rows.append(
            {
                "tenantId": i["tenantId"],
                "instanceName": i["_id"],
                "provider": i.get("provider", "sandbox"),
                "state": i.get("state"),
                "pause": pause_view(i),
                "waiting": queue,
                "waitingTotal": sum(queue.values()),
            }
        )
    return total, rows


async def disabled_webhooks_page(store: Store, skip: int, limit: int) -> Page:
    """How many instance webhooks are off (a 410 answer, failing too long, or their tenant),
    and those of one page, most recently turned off first."""
    match = {"webhookEnabled": False}
    total = await store.instances.count_documents(match)
    fields = {"tenantId": 1, "webhookUrl": 1, "webhookDisabledAt": 1, "webhookDisabledReason": 1}
    found = store.instances.find(match, fields).sort([("webhookDisabledAt", -1), ("_id", 1)])
    rows = [
        {
            "tenantId": i["tenantId"],
            "instanceName": i["_id"],
            "webhookUrl": i.get("webhookUrl"),
            "disabledAt": iso_utc(i.get("webhookDisabledAt")),
            "reason": i.get("webhookDisabledReason"),
        }
        async for i in found.skip(skip).limit(limit)
    ]
    return total, rows
