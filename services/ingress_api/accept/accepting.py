"""Accepting one message or a bulk request: checks, the stored document, idempotency by
`externalId`, then publishing (stored first; what a send that failed halfway left is settled)."""

import asyncio
import contextlib
import hashlib
import json
from dataclasses import dataclass
from typing import Any

import structlog
from aiohttp import web
from pydantic import BaseModel
from pymongo import UpdateOne
from pymongo.errors import ConnectionFailure, DuplicateKeyError

from ingress_api.accept.conversation_windows import closed_window, window_open
from ingress_api.accept.lookups import LOOKUPS
from ingress_api.accept.message_keys import claim, claimed
from ingress_api.accept.quotas import Reservations, reserve_messages
from ingress_api.accept.recipient_values import Recipient, unfilled_values
from ingress_api.accept.settling import FAILED_SEND_SETTLER, announce, keyed
from ingress_api.auth import Caller
from ingress_api.metrics import MESSAGES_ACCEPTED
from ingress_api.requests import refuse_private_targets
from ingress_api.schemas.base import parse_instance_name
from ingress_api.schemas.messages import (
    AudioContent,
    ButtonsContent,
    DocumentContent,
    ImageContent,
    ListContent,
    LocationContent,
    SendCommon,
    TextContent,
    VideoContent,
)
from lanegate import usage
from lanegate.contacts import new_contact
from lanegate.conversations import record_outbound
from lanegate.errors import (
    ApiError,
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    Unavailable,
    Unprocessable,
)
from lanegate.events import new_id, utcnow
from lanegate.lifecycle import Status, public
from lanegate.providers.capabilities import CAPABILITIES, EMAIL_KINDS, channel_of
from lanegate.service import BROKER, STORE
from lanegate.store import Document, Store, in_parts
from lanegate.store.bulk import insert_missing
from lanegate.store.grouped import grouped_inserts
from lanegate.timestamps import iso_utc

log = structlog.get_logger(__name__)

# Kinds only providers with the `supportsButtons` capability can send.
INTERACTIVE = frozenset({"buttons", "list"})
# Content fields only an e-mail carries.
EMAIL_ONLY = frozenset({"subject", "html"})


def provider_can_send(provider: str, kind: str) -> bool:
    """Whether a provider can send messages of this kind at all."""
    if channel_of(provider) == "email":
        return kind in EMAIL_KINDS
    capabilities = CAPABILITIES[provider]
    if kind in INTERACTIVE:
        return capabilities.supportsButtons
    return kind != "attachment" or capabilities.supportsAttachments


CONTENT_MODELS: dict[str, type[BaseModel]] = {
    "text": TextContent,
    "image": ImageContent,
    "document": DocumentContent,
    "audio": AudioContent,
    "video": VideoContent,
    "location": LocationContent,
    "buttons": ButtonsContent,
    "list": ListContent,
}


def content_of(kind: str, body: Any) -> dict[str, Any]:
    """What a message of `kind` carries, as stored and handed to the provider (the API's
    field names, URLs as strings, absent optional fields left out)."""
    content_model = CONTENT_MODELS[kind]
    fields = body.model_dump(include=set(content_model.model_fields), exclude_none=True)
    for url_field in ("imageUrl", "documentUrl", "audioUrl", "videoUrl"):
        if url_field in fields:
            fields[url_field] = str(getattr(body, url_field))
    return dict(fields)


