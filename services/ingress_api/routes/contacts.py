"""Contacts: the people a tenant writes to, with names, tags and an active flag."""

import re
from typing import Any

from aiohttp import web
from pymongo import ReturnDocument, UpdateOne

from ingress_api.accept.lookups import LOOKUPS
from ingress_api.auth import Caller, authenticate
from ingress_api.contact_book import (
    contact_filter,
    contact_view,
    contacts_page,
    delete_one_contact,
    set_contact_active,
    upsert_contact,
)
from ingress_api.countries import phone_context
from ingress_api.labels import SOURCES, STATUSES, must_exist
from ingress_api.registry import API
from ingress_api.requests import (
    after_newest_first,
    check_paging,
    newest_first_cursor,
    page_meta,
    read_json,
    read_query,
)
from ingress_api.schemas.contacts import (
    CommentCreate,
    CommentList,
    CommentQuery,
    CommentView,
    ContactBatch,
    ContactBatchDelete,
    ContactBatchDeleted,
    ContactBatchSaved,
    ContactDeleted,
    ContactList,
    ContactPatch,
    ContactQuery,
    ContactStatus,
    ContactUpsert,
    ContactView,
)
from lanegate.contacts import new_contact
from lanegate.errors import InvalidInput, NotFound
from lanegate.events import new_id, utcnow
from lanegate.phones import written_digits
from lanegate.service import STORE
from lanegate.store import Document, in_parts
from lanegate.timestamps import iso_utc


@API.get(
    "/contacts",
    summary="Your contacts, by number, filtered by tag, group, source, status, text or active",
    tag="contacts",
    query=ContactQuery,
    response=ContactList,
    errors=(400, 401),
    scope="contacts:read",
)
async def list_contacts(request: web.Request) -> web.Response:
    caller = await authenticate(request)
    query = read_query(request, ContactQuery)
    check_paging(query.page, query.limit, query.cursor, narrow="filter it by tag")
    where = _filter(caller, query)
    store = request.app[STORE]
    total = await store.contacts.count_documents(where)
    page, following = await contacts_page(
        store, where, query.cursor, query.limit, skip=(query.page - 1) * query.limit
    )
    return web.json_response(
        {
            "contacts": [contact_view(c) for c in page[: query.limit]],
            "meta": page_meta(total, query.page, query.limit),
            "pagination": {"next": following},
        }
    )


def _filter(caller: Caller, query: ContactQuery) -> dict[str, Any]:
    """The store filter of a contacts listing."""
    where: dict[str, Any] = {"tenantId": caller.tenant_id}
    for field, value in (
        ("tags", query.tag),
        ("groupIds", query.groupId),
        ("sourceId", query.sourceId),
        ("statusId", query.statusId),
    ):
        if value is not None:
            where[field] = value
    if query.active is not None:
        # Contacts stored before the flag existed are active.
        where["active"] = {"$ne": False} if query.active else False
    if query.search is not None:
        pattern = {"$regex": re.escape(query.search), "$options": "i"}
        digits = written_digits(query.search)
        where["$or"] = [
            {"name": pattern},
            {"identifier": {"$regex": re.escape(digits)} if digits else pattern},
        ]
    return where


@API.post(
    "/contacts",
    summary="Create a contact, or update the one with this identifier",
    tag="contacts",
    body=ContactUpsert,
    response=ContactView,
    status=201,
    errors=(400, 401),
    scope="contacts:write",
)
async def save_contact(request: web.Request) -> web.Response:
    caller = await authenticate(request)
    body = await read_json(request, ContactUpsert, phone_context(caller.default_country))
    contact, created = await upsert_contact(
        request.app[STORE], caller.tenant_id, body.identifier, _changes(body)
    )
    return web.json_response(contact_view(contact), status=201 if created else 200)


