"""The webhook backlog as the store holds it, counted in the background for the gauges."""

import asyncio

import structlog

from webhook_dispatcher.metrics import DELIVERIES_DUE, DELIVERIES_RETRYING
from webhook_dispatcher.records import Records

log = structlog.get_logger(__name__)


async def export_backlog(records: Records) -> None:
    """Set the due and retrying gauges from one count in the store."""
    due, retrying = await records.backlog()
    DELIVERIES_DUE.set(due)
    DELIVERIES_RETRYING.set(retrying)


async def count_backlog(records: Records, *, interval: float) -> None:
    """Set the gauges every `interval` seconds until cancelled."""
    while True:
        try:
            await export_backlog(records)
        except Exception as e:
            # The gauges keep their last counts; lanegate_dependency_up tells the store is away.
            log.warning("counting the webhook backlog failed", error=repr(e))
        await asyncio.sleep(interval)
