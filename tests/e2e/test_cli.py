"""The `lanegate` operator command against the running stack: its store, broker and services."""

import asyncio
import json
from typing import Any

import pytest
from click.testing import CliRunner, Result

from lanegate.broker import REASON_HEADER
from lanegate.events import InstancePaused, encode
from lanegate.secrets import Keyring, is_sealed, new_key
from lanegate.store import Store
from lanegate.store.changes import CHANGES
from lanegate.store.indexes import CHATS_BY_CONTACT
from operator_cli.main import cli
from tests.conftest import AMQP_URL, SECRET_KEY
from tests.support.gateway import Gateway, TenantInstance, eventually
from tests.support.messages import DB, send
from tests.support.queues import queued
from tests.support.receiver import Receiver, event_named

pytestmark = pytest.mark.e2e


# As recorded in `store_changes` (renaming it would apply it again).
CHATS_CHANGE = "chats keyed by tenant, instance and contact"


def settings_of(gateway: Gateway, **overrides: str) -> dict[str, str]:
    """The LANEGATE_* variables the stack's services run with, and `overrides`."""
    env = {k: v for k, v in gateway.stack.env.items() if k.startswith("LANEGATE_")}
    return env | {f"LANEGATE_{k.upper()}": v for k, v in overrides.items()}


async def lanegate(gateway: Gateway, *args: str, **overrides: str) -> Result:
    """Run the command as an operator would, with the services' settings (and `overrides`)."""
    runner = CliRunner()
    env = settings_of(gateway, **overrides)
    return await asyncio.to_thread(runner.invoke, cli, list(args), env=env)


def as_json(result: Result) -> Any:
    assert 0 == result.exit_code, result.output
    return json.loads(result.output)


async def test_tenants_and_keys_made_by_the_cli_work_on_the_api(
    gateway: Gateway, receiver: Receiver
) -> None:
    created = as_json(await lanegate(gateway, "--json", "tenants", "create", "clitenant1"))
    (tenant,) = created
    assert ("clitenant1", "clitenant1") == (tenant["id"], tenant["name"])
    status, _ = await gateway.call("GET", "/instances", key=tenant["apiKey"])
    assert 200 == status

    again = await lanegate(gateway, "tenants", "create", "clitenant1")
    assert 1 == again.exit_code
    assert "already exists" in again.output
    bad = await lanegate(gateway, "tenants", "create", "Bad Id!")
    assert 2 == bad.exit_code
    assert "id" in bad.output

    (reader,) = as_json(
        await lanegate(
            gateway, "--json", "keys", "create", "clitenant1", "--scope", "messages:read"
        )
    )
    assert ["messages:read"] == reader["scopes"]
    status, _ = await gateway.call("GET", "/stats", key=reader["apiKey"])
    assert 200 == status
    status, _ = await gateway.call(
        "POST", "/instance/create", key=reader["apiKey"], json={"instanceName": "x"}
    )
    assert 403 == status
    wrong_scope = await lanegate(gateway, "keys", "create", "clitenant1", "--scope", "root")
    assert 2 == wrong_scope.exit_code

    listed = as_json(await lanegate(gateway, "--json", "keys", "list", "clitenant1"))
    assert {reader["id"]} < {k["id"] for k in listed}
    assert reader["apiKey"] not in json.dumps(listed)

    revoked = await lanegate(gateway, "keys", "revoke", "clitenant1", reader["id"])
    assert 0 == revoked.exit_code, revoked.output

    async def refused(key: str) -> bool:
        status, _ = await gateway.call("GET", "/stats", key=key)
        return status == 401

    await eventually(lambda: refused(reader["apiKey"]))
    unknown = await lanegate(gateway, "keys", "revoke", "clitenant1", "nokey")
    assert (1, True) == (unknown.exit_code, "not found" in unknown.output)

    disabled = await lanegate(gateway, "tenants", "disable", "clitenant1")
    assert 0 == disabled.exit_code, disabled.output
    await eventually(lambda: refused(tenant["apiKey"]))
    table = await lanegate(gateway, "tenants", "list")
    assert 0 == table.exit_code
    row = next(line for line in table.output.splitlines() if "clitenant1" in line)
    assert "True" in row
    missing = await lanegate(gateway, "tenants", "disable", "nobody-here")
    assert (1, True) == (missing.exit_code, "not found" in missing.output)