def _changes(body: ContactUpsert | ContactPatch) -> dict[str, Any]:
    """The stored fields a contact body sets (those it gives)."""
    changes: dict[str, Any] = {"type": body.type} if isinstance(body, ContactUpsert) else {}
    if body.name is not None:
        changes["name"] = body.name
    if body.tags is not None:
        changes["tags"] = sorted(set(body.tags))
    if body.fields is not None:
        changes["fields"] = body.fields
    return changes


@API.post(
    "/contacts/batch",
    summary="Create or update up to 1,000 contacts at once: all of them, or none",
    tag="contacts",
    body=ContactBatch,
    response=ContactBatchSaved,
    errors=(400, 401),
    scope="contacts:write",
)
async def save_contacts(request: web.Request) -> web.Response:
    caller = await authenticate(request)
    body = await read_json(request, ContactBatch, phone_context(caller.default_country))
    first_at: dict[str, int] = {}
    repeated: list[tuple[list[str | int], str]] = [
        (["contacts", index, "identifier"], f"Repeats item {first_at[c.identifier]}")
        for index, c in enumerate(body.contacts)
        if first_at.setdefault(c.identifier, index) != index
    ]
    if repeated:
        raise InvalidInput(repeated)
    store, now = request.app[STORE], utcnow()
    updates = []
    for contact in body.contacts:
        changes = _changes(contact)
        fresh = {k: v for k, v in new_contact(now).items() if k not in changes}
        updates.append(
            UpdateOne(
                {"tenantId": caller.tenant_id, "identifier": contact.identifier},
                {"$set": changes | {"updatedAt": now}, "$setOnInsert": fresh},
                upsert=True,
            )
        )
    created = 0
    for part in in_parts(updates):
        created += (await store.contacts.bulk_write(part, ordered=False)).upserted_count
    saved = await store.contacts.find(
        {"tenantId": caller.tenant_id, "identifier": {"$in": list(first_at)}}
    ).to_list(None)
    in_order = sorted(saved, key=lambda c: first_at[c["identifier"]])
    return web.json_response(
        {
            "created": created,
            "updated": len(updates) - created,
            "contacts": [contact_view(c) for c in in_order],
        }
    )


@API.post(
    "/contacts/batch-delete",
    summary="Delete contacts by ids or by numbers or addresses (their messages stay)",
    tag="contacts",
    body=ContactBatchDelete,
    response=ContactBatchDeleted,
    errors=(400, 401),
    scope="contacts:write",
)
async def delete_contacts(request: web.Request) -> web.Response:
    caller = await authenticate(request)
    body = await read_json(request, ContactBatchDelete, phone_context(caller.default_country))
    field, named = ("_id", body.ids) if body.ids is not None else ("identifier", body.identifiers)
    deleted = 0
    try:
        for part in in_parts(named or []):
            result = await request.app[STORE].contacts.delete_many(
                {"tenantId": caller.tenant_id, field: {"$in": part}}
            )
            deleted += result.deleted_count
    finally:
        request.app[LOOKUPS].forget_contacts(caller.tenant_id)
    return web.json_response({"deleted": deleted})


@API.get(
    "/contacts/{id}",
    summary="One contact, by id, phone number or e-mail address",
    tag="contacts",
    response=ContactView,
    errors=(400, 401, 404),
    scope="contacts:read",
)
async def get_contact(request: web.Request) -> web.Response:
    caller = await authenticate(request)
    contact = await request.app[STORE].contacts.find_one(
        contact_filter(caller, request.match_info["id"])
    )
    if contact is None:
        raise NotFound("Contact not found")
    return web.json_response(contact_view(contact))


@API.patch(
    "/contacts/{id}",
    summary="Change a contact's name, tags, fields, source or status",
    tag="contacts",
    body=ContactPatch,
    response=ContactView,
    errors=(400, 401, 404),
    scope="contacts:write",
)
async def update_contact(request: web.Request) -> web.Response:
    caller = await authenticate(request)
    body = await read_json(request, ContactPatch)
    store = request.app[STORE]
    changes = _changes(body)
    for kind, label_id in ((SOURCES, body.sourceId), (STATUSES, body.statusId)):
        if label_id is not None:
            await must_exist(store, caller, kind, label_id, [kind.contact_field])
            changes[kind.contact_field] = label_id
    contact = await store.contacts.find_one_and_update(
        contact_filter(caller, request.match_info["id"]),
        {"$set": changes | {"updatedAt": utcnow()}},
        return_document=ReturnDocument.AFTER,
    )
    if contact is None:
        raise NotFound("Contact not found")
    return web.json_response(contact_view(contact))


