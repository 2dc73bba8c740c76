"""The bare building blocks of a send, as a baseline: an aiohttp handler on uvloop that
validates the body with the gateway's model and publishes one confirmed message.

    python -m bench._bare_ingress --port P --amqp URL --exchange NAME [--mongo URI --store S]

With `--store insert` it also inserts one message document per request (into a
collection of its own with the gateway's indexes); with `--store same` it first
makes the same store round trips as the gateway's accept path in the gateway's
database `--db` (`gateway_reads`), groups its inserts as the gateway does
(with the gateway's `GroupedInserts`), and after the publish makes the chat's upsert,
grouped as the gateway does, and adds the day's count to sums written a second later, with
the gateway's `GroupedCounts` (`derived_writes`), so the gateway can be compared with the
same store work and nothing else.
"""

import argparse
import asyncio
import hashlib
import json
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import aio_pika
import uvloop
from aiohttp import web
from pydantic import ValidationError
from pymongo import AsyncMongoClient, ReturnDocument, UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase

from ingress_api.schemas.messages import TextMessage
from lanegate.store.grouped import GroupedInserts, GroupedWrites
from lanegate.store.indexes import INDEXES
from lanegate.store.keys import chat_id
from lanegate.usage import Added, Counted, GroupedCounts

EXCHANGE = web.AppKey("exchange", aio_pika.abc.AbstractExchange)
STORE = web.AppKey("store", AsyncMongoClient)
INSERTS = web.AppKey("inserts", GroupedInserts)
COUNTS = web.AppKey("counts", GroupedCounts)
CHATS = web.AppKey("chats", GroupedWrites)
Db = AsyncDatabase[dict[str, Any]]


TENANTS: dict[str, str] = {}  # key hash -> tenant, kept as the gateway keeps the keys it saw
RESERVED: dict[str, int] = {}  # key hash -> requests seen
READ_AT: dict[str, float] = {}  # key hash -> when its instance and contacts were last read
READ_EVERY = 5.0


async def gateway_reads(db: Db, request: web.Request, body: TextMessage) -> str:
    """The store work the gateway does before it inserts a send, as plain queries: the key
    (first request only), the rate-limit counter (one request in 50: the gateway reserves
    requests in blocks), the instance and inactive contacts (at once, once in 5 s: the
    gateway keeps them that long), the tenant's daily message counter (one send in 50:
    reserved in blocks too). The key's tenant."""
    key_hash = hashlib.sha256(request.headers["apikey"].encode()).hexdigest()
    if key_hash not in TENANTS:
        record = await db.api_keys.find_one({"keyHash": key_hash, "revokedAt": None})
        if record is None:
            raise web.HTTPUnauthorized()
        TENANTS[key_hash] = record["tenantId"]
    tenant_id = TENANTS[key_hash]
    RESERVED[key_hash] = RESERVED.get(key_hash, 0) + 1
    if RESERVED[key_hash] % 50 == 1:
        await reserve_block(db.rate_limits, f"bare:{key_hash[:16]}:{int(time.time()) // 60}")
    if time.monotonic() - READ_AT.get(key_hash, -READ_EVERY) >= READ_EVERY:
        READ_AT[key_hash] = time.monotonic()
        await asyncio.gather(
            db.instances.find(
                {"_id": {"$in": [body.instanceName]}, "tenantId": tenant_id}
            ).to_list(),
            db.contacts.find({"tenantId": tenant_id, "active": False}, {"identifier": 1}).to_list(),
        )
    if RESERVED[key_hash] % 50 == 1:
        await reserve_block(db.tenant_usage, f"bare:{tenant_id}:{datetime.now(UTC).date()}")
    return tenant_id


async def derived_writes(app: web.Application, tenant_id: str, body: TextMessage) -> None:
    """What the gateway writes once a send is stored and published: the instance's count for
    the day (summed, written a second later) and the chat's last message."""
    now = datetime.now(UTC)
    chat = {"tenantId": tenant_id, "instanceName": body.instanceName, "contact": body.to}
    app[COUNTS].add([Added(tenant_id, body.instanceName, None, Counted.ACCEPTED, now, 1)])
    await app[CHATS].write(
        [
            UpdateOne(
                {"_id": chat_id(tenant_id, body.instanceName, body.to)},
                {
                    "$set": {"lastText": body.text, "unread": 0},
                    "$max": {"lastMessageAt": now},
                    "$setOnInsert": chat,
                },
                upsert=True,
            )
        ]
    )


