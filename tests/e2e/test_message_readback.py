"""A message reads back with what was asked to be sent, through `GET /message/{id}` and
`GET /messages`, for every message type."""

from typing import Any

import aiohttp
import pytest

from tests.e2e.test_cloud_api import CONTACT, cloud_instance, contact_writes
from tests.e2e.test_message_types import INTERACTIVE
from tests.e2e.test_templates import by_name, meta_template, synced
from tests.simulators.meta import MetaSimulator
from tests.support.gateway import Gateway
from tests.support.receiver import Receiver, event_named

pytestmark = pytest.mark.e2e

TO = "5491112345678"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


async def _send(gateway: Gateway, key: str, kind: str, body: dict[str, Any]) -> str:
    status, answer = await gateway.call("POST", f"/message/{kind}", key=key, json=body)
    assert 202 == status, (kind, answer)
    return str(answer["id"])


async def _read(gateway: Gateway, key: str, message_id: str) -> dict[str, Any]:
    status, body = await gateway.call("GET", f"/message/{message_id}", key=key)
    assert 200 == status, body
    return dict(body)


async def _listed(gateway: Gateway, key: str, **query: str) -> dict[str, dict[str, Any]]:
    status, body = await gateway.call("GET", "/messages", key=key, params=query)
    assert 200 == status, body
    return {m["id"]: m for m in body["data"]}


async def _upload(gateway: Gateway, key: str, fields: dict[str, str]) -> str:
    form = aiohttp.FormData()
    for field, value in fields.items():
        form.add_field(field, value)
    form.add_field("attachments", PNG, filename="chart.png", content_type="text/plain")
    async with (
        aiohttp.ClientSession() as http,
        http.post(gateway.api + "/message/attachment", data=form, headers={"apikey": key}) as r,
    ):
        answer = await r.json()
        assert 202 == r.status, answer
    return str(answer["id"])


def _asked(message: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in message.items() if k not in ("status", "deliveredAt", "readAt")}


async def test_every_sandbox_type_reads_back_what_was_asked(gateway: Gateway) -> None:
    served = Receiver(answer=lambda _: 200).start()
    hook = Receiver().start()
    try:
        tenant_id, key = await gateway.tenant()
        name = await gateway.instance(tenant_id, key, hook.url())
        common = {"instanceName": name, "to": TO, "lane": "urgent"}
        ids = {
            "text": await _send(
                gateway,
                key,
                "text",
                common
                | {
                    "text": "{Hello|Hi} Ana",
                    "externalId": "order-17",
                    "messageType": "TRANSACTIONAL",
                    "priority": 9,
                    "contactName": "Ana",
                    "notes": "confirmation of order 17",
                    "webhookUrl": hook.url("/per-message"),
                },
            ),
            "image": await _send(
                gateway,
                key,
                "image",
                common | {"imageUrl": "https://cdn.example.com/a.jpg", "caption": "{Look|See}"},
            ),
            "document": await _send(
                gateway,
                key,
                "document",
                common
                | {
                    "documentUrl": "https://cdn.example.com/invoice.pdf",
                    "fileName": "invoice.pdf",
                    "caption": "Your invoice",
                },
            ),
            "audio": await _send(
                gateway, key, "audio", common | {"audioUrl": "https://cdn.example.com/a.ogg"}
            ),
            "video": await _send(
                gateway, key, "video", common | {"videoUrl": "https://cdn.example.com/v.mp4"}
            ),
            "location": await _send(
                gateway,
                key,
                "location",
                common | {"latitude": -34.6, "longitude": -58.38, "name": "Obelisco"},
            ),
            "attachmentUrl": await _send(
                gateway,
                key,
                "attachment",
                common | {"attachmentUrl": served.url("/boleto.pdf"), "caption": "Boleto"},
            ),
            "upload": await _upload(gateway, key, common | {"caption": "{Chart|Graph}"}),
        }
        for message_id in ids.values():
            await hook.wait_for(event_named("message.status", id=message_id, status="sent"))
        read = {kind: await _read(gateway, key, message_id) for kind, message_id in ids.items()}

        text = read["text"]
        assert ("{Hello|Hi} Ana", "sent") == (text["text"], text["status"])
        assert text["sentText"] in ("Hello Ana", "Hi Ana")
        assert {
            "externalId": "order-17",
            "messageType": "TRANSACTIONAL",
            "priority": 9,
            "contactName": "Ana",
            "notes": "confirmation of order 17",
            "webhookUrl": hook.url("/per-message"),
            "attempts": 1,
        } == {k: text[k] for k in ("externalId", "messageType", "priority", "contactName")} | {
            k: text[k] for k in ("notes", "webhookUrl", "attempts")
        }
        assert "webhookSecret" not in str(read)
        assert "s3cret" not in str(read)

        assert {"url": "https://cdn.example.com/a.jpg", "caption": "{Look|See}"} == read["image"][
            "media"
        ]
        assert read["image"]["sentText"] in ("Look", "See")
        assert {
            "url": "https://cdn.example.com/invoice.pdf",
            "filename": "invoice.pdf",
            "caption": "Your invoice",
        } == read["document"]["media"]
        assert {"url": "https://cdn.example.com/a.ogg"} == read["audio"]["media"]
        assert {"url": "https://cdn.example.com/v.mp4"} == read["video"]["media"]
        assert {"latitude": -34.6, "longitude": -58.38, "name": "Obelisco", "address": None} == (
            read["location"]["location"]
        )
        assert {"url": served.url("/boleto.pdf"), "caption": "Boleto"} == read["attachmentUrl"][
            "media"
        ]
        upload = read["upload"]
        assert ("chart.png", "image/png", "{Chart|Graph}") == (
            upload["media"]["filename"],
            upload["media"]["mimeType"],
            upload["media"]["caption"],
        )
        assert [upload["media"]] == upload["attachments"]
        assert (
            200
            == (
                await gateway.call(
                    "GET", f"/attachments/{upload['media']['attachmentId']}", key=key
                )
            )[0]
        )
        assert upload["sentText"] in ("Chart", "Graph")

        listed = await _listed(gateway, key, instanceName=name)
        for kind, message_id in ids.items():  # receipts may have come in between the reads
            assert _asked(read[kind]) == _asked(listed[message_id])
    finally:
        served.stop()
        hook.stop()


