"""Contacts as leads: what a new contact starts with, and what a message changes of it."""

from datetime import datetime
from typing import Any

from lanegate.addresses import looks_like_email
from lanegate.events import new_id
from lanegate.store import Document, Store


def new_contact(now: datetime, identifier: str = "") -> Document:
    """The fields a contact is created with (for `$setOnInsert`), whoever creates it; one
    known by an e-mail address is an `EMAIL` contact."""
    return {
        "_id": new_id(),
        "type": "EMAIL" if looks_like_email(identifier) else "WHATSAPP",
        "active": True,
        "tags": [],
        "fields": {},
        "groupIds": [],
        "createdAt": now,
    }


async def contact_wrote(
    store: Store, tenant_id: str, identifier: str, push_name: str | None, at: datetime
) -> None:
    """Create or update the contact who wrote; its push name names it when it has no name."""
    changes: dict[str, Any] = {"$max": {"lastInboundAt": at, "lastMessageAt": at}}
    await store.contacts.update_one(
        {"tenantId": tenant_id, "identifier": identifier},
        changes | {"$set": {"updatedAt": at}, "$setOnInsert": new_contact(at)},
        upsert=True,
    )
    if push_name:
        await store.contacts.update_one(
            {"tenantId": tenant_id, "identifier": identifier, "name": None},
            {"$set": {"name": push_name}},
        )
