"""Contacts: the people a tenant writes to, with names, tags and an active flag."""

import base64
import binascii
import uuid
from typing import Any

from aiohttp import web
from pymongo import ReturnDocument

from ingress_api.accept.lookups import LOOKUPS
from ingress_api.auth import Caller, authenticate
from ingress_api.countries import phone_context
from ingress_api.registry import API
from ingress_api.requests import check_paging, page_meta, read_json, read_query
from ingress_api.schemas.contacts import (
    ContactDeleted,
    ContactList,
    ContactQuery,
    ContactStatus,
    ContactUpsert,
    ContactView,
)
from lanegate.errors import InvalidInput, NotFound
from lanegate.events import new_id, utcnow
from lanegate.phones import ISSUE_CODE, InvalidPhoneNumber, normalized, written_digits
from lanegate.service import STORE
from lanegate.store import Document, Store
from lanegate.timestamps import iso_utc


def view(contact: Document) -> dict[str, Any]:
    return {
        "id": contact["_id"],
        "identifier": contact["identifier"],
        "type": contact.get("type", "WHATSAPP"),
        "name": contact.get("name"),
        "tags": contact.get("tags", []),
        "active": contact.get("active", True),
        "inactiveReason": contact.get("inactiveReason"),
        "createdAt": iso_utc(contact.get("createdAt")),
        "updatedAt": iso_utc(contact.get("updatedAt")),
    }


def _where(caller: Caller, ref: str) -> dict[str, Any]:
    """A contact by id, or by phone number written any way a send takes it; 400 for a
    number that cannot exist."""
    if written_digits(ref) is None or _is_contact_id(ref):
        return {"tenantId": caller.tenant_id, "_id": ref}
    try:
        return {"tenantId": caller.tenant_id, "identifier": normalized(ref, caller.default_country)}
    except InvalidPhoneNumber as e:
        raise InvalidInput([(["id"], f"{ISSUE_CODE}: {e}")]) from e


def _is_contact_id(ref: str) -> bool:
    """Whether `ref` has the form of the ids contacts are given (a UUID)."""
    try:
        uuid.UUID(ref)
    except ValueError:
        return False
    return True


async def upsert_contact(
    store: Store, tenant_id: str, identifier: str, changes: dict[str, Any]
) -> tuple[Document, bool]:
    """Create or update a contact by its number; returns it and whether it is new."""
    now = utcnow()
    contact = await store.contacts.find_one_and_update(
        {"tenantId": tenant_id, "identifier": identifier},
        {
            "$set": {**changes, "updatedAt": now},
            "$setOnInsert": {"_id": new_id(), "active": True, "createdAt": now},
        },
        upsert=True,
        return_document=ReturnDocument.AFTER,
    )
    if contact is None:  # an upsert returning the new document never gives None
        raise RuntimeError("contact upsert returned nothing")
    return contact, contact["createdAt"] == now


@API.get(
    "/contacts",
    summary="Your contacts, by number, optionally with one tag",
    tag="contacts",
    query=ContactQuery,
    response=ContactList,
    errors=(400, 401),
    scope="messages:read",
)
async def list_contacts(request: web.Request) -> web.Response:
    caller = await authenticate(request)
    query = read_query(request, ContactQuery)
    check_paging(query.page, query.limit, query.cursor, narrow="filter it by tag")
    where: dict[str, Any] = {"tenantId": caller.tenant_id}
    if query.tag is not None:
        where["tags"] = query.tag
    store = request.app[STORE]
    total = await store.contacts.count_documents(where)
    if query.cursor is not None:
        where["identifier"] = {"$gt": _after_identifier(query.cursor)}
    found = (
        store.contacts.find(where)
        .sort("identifier", 1)
        .skip((query.page - 1) * query.limit)
        .limit(query.limit + 1)
    )
    page = await found.to_list(None)
    following = _identifier_cursor(page[query.limit - 1]) if len(page) > query.limit else None
    return web.json_response(
        {
            "contacts": [view(c) for c in page[: query.limit]],
            "meta": page_meta(total, query.page, query.limit),
            "pagination": {"next": following},
        }
    )


def _identifier_cursor(contact: Document) -> str:
    return base64.urlsafe_b64encode(f"c|{contact['identifier']}".encode()).decode()


def _after_identifier(cursor: str) -> str:
    """The number a contacts cursor ends at (contacts go by number, which is unique)."""
    try:
        kind, _, identifier = base64.urlsafe_b64decode(cursor.encode()).decode().partition("|")
    except (binascii.Error, UnicodeDecodeError) as e:
        raise InvalidInput([(["cursor"], "Not a cursor this API gave out")]) from e
    if kind != "c" or not (identifier.isascii() and identifier.isdigit()):
        raise InvalidInput([(["cursor"], "Not a cursor this API gave out")])
    return identifier


@API.post(
    "/contacts",
    summary="Create a contact, or update the one with this identifier",
    tag="contacts",
    body=ContactUpsert,
    response=ContactView,
    status=201,
    errors=(400, 401),
    scope="messages:write",
)
async def save_contact(request: web.Request) -> web.Response:
    caller = await authenticate(request)
    body = await read_json(request, ContactUpsert, phone_context(caller.default_country))
    changes: dict[str, Any] = {"type": body.type}
    if body.name is not None:
        changes["name"] = body.name
    if body.tags is not None:
        changes["tags"] = sorted(set(body.tags))
    contact, created = await upsert_contact(
        request.app[STORE], caller.tenant_id, body.identifier, changes
    )
    return web.json_response(view(contact), status=201 if created else 200)


@API.get(
    "/contacts/{id}",
    summary="One contact, by id or by phone number",
    tag="contacts",
    response=ContactView,
    errors=(400, 401, 404),
    scope="messages:read",
)
async def get_contact(request: web.Request) -> web.Response:
    caller = await authenticate(request)
    contact = await request.app[STORE].contacts.find_one(_where(caller, request.match_info["id"]))
    if contact is None:
        raise NotFound("Contact not found")
    return web.json_response(view(contact))


@API.patch(
    "/contacts/{id}/status",
    summary="Activate or deactivate a contact (sends to an inactive one are refused)",
    tag="contacts",
    body=ContactStatus,
    response=ContactView,
    errors=(400, 401, 404),
    scope="messages:write",
)
async def set_status(request: web.Request) -> web.Response:
    caller = await authenticate(request)
    body = await read_json(request, ContactStatus)
    contact = await request.app[STORE].contacts.find_one_and_update(
        _where(caller, request.match_info["id"]),
        {
            "$set": {
                "active": body.active,
                "inactiveReason": None if body.active else body.reason,
                "updatedAt": utcnow(),
            }
        },
        return_document=ReturnDocument.AFTER,
    )
    if contact is None:
        raise NotFound("Contact not found")
    request.app[LOOKUPS].forget_contacts(caller.tenant_id)
    return web.json_response(view(contact))


@API.delete(
    "/contacts/{id}",
    summary="Delete a contact (its messages stay)",
    tag="contacts",
    response=ContactDeleted,
    errors=(400, 401, 404),
    scope="messages:write",
)
async def delete_contact(request: web.Request) -> web.Response:
    caller = await authenticate(request)
    contact = await request.app[STORE].contacts.find_one_and_delete(
        _where(caller, request.match_info["id"])
    )
    if contact is None:
        raise NotFound("Contact not found")
    request.app[LOOKUPS].forget_contacts(caller.tenant_id)
    return web.json_response({"id": contact["_id"], "deleted": True})
