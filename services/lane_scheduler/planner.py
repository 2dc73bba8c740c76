"""Per-instance waiting queues and the pacing decision, in memory; the time is always passed in."""

import heapq
import random
from collections import Counter
from dataclasses import dataclass, field

from lanegate.holds import hold_at, pause_holds
from lanegate.lanes import DEFAULT_PACING, LANES, RANK, Pacing, Usage

# (-priority, queued_at, message_id, recipient): the heap order is the lane order.
Entry = tuple[int, float, str, str | None]
RECIPIENTS_PRUNE_AT = 10_000


@dataclass(frozen=True, slots=True)
class Pause:
    """A provider's signal that the number must stop sending (a ban, a block), or its tenant's
    pause, and until when."""

    since: float
    until: float | None
    reason: str
    by: str = "provider"  # a tenant's pause outlasts reconnects and a provider's pause

    def holds_at(self, at: float) -> bool:
        """Whether the pause is still on at `at` (it has no end, or a later one)."""
        return pause_holds(self.until, at)

    def lifted_by_connecting(self, at: float) -> bool:
        """Whether the number connecting at `at` ends this pause (a provider's, from before)."""
        return self.by == "provider" and at > self.since


@dataclass(frozen=True, slots=True)
class Decision:
    """A message cleared to go at `at`."""

    instance: str
    message_id: str
    lane: str
    at: float


@dataclass(slots=True, eq=False)
class InstanceQueue:
    """One instance: its pacing, its waiting messages and what it has sent."""

    pacing: Pacing
    state: str = "close"
    state_at: float = 0.0
    pause: Pause | None = None
    first_connected_at: float | None = None
    heaps: tuple[list[Entry], list[Entry], list[Entry]] = field(
        default_factory=lambda: ([], [], [])
    )
    scheduled: list[tuple[float, int, Entry]] = field(default_factory=list)
    waiting: dict[str, int] = field(default_factory=dict)
    held: set[str] = field(default_factory=set)
    in_flight: dict[str, float] = field(default_factory=dict)
    last_sent_at: float | None = None
    gaps: dict[int, float] = field(default_factory=dict)
    usage: Usage = field(default_factory=Usage)
    recipients: dict[str, float] = field(default_factory=dict)
    parked: list[tuple[float, int, Entry]] = field(default_factory=list)
    next_slot: float = 0.0
    timer_at: float | None = None


def _exported_state(queue: InstanceQueue, now: float) -> str:
    if queue.pause is not None and queue.pause.holds_at(now):
        return "paused"
    if queue.first_connected_at is None and queue.state != "open":
        return "never_connected"
    return queue.state


def _earliest_of(*times: float | None) -> float | None:
    present = [t for t in times if t is not None]
    return min(present) if present else None


