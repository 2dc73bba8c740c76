"""Pulling one instance's templates from Meta into the store."""

import asyncio
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import aiohttp
import structlog
from pymongo import UpdateOne

from lanegate.events import utcnow
from lanegate.outbound import Outbound
from lanegate.providers import ProviderError
from lanegate.providers.calls import Refused, record_refusal
from lanegate.providers.cloud_templates import THROTTLE_CODES, TooManyPages, template_pages
from lanegate.providers.graph import GraphError
from lanegate.secrets import Keyring
from lanegate.store import Document, Store
from lanegate.templates import stored, template_id
from template_sync.metrics import SYNCS, TEMPLATES_DELETED

log = structlog.get_logger(__name__)

NOT_CONFIGURED = "WHATSAPP_NOT_CONFIGURED"
API_ERROR = "WHATSAPP_API_ERROR"
THROTTLED = "WHATSAPP_RATE_LIMITED"
MAX_BACKOFF_SECONDS = 3600.0


class SyncFailed(Exception):
    """Raised when an instance's templates could not be pulled; `code` is the API error code."""

    def __init__(self, code: str, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.retry_after = retry_after


@dataclass(frozen=True)
class SyncLimits:
    """How much of one account a sync reads: pages, templates kept, and seconds."""

    max_pages: int = 100
    max_templates: int = 5000
    seconds: float = 120.0


class OverLimit(Exception):
    """Raised when an account lists more than a sync reads or keeps."""


class TemplateSync:
    """Syncs instances' templates; one sync per instance at a time in this process.

    Every template Meta lists is upserted with `syncedAt` set to now; once the
    last page is read, the instance's templates not seen since the sync started
    are marked deleted, so two overlapping syncs never delete what the other saw.
    A throttled WABA (Meta codes 4 and 80007) is left alone for a growing while,
    recorded on the instance so it holds across restarts.

    An account is read within limits (pages, templates kept, seconds), so one that
    pages forever or lists without end costs a bounded amount and stalls no other;
    a sync cut short marks nothing deleted, and an instance never keeps more than
    the template limit (the longest unseen go first).
    """

    def __init__(
        self,
        store: Store,
        http: Outbound,
        *,
        timeout: float,
        backoff: float,
        keyring: Keyring,
        limits: SyncLimits,
    ) -> None:
        self._limits = limits
        self._keyring = keyring
        self._store = store
        self._http = http
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._backoff = backoff
        self._locks: dict[str, asyncio.Lock] = {}

    async def sync(self, instance: Document) -> int:
        """Pull every template of the instance's WABA; returns how many Meta listed."""
        try:
            seen = await self._sync(instance)
        except SyncFailed as e:
            SYNCS.labels(e.code.removeprefix("WHATSAPP_").lower()).inc()
            raise
        SYNCS.labels("ok").inc()
        return seen

    async def live(self, instance: Document) -> list[Document]:
        """The instance's templates that Meta still lists, by name."""
        found = self._store.templates.find(
            {"tenantId": instance["tenantId"], "instanceName": instance["_id"], "deleted": False}
        ).sort("name", 1)
        return list(await found.to_list(None))

    async def _sync(self, instance: Document) -> int:
        config = self._keyring.open_config(instance.get("providerConfig"))
        if instance.get("provider") != "cloud_api" or not (
            config.get("wabaId") and config.get("accessToken")
        ):
            raise SyncFailed(
                NOT_CONFIGURED,
                f"{instance['_id']} has no WhatsApp Business Account id and access token "
                "(only cloud_api instances have templates)",
            )
        held = (instance.get("templateSync") or {}).get("backoffUntil")
        now = utcnow()
        if held is not None and held > now:
            raise SyncFailed(
                THROTTLED,
                "Meta is throttling this WhatsApp Business Account's template requests",
                retry_after=(held - now).total_seconds(),
            )
        async with self._locks.setdefault(instance["_id"], asyncio.Lock()):
            started = utcnow()
            try:
                async with asyncio.timeout(self._limits.seconds):
                    seen = await self._pull(instance, config)
            except (OverLimit, TooManyPages, TimeoutError) as e:
                reason = (
                    f"Syncing took longer than {self._limits.seconds:g} s"
                    if isinstance(e, TimeoutError)
                    else str(e)
                )
                await self._forget_beyond_limit(instance)
                await self._record(instance, {"result": "error", "error": reason})
                raise SyncFailed(API_ERROR, f"{reason}; stopped (nothing marked deleted)") from e
            except GraphError as e:
                if e.code in THROTTLE_CODES:
                    raise await self._throttled(instance, e) from e
                await self._record(instance, {"result": "error", "error": e.message})
                raise SyncFailed(
                    API_ERROR, f"Meta refused the template request: {e.message}"
                ) from e
            except ProviderError as e:
                await self._record(instance, {"result": "error", "error": e.message})
                await record_refusal(self._store, instance["_id"], e)
                # A refused base URL is the tenant's configuration, not Meta failing.
                code = e.code if isinstance(e, Refused) else API_ERROR
                raise SyncFailed(code, e.message) from e
            gone = await self._store.templates.update_many(
                {"instanceName": instance["_id"], "syncedAt": {"$lt": started}, "deleted": False},
                {"$set": {"deleted": True, "deletedAt": utcnow(), "status": "DELETED"}},
            )
            TEMPLATES_DELETED.inc(gone.modified_count)
            await self._forget_beyond_limit(instance)
            await self._record(instance, {"result": "ok", "error": None, "throttles": 0})
            log.debug(
                "templates synced",
                instance=instance["_id"],
                templates=seen,
                deleted=gone.modified_count,
            )
            return seen

    async def _pull(self, instance: Document, config: Document) -> int:
        """Upsert every page Meta lists, up to the limits; returns how many templates."""
        seen, most = 0, self._limits.max_templates
        pages = template_pages(
            self._http, config, limit=self._timeout, max_pages=self._limits.max_pages
        )
        async for page in pages:
            valid = [meta for meta in page if meta.get("id") is not None and meta.get("name")]
            room = most - seen
            seen += await self._upsert(instance, valid[:room])
            if len(valid) > room:
                raise OverLimit(f"The account lists more than {most} templates")
        return seen

    async def _upsert(self, instance: Document, templates: list[dict[str, Any]]) -> int:
        now = utcnow()
        writes = [
            UpdateOne(
                {"_id": template_id(instance["_id"], str(meta["id"]))},
                {"$set": stored(meta, instance, now), "$setOnInsert": {"createdAt": now}},
                upsert=True,
            )
            for meta in templates
        ]
        if writes:
            await self._store.templates.bulk_write(writes, ordered=False)
        return len(writes)

    async def _forget_beyond_limit(self, instance: Document) -> None:
        """Remove the instance's templates beyond the limit, the longest unseen first (those
        Meta no longer lists, then those a sync cut short did not reach)."""
        where = {"instanceName": instance["_id"]}
        extra = await self._store.templates.count_documents(where) - self._limits.max_templates
        if extra <= 0:
            return
        oldest = self._store.templates.find(where, {"_id": 1}).sort("syncedAt", 1).limit(extra)
        ids = [t["_id"] async for t in oldest]
        await self._store.templates.delete_many({"_id": {"$in": ids}})
        log.warning("templates over the limit forgotten", instance=instance["_id"], count=len(ids))

    async def _throttled(self, instance: Document, error: GraphError) -> SyncFailed:
        throttles = int((instance.get("templateSync") or {}).get("throttles") or 0) + 1
        wait = min(self._backoff * 2 ** (throttles - 1), MAX_BACKOFF_SECONDS)
        await self._record(
            instance,
            {
                "result": "throttled",
                "error": error.message,
                "throttles": throttles,
                "backoffUntil": utcnow() + timedelta(seconds=wait),
            },
        )
        log.warning("template sync throttled", instance=instance["_id"], code=error.code, wait=wait)
        return SyncFailed(
            THROTTLED,
            f"Meta is throttling this WhatsApp Business Account (code {error.code}): "
            f"{error.message}",
            retry_after=wait,
        )

    async def _record(self, instance: Document, outcome: dict[str, Any]) -> None:
        """Keep the sync's outcome on the instance (and lift a backoff unless throttled); an
        unchanged outcome is not written again, so `since` says when it began."""
        if outcome["result"] != "throttled":
            outcome = outcome | {"backoffUntil": None}
        previous = instance.get("templateSync") or {}
        if all(previous.get(key) == value for key, value in outcome.items()):
            return
        changes = {f"templateSync.{key}": value for key, value in outcome.items()}
        changes["templateSync.since"] = utcnow()
        await self._store.instances.update_one({"_id": instance["_id"]}, {"$set": changes})
