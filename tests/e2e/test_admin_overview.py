"""The operator view's API: tenants, instances and disabled webhooks across every tenant, and the
broker's dead letters read, replayed and purged, against the running stack."""

import re
from dataclasses import dataclass
from typing import Any

import pytest

from lanegate.broker import REASON_HEADER
from lanegate.events import InstancePaused, encode
from tests.conftest import AMQP_URL
from tests.support.gateway import Gateway, TenantInstance, eventually, settled
from tests.support.messages import send
from tests.support.queues import queued
from tests.support.receiver import Receiver, event_named

pytestmark = pytest.mark.e2e

GONE = "/gone"


@dataclass
class Setup:
    """Two tenants: one with a closed instance and messages waiting, on a plan; one with an
    open instance that is paused and whose webhook answered 410."""

    waiting: TenantInstance
    paused: TenantInstance
    plan_id: str


async def admin(gateway: Gateway, method: str, path: str, **kw: Any) -> tuple[int, Any]:
    return await gateway.call(method, path, key=gateway.admin_key, **kw)


async def every_page(gateway: Gateway, path: str, **query: str) -> list[dict[str, Any]]:
    """Every row of an operator listing, read a page at a time."""
    rows: list[dict[str, Any]] = []
    page = 1
    while True:
        status, answer = await admin(
            gateway, "GET", path, params={"page": str(page), "limit": "2", **query}
        )
        assert 200 == status, answer
        rows += answer["data"]
        if page >= answer["meta"]["pages"]:
            assert answer["meta"]["total"] == len(rows)
            return rows
        page += 1


async def set_up(gateway: Gateway, receiver: Receiver) -> Setup:
    receiver.answer = lambda r: 410 if r.path == GONE else 204
    waiting = await gateway.tenant_with_instance(receiver.url(), connect=False)
    paused = await gateway.tenant_with_instance(receiver.url(GONE))
    plan_id = f"plan{waiting.tenant_id}"[:40]
    status, _ = await admin(
        gateway, "POST", "/admin/plans", json={"id": plan_id, "name": "Small", "maxBulkSize": 9}
    )
    assert 201 == status
    status, _ = await admin(
        gateway, "PATCH", f"/admin/tenants/{waiting.tenant_id}", json={"planId": plan_id}
    )
    assert 200 == status
    for lane in ("bulk", "bulk", "urgent"):
        await send(gateway, waiting.key, waiting.name, lane=lane)
    status, _ = await gateway.call(
        "POST", f"/instance/{paused.name}/pause", key=paused.key, json={"reason": "audit"}
    )
    assert 200 == status
    return Setup(waiting, paused, plan_id)


async def test_tenants_instances_and_disabled_webhooks_across_tenants(
    gateway: Gateway, receiver: Receiver
) -> None:
    setup = await set_up(gateway, receiver)

    tenants: dict[str, dict[str, Any]] = {}

    async def accepted_counted() -> bool:  # a process writes its counts a second after
        tenants.update({t["id"]: t for t in await every_page(gateway, "/admin/overview/tenants")})
        return bool(3 == tenants[setup.waiting.tenant_id]["usageToday"]["accepted"])

    await settled(accepted_counted)
    mine = tenants[setup.waiting.tenant_id]
    assert {"id": setup.plan_id, "name": "Small"} == mine["plan"]
    assert (1, 1, False, 3) == (
        mine["instances"],
        mine["liveKeys"],
        mine["disabled"],
        mine["usageToday"]["accepted"],
    )
    other = tenants[setup.paused.tenant_id]
    assert (None, 1, 0) == (other["plan"], other["instances"], other["usageToday"]["accepted"])

    instances = {
        i["instanceName"]: i for i in await every_page(gateway, "/admin/overview/instances")
    }
    closed, open_ = instances[setup.waiting.name], instances[setup.paused.name]
    assert (setup.waiting.tenant_id, "close", None) == (
        closed["tenantId"],
        closed["state"],
        closed["pause"],
    )
    assert ({"urgent": 1, "normal": 0, "bulk": 2}, 3) == (
        closed["waiting"],
        closed["waitingTotal"],
    )
    assert ("open", "tenant", "audit", 0) == (
        open_["state"],
        open_["pause"]["by"],
        open_["pause"]["reason"],
        open_["waitingTotal"],
    )
    only = await every_page(gateway, "/admin/overview/instances", tenantId=setup.paused.tenant_id)
    assert [setup.paused.name] == [i["instanceName"] for i in only]

    async def gone_rows() -> list[dict[str, Any]]:
        rows = await every_page(gateway, "/admin/overview/disabled-webhooks")
        return [w for w in rows if w["instanceName"] == setup.paused.name]

    async def turned_off() -> bool:
        return bool(await gone_rows())

    await eventually(turned_off)
    (gone,) = await gone_rows()
    assert (setup.paused.tenant_id, receiver.url(GONE)) == (gone["tenantId"], gone["webhookUrl"])
    assert "410" in gone["reason"] and gone["disabledAt"]
    listed = await every_page(gateway, "/admin/overview/disabled-webhooks")
    assert setup.waiting.name not in {w["instanceName"] for w in listed}