class Planner:
    """Holds every owned instance's queue and says which messages may go at a given time.

    An instance's next message is the head of the first lane (urgent, normal,
    bulk) that has one waiting and is under its hour and day caps; within a lane,
    higher priority first, then oldest. It may go once the instance is open and
    not paused, nothing of it is in flight, and the lane's random gap since the
    last send has passed. Cloud API instances skip gaps and caps: they are paced
    by a per-number rate and a minimum gap per recipient instead.

    A heap of per-instance wake-up times means a pass only looks at instances
    whose time has come, so the cost of a decision does not grow with the number
    of instances or waiting messages. The store is the truth; this is rebuilt
    from it.
    """

    def __init__(self, rng: random.Random | None = None) -> None:
        self._queues: dict[str, InstanceQueue] = {}
        self._rng = rng or random.Random()
        self._timers: list[tuple[float, str]] = []
        self._expiries: list[tuple[float, str, str]] = []
        self._depth = [0, 0, 0]

    # --- what the store and the events tell it ---

    def queue_of(self, instance: str) -> InstanceQueue:
        """The instance's queue, created with default pacing when it is new."""
        queue = self._queues.get(instance)
        if queue is None:
            queue = self._queues[instance] = InstanceQueue(pacing=DEFAULT_PACING)
        return queue

    def configure(
        self,
        instance: str,
        *,
        pacing: Pacing,
        state: str | None = None,
        state_at: float = 0.0,
        pause: Pause | None = None,
        first_connected_at: float | None = None,
    ) -> None:
        """Set an instance's pacing and (when given) its connection state, pause and age."""
        queue = self.queue_of(instance)
        queue.pacing = pacing
        queue.gaps.clear()
        if state is not None and state_at >= queue.state_at:
            queue.state, queue.state_at = state, state_at
            pause_lifted = queue.pause is not None and queue.pause.lifted_by_connecting(state_at)
            if state == "open" and pause_lifted:
                queue.pause = None  # connected again since: as `set_state` does
        if pause is not None and not (
            queue.state == "open" and pause.lifted_by_connecting(queue.state_at)
        ):
            self.pause(instance, pause)  # a stored pause, unless it lifted since
        if first_connected_at is not None:
            queue.first_connected_at = first_connected_at
        self._poke(instance, queue, 0.0)

    def restore(
        self, instance: str, *, usage: Usage | None = None, last_sent_at: float | None = None
    ) -> None:
        """Put back what was stored: the cap usage and the last send time."""
        queue = self.queue_of(instance)
        if usage is not None:
            queue.usage = usage
        if last_sent_at is not None and (queue.last_sent_at or 0) < last_sent_at:
            queue.last_sent_at = last_sent_at
            queue.gaps.clear()
        self._poke(instance, queue, 0.0)

    def set_state(self, instance: str, state: str, at: float) -> None:
        """A connection change at `at`; opening after a pause lifts the pause."""
        queue = self.queue_of(instance)
        if at < queue.state_at:
            return  # an older event delivered late
        queue.state, queue.state_at = state, at
        if state == "open":
            if queue.first_connected_at is None:
                queue.first_connected_at = at
            if queue.pause is not None and queue.pause.lifted_by_connecting(at):
                queue.pause = None
        self._poke(instance, queue, 0.0)

    def pause(self, instance: str, pause: Pause) -> None:
        """Stop the instance's sends until `pause.until` passes, or it connects again (a
        provider's pause) or is resumed; a provider's pause leaves a tenant's in place."""
        queue = self.queue_of(instance)
        current = queue.pause
        if (
            current is not None
            and current.by == "tenant"
            and pause.by == "provider"
            and current.holds_at(pause.since)
        ):
            return
        if current is None or current.since <= pause.since or pause.by != current.by:
            queue.pause = pause
        self._poke(instance, queue, 0.0)

    def resume(self, instance: str) -> None:
        """Lift the instance's pause, whoever put it there."""
        queue = self.queue_of(instance)
        queue.pause = None
        self._poke(instance, queue, 0.0)

    def add(
        self,
        instance: str,
        message_id: str,
        lane: str,
        priority: int,
        queued_at: float,
        *,
        scheduled_at: float | None = None,
        valid_until: float | None = None,
        to: str | None = None,
    ) -> None:
        """Put a pending message in its instance's queue (a known id is ignored)."""
        queue = self.queue_of(instance)
        if queue.in_flight.pop(message_id, None) is not None:
            # Back from the sender (parked after a failed or timed-out attempt, or given back
            # after a hand-over): the attempt may have reached the phone, so the next send
            # keeps its gap from when the message came back, which is its `queued_at` now.
            self._sent(queue, queued_at)
        queue.held.discard(message_id)
        if message_id in queue.waiting:
            return
        rank = RANK[lane]
        entry: Entry = (-priority, queued_at, message_id, to)
        self._wait(queue, message_id, rank)
        if scheduled_at is not None and scheduled_at > queued_at:
            heapq.heappush(queue.scheduled, (scheduled_at, rank, entry))
        else:
            heapq.heappush(queue.heaps[rank], entry)
        if valid_until is not None:
            heapq.heappush(self._expiries, (valid_until, message_id, instance))
        self._poke(instance, queue, 0.0)

    def hold(self, instance: str, message_id: str, valid_until: float) -> None:
        """Track a message awaiting approval only so that it expires on time."""
        queue = self.queue_of(instance)
        if message_id not in queue.waiting and message_id not in queue.held:
            queue.held.add(message_id)
            heapq.heappush(self._expiries, (valid_until, message_id, instance))

    def remove(self, instance: str, message_id: str) -> None:
        """Forget a waiting message (canceled or rejected); its heap entry is skipped later."""
        queue = self._queues.get(instance)
        if queue is not None:
            self._unwait(queue, message_id)
            queue.held.discard(message_id)

    def in_flight(self, instance: str, message_id: str) -> bool:
        """True while a decided message has no outcome yet."""
        queue = self._queues.get(instance)
        return queue is not None and message_id in queue.in_flight

    def knows(self, instance: str, message_id: str) -> bool:
        """True while a message waits, is held for approval or is in flight in its queue."""
        queue = self._queues.get(instance)
        return queue is not None and (
            message_id in queue.waiting or message_id in queue.held or message_id in queue.in_flight
        )

    def mark_in_flight(self, instance: str, message_id: str, since: float) -> None:
        """Record a message already handed to the sender (found so in the store on a rebuild)."""
        queue = self.queue_of(instance)
        self._unwait(queue, message_id)
        queue.in_flight[message_id] = since

    def settle(self, instance: str, message_id: str, sent_at: float | None) -> None:
        """A message's outcome arrived; a send starts the next gap."""
        queue = self._queues.get(instance)
        if queue is None:
            return
        if sent_at is not None:
            self._sent(queue, sent_at)
        if queue.in_flight.pop(message_id, None) is not None:
            self._poke(instance, queue, 0.0)

    def undo(self, decision: Decision) -> None:
        """A decision whose message could not be claimed (canceled, expired): nothing was sent."""
        queue = self._queues.get(decision.instance)
        if queue is None:
            return
        queue.in_flight.pop(decision.message_id, None)
        if queue.pacing.throughput is None:
            queue.usage.undo(decision.lane, decision.at, queue.pacing.timezone)
        self._poke(decision.instance, queue, 0.0)

    def drop(self, instance: str) -> None:
        """Forget an instance entirely (another replica owns it now)."""
        queue = self._queues.pop(instance, None)
        if queue is not None:
            for rank in queue.waiting.values():
                self._depth[rank] -= 1

    # --- decisions ---

    def due(self, now: float) -> list[Decision]:
        """Messages that may go at `now`; each is marked in flight and counted against its caps."""
        decisions: list[Decision] = []
        while self._timers and self._timers[0][0] <= now:
            at, name = heapq.heappop(self._timers)
            queue = self._queues.get(name)
            if queue is None or queue.timer_at != at:
                continue  # superseded by an earlier wake-up, or the instance was dropped
            queue.timer_at = None
            found, wake = self._evaluate(name, queue, now)
            decisions += found
            if wake is not None:
                self._poke(name, queue, wake)
        return decisions

    def expired(self, now: float) -> list[tuple[str, str]]:
        """(instance, message id) of waiting messages whose `validUntil` has passed."""
        found = []
        while self._expiries and self._expiries[0][0] <= now:
            _, message_id, name = heapq.heappop(self._expiries)
            queue = self._queues.get(name)
            if queue is None:
                continue
            if message_id in queue.waiting or message_id in queue.held:
                self._unwait(queue, message_id)
                queue.held.discard(message_id)
                found.append((name, message_id))
        return found

    def next_wakeup(self) -> float | None:
        """The earliest time something may change: a queue's wake-up or an expiry."""
        return _earliest_of(
            self._timers[0][0] if self._timers else None,
            self._expiries[0][0] if self._expiries else None,
        )

    def stale(self, now: float, timeout: float) -> list[Decision]:
        """In-flight messages with no outcome for `timeout` seconds (their clock restarts)."""
        found = []
        for name, queue in self._queues.items():
            for message_id, since in queue.in_flight.items():
                if now - since >= timeout:
                    queue.in_flight[message_id] = now
                    found.append(Decision(name, message_id, "", now))
        return found

    def _evaluate(
        self, name: str, queue: InstanceQueue, now: float
    ) -> tuple[list[Decision], float | None]:
        if queue.state != "open":
            return [], None
        pause = queue.pause
        hold = hold_at(now, paused=pause is not None, paused_until=pause.until if pause else None)
        if hold is not None:
            return [], hold.until  # no wake-up for a pause with no end: its lifting wakes it
        queue.pause = None  # over, if there was one
        while queue.scheduled and queue.scheduled[0][0] <= now:
            _, rank, entry = heapq.heappop(queue.scheduled)
            heapq.heappush(queue.heaps[rank], entry)
        scheduled = queue.scheduled[0][0] if queue.scheduled else None
        if queue.pacing.throughput is not None:
            decisions, wake = self._evaluate_cloud(name, queue, now)
        else:
            decisions, wake = self._evaluate_lanes(name, queue, now)
        return decisions, _earliest_of(wake, scheduled)

    def _evaluate_lanes(
        self, name: str, queue: InstanceQueue, now: float
    ) -> tuple[list[Decision], float | None]:
        if queue.in_flight:
            return [], None  # the outcome wakes the queue
        pacing = queue.pacing
        days = pacing.days_connected(queue.first_connected_at, now)
        wake: float | None = None
        for rank, heap in enumerate(queue.heaps):
            if not self._clean_head(queue, heap, rank):
                continue
            lane = LANES[rank]
            policy = pacing.lanes[lane]
            reopen = queue.usage.reopens_at(
                lane, policy, pacing.day_cap(lane, days), now, pacing.timezone
            )
            if reopen is not None:
                wake = _earliest_of(wake, reopen)
                continue  # over a cap: the next lane may go meanwhile
            earliest = self._earliest(queue, rank)
            if earliest > now:
                return [], _earliest_of(wake, earliest)
            _, _, message_id, _ = heapq.heappop(heap)
            self._unwait(queue, message_id)
            queue.usage.record(lane, policy, now, pacing.timezone)
            queue.in_flight[message_id] = now
            return [Decision(name, message_id, lane, now)], None
        return [], wake

    def _evaluate_cloud(
        self, name: str, queue: InstanceQueue, now: float
    ) -> tuple[list[Decision], float | None]:
        throughput = queue.pacing.throughput
        assert throughput is not None
        while queue.parked and queue.parked[0][0] <= now:
            _, rank, entry = heapq.heappop(queue.parked)
            heapq.heappush(queue.heaps[rank], entry)
        if len(queue.recipients) > RECIPIENTS_PRUNE_AT:
            horizon = now - throughput.recipient_gap
            queue.recipients = {to: t for to, t in queue.recipients.items() if t > horizon}
        # At most one second's worth of sends may be in flight at once.
        limit = max(1, int(throughput.per_second))
        decisions: list[Decision] = []
        wake: float | None = None
        while len(queue.in_flight) < limit:
            head = next(
                (r for r, heap in enumerate(queue.heaps) if self._clean_head(queue, heap, r)), None
            )
            if head is None:
                break
            rank = head
            if queue.next_slot > now:
                wake = queue.next_slot
                break
            entry = heapq.heappop(queue.heaps[rank])
            to = entry[3]
            last = queue.recipients.get(to) if to is not None else None
            if last is not None and last + throughput.recipient_gap > now:
                heapq.heappush(queue.parked, (last + throughput.recipient_gap, rank, entry))
                continue
            message_id = entry[2]
            self._unwait(queue, message_id)
            queue.in_flight[message_id] = now
            if to is not None:
                queue.recipients[to] = now
            queue.next_slot = max(queue.next_slot, now) + 1 / throughput.per_second
            decisions.append(Decision(name, message_id, LANES[rank], now))
        return decisions, _earliest_of(wake, queue.parked[0][0] if queue.parked else None)

    def _clean_head(self, queue: InstanceQueue, heap: list[Entry], rank: int) -> bool:
        """Drop forgotten messages off the top of a lane; True when one is waiting there."""
        while heap and queue.waiting.get(heap[0][2]) != rank:
            heapq.heappop(heap)
        return bool(heap)

    def _sent(self, queue: InstanceQueue, at: float) -> None:
        """A send (or an attempt that may have been one) at `at` starts the next gap."""
        if (queue.last_sent_at or 0) < at:
            queue.last_sent_at = at
            queue.gaps.clear()

    def _earliest(self, queue: InstanceQueue, rank: int) -> float:
        if queue.last_sent_at is None:
            return 0.0
        if rank not in queue.gaps:
            queue.gaps[rank] = queue.pacing.lanes[LANES[rank]].sample_delay(self._rng)
        return queue.last_sent_at + queue.gaps[rank]

    def _poke(self, name: str, queue: InstanceQueue, at: float) -> None:
        if queue.timer_at is None or at < queue.timer_at:
            queue.timer_at = at
            heapq.heappush(self._timers, (at, name))

    def _wait(self, queue: InstanceQueue, message_id: str, rank: int) -> None:
        queue.waiting[message_id] = rank
        self._depth[rank] += 1

    def _unwait(self, queue: InstanceQueue, message_id: str) -> None:
        rank = queue.waiting.pop(message_id, None)
        if rank is not None:
            self._depth[rank] -= 1

    # --- what it holds ---

    def depth(self) -> Counter[str]:
        """Waiting messages per lane over every instance."""
        return Counter(dict(zip(LANES, self._depth, strict=True)))

    def states(self, now: float) -> Counter[str]:
        """Owned instances by state: `paused` while a pause holds, `never_connected` until
        the first open, else the connection state."""
        return Counter(_exported_state(queue, now) for queue in self._queues.values())

    def names(self) -> list[str]:
        """Every instance this planner holds."""
        return list(self._queues)

    def __contains__(self, instance: object) -> bool:
        return instance in self._queues

    def __len__(self) -> int:
        return len(self._queues)
