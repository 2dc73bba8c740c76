"""provider-sender wiring: providers built at startup, one consumer for dispatches and commands."""

from collections.abc import AsyncIterator
from datetime import timedelta

from aiohttp import web

from lanegate.broker import EventHandler, Reject
from lanegate.events import (
    CALLBACK_SEAL_LABEL,
    AnyEvent,
    InstanceResumed,
    MessageDispatch,
    ProviderCallback,
    ProviderCommand,
    ProviderRpc,
    utcnow,
)
from lanegate.outbound import Outbound
from lanegate.providers import Provider
from lanegate.providers.cloud_api import CloudApi
from lanegate.providers.sandbox import Sandbox
from lanegate.providers.smtp import Smtp
from lanegate.providers.waha import Waha
from lanegate.service import BROKER, KEYRING, SETTINGS, STORE, base_app, consume, run
from lanegate.settings import Settings
from provider_sender.callbacks import GatewayCallbacks
from provider_sender.dispatch import Dispatcher
from provider_sender.files import Files
from provider_sender.sessions import Sessions

SANDBOX = web.AppKey("sandbox", Sandbox)
PROVIDERS = web.AppKey("providers", dict[str, Provider])
HTTP = web.AppKey("http", Outbound)
FILES = web.AppKey("files", Files)


async def providers(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    # Provider base URLs and attachment URLs are tenant-given: one guarded client for both.
    app[HTTP] = http = Outbound(
        allow_private=settings.allow_private_targets, timeout=settings.provider_timeout_seconds
    )
    app[SANDBOX] = Sandbox(
        app[STORE],
        GatewayCallbacks(app[STORE], app[BROKER]),
        delivered_after=settings.sandbox_delivered_after_seconds,
        read_after=settings.sandbox_read_after_seconds,
    )
    registry: list[Provider] = [
        app[SANDBOX],
        CloudApi(http, timeout=settings.provider_timeout_seconds, keyring=app[KEYRING]),
        Waha(
            http,
            keyring=app[KEYRING],
            timeout=settings.provider_timeout_seconds,
            public_url=settings.public_url,
            lock_seconds=settings.reach_out_lock_seconds,
        ),
        Smtp(
            keyring=app[KEYRING],
            timeout=settings.provider_timeout_seconds,
            allow_private=settings.allow_private_targets,
            ca_file=settings.smtp_ca_file,
        ),
    ]
    app[PROVIDERS] = {provider.name: provider for provider in registry}
    app[FILES] = Files(
        app[STORE],
        http,
        max_bytes=settings.attachment_max_bytes,
        timeout=settings.attachment_timeout_seconds,
    )
    yield
    for provider in registry:
        await provider.close()
    await http.close()


def handler(app: web.Application) -> EventHandler:
    settings = app[SETTINGS]
    sandbox = app[SANDBOX]
    registry = app[PROVIDERS]
    callbacks = GatewayCallbacks(app[STORE], app[BROKER])
    dispatcher = Dispatcher(
        app[STORE],
        app[BROKER],
        registry,
        settings.dispatch_timeout_seconds,
        callbacks=callbacks,
        files=app[FILES],
        keyring=app[KEYRING],
        max_attempts=settings.provider_max_attempts,
        backoff=settings.provider_backoff_seconds,
    )
    sessions = Sessions(
        app[STORE],
        app[BROKER],
        registry,
        callbacks,
        seal_keys=app[KEYRING].derived_keys(CALLBACK_SEAL_LABEL),
    )

    async def handle(event: AnyEvent) -> None:
        if isinstance(event, MessageDispatch):
            await dispatcher.handle(event)
        elif isinstance(event, ProviderRpc):
            await sessions.rpc(event)
        elif isinstance(event, ProviderCallback):
            await sessions.callback(event)
        elif isinstance(event, ProviderCommand):
            await command(event)
        elif isinstance(event, InstanceResumed):
            await dispatcher.resumed(event)
        else:
            raise Reject(f"provider-sender does not handle {event.kind}")

    async def command(event: ProviderCommand) -> None:
        instance = await app[STORE].instances.find_one({"_id": event.instanceName})
        if instance is None:
            raise Reject(f"unknown instance {event.instanceName}")
        if event.command == "sandbox.scan":
            await sandbox.scan(instance)
        elif event.command == "sandbox.disconnect":
            await sandbox.disconnect(instance)
        elif event.command == "sandbox.ban":
            seconds = event.payload.get("seconds")
            until = utcnow() + timedelta(seconds=float(seconds)) if seconds else None
            await sandbox.ban(instance, str(event.payload.get("reason", "banned")), until=until)
        else:
            await sandbox.inbound(
                instance,
                sender=str(event.payload["from"]),
                text=str(event.payload["text"]),
                push_name=event.payload.get("pushName"),
            )

    return handle


def build(settings: Settings) -> web.Application:
    """The provider-sender application."""
    app = base_app(settings, "provider-sender")
    app.cleanup_ctx.append(providers)
    consume(app, "provider-sender", handler)
    return app


def main() -> None:
    run("provider-sender", build, lambda s: s.sender_port)
