"""Sending messages through the API and reading their state straight from the store."""

import uuid
from datetime import UTC, datetime
from typing import Any

from lanegate.lifecycle import Status
from lanegate.store import Document, Store
from tests.support.gateway import Gateway, eventually

DB = "lanegate_test"
QUEUED_AT = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


async def send(gateway: Gateway, key: str, name: str, **fields: Any) -> str:
    """Queue a text message (urgent unless told otherwise); returns its id."""
    body = {"instanceName": name, "to": "5491100000009", "text": "hi", "lane": "urgent"}
    status, answer = await gateway.call("POST", "/message/text", key=key, json=body | fields)
    assert 202 == status, answer
    return str(answer["id"])


async def stored(gateway: Gateway, *message_ids: str) -> list[dict[str, Any]]:
    """The stored messages, in the order of the ids given."""
    async with gateway.mongo() as client:
        found = {
            doc["_id"]: doc
            async for doc in client[DB].messages.find({"_id": {"$in": list(message_ids)}})
        }
    return [found[message_id] for message_id in message_ids]


async def statuses(gateway: Gateway, *message_ids: str) -> list[str]:
    """Each message's stored status."""
    return [str(doc["status"]) for doc in await stored(gateway, *message_ids)]


async def outbox_counts(gateway: Gateway, *message_ids: str) -> list[int]:
    """How many times the sandbox phone received each message (0 = never sent)."""
    async with gateway.mongo() as client:
        found = {
            doc["_id"]: int(doc["received"])
            async for doc in client[DB].sandbox_outbox.find({"_id": {"$in": list(message_ids)}})
        }
    return [found.get(message_id, 0) for message_id in message_ids]


async def wait_status(
    gateway: Gateway, status: str, *message_ids: str, timeout: float = 30
) -> None:
    """Wait until every message has reached `status`; a timeout names where each one is."""
    seen: list[str] = []

    async def reached() -> bool:
        seen[:] = await statuses(gateway, *message_ids)
        return all(s == status for s in seen)

    try:
        await eventually(reached, timeout=timeout)
    except TimeoutError as e:
        raise TimeoutError(f"not all {status}: {dict(zip(message_ids, seen, strict=True))}") from e


async def stored_message(store: Store, status: Status, **fields: Any) -> Document:
    """A message of instance `i` stored as `status` (untried unless `fields` say otherwise)."""
    message = {
        "_id": uuid.uuid4().hex,
        "tenantId": "t",
        "instanceName": "i",
        "to": "4915100000000",
        "lane": "normal",
        "status": status,
        "queuedAt": QUEUED_AT,
        "attempts": 0,
        **fields,
    }
    await store.messages.insert_one(message)
    return message
