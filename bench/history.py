"""A contact's conversation and the chat list at a million messages: read latency over HTTP.

One tenant with one sandbox instance, and `--messages` messages (1,000,000) over
`--contacts` contacts (10,000), half sent and half received, alternating in each
conversation over the last 30 days, written straight into the store in batches: the sent
ones built by ingress-api's own `document` (then marked sent, delivered and read, as their
receipts leave them), the received ones by `conversations.inbound_document`. Each chat row
is made by the services' own code: `record_outbound` with the contact's last sent message,
then, in a third of the conversations, `record_inbound` with a last received one (so those
chats are unread). Then, one call at a time, `--calls` calls of each read to one
ingress-api process:

- `GET /contacts/{phone}/messages?limit=30` of random contacts: the first page, and the
  page after their 60th newest message (a cursor two pages deep);
- `GET /chats?limit=50`: the first page, and the page after the 5,000th chat;

each beside as many calls to a bare aiohttp handler answering the same bytes
(`bench._bare_json`), with p50, p99 and the ratio of the p99s.

    LANEGATE_TEST_STORE=ferretdb .venv/bin/python -m bench.history [--messages 1000000]
        [--contacts 10000] [--calls 300]

(`make bench-history`). The store is the one `LANEGATE_TEST_STORE` names; mongoeco is
far too slow for a million documents, so the figures come from FerretDB on PostgreSQL.
"""

import argparse
import asyncio
import random
import secrets
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any, NamedTuple

import aiohttp
import uvloop

from bench._load import percentile
from bench.otp import bench_stack, tenant
from devtools.stack import free_port
from ingress_api.accept.accepting import MessageToAccept, content_of, document
from ingress_api.auth import Caller
from ingress_api.requests import newest_first_cursor
from ingress_api.schemas.messages import TextMessage
from lanegate.conversations import inbound_document, record_inbound, record_outbound
from lanegate.events import MessageReceived, utcnow
from lanegate.providers.sandbox import phone_number_for
from lanegate.secrets import new_key
from lanegate.store import Document, Store

PAGE, CHATS_PAGE = 30, 50
DEEP_MESSAGES, DEEP_CHATS = 60, 5000
SPAN = timedelta(days=30)
CONTACTS_PER_BATCH = 100


def phone(contact: int) -> str:
    return f"5491155{contact:06d}"


class Conversation(NamedTuple):
    """One contact's history as loaded: its number and the cursor `DEEP_MESSAGES` deep."""

    phone: str
    deep_cursor: str


class Loader:
    """Writes the history of one tenant's instance, as the services would have left it."""

    def __init__(self, store: Store, instance: Document, contacts: int, messages: int) -> None:
        self.store, self.instance = store, instance
        self.caller = Caller(instance["tenantId"], "bench")
        self.contacts, self.per_contact = contacts, max(2, messages // contacts)
        self.started = utcnow() - SPAN
        self.step = SPAN / (self.per_contact * contacts + 1)
        self.recipient = phone_number_for(instance["_id"])

    def at(self, contact: int, n: int) -> datetime:
        """When message `n` of a contact was written: conversations interleave in time."""
        return self.started + self.step * (n * self.contacts + contact)

    def sent(self, contact: int, n: int) -> Document:
        body = TextMessage.model_validate(
            {"instanceName": self.instance["_id"], "to": phone(contact), "text": f"Hola {n}"}
        )
        message = document(
            self.caller, MessageToAccept(body, "text", content_of("text", body)), self.instance
        )
        at = self.at(contact, n)
        second = timedelta(seconds=1)
        return message | {
            "createdAt": at,
            "queuedAt": at,
            "status": "sent",
            "sentAt": at + second,
            "deliveredAt": at + 2 * second,
            "readAt": at + 3 * second,
            "providerMessageId": "SBX" + secrets.token_hex(14).upper(),
        }

    def received(self, contact: int, n: int) -> tuple[MessageReceived, datetime]:
        at = self.at(contact, n)
        event = MessageReceived(
            tenantId=self.instance["tenantId"],
            instanceName=self.instance["_id"],
            sender=phone(contact),
            pushName=f"Contact {contact}",
            messageType="text",
            text=f"Pregunta {n}",
            providerMessageId="SBX" + secrets.token_hex(14).upper(),
            sentAt=int(at.timestamp()),
        )
        return event, at

    def unread(self, contact: int) -> bool:
        """Whether the contact wrote last (a third of the conversations)."""
        return contact % 3 == 0

    def outbound(self, contact: int, n: int) -> bool:
        """Whether message `n` was sent: turns alternate, ending with the contact's when
        the chat is unread, else with the tenant's."""
        from_the_end = self.per_contact - 1 - n
        return (from_the_end % 2 == 0) != self.unread(contact)

    def conversation(self, contact: int) -> tuple[list[Document], list[Document], Conversation]:
        """A contact's stored messages (all but an unread last one) and its deep cursor."""
        sent, received = [], []
        newest_first: list[tuple[datetime, str]] = []
        for n in range(self.per_contact):
            last = n == self.per_contact - 1
            if self.outbound(contact, n):
                message = self.sent(contact, n)
                sent.append(message)
                newest_first.append((message["createdAt"], message["_id"]))
            elif not (last and self.unread(contact)):
                event, at = self.received(contact, n)
                kept = inbound_document(event, self.recipient, at)
                received.append(kept)
                newest_first.append((at, kept["_id"]))
        newest_first.reverse()
        at, message_id = newest_first[min(DEEP_MESSAGES, len(newest_first)) - 1]
        return sent, received, Conversation(phone(contact), newest_first_cursor(at, message_id))

    async def load(self) -> list[Conversation]:
        conversations: list[Conversation] = []
        for first in range(0, self.contacts, CONTACTS_PER_BATCH):
            batch = range(first, min(first + CONTACTS_PER_BATCH, self.contacts))
            sent: list[Document] = []
            received: list[Document] = []
            last_sent: list[Document] = []
            for contact in batch:
                out, into, conversation = self.conversation(contact)
                sent += out
                received += into
                last_sent.append(out[-1])
                conversations.append(conversation)
            await self.store.messages.insert_many(sent, ordered=False)
            await self.store.inbound_messages.insert_many(received, ordered=False)
            await record_outbound(self.store, last_sent)
            for contact in batch:
                if self.unread(contact):
                    event, at = self.received(contact, self.per_contact - 1)
                    await record_inbound(self.store, event, self.recipient, at)
            print(f"  loaded {len(conversations)} of {self.contacts} contacts", flush=True)
        return conversations


async def timed(http: aiohttp.ClientSession, base: str, key: str, paths: list[str]) -> list[float]:
    """Milliseconds of each GET, one at a time, in order (after a few unrecorded ones)."""
    for path in paths[:5]:
        async with http.get(base + path, headers={"apikey": key}) as r:
            await r.read()
    latencies = []
    for path in paths:
        started = time.perf_counter()
        async with http.get(base + path, headers={"apikey": key}) as r:
            await r.read()
            if r.status != 200:
                raise RuntimeError(f"GET {path} answered {r.status}: {await r.text()}")
        latencies.append((time.perf_counter() - started) * 1000)
    return sorted(latencies)


async def bare_latencies(http: aiohttp.ClientSession, body: bytes, calls: int) -> list[float]:
    """The same calls answered by a bare aiohttp process with `body`."""
    with tempfile.NamedTemporaryFile(suffix=".json") as file:
        file.write(body)
        file.flush()
        port = free_port()
        server = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench._bare_json", "--port", str(port), "--body", file.name
        )
        try:
            base = f"http://127.0.0.1:{port}"
            for _ in range(100):
                try:
                    async with http.get(base + "/ready") as r:
                        await r.read()
                    break
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.1)
            return await timed(http, base, "", ["/read"] * calls)
        finally:
            server.terminate()
            await server.wait()


