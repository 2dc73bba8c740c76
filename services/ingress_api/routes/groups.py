"""Groups of contacts: create, list, change, delete, and who is in them."""

from typing import Any

from aiohttp import web
from pymongo import ReturnDocument

from ingress_api.accept.accepting import EMAIL_ONLY, Issues, MessageToAccept
from ingress_api.accept.pages import accept_in_pages
from ingress_api.accept.recipient_values import Recipient, unfilled_for
from ingress_api.auth import Caller, authenticate
from ingress_api.countries import phone_context
from ingress_api.registry import API
from ingress_api.requests import own_instance, read_json
from ingress_api.schemas.groups import (
    GroupCreate,
    GroupDeleted,
    GroupList,
    GroupMembers,
    GroupSend,
    GroupSent,
    GroupUpdate,
    GroupView,
    MembersChanged,
)
from ingress_api.schemas.messages import TextMessage
from lanegate.addresses import looks_like_email
from lanegate.errors import InvalidInput, NotFound, Unprocessable
from lanegate.events import new_id, utcnow
from lanegate.providers.capabilities import channel_of
from lanegate.service import STORE
from lanegate.store import Document, update_in_parts
from lanegate.timestamps import iso_utc


def group_view(group: Document, member_count: int | None = None) -> dict[str, Any]:
    return {
        "id": group["_id"],
        "name": group["name"],
        "description": group.get("description"),
        "createdAt": iso_utc(group.get("createdAt")),
        "memberCount": member_count,
    }


async def _group(request: web.Request, caller: Caller) -> Document:
    """The caller's group the path names; 404 when it has none such."""
    group = await request.app[STORE].groups.find_one(
        {"tenantId": caller.tenant_id, "_id": request.match_info["id"]}
    )
    if group is None:
        raise NotFound("Group not found")
    return group


@API.get(
    "/groups",
    summary="Your groups of contacts, by name",
    tag="contacts",
    response=GroupList,
    errors=(401,),
    scope="contacts:read",
)
async def list_groups(request: web.Request) -> web.Response:
    caller = await authenticate(request)
    found = request.app[STORE].groups.find({"tenantId": caller.tenant_id}).sort("name", 1)
    return web.json_response({"groups": [group_view(g) async for g in found]})


@API.post(
    "/groups",
    summary="Create a group of contacts",
    tag="contacts",
    body=GroupCreate,
    response=GroupView,
    status=201,
    errors=(400, 401),
    scope="contacts:write",
)
async def create_group(request: web.Request) -> web.Response:
    caller = await authenticate(request)
    body = await read_json(request, GroupCreate)
    group = {"_id": new_id(), "tenantId": caller.tenant_id, **body.model_dump()}
    group["createdAt"] = utcnow()
    await request.app[STORE].groups.insert_one(group)
    return web.json_response(group_view(group, 0), status=201)


@API.get(
    "/groups/{id}",
    summary="One group, with how many contacts are in it",
    tag="contacts",
    response=GroupView,
    errors=(401, 404),
    scope="contacts:read",
)
async def get_group(request: web.Request) -> web.Response:
    caller = await authenticate(request)
    group = await _group(request, caller)
    members = await request.app[STORE].contacts.count_documents(
        {"tenantId": caller.tenant_id, "groupIds": group["_id"]}
    )
    return web.json_response(group_view(group, members))


@API.patch(
    "/groups/{id}",
    summary="Rename a group or change its description",
    tag="contacts",
    body=GroupUpdate,
    response=GroupView,
    errors=(400, 401, 404),
    scope="contacts:write",
)
async def update_group(request: web.Request) -> web.Response:
    caller = await authenticate(request)
    body = await read_json(request, GroupUpdate)
    changes = body.model_dump(exclude_unset=True)
    if changes.get("name", "") is None:
        raise InvalidInput([(["name"], "A group keeps a name")])
    group = await request.app[STORE].groups.find_one_and_update(
        {"tenantId": caller.tenant_id, "_id": request.match_info["id"]},
        {"$set": changes | {"updatedAt": utcnow()}},
        return_document=ReturnDocument.AFTER,
    )
    if group is None:
        raise NotFound("Group not found")
    return web.json_response(group_view(group))


@API.delete(
    "/groups/{id}",
    summary="Delete a group (its contacts stay, out of it)",
    tag="contacts",
    response=GroupDeleted,
    errors=(401, 404),
    scope="contacts:write",
)
async def delete_group(request: web.Request) -> web.Response:
    caller = await authenticate(request)
    group = await _group(request, caller)
    store = request.app[STORE]
    await update_in_parts(
        store.contacts,
        {"tenantId": caller.tenant_id, "groupIds": group["_id"]},
        {"$pull": {"groupIds": group["_id"]}},
    )
    await store.groups.delete_one({"tenantId": caller.tenant_id, "_id": group["_id"]})
    return web.json_response({"id": group["_id"], "deleted": True})


