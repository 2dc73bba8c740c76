"""A message's statuses, the sets they fall into, and the named transitions between them:
the transitions below are the only code that writes a message's status."""

from collections.abc import Callable
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pymongo import ReturnDocument

from lanegate import usage
from lanegate.broker import Broker
from lanegate.events import Event, MessageDispatch
from lanegate.store import Document, Store, update_in_parts
from lanegate.store.grouped import grouped_updates


class Status(StrEnum):
    """Where a stored message is on its way from accepted to an outcome."""

    PENDING_APPROVAL = "pending_approval"
    PENDING = "pending"
    DISPATCHING = "dispatching"
    SENDING = "sending"
    DEFERRED = "deferred"
    SENT = "sent"
    FAILED = "failed"
    CANCELED = "canceled"
    REJECTED = "rejected"
    EXPIRED = "expired"


# Still to be sent (or being handed over right now).
WAITING = (
    Status.PENDING,
    Status.PENDING_APPROVAL,
    Status.DISPATCHING,
    Status.SENDING,
    Status.DEFERRED,
)
# What the scheduler keeps in its lines: every waiting message but a deferred one, which
# provider-sender holds until a provider limit lifts.
PLANNED = (Status.PENDING, Status.DISPATCHING, Status.SENDING, Status.PENDING_APPROVAL)
# Handed to provider-sender, whose claim decides what comes of it.
HANDED_OVER = (Status.DISPATCHING, Status.SENDING)
# Where provider-sender leaves a message it gives back to the scheduler's line.
HANDED_BACK = (Status.PENDING, Status.DEFERRED)
# What came of a send: the only outcomes provider-sender records and reports.
SEND_OUTCOMES = (Status.SENT, Status.FAILED)
# Never to change again.
FINAL = (Status.SENT, Status.FAILED, Status.CANCELED, Status.REJECTED, Status.EXPIRED)
# Can still be canceled: never handed to provider-sender. Not `deferred`: a deferred message
# may follow an attempt whose outcome is unknown (the phone may have it).
CANCELABLE = (Status.PENDING, Status.PENDING_APPROVAL)
# Nor a message back in `pending` after such an attempt: provider-sender counts the attempts
# of a message it retries, and asks the provider whether it has it before sending again.
# Such a message is taken out of its queue through provider-sender (`withdraw`).
UNTRIED: dict[str, Any] = {"attempts": {"$in": [None, 0]}}
TRIED: dict[str, Any] = {"attempts": {"$gt": 0}}


def cancelable(match: dict[str, Any]) -> dict[str, Any]:
    """A store filter for the messages `match` picks that can still be canceled."""
    return {**match, "status": {"$in": list(CANCELABLE)}, **UNTRIED}


# Internal states read as `pending` to tenants (`deferred`: provider-sender holds it until a
# provider limit lifts).
PUBLIC: dict[str, str] = {
    Status.DISPATCHING: Status.PENDING,
    Status.SENDING: Status.PENDING,
    Status.DEFERRED: Status.PENDING,
}


def public(status: str) -> str:
    """The status a tenant sees for a stored status."""
    return PUBLIC.get(status, status)


# What `end_waiting` reads of the message it ends, for the event it publishes.
ENDED_FIELDS = {"tenantId": 1, "instanceName": 1, "to": 1, "lane": 1, "validUntil": 1}


def projected(document: Document | None, fields: dict[str, Any] | None) -> Document | None:
    """The `_id` and `fields` of a document a transition returned (all of it without `fields`).

    Transitions read whole documents and keep the fields here: FerretDB v1 refuses a
    projection on findAndModify."""
    if document is None or fields is None:
        return document
    return {k: v for k, v in document.items() if k == "_id" or k in fields}


# --- transitions: the only code that writes a message's status ---
# Each is a conditional update on the status it expects, so of two services racing over one
# message only one wins; False or None says the message was no longer there.


async def claim_for_dispatch(
    store: Store, message_id: str, at: datetime, fields: dict[str, Any]
) -> Document | None:
    """`pending -> dispatching` for the scheduler, unless its `validUntil` passed by `at`; the
    claimed message's `fields`, or None."""
    claimed = await _claim(
        store,
        {
            "_id": message_id,
            "status": Status.PENDING,
            "$or": [{"validUntil": None}, {"validUntil": {"$gt": at}}],
        },
        {"status": Status.DISPATCHING, "dispatchedAt": at},
    )
    return projected(claimed, fields)


async def claim_for_send(store: Store, message_id: str, now: datetime) -> Document | None:
    """`dispatching -> sending` before provider-sender calls the provider; the claimed
    message, or None."""
    return await _claim(
        store,
        {"_id": message_id, "status": Status.DISPATCHING},
        {"status": Status.SENDING, "sendingAt": now},
    )


async def mark_sent(
    store: Store,
    message_id: str,
    *,
    at: datetime,
    provider_message_id: str,
    text: str | None = None,
    attempts: int | None = None,
) -> bool:
    """`sending -> sent`, with the variant of the text sent and the tries it took in the same
    write."""
    changes: dict[str, Any] = {"sentAt": at, "providerMessageId": provider_message_id}
    if text is not None:
        changes["textSent"] = text
    if attempts is not None:
        changes["attempts"] = attempts
    return await _move(store, message_id, Status.SENDING, Status.SENT, changes)


async def defer(
    store: Store, message_id: str, until: datetime, *, attempts: int | None = None
) -> bool:
    """`sending -> deferred` until `until` (an instance or recipient on hold, a refusal to try
    again later)."""
    changes: dict[str, Any] = {"deferredUntil": until}
    if attempts is not None:
        changes["attempts"] = attempts
    return await _move(store, message_id, Status.SENDING, Status.DEFERRED, changes)


