"""The delivery record in the store: created once per event, claimed before every attempt."""

import secrets
from datetime import datetime, timedelta
from typing import Any

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from lanegate import usage
from lanegate.events import utcnow
from lanegate.store import Document, Store
from lanegate.store.grouped import grouped_inserts, grouped_updates
from lanegate.ttl_cache import TtlCache

OPEN = ("pending", "retrying")
# The ends of a delivery a tenant's usage counts.
OUTCOMES_COUNTED = {
    "delivered": usage.Counted.WEBHOOKS_DELIVERED,
    "dead": usage.Counted.WEBHOOKS_FAILED,
}


def new_claim() -> str:
    """A claim token unique to one attempt by one dispatcher."""
    return secrets.token_hex(8)


class Records:
    """Reads and conditional writes of `webhook_deliveries` (and the instance's webhook state).

    A record that still needs an attempt (`pending` or `retrying`) always has a
    `nextAttemptAt`; whoever wants to post it first claims it with a conditional
    update that moves `nextAttemptAt` one lease ahead and writes its own `claim`
    token. Only one dispatcher replica can win that update, a crashed claimant's
    lease simply runs out, and a restart finds every due retry in the store.
    """

    def __init__(self, store: Store, *, lease_seconds: float) -> None:
        self._store = store
        self._deliveries = store.webhook_deliveries
        self.lease = timedelta(seconds=lease_seconds)
        # Nothing kept (a webhook change applies to the next event): only reads under way
        # are shared, so a burst of one instance's events reads its settings once.
        self._instances: TtlCache[str, Document] = TtlCache(0)

    async def create(self, fields: Document, claim: str | None) -> tuple[Document, bool]:
        """Insert an event's record, claimed by `claim`, unless it exists; (record, created).

        Records created at once share one insert (a redelivered event finds its record)."""
        open_ = fields.get("status", "pending") in OPEN
        now = utcnow()
        record: Document = {
            "_id": fields["_id"],
            "status": "pending",
            "attempts": [],
            "attemptCount": 0,
            "attemptTotal": 0,
            "lastStatusCode": None,
            "lastError": None,
            "createdAt": now,
            "nextAttemptAt": now + self.lease if open_ else None,
            "claim": claim if open_ else None,
            **fields,
        }
        try:
            await grouped_inserts(self._store, self._deliveries).insert(record)
        except DuplicateKeyError:
            existing = await self._deliveries.find_one({"_id": fields["_id"]})
            if existing is None:  # delivery records are never deleted
                raise
            return existing, False
        return record, claim is not None and open_

    async def extend(self, delivery_id: str, claim: str) -> datetime | None:
        """Push a held claim's lease one lease ahead; None when the claim was lost meanwhile."""
        until = utcnow() + self.lease
        result = await self._deliveries.update_one(
            {"_id": delivery_id, "claim": claim, "status": {"$in": list(OPEN)}},
            {"$set": {"nextAttemptAt": until}},
        )
        return until if result.modified_count else None

    async def due(self, limit: int, skip_urls: list[str]) -> list[Document]:
        """Open records whose next attempt (or expired lease) is due, oldest first."""
        query: dict[str, Any] = {"status": {"$in": list(OPEN)}, "nextAttemptAt": {"$lte": utcnow()}}
        if skip_urls:
            query["url"] = {"$nin": skip_urls}
        cursor = self._deliveries.find(query).sort("nextAttemptAt", 1).limit(limit)
        return [record async for record in cursor]

    async def backlog(self) -> tuple[int, int]:
        """How many open records are due now, and how many wait for a retry."""
        due = await self._deliveries.count_documents(
            {"status": {"$in": list(OPEN)}, "nextAttemptAt": {"$lte": utcnow()}}
        )
        retrying = await self._deliveries.count_documents({"status": "retrying"})
        return due, retrying

    async def claim(self, record: Document, claim: str) -> Document | None:
        """Take a due record seen by `due`; None when another dispatcher took it first."""
        return await self._deliveries.find_one_and_update(
            {
                "_id": record["_id"],
                "status": {"$in": list(OPEN)},
                "claim": record.get("claim"),
                "nextAttemptAt": record["nextAttemptAt"],
            },
            {"$set": {"claim": claim, "nextAttemptAt": utcnow() + self.lease}},
            return_document=ReturnDocument.AFTER,
        )

    async def claim_by_id(self, delivery_id: str, claim: str) -> Document | None:
        """Take a record that was reset for replay, if it is unclaimed and due."""
        return await self._deliveries.find_one_and_update(
            {
                "_id": delivery_id,
                "status": {"$in": list(OPEN)},
                "claim": None,
                "nextAttemptAt": {"$lte": utcnow()},
            },
            {"$set": {"claim": claim, "nextAttemptAt": utcnow() + self.lease}},
            return_document=ReturnDocument.AFTER,
        )

    async def finish(
        self,
        delivery_id: str,
        claim: str,
        attempt: Document | None,
        status: str,
        *,
        next_at: datetime | None = None,
        error: str | None = None,
    ) -> bool:
        """Record an attempt's outcome and release the claim; False when the claim was lost.

        Outcomes recorded at once share one write; the `lastFinish` stamp tells whose
        applied."""
        changes: Document = {"status": status, "claim": None, "nextAttemptAt": next_at}
        if attempt is not None:
            changes |= {"lastStatusCode": attempt["statusCode"], "lastError": attempt["error"]}
        elif error is not None:
            changes["lastError"] = error
        if status == "delivered":
            changes["deliveredAt"] = attempt["at"] if attempt else utcnow()
        if status == "dead":
            changes["deadAt"] = utcnow()
        update: Document = {"$set": changes}
        if attempt is not None:
            update["$push"] = {"attempts": attempt}
            update["$inc"] = {"attemptCount": 1, "attemptTotal": 1}
        return await grouped_updates(self._store, self._deliveries).update(
            {"_id": delivery_id, "claim": claim}, update, token="lastFinish"
        )

    def count_outcome(self, record: Document, status: str, provider: str | None) -> None:
        """Count a delivery that ended (`delivered`, or `dead` after its attempts) in its
        tenant's usage."""
        what = OUTCOMES_COUNTED.get(status)
        if what is not None:
            usage.count(
                self._store, record["tenantId"], record["instanceName"], provider, what, utcnow()
            )

    async def instance(self, name: str) -> Document | None:
        """The webhook settings of an instance (secret included: it never leaves this service);
        callers asking while a read of the same instance is under way share it."""
        return await self._instances.read_through(name, lambda: self._read_instance(name))

    async def _read_instance(self, name: str) -> Document | None:
        return await self._store.instances.find_one(
            {"_id": name},
            {
                "tenantId": 1,
                "webhookUrl": 1,
                "webhookSecret": 1,
                "webhookEvents": 1,
                "webhookEnabled": 1,
                "webhookFailingSince": 1,
            },
        )

    async def message_webhook(self, message_id: str, tenant_id: str) -> str | None:
        """A message's own `webhookUrl` override, if it has one."""
        message = await self._store.messages.find_one(
            {"_id": message_id, "tenantId": tenant_id}, {"webhookUrl": 1}
        )
        return message.get("webhookUrl") if message else None

    async def mark_failing(self, name: str, url: str, since: datetime) -> datetime:
        """Note when an endpoint started failing (kept if already set); returns that moment."""
        instance = await self._store.instances.find_one_and_update(
            {"_id": name, "webhookUrl": url, "webhookFailingSince": None},
            {"$set": {"webhookFailingSince": since}},
            return_document=ReturnDocument.AFTER,
        )
        if instance is None:
            instance = await self._store.instances.find_one(
                {"_id": name}, {"webhookFailingSince": 1}
            )
        value = (instance or {}).get("webhookFailingSince")
        return value if isinstance(value, datetime) else since

    async def mark_healthy(self, name: str, url: str) -> None:
        """Forget an endpoint's failing streak after a success."""
        await self._store.instances.update_one(
            {"_id": name, "webhookUrl": url, "webhookFailingSince": {"$ne": None}},
            {"$set": {"webhookFailingSince": None}},
        )

    async def disable(self, name: str, url: str, reason: str) -> bool:
        """Turn an instance's webhook off; True only for the call that actually turned it off."""
        result = await self._store.instances.update_one(
            {"_id": name, "webhookUrl": url, "webhookEnabled": {"$ne": False}},
            {
                "$set": {
                    "webhookEnabled": False,
                    "webhookDisabledAt": utcnow(),
                    "webhookDisabledReason": reason,
                }
            },
        )
        return bool(result.modified_count)
