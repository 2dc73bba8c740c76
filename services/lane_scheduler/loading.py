"""Rebuilding the planner's queues from the store when this replica takes over instances."""

from collections.abc import Awaitable, Callable
from typing import Literal

import structlog

from lane_scheduler.clock import unix_seconds
from lane_scheduler.ledger import Ledger
from lane_scheduler.ownership import shard_of
from lane_scheduler.planner import Pause, Planner
from lanegate.lanes import Usage, pacing_for
from lanegate.lifecycle import CANCELABLE, PLANNED, Status
from lanegate.store import Document, Store, in_parts

log = structlog.get_logger(__name__)

INSTANCE_FIELDS = {
    "state": 1,
    "stateChangedAt": 1,
    "provider": 1,
    "lanes": 1,
    "timezone": 1,
    "warmup": 1,
    "throughput": 1,
    "firstConnectedAt": 1,
    "paused": 1,
    "health": 1,
}
MESSAGE_FIELDS = {
    "instanceName": 1,
    "status": 1,
    "lane": 1,
    "priority": 1,
    "queuedAt": 1,
    "scheduledAt": 1,
    "validUntil": 1,
    "to": 1,
}
CHUNK = 500  # instance names per `$in` query
# Names per paged read of waiting messages: with the statuses, 50 x 4 index ranges, which
# MongoDB merges in `_id` order (up to 200) instead of sorting the matches.
PAGED_NAMES = 50
PAGE = 1000  # waiting messages per read while loading
# Runs between the reads of a load.
Pace = Callable[[], Awaitable[None]]
# How `Loader.instance` ended: the instance loaded, gone from the store, or held by a newer owner.
LoadOutcome = Literal["loaded", "missing", "fenced"]


def pause_of(instance: Document) -> Pause | None:
    """The pause a provider or the tenant put on the instance, as stored on it."""
    paused = instance.get("paused")
    if not isinstance(paused, dict):
        return None
    return Pause(
        since=unix_seconds(paused.get("since")) or 0.0,
        until=unix_seconds(paused.get("until")),
        reason=str(paused.get("reason", "")),
        by=str(paused.get("by") or "provider"),
    )


