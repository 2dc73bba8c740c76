"""The retry loop: every poll interval, claim the deliveries whose next attempt is due."""

import asyncio
import contextlib

import structlog

from webhook_dispatcher.deliveries import Deliverer
from webhook_dispatcher.endpoints import Job
from webhook_dispatcher.records import Records, new_claim

log = structlog.get_logger(__name__)

BATCH = 200


class Poller:
    """Claims due deliveries and hands them to the deliverer's endpoint pool.

    Retries, first attempts whose dispatcher died, and deliveries reset for replay
    all wait in the store with a `nextAttemptAt`; this loop is what brings them
    back, on whichever dispatcher replica claims them first.
    """

    def __init__(self, records: Records, deliverer: Deliverer, *, interval: float) -> None:
        self._records = records
        self._deliverer = deliverer
        self._interval = interval
        self._task: asyncio.Task[None] | None = None

    async def tick(self) -> int:
        """Claim and queue one batch of due deliveries; returns how many were claimed."""
        pool = self._deliverer.pool
        claimed = 0
        for record in await self._records.due(BATCH, pool.full_endpoints()):
            claim = new_claim()
            taken = await self._records.claim(record, claim)
            if taken is None:
                continue  # another replica won this one
            claimed += 1
            pool.submit(Job(taken, claim, taken["nextAttemptAt"], first=False))
        return claimed

    async def _loop(self) -> None:
        while True:
            try:
                claimed = await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception as e:
                log.warning("retry poll failed", error=repr(e))
                claimed = 0
            # A full batch means more are due: go again at once instead of sleeping.
            if claimed < BATCH:
                await asyncio.sleep(self._interval)

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
