"""Fairness: every endpoint gets its own small pool of in-flight attempts."""

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime

import structlog

from lanegate.store import Document

log = structlog.get_logger(__name__)


@dataclass
class Job:
    """One attempt to make: the claimed record, the claim token and its lease."""

    record: Document
    claim: str
    lease_until: datetime
    first: bool
    instance: Document | None = None

    @property
    def url(self) -> str:
        return str(self.record["url"])

    @property
    def instance_name(self) -> str:
        return str(self.record["instanceName"])


@dataclass
class _Endpoint:
    """One endpoint's queues: retries in one line, first attempts in a line per instance."""

    retries: deque[tuple[int, Job]] = field(default_factory=deque)
    firsts: dict[str, deque[tuple[int, Job]]] = field(default_factory=dict)
    ready: deque[str] = field(default_factory=deque)  # instances with a first attempt startable
    waiting: int = 0
    running: int = 0

    def add(self, seq: int, job: Job) -> None:
        self.waiting += 1
        if not job.first:
            self.retries.append((seq, job))
            return
        line = self.firsts.get(job.instance_name)
        if line is None:
            self.firsts[job.instance_name] = deque([(seq, job)])
            self.ready.append(job.instance_name)
        else:
            line.append((seq, job))

    def take(self) -> Job | None:
        """The oldest startable job: a retry, or the head of a ready instance's line."""
        if self.ready and (
            not self.retries or self.firsts[self.ready[0]][0][0] < self.retries[0][0]
        ):
            # The instance stays out of `ready` until this attempt ends (see `done`).
            _, job = self.firsts[self.ready.popleft()].popleft()
        elif self.retries:
            _, job = self.retries.popleft()
        else:
            return None
        self.waiting -= 1
        return job

    def done(self, job: Job) -> None:
        """An attempt ended: the instance's next first attempt may start."""
        if not job.first:
            return
        line = self.firsts.get(job.instance_name)
        if line:
            self.ready.append(job.instance_name)
        elif line is not None:
            del self.firsts[job.instance_name]

    def clear(self) -> None:
        self.retries.clear()
        self.firsts.clear()
        self.ready.clear()
        self.waiting = 0


Runner = Callable[[Job], Awaitable[None]]


class EndpointPool:
    """Runs jobs with bounded concurrency per endpoint and a bounded backlog per endpoint.

    Deliveries are queued per endpoint URL and at most `concurrency` of one
    endpoint's attempts run at once, so a slow or dead endpoint only ever holds
    its own slots and its own queue; nothing it does reaches the broker channel
    or another endpoint. First attempts of one instance start one after another,
    in the order their events arrived; retries are not ordered.
    """

    def __init__(self, run: Runner, *, concurrency: int, backlog: int = 1000) -> None:
        self._run = run
        self._concurrency = concurrency
        self._backlog = backlog
        self._endpoints: dict[str, _Endpoint] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._seq = 0
        self._idle = asyncio.Event()
        self._idle.set()

    def submit(self, job: Job) -> bool:
        """Queue a job for its endpoint; False (dropped) when that endpoint's backlog is full."""
        endpoint = self._endpoints.setdefault(job.url, _Endpoint())
        if endpoint.waiting >= self._backlog:
            return False
        self._seq += 1
        self._idle.clear()
        endpoint.add(self._seq, job)
        self._pump(job.url, endpoint)
        return True

    def full_endpoints(self) -> list[str]:
        """Endpoints whose backlog is full (the poller leaves their records in the store)."""
        return [url for url, e in self._endpoints.items() if e.waiting >= self._backlog]

    def pending(self) -> int:
        """Jobs queued or running, all endpoints together (0 once everything handed in is done)."""
        return sum(e.waiting + e.running for e in self._endpoints.values())

    def _pump(self, url: str, endpoint: _Endpoint) -> None:
        while endpoint.running < self._concurrency:
            job = endpoint.take()
            if job is None:
                break
            endpoint.running += 1
            task = asyncio.create_task(self._guarded(url, endpoint, job))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        if not endpoint.running and not endpoint.waiting and self._endpoints.get(url) is endpoint:
            del self._endpoints[url]

    async def _guarded(self, url: str, endpoint: _Endpoint, job: Job) -> None:
        try:
            await self._run(job)
        except asyncio.CancelledError:
            raise
        except Exception as e:
            # The record keeps its claim and lease, so the poller tries it again when it lapses.
            log.exception("delivery job failed", delivery_id=job.record["_id"], error=repr(e))
        finally:
            endpoint.running -= 1
            endpoint.done(job)
            self._pump(url, endpoint)
            if not self._endpoints:  # an endpoint is dropped once nothing waits or runs there
                self._idle.set()

    async def join(self) -> None:
        """Wait until every job handed in so far has finished."""
        await self._idle.wait()

    async def close(self, grace: float) -> None:
        """Drop queued jobs (their records stay due in the store) and let running ones finish."""
        for endpoint in self._endpoints.values():
            endpoint.clear()
        if self._tasks:
            _, late = await asyncio.wait(set(self._tasks), timeout=grace)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
