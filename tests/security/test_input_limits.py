"""Multipart uploads: the form fields besides the files are capped in number and in size."""

import io
from typing import Any

import aiohttp
import pytest

from tests.support.gateway import Gateway
from tests.support.receiver import Receiver

pytestmark = pytest.mark.e2e

PDF = b"%PDF-1.4\n" + b"1 0 obj << /Type /Catalog >> endobj\n" * 20 + b"%%EOF\n"


async def _post_form(gateway: Gateway, key: str, form: aiohttp.MultipartWriter) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession() as http,
        http.post(gateway.api + "/message/attachment", data=form, headers={"apikey": key}) as r,
    ):
        return r.status, await r.json()


def _form(name: str, extra: list[tuple[str, str | bytes]]) -> aiohttp.MultipartWriter:
    """A file first (so it is stored before the fields come), then the send and extra fields;
    a bytes value goes as a file under its own field name."""
    form = aiohttp.MultipartWriter("form-data")
    upload = form.append(PDF, {"Content-Type": "application/pdf"})
    upload.set_content_disposition("form-data", name="attachments", filename="a.pdf")
    for field, value in [("instanceName", name), ("to", "5491112345678"), *extra]:
        raw = value if isinstance(value, bytes) else value.encode()
        part = form.append(io.BytesIO(raw), {"Content-Type": "text/plain; charset=utf-8"})
        if isinstance(value, bytes):
            part.set_content_disposition("form-data", name=field, filename=f"{field}.bin")
        else:
            part.set_content_disposition("form-data", name=field)
    return form


async def _kept(gateway: Gateway, tenant_id: str) -> tuple[int, int]:
    """The tenant's stored files and messages."""
    async with gateway.mongo() as client:
        db = client.lanegate_test
        files = await db["attachments.files"].count_documents({"metadata.tenantId": tenant_id})
        messages = await db.messages.count_documents({"tenantId": tenant_id})
    return files, messages


@pytest.mark.parametrize(
    "extra",
    [
        pytest.param([(f"f{i}", "x") for i in range(49)], id="51-fields"),
        pytest.param([(f"n{i}", "x" * 400_000) for i in range(3)], id="1.2MB-over-3-fields"),
        pytest.param([("notes", "x" * 1_100_000)], id="one-1.1MB-field"),
        pytest.param([("other", b"x" * 1_100_000)], id="a-file-under-another-name"),
    ],
)
async def test_too_many_or_too_large_form_fields_are_413_and_keep_nothing(
    gateway: Gateway, receiver: Receiver, extra: list[tuple[str, str | bytes]]
) -> None:
    tenant_id, key = await gateway.tenant()
    name = await gateway.instance(tenant_id, key, receiver.url(), connect=False)

    status, answer = await _post_form(gateway, key, _form(name, extra))

    assert (413, "PAYLOAD_TOO_LARGE") == (status, answer["code"])
    assert (0, 0) == await _kept(gateway, tenant_id)


async def test_fifty_form_fields_are_still_read(gateway: Gateway, receiver: Receiver) -> None:
    tenant_id, key = await gateway.tenant()
    name = await gateway.instance(tenant_id, key, receiver.url(), connect=False)

    form = _form(name, [("caption", "hello")] * 48)
    status, answer = await _post_form(gateway, key, form)

    assert 202 == status, answer
    assert (1, 1) == await _kept(gateway, tenant_id)


async def test_a_form_field_that_is_not_utf8_is_400(gateway: Gateway, receiver: Receiver) -> None:
    tenant_id, key = await gateway.tenant()
    name = await gateway.instance(tenant_id, key, receiver.url(), connect=False)

    status, answer = await _post_form(gateway, key, _form(name, [("caption", b"\xff\xfe")]))

    assert (400, "Validation error") == (status, answer["error"])
    assert (0, 0) == await _kept(gateway, tenant_id)


async def test_spintax_nested_over_twenty_levels_is_400_naming_the_field(
    gateway: Gateway, receiver: Receiver
) -> None:
    tenant_id, key = await gateway.tenant()
    name = await gateway.instance(tenant_id, key, receiver.url(), connect=False)
    deep = "{" * 21 + "a|b" + "}" * 21
    fine = "{" * 20 + "a|b" + "}" * 20
    send = {"instanceName": name, "to": "5491112345678"}

    status, answer = await gateway.call(
        "POST", "/message/text", key=key, json=send | {"text": deep}
    )
    assert (400, [["text"]]) == (status, [issue["path"] for issue in answer["issues"]])
    assert "deeper than 20" in answer["issues"][0]["message"]

    items = [
        send | {"text": fine},
        send | {"type": "image", "imageUrl": "https://x.test/a.png", "caption": deep},
    ]
    status, answer = await gateway.call("POST", "/message/bulk", key=key, json={"messages": items})
    assert 400 == status, answer
    assert [["messages", 1, "caption"]] == [issue["path"] for issue in answer["issues"]]
    assert (0, 0) == await _kept(gateway, tenant_id)

    status, answer = await gateway.call(
        "POST", "/message/text", key=key, json=send | {"text": fine}
    )
    assert 202 == status, answer
