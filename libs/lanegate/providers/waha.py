"""The `waha` provider: a WhatsApp Web session run by a WAHA server, over its HTTP API."""

import base64
import hashlib
import hmac
import json
from collections.abc import AsyncIterable, AsyncIterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import aiohttp

from lanegate.attachments import Attachment
from lanegate.events import utcnow
from lanegate.outbound import Outbound
from lanegate.providers import NotConnected, ProviderError, Report, Sent, Session
from lanegate.providers.calls import call
from lanegate.providers.waha_callbacks import STATES, number_of, parse_callback_body
from lanegate.secrets import Keyring
from lanegate.store import Document

SIGNATURE_HEADER = "X-Webhook-Hmac"
EVENTS = ["message", "message.ack", "session.status"]


# The session is created with our callback URL and an HMAC key, so WAHA signs every callback
# (`X-Webhook-Hmac`, HMAC-SHA512 of the raw body). WhatsApp's error 463 (reach-out timelock)
# holds messages to contacts who never wrote to the number until the lock lifts; replies keep
# flowing.
def waha_signature(body: bytes, key: str) -> str:
    """Hex HMAC-SHA512 of the raw body, as WAHA signs callbacks."""
    return hmac.new(key.encode(), body, hashlib.sha512).hexdigest()


def verify_waha_signature(body: bytes, key: str, header: str | None) -> bool:
    """Check an `X-Webhook-Hmac` header in constant time."""
    # Compared as bytes: a str with non-ASCII characters would raise instead of failing.
    expected = waha_signature(body, key).encode()
    return bool(header) and hmac.compare_digest(expected, (header or "").encode())


def chat_id(number: str) -> str:
    """A WhatsApp number as WAHA's chat id."""
    return f"{number}@c.us"


def send_request(session: str, message: Document, text: str | None) -> tuple[str, dict[str, Any]]:
    """The WAHA endpoint and body for a stored message."""
    content = message["content"]
    body: dict[str, Any] = {"session": session, "chatId": chat_id(message["to"])}
    kind = message["type"]
    caption = text if text is not None else content.get("caption")
    if kind == "text":
        return "/api/sendText", body | {"text": text if text is not None else content["text"]}
    if kind == "location":
        place = {"latitude": float(content["latitude"]), "longitude": float(content["longitude"])}
        return "/api/sendLocation", body | place | {"title": content.get("name") or ""}
    endpoints = {
        "image": ("/api/sendImage", "imageUrl"),
        "document": ("/api/sendFile", "documentUrl"),
        "audio": ("/api/sendVoice", "audioUrl"),
        "video": ("/api/sendVideo", "videoUrl"),
    }
    if kind not in endpoints:
        raise ProviderError(
            "unsupported_type", f"WAHA cannot send {kind} messages", retryable=False
        )
    path, field = endpoints[kind]
    file: dict[str, Any] = {"url": content[field]}
    if content.get("fileName"):
        file["filename"] = content["fileName"]
    body["file"] = file
    if caption and kind != "audio":
        body["caption"] = caption
    return path, body


async def base64_chunks(chunks: AsyncIterable[bytes]) -> AsyncIterator[bytes]:
    """The base64 encoding of a stream of bytes, chunk by chunk (each cut on 3 bytes)."""
    rest = b""
    async for chunk in chunks:
        data = rest + chunk
        cut = len(data) - len(data) % 3
        rest = data[cut:]
        if cut:
            yield base64.b64encode(data[:cut])
    if rest:
        yield base64.b64encode(rest)


async def file_body(
    session: str, message: Document, caption: str | None, file: Attachment
) -> AsyncIterator[bytes]:
    """A `sendFile` JSON body with the file's bytes inline, base64-encoded as they stream in."""
    fields = {"session": session, "chatId": chat_id(message["to"])}
    if caption:
        fields["caption"] = caption
    described = json.dumps({"mimetype": file.content_type, "filename": file.file_name})
    yield f'{json.dumps(fields)[:-1]}, "file": {described[:-1]}, "data": "'.encode()
    async for encoded in base64_chunks(file.chunks):
        yield encoded
    yield b'"}}'


def _message_id(answer: Any) -> str | None:
    if not isinstance(answer, dict):
        return None
    found = answer.get("id")
    if isinstance(found, dict):
        found = found.get("_serialized")
    if found is None and isinstance(answer.get("key"), dict):
        found = answer["key"].get("id")
    return str(found) if found else None


def _lock_end(session: Any, fallback: float) -> datetime:
    lock = (session.get("me") or {}).get("reachoutTimelock") if isinstance(session, dict) else None
    if isinstance(lock, dict) and lock.get("timeEnforcementEnds"):
        try:
            return datetime.fromisoformat(str(lock["timeEnforcementEnds"]).replace("Z", "+00:00"))
        except ValueError:
            pass
    return utcnow() + timedelta(seconds=fallback)


