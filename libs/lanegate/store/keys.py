"""Ids and records made from what a document is about, so that one write finds its document
whatever the engine, with no unique index but the id's or one kept for the purpose."""

import uuid

from lanegate.store.bulk import Document

_CHAT_IDS = uuid.UUID("3c0e6b52-8f4d-4a51-b7c2-5d9e1f0a6b83")


def chat_id(tenant_id: str, instance_name: str, contact: str) -> str:
    """The one id of a tenant's chat with `contact` on an instance: an upsert by it makes one
    chat at most on every engine."""
    return str(uuid.uuid5(_CHAT_IDS, f"{tenant_id}:{instance_name}:{contact}"))


def key_record(message: Document) -> Document:
    """The record a message with an `externalId` claims its key by (`message_keys`, unique by
    tenant and key)."""
    return {
        "_id": message["_id"],
        "tenantId": message["tenantId"],
        "externalId": message["externalId"],
        "requestHash": message.get("requestHash"),
        "message": message,
    }
