"""A loopback TCP proxy in front of the wire store that holds chosen commands back.

A test points a service's `LANEGATE_MONGO_URI` at it and calls `hold("find",
"messages")`: from then on every `find` or `getMore` on that collection waits
in the proxy until `release()`, while every other command (lease renewals,
pings, writes) passes at once. That is a store slow for exactly one kind of
read, as a large backlog on a loaded store is, but without timing luck: the
test decides when the slow read ends.
"""

import asyncio
import struct
from collections import Counter
from dataclasses import dataclass, field

import bson

OP_MSG = 2013
# A getMore names its collection under this key; other commands under their own name.
COLLECTION_KEYS = {"getMore": "collection"}


def command_of(op_code: int, payload: bytes) -> tuple[str, str]:
    """The command name and collection of one client message (empty for other op codes)."""
    if op_code != OP_MSG or payload[4] != 0:
        return "", ""
    (size,) = struct.unpack_from("<i", payload, 5)
    body = bson.decode(payload[5 : 5 + size])
    name = next(iter(body), "")
    collection = body.get(COLLECTION_KEYS.get(name, name))
    return name, collection if isinstance(collection, str) else ""


@dataclass
class StoreProxy:
    """Passes a client's wire messages to the store on `target_port`, holding chosen ones
    and counting the commands it passes."""

    target_port: int
    held: int = 0  # client messages waiting in the proxy right now
    seen: Counter[tuple[str, str]] = field(default_factory=Counter)  # commands, by collection
    _holds: set[tuple[str, str]] = field(default_factory=set)
    _released: asyncio.Event = field(default_factory=asyncio.Event)
    _server: asyncio.Server | None = None
    _writers: set[asyncio.StreamWriter] = field(default_factory=set)

    async def start(self) -> int:
        """Listen on a free loopback port; returns it."""
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    @property
    def uri(self) -> str:
        assert self._server is not None
        port = self._server.sockets[0].getsockname()[1]
        return f"mongodb://127.0.0.1:{port}/?directConnection=true"

    def hold(self, command: str, collection: str) -> None:
        """Hold `command` on `collection` (and the getMores of its cursors) until `release`."""
        self._holds |= {(command, collection), ("getMore", collection)}
        self._released.clear()

    def release(self) -> None:
        """Let every held message go on, and hold nothing more."""
        self._holds.clear()
        self._released.set()

    async def close(self) -> None:
        """Stop listening and drop open connections."""
        self.release()
        if self._server is not None:
            self._server.close()
            for writer in self._writers:
                writer.close()
            await self._server.wait_closed()

    async def _serve(self, client: asyncio.StreamReader, to_client: asyncio.StreamWriter) -> None:
        try:
            server, to_server = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            to_client.close()
            return
        self._writers |= {to_client, to_server}
        upstream = asyncio.create_task(self._pipe(client, to_server, inspect=True))
        downstream = asyncio.create_task(self._pipe(server, to_client, inspect=False))
        await asyncio.wait({upstream, downstream}, return_when=asyncio.FIRST_COMPLETED)
        for task in (upstream, downstream):
            task.cancel()
        for writer in (to_client, to_server):
            writer.close()
            self._writers.discard(writer)

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, inspect: bool
    ) -> None:
        try:
            while True:
                header = await reader.readexactly(16)
                length, _, _, op_code = struct.unpack("<iiii", header)
                payload = await reader.readexactly(length - 16)
                command = command_of(op_code, payload) if inspect else ("", "")
                self.seen[command] += 1
                if command in self._holds:
                    self.held += 1
                    try:
                        await self._released.wait()
                    finally:
                        self.held -= 1
                writer.write(header + payload)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            return
