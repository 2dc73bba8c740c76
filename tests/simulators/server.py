"""A real aiohttp server on 127.0.0.1 in its own thread, for provider simulators."""

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any

import aiohttp
from aiohttp import web

from devtools.stack import free_port


class ThreadedServer:
    """Serves `app` on its own loop and thread; `submit` runs a coroutine on that loop."""

    def __init__(self, app: web.Application) -> None:
        self.app = app
        self.port = free_port()
        self._loop = asyncio.new_event_loop()
        self._thread: threading.Thread | None = None
        self._stopped: asyncio.Event | None = None
        self.http: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _serve(self, ready: threading.Event) -> None:
        runner = web.AppRunner(self.app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", self.port).start()
        self.http = aiohttp.ClientSession()
        self._stopped = asyncio.Event()
        ready.set()
        await self._stopped.wait()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.http.close()
        await runner.cleanup()

    def start(self) -> None:
        ready = threading.Event()

        def serve() -> None:
            try:
                self._loop.run_until_complete(self._serve(ready))
            finally:
                self._loop.close()

        self._thread = threading.Thread(target=serve, daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise TimeoutError("simulator did not start")

    def stop(self) -> None:
        if self._stopped is not None:
            self._loop.call_soon_threadsafe(self._stopped.set)
        if self._thread is not None:
            self._thread.join(10)

    def spawn(self, work: Coroutine[Any, Any, Any]) -> None:
        """Run `work` in the background on the server's loop (cancelled at stop)."""
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def submit(self, work: Coroutine[Any, Any, Any]) -> Any:
        """Run `work` on the server's loop and wait for its result from another loop."""
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(work, self._loop))