async def dead(gateway: Gateway, queue: str) -> dict[str, Any]:
    status, answer = await admin(gateway, "GET", f"/admin/dead-letters/{queue}?limit=200")
    assert 200 == status, answer
    return dict(answer)


async def test_dead_letters_listed_with_reasons_replayed_and_purged(
    gateway: Gateway, receiver: Receiver
) -> None:
    tenant = await gateway.tenant_with_instance(receiver.url())
    namespace = gateway.namespace
    # A body no consumer can read: template-sync itself dead-letters it, with the reason.
    await queued(AMQP_URL, f"{namespace}.template-sync", b'{"kind": "nonsense"}', "unreadable1")

    async def dead_lettered() -> bool:
        return any(
            m["id"] == "unreadable1" for m in (await dead(gateway, "template-sync"))["messages"]
        )

    await eventually(dead_lettered)
    # An event that gave up while the tenant's receiver was failing, now fixed.
    paused = InstancePaused(
        tenantId=tenant.tenant_id, instanceName=tenant.name, reason="admin replay", by="tenant"
    )
    gave_up = "gave up after 8 attempts: ConnectionError()"
    dead_queue = f"{namespace}.webhook-dispatcher.dead"
    await queued(
        AMQP_URL,
        dead_queue,
        encode(paused),
        paused.id,
        kind=paused.kind,
        **{REASON_HEADER: gave_up},
    )

    status, every = await admin(gateway, "GET", "/admin/dead-letters?limit=200")
    assert 200 == status
    queues = {q["queue"]: q for q in every["queues"]}
    assert {"lane-scheduler", "provider-sender", "webhook-dispatcher", "template-sync"} == set(
        queues
    )
    (waiting,) = [m for m in queues["webhook-dispatcher"]["messages"] if m["id"] == paused.id]
    assert ("instance.paused", gave_up) == (waiting["kind"], waiting["reason"])
    (unreadable,) = [m for m in queues["template-sync"]["messages"] if m["id"] == "unreadable1"]
    assert unreadable["reason"].startswith("invalid")
    assert queues["template-sync"]["count"] >= 1
    # Reading takes nothing away (other tests' dead letters may only add to the queues).
    _, again = await admin(gateway, "GET", "/admin/dead-letters?limit=200")
    for before, after in zip(every["queues"], again["queues"], strict=True):
        assert after["count"] >= before["count"], after["queue"]
    listed = {m["id"] for q in again["queues"] for m in q["messages"]}
    assert {paused.id, "unreadable1"} <= listed
    status, counted = await admin(gateway, "GET", "/admin/dead-letters?limit=0")
    assert (200, []) == (status, counted["queues"][0]["messages"])

    status, replayed = await admin(gateway, "POST", "/admin/dead-letters/webhook-dispatcher/replay")
    assert (200, "webhook-dispatcher") == (status, replayed["queue"])
    assert replayed["replayed"] >= 1
    await receiver.wait_for(event_named("instance.paused", reason="admin replay"))
    assert paused.id not in {
        m["id"] for m in (await dead(gateway, "webhook-dispatcher"))["messages"]
    }

    status, purged = await admin(gateway, "DELETE", "/admin/dead-letters/template-sync")
    assert (200, True) == (status, purged["purged"] >= 1)
    emptied = await dead(gateway, "template-sync")
    assert (0, []) == (emptied["count"], emptied["messages"])


