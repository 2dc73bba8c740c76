"""From an event to a delivery record, and from a claimed record to an outcome."""

import asyncio
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import aiohttp
import structlog

from lanegate.events import AnyEvent, MessageStatus, WebhookReplay, new_id, utcnow
from lanegate.outbound import Outbound
from lanegate.secrets import Keyring
from lanegate.store import Document
from lanegate.timestamps import iso_utc
from webhook_dispatcher.attempt import Attempt, post
from webhook_dispatcher.endpoints import EndpointPool, Job
from webhook_dispatcher.envelope import envelope
from webhook_dispatcher.metrics import DEAD_LETTERS, DELIVERIES, ENDPOINTS_DISABLED
from webhook_dispatcher.records import Records, new_claim
from webhook_dispatcher.schedule import retry_delay

log = structlog.get_logger(__name__)

DISABLED_ERROR = "webhook endpoint disabled"


@dataclass(frozen=True)
class Policy:
    """How deliveries are attempted: timeout, retry schedule, when to give up on an endpoint."""

    timeout: float
    schedule: tuple[float, ...]
    jitter: float
    disable_after: float


class Deliverer:
    """Turns events into delivery records and runs each claimed attempt.

    Each event becomes one stored delivery keyed by the event id, which is also
    the `webhook-id` header, so a receiver can dedupe and a redelivered event is
    never posted again once it succeeded. The broker event is acknowledged as
    soon as the record is stored: from then on the store is the delivery's
    source of truth, and retries wait in it (`nextAttemptAt`), not in the broker.
    """

    def __init__(
        self,
        records: Records,
        http: Outbound,
        policy: Policy,
        *,
        concurrency: int,
        keyring: Keyring,
    ) -> None:
        self._keyring = keyring
        self._records = records
        self._http = http
        self._policy = policy
        self._timeout = aiohttp.ClientTimeout(total=policy.timeout)
        self.pool = EndpointPool(self.run, concurrency=concurrency)
        # Per instance, the hand-over of the latest event: the next one waits for it, so
        # first attempts reach the endpoint pool in the order the broker delivered them.
        self._tails: dict[str, asyncio.Future[None]] = {}

    async def handle(self, event: AnyEvent) -> None:
        """Consume one broker event: store its delivery and queue the first attempt."""
        if isinstance(event, WebhookReplay):
            await self.replay(event.deliveryIds)
            return
        previous = self._tails.get(event.instanceName)
        mine: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._tails[event.instanceName] = mine
        try:
            job = await self._record(event)
            if previous is not None:
                await asyncio.shield(previous)
            if job is not None and not self.pool.submit(job):
                log.warning("endpoint backlog full; the poller will pick it up", url=job.url)
        finally:
            mine.set_result(None)
            if self._tails.get(event.instanceName) is mine:
                del self._tails[event.instanceName]

    async def _record(self, event: AnyEvent) -> Job | None:
        body = envelope(event)
        if body is None:
            return None
        instance = await self._records.instance(event.instanceName)
        if instance is None:
            log.info("instance unknown; event dropped")
            return None
        if instance.get("webhookEvents") and body["event"] not in instance["webhookEvents"]:
            return None
        url = instance.get("webhookUrl")
        if isinstance(event, MessageStatus):
            url = await self._records.message_webhook(event.messageId, event.tenantId) or url
        if not url:
            log.info("no webhook for instance; event dropped")
            return None
        fields: Document = {
            "_id": event.id,
            "tenantId": event.tenantId,
            "instanceName": event.instanceName,
            "event": body["event"],
            "url": url,
            "body": json.dumps(body, separators=(",", ":"), ensure_ascii=False),
        }
        if isinstance(event, MessageStatus):
            fields["messageId"] = event.messageId
        if instance.get("webhookEnabled") is False and url == instance.get("webhookUrl"):
            fields |= {"status": "dead", "lastError": DISABLED_ERROR, "deadAt": utcnow()}
        claim = new_claim()
        record, created = await self._records.create(fields, claim)
        if not created:
            return None
        return Job(record, claim, record["nextAttemptAt"], first=True, instance=instance)

    async def replay(self, delivery_ids: list[str]) -> None:
        """Attempt deliveries the API reset for replay (the poller would reach them too)."""
        for delivery_id in delivery_ids:
            claim = new_claim()
            record = await self._records.claim_by_id(delivery_id, claim)
            if record is not None:
                self.pool.submit(Job(record, claim, record["nextAttemptAt"], first=False))

    async def run(self, job: Job) -> None:
        """Make one claimed attempt and record it; the endpoint pool calls this."""
        record = job.record
        margin = timedelta(seconds=self._policy.timeout + 2)
        if job.lease_until - utcnow() < margin:
            # Waited in the endpoint's queue: renew the lease, unless someone took the record.
            renewed = await self._records.extend(record["_id"], job.claim)
            if renewed is None:
                return
            job.lease_until = renewed
        instance = job.instance or await self._records.instance(record["instanceName"])
        own_url = instance is not None and record["url"] == instance.get("webhookUrl")
        if instance is None or (own_url and instance.get("webhookEnabled") is False):
            if await self._records.finish(
                record["_id"], job.claim, None, "dead", error=DISABLED_ERROR
            ):
                self._records.count_outcome(record, "dead", (instance or {}).get("provider"))
            self._count(record, "dead")
            return
        outcome = await post(
            self._http,
            record["url"],
            record["body"],
            webhook_id=record["_id"],
            secret=self._keyring.decrypt(instance["webhookSecret"]),
            limit=self._timeout,
        )
        status, next_at = self._verdict(record, outcome)
        if not await self._records.finish(
            record["_id"], job.claim, outcome.stored(), status, next_at=next_at
        ):
            log.warning("claim lost while attempting", delivery_id=record["_id"])
        else:
            self._records.count_outcome(record, status, instance.get("provider"))
        self._count(record, status, outcome)
        if own_url:
            await self._endpoint_health(instance, record, outcome)

    def _verdict(self, record: Document, outcome: Attempt) -> tuple[str, datetime | None]:
        if outcome.ok:
            return "delivered", None
        if outcome.gone or outcome.refused:
            return "dead", None
        delay = retry_delay(
            self._policy.schedule,
            int(record.get("attemptCount", 0)) + 1,
            jitter=self._policy.jitter,
            retry_after=outcome.retry_after,
        )
        if delay is None:
            return "dead", None
        return "retrying", outcome.at + timedelta(seconds=delay)

    async def _endpoint_health(
        self, instance: Document, record: Document, outcome: Attempt
    ) -> None:
        """Track the instance endpoint's failing streak; 410 or a long streak disables it."""
        name, url = record["instanceName"], record["url"]
        if outcome.ok:
            if instance.get("webhookFailingSince") is not None:
                await self._records.mark_healthy(name, url)
            return
        if outcome.gone:
            await self._disable(record, "endpoint answered 410 Gone", None)
            return
        since = await self._records.mark_failing(name, url, outcome.at)
        if outcome.at - since >= timedelta(seconds=self._policy.disable_after):
            await self._disable(record, f"failing since {iso_utc(since)}", since)

    async def _disable(self, record: Document, reason: str, since: datetime | None) -> None:
        name, url = record["instanceName"], record["url"]
        if not await self._records.disable(name, url, reason):
            return
        ENDPOINTS_DISABLED.inc()
        log.warning("webhook endpoint disabled", instance=name, reason=reason)
        now = utcnow()
        data: dict[str, Any] = {
            "url": url,
            "reason": reason,
            "failingSince": iso_utc(since) if since else None,
        }
        body = {
            "event": "instance.webhook_disabled",
            "instanceName": name,
            "data": data,
            "timestamp": iso_utc(now),
        }
        # Kept as a dead delivery: replaying after re-enabling tells the receiver what happened.
        await self._records.create(
            {
                "_id": new_id(),
                "tenantId": record["tenantId"],
                "instanceName": name,
                "event": "instance.webhook_disabled",
                "url": url,
                "body": json.dumps(body, separators=(",", ":")),
                "status": "dead",
                "lastError": DISABLED_ERROR,
                "deadAt": now,
            },
            None,
        )

    @staticmethod
    def _count(record: Document, status: str, outcome: Attempt | None = None) -> None:
        result = {"delivered": "delivered", "dead": "dead"}.get(status, "retry")
        DELIVERIES.labels(result).inc()
        if status == "dead":
            DEAD_LETTERS.labels(record["instanceName"]).inc()
        log.info(
            "webhook attempt",
            delivery_id=record["_id"],
            instance=record["instanceName"],
            attempt=int(record.get("attemptCount", 0)) + 1,
            status_code=outcome.status_code if outcome else None,
            error=outcome.error if outcome else DISABLED_ERROR,
            result=result,
        )
