"""A loopback TCP proxy in front of the wire store that counts the commands its clients send.

Every MongoDB wire message a client sends is one request the client waits on
(no exhaust cursors or unacknowledged writes are used here), so the count of
client messages by command name is the client's store round trips, measured
from outside the process that makes them. Server monitoring (`hello`) is
counted apart. The time from a request to its reply is summed per command.

With `free_inserts` the proxy answers every `insert` itself, as if the store had
taken each document at no cost, and does not pass it on: a stand-in for a store
fast enough not to be what limits the client (the embedded store here spends
milliseconds of CPU per document), so the client's own cost shows. The
documents are not stored; everything else goes to the store.
"""

import asyncio
import itertools
import struct
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import bson

OP_MSG = 2013
OP_QUERY = 2004
MONITORING = frozenset({"hello", "ismaster", "isMaster", "ping", "buildInfo", "buildinfo"})


def command_name(op_code: int, payload: bytes) -> str:
    """The first key of the command document (the command's name) of one client message."""
    if op_code == OP_MSG:
        document = 4 + 1  # flagBits, then the kind-0 section pymongo always sends first
    elif op_code == OP_QUERY:
        document = payload.index(b"\x00", 4) + 1 + 8  # flags, collection name, skip, limit
    else:
        return f"op{op_code}"
    key_start = document + 4 + 1  # document length, first element's type
    return payload[key_start : payload.index(b"\x00", key_start)].decode()


def command_target(op_code: int, payload: bytes) -> str | None:
    """The collection an OP_MSG command names (its first value, when that is a string)."""
    if op_code != OP_MSG:
        return None
    (size,) = struct.unpack_from("<i", payload, 5)
    first = next(iter(bson.decode(payload[5 : 5 + size]).values()), None)
    return first if isinstance(first, str) else None


def documents_sent(payload: bytes) -> int:
    """How many documents an OP_MSG insert carries (in a document sequence, or in its body)."""
    (flags,) = struct.unpack_from("<I", payload)
    end = len(payload) - (4 if flags & 1 else 0)  # a checksum ends the message
    offset, count, body = 4, 0, None
    while offset < end:
        kind, offset = payload[offset], offset + 1
        (size,) = struct.unpack_from("<i", payload, offset)
        if kind == 0:
            body = bson.decode(payload[offset : offset + size])
            offset += size
            continue
        section_end = offset + size
        offset = payload.index(b"\x00", offset + 4) + 1  # past the size and the identifier
        while offset < section_end:
            (length,) = struct.unpack_from("<i", payload, offset)
            offset += length
            count += 1
    return count or len((body or {}).get("documents", []))


def op_msg_reply(response_to: int, request_id: int, document: dict[str, Any]) -> bytes:
    """A server's OP_MSG answer holding one document."""
    body = struct.pack("<I", 0) + b"\x00" + bson.encode(document)
    return struct.pack("<iiii", 16 + len(body), request_id, response_to, OP_MSG) + body


@dataclass
class WireCounter:
    """Counts client commands and their reply times through a proxy to `target_port`."""

    target_port: int
    free_inserts: bool = False
    commands: Counter[str] = field(default_factory=Counter)
    by_collection: Counter[tuple[str, str | None]] = field(default_factory=Counter)
    seconds: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))
    _sent: dict[int, tuple[str, float]] = field(default_factory=dict)
    _server: asyncio.Server | None = None
    _writers: set[asyncio.StreamWriter] = field(default_factory=set)
    _reply_ids: "itertools.count[int]" = field(default_factory=lambda: itertools.count(1 << 30))

    async def start(self) -> int:
        """Listen on a free loopback port; returns it."""
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def close(self) -> None:
        """Stop listening and drop open connections (waiting for clients to hang up could hang)."""
        if self._server is not None:
            self._server.close()
            for writer in self._writers:
                writer.close()
            await self._server.wait_closed()

    def reset(self) -> None:
        self.commands.clear()
        self.by_collection.clear()
        self.seconds.clear()

    def round_trips(self) -> int:
        """Client round trips counted since the last reset, server monitoring left out."""
        return sum(n for name, n in self.commands.items() if name not in MONITORING)

    async def _serve(self, client: asyncio.StreamReader, to_client: asyncio.StreamWriter) -> None:
        server, to_server = await asyncio.open_connection("127.0.0.1", self.target_port)
        self._writers |= {to_client, to_server}
        upstream = asyncio.create_task(self._pipe(client, to_server, to_client))
        downstream = asyncio.create_task(self._pipe(server, to_client))
        await asyncio.wait({upstream, downstream}, return_when=asyncio.FIRST_COMPLETED)
        for task in (upstream, downstream):
            task.cancel()
        for writer in (to_client, to_server):
            writer.close()
            self._writers.discard(writer)

    async def _pipe(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        back: asyncio.StreamWriter | None = None,
    ) -> None:
        """Pass messages from `reader` to `writer`; `back` (the client, when `reader` is the
        client) takes the answers the proxy gives itself."""
        try:
            while True:
                header = await reader.readexactly(16)
                length, request_id, response_to, op_code = struct.unpack("<iiii", header)
                payload = await reader.readexactly(length - 16)
                if back is not None:
                    name = command_name(op_code, payload)
                    self.commands[name] += 1
                    self.by_collection[name, command_target(op_code, payload)] += 1
                    if self.free_inserts and name == "insert" and op_code == OP_MSG:
                        stored = {"n": documents_sent(payload), "ok": 1.0}
                        back.write(op_msg_reply(request_id, next(self._reply_ids), stored))
                        await back.drain()
                        continue
                    self._sent[request_id] = (name, time.perf_counter())
                elif (sent := self._sent.pop(response_to, None)) is not None:
                    self.seconds[sent[0]] += time.perf_counter() - sent[1]
                writer.write(header + payload)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            return
