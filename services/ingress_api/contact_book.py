"""Contacts and conversations, shared by the native and the compatibility routes: a contact
by id or number, its view, upsert, activation and deletion, a page of contacts by number, a
page of a conversation."""

import base64
import binascii
import uuid
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from pymongo import ReturnDocument
from pymongo.asynchronous.cursor import AsyncCursor

from ingress_api.accept.lookups import LOOKUPS
from ingress_api.auth import Caller
from ingress_api.requests import NEWEST_FIRST, after_newest_first, newest_first_cursor
from lanegate.addresses import ISSUE_CODE as EMAIL_ISSUE_CODE
from lanegate.addresses import InvalidEmail, looks_like_email, normalized_email
from lanegate.contacts import new_contact
from lanegate.conversations import readable_text
from lanegate.errors import InvalidInput, NotFound
from lanegate.events import utcnow
from lanegate.lifecycle import public
from lanegate.phones import ISSUE_CODE, InvalidPhoneNumber, normalized, written_digits
from lanegate.service import STORE
from lanegate.store import Document, Store
from lanegate.timestamps import iso_utc


def contact_filter(caller: Caller, ref: str, field: str = "id") -> dict[str, Any]:
    """A contact by id, by phone number written any way a send takes it, or by e-mail address;
    400 (on `field`) for a number or an address that cannot exist."""
    if not looks_like_email(ref) and (written_digits(ref) is None or _is_contact_id(ref)):
        return {"tenantId": caller.tenant_id, "_id": ref}
    return {"tenantId": caller.tenant_id, "identifier": identifier_in_path(caller, ref, field)}


def identifier_in_path(caller: Caller, written: str, field: str) -> str:
    """A contact's number (as E.164 digits) or e-mail address (normalised) given in the path;
    400 (on `field`) when it cannot exist."""
    if looks_like_email(written):
        try:
            return normalized_email(written)
        except InvalidEmail as e:
            raise InvalidInput([([field], f"{EMAIL_ISSUE_CODE}: {e}")]) from e
    return phone_in_path(caller, written, field)


def phone_in_path(caller: Caller, written: str, field: str = "phone") -> str:
    """A phone number given in the path, as E.164 digits; 400 (on `field`) when it cannot
    exist."""
    try:
        return normalized(written, caller.default_country)
    except InvalidPhoneNumber as e:
        raise InvalidInput([([field], f"{ISSUE_CODE}: {e}")]) from e


def _is_contact_id(ref: str) -> bool:
    """Whether `ref` has the form of the ids contacts are given (a UUID)."""
    try:
        uuid.UUID(ref)
    except ValueError:
        return False
    return True


def identifier_cursor(contact: Document) -> str:
    """The cursor of a contacts listing, which goes by number."""
    return base64.urlsafe_b64encode(f"c|{contact['identifier']}".encode()).decode()


def after_identifier(cursor: str) -> str:
    """The identifier a contacts cursor ends at (contacts go by identifier, which is unique)."""
    try:
        kind, _, identifier = base64.urlsafe_b64decode(cursor.encode()).decode().partition("|")
    except (binascii.Error, UnicodeDecodeError) as e:
        raise InvalidInput([(["cursor"], "Not a cursor this API gave out")]) from e
    readable = (identifier.isascii() and identifier.isdigit()) or looks_like_email(identifier)
    if kind != "c" or not readable:
        raise InvalidInput([(["cursor"], "Not a cursor this API gave out")])
    return identifier


async def contacts_page(
    store: Store, where: dict[str, Any], cursor: str | None, limit: int, skip: int = 0
) -> tuple[list[Document], str | None]:
    """A page of contacts by number and the cursor of the next one (None on the last page)."""
    if cursor is not None:
        where = where | {"identifier": {"$gt": after_identifier(cursor)}}
    found = store.contacts.find(where).sort("identifier", 1).skip(skip).limit(limit + 1)
    page = await found.to_list(None)
    following = identifier_cursor(page[limit - 1]) if len(page) > limit else None
    return page[:limit], following


@dataclass(frozen=True)
class Read:
    """One store read of a newest-first listing: its filter, its order and its index."""

    collection: str
    where: dict[str, Any]
    sort: list[tuple[str, int]]
    index: str

    def find(self, store: Store, limit: int) -> AsyncCursor[Document]:
        """The read's first `limit` documents, on its index."""
        return (
            store.db[self.collection].find(self.where).sort(self.sort).limit(limit).hint(self.index)
        )


def conversation_reads(
    tenant_id: str, phone: str, instance_name: str | None, cursor: str | None
) -> tuple[Read, Read]:
    """The two reads of a conversation page with `phone`: what was sent, what came in."""
    sent: dict[str, Any] = {"tenantId": tenant_id, "to": phone}
    received: dict[str, Any] = {"tenantId": tenant_id, "from": phone}
    if instance_name is not None:
        sent["instanceName"] = received["instanceName"] = instance_name
    if cursor:
        # Beside the equalities, not under an `$and`: FerretDB hands top-level equalities to
        # its backend, so a deep page is filtered there too.
        sent |= after_newest_first(cursor, "createdAt")
        received |= after_newest_first(cursor, "receivedAt")
    return (
        Read("messages", sent, NEWEST_FIRST, "tenant_to_created_id"),
        Read(
            "inbound_messages",
            received,
            [("receivedAt", -1), ("_id", -1)],
            "tenant_from_received_id",
        ),
    )


def chat_list_read(tenant_id: str, instance_name: str | None, cursor: str | None) -> Read:
    """The read of a page of the chat list, of the tenant or of one of its instances."""
    where: dict[str, Any] = {"tenantId": tenant_id}
    index = "tenant_last_message_id"
    if instance_name is not None:
        where["instanceName"] = instance_name
        index = "tenant_instance_last_message_id"
    if cursor is not None:
        where |= after_newest_first(cursor, "lastMessageAt")
    return Read("chats", where, [("lastMessageAt", -1), ("_id", -1)], index)


