"""E-mails per second through provider-sender to a local SMTP server, beside bare aiosmtplib.

Starts the store, ingress-api, lane-scheduler and provider-sender (real processes, RabbitMQ,
the embedded store) and a local SMTP sink (aiosmtpd, counting what it takes), opens
`--instances` smtp instances on it (no lane gaps), and queues `--mails` e-mails with a 10 KB
html body, then `--attached` e-mails with a 1 MiB attachment fetched by URL. Each figure is
mails/s from the first accept to the sink's last `250`, and provider-sender's peak resident
set (VmHWM). The baseline sends the same mails from this process with aiosmtplib alone, one
connection per mail as the provider does, `--instances` at a time.

Run: .venv/bin/python -m bench.email [--mails 400] [--attached 20] [--instances 4]
(needs the local RabbitMQ at 127.0.0.1:5672)
"""

import argparse
import asyncio
import os
import secrets
import threading
import time
import uuid
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import aiohttp
import aiosmtplib
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from bench.attachments import AMQP_URL, Api, file_server, memory_mib, tenant
from devtools.stack import Stack, delete_topology, free_port
from lanegate.secrets import new_key

# 10 KB of html (the plain part is capped at 4,096 characters, as for WhatsApp texts).
BODY = ("<p>Your order has shipped.</p>" * 340)[:10_000]
ATTACHMENT = os.urandom(1024 * 1024)
LANES = {"urgent": {"delayMs": [0, 0]}}
# Bulk requests of 80 mails stay under the default 1 MiB request body limit.
BATCH = 80


class Sink:
    """An SMTP server that takes every mail and counts it."""

    def __init__(self) -> None:
        self.taken = 0
        self._lock = threading.Lock()

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        with self._lock:
            self.taken += 1
        return "250 2.0.0 Ok: queued as " + secrets.token_hex(5).upper()

    async def reach(self, count: int, within: float) -> None:
        """Wait until the sink has taken `count` mails in all."""
        deadline = time.monotonic() + within
        while self.taken < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the sink took {self.taken} of {count} mails")
            await asyncio.sleep(0.02)


async def bare(port: int, mails: int, parallel: int, attachment: bytes | None) -> float:
    """Mails/s sent by aiosmtplib alone, one connection per mail, `parallel` at a time."""
    gate = asyncio.Semaphore(parallel)

    async def one(n: int) -> None:
        mail = EmailMessage()
        mail["From"], mail["To"], mail["Subject"] = "shop@bench.example", f"c{n}@x.example", "x"
        mail.set_content("Your order")
        mail.add_alternative(BODY, subtype="html")
        if attachment is not None:
            mail.add_attachment(attachment, maintype="application", subtype="octet-stream")
        async with gate:
            await aiosmtplib.send(mail, hostname="127.0.0.1", port=port, start_tls=False)

    started = time.monotonic()
    await asyncio.gather(*(one(n) for n in range(mails)))
    return mails / (time.monotonic() - started)


async def through_gateway(
    api: Api, sink: Sink, names: list[str], items: list[dict[str, Any]]
) -> float:
    """Mails/s from the first accept to the sink's last `250`."""
    before = sink.taken
    started = time.monotonic()
    for start in range(0, len(items), BATCH):
        batch = [
            item | {"instanceName": names[(start + n) % len(names)], "lane": "urgent"}
            for n, item in enumerate(items[start : start + BATCH])
        ]
        await api.call("POST", "/message/bulk", json={"messages": batch})
    await sink.reach(before + len(items), 1800)
    return len(items) / (time.monotonic() - started)


