"""WAHA callback bodies, type-checked field by field, made into provider reports: a signed
body with a wrong type where a read field belongs is refused whole (`CallbackRefused`)
before anything is applied; fields the gateway does not read are ignored."""

from datetime import UTC, datetime
from typing import Any

from pydantic import Field, StrictBool, StrictInt

from lanegate.events import InstanceStateName
from lanegate.providers import CallbackRefused, Inbound, Receipt, Report, StateChange
from lanegate.providers.shapes import Id, Location, Name, Shape, Text, json_object, validated

STATES: dict[str, InstanceStateName] = {
    "STARTING": "connecting",
    "SCAN_QR_CODE": "close",
    "WORKING": "open",
    "FAILED": "close",
    "STOPPED": "close",
}
ACKS = {-1: "failed", 1: "sent", 2: "delivered", 3: "read", 4: "read"}
MEDIA_TYPES = {"image": "imageMessage", "video": "videoMessage", "audio": "audioMessage"}


class Me(Shape):
    id: Name | None = None


class Envelope(Shape):
    event: Name | None = None
    session: Name | None = None
    # Epoch milliseconds of the event at WAHA.
    timestamp: StrictInt | None = None
    payload: dict[str, Any] | None = None
    me: Me | None = None


class Media(Shape):
    url: Text | None = None
    mimetype: Name | None = None
    filename: Name | None = None


class RawData(Shape):
    notifyName: Name | None = None


class Message(Shape):
    id: Id
    sender: Name = Field("", alias="from")
    fromMe: StrictBool = False
    body: Text | None = None
    hasMedia: StrictBool = False
    timestamp: StrictInt | None = None
    media: Media | None = None
    location: Location | None = None
    raw: RawData | None = Field(None, alias="_data")


class Ack(Shape):
    id: Id
    ack: StrictInt | None = None


class SessionStatus(Shape):
    status: Name | None = None
    me: Me | None = None


def number_of(chat: str) -> str:
    """The number part of a chat id (`5491112345678@c.us` -> `5491112345678`)."""
    return chat.split("@", 1)[0]


def _inbound(message: Message) -> Inbound:
    message_type = "conversation"
    content: dict[str, Any] | None = None
    text = message.body or None
    if message.hasMedia:
        media = message.media or Media()
        mime = media.mimetype or ""
        message_type = MEDIA_TYPES.get(mime.split("/", 1)[0], "documentMessage")
        content = {"url": media.url, "mimeType": mime, "fileName": media.filename}
        content["caption"], text = text, None
    elif message.location is not None:
        message_type = "locationMessage"
        content = message.location.model_dump(exclude_none=True)
    return Inbound(
        sender=number_of(message.sender),
        push_name=message.raw.notifyName if message.raw else None,
        message_type=message_type,
        text=text,
        provider_message_id=message.id,
        sent_at=message.timestamp or 0,
        content=content,
    )


def _reported_at(envelope: Envelope) -> datetime | None:
    if envelope.timestamp is None:
        return None
    try:
        return datetime.fromtimestamp(envelope.timestamp / 1000, UTC)
    except (OverflowError, OSError, ValueError) as e:
        raise CallbackRefused([(["timestamp"], "Not a time in epoch milliseconds")]) from e


def parse_envelope(body: bytes) -> Envelope:
    """A WAHA callback's envelope (event, session, time, payload); raises CallbackRefused."""
    return validated(Envelope, json_object(body), [])


def parse_callback_body(body: bytes) -> list[Report]:
    """The report one WAHA callback carries (none for events we do not map); raises
    CallbackRefused when the body is not WAHA's shape."""
    envelope = parse_envelope(body)
    payload = envelope.payload or {}
    reported_at = _reported_at(envelope)
    if envelope.event == "message":
        message = validated(Message, payload, ["payload"])
        return [] if message.fromMe else [_inbound(message)]
    if envelope.event == "message.ack":
        ack = validated(Ack, payload, ["payload"])
        if ack.ack not in ACKS:
            return []
        status = ACKS[ack.ack]
        errors = [{"code": "ack_error", "title": "WhatsApp reported an error"}]
        return [Receipt(ack.id, status, errors=errors if status == "failed" else None)]  # type: ignore[arg-type]
    if envelope.event == "session.status":
        session = validated(SessionStatus, payload, ["payload"])
        if session.status not in STATES:
            return []
        me = session.me or envelope.me or Me()
        number = number_of(me.id) if me.id else None
        return [StateChange(STATES[session.status], number, session.status, reported_at)]
    return []
