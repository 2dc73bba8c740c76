"""This replica's shards: leases kept and balanced on loops of their own, gained shards read
from the store (their events held meanwhile), lost shards dropped from the plan."""

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import structlog

from lane_scheduler.metrics import SHARDS_LOADING, forget_cap_use
from lane_scheduler.ownership import Changes, Ownership, shard_of
from lane_scheduler.planner import Planner
from lane_scheduler.replica import Replica
from lanegate.broker import Retry
from lanegate.events import AnyEvent
from lanegate.store import Document

log = structlog.get_logger(__name__)

BALANCE_EVERY_SECONDS = 1.0
RENEW_EVERY_SECONDS = 1.0  # at most: a quarter of the lease when that is shorter

# Folds one event into the plan (raises `Retry` when its instance moved to another replica).
ApplyEvent = Callable[[AnyEvent], Awaitable[None]]
# Ends the messages still waiting for instances deleted meanwhile.
EndOrphans = Callable[[list[Document]], Awaitable[None]]


def drop_instance(planner: Planner, name: str) -> None:
    """Forget an instance's queue and stop exporting its cap use."""
    planner.drop(name)
    forget_cap_use(name)


def drop_shard(ownership: Ownership, planner: Planner, shard: int) -> None:
    """Stop treating a shard as ours and forget the queues of its instances."""
    ownership.forget(shard)
    forget_queues(planner, shard)


def forget_queues(planner: Planner, shard: int) -> None:
    """Forget the queues of a shard's instances."""
    for name in planner.names():
        if shard_of(name) == shard:
            drop_instance(planner, name)


class Shards:
    """Keeps this replica's leases, loads the shards it gains and drops the ones it loses."""

    def __init__(
        self,
        replica: Replica,
        *,
        apply: ApplyEvent,
        end_orphans: EndOrphans,
        poke: Callable[[], None],
    ) -> None:
        self._replica = replica
        self._ownership = replica.ownership
        self._planner = replica.planner
        self._apply = apply
        self._end_orphans = end_orphans
        self._poke = poke
        # Shards whose load is under way, with the events that arrived for them meanwhile.
        self._loading: dict[int, list[AnyEvent]] = {}
        self._renewed = asyncio.Event()  # set, and replaced, after every renewal
        self._passes = 0
        self._events_lost = False
        self._tasks: list[asyncio.Task[None]] = []
        self._loads: set[asyncio.Task[None]] = set()
        self._load_lock = asyncio.Lock()

    async def start(self) -> None:
        """Take this replica's shards now (so events find their owner), then keep and balance
        the leases on loops of their own."""
        await self._ownership_pass()
        self._tasks = [
            asyncio.create_task(self._balance_loop(), name="scheduler-ownership"),
            asyncio.create_task(self._keep_loop(), name="scheduler-leases"),
        ]

    async def stop(self, *, release: bool) -> None:
        """Stop the loops and the loads; when asked, give the shards back."""
        tasks = [*self._tasks, *self._loads]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        if release:
            with contextlib.suppress(Exception):
                await self._ownership.release_all()

    def loaded(self) -> bool:
        """Whether an ownership pass ran since start and no shard it took is loading."""
        return self._passes > 0 and not self._loading

    async def balance(self) -> None:
        """One ownership pass, and the loading it started (at start, and in tests)."""
        await self._ownership_pass()
        while self._loads:
            await asyncio.gather(*self._loads)

    def reconnected(self, _: object) -> None:
        """Look for lost events at the next pass: those forwarded to this replica's private
        queue went with the old connection."""
        self._events_lost = True

    def hold_if_loading(self, event: AnyEvent) -> bool:
        """Keep an event whose shard is loading, to fold it in after the load (True if held)."""
        held = self._loading.get(shard_of(event.instanceName))
        if held is None:
            return False
        held.append(event)
        return True

    async def renewed_for(self, name: str) -> None:
        """For an instance whose shard is ours with its renewal late (a slow store): wait for the
        renewal, so its event does not go round the queue."""
        if self._ownership.holds(name):
            await self._leases_first({shard_of(name)})

    def drop(self, shard: int) -> None:
        """Stop planning a shard this replica was fenced out of."""
        drop_shard(self._ownership, self._planner, shard)

    async def _ownership_pass(self) -> None:
        """Renew, then release and claim (at start, and in tests)."""
        changes = await self._ownership.balance()
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
            self.drop(shard)
        if changes.gained:
            for shard in changes.gained:
                # Planned under an earlier claim (lost, then taken again): its queues would be
                # sent under the new epoch before the new load stamps it, and be fenced out.
                forget_queues(self._planner, shard)
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
                orphans = await self._replica.loader.shards(
                    gained, self._replica.clock(), lambda: self._leases_first(set(gained))
                )
                # Lost, or claimed again, while loading: none of their queues is planned here.
                for shard, epoch in gained.items():
                    if self._ownership.epochs.get(shard) != epoch:
                        forget_queues(self._planner, shard)
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
                if self._ownership.epochs.get(shard) == epoch:
                    self.drop(shard)
            return
        log.info(
            "shards ready", shards=sorted(gained), seconds=round(time.monotonic() - started, 2)
        )
        self._poke()
        await self._fold_held(held)
        try:
            await self._end_orphans(orphans)
        except Exception as e:
            log.warning("ending messages of deleted instances failed", error=repr(e))

    async def _leases_first(self, shards: set[int]) -> None:
        """Between the steps of a load: while a lease being loaded runs low, wait (at most one
        lease) for the next renewal, so a load on a slow store never outruns the renewals."""
        if self._ownership.running_low(shards):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._renewed.wait(), timeout=self._ownership.lease_seconds)

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
        self._poke()

    async def _load_missing(self) -> None:
        try:
            async with self._load_lock:
                found = await self._replica.loader.missing(
                    self._planner.names(), self._replica.clock()
                )
        except Exception as e:
            log.warning("looking for lost events failed; tried again", error=repr(e))
            self._events_lost = True
            return
        self._drop_unowned()
        if found:
            log.warning("messages whose events were lost found in the store", count=found)
            self._poke()

    async def _balance_loop(self) -> None:
        while True:
            await asyncio.sleep(BALANCE_EVERY_SECONDS)
            try:
                self._took(await self._ownership.rebalance())
            except asyncio.CancelledError:
                raise
            except Exception as e:
                log.exception("ownership pass failed", error=repr(e))
            self._drop_unowned()

    async def _keep_loop(self) -> None:
        """Renew the leases on a cadence of their own: the pass that reads the others' and
        claims takes several round trips, which on a slow store would outlast a lease."""
        every = min(RENEW_EVERY_SECONDS, self._ownership.lease_seconds / 4)
        while True:
            started = time.monotonic()
            try:
                lost = await self._ownership.keep()
            except asyncio.CancelledError:
                raise
            except Exception as e:
                log.warning("lease renewal failed", error=repr(e))
            else:
                self._was_renewed()
                for shard in lost:
                    self.drop(shard)
            await asyncio.sleep(max(0.0, every - (time.monotonic() - started)))

    def _drop_unowned(self) -> None:
        """Forget queues whose shard this replica no longer holds (lost while a load ran)."""
        for shard in {shard_of(name) for name in self._planner.names()}:
            if shard not in self._ownership.epochs:
                self.drop(shard)