async def measure(
    stack: Stack, admin_key: str, sink_port: int, sink: Sink, args: argparse.Namespace
) -> dict[str, Any]:
    base = stack.url("ingress_api")
    key = await tenant(base, admin_key)
    sender = stack.processes["provider_sender"].pid
    config = {"host": "127.0.0.1", "port": sink_port, "security": "none"}
    config |= {"fromAddress": "shop@bench.example"}
    found: dict[str, Any] = {}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None)) as http:
        api = Api(http, base, key)
        names = [f"bench__support__mail{n}" for n in range(args.instances)]
        for name in names:
            body = {"instanceName": name, "lanes": LANES, "provider": "smtp"}
            body |= {"providerConfig": config, "webhookUrl": "http://127.0.0.1:9/hook"}
            await api.call("POST", "/instance/create", json=body | {"webhookSecret": "b" * 16})
        warm = [{"type": "text", "to": "warm@x.example", "text": "Your order", "html": BODY}]
        await through_gateway(api, sink, names, warm)
        found["bare_rss"] = memory_mib(sender)["VmHWM"]
        texts = [
            {"type": "text", "to": f"c{n}@x.example", "subject": "Order {shipped|sent}"}
            | {"text": "Your order", "html": BODY}
            for n in range(args.mails)
        ]
        found["text_rate"] = await through_gateway(api, sink, names, texts)
        found["text_rss"] = memory_mib(sender)["VmHWM"]
        async with file_server(ATTACHMENT) as served:
            files = [
                {"type": "document", "to": f"c{n}@x.example", "caption": "Your invoice"}
                | {"documentUrl": f"{served}/invoice-{n}.bin", "fileName": "invoice.bin"}
                for n in range(args.attached)
            ]
            found["file_rate"] = await through_gateway(api, sink, names, files)
        found["file_rss"] = memory_mib(sender)["VmHWM"]
    found["bare_text"] = await bare(sink_port, args.mails, args.instances, None)
    found["bare_file"] = await bare(sink_port, args.attached, args.instances, ATTACHMENT)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.email")
    parser.add_argument("--mails", type=int, default=400)
    parser.add_argument("--attached", type=int, default=20)
    parser.add_argument("--instances", type=int, default=4)
    args, _ = parser.parse_known_args()
    namespace = f"lgbench-{uuid.uuid4().hex[:8]}"
    admin_key = secrets.token_urlsafe(32)
    sink = Sink()
    sink_port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=sink_port, data_size_limit=0)
    stack = Stack.create(
        Path("var/bench-logs") / namespace,
        settings={
            "LANEGATE_AMQP_URL": AMQP_URL,
            "LANEGATE_NAMESPACE": namespace,
            "LANEGATE_MONGO_DB": "lanegate_bench",
            "LANEGATE_ADMIN_KEY": admin_key,
            "LANEGATE_SECRET_KEY": new_key(),
            # A relay without TLS is allowed on loopback in development only.
            "LANEGATE_ENV": "development",
            "LANEGATE_ALLOW_PRIVATE_TARGETS": "true",
            "LANEGATE_RATE_LIMIT_PER_MINUTE": str(10**6),
        },
    )
    controller.start()
    try:
        stack.start_store()
        for name in ("ingress_api", "lane_scheduler", "provider_sender"):
            stack.start(name)
        found = asyncio.run(measure(stack, admin_key, sink_port, sink, args))
    finally:
        stack.stop_all()
        controller.stop()
        asyncio.run(delete_topology(AMQP_URL, namespace))
    print(f"email: {args.instances} smtp instances on a local SMTP sink, no lane gaps")
    print(f"  provider-sender bare (started, one mail sent): {found['bare_rss']:6.1f} MiB peak")
    for label, rate, baseline, rss in (
        (f"{args.mails} x 10 KB body", found["text_rate"], found["bare_text"], found["text_rss"]),
        (
            f"{args.attached} x 1 MiB attachment",
            found["file_rate"],
            found["bare_file"],
            found["file_rss"],
        ),
    ):
        print(
            f"  {label}: {rate:7.1f} mails/s through the gateway, bare aiosmtplib {baseline:7.1f}"
            f" mails/s ({rate / baseline:.0%}); provider-sender peak {rss:.1f} MiB"
        )


if __name__ == "__main__":
    main()
