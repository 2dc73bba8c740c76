"""The dispatch loop: expire what is past its validUntil, hand out what the planner clears,
and publish again what has had no outcome for too long."""

import asyncio
import contextlib
import time

import structlog

from lane_scheduler.clock import stored_time, unix_seconds
from lane_scheduler.loading import MESSAGE_FIELDS
from lane_scheduler.metrics import (
    DECISION_SECONDS,
    export_cap_use,
    export_every_cap_use,
    export_plan,
)
from lane_scheduler.ownership import shard_of
from lane_scheduler.planner import Decision
from lane_scheduler.replica import Replica
from lane_scheduler.shards import drop_shard
from lanegate.events import expired
from lanegate.lifecycle import HANDED_OVER, Status, claim_for_dispatch, end_waiting, hand_to_sender

log = structlog.get_logger(__name__)

IDLE_WAKEUP_SECONDS = 1.0
STALE_CHECK_EVERY_SECONDS = 1.0
EXPORT_EVERY_SECONDS = 1.0
# A pass over every owned instance's caps: the hour window slides slowly.
CAP_EXPORT_EVERY_SECONDS = 10.0
# What `message.dispatch` carries of a claimed message.
CLAIM_FIELDS = {"tenantId": 1, "instanceName": 1, "lane": 1}