class Waha:
    """The `waha` provider; one HTTP client shared by every instance."""

    name = "waha"
    records_sends = False

    def __init__(
        self,
        http: Outbound,
        *,
        keyring: Keyring,
        timeout: float,
        public_url: str,
        lock_seconds: float,
    ) -> None:
        self._keyring = keyring
        self._http = http
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._public_url = public_url.rstrip("/")
        self._lock_seconds = lock_seconds

    async def _call(
        self,
        method: str,
        config: Document,
        path: str,
        body: dict[str, Any] | AsyncIterator[bytes] | None = None,
    ) -> Any:
        headers = {"X-Api-Key": config["apiKey"], "Accept": "application/json"}
        # A file's body streams in as it is sent, never held whole.
        sent: dict[str, Any] = {"json": body} if isinstance(body, dict | None) else {"data": body}
        if "data" in sent:
            headers["Content-Type"] = "application/json"
        answer = await call(
            self._http,
            "WAHA",
            method,
            config["baseUrl"] + path,
            headers=headers,
            limit=self._timeout,
            **sent,
        )
        raw, status = answer.body, answer.status
        try:
            decoded = json.loads(raw) if raw else {}
        except ValueError:
            decoded = {"message": raw[:200].decode(errors="replace")}
        if status >= 400:
            raise self._error(status, decoded)
        return decoded

    def _error(self, status: int, answer: Any) -> ProviderError:
        text = json.dumps(answer)[:300]
        if status >= 500 and "error 463" in text:
            return ProviderError(
                "463", "WhatsApp reach-out timelock", retryable=False, action="reach_out_lock"
            )
        return ProviderError(f"http_{status}", f"WAHA error: {text}", retryable=status >= 500)

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
        config = self._keyring.open_config(instance["providerConfig"])
        session = config["session"]
        requests: list[tuple[str, dict[str, Any] | AsyncIterator[bytes]]] = (
            [
                (
                    "/api/sendFile",
                    file_body(session, message, text if n == 0 else None, f),
                )
                for n, f in enumerate(files)
            ]
            if files
            else [send_request(session, message, text)]
        )
        first: str | None = None
        for path, body in requests:  # a file message's first id stands for the message
            try:
                answer = await self._call("POST", config, path, body)
            except ProviderError as e:
                if e.action == "reach_out_lock":
                    e.until = _lock_end(await self._session_info(config), self._lock_seconds)
                raise
            found = _message_id(answer)
            if found is None:
                raise ProviderError("bad_answer", "No message id in the answer", retryable=False)
            first = first or found
        if first is None:
            raise ProviderError("bad_answer", "Nothing was sent", retryable=False)
        return Sent(first)

    async def _session_info(self, config: Document) -> Any:
        try:
            return await self._call("GET", config, f"/api/sessions/{config['session']}")
        except ProviderError:
            return {}

    async def find_sent(self, instance: Document, message_id: str) -> Sent | None:
        # WAHA cannot look a message up by our id: an interrupted send stays unknown.
        return None

    async def start(self, instance: Document) -> Session:
        config = self._keyring.open_config(instance["providerConfig"])
        webhook = {
            "url": f"{self._public_url}/webhooks/waha/{instance['_id']}",
            "events": EVENTS,
            "hmac": {"key": config["hmacKey"]},
        }
        body = {"name": config["session"], "start": True, "config": {"webhooks": [webhook]}}
        try:
            await self._call("POST", config, "/api/sessions", body)
        except ProviderError as e:
            if e.code not in ("http_409", "http_422"):
                raise
            # The session exists already: apply our webhook config, then start it.
            await self._call("PUT", config, f"/api/sessions/{config['session']}", body)
            await self._call("POST", config, f"/api/sessions/{config['session']}/start")
        return await self.status(instance)

    async def status(self, instance: Document) -> Session:
        config = self._keyring.open_config(instance["providerConfig"])
        answer = await self._call("GET", config, f"/api/sessions/{config['session']}")
        status = str(answer.get("status", "STOPPED"))
        me = answer.get("me") or {}
        number = number_of(me["id"]) if me.get("id") else None
        return Session(STATES.get(status, "close"), number, status)

    async def qr(self, instance: Document) -> bytes:
        config = self._keyring.open_config(instance["providerConfig"])
        answer = await self._call("GET", config, f"/api/{config['session']}/auth/qr")
        try:
            return base64.b64decode(answer["data"])
        except (KeyError, TypeError, ValueError) as e:
            raise ProviderError("bad_answer", "WAHA sent no QR image", retryable=False) from e

    async def pairing_code(self, instance: Document, phone_number: str) -> str:
        config = self._keyring.open_config(instance["providerConfig"])
        answer = await self._call(
            "POST",
            config,
            f"/api/{config['session']}/auth/request-code",
            {"phoneNumber": phone_number},
        )
        return str(answer.get("code", "")).replace("-", "")

    async def logout(self, instance: Document) -> None:
        config = self._keyring.open_config(instance["providerConfig"])
        await self._call("POST", config, f"/api/sessions/{config['session']}/logout")

    def verify_callback(self, instance: Document, body: bytes, headers: Mapping[str, str]) -> bool:
        key = self._keyring.open_config(instance.get("providerConfig")).get("hmacKey", "")
        return bool(key) and verify_waha_signature(body, key, headers.get(SIGNATURE_HEADER))

    def parse_callback(self, instance: Document, body: bytes) -> list[Report]:
        return parse_callback_body(body)

    async def close(self) -> None:
        """The shared HTTP client is closed by its owner."""
