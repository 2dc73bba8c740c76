"""A real webhook receiver on 127.0.0.1, in its own thread, recording every request."""

import asyncio
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from devtools.stack import free_port


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """Records requests; `answer` picks the HTTP status for each (204 by default)."""

    port: int = field(default_factory=free_port)
    requests: list[Received] = field(default_factory=list)
    answer: Callable[[Received], int] = lambda _: 204
    delay: Callable[[Received], float] = lambda _: 0.0
    reply_headers: Callable[[Received], dict[str, str]] = lambda _: {}
    in_flight: int = 0
    max_in_flight: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _loop: asyncio.AbstractEventLoop | None = None
    _thread: threading.Thread | None = None
    _stopped: asyncio.Event | None = None

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def _handle(self, request: web.Request) -> web.Response:
        received = Received(request.path, dict(request.headers), await request.read())
        with self._lock:
            self.requests.append(received)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.delay(received))
            return web.Response(status=self.answer(received), headers=self.reply_headers(received))
        finally:
            with self._lock:
                self.in_flight -= 1

    async def _serve(self, ready: threading.Event) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", self.port).start()
        self._stopped = asyncio.Event()
        ready.set()
        await self._stopped.wait()
        await runner.cleanup()

    def start(self) -> "Receiver":
        ready = threading.Event()
        self._loop = loop = asyncio.new_event_loop()

        def serve() -> None:
            try:
                loop.run_until_complete(self._serve(ready))
            finally:
                loop.close()

        self._thread = threading.Thread(target=serve, daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise TimeoutError("receiver did not start")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stopped is not None:
            self._loop.call_soon_threadsafe(self._stopped.set)
        if self._thread is not None:
            self._thread.join(10)

    def matching(self, predicate: Callable[[Received], bool]) -> list[Received]:
        with self._lock:
            return [r for r in self.requests if predicate(r)]

    async def wait_for(
        self, predicate: Callable[[Received], bool], *, count: int = 1, timeout: float = 20
    ) -> list[Received]:
        """Wait until at least `count` recorded requests match `predicate`."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.matching(predicate)
            if len(found) >= count:
                return found
            if time.monotonic() > deadline:
                raise TimeoutError(f"only {len(found)} of {count} matching webhooks arrived")
            await asyncio.sleep(0.05)


def event_named(name: str, **data: Any) -> Callable[[Received], bool]:
    """A predicate for webhook bodies of event `name` whose data has these values."""
    import json

    def match(received: Received) -> bool:
        body = json.loads(received.body)
        return body["event"] == name and all(body["data"].get(k) == v for k, v in data.items())

    return match
