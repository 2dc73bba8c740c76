"""Sending a dispatched message exactly once, guarded by conditional state changes."""

import asyncio
import time
from datetime import datetime, timedelta
from typing import Any

import structlog

from lanegate import health, health_guard, lifecycle, otp, spintax, usage, variables
from lanegate.attachments import Attachment, AttachmentError
from lanegate.broker import Broker, Reject, Retry
from lanegate.events import (
    InstanceResumed,
    MessageDispatch,
    MessageStatus,
    canceled,
    expired,
    handed_back,
    status_event_id,
    utcnow,
)
from lanegate.holds import hold_at
from lanegate.lifecycle import SEND_OUTCOMES, Status
from lanegate.providers import NotConnected, Provider, ProviderError, Sent
from lanegate.providers.calls import record_refusal
from lanegate.secrets import Keyring
from lanegate.store import Document, Store
from provider_sender.callbacks import GatewayCallbacks
from provider_sender.files import Files
from provider_sender.metrics import ACCEPT_TO_SEND, MESSAGES_FAILED, MESSAGES_SENT, PROVIDER_SECONDS

log = structlog.get_logger(__name__)


async def filled(store: Store, message: Document) -> tuple[Document, str | None]:
    """The message with the variables of its e-mail subject and html filled from the
    recipient's contact, and its text or caption filled and then its spintax resolved now
    (None when it has none)."""
    content, to = message["content"], message["to"]
    contact = None
    if any(variables.variables_in(t) for t in variables.templates_of(content).values()):
        contact = await store.contacts.find_one(
            {"tenantId": message["tenantId"], "identifier": to}, {"name": 1, "fields": 1}
        )
        message = message | {"content": variables.fill_email_parts(content, to, contact)}
    template = variables.text_of(content)
    if template is None:
        return message, None
    return message, spintax.spin(variables.fill(template, to, contact))


def _finished_alone(send: "asyncio.Future[bool]") -> None:
    """Log how a send ended that its cancelled delivery no longer waits for. Its report may
    fail with the broker connection that cancelled the delivery; the redelivered dispatch
    reports what the send recorded."""
    if not send.cancelled() and (error := send.exception()) is not None:
        log.warning("send finished after its delivery ended", error=repr(error))