async def hand_back(store: Store, message_id: str, was: Status) -> bool:
    """Back to `pending` for the scheduler to plan again: from `sending` (the session is not
    open) or from `deferred` (its hold is over)."""
    return await _move(store, message_id, was, Status.PENDING, {})


async def finish(store: Store, message_id: str, status: Status, **fields: Any) -> bool:
    """`sending ->` an outcome provider-sender settled (`failed`, or a withdrawn message's
    `canceled` or `expired`), with `fields` in the same write."""
    return await _move(store, message_id, Status.SENDING, status, fields)


async def mark_undelivered(
    store: Store, match: dict[str, Any], error: dict[str, Any], now: datetime
) -> Document | None:
    """`sent -> failed` when the provider reports it could not deliver the message `match`
    picks; the message after, or None."""
    return await store.messages.find_one_and_update(
        {**match, "status": Status.SENT},
        {"$set": {"status": Status.FAILED, "error": error, "failedAt": now}},
        return_document=ReturnDocument.AFTER,
    )


async def approve(store: Store, match: dict[str, Any], now: datetime) -> Document | None:
    """`pending_approval -> pending` for the untried message `match` picks; it as it was, or
    None."""
    return await store.messages.find_one_and_update(
        {**match, "status": Status.PENDING_APPROVAL, **UNTRIED},
        {"$set": {"status": Status.PENDING, "approvedAt": now}},
    )


async def take_back_approval(store: Store, message_id: str) -> None:
    """`pending -> pending_approval` again, when nobody heard of the approval."""
    await _move(store, message_id, Status.PENDING, Status.PENDING_APPROVAL, {})


async def retire(
    store: Store,
    match: dict[str, Any],
    status: Status,
    now: datetime,
    *,
    allowed: tuple[Status, ...] = CANCELABLE,
    fields: dict[str, Any] | None = None,
) -> Document | None:
    """End the untried message `match` picks in one of `allowed` as `status` (canceled,
    rejected, expired), stamped `{status}At` (a cancel counted in the tenant's usage); its
    `fields` as it was, or None."""
    ended = await store.messages.find_one_and_update(
        {**match, "status": {"$in": list(allowed)}, **UNTRIED},
        {"$set": {"status": status, f"{status}At": now}},
    )
    if ended is not None and status == Status.CANCELED:
        usage.count_message(store, ended, usage.Counted.CANCELED, now)
    return projected(ended, fields)


async def retire_all(store: Store, match: dict[str, Any], status: Status, now: datetime) -> int:
    """End every untried cancelable message `match` picks as `status`; how many."""
    return await update_in_parts(
        store.messages, cancelable(match), {"$set": {"status": status, f"{status}At": now}}
    )


async def withdraw(
    store: Store, broker: Broker, match: dict[str, Any], status: Status, now: datetime
) -> Document | None:
    """Hand one tried waiting message that `match` picks to provider-sender (`-> dispatching`)
    to settle as `status` if the provider lacks it; returns it, or None when there is none.

    A message provider-sender already tried may be on the phone (an attempt timed out after
    the provider took it), so it is never ended blind: provider-sender records `sent` if the
    provider has it, `status` if the provider keeps a full record, else `failed`
    (outcome_unknown).
    """
    message = await store.messages.find_one_and_update(
        {**match, "status": {"$in": list(CANCELABLE)}, **TRIED},
        {"$set": {"status": Status.DISPATCHING, "dispatchedAt": now, "withdraw": status}},
    )
    if message is None:
        return None
    try:
        await hand_to_sender(broker, message)
    except Exception:
        # Nobody would settle it: put it back, so that the flush (or expiry) tried again finds it.
        await store.messages.update_one(
            {"_id": message["_id"], "status": Status.DISPATCHING, "withdraw": status},
            {"$set": {"status": message["status"]}, "$unset": {"withdraw": ""}},
        )
        raise
    return message


async def end_waiting(
    store: Store,
    broker: Broker,
    match: dict[str, Any],
    status: Status,
    now: datetime,
    announce: Callable[[Document], Event],
) -> Literal["ended", "withdrawn"] | None:
    """End the waiting message `match` picks as `status`: at once when never tried (with
    `announce(message)` published), else withdrawn through provider-sender; None when no such
    message waits."""
    message = await retire(store, match, status, now, fields=ENDED_FIELDS)
    if message is not None:
        await broker.publish(announce(message))
        return "ended"
    if await withdraw(store, broker, match, status, now):
        return "withdrawn"
    return None


async def hand_to_sender(broker: Broker, message: Document, *, after: float | None = None) -> None:
    """Publish `message.dispatch` for a message claimed for provider-sender: now, or after
    `after` seconds through provider-sender's own retry tiers (a deferred message's wake-up)."""
    event = MessageDispatch(
        tenantId=str(message["tenantId"]),
        instanceName=message["instanceName"],
        messageId=message["_id"],
        lane=message["lane"],
    )
    if after is None:
        await broker.publish(event)
    else:
        await broker.publish_later(event, "provider-sender", after)


# Moves and claims made at once share one write (and claims one read of what they claimed);
# each stamps `lastMove`, which says whose applied when only some did.
async def _move(
    store: Store, message_id: str, was: Status, status: Status, changes: dict[str, Any]
) -> bool:
    """`was -> status` with `changes`; whether it moved."""
    return await grouped_updates(store, store.messages).update(
        {"_id": message_id, "status": was},
        {"$set": {"status": status, **changes}},
        token="lastMove",
    )


async def _claim(store: Store, where: Document, changes: dict[str, Any]) -> Document | None:
    """The message `where` picks with `changes` written, or None when it no longer matched."""
    return await grouped_updates(store, store.messages).update_and_read(
        where, {"$set": changes}, token="lastMove"
    )
