"""The scheduling loop: own shards, rebuild their lines, hand out messages as the planner allows.

A dispatch is three steps: on an anti-ban line, write the instance's cap usage
under the shard's epoch (so a replica that lost the shard cannot send, and a
crash after the claim cannot leave a send uncounted; Cloud API lines are paced
by throughput and skip it), claim the message `pending ->
dispatching` (a conditional update, so no message goes twice), then publish
`message.dispatch`. A message whose claim fails was canceled or expired
meanwhile and uses no slot, unless it is on its way already (withdrawn
through provider-sender): then the line waits for its outcome.
"""

import asyncio
import contextlib
import random
import time
from collections.abc import Awaitable, Coroutine, Iterable
from datetime import UTC, datetime
from typing import Any

import structlog

from lane_scheduler.ledger import Ledger
from lane_scheduler.loading import MESSAGE_FIELDS, Found, Loader, seconds
from lane_scheduler.metrics import (
    DECISION_SECONDS,
    INSTANCES,
    LANE_CAP_USED,
    OWNED_INSTANCES,
    QUEUE_DEPTH,
    SHARDS_LOADING,
)
from lane_scheduler.ownership import Changes, Clock, Ownership, shard_of
from lane_scheduler.planner import Decision, Line, Pause, Planner
from lane_scheduler.routing import Router
from lane_scheduler.usage import local_date
from lanegate.broker import Broker, Retry
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
    expired,
)
from lanegate.lanes import LANES
from lanegate.lifecycle import (
    HANDED_BACK,
    HANDED_OVER,
    SEND_OUTCOMES,
    Status,
    claim_for_dispatch,
    end_waiting,
    hand_to_sender,
)
from lanegate.store import Document, Store

log = structlog.get_logger(__name__)

IDLE_WAKEUP_SECONDS = 1.0
BALANCE_EVERY_SECONDS = 1.0
RENEW_EVERY_SECONDS = 1.0  # at most: a quarter of the lease when that is shorter
STALE_CHECK_EVERY_SECONDS = 1.0
EXPORT_EVERY_SECONDS = 1.0
CONCURRENT_DISPATCHES = 64
CLAIM_FIELDS = {
    "tenantId": 1,
    "instanceName": 1,
    "lane": 1,
    "priority": 1,
    "queuedAt": 1,
    "scheduledAt": 1,
    "validUntil": 1,
    "to": 1,
}


def _at(value: float) -> datetime:
    return datetime.fromtimestamp(value, UTC)


