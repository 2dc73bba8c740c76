"""The sandbox: a simulated phone, so the whole gateway runs with no WhatsApp account."""

import asyncio
import hashlib
import hmac
import io
import secrets
import time
from collections.abc import Coroutine, Mapping, Sequence
from datetime import datetime
from typing import Any

import qrcode
import structlog
from pymongo import ReturnDocument
from qrcode.image.pure import PyPNGImage

from lanegate.attachments import Attachment
from lanegate.events import utcnow
from lanegate.providers import Callbacks, NotConnected, ProviderError, Report, Sent, Session
from lanegate.store import Document, Store

log = structlog.get_logger(__name__)

DEVICE = "lanegate sandbox phone"
QR_ROTATE_SECONDS = 20
# WhatsApp's pairing codes: 8 characters from an alphabet without look-alikes.
PAIRING_ALPHABET = "ABCDEFGHJKLMNPQRSTVWXYZ123456789"


def qr_png(text: str) -> bytes:
    """A PNG image of a QR code for `text` (pure Python, no imaging library)."""
    out = io.BytesIO()
    qrcode.make(text, image_factory=PyPNGImage).save(out)
    return out.getvalue()


def qr_token(instance_name: str, now: float, key: bytes) -> str:
    """The token the sandbox QR shows now; it changes every QR_ROTATE_SECONDS, like WhatsApp's."""
    window = int(now // QR_ROTATE_SECONDS)
    digest = hmac.new(key, f"{instance_name}:{window}".encode(), hashlib.sha256).hexdigest()
    return f"lanegate-sandbox:{instance_name}:{digest[:32]}"


def pairing_code() -> str:
    """A fresh 8-character pairing code."""
    return "".join(secrets.choice(PAIRING_ALPHABET) for _ in range(8))


def phone_number_for(instance_name: str) -> str:
    """A stable fake number for a sandbox instance (13 digits, like an Argentine mobile)."""
    digest = int(hashlib.sha256(instance_name.encode()).hexdigest(), 16)
    return "549" + str(digest % 10**10).zfill(10)


async def _received_file(file: Attachment) -> dict[str, Any]:
    """What the phone keeps of a file: read through as it streams in, never held whole."""
    digest = hashlib.sha256()
    size = 0
    async for chunk in file.chunks:
        digest.update(chunk)
        size += len(chunk)
    return {
        "fileName": file.file_name,
        "contentType": file.content_type,
        "size": size,
        "sha256": digest.hexdigest(),
    }


# It keeps its own record of every message it received (`sandbox_outbox`, with a count, so a
# duplicate send shows), reports delivered and read receipts after configurable delays (per
# instance through `providerConfig`, else the settings), fails sends to the numbers listed in
# `failNumbers`, shows a QR code of a rotating token and 8-character pairing codes, and answers
# scans, inbound messages and a simulated ban as a real session would. A simulated outage
# (`sandboxFault` on the instance, set through the sandbox API) fails sends for a while with a
# retryable error, or as a timeout after the phone already got the message.
class Sandbox:
    """The `sandbox` provider."""

    name = "sandbox"
    records_sends = True  # the phone's own record, `sandbox_outbox`

    def __init__(
        self, store: Store, callbacks: Callbacks, *, delivered_after: float, read_after: float
    ) -> None:
        self._store = store
        self._callbacks = callbacks
        self._delivered_after = delivered_after
        self._read_after = read_after
        self._timers: set[asyncio.Task[None]] = set()
        self._qr_key = secrets.token_bytes(16)

    async def send(
        self,
        instance: Document,
        message: Document,
        text: str | None,
        *,
        files: Sequence[Attachment] = (),
    ) -> Sent:
        if instance.get("state") != "open":
            raise NotConnected(instance["_id"])
        config = instance.get("providerConfig") or {}
        if message["to"] in (config.get("failNumbers") or []):
            raise ProviderError(
                "undeliverable", "The sandbox phone cannot reach this number", retryable=False
            )
        fault = instance.get("sandboxFault") or {}
        if fault and fault["until"] > utcnow():
            if fault["kind"] == "error":
                raise ProviderError(
                    "sandbox_unavailable", "The sandbox phone is unreachable", retryable=True
                )
            # The phone gets the message, the answer never comes back: an ambiguous timeout.
            await self._receive(instance, message, text, files)
            raise ProviderError("timeout", "The sandbox phone did not answer", retryable=True)
        record = await self._receive(instance, message, text, files)
        sent = Sent(record["providerMessageId"])
        delivered, read = self._delays(config)
        self._later(self._receipts(instance, sent.provider_message_id, delivered, read))
        return sent

    async def _receive(
        self,
        instance: Document,
        message: Document,
        text: str | None,
        files: Sequence[Attachment],
    ) -> Document:
        """The phone's own record of a message it got; `received` counts every copy."""
        received = [await _received_file(file) for file in files]
        record = await self._store.sandbox_outbox.find_one_and_update(
            {"_id": message["_id"]},
            {
                "$setOnInsert": {
                    "instanceName": instance["_id"],
                    "providerMessageId": "SBX" + secrets.token_hex(14).upper(),
                    "to": message["to"],
                    "text": text,
                    "files": received,
                    "lane": message["lane"],
                    "sentAt": utcnow(),
                },
                "$inc": {"received": 1},
            },
            upsert=True,
            return_document=ReturnDocument.AFTER,
        )
        if record is None:  # upsert with return_document=AFTER always returns the document
            raise RuntimeError("sandbox outbox upsert returned nothing")
        return record

    def _delays(self, config: Mapping[str, Any]) -> tuple[float, float]:
        delivered = config.get("deliveredAfterMs")
        read = config.get("readAfterMs")
        return (
            self._delivered_after if delivered is None else delivered / 1000,
            self._read_after if read is None else read / 1000,
        )

    async def find_sent(self, instance: Document, message_id: str) -> Sent | None:
        record = await self._store.sandbox_outbox.find_one({"_id": message_id})
        return Sent(record["providerMessageId"]) if record else None

    async def start(self, instance: Document) -> Session:
        return await self.status(instance)

    async def status(self, instance: Document) -> Session:
        return Session(instance.get("state", "close"), instance.get("phoneNumber"), "SIMULATED")

    async def qr(self, instance: Document) -> bytes:
        return qr_png(qr_token(instance["_id"], time.time(), self._qr_key))

    async def pairing_code(self, instance: Document, phone_number: str) -> str:
        return pairing_code()

    async def logout(self, instance: Document) -> None:
        await self._callbacks.state(instance, "close")

    def verify_callback(self, instance: Document, body: bytes, headers: Mapping[str, str]) -> bool:
        """The sandbox reports in-process, never over HTTP: no callback is genuine."""
        return False

    def parse_callback(self, instance: Document, body: bytes) -> list[Report]:
        return []

    async def ban(self, instance: Document, reason: str, *, until: datetime | None = None) -> None:
        """WhatsApp signals a ban risk: the instance pauses until `until`, or until it connects
        again."""
        await self._callbacks.paused(instance, reason, until=until)

    async def scan(self, instance: Document) -> None:
        """The phone scans the QR: the session goes connecting, then open."""
        await self._callbacks.state(instance, "connecting")
        await self._callbacks.state(
            instance, "open", phone_number=phone_number_for(instance["_id"]), device=DEVICE
        )

    async def disconnect(self, instance: Document) -> None:
        """The phone unlinks the session."""
        await self._callbacks.state(instance, "close")

    async def inbound(
        self, instance: Document, *, sender: str, text: str, push_name: str | None
    ) -> None:
        """Somebody writes to the instance's number."""
        await self._callbacks.inbound(
            instance,
            sender=sender,
            push_name=push_name,
            text=text,
            provider_message_id=secrets.token_hex(16).upper(),
            sent_at=int(time.time()),
        )

    async def _receipts(
        self, instance: Document, provider_message_id: str, delivered: float, read: float
    ) -> None:
        await asyncio.sleep(delivered)
        await self._callbacks.receipt(instance, provider_message_id, "delivered")
        await asyncio.sleep(max(0.0, read - delivered))
        await self._callbacks.receipt(instance, provider_message_id, "read")

    def _later(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._timers.add(task)
        task.add_done_callback(self._timer_done)

    def _timer_done(self, task: "asyncio.Task[None]") -> None:
        self._timers.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            # A simulated phone's receipt or reply, lost like a real one can be (the broker
            # was away when it came).
            log.warning("sandbox callback lost", error=repr(error))

    async def close(self) -> None:
        for task in list(self._timers):
            task.cancel()
        await asyncio.gather(*self._timers, return_exceptions=True)
