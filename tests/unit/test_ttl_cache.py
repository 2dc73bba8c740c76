"""What a process keeps of its store reads: lapsing, forgetting, one read per miss, reading
again ahead of the lapse."""

import asyncio

import pytest

from lanegate.ttl_cache import TtlCache


class Reads:
    """A read of the store that answers when let go, counting how often it ran."""

    def __init__(self, value: int | None) -> None:
        self.value = value
        self.count = 0
        self.go = asyncio.Event()

    async def __call__(self) -> int | None:
        self.count += 1
        await self.go.wait()
        return self.value


async def _turns() -> None:
    """Let the background read run and its answer arrive."""
    for _ in range(3):
        await asyncio.sleep(0)


async def test_callers_that_miss_together_share_one_read_and_keep_its_answer() -> None:
    recent: TtlCache[str, int] = TtlCache(ttl=60)
    read = Reads(7)
    callers = [asyncio.create_task(recent.read_through("k", read)) for _ in range(5)]
    await asyncio.sleep(0)
    read.go.set()
    assert [7] * 5 == await asyncio.gather(*callers)
    assert 7 == await recent.read_through("k", read)
    assert 1 == read.count


async def test_nothing_found_is_not_kept() -> None:
    recent: TtlCache[str, int] = TtlCache(ttl=60)
    read = Reads(None)
    read.go.set()
    assert await recent.read_through("k", read) is None
    assert await recent.read_through("k", read) is None
    assert 2 == read.count


async def test_a_read_under_way_when_forgotten_is_not_kept() -> None:
    recent: TtlCache[str, int] = TtlCache(ttl=60)
    stale = Reads(1)
    caller = asyncio.create_task(recent.read_through("k", stale))
    await asyncio.sleep(0)
    recent.forget("k")  # this process changed it while the read ran
    stale.go.set()
    assert 1 == await caller  # that caller asked before the change
    fresh = Reads(2)
    fresh.go.set()
    assert 2 == await recent.read_through("k", fresh)


async def test_a_caller_gone_does_not_cancel_the_others_read() -> None:
    recent: TtlCache[str, int] = TtlCache(ttl=60)
    read = Reads(3)
    gone = asyncio.create_task(recent.read_through("k", read))
    staying = asyncio.create_task(recent.read_through("k", read))
    await asyncio.sleep(0)
    gone.cancel()
    read.go.set()
    assert 3 == await staying
    with pytest.raises(asyncio.CancelledError):
        await gone


async def test_values_lapse_after_the_ttl_and_a_ttl_of_0_keeps_nothing() -> None:
    lapsing: TtlCache[str, int] = TtlCache(ttl=0.05)
    lapsing.put("k", 1)
    assert 1 == lapsing.get("k")
    await asyncio.sleep(0.1)
    assert lapsing.get("k") is None
    unkept: TtlCache[str, int] = TtlCache(ttl=0)
    unkept.put("k", 1)
    assert unkept.get("k") is None


async def test_a_value_past_half_its_ttl_is_given_at_once_and_read_again_meanwhile() -> None:
    recent: TtlCache[str, int] = TtlCache(ttl=2)
    recent.put("k", 1)
    early = Reads(2)
    assert 1 == await recent.read_through("k", early)
    await _turns()
    assert 0 == early.count  # younger than half its ttl: no read
    await asyncio.sleep(1.1)
    again = Reads(2)
    # Given without waiting for the read, which is still held back.
    assert [1, 1] == [await recent.read_through("k", again) for _ in range(2)]
    await _turns()
    assert 1 == again.count
    again.go.set()
    await _turns()
    assert 2 == recent.get("k")


async def test_a_value_read_again_and_found_gone_is_dropped() -> None:
    recent: TtlCache[str, int] = TtlCache(ttl=2)
    recent.put("k", 1)
    await asyncio.sleep(1.1)
    gone = Reads(None)
    gone.go.set()
    assert 1 == await recent.read_through("k", gone)
    await _turns()
    assert recent.get("k") is None


def test_the_oldest_read_goes_first_beyond_most() -> None:
    recent: TtlCache[str, int] = TtlCache(ttl=60, max_entries=2)
    for n, key in enumerate("abc"):
        recent.put(key, n)
    assert (None, 1, 2) == (recent.get("a"), recent.get("b"), recent.get("c"))
    recent.forget_where(lambda _, value: value == 1)
    assert recent.get("b") is None and recent.get("c") == 2
