"""template-sync wiring: the Graph HTTP client, the periodic sync, and one consumer for
sync requests, template RPCs from ingress and Meta's template status callbacks."""

from collections.abc import AsyncIterator
from typing import Any

import structlog
from aiohttp import web

from lanegate.broker import EventHandler, Reject, Retry
from lanegate.events import (
    AnyEvent,
    TemplateRpc,
    TemplateStatusReported,
    TemplateSyncRequested,
    utcnow,
)
from lanegate.outbound import Outbound
from lanegate.service import BROKER, KEYRING, SETTINGS, STORE, base_app, consume, run
from lanegate.settings import Settings
from lanegate.templates import view
from template_sync.status import apply_status
from template_sync.sync import THROTTLED, SyncFailed, SyncLimits, TemplateSync
from template_sync.timer import periodic

log = structlog.get_logger(__name__)

SYNCER = web.AppKey("syncer", TemplateSync)


async def syncer(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    # Each instance's Graph base URL is tenant-given: the guarded client.
    http = Outbound(
        allow_private=settings.allow_private_targets, timeout=settings.provider_timeout_seconds
    )
    app[SYNCER] = TemplateSync(
        app[STORE],
        http,
        timeout=settings.provider_timeout_seconds,
        backoff=settings.template_sync_backoff_seconds,
        keyring=app[KEYRING],
        limits=SyncLimits(
            max_pages=settings.template_sync_max_pages,
            max_templates=settings.template_sync_max_templates,
            seconds=settings.template_sync_account_seconds,
        ),
    )
    yield
    await http.close()


def handler(app: web.Application) -> EventHandler:
    store, broker = app[STORE], app[BROKER]

    async def handle(event: AnyEvent) -> None:
        if isinstance(event, TemplateRpc):
            await broker.reply(event.replyTo, event.id, await answer(event))
        elif isinstance(event, TemplateSyncRequested):
            await requested(event)
        elif isinstance(event, TemplateStatusReported):
            await apply_status(store, broker, event)
        else:
            raise Reject(f"template-sync does not handle {event.kind}")

    async def answer(event: TemplateRpc) -> dict[str, Any]:
        if event.deadline < utcnow():
            return {"error": {"code": "EXPIRED", "message": "The request expired unread"}}
        instance = await store.instances.find_one(
            {"_id": event.instanceName, "tenantId": event.tenantId}
        )
        if instance is None:
            return {"error": {"code": "NOT_FOUND", "message": f"{event.instanceName} not found"}}
        try:
            seen = await app[SYNCER].sync(instance)
        except SyncFailed as e:
            return {"error": {"code": e.code, "message": e.message, "retryAfter": e.retry_after}}
        templates = await app[SYNCER].live(instance)
        return {"synced_count": seen, "templates": [view(t) for t in templates]}

    async def requested(event: TemplateSyncRequested) -> None:
        instance = await store.instances.find_one(
            {"_id": event.instanceName, "tenantId": event.tenantId}
        )
        if instance is None:
            raise Reject(f"unknown instance {event.instanceName}")
        try:
            await app[SYNCER].sync(instance)
        except SyncFailed as e:
            if e.code == THROTTLED and e.retry_after is not None:
                raise Retry(after=e.retry_after, reason=e.message) from e
            log.warning("requested template sync failed", code=e.code, error=e.message)

    return handle


def build(settings: Settings) -> web.Application:
    """The template-sync application."""
    app = base_app(settings, "template-sync")
    app.cleanup_ctx.append(syncer)
    app.cleanup_ctx.append(periodic(SYNCER))
    consume(app, "template-sync", handler)
    return app


def main() -> None:
    run("template-sync", build, lambda s: s.template_sync_port)
