import asyncio
from datetime import UTC, datetime

from webhook_dispatcher.endpoints import EndpointPool, Job

LEASE = datetime(2030, 1, 1, tzinfo=UTC)


def job(n: int, url: str, instance: str, *, first: bool = True) -> Job:
    return Job({"_id": str(n), "url": url, "instanceName": instance}, "claim", LEASE, first=first)


class Recorder:
    """A job runner that records starts and waits on a per-URL gate."""

    def __init__(self) -> None:
        self.started: list[str] = []
        self.running: dict[str, int] = {}
        self.peak: dict[str, int] = {}
        self.gates: dict[str, asyncio.Event] = {}

    async def run(self, job: Job) -> None:
        self.started.append(job.record["_id"])
        self.running[job.url] = self.running.get(job.url, 0) + 1
        self.peak[job.url] = max(self.peak.get(job.url, 0), self.running[job.url])
        gate = self.gates.get(job.url)
        if gate is not None:
            await gate.wait()
        await asyncio.sleep(0)
        self.running[job.url] -= 1


async def test_one_endpoint_never_has_more_than_its_concurrency_in_flight() -> None:
    recorder = Recorder()
    recorder.gates["slow"] = asyncio.Event()
    pool = EndpointPool(recorder.run, concurrency=4)
    for n in range(12):
        pool.submit(job(n, "slow", f"i{n}"))
    await asyncio.sleep(0.01)
    assert 4 == recorder.peak["slow"]
    recorder.gates["slow"].set()
    await pool.close(1)


async def test_a_stuck_endpoint_does_not_hold_up_another() -> None:
    recorder = Recorder()
    recorder.gates["stuck"] = asyncio.Event()
    pool = EndpointPool(recorder.run, concurrency=4)
    for n in range(20):
        pool.submit(job(n, "stuck", f"s{n}"))
    for n in range(100, 105):
        pool.submit(job(n, "fast", "f"))
    await asyncio.sleep(0.05)
    assert {"100", "101", "102", "103", "104"} <= set(recorder.started)
    assert 0 == recorder.running["fast"]
    recorder.gates["stuck"].set()
    await pool.close(1)


async def test_first_attempts_of_one_instance_start_in_order_one_at_a_time() -> None:
    recorder = Recorder()
    pool = EndpointPool(recorder.run, concurrency=4)
    for n in range(10):
        pool.submit(job(n, "hook", "same"))
    await asyncio.sleep(0.05)
    assert [str(n) for n in range(10)] == recorder.started
    assert 1 == recorder.peak["hook"]
    await pool.close(1)


async def test_retries_are_not_held_back_by_the_instance_order() -> None:
    recorder = Recorder()
    recorder.gates["hook"] = asyncio.Event()
    pool = EndpointPool(recorder.run, concurrency=4)
    for n in range(3):
        pool.submit(job(n, "hook", "same", first=False))
    await asyncio.sleep(0.01)
    assert 3 == recorder.peak["hook"]
    recorder.gates["hook"].set()
    await pool.close(1)


async def test_a_full_backlog_refuses_more_jobs_for_that_endpoint_only() -> None:
    recorder = Recorder()
    recorder.gates["slow"] = asyncio.Event()
    pool = EndpointPool(recorder.run, concurrency=1, backlog=2)
    accepted = [pool.submit(job(n, "slow", "i")) for n in range(4)]
    assert [True, True, True, False] == accepted
    assert ["slow"] == pool.full_endpoints()
    assert pool.submit(job(9, "other", "j"))
    recorder.gates["slow"].set()
    await pool.close(1)


async def test_join_returns_once_every_job_has_run() -> None:
    recorder = Recorder()
    pool = EndpointPool(recorder.run, concurrency=2)
    for n in range(6):
        pool.submit(job(n, f"hook{n % 2}", f"i{n % 3}"))
    await asyncio.wait_for(pool.join(), timeout=5)
    assert (6, 0) == (len(recorder.started), pool.pending())