async def _members(request: web.Request, caller: Caller) -> tuple[Document, list[str]]:
    """The group and the contact ids of the body; 400 naming each id that is not a contact
    of the caller."""
    group = await _group(request, caller)
    body = await read_json(request, GroupMembers)
    known = {
        c["_id"]
        async for c in request.app[STORE].contacts.find(
            {"tenantId": caller.tenant_id, "_id": {"$in": body.contactIds}}, {"_id": 1}
        )
    }
    unknown: list[tuple[list[str | int], str]] = [
        (["contactIds", index], "No contact with this id")
        for index, contact_id in enumerate(body.contactIds)
        if contact_id not in known
    ]
    if unknown:
        raise InvalidInput(unknown)
    return group, sorted(known)


@API.post(
    "/groups/{id}/contacts",
    summary="Put contacts in a group",
    tag="contacts",
    body=GroupMembers,
    response=MembersChanged,
    errors=(400, 401, 404),
    scope="contacts:write",
)
async def add_members(request: web.Request) -> web.Response:
    return await _change_members(request, "$addToSet")


@API.post(
    "/groups/{id}/contacts/remove",
    summary="Take contacts out of a group",
    tag="contacts",
    body=GroupMembers,
    response=MembersChanged,
    errors=(400, 401, 404),
    scope="contacts:write",
)
async def remove_members(request: web.Request) -> web.Response:
    return await _change_members(request, "$pull")


async def _change_members(request: web.Request, operator: str) -> web.Response:
    """Put the body's contacts in the group (`$addToSet`) or take them out (`$pull`), at most
    MOST_PER_WRITE of them to a write; how many changed."""
    caller = await authenticate(request)
    group, ids = await _members(request, caller)
    changed = await update_in_parts(
        request.app[STORE].contacts,
        {"tenantId": caller.tenant_id},
        {operator: {"groupIds": group["_id"]}},
        ids,
    )
    return web.json_response({"changed": changed})


# A group send refused for members without a variable's value names this many of them.
MOST_ISSUES = 100


@API.post(
    "/groups/{id}/send",
    summary="Send a text to every active member of a group, as one bulk",
    tag="contacts",
    body=GroupSend,
    response=GroupSent,
    status=202,
    errors=(400, 401, 403, 404, 409, 422, 503),
    scope="contacts:write",
)
async def send_to_group(request: web.Request) -> web.Response:
    """Inactive members are skipped; the rest go through the bulk accept path (its caps, gaps
    and per-day quota hold), in pages of 1,000."""
    caller = await authenticate(request)
    group = await _group(request, caller)
    body = await read_json(request, GroupSend)
    store = request.app[STORE]
    instance = await own_instance(store, caller, body.instanceName)
    channel = channel_of(instance["provider"])
    content = body.model_dump(include={"text", "subject", "html"}, exclude_none=True)
    if channel != "email" and EMAIL_ONLY & content.keys():
        raise Unprocessable("subject and html are for e-mail instances")
    members = store.contacts.find(
        {"tenantId": caller.tenant_id, "groupIds": group["_id"]},
        {"identifier": 1, "active": 1, "name": 1, "fields": 1},
    ).sort("identifier", 1)
    skipped: list[dict[str, str]] = []
    active: list[Document] = []
    unfilled: Issues = []
    async for member in members:
        if member.get("active") is False:
            skipped.append({"contactId": member["_id"], "reason": "inactive"})
            continue
        # A group may hold numbers and addresses: each send reaches those of its channel.
        if looks_like_email(member["identifier"]) != (channel == "email"):
            skipped.append({"contactId": member["_id"], "reason": "other_channel"})
            continue
        active.append(member)
        missing = unfilled_for(Recipient(member["identifier"], content, None), member)
        if missing is not None:
            unfilled.append(([missing.field], f"Contact {member['_id']}: {missing.message}"))
    # Checked for every member before the first page is queued: pages are each all or none.
    if unfilled:
        raise InvalidInput(unfilled[:MOST_ISSUES])
    messages = (
        MessageToAccept(
            TextMessage.model_validate(
                {
                    "instanceName": body.instanceName,
                    "to": member["identifier"],
                    "lane": body.lane,
                }
                | content,
                context=phone_context(caller.default_country, channel),
            ),
            "text",
            content,
        )
        for member in active
    )
    accepted = await accept_in_pages(request, caller, messages)
    return web.json_response({"accepted": accepted, "skipped": skipped}, status=202)