class Loader:
    """Fills the planner from instances, lane-state records and waiting messages."""

    def __init__(self, store: Store, ledger: Ledger, planner: Planner) -> None:
        self._store = store
        self._ledger = ledger
        self._planner = planner

    def configure(self, instance: Document) -> None:
        """Apply an instance document's settings, state and pause to its queue."""
        self._planner.configure(
            instance["_id"],
            pacing=pacing_for(instance),
            state=instance.get("state", "close"),
            state_at=unix_seconds(instance.get("stateChangedAt")) or 0.0,
            pause=pause_of(instance),
            first_connected_at=unix_seconds(instance.get("firstConnectedAt")),
        )

    async def shards(
        self, gained: dict[int, int], now: float, between_pages: Pace
    ) -> list[Document]:
        """Load every instance of newly claimed shards; returns the shards' messages still
        to be canceled because their instance was deleted after accepting them.

        Everything is read first and put in the planner at once at the end, so no queue is
        planned from half its messages; `between_pages` runs between steps and pages (lease
        renewals go first on a slow store).
        """
        await self._ledger.stamp(gained)
        await between_pages()
        # Read before the instances: a message is only accepted for an instance that exists,
        # so a name waiting here and missing below is an instance deleted since.
        waiting = await self._store.messages.distinct(
            "instanceName", {"status": {"$in": list(CANCELABLE)}}
        )
        instances: list[Document] = []
        existing: set[str] = set()
        async for instance in self._store.instances.find({}, INSTANCE_FIELDS):
            existing.add(instance["_id"])
            if shard_of(instance["_id"]) in gained:
                instances.append(instance)
        await between_pages()
        records = await self._ledger.records(list(gained))
        kept: list[Document] = []
        for instance in instances:
            name = instance["_id"]
            # A newer owner got there first when `ensure` fails: the queue stays unplanned.
            if name in records or await self._ledger.ensure(name, gained[shard_of(name)]):
                kept.append(instance)
        names = [instance["_id"] for instance in kept]
        await between_pages()
        sent_at = await self._last_sends(records)
        messages = await self._waiting(names, between_pages)
        gone = [name for name in waiting if name not in existing and shard_of(name) in gained]
        orphans = await self.orphans(gone)
        for instance in kept:
            self.configure(instance)
        self._restore(records, sent_at)
        for message in messages:
            self.add(message, now)
        log.info(
            "shards loaded",
            shards=sorted(gained),
            instances=len(names),
            messages=len(messages),
            orphans=len(orphans),
        )
        return orphans

    async def instance(self, name: str, epoch: int) -> LoadOutcome:
        """Load one instance this replica did not know yet, if it exists and is still ours."""
        instance = await self._store.instances.find_one({"_id": name}, INSTANCE_FIELDS)
        if instance is None:
            return "missing"
        if not await self._ledger.ensure(name, epoch):
            return "fenced"
        record = await self._ledger.record(name)
        records = {name: record} if record else {}
        sent_at = await self._last_sends(records)
        self.configure(instance)
        self._restore(records, sent_at)
        return "loaded"

    async def reconfigure(self, name: str) -> bool:
        """Reload an instance's settings after they changed; False if it was deleted."""
        instance = await self._store.instances.find_one({"_id": name}, INSTANCE_FIELDS)
        if instance is None:
            return False
        self._planner.configure(name, pacing=pacing_for(instance))
        return True

    async def _last_sends(self, records: dict[str, Document]) -> dict[str, float]:
        """When the last dispatches of these records were sent, by message id (sent ones)."""
        last_ids = [r["lastMessageId"] for r in records.values() if r.get("lastMessageId")]
        sent_at: dict[str, float] = {}
        for some in in_parts(last_ids, CHUNK):
            async for message in self._store.messages.find(
                {"_id": {"$in": some}, "status": Status.SENT}, {"sentAt": 1}
            ):
                sent_at[message["_id"]] = unix_seconds(message.get("sentAt")) or 0.0
        return sent_at

    def _restore(self, records: dict[str, Document], sent_at: dict[str, float]) -> None:
        for name, record in records.items():
            if name not in self._planner:
                continue
            # The last send is the last dispatch's send time, or its dispatch time when its
            # outcome is unknown: never earlier than the real last send.
            dispatched = record.get("lastDispatchAt")
            last = max(sent_at.get(record.get("lastMessageId", ""), 0.0), float(dispatched or 0.0))
            self._planner.restore(
                name, usage=Usage.from_document(record.get("usage")), last_sent_at=last or None
            )

    async def missing(self, names: list[str], now: float) -> int:
        """Catch up on these instances' lost events: their settings, state and pause as
        stored, and the waiting messages the planner does not know (returns how many).

        Forwarded events sit in a replica's private queue, which goes with its connection.
        """
        for some in in_parts(names, CHUNK):
            async for instance in self._store.instances.find(
                {"_id": {"$in": some}}, INSTANCE_FIELDS
            ):
                self.configure(instance)
        count = 0
        for message in await self._waiting(names):
            if not self._planner.knows(message["instanceName"], message["_id"]):
                self.add(message, now)
                count += 1
        return count

    async def _waiting(self, names: list[str], between_pages: Pace | None = None) -> list[Document]:
        """The waiting messages of these instances, read a page at a time in `_id` order
        along the `instance_status_id` index: each page costs its own messages, however many
        the collection holds."""
        found: list[Document] = []
        for some in in_parts(names, PAGED_NAMES):
            query: Document = {"instanceName": {"$in": some}, "status": {"$in": list(PLANNED)}}
            while True:
                cursor = self._store.messages.find(query, MESSAGE_FIELDS)
                page = await cursor.sort("_id", 1).limit(PAGE).to_list()
                found += page
                if between_pages is not None:
                    await between_pages()
                if len(page) < PAGE:
                    break
                query["_id"] = {"$gt": page[-1]["_id"]}
        return found

    async def orphans(self, names: list[str]) -> list[Document]:
        """The messages of these deleted instances that can still be canceled (id, instance)."""
        found: list[Document] = []
        for some in in_parts(names, CHUNK):
            query = {"instanceName": {"$in": some}, "status": {"$in": list(CANCELABLE)}}
            found += [m async for m in self._store.messages.find(query, {"instanceName": 1})]
        return found

    def add(self, message: Document, now: float) -> None:
        """Put one stored message where it belongs: its queue, in flight, or held for approval."""
        name, status = message["instanceName"], message["status"]
        valid_until = unix_seconds(message.get("validUntil"))
        if status == Status.PENDING:
            queue = self._planner.queue_of(name)
            self._planner.add(
                name,
                message["_id"],
                message["lane"],
                message.get("priority", 5),
                unix_seconds(message["queuedAt"]) or now,
                scheduled_at=unix_seconds(message.get("scheduledAt")),
                valid_until=valid_until,
                to=message.get("to") if queue.pacing.throughput is not None else None,
            )
        elif status == Status.PENDING_APPROVAL:
            if valid_until is not None:
                self._planner.hold(name, message["_id"], valid_until)
        else:
            # Handed over before: wait for its outcome, published again after the timeout.
            self._planner.mark_in_flight(name, message["_id"], now)
