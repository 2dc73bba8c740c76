"""Cloud API callback bodies, type-checked field by field, made into provider reports: a signed
body with a wrong type where a read field belongs is refused whole (`CallbackRefused`)
before anything is applied; fields the gateway does not read are ignored."""

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import Field, PlainValidator, StrictInt

from lanegate.providers import CallbackRefused, Inbound, Receipt, Report, TemplateUpdate
from lanegate.providers.shapes import Id, Location, Name, Shape, Text, json_object, validated

TEMPLATE_STATUS_FIELD = "message_template_status_update"
RECEIPT_STATUSES = ("sent", "delivered", "read", "failed")
MEDIA_KINDS = ("image", "document", "audio", "video", "sticker")


def _digits(value: Any) -> int:
    """A number Meta writes as a string of digits (a JSON number is taken too)."""
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 20:
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    raise ValueError("Must be a string of digits or a whole number")


# One type each, not a union, so a bad value's path in the 400 is the field's own.
Digits = Annotated[int, PlainValidator(_digits)]


class Change(Shape):
    field: Name | None = None
    value: dict[str, Any] = Field(default_factory=dict)


class Entry(Shape):
    id: Name | None = None
    time: Digits | None = None
    changes: list[Change] = Field(default_factory=list)


class Envelope(Shape):
    entry: list[Entry] = Field(default_factory=list)


class ErrorData(Shape):
    details: Text | None = None


class StatusError(Shape):
    code: StrictInt
    title: Text | None = None
    message: Text | None = None
    href: Text | None = None
    error_data: ErrorData | None = None


class Status(Shape):
    id: Id
    status: Name
    timestamp: Digits | None = None
    recipient_id: Name | None = None
    errors: list[StatusError] | None = None


class Profile(Shape):
    name: Name | None = None


class Contact(Shape):
    wa_id: Name
    profile: Profile | None = None


class TextBody(Shape):
    body: Text


class Media(Shape):
    id: Id | None = None
    mime_type: Name | None = None
    caption: Text | None = None
    filename: Name | None = None


class Reaction(Shape):
    message_id: Id | None = None
    emoji: Name | None = None


class Reply(Shape):
    id: Name
    title: Name | None = None
    description: Text | None = None


class Interactive(Shape):
    button_reply: Reply | None = None
    list_reply: Reply | None = None


class Button(Shape):
    payload: Text | None = None
    text: Text | None = None


class Message(Shape):
    sender: Name = Field(alias="from")
    id: Id
    timestamp: Digits | None = None
    type: Name = "unknown"
    text: TextBody | None = None
    image: Media | None = None
    document: Media | None = None
    audio: Media | None = None
    video: Media | None = None
    sticker: Media | None = None
    location: Location | None = None
    reaction: Reaction | None = None
    interactive: Interactive | None = None
    button: Button | None = None


class Metadata(Shape):
    phone_number_id: Name | None = None


class MessagesValue(Shape):
    metadata: Metadata | None = None
    statuses: list[Status] = Field(default_factory=list)
    contacts: list[Contact] = Field(default_factory=list)
    messages: list[Message] = Field(default_factory=list)


class TemplateValue(Shape):
    event: Name
    message_template_id: Digits
    message_template_name: Name
    message_template_language: Name
    reason: Text | None = None
    message_template_category: Name | None = None


def _inbound(message: Message, names: dict[str, str | None]) -> Inbound:
    kind = message.type
    text: str | None = None
    content: dict[str, Any] | None = None
    message_type = f"{kind}Message"
    media: Media | None = getattr(message, kind) if kind in MEDIA_KINDS else None
    if kind == "text" and message.text is not None:
        message_type, text = "conversation", message.text.body
    elif media is not None:
        content = {
            "mediaId": media.id,
            "mimeType": media.mime_type,
            "caption": media.caption,
            "fileName": media.filename,
        }
    elif kind == "location" and message.location is not None:
        content = message.location.model_dump(exclude_none=True)
    elif kind == "reaction" and message.reaction is not None:
        text = message.reaction.emoji
        content = {"messageId": message.reaction.message_id, "emoji": message.reaction.emoji}
    elif kind == "interactive" and message.interactive is not None:
        buttons = message.interactive.button_reply
        reply = buttons or message.interactive.list_reply
        message_type = "buttonsResponseMessage" if buttons else "listResponseMessage"
        text = reply.title if reply else None
        content = {"id": reply.id if reply else None, "title": text}
    elif kind == "button" and message.button is not None:
        message_type, text = "buttonsResponseMessage", message.button.text
        content = {"id": message.button.payload, "title": text}
    return Inbound(
        sender=message.sender,
        push_name=names.get(message.sender),
        message_type=message_type,
        text=text,
        provider_message_id=message.id,
        sent_at=int(message.timestamp or 0),
        content=content,
    )


def _receipt(status: Status) -> Receipt | None:
    if status.status not in RECEIPT_STATUSES:
        return None  # a status the gateway does not track (Meta adds some now and then)
    errors = [e.model_dump(exclude_none=True) for e in status.errors or []]
    return Receipt(status.id, status.status, errors=errors or None)  # type: ignore[arg-type]


def _template_update(entry: Entry, value: TemplateValue) -> TemplateUpdate:
    reported_at = None
    if entry.time is not None:
        try:
            reported_at = datetime.fromtimestamp(entry.time, UTC)
        except (OverflowError, OSError, ValueError) as e:
            raise CallbackRefused([(["entry", "time"], "Not a time in epoch seconds")]) from e
    return TemplateUpdate(
        waba_id=entry.id or "",
        meta_template_id=str(value.message_template_id),
        name=value.message_template_name,
        language=value.message_template_language,
        status=value.event,
        reason=None if value.reason in (None, "NONE") else value.reason,
        category=value.message_template_category,
        reported_at=reported_at,
    )


def parse_callback_body(body: bytes, phone_number_id: str | None = None) -> list[Report]:
    """Every status, inbound message and template status change of a Cloud API callback (with
    `phone_number_id`, none of another number's); raises CallbackRefused when the body is not
    the Cloud API's shape."""
    envelope = validated(Envelope, json_object(body), [])
    reports: list[Report] = []
    for i, entry in enumerate(envelope.entry):
        for j, change in enumerate(entry.changes):
            path: list[str | int] = ["entry", i, "changes", j, "value"]
            if change.field == TEMPLATE_STATUS_FIELD:
                template = validated(TemplateValue, change.value, path)
                reports.append(_template_update(entry, template))
                continue
            if change.field != "messages":
                continue
            value = validated(MessagesValue, change.value, path)
            number = value.metadata.phone_number_id if value.metadata else None
            if phone_number_id is not None and number is not None and number != phone_number_id:
                continue  # one Meta app posts every number's callbacks to the URL it was given
            reports += [r for r in map(_receipt, value.statuses) if r is not None]
            names = {c.wa_id: c.profile.name if c.profile else None for c in value.contacts}
            reports += [_inbound(m, names) for m in value.messages]
    return reports