async def test_unknown_queues_are_404_and_bad_paging_400(gateway: Gateway) -> None:
    for method, path in (
        ("GET", "/admin/dead-letters/no-such-queue"),
        ("POST", "/admin/dead-letters/no-such-queue/replay"),
        ("DELETE", "/admin/dead-letters/no-such-queue"),
        ("DELETE", "/admin/dead-letters/template-sync.dead"),
    ):
        status, body = await admin(gateway, method, path)
        assert (404, True) == (status, "template-sync" in body["error"]), (method, path, body)

    bad = (
        ("/admin/overview/tenants", {"page": "0"}, "page"),
        ("/admin/overview/tenants", {"limit": "1000"}, "limit"),
        ("/admin/overview/instances", {"page": "500", "limit": "250"}, "page"),
        ("/admin/overview/instances", {"limit": "many"}, "limit"),
        ("/admin/overview/instances", {"tenantId": "Not A Tenant!"}, "tenantId"),
        ("/admin/overview/disabled-webhooks", {"sort": "name"}, "sort"),
        ("/admin/dead-letters", {"limit": "-1"}, "limit"),
        ("/admin/dead-letters/template-sync", {"limit": "x"}, "limit"),
    )
    for path, query, field in bad:
        status, body = await admin(gateway, "GET", path, params=query)
        assert 400 == status, (path, query, body)
        assert "Validation error" == body["error"]
        assert [field] == body["issues"][0]["path"], body
    status, body = await admin(
        gateway, "POST", "/admin/dead-letters/template-sync/replay", params={"limit": "0"}
    )
    assert (400, ["limit"]) == (status, body["issues"][0]["path"])


async def test_a_tenant_key_is_refused_on_every_operator_route(
    gateway: Gateway, receiver: Receiver
) -> None:
    tenant = await gateway.tenant_with_instance(receiver.url())
    await queued(
        AMQP_URL,
        f"{gateway.namespace}.webhook-dispatcher.dead",
        b"{}",
        "kept1",
        **{REASON_HEADER: "kept"},
    )
    _, spec = await gateway.call("GET", "/openapi.json")
    operator = [
        (method.upper(), path)
        for path, methods in spec["paths"].items()
        if path.startswith("/admin")
        for method in methods
    ]
    assert {
        ("GET", "/admin/overview/tenants"),
        ("GET", "/admin/overview/instances"),
        ("GET", "/admin/overview/disabled-webhooks"),
        ("GET", "/admin/dead-letters"),
        ("GET", "/admin/dead-letters/{queue}"),
        ("POST", "/admin/dead-letters/{queue}/replay"),
        ("DELETE", "/admin/dead-letters/{queue}"),
    } <= set(operator)
    values = {"queue": "webhook-dispatcher", "id": tenant.tenant_id, "keyId": "k"}
    for method, template in operator:
        path = re.sub(r"\{(\w+)\}", lambda m: values[m[1]], template)
        for key in (tenant.key, None):
            status, body = await gateway.call(method, path, key=key, json={})
            assert 401 == status, (method, path, body)
    # Nothing was replayed or dropped for them.
    kept = (await dead(gateway, "webhook-dispatcher"))["messages"]
    assert "kept1" in {m["id"] for m in kept}
    await admin(gateway, "DELETE", "/admin/dead-letters/webhook-dispatcher")
