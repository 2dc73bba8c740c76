"""Taking a tried message out of its queue: provider-sender settles it, asking the provider.

A message provider-sender already tried may be on the phone (an attempt timed
out after the provider took it), so a flush, a delete or its `validUntil`
never cancels or expires it blind: it is handed to provider-sender as
`dispatching` with `withdraw` naming the status it takes if the provider surely
lacks it; provider-sender records `sent` if the provider has it, that status if
the provider keeps a full record, else `failed` (outcome_unknown).
"""

from collections.abc import Callable
from datetime import datetime
from typing import Any, Literal

from lanegate.broker import Broker
from lanegate.events import Event, MessageDispatch
from lanegate.lifecycle import CANCELABLE, TRIED, cancelable
from lanegate.store import Document, Store

# What `end_one` reads of the message it ends, for the event it publishes.
ENDED_FIELDS = {"tenantId": 1, "instanceName": 1, "to": 1, "lane": 1, "validUntil": 1}


async def withdraw_one(
    store: Store, broker: Broker, match: dict[str, Any], status: str, now: datetime
) -> Document | None:
    """Hand one tried waiting message that `match` picks to provider-sender to settle as
    `status` if the provider lacks it; returns it, or None when there is none."""
    message = await store.messages.find_one_and_update(
        {**match, "status": {"$in": list(CANCELABLE)}, **TRIED},
        {"$set": {"status": "dispatching", "dispatchedAt": now, "withdraw": status}},
        {"tenantId": 1, "instanceName": 1, "lane": 1, "status": 1},
    )
    if message is None:
        return None
    try:
        await broker.publish(
            MessageDispatch(
                tenantId=str(message["tenantId"]),
                instanceName=message["instanceName"],
                messageId=message["_id"],
                lane=message["lane"],
            )
        )
    except Exception:
        # Nobody would settle it: put it back, so that the flush (or expiry) tried again finds it.
        await store.messages.update_one(
            {"_id": message["_id"], "status": "dispatching", "withdraw": status},
            {"$set": {"status": message["status"]}, "$unset": {"withdraw": ""}},
        )
        raise
    return message


async def end_one(
    store: Store,
    broker: Broker,
    match: dict[str, Any],
    status: str,
    now: datetime,
    announce: Callable[[Document], Event],
) -> Literal["ended", "withdrawn"] | None:
    """End the waiting message `match` picks as `status`: at once when never tried (with
    `{status}At` set and `announce(message)` published), else withdrawn through
    provider-sender; None when no such message waits."""
    message = await store.messages.find_one_and_update(
        cancelable(match), {"$set": {"status": status, f"{status}At": now}}, ENDED_FIELDS
    )
    if message is not None:
        await broker.publish(announce(message))
        return "ended"
    if await withdraw_one(store, broker, match, status, now):
        return "withdrawn"
    return None
