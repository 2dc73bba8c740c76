"""Attachments: multipart uploads kept in GridFS, or URLs fetched at send time."""

import base64
import hashlib
import os
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from tests.e2e.test_cloud_api import CONTACT, cloud_instance
from tests.e2e.test_waha import waha_instance
from tests.simulators.meta import MetaSimulator
from tests.simulators.server import ThreadedServer
from tests.simulators.waha import WahaSimulator
from tests.support.gateway import Gateway
from tests.support.hostile import HostileServer
from tests.support.receiver import Receiver, event_named

pytestmark = pytest.mark.e2e

PDF = b"%PDF-1.4\n" + b"1 0 obj << /Type /Catalog >> endobj\n" * 200 + b"%%EOF\n"


async def _upload(
    gateway: Gateway, key: str, fields: dict[str, str], files: list[tuple[str, bytes, str]]
) -> tuple[int, dict[str, Any]]:
    form = aiohttp.FormData()
    for name, value in fields.items():
        form.add_field(name, value)
    for file_name, data, claimed_type in files:
        form.add_field("attachments", data, filename=file_name, content_type=claimed_type)
    async with (
        aiohttp.ClientSession() as http,
        http.post(gateway.api + "/message/attachment", data=form, headers={"apikey": key}) as r,
    ):
        return r.status, await r.json()


async def _outbox(gateway: Gateway, message_id: str) -> dict[str, Any] | None:
    async with gateway.mongo() as client:
        return await client.lanegate_test.sandbox_outbox.find_one({"_id": message_id})


async def test_an_uploaded_pdf_is_delivered_through_the_sandbox(
    gateway: Gateway, receiver: Receiver
) -> None:
    tenant_id, key = await gateway.tenant()
    name = await gateway.instance(tenant_id, key, receiver.url())

    status, answer = await _upload(
        gateway,
        key,
        {
            "instanceName": name,
            "to": "5491112345678",
            "caption": "{Your|The} invoice",
            "lane": "urgent",
        },
        [("invoice.pdf", PDF, "image/png")],  # the claimed type is not trusted
    )

    assert 202 == status, answer
    await receiver.wait_for(event_named("message.status", id=answer["id"], status="sent"))
    record = await _outbox(gateway, str(answer["id"]))
    assert record is not None
    [received] = record["files"]  # the claimed type was not trusted
    assert ("invoice.pdf", "application/pdf", len(PDF), hashlib.sha256(PDF).hexdigest()) == (
        received["fileName"],
        received["contentType"],
        received["size"],
        received["sha256"],
    )
    assert record["text"] in ("Your invoice", "The invoice")

    async with gateway.mongo() as client:
        stored = await client.lanegate_test.messages.find_one({"_id": answer["id"]})
    assert stored is not None
    file_id = stored["content"]["attachments"][0]["id"]
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{gateway.api}/attachments/{file_id}", headers={"apikey": key}) as r:
            assert (200, "application/pdf", PDF) == (r.status, r.content_type, await r.read())
        _, other_key = await gateway.tenant()
        async with http.get(
            f"{gateway.api}/attachments/{file_id}", headers={"apikey": other_key}
        ) as r:
            assert 404 == r.status


async def test_an_upload_over_the_cap_is_413_and_nothing_is_kept(
    gateway: Gateway, receiver: Receiver
) -> None:
    tenant_id, key = await gateway.tenant()
    name = await gateway.instance(tenant_id, key, receiver.url(), connect=False)
    async with gateway.mongo() as client:
        before = await client.lanegate_test["attachments.files"].count_documents({})

    status, answer = await _upload(
        gateway,
        key,
        {"instanceName": name, "to": "5491112345678"},
        [("small.pdf", PDF, "application/pdf"), ("huge.bin", b"\0" * 262145, "application/pdf")],
    )

    assert (413, "PAYLOAD_TOO_LARGE") == (status, answer["code"])
    async with gateway.mongo() as client:
        assert before == await client.lanegate_test["attachments.files"].count_documents({})
        assert 0 == await client.lanegate_test.messages.count_documents({"tenantId": tenant_id})


async def test_an_upload_with_a_bad_field_keeps_no_file(
    gateway: Gateway, receiver: Receiver
) -> None:
    tenant_id, key = await gateway.tenant()
    name = await gateway.instance(tenant_id, key, receiver.url(), connect=False)
    async with gateway.mongo() as client:
        before = await client.lanegate_test["attachments.files"].count_documents({})
    status, answer = await _upload(
        gateway, key, {"instanceName": name, "to": "+54"}, [("a.pdf", PDF, "application/pdf")]
    )
    assert (400, ["to"]) == (status, answer["issues"][0]["path"])
    async with gateway.mongo() as client:
        assert before == await client.lanegate_test["attachments.files"].count_documents({})


async def test_an_attachment_url_is_fetched_at_send_time(gateway: Gateway) -> None:
    served = Receiver(answer=lambda _: 200).start()
    hook = Receiver().start()
    try:
        tenant_id, key = await gateway.tenant()
        name = await gateway.instance(tenant_id, key, hook.url())
        ok = {"instanceName": name, "to": "5491112345678", "lane": "urgent"}
        status, answer = await gateway.call(
            "POST",
            "/message/attachment",
            key=key,
            json={**ok, "attachmentUrl": served.url("/boleto.pdf")},
        )
        assert 202 == status, answer
        await hook.wait_for(event_named("message.status", id=answer["id"], status="sent"))
        record = await _outbox(gateway, answer["id"])
        assert record is not None and "boleto.pdf" == record["files"][0]["fileName"]

        missing = Receiver(answer=lambda _: 404).start()
        try:
            status, answer = await gateway.call(
                "POST",
                "/message/attachment",
                key=key,
                json={**ok, "attachmentUrl": missing.url("/gone.pdf")},
            )
            assert 202 == status
            await hook.wait_for(event_named("message.status", id=answer["id"], status="failed"))
        finally:
            missing.stop()
        _, message = await gateway.call("GET", f"/message/{answer['id']}", key=key)
        assert "attachment_unavailable" == message["error"]["code"]
        assert "HTTP 404" in message["error"]["message"]
    finally:
        served.stop()
        hook.stop()


