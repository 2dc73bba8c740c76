"""Ten 50 MiB attachments through the sandbox at once: provider-sender's peak memory.

Starts the store, ingress-api, lane-scheduler and provider-sender (real processes,
RabbitMQ, the embedded store), queues 10 messages of one 50 MiB file each on 10
sandbox instances still closed (so all 10 go out together once the instances
open), and reports provider-sender's peak resident set (VmHWM) beside its own
figure just before the sends: the bare process, started and warmed up with one
small file. Target: under 200 MiB.

By default the files are `attachmentUrl`s served by a local HTTP server in this
process; `--upload` sends them as multipart uploads kept in GridFS instead
(the embedded store takes minutes per 50 MiB, so use it with smaller files).

Run: .venv/bin/python -m bench.attachments [--files 10] [--mib 50] [--upload]
(needs the local RabbitMQ at 127.0.0.1:5672)
"""

import argparse
import asyncio
import contextlib
import os
import secrets
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from devtools.stack import Stack, delete_topology, free_port
from lanegate.secrets import new_key

AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"
TARGET_MIB = 200
LANES = {"urgent": {"delayMs": [0, 0]}}
SEND = {"to": "5491112345678", "lane": "urgent"}


@contextlib.asynccontextmanager
async def file_server(data: bytes) -> AsyncIterator[str]:
    """An HTTP server on 127.0.0.1 answering `data` at every path; yields its base URL."""

    async def serve(request: web.Request) -> web.Response:
        return web.Response(body=data, content_type="application/octet-stream")

    app = web.Application()
    app.router.add_get("/{name}", serve)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


def memory_mib(pid: int) -> dict[str, float]:
    """A process's resident set now (VmRSS) and at its peak so far (VmHWM), in MiB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0]) / 1024
    return fields


class Api:
    """The tenant API of the benchmark's stack."""

    def __init__(self, http: aiohttp.ClientSession, base: str, key: str) -> None:
        self.http, self.base, self.key = http, base, key

    async def call(self, method: str, path: str, **kwargs: Any) -> Any:
        headers = {"apikey": self.key}
        async with self.http.request(method, self.base + path, headers=headers, **kwargs) as r:
            answer = await r.json()
            if r.status >= 300:
                raise RuntimeError(f"{method} {path} answered {r.status}: {answer}")
            return answer

    async def upload(self, name: str, data: bytes, file_name: str) -> str:
        form = aiohttp.FormData()
        for field, value in SEND.items():
            form.add_field(field, value)
        form.add_field("instanceName", name)
        form.add_field("attachments", data, filename=file_name)
        answer = await self.call("POST", "/message/attachment", data=form)
        return str(answer["id"])

    async def by_url(self, name: str, url: str) -> str:
        body = SEND | {"instanceName": name, "attachmentUrl": url}
        answer = await self.call("POST", "/message/attachment", json=body)
        return str(answer["id"])

    async def all_sent(self, ids: list[str], within: float) -> None:
        deadline = time.monotonic() + within
        waiting = set(ids)
        while waiting:
            for message_id in list(waiting):
                message = await self.call("GET", f"/message/{message_id}")
                if message["status"] == "sent":
                    waiting.discard(message_id)
                elif message["status"] == "failed":
                    raise RuntimeError(f"{message_id} failed: {message.get('error')}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(waiting)} messages not sent in {within:.0f} s")
            await asyncio.sleep(0.5)


async def tenant(base: str, admin_key: str) -> str:
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            base + "/admin/tenants",
            json={"id": "bench", "name": "bench"},
            headers={"apikey": admin_key},
        ) as r,
    ):
        return str((await r.json())["apiKey"])


async def measure(
    stack: Stack, admin_key: str, files: int, size: int, upload: bool
) -> dict[str, Any]:
    base = stack.url("ingress_api")
    key = await tenant(base, admin_key)
    sender = stack.processes["provider_sender"].pid
    timeout = aiohttp.ClientTimeout(total=None)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        api = Api(http, base, key)
        names = [f"bench__support__n{n}" for n in range(files + 1)]
        for name in names:
            body: dict[str, Any] = {"instanceName": name, "lanes": LANES}
            body |= {"webhookUrl": "http://127.0.0.1:9/hook", "webhookSecret": "bench-secret-bench"}
            await api.call("POST", "/instance/create", json=body)
        warm_up, *loaded = names
        await api.call("POST", f"/sandbox/{warm_up}/scan")
        await asyncio.sleep(1)
        await api.all_sent([await api.upload(warm_up, os.urandom(1024 * 1024), "w.bin")], 120)
        bare = memory_mib(sender)

        data = os.urandom(size)
        async with file_server(data) as served:
            started = time.monotonic()
            ids = [
                await (
                    api.upload(name, data, f"file-{n}.bin")
                    if upload
                    else api.by_url(name, f"{served}/file-{n}.bin?token=bench")
                )
                for n, name in enumerate(loaded)
            ]
            queued = time.monotonic() - started
            started = time.monotonic()
            for name in loaded:
                await api.call("POST", f"/sandbox/{name}/scan")
            await api.all_sent(ids, 1800)
            sent = time.monotonic() - started
        loaded_memory = memory_mib(sender)
    return {"bare": bare, "loaded": loaded_memory, "queued": queued, "sent": sent}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.attachments")
    parser.add_argument("--files", type=int, default=10)
    parser.add_argument("--mib", type=int, default=50)
    parser.add_argument("--upload", action="store_true", help="multipart uploads into GridFS")
    args, _ = parser.parse_known_args()
    size = args.mib * 1024 * 1024
    namespace = f"lgbench-{uuid.uuid4().hex[:8]}"
    admin_key = secrets.token_urlsafe(32)
    stack = Stack.create(
        Path("var/bench-logs") / namespace,
        settings={
            "LANEGATE_AMQP_URL": AMQP_URL,
            "LANEGATE_NAMESPACE": namespace,
            "LANEGATE_MONGO_DB": "lanegate_bench",
            "LANEGATE_ADMIN_KEY": admin_key,
            "LANEGATE_SECRET_KEY": new_key(),
            "LANEGATE_ALLOW_PRIVATE_TARGETS": "true",
            "LANEGATE_ATTACHMENT_MAX_BYTES": str(size),
            "LANEGATE_RATE_LIMIT_PER_MINUTE": str(10**6),
        },
    )
    try:
        stack.start_store()
        for name in ("ingress_api", "lane_scheduler", "provider_sender"):
            stack.start(name)
        found = asyncio.run(measure(stack, admin_key, args.files, size, args.upload))
    finally:
        stack.stop_all()
        asyncio.run(delete_topology(AMQP_URL, namespace))
    bare, loaded = found["bare"], found["loaded"]
    how = "uploaded into GridFS" if args.upload else "fetched by URL"
    print(f"attachments: {args.files} x {args.mib} MiB {how}, through the sandbox together")
    print(f"  provider-sender bare (started, one 1 MiB file sent): {bare['VmHWM']:6.1f} MiB peak")
    print(
        f"  provider-sender peak with the {args.files} files:     {loaded['VmHWM']:6.1f} MiB"
        f" (target < {TARGET_MIB} MiB; {loaded['VmRSS']:.1f} MiB after)"
    )
    print(f"  queued in {found['queued']:.1f} s, all sent {found['sent']:.1f} s after opening")


if __name__ == "__main__":
    main()
