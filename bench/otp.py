"""OTP verify calls per second through ingress-api, beside the bare store work of a verify.

A store and one ingress-api process (devtools.stack) with a tenant and a sandbox instance;
`--codes` pending codes are written straight into the store (hashed as ingress-api hashes
them, with the stack's secret key), then verified with their right code over HTTP,
`--concurrency` in flight, each code once: the gateway's whole verify (key check, body,
lookup, expiry check, constant-time compare, the conditional move to `verified`), with the
CPU ingress-api and the store each spent per verify. The bare line does the same store work
from this process with no HTTP and no gateway: read the code by id, compare, conditional
update. Then the same again with wrong codes (an attempt spent each).

    python -m bench.otp [--codes 3000] [--concurrency 32]

The store is the one `LANEGATE_TEST_STORE` names, as for the suite (mongoeco by default).
"""

import argparse
import asyncio
import contextlib
import os
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import uvloop
from pymongo import ReturnDocument

from bench.ingress import cpu_seconds, store_cpu_seconds
from devtools.stack import Stack, StoreEngine, delete_topology
from lanegate import otp
from lanegate.events import new_id, utcnow
from lanegate.secrets import Keyring, new_key
from lanegate.store import Document, Store

AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"
TO = "5491112345678"


def codes_for(tenant_id: str, name: str, keyring: Keyring, count: int) -> list[Document]:
    """`count` pending codes of the tenant, each with its plain code beside it (`plain`)."""
    key, now = otp.hash_keys(keyring)[0], utcnow()
    records = []
    for n in range(count):
        otp_id, code = new_id(), otp.draw_code(6)
        records.append(
            {
                "_id": otp_id,
                "tenantId": tenant_id,
                "instanceName": name,
                "to": f"549110{n:07d}",
                "codeHash": otp.code_hash(key, otp_id, code),
                "status": "pending",
                "attemptsLeft": 5,
                "resendsLeft": 3,
                "ttlSeconds": 3600,
                "length": 6,
                "carrier": {"kind": "text", "text": otp.MASK},
                "createdAt": now,
                "expiresAt": now + timedelta(hours=1),
                "sends": [now],
                "messageIds": [],
                "verifiedAt": None,
                "externalId": None,
                "purgeAt": now + timedelta(hours=2),
                "plain": code,
            }
        )
    return records


async def over_http(api: str, key: str, records: list[Document], concurrency: int) -> float:
    """Verifies per second through ingress-api, each record's `plain` code once."""
    pending = iter(records)
    statuses: dict[int, int] = {}

    async def worker(http: aiohttp.ClientSession) -> None:
        for record in pending:
            body = {"id": record["_id"], "code": record["plain"]}
            async with http.post(f"{api}/otp/verify", json=body, headers={"apikey": key}) as r:
                await r.read()
                statuses[r.status] = statuses.get(r.status, 0) + 1

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as http:
        started = time.perf_counter()
        await asyncio.gather(*(worker(http) for _ in range(concurrency)))
        seconds = time.perf_counter() - started
    print(f"    statuses {statuses}")
    return len(records) / seconds


async def bare(store: Store, keyring: Keyring, records: list[Document], concurrency: int) -> float:
    """Verifies per second doing only a verify's store work and compare, from this process."""
    pending, keys = iter(records), otp.hash_keys(keyring)

    async def worker() -> None:
        for record in pending:
            found = await store.otp_codes.find_one({"_id": record["_id"]})
            assert found is not None
            if otp.code_matches(keys, found["_id"], record["plain"], found["codeHash"]):
                await store.otp_codes.find_one_and_update(
                    {"_id": found["_id"], "status": "pending", "codeHash": found["codeHash"]},
                    {"$set": {"status": "verified", "verifiedAt": utcnow()}},
                    return_document=ReturnDocument.AFTER,
                )
            else:
                await store.otp_codes.find_one_and_update(
                    {"_id": found["_id"], "status": "pending", "attemptsLeft": {"$gt": 0}},
                    {"$inc": {"attemptsLeft": -1}},
                    return_document=ReturnDocument.AFTER,
                )

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return len(records) / (time.perf_counter() - started)


def stored(record: Document) -> Document:
    """A record as the store holds it: without its plain code."""
    return {k: v for k, v in record.items() if k != "plain"}