async def test_waha_gets_the_file_bytes_inline(
    gateway: Gateway, waha: WahaSimulator, receiver: Receiver
) -> None:
    name, key, _ = await waha_instance(gateway, waha, receiver)
    to = "5491144445555"
    status, answer = await _upload(
        gateway,
        key,
        {"instanceName": name, "to": to, "caption": "Receipt", "lane": "urgent"},
        [("receipt.pdf", PDF, "application/octet-stream")],
    )
    assert 202 == status, answer
    await receiver.wait_for(event_named("message.status", id=answer["id"], status="sent"))
    [sent] = [s for s in waha.sent if s.get("chatId") == f"{to}@c.us"]
    assert ("/api/sendFile", "application/pdf", "receipt.pdf", "Receipt") == (
        sent["path"],
        sent["file"]["mimetype"],
        sent["file"]["filename"],
        sent["caption"],
    )
    assert PDF == base64.b64decode(sent["file"]["data"])


async def test_cloud_api_instances_refuse_uploaded_files(
    gateway: Gateway, meta: MetaSimulator, receiver: Receiver
) -> None:
    name, key, _ = await cloud_instance(gateway, meta, receiver)
    _, listed = await gateway.call("GET", "/instances", key=key)
    assert [False] == [i["supportsAttachments"] for i in listed]
    async with gateway.mongo() as client:
        before = await client.lanegate_test["attachments.files"].count_documents({})

    status, answer = await _upload(
        gateway, key, {"instanceName": name, "to": CONTACT}, [("a.pdf", PDF, "application/pdf")]
    )

    assert (422, "UNPROCESSABLE") == (status, answer["code"])
    async with gateway.mongo() as client:
        assert before == await client.lanegate_test["attachments.files"].count_documents({})


async def test_streamed_files_arrive_byte_identical(
    gateway: Gateway, waha: WahaSimulator, receiver: Receiver
) -> None:
    # Two GridFS chunks (255 KiB each) for the upload; an odd size served in odd pieces for the
    # URL, so chunk and base64 boundaries fall mid-stream.
    uploaded = os.urandom(262144)
    fetched = os.urandom(200_001)

    async def serve(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        for start in range(0, len(fetched), 70_001):
            await response.write(fetched[start : start + 70_001])
        return response

    app = web.Application()
    app.router.add_get("/scan.bin", serve)
    files = ThreadedServer(app)
    files.start()
    try:
        name, key, _ = await waha_instance(gateway, waha, receiver)
        to = "5491166667777"
        status, upload = await _upload(
            gateway,
            key,
            {"instanceName": name, "to": to, "lane": "urgent"},
            [("photo.bin", uploaded, "application/octet-stream")],
        )
        assert 202 == status, upload
        status, by_url = await gateway.call(
            "POST",
            "/message/attachment",
            key=key,
            json={
                "instanceName": name,
                "to": to,
                "lane": "urgent",
                "attachmentUrl": files.url + "/scan.bin?sig=abc",
            },
        )
        assert 202 == status, by_url
        for sent_id in (upload["id"], by_url["id"]):
            await receiver.wait_for(event_named("message.status", id=sent_id, status="sent"))
    finally:
        files.stop()
    got = [
        base64.b64decode(s["file"]["data"]) for s in waha.sent if s.get("chatId") == f"{to}@c.us"
    ]
    assert sorted([uploaded, fetched]) == sorted(got)

    async with gateway.mongo() as client:
        stored = await client.lanegate_test.messages.find_one({"_id": upload["id"]})
    assert stored is not None
    file_id = stored["content"]["attachments"][0]["id"]
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{gateway.api}/attachments/{file_id}", headers={"apikey": key}) as r,
    ):
        assert (200, len(uploaded)) == (r.status, r.content_length)
        assert uploaded == await r.read()


async def test_a_file_outgrowing_the_cap_while_streaming_to_waha_fails_at_once(
    gateway: Gateway, waha: WahaSimulator, receiver: Receiver
) -> None:
    endless = HostileServer(receiver.url())
    endless.start()
    try:
        name, key, _ = await waha_instance(gateway, waha, receiver)
        status, answer = await gateway.call(
            "POST",
            "/message/attachment",
            key=key,
            json={
                "instanceName": name,
                "to": "5491166668888",
                "lane": "urgent",
                "attachmentUrl": endless.url + "/endless/big.pdf",
            },
        )
        assert 202 == status, answer
        await receiver.wait_for(event_named("message.status", id=answer["id"], status="failed"))
    finally:
        endless.stop()
    _, message = await gateway.call("GET", f"/message/{answer['id']}", key=key)
    assert "attachment_unavailable" == message["error"]["code"]
    assert "larger than 262144 bytes" in message["error"]["message"]
    assert [] == [s for s in waha.sent if s.get("chatId") == "5491166668888@c.us"]