class DispatchLoop:
    """Counts, claims and hands over the messages the planner clears, as they come due.

    A dispatch is three steps: on an anti-ban queue, write the instance's cap usage under the
    shard's epoch (so a replica that lost the shard cannot send, and a crash after the claim
    cannot leave a send uncounted; Cloud API queues are paced by throughput and skip it),
    claim the message `pending -> dispatching` (a conditional update, so no message goes
    twice), then publish `message.dispatch`. A message whose claim fails was canceled or
    expired meanwhile and uses no slot, unless it is on its way already (withdrawn through
    provider-sender): then the queue waits for its outcome.
    """

    def __init__(self, replica: Replica, *, dispatch_timeout: float) -> None:
        self._replica = replica
        self._planner = replica.planner
        self._dispatch_timeout = dispatch_timeout
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._claiming: set[str] = set()  # decided, claim not answered: still `pending`
        self._last_stale_check = 0.0
        self._last_export = 0.0
        self._last_cap_export = 0.0

    def start(self) -> None:
        """Run the loop in the background."""
        self._task = asyncio.create_task(self._loop(), name="scheduler-loop")

    async def stop(self) -> None:
        """Stop the loop (dispatches under way still finish)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def poke(self) -> None:
        """Look at the plan now."""
        self._wake.set()

    def claiming(self, message_id: str) -> bool:
        """Whether the message was decided and its claim is not answered yet (still `pending`)."""
        return message_id in self._claiming

    async def _loop(self) -> None:
        while True:
            self._wake.clear()
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception as e:
                log.exception("scheduling pass failed", error=repr(e))
                await asyncio.sleep(1)
            wakeup = self._planner.next_wakeup()
            timeout = IDLE_WAKEUP_SECONDS
            if wakeup is not None:
                timeout = min(timeout, max(0.0, wakeup - self._replica.clock()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=timeout)

    async def tick(self) -> None:
        """One pass: expire what is past its validUntil, dispatch what may go now."""
        now = self._replica.clock()
        started = time.perf_counter()
        expired = self._planner.expired(now)
        decisions = self._planner.due(now)
        DECISION_SECONDS.observe(time.perf_counter() - started)
        await self._replica.slots.run(
            self._expire(name, message_id) for name, message_id in expired
        )
        await self._replica.slots.run(self._dispatch(decision) for decision in decisions)
        if now - self._last_stale_check >= STALE_CHECK_EVERY_SECONDS:
            self._last_stale_check = now
            stale = self._planner.stale(now, self._dispatch_timeout)
            await self._replica.slots.run(self._redispatch(decision) for decision in stale)
        if now - self._last_export >= EXPORT_EVERY_SECONDS:
            self._last_export = now
            export_plan(self._planner, self._replica.ownership, now)
        if now - self._last_cap_export >= CAP_EXPORT_EVERY_SECONDS:
            self._last_cap_export = now
            export_every_cap_use(self._planner, now)

    async def _dispatch(self, decision: Decision) -> None:
        """Count, claim and hand over one decided message (see the class docstring)."""
        name = decision.instance
        self._claiming.add(decision.message_id)
        try:
            epoch = self._replica.ownership.epoch(name)
            if epoch is None:
                # The lease is not ours right now (a late renewal, the store away): the
                # message goes back in its queue to be decided again. Should this read fail,
                # it stays in flight and the stale check plans it again.
                await self._replan(decision)
                return
            queue = self._planner.queue_of(name)
            if queue.pacing.throughput is None:
                # Counted in the store before the claim, so a crash between the two can only
                # count a send that never went (holding the lane back), never miss one that
                # did.
                if not await self._replica.ledger.reserve(
                    name, epoch, queue.usage, decision.at, decision.message_id
                ):
                    log.warning("fenced out of the instance's shard", instance=name)
                    # The new owner has the message, pending.
                    drop_shard(self._replica.ownership, self._planner, shard_of(name))
                    return
                export_cap_use(name, queue, decision.at)
            # A claim that fails with the store away leaves the message in flight: the stale
            # check finds it still pending and plans it again.
            claimed = await claim_for_dispatch(
                self._replica.store, decision.message_id, stored_time(decision.at), CLAIM_FIELDS
            )
        finally:
            # From here the store tells a hand-back from a late copy (see `Intake._current`).
            self._claiming.discard(decision.message_id)
        if claimed is None:
            self._planner.undo(decision)  # the store keeps the count until the next reserve
            await self._hold_queue_if_on_its_way(decision)
            self.poke()
            return
        await hand_to_sender(self._replica.broker, claimed)
        log.info("dispatched", message_id=decision.message_id, instance=name, lane=decision.lane)

    async def _hold_queue_if_on_its_way(self, decision: Decision) -> None:
        """After a failed claim: a message already on its way (withdrawn through
        provider-sender by a flush) holds its queue until its outcome, as a send does, and is
        published again by the stale check should that dispatch have been lost."""
        message = await self._replica.store.messages.find_one(
            {"_id": decision.message_id}, {"status": 1}
        )
        on_its_way = message is not None and message["status"] in HANDED_OVER
        if on_its_way and decision.instance in self._planner:
            self._planner.mark_in_flight(
                decision.instance, decision.message_id, self._replica.clock()
            )

    async def _replan(self, decision: Decision) -> None:
        """Put a decided but unclaimed message back in its queue, as stored."""
        message = await self._replica.store.messages.find_one(
            {"_id": decision.message_id}, MESSAGE_FIELDS
        )
        self._planner.undo(decision)
        if message is not None and message["status"] == Status.PENDING:
            self._replica.loader.add(message, self._replica.clock())
        self.poke()

    async def _expire(self, name: str, message_id: str) -> None:
        # Tried before, it may be on the phone: provider-sender asks the provider first.
        now = stored_time(self._replica.clock())
        due = {"_id": message_id, "validUntil": {"$lte": now}}
        ended = await end_waiting(
            self._replica.store, self._replica.broker, due, Status.EXPIRED, now, expired
        )
        if ended == "ended":
            log.info("message expired", message_id=message_id, instance=name)
        elif ended == "withdrawn":
            log.info("tried message past its validUntil withdrawn", message_id=message_id)

    async def _redispatch(self, decision: Decision) -> None:
        message = await self._replica.store.messages.find_one(
            {"_id": decision.message_id}, {**MESSAGE_FIELDS, "tenantId": 1, "sentAt": 1}
        )
        if message is not None and message["status"] == Status.PENDING:
            # Never claimed (the store failed under the claim): plan it again. Its slot
            # stays counted, which can only hold the lane back, never exceed a cap.
            self._planner.settle(decision.instance, decision.message_id, None)
            self._replica.loader.add(message, self._replica.clock())
            self.poke()
            return
        if message is None or message["status"] not in HANDED_OVER:
            sent = message is not None and message["status"] == Status.SENT
            sent_at = unix_seconds(message.get("sentAt")) if sent and message else None
            self._planner.settle(decision.instance, decision.message_id, sent_at)
            self.poke()
            return
        # The sender's own claim decides whether a `sending` one really went.
        log.warning("no outcome yet; dispatch published again", message_id=decision.message_id)
        await hand_to_sender(self._replica.broker, message)