@dataclass(frozen=True)
class MessageToAccept:
    """One message to accept: its validated body, kind and stored content, and a plain
    `reference` of the client's that, unlike `externalId`, need not be unique."""

    body: SendCommon
    kind: str
    content: dict[str, Any]
    reference: str | None = None

    def fingerprint(self) -> str:
        """What makes two sends with one `externalId` the same request."""
        fields = self.body.model_dump(mode="json", exclude={"force"})
        asked: list[Any] = [self.kind, fields]
        if self.reference is not None:
            asked.append(self.reference)
        raw = json.dumps(asked, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(raw.encode()).hexdigest()


@dataclass(frozen=True)
class Refusal:
    """Why an item cannot be queued, and the field it is about."""

    error: ApiError
    field: str

    @property
    def message(self) -> str:
        return str(self.error.issues[0]["message"]) if self.error.issues else self.error.message


async def lookups(
    request: web.Request, caller: Caller, items: list[MessageToAccept]
) -> tuple[dict[str, Document], set[str]]:
    """The caller's instances the items name and their inactive recipients."""
    store, known = request.app[STORE], request.app[LOOKUPS]
    instances = await known.instances(store, caller.tenant_id, (i.body.instanceName for i in items))
    numbers = (i.body.to for i in items if not i.body.force)
    return instances, await known.inactive(store, caller.tenant_id, numbers)


async def refusals(
    store: Store,
    caller: Caller,
    items: list[MessageToAccept],
    instances: dict[str, Document],
    inactive: set[str],
) -> list[Refusal | None]:
    """For each item, what stops it (None when it may be queued), from `lookups`: the
    instances are reused for the stored documents."""
    found: list[Refusal | None] = []
    recipients = [Recipient(i.body.to, i.content, i.body.contactName) for i in items]
    unfilled = await unfilled_values(store, caller.tenant_id, recipients)
    for item, missing in zip(items, unfilled, strict=True):
        name, to = item.body.instanceName, item.body.to
        parts = parse_instance_name(name)
        instance = instances.get(name)
        refusal: Refusal | None = None
        if parts is None:
            invalid = InvalidInput([(["instanceName"], "Must follow {tenant}__{client}__{label}")])
            refusal = Refusal(invalid, "instanceName")
        elif parts[0] != caller.tenant_id:
            refusal = Refusal(
                Forbidden("The instanceName must start with your tenantId"), "instanceName"
            )
        elif instance is None:
            refusal = Refusal(NotFound(f"Instance {name} not found"), "instanceName")
        elif not provider_can_send(instance["provider"], item.kind):
            refusal = Refusal(
                Unprocessable(f"The {instance['provider']} provider cannot send {item.kind}"),
                "instanceName",
            )
        elif channel_of(instance["provider"]) != "email" and EMAIL_ONLY & item.content.keys():
            refusal = Refusal(Unprocessable("subject and html are for e-mail instances"), "subject")
        elif not await window_open(store, instance, to, item.kind):
            refusal = Refusal(closed_window(to), "to")
        elif to in inactive:
            refusal = Refusal(
                Unprocessable(f"Contact {to} is inactive; send with force: true to override"), "to"
            )
        elif missing is not None:
            refusal = Refusal(InvalidInput([([missing.field], missing.message)]), missing.field)
        found.append(refusal)
    return found


def document(caller: Caller, item: MessageToAccept, instance: Document) -> Document:
    """The stored form of an accepted message."""
    body, now = item.body, utcnow()
    return {
        "_id": new_id(),
        "tenantId": caller.tenant_id,
        "instanceName": instance["_id"],
        "provider": instance["provider"],
        "to": body.to,
        "type": item.kind,
        "content": item.content,
        "lane": body.lane,
        "priority": body.priority,
        "messageType": body.messageType,
        "status": Status.PENDING_APPROVAL if body.requiresApproval else Status.PENDING,
        "createdAt": now,
        "queuedAt": now,
        "scheduledAt": body.scheduledAt,
        "validUntil": body.validUntil,
        "sentAt": None,
        "error": None,
        "webhookUrl": str(body.webhookUrl) if body.webhookUrl else None,
        "notes": body.notes,
        "contactName": body.contactName,
        # provider-sender downloads an attached URL up to the tenant's limit, not the gateway's.
        **(
            {"maxAttachmentBytes": caller.max_attachment_bytes}
            if caller.max_attachment_bytes is not None
            else {}
        ),
        **({"reference": item.reference} if item.reference is not None else {}),
        **(
            {"externalId": body.externalId, "requestHash": item.fingerprint()}
            if body.externalId
            else {}
        ),
    }


def answer(message: Document, instance: Document, *, reference: bool = False) -> dict[str, Any]:
    """The accept answer for a stored message (the same for a repeated `externalId`): the
    API's shape, with `externalId` when it has one (always in bulk answers), and the state
    of its instance, so a message that waits for the instance to open says why."""
    shown = {
        "id": message["_id"],
        "status": public(message["status"]),
        "lane": message["lane"],
        "queuedAt": iso_utc(message["queuedAt"]),
    }
    if reference or message.get("externalId"):
        shown["externalId"] = message.get("externalId")
    shown["instanceState"] = instance.get("state", "close")
    return shown


async def _commit(request: web.Request, caller: Caller, fresh: list[Document]) -> None:
    """Reserve new messages in the tenant's day (all or none), store and announce them;
    the reservation is given back for those that cannot be queued after all (a duplicate, a
    failed send's messages without an `externalId`)."""
    store = request.app[STORE]
    reservation: Reservations = await reserve_messages(request, caller, len(fresh))
    try:
        await claim(store, fresh)
    except ConnectionFailure:
        # The store may have taken them with its answer lost (it restarted).
        await _settle_failed_send(request, reservation, fresh)
        raise
    except Exception:
        await reservation.release(store)
        raise
    try:
        await _insert(request, fresh)
    except Exception:
        # Stored in parts, or with the answer lost: some may be in the store.
        await _settle_failed_send(request, reservation, fresh)
        raise
    try:
        await announce(request.app[BROKER], fresh)
    except Exception as e:
        await _settle_failed_send(request, reservation, fresh)
        log.warning("publish failed; messages settled later", count=len(fresh), error=repr(e))
        raise Unavailable("Message queue unavailable, retry shortly") from e
    for message in fresh:
        MESSAGES_ACCEPTED.labels(message["lane"], message["type"]).inc()


async def _record_accepted(
    store: Store, caller: Caller, items: list[MessageToAccept], fresh: list[Document]
) -> None:
    """What newly stored messages change elsewhere: the contacts a send names and the chats'
    last messages, written at once rather than one after another; and the day's usage count,
    added to the counts written a second later."""
    usage.count_messages(store, fresh, usage.Counted.ACCEPTED, utcnow())
    await asyncio.gather(_name_contacts(store, caller, items), record_outbound(store, fresh))


async def _insert(request: web.Request, fresh: list[Document]) -> None:
    """Store the new messages; one already there was stored by a repeat of its send, from
    the key this send claimed (a message's id is new, so nothing else can clash). Single sends
    stored at once share one insert; a bulk's go in parts."""
    store = request.app[STORE]
    if len(fresh) == 1:
        with contextlib.suppress(DuplicateKeyError):
            await grouped_inserts(store, store.messages).insert(fresh[0])
        return
    for part in in_parts(fresh):
        await insert_missing(store.messages, part)


async def _settle_failed_send(
    request: web.Request, reservation: Reservations, fresh: list[Document]
) -> None:
    """Settle what a failed send may have stored; a message with an `externalId` may still go
    (it is announced), so it stays counted."""
    request.app[FAILED_SEND_SETTLER].settle_later(fresh)
    await reservation.release(request.app[STORE], len(fresh) - len(keyed(fresh)))


async def _announce(request: web.Request, earlier: list[Document]) -> None:
    """Announce repeated messages again: the send that stored one may have been answered 503
    before announcing it (a repeat of one already planned changes nothing)."""
    try:
        await announce(request.app[BROKER], earlier)
    except Exception as e:
        raise Unavailable("Message queue unavailable, retry shortly") from e


async def _name_contacts(store: Store, caller: Caller, items: list[MessageToAccept]) -> None:
    """`contactName` on a send creates or renames the contact (one round trip for all)."""
    now = utcnow()
    updates = [
        UpdateOne(
            {"tenantId": caller.tenant_id, "identifier": i.body.to},
            {
                "$set": {"name": i.body.contactName, "updatedAt": now},
                "$max": {"lastMessageAt": now},
                "$setOnInsert": new_contact(now, i.body.to),
            },
            upsert=True,
        )
        for i in items
        if i.body.contactName
    ]
    for part in in_parts(updates):
        await store.contacts.bulk_write(part, ordered=False)


async def _repeat(store: Store, caller: Caller, item: MessageToAccept) -> Document:
    """The message an earlier send with this `externalId` stored; 409 if its body differed."""
    ref = item.body.externalId or ""
    first = (await claimed(store, caller.tenant_id, [ref])).get(ref)
    if first is None:  # the other send gave its key back (a clash in its bulk): nothing to return
        raise Unavailable("A send with this externalId just failed; retry")
    if first.get("requestHash") != item.fingerprint():
        raise Conflict(f"externalId {item.body.externalId} was already used for another message")
    return first


async def accept_one(
    request: web.Request, caller: Caller, item: MessageToAccept
) -> tuple[dict[str, Any], int]:
    """Accept one message: 202 with its answer, or 200 with the first one for a repeat."""
    refuse_private_targets(request, {("webhookUrl",): item.body.webhookUrl})
    store = request.app[STORE]
    instances, inactive = await lookups(request, caller, [item])
    [refusal] = await refusals(store, caller, [item], instances, inactive)
    if refusal is not None:
        raise refusal.error
    instance = instances[item.body.instanceName]
    message = document(caller, item, instance)
    try:
        await _commit(request, caller, [message])
    except DuplicateKeyError:
        first = await _repeat(store, caller, item)
        await _announce(request, [first])
        return answer(first, instance), 200
    await _record_accepted(store, caller, [item], [message])
    # Debug: one line per send would be the busiest log of all (bulk sends log at info).
    log.debug("message accepted", message_id=message["_id"], lane=message["lane"])
    return answer(message, instance), 202


Issues = list[tuple[list[str | int], str]]


async def accept_many(
    request: web.Request, caller: Caller, indexed: list[tuple[int, MessageToAccept]], issues: Issues
) -> dict[str, Any]:
    """Accept every item or none: 400 listing each bad index (`issues` holds those already
    found in the bodies), else one write and one confirmed publish batch."""
    refuse_private_targets(
        request, {("messages", i, "webhookUrl"): item.body.webhookUrl for i, item in indexed}
    )
    store = request.app[STORE]
    items = [item for _, item in indexed]
    instances, inactive = await lookups(request, caller, items)
    found = await refusals(store, caller, items, instances, inactive)
    issues = issues + [
        (["messages", index, refusal.field], refusal.message)
        for (index, _), refusal in zip(indexed, found, strict=True)
        if refusal is not None
    ]
    seen: dict[str, int] = {}
    for index, item in indexed:
        ref = item.body.externalId
        if ref is not None and seen.setdefault(ref, index) != index:
            issues.append((["messages", index, "externalId"], f"Repeats item {seen[ref]}"))
    if issues:
        raise InvalidInput(sorted(issues, key=lambda issue: issue[0][1]))
    earlier = await _earlier(store, caller, items)
    await _announce(request, list(earlier.values()))
    messages: list[Document] = []
    fresh: list[Document] = []
    for item in items:
        first = earlier.get(item.body.externalId or "")
        if first is not None:
            messages.append(first)
        else:
            message = document(caller, item, instances[item.body.instanceName])
            messages.append(message)
            fresh.append(message)
    if fresh:
        try:
            await _commit(request, caller, fresh)
        except DuplicateKeyError as e:
            # A concurrent request took one of these externalIds (ours were given back).
            raise Conflict("Another request used one of these externalIds meanwhile; retry") from e
        await _record_accepted(store, caller, items, fresh)
    log.info("bulk accepted", count=len(items), new=len(fresh))
    return {
        "accepted": len(messages),
        "messages": [answer(m, instances[m["instanceName"]], reference=True) for m in messages],
    }


async def _earlier(
    store: Store, caller: Caller, items: list[MessageToAccept]
) -> dict[str, Document]:
    """Messages already stored for the items' externalIds; 409 if any body differs."""
    refs = {i.body.externalId: i for i in items if i.body.externalId}
    if not refs:
        return {}
    earlier = await claimed(store, caller.tenant_id, [ref for ref in refs if ref])
    clashes: list[tuple[list[str | int], str]] = [
        (["messages", index, "externalId"], "Already used for another message")
        for index, item in enumerate(items)
        if item.body.externalId in earlier
        and earlier[item.body.externalId].get("requestHash") != item.fingerprint()
    ]
    if clashes:
        raise Conflict("externalId already used for another message", issues=clashes)
    return earlier
