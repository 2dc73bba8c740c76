"""The rate limiter's blocks against the real store: never over the limit, few round trips."""

import asyncio
import time

import pytest

from ingress_api.accept.rate_limit import WINDOW_SECONDS, RateLimiter
from lanegate.store import Store
from tests.support.counting import CountsReservations

pytestmark = pytest.mark.e2e


def _mid_window() -> float:
    """A time in the middle of the current window, so a test's requests share one window."""
    window = int(time.time()) // WINDOW_SECONDS
    return window * WINDOW_SECONDS + WINDOW_SECONDS / 2


class CountingLimiter(CountsReservations, RateLimiter):
    """A limiter that counts its store round trips."""


async def test_two_replicas_admit_exactly_the_limit_in_few_round_trips(store: Store) -> None:
    replicas = [CountingLimiter(), CountingLimiter()]
    now = _mid_window()
    answers = [await replicas[n % 2].admit(store, "key", 200, now) for n in range(260)]

    assert [True] * 200 + [False] * 60 == [ok for ok, _ in answers]
    assert [0] * 60 == [quota.remaining for _, quota in answers[200:]]
    # Blocks of requests, shrinking to one near the limit: a few dozen round trips, not 200.
    assert sum(r.reservations for r in replicas) < 60


async def test_one_replica_reports_exactly_what_is_left(store: Store) -> None:
    limiter = RateLimiter()
    now = _mid_window()
    remaining = [(await limiter.admit(store, "key", 600, now))[1].remaining for _ in range(5)]
    assert [599, 598, 597, 596, 595] == remaining


async def test_a_replica_that_answers_remaining_0_admits_nothing_more(store: Store) -> None:
    # A's block is taken while B has pushed the counter near the limit: A's count as last
    # read is then past it, and what A still holds must not be hidden behind a 0.
    a, b = RateLimiter(), RateLimiter()
    now = _mid_window()
    answers = [("a", await a.admit(store, "key", 100, now))]
    answers += [("b", await b.admit(store, "key", 100, now)) for _ in range(85)]
    for name, limiter in (("a", a), ("b", b)):
        answers += [(name, await limiter.admit(store, "key", 100, now)) for _ in range(40)]

    assert 100 == sum(1 for _, (ok, _) in answers if ok)
    for replica in ("a", "b"):
        mine = [(ok, quota.remaining) for name, (ok, quota) in answers if name == replica]
        zeros = [n for n, (ok, left) in enumerate(mine) if ok and left == 0]
        assert [] == [n for n, (ok, _) in enumerate(mine) if ok and zeros and n > zeros[0]]


async def test_a_request_that_waited_across_a_window_change_counts_in_the_new_window(
    store: Store,
) -> None:
    # The first request reserves while the second waits for it; the third opens the next window.
    limiter = RateLimiter()
    now = _mid_window()
    first, waited, _ = await asyncio.gather(
        limiter.admit(store, "key", 100, now),
        limiter.admit(store, "key", 100, now),
        limiter.admit(store, "key", 100, now + WINDOW_SECONDS),
    )
    window = int(now) // WINDOW_SECONDS
    assert ((window + 1) * WINDOW_SECONDS, (window + 2) * WINDOW_SECONDS) == (
        first[1].reset,
        waited[1].reset,
    )