async def conversation_page(
    store: Store,
    caller: Caller,
    phone: str,
    *,
    instance_name: str | None,
    cursor: str | None,
    limit: int,
) -> tuple[list[dict[str, Any]], str | None]:
    """A page of the conversation with `phone` (E.164 digits), both directions, newest first,
    and the cursor of the next page (None on the last)."""
    sent, received = conversation_reads(caller.tenant_id, phone, instance_name, cursor)
    # Each side gives at most a page; the newest of both make the page.
    outbound = await sent.find(store, limit + 1).to_list(None)
    inbound = await received.find(store, limit + 1).to_list(None)
    both = sorted(
        [(m["createdAt"], m["_id"], m) for m in outbound]
        + [(m["receivedAt"], m["_id"], m) for m in inbound],
        key=lambda entry: (entry[0], entry[1]),
        reverse=True,
    )
    page = both[:limit]
    numbers = await _instance_numbers(store, caller, {m["instanceName"] for m in outbound})
    following = None
    if len(both) > limit:
        at, message_id, _ = page[-1]
        following = newest_first_cursor(at, message_id)
    messages = [
        _in_conversation(m, numbers) if "direction" not in m else _received(m) for _, _, m in page
    ]
    return messages, following


async def _instance_numbers(store: Store, caller: Caller, names: set[str]) -> dict[str, str | None]:
    """The phone number of each of these instances of the caller (None until it connects)."""
    if not names:
        return {}
    found = store.instances.find(
        {"tenantId": caller.tenant_id, "_id": {"$in": sorted(names)}}, {"phoneNumber": 1}
    )
    return {i["_id"]: i.get("phoneNumber") async for i in found}


def furthest_receipt(message: Document) -> str:
    """An outbound message's status as a conversation shows it: how far it got."""
    status = public(message["status"])
    if status != "sent":
        return status
    if message.get("readAt"):
        return "read"
    return "delivered" if message.get("deliveredAt") else "sent"


def _in_conversation(message: Document, numbers: dict[str, str | None]) -> dict[str, Any]:
    return {
        "id": message["_id"],
        "direction": "outbound",
        "instanceName": message["instanceName"],
        "from": numbers.get(message["instanceName"]),
        "to": message["to"],
        "type": message["type"],
        "text": readable_text(message.get("content")),
        "timestamp": iso_utc(message["createdAt"]),
        "status": furthest_receipt(message),
    }


def _received(message: Document) -> dict[str, Any]:
    return {
        "id": message["_id"],
        "direction": "inbound",
        "instanceName": message["instanceName"],
        "from": message["from"],
        "to": message.get("to"),
        "type": message["type"],
        "text": message.get("text"),
        "timestamp": iso_utc(message["receivedAt"]),
        "status": "received",
        "pushName": message.get("pushName"),
        "content": message.get("content"),
    }


def contact_view(contact: Document) -> dict[str, Any]:
    """A contact as the API shows it."""
    return {
        "id": contact["_id"],
        "identifier": contact["identifier"],
        "type": contact.get("type", "WHATSAPP"),
        "name": contact.get("name"),
        "tags": contact.get("tags", []),
        "fields": contact.get("fields") or {},
        "sourceId": contact.get("sourceId"),
        "statusId": contact.get("statusId"),
        "groupIds": contact.get("groupIds", []),
        "active": contact.get("active", True),
        "inactiveReason": contact.get("inactiveReason"),
        "lastMessageAt": iso_utc(contact.get("lastMessageAt")),
        "lastInboundAt": iso_utc(contact.get("lastInboundAt")),
        "createdAt": iso_utc(contact.get("createdAt")),
        "updatedAt": iso_utc(contact.get("updatedAt")),
    }


async def upsert_contact(
    store: Store, tenant_id: str, identifier: str, changes: dict[str, Any]
) -> tuple[Document, bool]:
    """Create or update a contact by its number; returns it and whether it is new."""
    now = utcnow()
    contact = await store.contacts.find_one_and_update(
        {"tenantId": tenant_id, "identifier": identifier},
        {
            "$set": {**changes, "updatedAt": now},
            "$setOnInsert": {k: v for k, v in new_contact(now).items() if k not in changes},
        },
        upsert=True,
        return_document=ReturnDocument.AFTER,
    )
    if contact is None:  # an upsert returning the new document never gives None
        raise RuntimeError("contact upsert returned nothing")
    return contact, contact["createdAt"] == now


async def set_contact_active(
    request: web.Request, caller: Caller, ref: str, active: bool, reason: str | None
) -> Document:
    """Activate or deactivate the caller's contact `ref` (id or number); 404 if absent."""
    contact = await request.app[STORE].contacts.find_one_and_update(
        contact_filter(caller, ref),
        {
            "$set": {
                "active": active,
                "inactiveReason": None if active else reason,
                "updatedAt": utcnow(),
            }
        },
        return_document=ReturnDocument.AFTER,
    )
    if contact is None:
        raise NotFound("Contact not found")
    request.app[LOOKUPS].forget_contacts(caller.tenant_id)
    return contact


async def delete_one_contact(request: web.Request, caller: Caller, ref: str) -> Document:
    """Delete the caller's contact `ref` (id or number), its messages kept; 404 if absent."""
    contact = await request.app[STORE].contacts.find_one_and_delete(contact_filter(caller, ref))
    if contact is None:
        raise NotFound("Contact not found")
    request.app[LOOKUPS].forget_contacts(caller.tenant_id)
    return contact