async def test_a_waiting_message_has_no_sent_text_and_search_finds_its_text(
    gateway: Gateway, receiver: Receiver
) -> None:
    tenant_id, key = await gateway.tenant()
    name = await gateway.instance(tenant_id, key, receiver.url(), connect=False)
    message_id = await _send(
        gateway, key, "text", {"instanceName": name, "to": TO, "text": "Invoice {A|B} ready"}
    )

    read = await _read(gateway, key, message_id)

    assert ("pending", "Invoice {A|B} ready", None, 0) == (
        read["status"],
        read["text"],
        read["sentText"],
        read["attempts"],
    )
    assert [message_id] == list(await _listed(gateway, key, search="invoice {a"))
    assert {} == await _listed(gateway, key, search="receipt")


async def test_buttons_list_and_template_read_back_on_cloud_api(
    gateway: Gateway, meta: MetaSimulator, receiver: Receiver
) -> None:
    template = meta_template("pedido", "Olá {{1}}, seu pedido {{2}} saiu.")
    name, key, number, synced_answer = await synced(gateway, meta, receiver, [template])
    await contact_writes(meta, number, receiver)
    common = {"instanceName": name, "to": CONTACT, "lane": "urgent"}
    ids = {
        kind: await _send(gateway, key, kind, common | INTERACTIVE[kind]) for kind in INTERACTIVE
    }
    template_id = by_name(synced_answer)["pedido"]["id"]
    ids["template"] = await _send(
        gateway, key, "template", common | {"templateId": template_id, "variables": ["Ana", "7"]}
    )
    for message_id in ids.values():
        await receiver.wait_for(event_named("message.status", id=message_id, status="sent"))
    read = {kind: await _read(gateway, key, message_id) for kind, message_id in ids.items()}

    buttons = read["buttons"]
    assert INTERACTIVE["buttons"]["body"] == buttons["text"]
    assert buttons["sentText"] in ("Confirm your appointment", "Please confirm your appointment")
    assert (INTERACTIVE["buttons"]["buttons"], "Reply with a button") == (
        buttons["buttons"],
        buttons["footer"],
    )
    chosen = read["list"]
    assert ("Pick a slot", "Tomorrow", "Slots") == (
        chosen["text"],
        chosen["header"],
        chosen["list"]["button"],
    )
    assert [["9", "10"], ["15"]] == [
        [row["id"] for row in section["rows"]] for section in chosen["list"]["sections"]
    ]
    assert {
        "id": template_id,
        "name": "pedido",
        "language": "pt_BR",
        "variables": ["Ana", "7"],
    } == read["template"]["template"]
    assert "template" == read["template"]["type"]

    assert [ids["buttons"]] == list(await _listed(gateway, key, search="please confirm}"))


async def test_attempts_count_the_tries_a_retried_send_took(
    gateway: Gateway, meta: MetaSimulator, receiver: Receiver
) -> None:
    name, key, number = await cloud_instance(gateway, meta, receiver)
    await contact_writes(meta, number, receiver)
    meta.fail_next(131000, http_status=500)
    message_id = await _send(
        gateway, key, "text", {"instanceName": name, "to": CONTACT, "text": "retry me"}
    )
    await receiver.wait_for(event_named("message.status", id=message_id, status="sent"))

    read = await _read(gateway, key, message_id)

    assert (2, "retry me", "retry me") == (read["attempts"], read["text"], read["sentText"])
