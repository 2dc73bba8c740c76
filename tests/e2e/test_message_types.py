"""Every message type through each provider, checked by the simulators against the real APIs."""

from typing import Any

import pytest

from tests.e2e.test_cloud_api import CONTACT, cloud_instance, contact_writes
from tests.e2e.test_waha import waha_instance
from tests.simulators.meta import MetaSimulator
from tests.simulators.waha import WahaSimulator
from tests.support.gateway import Gateway
from tests.support.receiver import Receiver, event_named

pytestmark = pytest.mark.e2e

MEDIA: dict[str, dict[str, Any]] = {
    "image": {"imageUrl": "https://cdn.example.com/photo.jpg", "caption": "{Look|See}"},
    "document": {
        "documentUrl": "https://cdn.example.com/invoice.pdf",
        "fileName": "invoice-001.pdf",
        "caption": "Your invoice",
    },
    "audio": {"audioUrl": "https://cdn.example.com/audio.ogg"},
    "video": {"videoUrl": "https://cdn.example.com/video.mp4", "caption": "Watch"},
    "location": {
        "latitude": -34.6037,
        "longitude": -58.3816,
        "name": "Obelisco",
        "address": "Av. 9 de Julio, Buenos Aires",
    },
}
INTERACTIVE: dict[str, dict[str, Any]] = {
    "buttons": {
        "body": "{Confirm|Please confirm} your appointment",
        "buttons": [{"id": "yes", "title": "Yes"}, {"id": "no", "title": "No"}],
        "footer": "Reply with a button",
    },
    "list": {
        "body": "Pick a slot",
        "button": "Slots",
        "header": "Tomorrow",
        "sections": [
            {
                "title": "Morning",
                "rows": [{"id": "9", "title": "09:00"}, {"id": "10", "title": "10:00"}],
            },
            {"title": "Afternoon", "rows": [{"id": "15", "title": "15:00", "description": "Late"}]},
        ],
    },
}


async def _send(
    gateway: Gateway, key: str, name: str, kind: str, to: str, fields: dict[str, Any]
) -> str:
    status, body = await gateway.call(
        "POST",
        f"/message/{kind}",
        key=key,
        json={"instanceName": name, "to": to, "lane": "urgent", **fields},
    )
    assert 202 == status, (kind, body)
    return str(body["id"])


async def test_cloud_api_sends_every_type_in_metas_shape(
    gateway: Gateway, meta: MetaSimulator, receiver: Receiver
) -> None:
    name, key, number = await cloud_instance(gateway, meta, receiver)
    await contact_writes(meta, number, receiver)
    ids = {
        kind: await _send(gateway, key, name, kind, CONTACT, fields)
        for kind, fields in (MEDIA | INTERACTIVE).items()
    }
    for message_id in ids.values():
        await receiver.wait_for(event_named("message.status", id=message_id, status="sent"))

    bodies = {
        kind: next(s for s in meta.sent if s.get("biz_opaque_callback_data") == message_id)
        for kind, message_id in ids.items()
    }
    assert [] == [found for sent, found in meta.invalid if sent.get("to") == CONTACT]
    assert bodies["image"]["image"]["caption"] in ("Look", "See")
    assert "invoice-001.pdf" == bodies["document"]["document"]["filename"]
    assert {"link": "https://cdn.example.com/audio.ogg"} == bodies["audio"]["audio"]
    assert "Obelisco" == bodies["location"]["location"]["name"]
    assert ["yes", "no"] == [
        b["reply"]["id"] for b in bodies["buttons"]["interactive"]["action"]["buttons"]
    ]
    assert 2 == len(bodies["list"]["interactive"]["action"]["sections"])


async def test_waha_sends_media_and_location_on_its_endpoints(
    gateway: Gateway, waha: WahaSimulator, receiver: Receiver
) -> None:
    name, key, _ = await waha_instance(gateway, waha, receiver)
    to = "5491122223333"
    ids = {
        kind: await _send(gateway, key, name, kind, to, fields) for kind, fields in MEDIA.items()
    }
    for message_id in ids.values():
        await receiver.wait_for(event_named("message.status", id=message_id, status="sent"))
    paths = {s["path"] for s in waha.sent if s.get("chatId") == f"{to}@c.us"}
    assert {
        "/api/sendImage",
        "/api/sendFile",
        "/api/sendVoice",
        "/api/sendVideo",
        "/api/sendLocation",
    } == paths
    assert [] == waha.invalid


@pytest.mark.parametrize("kind", list(INTERACTIVE))
async def test_interactive_messages_need_a_provider_with_buttons(
    gateway: Gateway, receiver: Receiver, kind: str
) -> None:
    tenant_id, key = await gateway.tenant()
    name = await gateway.instance(tenant_id, key, receiver.url(), connect=False)
    status, body = await gateway.call(
        "POST",
        f"/message/{kind}",
        key=key,
        json={"instanceName": name, "to": "5491112345678", **INTERACTIVE[kind]},
    )
    assert (422, "UNPROCESSABLE") == (status, body["code"])


@pytest.mark.parametrize(
    ("kind", "fields", "path"),
    [
        ("location", {"latitude": 91, "longitude": 0}, ["latitude"]),
        ("buttons", {"body": "x", "buttons": []}, ["buttons"]),
        (
            "buttons",
            {"body": "x", "buttons": [{"id": "a", "title": "A"}, {"id": "a", "title": "B"}]},
            ["buttons"],
        ),
        (
            "buttons",
            {"body": "x", "buttons": [{"id": "a", "title": "a title that is far too long"}]},
            ["buttons", 0, "title"],
        ),
        (
            "list",
            {
                "body": "x",
                "button": "b",
                "sections": [{"rows": [{"id": str(i), "title": "t"} for i in range(11)]}],
            },
            ["sections", 0, "rows"],
        ),
    ],
)
async def test_structured_messages_validate_their_fields(
    gateway: Gateway, receiver: Receiver, kind: str, fields: dict[str, Any], path: list[Any]
) -> None:
    tenant_id, key = await gateway.tenant()
    name = await gateway.instance(tenant_id, key, receiver.url(), connect=False)
    status, body = await gateway.call(
        "POST",
        f"/message/{kind}",
        key=key,
        json={"instanceName": name, "to": "5491112345678", **fields},
    )
    assert (400, path) == (status, body["issues"][0]["path"])