async def reserve_block(counters: AsyncCollection[dict[str, Any]], counter_id: str) -> None:
    """Take a block of 50 from a counter, as the gateway does for the rate limit and the day."""
    await counters.find_one_and_update(
        {"_id": counter_id},
        {"$inc": {"count": 50}},
        upsert=True,
        return_document=ReturnDocument.AFTER,
    )


def own_messages(client: AsyncMongoClient[dict[str, Any]], args: argparse.Namespace) -> Any:
    return client[f"bench_bare_{args.store}"]["messages"]


def build(args: argparse.Namespace) -> web.Application:
    async def resources(app: web.Application) -> AsyncIterator[None]:
        connection = await aio_pika.connect(args.amqp)
        channel = await connection.channel(publisher_confirms=True)
        app[EXCHANGE] = await channel.get_exchange(args.exchange)
        if args.store != "none":
            app[STORE] = AsyncMongoClient(args.mongo, tz_aware=True)
            # A messages collection of its own with the gateway's indexes: the wire store's
            # insert cost grows with the collection, so each side grows only its own.
            await own_messages(app[STORE], args).create_indexes(INDEXES["messages"])
            app[INSERTS] = GroupedInserts(own_messages(app[STORE], args))
        if args.store == "same":
            bare_db = app[STORE][f"bench_bare_{args.store}"]
            for name in ("usage_days", "chats"):  # their indexes, but for expiry
                await bare_db[name].create_indexes(
                    [m for m in INDEXES[name] if "expireAfterSeconds" not in m.document]
                )
            app[COUNTS] = GroupedCounts(bare_db["usage_days"])
            app[CHATS] = GroupedWrites(bare_db["chats"])
        yield
        if args.store == "same":
            await app[COUNTS].write_held()
        if args.store != "none":
            await app[STORE].close()
        await connection.close()

    async def send(request: web.Request) -> web.Response:
        try:
            body = TextMessage.model_validate(json.loads(await request.read()))
        except (ValueError, ValidationError) as e:
            return web.json_response({"error": str(e)}, status=400)
        message_id, now = str(uuid.uuid4()), datetime.now(UTC)
        tenant_id = None  # the key's tenant, read with the gateway's store work
        if args.store != "none":
            db: Db = request.app[STORE][args.db]
            if args.store == "same":
                tenant_id = await gateway_reads(db, request, body)
            document = {
                "_id": message_id,
                **body.model_dump(),
                "status": "pending",
                "createdAt": now,
            }
            if args.store == "same":  # grouped while one is under way, as the gateway does
                await request.app[INSERTS].insert(document)
            else:
                await own_messages(request.app[STORE], args).insert_one(document)
        event = {"id": message_id, "messageId": message_id, **body.model_dump(mode="json")}
        await request.app[EXCHANGE].publish(
            aio_pika.Message(
                json.dumps(event).encode(),
                content_type="application/json",
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                message_id=message_id,
            ),
            routing_key="message.accepted",
            mandatory=True,
        )
        if tenant_id is not None:
            await derived_writes(request.app, tenant_id, body)
        return web.json_response(
            {"id": message_id, "status": "queued", "lane": body.lane}, status=202
        )

    app = web.Application()
    app.cleanup_ctx.append(resources)
    app.router.add_post("/message/text", send)
    app.router.add_get("/readyz", ready)
    return app


async def ready(_: web.Request) -> web.Response:
    return web.Response(text="ok")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench._bare_ingress")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--amqp", required=True)
    parser.add_argument("--exchange", required=True)
    parser.add_argument("--mongo")
    parser.add_argument("--db", default="lanegate")
    parser.add_argument("--store", choices=["none", "insert", "same"], default="none")
    args = parser.parse_args()
    web.run_app(
        build(args),
        host="127.0.0.1",
        port=args.port,
        loop=uvloop.new_event_loop(),
        print=None,
        access_log=None,
    )


if __name__ == "__main__":
    main()
