"""Event intake: an owned instance's events folded into the plan (messages queued and settled,
its state, pause and settings), loading the instance first when it is new to this replica."""

import asyncio
from collections.abc import Callable

import structlog

from lane_scheduler.clock import stored_time
from lane_scheduler.loading import LoadOutcome
from lane_scheduler.planner import Pause
from lane_scheduler.replica import Replica
from lane_scheduler.shards import drop_instance
from lanegate.broker import Retry
from lanegate.events import (
    AnyEvent,
    InstanceConfigured,
    InstancePaused,
    InstanceResumed,
    InstanceState,
    MessageAccepted,
    MessageCanceled,
    MessageExpired,
    MessageHandedBack,
    MessageStatus,
    canceled,
)
from lanegate.lifecycle import HANDED_BACK, SEND_OUTCOMES, Status, end_waiting
from lanegate.store import Document

log = structlog.get_logger(__name__)

MOVED = "the instance moved to another replica"


class Intake:
    """Applies the events of instances this replica owns to the planner."""

    def __init__(
        self, replica: Replica, *, claiming: Callable[[str], bool], poke: Callable[[], None]
    ) -> None:
        self._replica = replica
        self._planner = replica.planner
        self._claiming = claiming
        self._poke = poke
        self._instance_loads: dict[str, asyncio.Future[LoadOutcome]] = {}

    async def apply(self, event: AnyEvent) -> None:
        """Fold one event into the plan and wake the loop; `Retry` when the instance moved to
        another replica."""
        name = event.instanceName
        epoch = self._replica.ownership.epoch(name)
        if epoch is None:
            raise Retry(after=1, reason=MOVED, counted=False)
        if name not in self._planner and not await self._known_after_loading(name, epoch, event):
            return
        await self._fold(name, event)
        self._poke()

    async def _known_after_loading(self, name: str, epoch: int, event: AnyEvent) -> bool:
        """Load an instance new to this replica; False when it is gone and the event was
        settled here (a message of a deleted instance ended) or ignored."""
        outcome = await self._load_instance(name, epoch)
        if outcome == "loaded" and name not in self._planner:
            # Dropped while this event waited on the load: its shard moved, or the
            # delete's announcement, handled meanwhile, found the instance gone.
            if self._replica.ownership.epoch(name) is None:
                raise Retry(after=1, reason=MOVED, counted=False)
            outcome = "missing"
        if outcome == "missing" and isinstance(event, MessageAccepted | MessageHandedBack):
            await self._orphaned(name, event.messageId)
            return False
        if outcome != "loaded":
            log.info("event for an unknown instance ignored", event_kind=event.kind)
            return False
        return True

    async def _fold(self, name: str, event: AnyEvent) -> None:
        """Change the instance's queue as the event says."""
        if isinstance(event, MessageAccepted | MessageHandedBack):
            if await self._current(event):
                self._accepted(event)
        elif isinstance(event, MessageStatus):
            if event.status in SEND_OUTCOMES:
                sent_at = event.occurredAt.timestamp() if event.status == "sent" else None
                self._planner.settle(name, event.messageId, sent_at)
        elif isinstance(event, InstanceState):
            self._planner.set_state(name, event.state, event.occurredAt.timestamp())
        elif isinstance(event, InstancePaused) and event.scope == "instance":
            until = event.until.timestamp() if event.until else None
            pause = Pause(event.occurredAt.timestamp(), until, event.reason, event.by)
            self._planner.pause(name, pause)
            log.warning("instance paused", reason=event.reason, until=event.until, by=event.by)
        elif isinstance(event, InstanceResumed):
            self._planner.resume(name)
            log.info("instance resumed")
        elif isinstance(event, InstanceConfigured):
            if not await self._replica.loader.reconfigure(name):
                await self._deleted(name)
        elif isinstance(event, MessageCanceled | MessageExpired):
            # Waiting, it is forgotten; withdrawn through provider-sender, its queue goes on.
            self._planner.remove(name, event.messageId)
            self._planner.settle(name, event.messageId, None)

    async def end_orphans(self, orphans: list[Document]) -> None:
        """End the waiting messages of instances deleted after accepting them."""
        await self._replica.slots.run(self._orphaned(m["instanceName"], m["_id"]) for m in orphans)

    async def _load_instance(self, name: str, epoch: int) -> LoadOutcome:
        """Load an instance not planned yet; its events that arrive meanwhile share the load.

        Each of them then sees what the load saw: an `instance.configured` sent after a
        delete, arriving while an earlier event loads the instance as it was, finds the
        document gone when it reloads the settings and drops the queue; had it loaded on
        its own, it would have found nothing to drop, and the earlier event's load would
        have left a queue behind for a deleted instance.
        """
        loading = self._instance_loads.get(name)
        if loading is None:
            loading = asyncio.ensure_future(self._replica.loader.instance(name, epoch))
            self._instance_loads[name] = loading
            loading.add_done_callback(lambda _: self._instance_loads.pop(name, None))
        return await asyncio.shield(loading)

    async def _current(self, event: MessageAccepted | MessageHandedBack) -> bool:
        """False for a late copy of an event that queued a message now in flight.

        provider-sender hands a message back (deferred, not connected) with
        `message.handed_back` (with `message.accepted` before that event existed, which a
        queue may still hold), which frees its slot; a copy of the original, delivered again
        after a crash, must not free the slot of a send still under way. While its claim is
        out, the store still says `pending`, and only a copy can arrive (nothing was handed
        over yet).
        """
        if not self._planner.in_flight(event.instanceName, event.messageId):
            return True
        if self._claiming(event.messageId):
            return False
        message = await self._replica.store.messages.find_one(
            {"_id": event.messageId}, {"status": 1}
        )
        return message is not None and message["status"] in HANDED_BACK

    def _accepted(self, event: MessageAccepted | MessageHandedBack) -> None:
        valid_until = event.validUntil.timestamp() if event.validUntil else None
        if isinstance(event, MessageAccepted) and event.awaitingApproval:
            if valid_until is not None:
                self._planner.hold(event.instanceName, event.messageId, valid_until)
            return
        cloud = self._planner.queue_of(event.instanceName).pacing.throughput is not None
        self._planner.add(
            event.instanceName,
            event.messageId,
            event.lane,
            event.priority,
            event.occurredAt.timestamp(),
            scheduled_at=event.scheduledAt.timestamp() if event.scheduledAt else None,
            valid_until=valid_until,
            to=event.to if cloud else None,
        )

    async def _deleted(self, name: str) -> None:
        """Forget a deleted instance's queue, ending the messages accepted for it while the
        delete ran (those the delete found, it canceled itself)."""
        drop_instance(self._planner, name)
        await self.end_orphans(await self._replica.loader.orphans([name]))

    async def _orphaned(self, name: str, message_id: str) -> None:
        """End a message accepted for an instance deleted meanwhile as the delete ended its
        others (`clear_waiting`): `canceled` if never tried, else withdrawn through
        provider-sender. One on its way or already ended is left to its outcome."""
        match = {"_id": message_id, "instanceName": name}
        now = stored_time(self._replica.clock())
        ended = await end_waiting(
            self._replica.store,
            self._replica.broker,
            match,
            Status.CANCELED,
            now,
            lambda m: canceled(m, "canceled"),
        )
        outcome = {
            "ended": "message of a deleted instance canceled",
            "withdrawn": "tried message of a deleted instance withdrawn",
            None: "message of a deleted instance not waiting",
        }[ended]
        log.warning(outcome, message_id=message_id, instance=name)
