"""Faults under load: nothing lost, nothing sent twice, no lane gap or cap broken, events delivered.

The short runs here are part of `make test`; `make test-faults` runs the long
one: a few thousand messages over a few dozen instances, every fault alone,
then faults mixed at random. The seed is printed; `LANEGATE_FAULT_SEED=<seed>
make test-faults` plays the same faults again.
"""

import asyncio
import os
import random
import secrets
from collections.abc import AsyncIterator

import pytest

from tests.faults.injectors import Injector, mixed_steps, unready
from tests.faults.rabbit import RabbitNode
from tests.faults.verdict import judge, settle
from tests.faults.workload import Workload
from tests.support.gateway import Gateway

pytestmark = pytest.mark.e2e


def _seed() -> int:
    seed = int(os.environ.get("LANEGATE_FAULT_SEED") or secrets.randbelow(10**9))
    print(f"\nLANEGATE_FAULT_SEED={seed}", flush=True)
    return seed


@pytest.fixture
async def workload(fault_gateway: Gateway) -> AsyncIterator[Workload]:
    # A test before may have restarted the store: each service's first call after it can fail
    # on a pooled connection the store closed, and /readyz is where each one finds that out.
    stack = fault_gateway.stack
    findings = await unready(stack, [name for name in stack.processes if name != "store"])
    assert [] == findings, "\n".join(findings)
    load = Workload(fault_gateway, random.Random())
    yield load
    load.stop()


async def _run(
    gateway: Gateway,
    rabbit: RabbitNode,
    workload: Workload,
    *,
    seed: int,
    messages: int,
    send_seconds: float,
    faults: list[list[str]],
    settle_seconds: float,
    stall_seconds: float | None = None,
    scale: float = 1.0,
    receiver_down: tuple[float, float] = Injector.receiver_down,
) -> None:
    rng = random.Random(seed)
    workload.rng = random.Random(rng.random())
    injector = Injector(
        gateway,
        rabbit,
        workload,
        random.Random(rng.random()),
        scale=scale,
        receiver_down=receiver_down,
    )

    async def inject() -> None:
        for step in faults:
            await asyncio.sleep(rng.uniform(0.5, 2) * scale)
            await asyncio.gather(*(injector.run(name) for name in step))

    await asyncio.gather(workload.send(messages, send_seconds), inject())
    try:
        await settle(gateway, workload, timeout=settle_seconds, stall=stall_seconds)
    except TimeoutError as e:
        print(rabbit.ctl("list_queues", "name", "messages", "messages_unacknowledged", "consumers"))
        pytest.fail("\n".join([*injector.findings, str(e)]))
    verdict = await judge(gateway, workload, injector.log)
    verdict.problems[:0] = injector.findings
    print(verdict.table(injector.log), flush=True)
    assert [] == verdict.problems


async def test_processes_and_the_store_killed_under_load_lose_and_repeat_nothing(
    fault_gateway: Gateway, rabbit: RabbitNode, workload: Workload
) -> None:
    await workload.setup(tenants=2, instances=6, capped=2)
    await _run(
        fault_gateway,
        rabbit,
        workload,
        seed=_seed(),
        messages=90,
        send_seconds=15,
        faults=[["kill:provider_sender"], ["kill:lane_scheduler"], ["store:restart"]],
        settle_seconds=60,
    )


async def test_broker_provider_and_receiver_faults_lose_and_repeat_nothing(
    fault_gateway: Gateway, rabbit: RabbitNode, workload: Workload
) -> None:
    await workload.setup(tenants=2, instances=6, capped=2)
    await _run(
        fault_gateway,
        rabbit,
        workload,
        seed=_seed(),
        messages=90,
        send_seconds=15,
        faults=[
            ["sandbox:timeout"],
            ["rabbit:drop_connections"],
            ["rabbit:stop_app"],
            ["sandbox:ban"],
        ],
        settle_seconds=60,
    )


async def test_webhook_faults_and_a_sandbox_outage_lose_and_repeat_nothing(
    fault_gateway: Gateway, rabbit: RabbitNode, workload: Workload
) -> None:
    await workload.setup(tenants=2, instances=6, capped=1)
    await _run(
        fault_gateway,
        rabbit,
        workload,
        seed=_seed(),
        messages=70,
        send_seconds=12,
        faults=[["receiver:down_slow_back", "kill:webhook_dispatcher"], ["sandbox:error"]],
        settle_seconds=60,
        scale=0.6,
    )


@pytest.mark.timeout(5400)
@pytest.mark.faults_long
async def test_long_run_every_fault_alone_then_mixed(
    fault_gateway: Gateway, rabbit: RabbitNode, workload: Workload
) -> None:
    seed = _seed()
    await workload.setup(tenants=4, instances=32, capped=6)
    injector = Injector(fault_gateway, rabbit, workload, random.Random(seed))
    await injector.ensure_replica()
    assert [] == injector.findings, "\n".join(injector.findings)
    alone = [[name] for name in injector.names()]
    mixed = mixed_steps(injector.names(), random.Random(seed), count=2 * len(alone))
    await _run(
        fault_gateway,
        rabbit,
        workload,
        seed=seed,
        messages=2500,
        send_seconds=600,
        faults=alone + mixed,
        # As long as messages keep settling: the embedded store sets the pace (40 - 80 sends
        # a minute), and what the run checks is what the messages came to, not how fast.
        settle_seconds=3600,
        stall_seconds=300,
        scale=2.0,
        receiver_down=(30, 90),  # minutes away: 60-180 s at this scale
    )
