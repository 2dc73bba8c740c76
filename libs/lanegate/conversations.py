"""Conversations: inbound messages kept, and one chat row per instance and contact."""

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from pymongo import ReturnDocument, UpdateOne

from lanegate import health
from lanegate.contacts import contact_wrote
from lanegate.events import MessageReceived, new_id
from lanegate.store import Document, Store
from lanegate.store.grouped import grouped_writes
from lanegate.store.keys import chat_id

# The fields of a message's content that hold what a person reads, in the order they are tried.
READABLE_FIELDS = ("text", "body", "caption")


def readable_text(content: dict[str, Any] | None) -> str | None:
    """The text, body or caption of a message's content, if it has one."""
    content = content or {}
    return next((content[f] for f in READABLE_FIELDS if isinstance(content.get(f), str)), None)


async def record_inbound(
    store: Store, received: MessageReceived, recipient: str | None, received_at: datetime
) -> bool:
    """Keep an inbound message once per provider id and instance, and count it in its chat
    as unread (only the first time it is kept, so a replay counts nothing); True when it
    was counted as a reply in the number's health."""
    kept = inbound_document(received, recipient, received_at)
    text = kept["text"]
    result = await store.inbound_messages.update_one(
        {"instanceName": received.instanceName, "providerMessageId": received.providerMessageId},
        {
            "$setOnInsert": {
                k: v for k, v in kept.items() if k not in ("instanceName", "providerMessageId")
            }
        },
        upsert=True,
    )
    if result.upserted_id is None:
        return False
    await contact_wrote(store, received.tenantId, received.sender, received.pushName, received_at)
    last = {"id": result.upserted_id, "direction": "inbound", "type": received.messageType}
    before = await store.chats.find_one_and_update(
        _chat(received.tenantId, received.instanceName, received.sender),
        {
            "$set": {"lastMessage": last | {"text": text}, "lastInboundAt": received_at},
            "$max": {"lastMessageAt": received_at},
            "$inc": {"unread": 1},
            "$setOnInsert": _chat_fields(received.tenantId, received.instanceName, received.sender),
        },
        upsert=True,
        return_document=ReturnDocument.BEFORE,
    )
    if not is_reply(before, received_at):
        return False
    await health.count(
        store, received.tenantId, received.instanceName, health.Counted.REPLIES, received_at
    )
    return True


def inbound_document(
    received: MessageReceived, recipient: str | None, received_at: datetime
) -> Document:
    """The stored form of an inbound message."""
    return {
        "_id": new_id(),
        "tenantId": received.tenantId,
        "instanceName": received.instanceName,
        "providerMessageId": received.providerMessageId,
        "direction": "inbound",
        "from": received.sender,
        "to": recipient,
        "pushName": received.pushName,
        "type": received.messageType,
        "text": received.text or readable_text(received.content),
        "content": received.content,
        "sentAt": received.sentAt,
        "receivedAt": received_at,
    }


def is_reply(chat: Document | None, received_at: datetime) -> bool:
    """Whether a message written now answers the number: the first from the contact since
    its last message to them, within `health.REPLY_WINDOW` of it."""
    if chat is None or chat.get("lastOutboundAt") is None:
        return False
    last_out: datetime = chat["lastOutboundAt"]
    last_in: datetime | None = chat.get("lastInboundAt")
    answered_already = last_in is not None and last_in >= last_out
    return not answered_already and received_at - last_out <= health.REPLY_WINDOW


async def record_outbound(store: Store, messages: Iterable[Document]) -> None:
    """Make each accepted message the last of its chat, which the reply leaves read (one
    round trip for all)."""
    updates = [
        UpdateOne(
            _chat(m["tenantId"], m["instanceName"], m["to"]),
            {
                "$set": {
                    "lastMessage": {
                        "id": m["_id"],
                        "direction": "outbound",
                        "type": m["type"],
                        "text": readable_text(m.get("content")),
                    },
                    "unread": 0,
                    "lastOutboundAt": m["createdAt"],
                },
                "$max": {"lastMessageAt": m["createdAt"]},
                "$setOnInsert": _chat_fields(m["tenantId"], m["instanceName"], m["to"]),
            },
            upsert=True,
        )
        for m in messages
    ]
    await grouped_writes(store, store.chats).write(updates)


async def mark_read(
    store: Store, tenant_id: str, instance_name: str, contact: str, now: datetime
) -> Document | None:
    """Clear a chat's unread count; None when there is no such chat."""
    return await store.chats.find_one_and_update(
        _chat(tenant_id, instance_name, contact),
        {"$set": {"unread": 0, "readAt": now}},
        return_document=ReturnDocument.AFTER,
    )


def _chat(tenant_id: str, instance_name: str, contact: str) -> Document:
    return {"_id": chat_id(tenant_id, instance_name, contact)}


def _chat_fields(tenant_id: str, instance_name: str, contact: str) -> Document:
    return {"tenantId": tenant_id, "instanceName": instance_name, "contact": contact}