def line(name: str, gateway: list[float], bare: list[float], size: int) -> dict[str, float]:
    figures = {
        "p50": percentile(gateway, 0.5),
        "p99": percentile(gateway, 0.99),
        "bare p50": percentile(bare, 0.5),
        "bare p99": percentile(bare, 0.99),
    }
    figures["ratio"] = figures["p99"] / figures["bare p99"]
    print(
        f"{name:34} p50 {figures['p50']:7.1f} ms  p99 {figures['p99']:7.1f} ms | bare p50 "
        f"{figures['bare p50']:5.1f} ms  p99 {figures['bare p99']:5.1f} ms | ratio "
        f"{figures['ratio']:.0f} ({size / 1024:.1f} KiB)",
        flush=True,
    )
    return figures


async def deep_chats_cursor(store: Store, tenant_id: str, deep: int) -> str:
    """The cursor after the tenant's `deep`th newest chat."""
    found = store.chats.find({"tenantId": tenant_id}).sort([("lastMessageAt", -1), ("_id", -1)])
    [chat] = await found.skip(deep - 1).limit(1).to_list(None)
    return newest_first_cursor(chat["lastMessageAt"], chat["_id"])


def reads(
    conversations: list[Conversation], chats_cursor: str, calls: int
) -> Iterator[tuple[str, list[str]]]:
    picked = random.Random(23).choices(conversations, k=calls)
    yield (
        "conversation, first page",
        [f"/contacts/{c.phone}/messages?limit={PAGE}" for c in picked],
    )
    yield (
        f"conversation, after {DEEP_MESSAGES} messages",
        [f"/contacts/{c.phone}/messages?limit={PAGE}&cursor={c.deep_cursor}" for c in picked],
    )
    yield "chats, first page", [f"/chats?limit={CHATS_PAGE}"] * calls
    yield (
        f"chats, after {DEEP_CHATS} chats",
        [f"/chats?limit={CHATS_PAGE}&cursor={chats_cursor}"] * calls,
    )


async def run(args: argparse.Namespace) -> dict[str, Any]:
    admin_key = secrets.token_urlsafe(32)
    results: dict[str, Any] = {}
    async with bench_stack(new_key(), admin_key) as (stack, store):
        api = stack.url("ingress_api")
        tenant_id, key, name = await tenant(api, admin_key)
        instance = await store.instances.find_one({"_id": name})
        assert instance is not None
        started = time.monotonic()
        conversations = await Loader(store, instance, args.contacts, args.messages).load()
        stored = await store.messages.estimated_document_count()
        stored += await store.inbound_messages.estimated_document_count()
        print(
            f"{stored} messages over {args.contacts} contacts ({stack.store.engine}) "
            f"in {time.monotonic() - started:.0f} s",
            flush=True,
        )
        chats_cursor = await deep_chats_cursor(store, tenant_id, min(DEEP_CHATS, args.contacts))
        timeout = aiohttp.ClientTimeout(total=None)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            for read, paths in reads(conversations, chats_cursor, args.calls):
                async with http.get(api + paths[0], headers={"apikey": key}) as r:
                    body = await r.read()
                gateway = await timed(http, api, key, paths)
                bare = await bare_latencies(http, body, args.calls)
                results[read] = line(read, gateway, bare, len(body))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.history")
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--contacts", type=int, default=10_000)
    parser.add_argument("--calls", type=int, default=300)
    uvloop.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
