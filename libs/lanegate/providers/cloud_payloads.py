"""Request bodies of Meta's `POST /{version}/{phone-number-id}/messages`, one per message type,
built from a stored message's `content` (the gateway API's field names)."""

from collections.abc import Callable
from typing import Any

Content = dict[str, Any]
Payload = dict[str, Any]


# Stored `content` fields: `text`, `imageUrl`, `documentUrl`, `fileName`, `audioUrl`,
# `videoUrl`, `caption`; location, interactive and template messages use `latitude`,
# `longitude`, `name`, `address`, `body`, `buttons`, `button`, `sections`, `header`,
# `footer`, `language` and `components`.
def _text(content: Content, text: str | None) -> Payload:
    return {"text": {"body": text if text is not None else content["text"], "preview_url": False}}


def _media(
    kind: str, url_field: str, *, caption: bool, filename: bool = False
) -> Callable[[Content, str | None], Payload]:
    def build(content: Content, text: str | None) -> Payload:
        media: dict[str, Any] = {"link": content[url_field]}
        if caption and (text or content.get("caption")):
            media["caption"] = text if text is not None else content["caption"]
        if filename and content.get("fileName"):
            media["filename"] = content["fileName"]
        return {kind: media}

    return build


def _location(content: Content, _: str | None) -> Payload:
    location = {"latitude": str(content["latitude"]), "longitude": str(content["longitude"])}
    for field in ("name", "address"):
        if content.get(field):
            location[field] = content[field]
    return {"location": location}


def _frame(content: Content, interactive: dict[str, Any]) -> dict[str, Any]:
    if content.get("header"):
        interactive["header"] = {"type": "text", "text": content["header"]}
    if content.get("footer"):
        interactive["footer"] = {"text": content["footer"]}
    return interactive


def _buttons(content: Content, text: str | None) -> Payload:
    buttons = [
        {"type": "reply", "reply": {"id": b["id"], "title": b["title"]}} for b in content["buttons"]
    ]
    interactive = {
        "type": "button",
        "body": {"text": text if text is not None else content["body"]},
        "action": {"buttons": buttons},
    }
    return {"interactive": _frame(content, interactive)}


def _list(content: Content, text: str | None) -> Payload:
    sections = [
        {
            "title": section.get("title", ""),
            "rows": [
                {k: row[k] for k in ("id", "title", "description") if row.get(k)}
                for row in section["rows"]
            ],
        }
        for section in content["sections"]
    ]
    interactive = {
        "type": "list",
        "body": {"text": text if text is not None else content["body"]},
        "action": {"button": content["button"], "sections": sections},
    }
    return {"interactive": _frame(content, interactive)}


def _template(content: Content, _: str | None) -> Payload:
    template: dict[str, Any] = {
        "name": content["name"],
        "language": {"policy": "deterministic", "code": content.get("language", "en_US")},
    }
    if content.get("components"):
        template["components"] = content["components"]
    return {"template": template}


BUILDERS: dict[str, tuple[str, Callable[[Content, str | None], Payload]]] = {
    "text": ("text", _text),
    "image": ("image", _media("image", "imageUrl", caption=True)),
    "document": ("document", _media("document", "documentUrl", caption=True, filename=True)),
    "audio": ("audio", _media("audio", "audioUrl", caption=False)),
    "video": ("video", _media("video", "videoUrl", caption=True)),
    "location": ("location", _location),
    "buttons": ("interactive", _buttons),
    "list": ("interactive", _list),
    "template": ("template", _template),
}

# Message types that need an open 24-hour customer-service window on the Cloud API.
FREE_FORM = frozenset(BUILDERS) - {"template"}


def message_payload(message: Content, text: str | None) -> Payload:
    """Meta's send body for a stored message; our id rides in `biz_opaque_callback_data`."""
    meta_type, build = BUILDERS[message["type"]]
    return {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": message["to"],
        "type": meta_type,
        **build(message["content"], text),
        "biz_opaque_callback_data": message["_id"],
    }