async def test_instances_list_shows_every_tenant_state_pause_and_queue(
    gateway: Gateway, receiver: Receiver
) -> None:
    first = await gateway.tenant_with_instance(receiver.url(), connect=False)
    second = await gateway.tenant_with_instance(receiver.url())
    status, _ = await gateway.call(
        "POST", f"/instance/{second.name}/pause", key=second.key, json={"reason": "audit"}
    )
    assert 200 == status
    for lane in ("bulk", "bulk", "urgent"):
        await send(gateway, first.key, first.name, lane=lane)

    rows = {
        r["instance"]: r for r in as_json(await lanegate(gateway, "--json", "instances", "list"))
    }
    assert {first.name, second.name} <= rows.keys()
    assert (first.tenant_id, "close", None) == (
        rows[first.name]["tenant"],
        rows[first.name]["state"],
        rows[first.name]["paused"],
    )
    assert (2, 1, 0, 3) == tuple(rows[first.name][k] for k in ("bulk", "urgent", "normal", "total"))
    assert ("open", 0) == (rows[second.name]["state"], rows[second.name]["total"])
    assert "tenant: audit" == rows[second.name]["paused"]

    only = as_json(
        await lanegate(gateway, "--json", "instances", "list", "--tenant", second.tenant_id)
    )
    assert [second.name] == [r["instance"] for r in only]


