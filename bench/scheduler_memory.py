"""The planner holding 1,000,000 pending messages over 10,000 instances: memory and decision cost.

Run: .venv/bin/python -m bench.scheduler_memory [--instances 10000] [--per-instance 100]
"""

import argparse
import gc
import random
import resource
import time
import uuid

from lane_scheduler.planner import Planner
from lanegate.lanes import DEFAULT_PACING, LANES


def rss_mib() -> float:
    """Peak resident memory of this process so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--instances", type=int, default=10_000)
    parser.add_argument("--per-instance", type=int, default=100)
    args = parser.parse_args()
    rng = random.Random(7)
    names = [f"tenant{i % 100}__client__n{i}" for i in range(args.instances)]
    gc.collect()
    before = rss_mib()

    planner = Planner(rng)
    started = time.perf_counter()
    now = 1_770_000_000.0
    for name in names:
        planner.configure(name, pacing=DEFAULT_PACING, state="open", state_at=now)
        for n in range(args.per_instance):
            # Ids made here, so the memory measured includes them as the planner holds them.
            message_id = str(uuid.uuid4())
            planner.add(name, message_id, rng.choice(LANES), rng.randint(1, 10), now + n)
    add_seconds = time.perf_counter() - started
    held = sum(planner.depth().values())
    gc.collect()
    after = rss_mib()

    # Decide every instance's next message ten times over, settling each at once.
    rounds, decisions = 10, 0
    started = time.perf_counter()
    for _ in range(rounds):
        now += 3600 / rounds  # past every gap; caps allow 8 normal and 3 bulk per tenth of an hour
        for decision in planner.due(now):
            planner.settle(decision.instance, decision.message_id, sent_at=now)
            decisions += 1
    decide_seconds = time.perf_counter() - started

    print(f"pending messages held: {held:,} over {len(planner):,} instances")
    print(f"memory: {after - before:,.0f} MiB for the planner (peak RSS {after:,.0f} MiB)")
    print(f"add: {add_seconds / held * 1e6:.2f} us per message (uuid4 id made included)")
    print(
        f"decide: {decide_seconds / decisions * 1e6:.2f} us per dispatched message "
        f"({decisions:,} decisions, with a waiting line of {args.per_instance} each)"
    )


if __name__ == "__main__":
    main()