class Dispatcher:
    """Handles `message.dispatch`: claim, send through the instance's provider, record, report.

    `dispatching -> sending` is claimed before the provider call and
    `sending -> sent` recorded after it, so a redelivered dispatch finds the
    message already claimed. A claim left behind by a crash is settled by asking
    the provider whether it has the message once the claim is older than the
    dispatch timeout.

    A message that must wait (instance paused or throttled, recipient rate
    limited, reach-out timelock) is parked as `deferred`: a `message.handed_back`
    frees the instance's slot in the scheduler at once, and a dispatch delayed
    through provider-sender's own retry tiers brings it back to `pending` when
    its time comes, so one held message never blocks the others.
    """

    def __init__(
        self,
        store: Store,
        broker: Broker,
        providers: dict[str, Provider],
        claim_timeout: float,
        *,
        callbacks: GatewayCallbacks,
        files: Files,
        keyring: Keyring,
        max_attempts: int = 5,
        backoff: float = 5.0,
    ) -> None:
        self._files = files
        self._keyring = keyring
        self._store = store
        self._broker = broker
        self._providers = providers
        self._claim_timeout = claim_timeout
        self._callbacks = callbacks
        self._max_attempts = max_attempts
        self._backoff = backoff

    async def handle(self, event: MessageDispatch) -> None:
        structlog.contextvars.bind_contextvars(message_id=event.messageId)
        # Once asked for, the claim and the send it wins run to their recorded outcome even
        # when this delivery is cancelled (the broker connection dropped): a claim written
        # while its answer was on the way, or a send cut short, would stay `sending` and end
        # as outcome_unknown. The redelivered dispatch then reports what was recorded.
        send = asyncio.ensure_future(self._claim_and_send(event.messageId))
        try:
            claimed = await asyncio.shield(send)
        except asyncio.CancelledError:
            send.add_done_callback(_finished_alone)
            raise
        if not claimed:
            await self._not_claimed(event)

    async def _claim_and_send(self, message_id: str) -> bool:
        """Claim the message and send it; False when it was not this dispatch's to claim."""
        message = await lifecycle.claim_for_send(self._store, message_id, utcnow())
        if message is None:
            return False
        await self._send_claimed(message)
        return True

    async def _send_claimed(self, message: Document) -> None:
        instance = await self._store.instances.find_one({"_id": message["instanceName"]})
        if message.get("withdraw"):
            await self._withdraw(instance, message)
            return
        if instance is None:
            await self._fail(message, "instance_deleted", "The instance no longer exists")
            return
        provider = self._providers.get(instance["provider"])
        if provider is None:
            await self._fail(message, "provider_unavailable", f"No {instance['provider']} provider")
            return
        held_until = await self._held_until(instance, message)
        if held_until is not None:
            await self._defer(message, held_until)
            return
        if message.get("attempts"):
            # An earlier attempt failed in a way that may have reached the provider (a
            # timeout after it took the message): ask it before sending again.
            found = await provider.find_sent(instance, message["_id"])
            if found is not None:
                await self._sent(message, found, None)
                return
        handed, text = await filled(self._store, message)
        try:
            async with self._files.opened(message) as files:
                await self._send(instance, provider, handed, text, files)
        except AttachmentError as e:
            await self._fail(message, "attachment_unavailable", str(e))

    async def _send(
        self,
        instance: Document,
        provider: Provider,
        message: Document,
        text: str | None,
        files: list[Attachment],
    ) -> None:
        """Hand the message to its provider and record what came of it."""
        tries = int(message.get("attempts", 0)) + 1
        started = time.perf_counter()
        handed, handed_text = message, text
        if otp.SEALED_CODE in message["content"]:
            # The code is opened for this call alone; what is recorded keeps the mask.
            code = self._keyring.decrypt(message["content"][otp.SEALED_CODE])
            handed = message | {"content": otp.revealed(message["content"], code)}
            handed_text = otp.replace_mask(text, code)
        try:
            sent = await provider.send(instance, handed, handed_text, files=files)
        except NotConnected:
            await self._requeue(message)
            return
        except ProviderError as e:
            # A file that broke off while streaming reaches the provider's client as a broken
            # connection: the file's own error says what happened.
            broken = next((f.chunks.failure for f in files if f.chunks.failure), None)
            if broken is not None:
                raise broken from e
            await self._refused(instance, message, e)
            return
        finally:
            PROVIDER_SECONDS.labels(instance["provider"], "send").observe(
                time.perf_counter() - started
            )
        await self._sent(message, sent, text, tries)

    async def _not_claimed(self, event: MessageDispatch) -> None:
        current = await self._store.messages.find_one({"_id": event.messageId})
        if current is None:
            raise Reject(f"unknown message {event.messageId}")
        if current["status"] in SEND_OUTCOMES:
            # The outcome may not have been reported before a crash; its event id is
            # derived from the message and status, so telling it again is harmless, as is
            # applying again the receipts kept for it.
            await self._report(
                current,
                current["status"],
                providerMessageId=current.get("providerMessageId"),
                error=current.get("error"),
            )
            if current["status"] == Status.SENT and current.get("providerMessageId"):
                await self._early_receipts(current, current["providerMessageId"])
            return
        if current["status"] == Status.DEFERRED:
            await self._undefer(current)
            return
        if current["status"] != Status.SENDING:
            log.info("dispatch ignored", status=current["status"])
            return
        age = utcnow() - current["sendingAt"]
        if age < timedelta(seconds=self._claim_timeout):
            raise Retry(after=self._claim_timeout, reason="another send of this message is running")
        instance = await self._store.instances.find_one({"_id": current["instanceName"]})
        provider = self._providers.get(instance["provider"]) if instance else None
        found = (
            await provider.find_sent(instance, current["_id"]) if provider and instance else None
        )
        if found is not None:
            await self._sent(current, found, None)
        else:
            await self._fail(
                current,
                "outcome_unknown",
                "The send was interrupted; it was not retried to avoid a duplicate",
                attempts=int(current.get("attempts", 0)) + 1,
            )

    async def _sent(
        self, message: Document, sent: Sent, text: str | None, tries: int | None = None
    ) -> None:
        """Record the send: the variant of the text sent and the tries it took ride in the same
        update as the status, so reading a message back costs no extra write."""
        now = utcnow()
        if not await lifecycle.mark_sent(
            self._store,
            message["_id"],
            at=now,
            provider_message_id=sent.provider_message_id,
            text=text,
            attempts=tries,
        ):
            return
        MESSAGES_SENT.labels(message["lane"], message["provider"]).inc()
        await health_guard.counted(
            self._store,
            self._broker,
            message["tenantId"],
            message["instanceName"],
            health.Counted.SENT,
            now,
        )
        usage.count_message(self._store, message, usage.Counted.SENT, now)
        ACCEPT_TO_SEND.observe((now - message["queuedAt"]).total_seconds())
        log.info("message sent", provider_message_id=sent.provider_message_id)
        await self._report(message, Status.SENT, providerMessageId=sent.provider_message_id)
        await self._early_receipts(message, sent.provider_message_id)

    async def _early_receipts(self, message: Document, provider_message_id: str) -> None:
        """Apply the receipts kept for a send recorded as `sent`."""
        sender = {"_id": message["instanceName"], "tenantId": message["tenantId"]}
        await self._callbacks.apply_early_receipts(sender, provider_message_id)

    async def _withdraw(self, instance: Document | None, message: Document) -> None:
        """Settle a message taken out of its queue after an attempt that may have reached the
        phone (a flush, a delete, its `validUntil` passed): never sent again, recorded as
        what the provider says; `withdraw` names the status it takes if surely not sent."""
        provider = self._providers.get(message["provider"])
        found = await provider.find_sent(instance or {}, message["_id"]) if provider else None
        if found is not None:
            await self._sent(message, found, None)
        elif provider is not None and provider.records_sends:
            status = Status.EXPIRED if message["withdraw"] == Status.EXPIRED else Status.CANCELED
            stamp = {f"{status}At": utcnow()}
            if await lifecycle.finish(self._store, message["_id"], status, **stamp):
                log.info("withdrawn message: the provider never got it", status=status)
                if status == Status.CANCELED:
                    usage.count_message(
                        self._store, message, usage.Counted.CANCELED, stamp[f"{status}At"]
                    )
                if status == Status.EXPIRED:
                    await self._broker.publish(expired(message))
                else:  # the scheduler's line waits for this message's outcome
                    await self._broker.publish(canceled(message, "canceled"))
        else:
            await self._fail(
                message,
                "outcome_unknown",
                "Withdrawn after an attempt that may have reached the phone; not sent again",
            )

    async def _held_until(self, instance: Document, message: Document) -> datetime | None:
        """When this message may go, if the instance or its recipient is on hold now."""
        now = utcnow()
        paused = instance.get("paused")
        hold = hold_at(
            now,
            paused=bool(paused),
            paused_until=paused.get("until") if paused else None,
            throttled_until=instance.get("throttledUntil"),
        )
        if hold is not None:
            # The scheduler holds a paused instance's messages; one already on its way waits
            # here until the hold ends (a pause with no end is checked again in a minute).
            return hold.until or now + timedelta(minutes=1)
        lock = instance.get("reachOutLockedUntil")
        if lock and lock > now:
            wrote = await self._store.conversation_windows.find_one(
                {"instanceName": instance["_id"], "contact": message["to"]}, {"_id": 1}
            )
            if wrote is None:  # replies to people who wrote keep flowing under the timelock
                return lock  # type: ignore[no-any-return]
        return None

    async def _refused(self, instance: Document, message: Document, e: ProviderError) -> None:
        """Act on a provider's refusal by what it means, not by its text."""
        log.warning("provider refused", code=e.code, action=e.action, reason=e.message)
        attempts = int(message.get("attempts", 0)) + 1
        if e.action == "fail":
            await record_refusal(self._store, instance["_id"], e)
            await self._fail(message, e.code, e.message, e.details, attempts=attempts)
            return
        now = utcnow()
        if e.action == "pause":
            until = e.until or now + timedelta(hours=1)
            await self._callbacks.paused(instance, f"{e.code}: {e.message}", until=until)
            await self._defer(message, until)
            return
        if e.action == "reach_out_lock":
            until = e.until or now + timedelta(hours=24)
            await self._store.instances.update_one(
                {"_id": instance["_id"]}, {"$set": {"reachOutLockedUntil": until}}
            )
            await self._callbacks.paused(
                instance,
                "reach_out_timelock: sends to contacts who never wrote wait",
                until=until,
                scope="new_contacts",
            )
            await self._defer(message, until)
            return
        if attempts >= self._max_attempts:
            await self._fail(
                message,
                e.code,
                f"Gave up after {attempts} attempts: {e.message}",
                e.details,
                attempts=attempts,
            )
            return
        until = now + timedelta(seconds=e.after or self._backoff * attempts)
        if e.action == "backoff_number":
            await self._store.instances.update_one(
                {"_id": instance["_id"]}, {"$set": {"throttledUntil": until}}
            )
        await self._defer(message, until, attempts=attempts)

    async def _defer(
        self, message: Document, until: datetime, *, attempts: int | None = None
    ) -> None:
        """Park the message until `until` and free its instance's slot in the scheduler."""
        if not await lifecycle.defer(self._store, message["_id"], until, attempts=attempts):
            return
        await self._broker.publish(handed_back(message))
        await self._wake_later(message, until)
        log.info("message deferred", until=until)

    async def _wake_later(self, message: Document, until: datetime) -> None:
        wait = max(0.0, (until - utcnow()).total_seconds())
        await lifecycle.hand_to_sender(self._broker, message, after=wait)

    async def resumed(self, event: InstanceResumed) -> None:
        """Bring back now the instance's messages deferred until the end of the pause its
        tenant lifted (their delayed dispatch then finds them pending and is ignored)."""
        if event.pausedUntil is None:
            return  # a pause with no end defers a message by a minute at a time
        held = self._store.messages.find(
            {
                "instanceName": event.instanceName,
                "status": Status.DEFERRED,
                "deferredUntil": event.pausedUntil,
            }
        )
        async for message in held:
            if await lifecycle.hand_back(self._store, message["_id"], Status.DEFERRED):
                await self._broker.publish(handed_back(message))
                log.info("deferred message back to pending on resume", message_id=message["_id"])

    async def _undefer(self, message: Document) -> None:
        """A deferred message's wake-up: back to pending when due, else wait some more."""
        if message["deferredUntil"] - utcnow() > timedelta(seconds=0.5):
            await self._wake_later(message, message["deferredUntil"])
            return
        if await lifecycle.hand_back(self._store, message["_id"], Status.DEFERRED):
            await self._broker.publish(handed_back(message))
            log.info("deferred message back to pending")

    async def _fail(
        self,
        message: Document,
        code: str,
        text: str,
        details: list[Any] | None = None,
        *,
        attempts: int | None = None,
    ) -> None:
        error: dict[str, Any] = {"code": code, "message": text}
        if details:
            error["errors"] = details
        fields: dict[str, Any] = {"error": error}
        if attempts is not None:
            fields["attempts"] = attempts
        if not await lifecycle.finish(self._store, message["_id"], Status.FAILED, **fields):
            return
        MESSAGES_FAILED.labels(message["provider"], code).inc()
        await health_guard.counted(
            self._store,
            self._broker,
            message["tenantId"],
            message["instanceName"],
            health.Counted.FAILURES,
            utcnow(),
        )
        usage.count_message(self._store, message, usage.Counted.FAILED, utcnow())
        log.warning("message failed", code=code, reason=text)
        await self._report(message, Status.FAILED, error=error)

    async def _requeue(self, message: Document) -> None:
        """The session is not open: the message goes back to pending for the scheduler to hold."""
        if await lifecycle.hand_back(self._store, message["_id"], Status.SENDING):
            await self._broker.publish(handed_back(message))
            log.info("instance not connected; message back to pending")

    async def _report(self, message: Document, status: str, **fields: Any) -> None:
        await self._broker.publish(
            MessageStatus(
                id=status_event_id(message["_id"], status),
                tenantId=message["tenantId"],
                instanceName=message["instanceName"],
                messageId=message["_id"],
                status="sent" if status == Status.SENT else "failed",
                to=message["to"],
                lane=message["lane"],
                **fields,
            )
        )