async def dead_rows(gateway: Gateway, queue: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = as_json(await lanegate(gateway, "--json", "dlq", "list", queue))
    return rows


async def test_dlq_lists_reasons_replays_and_purges(gateway: Gateway, receiver: Receiver) -> None:
    tenant = await gateway.tenant_with_instance(receiver.url())
    namespace = gateway.namespace
    # A body no consumer can read: template-sync itself dead-letters it, with the reason.
    await queued(AMQP_URL, f"{namespace}.template-sync", b'{"kind": "nonsense"}', "unreadable")

    async def dead_lettered() -> bool:
        return len(await dead_rows(gateway, "template-sync")) == 1

    await eventually(dead_lettered)
    (unreadable,) = await dead_rows(gateway, "template-sync")
    assert ("unreadable", True) == (unreadable["id"], unreadable["reason"].startswith("invalid"))
    # Listing takes nothing away.
    assert [unreadable] == await dead_rows(gateway, "template-sync")

    # An event that gave up while the receiver's side was failing, then fixed: replayed whole.
    paused = InstancePaused(
        tenantId=tenant.tenant_id, instanceName=tenant.name, reason="cli replay", by="tenant"
    )
    gave_up = "gave up after 8 attempts: ConnectionError()"
    dead_queue = f"{namespace}.webhook-dispatcher.dead"
    await queued(AMQP_URL, dead_queue, encode(paused), paused.id, **{REASON_HEADER: gave_up})
    (waiting,) = await dead_rows(gateway, "webhook-dispatcher")
    assert (paused.id, gave_up) == (waiting["id"], waiting["reason"])
    every = await lanegate(gateway, "dlq", "list")
    assert 0 == every.exit_code, every.output
    assert "template-sync.dead: 1 message(s)" in every.output
    assert "webhook-dispatcher.dead: 1 message(s)" in every.output

    replayed = await lanegate(gateway, "dlq", "replay", "webhook-dispatcher")
    assert "1 message(s) put back on webhook-dispatcher" in replayed.output
    await receiver.wait_for(event_named("instance.paused", reason="cli replay"))
    assert [] == await dead_rows(gateway, "webhook-dispatcher")

    purged = await lanegate(gateway, "dlq", "purge", "template-sync", "--yes")
    assert "1 message(s) purged from template-sync.dead" in purged.output
    assert [] == await dead_rows(gateway, "template-sync")
    unknown = await lanegate(gateway, "dlq", "purge", "no-such-queue", "--yes")
    assert 2 == unknown.exit_code


async def test_deliveries_replay_since_delivers_dead_ones_again(
    gateway: Gateway, receiver: Receiver
) -> None:
    tenant = await gateway.tenant_with_instance(receiver.url())
    receiver.answer = lambda _: 500
    status, _ = await gateway.call(
        "POST", f"/instance/{tenant.name}/pause", key=tenant.key, json={"reason": "dead one"}
    )
    assert 200 == status
    async with gateway.mongo() as client:
        await _replays_dead_delivery(gateway, receiver, tenant, client[DB].webhook_deliveries)


async def _replays_dead_delivery(
    gateway: Gateway, receiver: Receiver, tenant: TenantInstance, deliveries: Any
) -> None:
    paused = {"tenantId": tenant.tenant_id, "event": "instance.paused"}

    async def dead() -> bool:
        found = await deliveries.find_one(paused | {"status": "dead"})
        return found is not None

    await eventually(dead, timeout=30)
    tried = len(receiver.matching(event_named("instance.paused", reason="dead one")))
    receiver.answer = lambda _: 204

    bad = await lanegate(gateway, "deliveries", "replay", "--since", "yesterday-ish")
    assert (2, True) == (bad.exit_code, "ISO 8601" in bad.output)
    result = await lanegate(
        gateway, "deliveries", "replay", "--since", "10m", "--tenant", tenant.tenant_id
    )
    assert 0 == result.exit_code, result.output
    assert result.output.startswith("1 delivery(ies) replayed")
    await receiver.wait_for(event_named("instance.paused", reason="dead one"), count=tried + 1)

    async def delivered() -> bool:
        found = await deliveries.find_one(paused)
        return found is not None and found["status"] == "delivered"

    await eventually(delivered)


async def test_reseal_rotates_every_stored_secret_to_the_first_key(
    gateway: Gateway, store: Store
) -> None:
    old, new = Keyring(SECRET_KEY), new_key()
    await store.instances.insert_many(
        [
            {
                "_id": "t1_a",
                "tenantId": "t1",
                "webhookSecret": old.encrypt("secret-a"),
                "providerConfig": {"apiKey": "plain-api-key", "baseUrl": "http://waha"},
            },
            {"_id": "t1_b", "tenantId": "t1", "webhookSecret": Keyring(new).encrypt("secret-b")},
        ]
    )

    result = await lanegate(
        gateway, "reseal", mongo_db=store.db.name, secret_key=f"{new},{SECRET_KEY}"
    )

    assert 0 == result.exit_code, result.output
    assert "1 of 2 instance(s) resealed" in result.output
    rotated = Keyring(new)
    a = await store.instances.find_one({"_id": "t1_a"})
    b = await store.instances.find_one({"_id": "t1_b"})
    assert a is not None and b is not None
    assert is_sealed(a["providerConfig"]["apiKey"])
    assert ("secret-a", "plain-api-key", "http://waha", "secret-b") == (
        rotated.decrypt(a["webhookSecret"]),
        rotated.decrypt(a["providerConfig"]["apiKey"]),
        a["providerConfig"]["baseUrl"],
        rotated.decrypt(b["webhookSecret"]),
    )
    keyless = await lanegate(
        gateway, "reseal", mongo_db=store.db.name, secret_key="", env="development"
    )
    assert (1, True) == (keyless.exit_code, "not set" in keyless.output)


async def test_check_reports_each_part_and_fails_on_any(gateway: Gateway) -> None:
    healthy = await lanegate(gateway, "check")

    assert 0 == healthy.exit_code, healthy.output
    lines = healthy.output.splitlines()
    assert ["settings", "store", "indexes", "changes", "broker"] == [
        line.split()[0] for line in lines
    ]
    assert all(line.split()[1] == "ok" for line in lines)

    broken = [
        ({"namespace": "lgtest-never-declared"}, ["broker    FAIL  "]),
        ({"mongo_db": "lanegate_cli_never_created"}, ["indexes   FAIL  ", "changes   FAIL  "]),
        (
            {"mongo_uri": "mongodb://127.0.0.1:1/"},
            ["store     FAIL  unreachable", "indexes   FAIL  not checked", "changes   FAIL  not"],
        ),
        ({"secret_key": "not-a-fernet-key"}, ["settings  FAIL  LANEGATE_SECRET_KEY must be"]),
        ({"prefetch": "0"}, ["settings  FAIL  invalid settings (LANEGATE_PREFETCH"]),
    ]
    for overrides, failing in broken:
        result = await lanegate(gateway, "check", **overrides)
        assert 1 == result.exit_code, result.output
        assert all(line in result.output for line in failing), result.output


async def test_check_names_the_retired_indexes_and_changes_an_upgrade_left(
    gateway: Gateway, store: Store
) -> None:
    upgraded = await lanegate(gateway, "check", mongo_db=store.db.name)
    assert 0 == upgraded.exit_code, upgraded.output

    # As a service of the earlier release would leave it: its index, the chats not yet moved.
    await store.chats.create_index(
        [("tenantId", 1), ("instanceName", 1), ("contact", 1)], name=CHATS_BY_CONTACT
    )
    await store.db["store_changes"].delete_one({"_id": CHATS_CHANGE})
    result = await lanegate(gateway, "check", mongo_db=store.db.name)

    lines = {line.split()[0]: line for line in result.output.splitlines()}
    assert 1 == result.exit_code, result.output
    assert lines["indexes"].startswith("indexes   FAIL  1 retired still there")
    assert f"chats.{CHATS_BY_CONTACT}" in lines["indexes"]
    assert lines["changes"] == f"changes   FAIL  1 of {len(CHANGES)} not applied" + (
        f" (a service's start applies them): {CHATS_CHANGE}"
    )
    assert all(" ok " in lines[name] for name in ("settings", "store", "broker"))
