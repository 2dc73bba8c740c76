"""One scheduler replica: its shards, the event intake and the dispatch loop around the
pure planner."""

import contextlib
import random
import time

from lane_scheduler.clock import Clock
from lane_scheduler.dispatch_loop import DispatchLoop
from lane_scheduler.intake import Intake
from lane_scheduler.ledger import Ledger
from lane_scheduler.loading import Loader
from lane_scheduler.ownership import Ownership
from lane_scheduler.planner import Planner
from lane_scheduler.replica import Replica
from lane_scheduler.routing import Router
from lane_scheduler.shards import Shards
from lanegate.broker import Broker
from lanegate.events import AnyEvent
from lanegate.store import Store


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
        self._broker = broker
        self.planner = Planner(rng)
        self.ownership = Ownership(store, replica, clock, lease_seconds=lease_seconds)
        ledger = Ledger(store)
        loader = Loader(store, ledger, self.planner)
        parts = Replica(store, broker, clock, self.planner, self.ownership, ledger, loader)
        self._dispatching = DispatchLoop(parts, dispatch_timeout=dispatch_timeout)
        self._intake = Intake(
            parts, claiming=self._dispatching.claiming, poke=self._dispatching.poke
        )
        self._shards = Shards(
            parts,
            apply=self._intake.apply,
            end_orphans=self._intake.end_orphans,
            poke=self._dispatching.poke,
        )
        self.router = Router(broker, self.ownership, self.handle)

    async def start(self) -> None:
        """Prepare the leases and this replica's queue and take its shards (so events find
        their owner), then load and schedule in the background: a replica is ready once
        connected, however much its shards hold."""
        await self.ownership.prepare()
        await self.router.start()
        self._broker.connection.reconnect_callbacks.add(self._shards.reconnected)
        await self._shards.start()
        self._dispatching.start()

    async def stop(self, *, release: bool = True) -> None:
        """Stop the loops; by default give the shards back so another replica takes them now."""
        await self._dispatching.stop()
        await self._shards.stop(release=release)
        with contextlib.suppress(KeyError, RuntimeError):
            self._broker.connection.reconnect_callbacks.remove(self._shards.reconnected)
        await self.router.stop()

    def loaded(self) -> bool:
        """Whether an ownership pass ran since start and no shard it took is loading."""
        return self._shards.loaded()

    def poke(self) -> None:
        """Look at the plan now (after an event, or after a test moved its clock)."""
        self._dispatching.poke()

    async def balance(self) -> None:
        """One ownership pass, and the loading it started (at start, and in tests)."""
        await self._shards.balance()

    async def tick(self) -> None:
        """One pass of the dispatch loop (in tests)."""
        await self._dispatching.tick()

    async def handle(self, event: AnyEvent) -> None:
        """Fold an owned instance's event into the plan and wake the loop; while its shard
        loads, the event is held and folded in after the load, so it never waits on it."""
        if self._shards.hold_if_loading(event):
            return
        await self._shards.renewed_for(event.instanceName)
        await self._intake.apply(event)
