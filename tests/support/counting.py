"""Block counters that count their store round trips, for the tests of what they cost."""

from typing import Any

from ingress_api.accept.counter_blocks import BlockCounter


class CountsReservations(BlockCounter):
    """Put first among a block counter's bases: it counts each reservation from the store."""

    reservations = 0

    async def _reserve(self, *args: Any) -> None:
        self.reservations += 1
        await super()._reserve(*args)