def wrong(records: list[Document]) -> list[Document]:
    """The same records with a code one digit off."""
    return [r | {"plain": str((int(r["plain"]) + 1) % 10**6).zfill(6)} for r in records]


async def tenant(api: str, admin_key: str) -> tuple[str, str, str]:
    tenant_id = f"bench{uuid.uuid4().hex[:8]}"
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{api}/admin/tenants",
            json={"id": tenant_id, "name": tenant_id},
            headers={"apikey": admin_key},
        ) as r:
            key = (await r.json())["apiKey"]
        name = f"{tenant_id}__bench__main"
        instance = {
            "instanceName": name,
            "webhookUrl": "http://127.0.0.1:9/hook",
            "webhookSecret": "bench-secret-bench-secret",
        }
        async with http.post(f"{api}/instance/create", json=instance, headers={"apikey": key}) as r:
            assert r.status == 201, await r.text()
    return tenant_id, str(key), name


@contextlib.asynccontextmanager
async def bench_stack(
    secret: str, admin_key: str, services: Sequence[str] = ("ingress_api",)
) -> AsyncIterator[tuple[Stack, Store]]:
    """The store and `services` running under a namespace of their own, on the store
    `LANEGATE_TEST_STORE` names (mongoeco by default), whose rate limit counts but never
    refuses, with a client of that store; all stopped and the namespace's queues deleted
    after."""
    namespace = f"lgbench-{uuid.uuid4().hex[:8]}"
    stack = Stack.create(
        Path("var/bench-logs") / namespace,
        settings={
            "LANEGATE_AMQP_URL": AMQP_URL,
            "LANEGATE_NAMESPACE": namespace,
            "LANEGATE_MONGO_DB": "lanegate_bench",
            "LANEGATE_ADMIN_KEY": admin_key,
            "LANEGATE_SECRET_KEY": secret,
            "LANEGATE_ALLOW_PRIVATE_TARGETS": "true",
            "LANEGATE_RATE_LIMIT_PER_MINUTE": str(10**9),
            "LANEGATE_LOG_LEVEL": "WARNING",
        },
        store=StoreEngine.from_environment(os.environ),
    )
    try:
        stack.start_store()
        for service in services:
            stack.start(service)
        store = Store(stack.env["LANEGATE_MONGO_URI"], "lanegate_bench")
        try:
            await store.connect()
            yield stack, store
        finally:
            await store.close()
    finally:
        try:
            stack.stop_all()
        finally:
            await delete_topology(AMQP_URL, namespace)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    secret, admin_key = new_key(), secrets.token_urlsafe(32)
    keyring = Keyring(secret)
    results: dict[str, Any] = {}
    async with bench_stack(secret, admin_key) as (stack, store):
        api = stack.url("ingress_api")
        tenant_id, key, name = await tenant(api, admin_key)
        for label, make in (("right code", lambda r: r), ("wrong code", wrong)):
            gateway_codes = codes_for(tenant_id, name, keyring, args.codes)
            bare_codes = codes_for(tenant_id, name, keyring, args.codes)
            for start in range(0, 2 * args.codes, 500):
                batch = (gateway_codes + bare_codes)[start : start + 500]
                await store.otp_codes.insert_many([stored(r) for r in batch])
            print(f"{label}:")
            ingress = stack.processes["ingress_api"].pid
            before = cpu_seconds(ingress), store_cpu_seconds(stack)
            results[f"{label} gateway"] = await over_http(
                api, key, make(gateway_codes), args.concurrency
            )
            ingress_ms = (cpu_seconds(ingress) - before[0]) / args.codes * 1000
            store_ms = (store_cpu_seconds(stack) - before[1]) / args.codes * 1000
            print(f"    CPU per verify: ingress-api {ingress_ms:.2f} ms, store {store_ms:.2f} ms")
            results[f"{label} bare"] = await bare(
                store, keyring, make(bare_codes), args.concurrency
            )
            print(
                f"    gateway {results[f'{label} gateway']:.0f}/s, "
                f"bare store work {results[f'{label} bare']:.0f}/s, ratio "
                f"{results[f'{label} gateway'] / results[f'{label} bare']:.2f}"
            )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.otp")
    parser.add_argument("--codes", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=32)
    uvloop.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
