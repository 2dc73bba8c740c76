"""What the parts of one scheduler replica share: its store, broker, clock, plan and leases."""

import asyncio
from collections.abc import Awaitable, Iterable
from dataclasses import dataclass, field

from lane_scheduler.clock import Clock
from lane_scheduler.ledger import Ledger
from lane_scheduler.loading import Loader
from lane_scheduler.ownership import Ownership
from lane_scheduler.planner import Planner
from lanegate.broker import Broker
from lanegate.store import Store

CONCURRENT_STEPS = 64


class Slots:
    """Runs store-and-broker steps a bounded number at a time."""

    def __init__(self, size: int = CONCURRENT_STEPS) -> None:
        self._semaphore = asyncio.Semaphore(size)

    async def run(self, work: Iterable[Awaitable[None]]) -> None:
        """Run every step, each finished even when the caller is cancelled halfway."""

        async def bounded(step: Awaitable[None]) -> None:
            async with self._semaphore:
                await step

        # Shielded: a dispatch half done when the loop is cancelled still finishes.
        await asyncio.gather(*(asyncio.shield(bounded(step)) for step in work))


@dataclass(frozen=True)
class Replica:
    """One replica's store and broker, its clock, planner and leases, and how it loads."""

    store: Store
    broker: Broker
    clock: Clock
    planner: Planner
    ownership: Ownership
    ledger: Ledger
    loader: Loader
    # Dispatches and the ending of orphaned messages share one bound.
    slots: Slots = field(default_factory=Slots)
