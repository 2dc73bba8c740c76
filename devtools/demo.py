"""`make run`: the whole gateway on this machine with a demo tenant, a connected instance and
an e-mail instance on a local SMTP sink.

Prints every signed webhook the demo instances get, every mail the sink takes, the API key and
curl lines; Ctrl-C stops.
"""

import asyncio
import json
import os
import secrets
import signal
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default
from pathlib import Path

import aiohttp
from aiohttp import web
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from devtools.stack import Stack, configured_ports, free_port
from lanegate.secrets import new_key
from lanegate.signing import verify_gateway_signature

TENANT = "demo"
INSTANCE = "demo__support__main"
MAIL_INSTANCE = "demo__support__mail"


class MailSink:
    """A local SMTP server that prints each mail it takes instead of delivering it."""

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        mail = BytesParser(policy=default).parsebytes(envelope.original_content or b"")
        assert isinstance(mail, EmailMessage)
        body = mail.get_body(("plain",))
        text = body.get_content().strip() if isinstance(body, EmailMessage) else ""
        files = [part.get_filename() for part in mail.iter_attachments()]
        print(
            f"mail <- {mail['From']} to {', '.join(envelope.rcpt_tos)}: "
            f"{mail['Subject']!r} {text[:200]!r}" + (f" files {files}" if files else ""),
            flush=True,
        )
        return "250 2.0.0 Ok: queued as " + secrets.token_hex(5).upper()


def receiver(secret: str) -> web.Application:
    """A webhook endpoint that verifies the signature and prints the event."""

    async def receive(request: web.Request) -> web.Response:
        raw = await request.read()
        valid = verify_gateway_signature(raw, secret, request.headers["x-gateway-signature"])
        event = json.loads(raw)
        mark = "signature ok" if valid else "SIGNATURE MISMATCH"
        print(f"webhook <- {event['event']} ({mark}): {json.dumps(event['data'])}", flush=True)
        return web.Response(status=204 if valid else 401)

    app = web.Application()
    app.router.add_post("/webhook", receive)
    return app


async def bootstrap(api: str, admin_key: str, webhook_url: str, secret: str, sink_port: int) -> str:
    """Create the demo tenant and instances, connect them, and return the tenant's API key."""
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{api}/admin/tenants",
            json={"id": TENANT, "name": "Demo"},
            headers={"apikey": admin_key},
        ) as response:
            response.raise_for_status()
            key: str = (await response.json())["apiKey"]
        headers = {"apikey": key}
        body = {"instanceName": INSTANCE, "webhookUrl": webhook_url, "webhookSecret": secret}
        async with http.post(f"{api}/instance/create", json=body, headers=headers) as response:
            response.raise_for_status()
        async with http.post(f"{api}/sandbox/{INSTANCE}/scan", headers=headers) as response:
            response.raise_for_status()
        mail = body | {
            "instanceName": MAIL_INSTANCE,
            "provider": "smtp",
            # No TLS: allowed for a loopback relay in development only.
            "providerConfig": {
                "host": "127.0.0.1",
                "port": sink_port,
                "security": "none",
                "fromAddress": "support@demo.example",
                "fromName": "Demo Support",
            },
        }
        async with http.post(f"{api}/instance/create", json=mail, headers=headers) as response:
            response.raise_for_status()
        for _ in range(100):
            async with http.get(f"{api}/instance/{INSTANCE}/status", headers=headers) as response:
                if (await response.json())["state"] == "open":
                    return key
            await asyncio.sleep(0.1)
    raise RuntimeError("the demo instance did not connect")


async def run() -> None:
    admin_key = os.environ.get("LANEGATE_ADMIN_KEY") or secrets.token_urlsafe(32)
    settings = {k: v for k, v in os.environ.items() if k.startswith("LANEGATE_")}
    settings |= {"LANEGATE_ADMIN_KEY": admin_key, "LANEGATE_ALLOW_PRIVATE_TARGETS": "true"}
    # The store is in memory, so a key made for this run seals nothing that outlives it.
    settings.setdefault("LANEGATE_SECRET_KEY", new_key())
    settings.setdefault("LANEGATE_ENV", "development")
    stack = Stack.create(Path("var/run"), settings=settings, ports=configured_ports(settings))
    secret = secrets.token_urlsafe(24)
    hook_port = free_port()
    sink = Controller(MailSink(), hostname="127.0.0.1", port=free_port())
    sink.start()
    runner = web.AppRunner(receiver(secret), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", hook_port).start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        print("starting the store and the five services (logs in var/run/) ...", flush=True)
        await asyncio.to_thread(stack.start_all)
        api = stack.url("ingress_api")
        hook = f"http://127.0.0.1:{hook_port}/webhook"
        key = await bootstrap(api, admin_key, hook, secret, sink.port)
        print(
            f"\nlanegate is running at {api}\n"
            f"  operator key (LANEGATE_ADMIN_KEY): {admin_key}\n"
            f"  tenant '{TENANT}' API key:         {key}\n"
            f"  connected sandbox instance:        {INSTANCE}\n\n"
            f"Send a message:\n"
            f"  curl -X POST {api}/message/text -H 'apikey: {key}' "
            "-H 'Content-Type: application/json' "
            f'-d \'{{"instanceName":"{INSTANCE}","to":"5491112345678",'
            '"text":"{Hello|Hi} from lanegate!","lane":"urgent"}\'\n\n'
            f"Send an e-mail (to the local SMTP sink, which prints it):\n"
            f"  curl -X POST {api}/message/text -H 'apikey: {key}' "
            "-H 'Content-Type: application/json' "
            f'-d \'{{"instanceName":"{MAIL_INSTANCE}","to":"ana@example.com",'
            '"subject":"Order {42|#42} confirmed","text":"Thanks!","html":"<b>Thanks!</b>",'
            '"lane":"urgent"}\'\n\n'
            "Webhook events and mails print below. Ctrl-C stops everything.\n",
            flush=True,
        )
        await stop.wait()
    finally:
        print("stopping ...", flush=True)
        await asyncio.to_thread(stack.stop_all)
        await runner.cleanup()
        sink.stop()


def main() -> None:
    asyncio.run(run())


if __name__ == "__main__":
    main()