class Scheduler:
    """One replica: ownership, the planner, event handling and the dispatch loop."""

    def __init__(
        self,
        store: Store,
        broker: Broker,
        *,
        replica: str,
        dispatch_timeout: float,
        lease_seconds: float,
        clock: Clock = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self._store = store
        self._broker = broker
        self._clock = clock
        self._dispatch_timeout = dispatch_timeout
        self.planner = Planner(rng)
        self.ownership = Ownership(store, replica, clock, lease_seconds=lease_seconds)
        self._ledger = Ledger(store)
        self._loader = Loader(store, self._ledger, self.planner)
        self.router = Router(broker, self.ownership, self.handle)
        # Shards whose load is under way, with the events that arrived for them meanwhile.
        self._loading: dict[int, list[AnyEvent]] = {}
        self._renewed = asyncio.Event()  # set, and replaced, after every renewal
        self._passes = 0
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._slots = asyncio.Semaphore(CONCURRENT_DISPATCHES)
        self._last_stale_check = 0.0
        self._last_export = 0.0
        self._events_lost = False
        self._loads: set[asyncio.Task[None]] = set()
        self._load_lock = asyncio.Lock()
        self._claiming: set[str] = set()  # decided, claim not answered: still `pending`
        self._instance_loads: dict[str, asyncio.Future[Found]] = {}

    async def start(self) -> None:
        """Prepare the leases and this replica's queue and take its shards (so events find
        their owner), then load and schedule in the background: a replica is ready once
        connected, however much its shards hold."""
        await self.ownership.prepare()
        await self.router.start()
        self._broker.connection.reconnect_callbacks.add(self._reconnected)
        await self._ownership_pass()
        self._tasks = [
            asyncio.create_task(self._loop(), name="scheduler-loop"),
            asyncio.create_task(self._balance_loop(), name="scheduler-ownership"),
            asyncio.create_task(self._keep_loop(), name="scheduler-leases"),
        ]

    async def stop(self, *, release: bool = True) -> None:
        """Stop the loops; by default give the shards back so another replica takes them now."""
        tasks = [*self._tasks, *self._loads]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        if release:
            with contextlib.suppress(Exception):
                await self.ownership.release_all()
        with contextlib.suppress(KeyError, RuntimeError):
            self._broker.connection.reconnect_callbacks.remove(self._reconnected)
        await self.router.stop()

    def loaded(self) -> bool:
        """Whether an ownership pass ran since start and no shard it took is loading."""
        return self._passes > 0 and not self._loading

    def poke(self) -> None:
        """Look at the plan now (after an event, or after a test moved its clock)."""
        self._wake.set()

    # --- ownership ---

    async def balance(self) -> None:
        """One ownership pass, and the loading it started (at start, and in tests)."""
        await self._ownership_pass()
        while self._loads:
            await asyncio.gather(*self._loads)

    async def _ownership_pass(self) -> None:
        """Renew, then release and claim (at start, and in tests)."""
        changes = await self.ownership.balance()
        self._was_renewed()
        self._took(changes)

    def _was_renewed(self) -> None:
        renewed, self._renewed = self._renewed, asyncio.Event()
        renewed.set()

    def _took(self, changes: Changes) -> None:
        """Drop lost shards and start loading gained ones in the background: a slow load
        (a whole replica's shards on a loaded store) never holds back the next renewal."""
        self._passes += 1
        for shard in changes.lost:
            self._drop_shard(shard)
        if changes.gained:
            for shard in changes.gained:
                # Planned under an earlier claim (lost, then taken again): its lines would be
                # sent under the new epoch before the new load stamps it, and be fenced out.
                self._forget_lines(shard)
            held: dict[int, list[AnyEvent]] = {shard: [] for shard in changes.gained}
            self._loading.update(held)
            SHARDS_LOADING.set(len(self._loading))
            self._background(self._load_shards(changes.gained, held))
        if self._events_lost:
            self._events_lost = False
            self._background(self._load_missing())

    def _background(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._loads.add(task)
        task.add_done_callback(self._loads.discard)

    async def _load_shards(self, gained: dict[int, int], held: dict[int, list[AnyEvent]]) -> None:
        orphans: list[Document] = []
        started = time.monotonic()
        try:
            async with self._load_lock:
                orphans = await self._loader.shards(
                    gained, self._clock(), lambda: self._leases_first(set(gained))
                )
                # Lost, or claimed again, while loading: none of their lines is planned here.
                for shard, epoch in gained.items():
                    if self.ownership.epochs.get(shard) != epoch:
                        self._forget_lines(shard)
        except BaseException as e:
            for shard, events in held.items():
                if self._loading.get(shard) is events:
                    del self._loading[shard]  # the store has what they said
            SHARDS_LOADING.set(len(self._loading))
            if not isinstance(e, Exception):
                raise
            # Held but not loaded, their waiting messages would never be planned: let them
            # go, so the next pass claims and loads them again.
            log.exception("loading shards failed; they are claimed again", error=repr(e))
            for shard, epoch in gained.items():
                if self.ownership.epochs.get(shard) == epoch:
                    self._drop_shard(shard)
            return
        log.info(
            "shards ready", shards=sorted(gained), seconds=round(time.monotonic() - started, 2)
        )
        self.poke()
        await self._fold_held(held)
        try:
            await self._end_orphans(orphans)
        except Exception as e:
            log.warning("ending messages of deleted instances failed", error=repr(e))

    async def _leases_first(self, shards: set[int]) -> None:
        """Between the steps of a load: while a lease being loaded runs low, wait (at most one
        lease) for the next renewal, so a load on a slow store never outruns the renewals."""
        if self.ownership.running_low(shards):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._renewed.wait(), timeout=self.ownership.lease_seconds)

    async def _fold_held(self, held: dict[int, list[AnyEvent]]) -> None:
        """Fold in, oldest first, the events that arrived while their shard loaded (and those
        arriving meanwhile); then the shard's events are handled as they come."""
        for shard, events in held.items():
            newer = self._loading.get(shard)
            if newer is not None and newer is not events:
                newer[:0] = events  # claimed again meanwhile: folded in after that load
                continue
            while events:
                event = events.pop(0)
                try:
                    await self._apply(event)
                except Retry:
                    pass  # the instance moved on: its new owner reads it from the store
                except Exception as e:
                    # Acknowledged when held: what it said is in the store, read again.
                    log.warning("held event not applied; read again", error=repr(e))
                    self._events_lost = True
            if self._loading.get(shard) is events:
                del self._loading[shard]
        SHARDS_LOADING.set(len(self._loading))
        self.poke()

    async def _load_missing(self) -> None:
        try:
            async with self._load_lock:
                found = await self._loader.missing(self.planner.names(), self._clock())
        except Exception as e:
            log.warning("looking for lost events failed; tried again", error=repr(e))
            self._events_lost = True
            return
        self._drop_unowned()
        if found:
            log.warning("messages whose events were lost found in the store", count=found)
            self.poke()

    def _reconnected(self, _: object) -> None:
        # Events forwarded to this replica's private queue went with the old connection.
        self._events_lost = True

    async def _balance_loop(self) -> None:
        while True:
            await asyncio.sleep(BALANCE_EVERY_SECONDS)
            try:
                self._took(await self.ownership.rebalance())
            except asyncio.CancelledError:
                raise
            except Exception as e:
                log.exception("ownership pass failed", error=repr(e))
            self._drop_unowned()

    async def _keep_loop(self) -> None:
        """Renew the leases on a cadence of their own: the pass that reads the others' and
        claims takes several round trips, which on a slow store would outlast a lease."""
        every = min(RENEW_EVERY_SECONDS, self.ownership.lease_seconds / 4)
        while True:
            started = time.monotonic()
            try:
                lost = await self.ownership.keep()
            except asyncio.CancelledError:
                raise
            except Exception as e:
                log.warning("lease renewal failed", error=repr(e))
            else:
                self._was_renewed()
                for shard in lost:
                    self._drop_shard(shard)
            await asyncio.sleep(max(0.0, every - (time.monotonic() - started)))

    def _drop_unowned(self) -> None:
        """Forget lines whose shard this replica no longer holds (lost while a load ran)."""
        for shard in {shard_of(name) for name in self.planner.names()}:
            if shard not in self.ownership.epochs:
                self._drop_shard(shard)

    def _drop_shard(self, shard: int) -> None:
        self.ownership.forget(shard)
        self._forget_lines(shard)

    def _forget_lines(self, shard: int) -> None:
        for name in self.planner.names():
            if shard_of(name) == shard:
                self._forget(name)

    def _forget(self, name: str) -> None:
        self.planner.drop(name)
        for lane in LANES:
            with contextlib.suppress(KeyError):
                LANE_CAP_USED.remove(name, lane)

    # --- events ---

    async def handle(self, event: AnyEvent) -> None:
        """Fold an owned instance's event into the plan and wake the loop; while its shard
        loads, the event is held and folded in after the load, so it never waits on it."""
        shard = shard_of(event.instanceName)
        held = self._loading.get(shard)
        if held is not None:
            held.append(event)
            return
        if self.ownership.holds(event.instanceName):
            # Ours with the renewal late (a slow store): wait for it, not round the queue.
            await self._leases_first({shard})
        await self._apply(event)

    async def _apply(self, event: AnyEvent) -> None:
        name = event.instanceName
        epoch = self.ownership.epoch(name)
        if epoch is None:
            raise Retry(after=1, reason="the instance moved to another replica", counted=False)
        if name not in self.planner:
            found = await self._load_instance(name, epoch)
            if found == "loaded" and name not in self.planner:
                # Dropped while this event waited on the load: its shard moved, or the
                # delete's announcement, handled meanwhile, found the instance gone.
                if self.ownership.epoch(name) is None:
                    raise Retry(
                        after=1, reason="the instance moved to another replica", counted=False
                    )
                found = "missing"
            if found == "missing" and isinstance(event, MessageAccepted | MessageHandedBack):
                await self._orphaned(name, event.messageId)
                return
            if found != "loaded":
                log.info("event for an unknown instance ignored", event_kind=event.kind)
                return
        if isinstance(event, MessageAccepted | MessageHandedBack):
            if await self._current(event):
                self._accepted(event)
        elif isinstance(event, MessageStatus):
            if event.status in SEND_OUTCOMES:
                sent_at = event.occurredAt.timestamp() if event.status == "sent" else None
                self.planner.settle(name, event.messageId, sent_at)
        elif isinstance(event, InstanceState):
            self.planner.set_state(name, event.state, event.occurredAt.timestamp())
        elif isinstance(event, InstancePaused) and event.scope == "instance":
            until = event.until.timestamp() if event.until else None
            pause = Pause(event.occurredAt.timestamp(), until, event.reason, event.by)
            self.planner.pause(name, pause)
            log.warning("instance paused", reason=event.reason, until=event.until, by=event.by)
        elif isinstance(event, InstanceResumed):
            self.planner.resume(name)
            log.info("instance resumed")
        elif isinstance(event, InstanceConfigured):
            if not await self._loader.reconfigure(name):
                await self._deleted(name)
        elif isinstance(event, MessageCanceled | MessageExpired):
            # Waiting, it is forgotten; withdrawn through provider-sender, its line goes on.
            self.planner.remove(name, event.messageId)
            self.planner.settle(name, event.messageId, None)
        self.poke()

    async def _load_instance(self, name: str, epoch: int) -> Found:
        """Load an instance not planned yet; its events that arrive meanwhile share the load.

        Each of them then sees what the load saw: an `instance.configured` sent after a
        delete, arriving while an earlier event loads the instance as it was, finds the
        document gone when it reloads the settings and drops the line; had it loaded on
        its own, it would have found nothing to drop, and the earlier event's load would
        have left a line behind for a deleted instance.
        """
        loading = self._instance_loads.get(name)
        if loading is None:
            loading = asyncio.ensure_future(self._loader.instance(name, epoch))
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
        if not self.planner.in_flight(event.instanceName, event.messageId):
            return True
        if event.messageId in self._claiming:
            return False
        message = await self._store.messages.find_one({"_id": event.messageId}, {"status": 1})
        return message is not None and message["status"] in HANDED_BACK

    def _accepted(self, event: MessageAccepted | MessageHandedBack) -> None:
        valid_until = event.validUntil.timestamp() if event.validUntil else None
        if isinstance(event, MessageAccepted) and event.awaitingApproval:
            if valid_until is not None:
                self.planner.hold(event.instanceName, event.messageId, valid_until)
            return
        cloud = self.planner.line(event.instanceName).pacing.throughput is not None
        self.planner.add(
            event.instanceName,
            event.messageId,
            event.lane,
            event.priority,
            event.occurredAt.timestamp(),
            scheduled_at=event.scheduledAt.timestamp() if event.scheduledAt else None,
            valid_until=valid_until,
            to=event.to if cloud else None,
        )

    # --- the loop ---

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
            wakeup = self.planner.next_wakeup()
            timeout = IDLE_WAKEUP_SECONDS
            if wakeup is not None:
                timeout = min(timeout, max(0.0, wakeup - self._clock()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=timeout)

    async def tick(self) -> None:
        """One pass: expire what is past its validUntil, dispatch what may go now."""
        now = self._clock()
        started = time.perf_counter()
        expired = self.planner.expired(now)
        decisions = self.planner.due(now)
        DECISION_SECONDS.observe(time.perf_counter() - started)
        await self._each(self._expire(name, message_id) for name, message_id in expired)
        await self._each(self._dispatch(decision) for decision in decisions)
        if now - self._last_stale_check >= STALE_CHECK_EVERY_SECONDS:
            self._last_stale_check = now
            stale = self.planner.stale(now, self._dispatch_timeout)
            await self._each(self._redispatch(decision) for decision in stale)
        if now - self._last_export >= EXPORT_EVERY_SECONDS:
            self._last_export = now
            self._export()

    async def _each(self, work: Iterable[Awaitable[None]]) -> None:
        async def bounded(step: Awaitable[None]) -> None:
            async with self._slots:
                await step

        # Shielded: a dispatch half done when the loop is cancelled still finishes.
        await asyncio.gather(*(asyncio.shield(bounded(step)) for step in work))

    async def _dispatch(self, decision: Decision) -> None:
        """Count, claim and hand over one decided message (see the module docstring)."""
        name = decision.instance
        self._claiming.add(decision.message_id)
        try:
            epoch = self.ownership.epoch(name)
            if epoch is None:
                # The lease is not ours right now (a late renewal, the store away): the
                # message goes back in its line to be decided again. Should this read fail,
                # it stays in flight and the stale check plans it again.
                await self._replan(decision)
                return
            line = self.planner.line(name)
            if line.pacing.throughput is None:
                # Counted in the store before the claim, so a crash between the two can only
                # count a send that never went (holding the lane back), never miss one that
                # did.
                if not await self._ledger.reserve(
                    name, epoch, line.usage, decision.at, decision.message_id
                ):
                    log.warning("fenced out of the instance's shard", instance=name)
                    self._drop_shard(shard_of(name))  # the new owner has the message, pending
                    return
                self._export_caps(name, line, decision)
            # A claim that fails with the store away leaves the message in flight: the stale
            # check finds it still pending and plans it again.
            claimed = await claim_for_dispatch(
                self._store, decision.message_id, _at(decision.at), CLAIM_FIELDS
            )
        finally:
            # From here the store tells a hand-back from a late copy (see `_current`).
            self._claiming.discard(decision.message_id)
        if claimed is None:
            self.planner.undo(decision)  # the store keeps the count until the next reserve
            await self._follow(decision)
            self.poke()
            return
        await hand_to_sender(self._broker, claimed)
        log.info("dispatched", message_id=decision.message_id, instance=name, lane=decision.lane)

    async def _follow(self, decision: Decision) -> None:
        """After a failed claim: a message already on its way (withdrawn through
        provider-sender by a flush) holds its line until its outcome, as a send does, and is
        published again by the stale check should that dispatch have been lost."""
        message = await self._store.messages.find_one({"_id": decision.message_id}, {"status": 1})
        on_its_way = message is not None and message["status"] in HANDED_OVER
        if on_its_way and decision.instance in self.planner:
            self.planner.mark_in_flight(decision.instance, decision.message_id, self._clock())

    async def _replan(self, decision: Decision) -> None:
        """Put a decided but unclaimed message back in its line, as stored."""
        message = await self._store.messages.find_one({"_id": decision.message_id}, MESSAGE_FIELDS)
        self.planner.undo(decision)
        if message is not None and message["status"] == Status.PENDING:
            self._loader.add(message, self._clock())
        self.poke()

    async def _expire(self, name: str, message_id: str) -> None:
        # Tried before, it may be on the phone: provider-sender asks the provider first.
        now = _at(self._clock())
        due = {"_id": message_id, "validUntil": {"$lte": now}}
        ended = await end_waiting(self._store, self._broker, due, Status.EXPIRED, now, expired)
        if ended == "ended":
            log.info("message expired", message_id=message_id, instance=name)
        elif ended == "withdrawn":
            log.info("tried message past its validUntil withdrawn", message_id=message_id)

    async def _deleted(self, name: str) -> None:
        """Forget a deleted instance's line, ending the messages accepted for it while the
        delete ran (those the delete found, it canceled itself)."""
        self._forget(name)
        await self._end_orphans(await self._loader.orphans([name]))

    async def _end_orphans(self, orphans: list[Document]) -> None:
        await self._each(self._orphaned(m["instanceName"], m["_id"]) for m in orphans)

    async def _orphaned(self, name: str, message_id: str) -> None:
        """End a message accepted for an instance deleted meanwhile as the delete ended its
        others (`clear_waiting`): `canceled` if never tried, else withdrawn through
        provider-sender. One on its way or already ended is left to its outcome."""
        match = {"_id": message_id, "instanceName": name}
        now = _at(self._clock())
        ended = await end_waiting(
            self._store,
            self._broker,
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

    async def _redispatch(self, decision: Decision) -> None:
        message = await self._store.messages.find_one(
            {"_id": decision.message_id}, {**MESSAGE_FIELDS, "tenantId": 1, "sentAt": 1}
        )
        if message is not None and message["status"] == Status.PENDING:
            # Never claimed (the store failed under the claim): plan it again. Its slot
            # stays counted, which can only hold the lane back, never exceed a cap.
            self.planner.settle(decision.instance, decision.message_id, None)
            self._loader.add(message, self._clock())
            self.poke()
            return
        if message is None or message["status"] not in HANDED_OVER:
            sent = message is not None and message["status"] == Status.SENT
            sent_at = seconds(message.get("sentAt")) if sent and message else None
            self.planner.settle(decision.instance, decision.message_id, sent_at)
            self.poke()
            return
        # The sender's own claim decides whether a `sending` one really went.
        log.warning("no outcome yet; dispatch published again", message_id=decision.message_id)
        await hand_to_sender(self._broker, message)

    # --- metrics ---

    def _export_caps(self, name: str, line: Line, decision: Decision) -> None:
        policy = line.pacing.lanes[decision.lane]
        usage = line.usage
        ratios = []
        if policy.per_hour:
            ratios.append(len(usage.hour.get(decision.lane, ())) / policy.per_hour)
        if policy.per_day:
            today = local_date(decision.at, line.pacing.timezone).isoformat()
            used = usage.day_counts.get(decision.lane, 0) if usage.day == today else 0
            ratios.append(used / policy.per_day)
        if ratios:
            LANE_CAP_USED.labels(name, decision.lane).set(max(ratios))

    def _export(self) -> None:
        depth = self.planner.depth()
        for lane in LANES:
            QUEUE_DEPTH.labels(lane).set(depth[lane])
        states = self.planner.states()
        for state in ("open", "connecting", "close"):
            INSTANCES.labels(state).set(states[state])
        OWNED_INSTANCES.set(len(self.planner))