@API.patch(
    "/contacts/{id}/status",
    summary="Activate or deactivate a contact (sends to an inactive one are refused)",
    tag="contacts",
    body=ContactStatus,
    response=ContactView,
    errors=(400, 401, 404),
    scope="contacts:write",
)
async def set_status(request: web.Request) -> web.Response:
    caller = await authenticate(request)
    body = await read_json(request, ContactStatus)
    contact = await set_contact_active(
        request, caller, request.match_info["id"], body.active, body.reason
    )
    return web.json_response(contact_view(contact))


@API.delete(
    "/contacts/{id}",
    summary="Delete a contact (its messages stay)",
    tag="contacts",
    response=ContactDeleted,
    errors=(400, 401, 404),
    scope="contacts:write",
)
async def delete_contact(request: web.Request) -> web.Response:
    caller = await authenticate(request)
    contact = await delete_one_contact(request, caller, request.match_info["id"])
    return web.json_response({"id": contact["_id"], "deleted": True})


def comment_view(comment: Document) -> dict[str, Any]:
    return {
        "id": comment["_id"],
        "contactId": comment["contactId"],
        "text": comment["text"],
        "author": comment["author"],
        "createdAt": iso_utc(comment["createdAt"]),
    }


async def _contact_id(request: web.Request, caller: Caller) -> str:
    """The id of the contact the path names; 404 when the caller has none such."""
    contact = await request.app[STORE].contacts.find_one(
        contact_filter(caller, request.match_info["id"]), {"_id": 1}
    )
    if contact is None:
        raise NotFound("Contact not found")
    return str(contact["_id"])


@API.get(
    "/contacts/{id}/comments",
    summary="Notes on a contact, newest first",
    tag="contacts",
    query=CommentQuery,
    response=CommentList,
    errors=(400, 401, 404),
    scope="contacts:read",
)
async def list_comments(request: web.Request) -> web.Response:
    caller = await authenticate(request)
    query = read_query(request, CommentQuery)
    where: dict[str, Any] = {
        "tenantId": caller.tenant_id,
        "contactId": await _contact_id(request, caller),
    }
    if query.cursor is not None:
        where = {"$and": [where, after_newest_first(query.cursor, "createdAt")]}
    found = (
        request.app[STORE]
        .contact_comments.find(where)
        .sort([("createdAt", -1), ("_id", -1)])
        .limit(query.limit + 1)
    )
    page = await found.to_list(None)
    last = page[query.limit - 1] if len(page) > query.limit else None
    return web.json_response(
        {
            "comments": [comment_view(c) for c in page[: query.limit]],
            "pagination": {
                "next": newest_first_cursor(last["createdAt"], last["_id"]) if last else None
            },
        }
    )


@API.post(
    "/contacts/{id}/comments",
    summary="Add a note to a contact; its author is the API key's name",
    tag="contacts",
    body=CommentCreate,
    response=CommentView,
    status=201,
    errors=(400, 401, 404),
    scope="contacts:write",
)
async def add_comment(request: web.Request) -> web.Response:
    caller = await authenticate(request)
    body = await read_json(request, CommentCreate)
    comment = {
        "_id": new_id(),
        "tenantId": caller.tenant_id,
        "contactId": await _contact_id(request, caller),
        "text": body.text,
        "author": {"keyId": caller.key_id, "name": caller.key_name},
        "createdAt": utcnow(),
    }
    await request.app[STORE].contact_comments.insert_one(comment)
    return web.json_response(comment_view(comment), status=201)
