"""The SendSync compatibility layer: every documented parameter and error of `/api/...`."""

import io
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import openpyxl
import pytest

from ingress_api.spreadsheets import COLUMNS, XLSX_MEDIA
from tests.support.gateway import Gateway, eventually
from tests.support.receiver import Receiver

pytestmark = pytest.mark.e2e

NUMBER = "5511999998888"


async def call(
    gateway: Gateway, method: str, path: str, key: str | None, **kw: Any
) -> tuple[int, Any, dict[str, str]]:
    """One request with the key as `Authorization: Bearer`; status, JSON body, headers."""
    headers = dict(kw.pop("headers", {}))
    if key is not None:
        headers.setdefault("Authorization", f"Bearer {key}")
    async with (
        aiohttp.ClientSession() as http,
        http.request(method, gateway.api + path, headers=headers, **kw) as response,
    ):
        body = await response.json() if response.content_type == "application/json" else None
        return response.status, body, dict(response.headers)


async def send(gateway: Gateway, key: str, connector: str, **fields: Any) -> dict[str, Any]:
    body = {"connectorId": connector, "to": NUMBER, "message": "oi", **fields}
    status, answer, _ = await call(gateway, "POST", "/api/queue/send", key, json=body)
    assert 201 == status, answer
    return dict(answer)


async def stored(gateway: Gateway, key: str, message_id: str) -> dict[str, Any]:
    _, message, _ = await call(gateway, "GET", f"/message/{message_id}", key)
    return dict(message)


async def test_connectors_are_the_tenants_instances(gateway: Gateway, receiver: Receiver) -> None:
    tenant = await gateway.tenant_with_instance(receiver.url())
    idle = await gateway.instance(tenant.tenant_id, tenant.key, receiver.url(), connect=False)
    paused = await gateway.instance(tenant.tenant_id, tenant.key, receiver.url())
    status, _, _ = await call(gateway, "POST", f"/instance/{paused}/pause", tenant.key)
    assert 200 == status
    mail = f"{tenant.tenant_id}__support__mail"
    # An e-mail instance as the store holds one (its relay is not needed to list it).
    async with gateway.mongo() as client:
        await client.lanegate_test.instances.insert_one(
            {"_id": mail, "tenantId": tenant.tenant_id, "clientId": "support", "state": "open"}
            | {"provider": "smtp"}
        )
    await gateway.tenant_with_instance(receiver.url())  # another tenant's: never listed

    status, connectors, _ = await call(gateway, "GET", "/api/connectors", tenant.key)

    assert 200 == status
    assert {
        tenant.name: ("WHATSAPP", "ACTIVE"),
        idle: ("WHATSAPP", "DISCONNECTED"),
        paused: ("WHATSAPP", "PAUSED"),
        mail: ("EMAIL", "ACTIVE"),
    } == {c["id"]: (c["type"], c["status"]) for c in connectors}
    assert {tenant.tenant_id} == {c["companyId"] for c in connectors}
    assert {"id", "name", "type", "status", "companyId"} == set(connectors[0])


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer nope"}, {"X-API-Key": "nope"}, {"Authorization": "Basic x"}],
)
async def test_a_missing_or_wrong_key_is_401(gateway: Gateway, headers: dict[str, str]) -> None:
    status, body, _ = await call(gateway, "GET", "/api/connectors", None, headers=headers)
    assert (401, "UNAUTHORIZED") == (status, body["code"])


async def test_the_key_works_as_x_api_key_and_as_bearer(gateway: Gateway) -> None:
    _, key = await gateway.tenant()
    for headers in ({"X-API-Key": key}, {"Authorization": f"Bearer {key}"}):
        status, _, _ = await call(gateway, "GET", "/api/connectors", None, headers=headers)
        assert 200 == status


async def test_connect_shows_the_qr_code_then_status_and_disconnect_follow_the_session(
    gateway: Gateway, receiver: Receiver
) -> None:
    tenant = await gateway.tenant_with_instance(receiver.url(), connect=False)
    path = f"/api/whatsapp/connect/{tenant.name}"

    status, connection, _ = await call(gateway, "POST", path, tenant.key)
    assert (200, "QR_CODE") == (status, connection["status"])
    assert connection["qrCode"].startswith("data:image/png;base64,")
    # A sandbox session reads `close` until its code is scanned.
    _, state, _ = await call(gateway, "GET", f"/api/whatsapp/status/{tenant.name}", tenant.key)
    assert {"status": "DISCONNECTED"} == state

    status, _, _ = await call(gateway, "POST", f"/sandbox/{tenant.name}/scan", tenant.key)
    assert 202 == status

    async def connected() -> bool:
        _, state, _ = await call(gateway, "GET", f"/api/whatsapp/status/{tenant.name}", tenant.key)
        return bool(state["status"] == "CONNECTED" and state["phone"])

    await eventually(connected)
    _, connection, _ = await call(gateway, "POST", path, tenant.key)
    assert {"status": "CONNECTED"} == connection

    status, answer, _ = await call(
        gateway, "POST", f"/api/whatsapp/disconnect/{tenant.name}", tenant.key
    )
    assert (200, {"status": "DISCONNECTED"}) == (status, answer)
    _, state, _ = await call(gateway, "GET", f"/api/whatsapp/status/{tenant.name}", tenant.key)
    assert "CONNECTED" != state["status"]


@pytest.mark.parametrize(
    ("connector", "expected"),
    [("not-an-instance", 400), ("other__support__x", 403), (None, 404)],
)
async def test_a_session_route_refuses_a_connector_not_the_callers(
    gateway: Gateway, connector: str | None, expected: int
) -> None:
    tenant_id, key = await gateway.tenant()
    connector = connector or f"{tenant_id}__support__absent"
    for method, route in (("POST", "connect"), ("GET", "status"), ("POST", "disconnect")):
        status, body, _ = await call(gateway, method, f"/api/whatsapp/{route}/{connector}", key)
        assert expected == status, body
        if expected == 400:
            assert [["connectorId"]] == [i["path"] for i in body["issues"]]


async def test_every_send_field_reaches_the_stored_message(
    gateway: Gateway, receiver: Receiver
) -> None:
    tenant = await gateway.tenant_with_instance(receiver.url(), connect=False)
    at = (datetime.now(UTC) + timedelta(hours=2)).replace(microsecond=0)
    answer = await send(
        gateway,
        tenant.key,
        tenant.name,
        contactName="João Silva",
        messageType="marketing",
        priority=7,
        scheduledAt=at.isoformat(),
        notes="interno",
        webhookUrl=receiver.url(),
        externalId="PEDIDO-1",
    )
    message = await stored(gateway, tenant.key, answer["id"])
    assert {
        "contactName": "João Silva",
        "messageType": "MARKETING",
        "priority": 7,
        "scheduledAt": at.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "notes": "interno",
        "webhookUrl": receiver.url(),
        "lane": "normal",
        "text": "oi",
    } == {k: message[k] for k in ("contactName", "messageType", "priority", "scheduledAt")} | {
        k: message[k] for k in ("notes", "webhookUrl", "lane", "text")
    }
    _, contact, _ = await call(gateway, "GET", f"/contacts/{NUMBER}", tenant.key)
    assert "João Silva" == contact["name"]


async def test_force_direct_is_the_urgent_lane_at_priority_ten(
    gateway: Gateway, receiver: Receiver
) -> None:
    tenant = await gateway.tenant_with_instance(receiver.url(), connect=False)
    answer = await send(gateway, tenant.key, tenant.name, forceDirect=True, priority=2)
    message = await stored(gateway, tenant.key, answer["id"])
    assert ("urgent", 10, 10) == (message["lane"], message["priority"], answer["priority"])

    body = {"connectorId": tenant.name, "to": NUMBER, "message": "oi", "forceDirect": True}
    body["scheduledAt"] = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    status, error, _ = await call(gateway, "POST", "/api/queue/send", tenant.key, json=body)
    assert (400, [["scheduledAt"]]) == (status, [i["path"] for i in error["issues"]])


async def test_requires_approval_answers_pending_approval(
    gateway: Gateway, receiver: Receiver
) -> None:
    tenant = await gateway.tenant_with_instance(receiver.url(), connect=False)
    answer = await send(gateway, tenant.key, tenant.name, requiresApproval=True)
    assert "PENDING_APPROVAL" == answer["status"]


async def test_external_id_is_a_plain_reference_and_idempotency_key_is_the_key(
    gateway: Gateway, receiver: Receiver
) -> None:
    tenant = await gateway.tenant_with_instance(receiver.url(), connect=False)
    first = await send(gateway, tenant.key, tenant.name, externalId="REF-1")
    second = await send(gateway, tenant.key, tenant.name, externalId="REF-1")
    assert first["id"] != second["id"]

    body = {"connectorId": tenant.name, "to": NUMBER, "message": "oi", "externalId": "REF-1"}
    once = {"Idempotency-Key": "k-1"}
    status, original, headers = await call(
        gateway, "POST", "/api/queue/send", tenant.key, json=body, headers=once
    )
    assert (201, None) == (status, headers.get("Idempotent-Replayed"))
    status, repeat, headers = await call(
        gateway, "POST", "/api/queue/send", tenant.key, json=body, headers=once
    )
    assert (201, original, "true") == (status, repeat, headers.get("Idempotent-Replayed"))
    status, clash, _ = await call(
        gateway, "POST", "/api/queue/send", tenant.key, json=body | {"message": "x"}, headers=once
    )
    assert (409, "CONFLICT") == (status, clash["code"])
    _, page, _ = await call(gateway, "GET", "/api/queue/list?externalId=REF-1", tenant.key)
    assert 3 == page["meta"]["total"]


@pytest.mark.parametrize(
    ("change", "path"),
    [
        ({"connectorId": None}, ["connectorId"]),
        ({"to": None}, ["to"]),
        ({"message": None}, ["message"]),
        ({"to": "12"}, ["to"]),
        ({"priority": 11}, ["priority"]),
        ({"messageType": "SPAM"}, ["messageType"]),
        ({"scheduledAt": "tomorrow"}, ["scheduledAt"]),
        ({"requiresApproval": "maybe"}, ["requiresApproval"]),
        ({"webhookUrl": "ftp://x"}, ["webhookUrl"]),
        ({"attachmentUrl": "not a url"}, ["attachmentUrl"]),
        ({"externalId": ""}, ["externalId"]),
        ({"colour": "red"}, ["colour"]),
        ({"connectorId": "no-such-format"}, ["connectorId"]),
    ],
)
async def test_a_bad_send_is_400_naming_the_field(
    gateway: Gateway, receiver: Receiver, change: dict[str, Any], path: list[str]
) -> None:
    tenant = await gateway.tenant_with_instance(receiver.url(), connect=False)
    body = {"connectorId": tenant.name, "to": NUMBER, "message": "oi"} | change
    body = {k: v for k, v in body.items() if v is not None}
    status, error, _ = await call(gateway, "POST", "/api/queue/send", tenant.key, json=body)
    assert (400, "Validation error") == (status, error["error"])
    assert path in [i["path"] for i in error["issues"]]
    _, page, _ = await call(gateway, "GET", "/api/queue/list", tenant.key)
    assert 0 == page["meta"]["total"]


async def test_send_refusals_name_the_sendsync_fields(gateway: Gateway, receiver: Receiver) -> None:
    tenant = await gateway.tenant_with_instance(receiver.url(), connect=False)
    body = {"connectorId": f"{tenant.tenant_id}__support__gone", "to": NUMBER, "message": "oi"}
    status, _, _ = await call(gateway, "POST", "/api/queue/send", tenant.key, json=body)
    assert 404 == status
    body["connectorId"] = "someone__support__x"
    status, _, _ = await call(gateway, "POST", "/api/queue/send", tenant.key, json=body)
    assert 403 == status
    status, error, _ = await call(
        gateway,
        "POST",
        "/api/queue/send",
        tenant.key,
        data="x",
        headers={"Content-Type": "text/plain"},
    )
    assert 415 == status, error
    too_long = {"Idempotency-Key": "k" * 191}
    body["connectorId"] = tenant.name
    status, error, _ = await call(
        gateway, "POST", "/api/queue/send", tenant.key, json=body, headers=too_long
    )
    assert (400, [["Idempotency-Key"]]) == (status, [i["path"] for i in error["issues"]])


async def test_a_multipart_send_without_files_or_with_a_bad_field_keeps_nothing(
    gateway: Gateway, receiver: Receiver
) -> None:
    tenant = await gateway.tenant_with_instance(receiver.url(), connect=False)
    form = aiohttp.FormData()
    for name, value in {"connectorId": tenant.name, "to": NUMBER, "priority": "0"}.items():
        form.add_field(name, value)
    form.add_field("attachments", b"%PDF-1.4", filename="a.pdf")
    status, error, _ = await call(gateway, "POST", "/api/queue/send", tenant.key, data=form)
    assert 400 == status
    assert {("message",), ("priority",)} == {tuple(i["path"]) for i in error["issues"]}
    async with gateway.mongo() as client:
        files = client.lanegate_test["attachments.files"]
        assert 0 == await files.count_documents({"metadata.tenantId": tenant.tenant_id})


async def test_bulk_queues_all_or_names_each_bad_item(gateway: Gateway, receiver: Receiver) -> None:
    tenant = await gateway.tenant_with_instance(receiver.url(), connect=False)
    good = {"connectorId": tenant.name, "to": NUMBER, "message": "oi"}
    bad = [good, good | {"to": "12"}, good | {"connectorId": f"{tenant.tenant_id}__x__gone"}]
    status, error, _ = await call(
        gateway, "POST", "/api/queue/bulk", tenant.key, json={"messages": bad}
    )
    assert 400 == status
    assert [["messages", 1, "to"]] == [i["path"] for i in error["issues"]]
    status, error, _ = await call(
        gateway, "POST", "/api/queue/bulk", tenant.key, json={"messages": [good, bad[2]]}
    )
    assert (400, [["messages", 1, "connectorId"]]) == (status, [i["path"] for i in error["issues"]])
    status, error, _ = await call(
        gateway, "POST", "/api/queue/bulk", tenant.key, json={"messages": [good] * 1001}
    )
    assert (400, [["messages"]]) == (status, [i["path"] for i in error["issues"]])
    _, page, _ = await call(gateway, "GET", "/api/queue/list", tenant.key)
    assert 0 == page["meta"]["total"]

    once = {"Idempotency-Key": "bulk-1"}
    body = {"messages": [good, good | {"externalId": "R"}]}
    status, first, _ = await call(
        gateway, "POST", "/api/queue/bulk", tenant.key, json=body, headers=once
    )
    assert (201, 2) == (status, first["count"])
    status, again, _ = await call(
        gateway, "POST", "/api/queue/bulk", tenant.key, json=body, headers=once
    )
    assert (201, first) == (status, again)
    _, page, _ = await call(gateway, "GET", "/api/queue/list", tenant.key)
    assert 2 == page["meta"]["total"]


async def test_the_list_filters_pages_and_maps_statuses(
    gateway: Gateway, receiver: Receiver
) -> None:
    tenant = await gateway.tenant_with_instance(receiver.url())
    idle = await gateway.instance(tenant.tenant_id, tenant.key, receiver.url(), connect=False)
    sent = await send(gateway, tenant.key, tenant.name, messageType="MARKETING")
    waiting = await send(gateway, tenant.key, idle, message="sua fatura chegou")
    approval = await send(gateway, tenant.key, idle, requiresApproval=True, externalId="E")

    async def was_sent() -> bool:
        return bool("sent" == (await stored(gateway, tenant.key, sent["id"]))["status"])

    await eventually(was_sent)
    cases = {
        "": [approval, waiting, sent],
        "status=SENT": [sent],
        "status=pending": [waiting],
        "status=PENDING_APPROVAL": [approval],
        "status=FAILED": [],
        f"connectorId={idle}": [approval, waiting],
        "messageType=MARKETING": [sent],
        "search=FATURA": [waiting],
        "externalId=E": [approval],
        "limit=1&page=2": [waiting],
        "dateFrom=2000-01-01T00:00:00Z&dateTo=2000-01-02T00:00:00Z": [],
        f"dateFrom={datetime.now(UTC).date()}T00:00:00Z": [approval, waiting, sent],
    }
    for query, expected in cases.items():
        status, page, _ = await call(gateway, "GET", f"/api/queue/list?{query}", tenant.key)
        assert (200, [m["id"] for m in expected]) == (
            status,
            [m["id"] for m in page["data"]],
        ), query
    _, page, _ = await call(gateway, "GET", "/api/queue/list", tenant.key)
    assert {"total": 3, "page": 1, "limit": 250, "pages": 1} == page["meta"]
    assert ["PENDING_APPROVAL", "PENDING", "SENT"] == [m["status"] for m in page["data"]]


@pytest.mark.parametrize(
    "query", ["limit=251", "limit=0", "page=0", "status=LOST", "dateFrom=yesterday", "colour=red"]
)
async def test_the_list_refuses_bad_filters(gateway: Gateway, query: str) -> None:
    _, key = await gateway.tenant()
    status, body, _ = await call(gateway, "GET", f"/api/queue/list?{query}", key)
    assert (400, "Validation error") == (status, body["error"])


async def test_login_checks_its_body_first(gateway: Gateway) -> None:
    status, body, _ = await call(gateway, "POST", "/api/auth/login", None, json={"email": "a"})
    assert (400, [["password"]]) == (status, [i["path"] for i in body["issues"]])


async def test_openapi_tags_every_sendsync_route(gateway: Gateway) -> None:
    _, document, _ = await call(gateway, "GET", "/openapi.json", None)
    tagged = {
        (method.upper(), path)
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
        if operation.get("tags") == ["SendSync compatibility"]
    }
    assert {
        ("POST", "/api/auth/login"),
        ("GET", "/api/connectors"),
        ("POST", "/api/whatsapp/connect/{connectorId}"),
        ("GET", "/api/whatsapp/status/{connectorId}"),
        ("POST", "/api/whatsapp/disconnect/{connectorId}"),
        ("POST", "/api/queue/send"),
        ("POST", "/api/queue/bulk"),
        ("GET", "/api/queue/list"),
        ("GET", "/api/contacts"),
        ("POST", "/api/contacts"),
        ("PATCH", "/api/contacts/{id}/status"),
        ("DELETE", "/api/contacts/{id}"),
        ("GET", "/api/queue/template"),
        ("POST", "/api/queue/import"),
        ("POST", "/api/queue/import/preview"),
    } <= tagged


async def test_contacts_are_saved_listed_deactivated_and_deleted(gateway: Gateway) -> None:
    _, key = await gateway.tenant()
    status, phone, _ = await call(
        gateway,
        "POST",
        "/api/contacts",
        key,
        json={"identifier": "+55 11 99999-8888", "type": "WHATSAPP", "name": "João"},
    )
    assert (201, NUMBER, "WHATSAPP", "João") == (
        status,
        phone["identifier"],
        phone["type"],
        phone["name"],
    )
    status, renamed, _ = await call(
        gateway, "POST", "/api/contacts", key, json={"identifier": NUMBER, "name": "Jo"}
    )
    assert (200, phone["id"], "Jo") == (status, renamed["id"], renamed["name"])
    status, mail, _ = await call(
        gateway, "POST", "/api/contacts", key, json={"identifier": "Ana@X.com", "type": "email"}
    )
    assert (201, "ana@x.com", "EMAIL") == (status, mail["identifier"], mail["type"])

    status, listed, headers = await call(gateway, "GET", "/api/contacts", key)
    assert (200, [phone["id"], mail["id"]], "2") == (
        status,
        [c["id"] for c in listed],
        headers["X-Total-Count"],
    )
    _, emails, _ = await call(gateway, "GET", "/api/contacts?type=EMAIL", key)
    assert [mail["id"]] == [c["id"] for c in emails]

    path = f"/api/contacts/{phone['id']}/status"
    status, inactive, _ = await call(
        gateway, "PATCH", path, key, json={"active": False, "reason": "pediu"}
    )
    assert (200, False, "pediu") == (status, inactive["active"], inactive["inactiveReason"])

    status, deleted, _ = await call(gateway, "DELETE", f"/api/contacts/{mail['id']}", key)
    assert (200, {"id": mail["id"], "deleted": True}) == (status, deleted)
    _, listed, _ = await call(gateway, "GET", "/api/contacts", key)
    assert [phone["id"]] == [c["id"] for c in listed]


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"identifier": "12"}, ["identifier"]),
        ({"identifier": "not-an-address", "type": "EMAIL"}, ["identifier"]),
        ({"identifier": NUMBER, "type": "SMS"}, ["type"]),
        ({}, ["identifier"]),
        ({"identifier": NUMBER, "colour": "red"}, ["colour"]),
    ],
)
async def test_a_bad_contact_is_400_naming_the_field(
    gateway: Gateway, body: dict[str, Any], path: list[str]
) -> None:
    _, key = await gateway.tenant()
    status, error, _ = await call(gateway, "POST", "/api/contacts", key, json=body)
    assert (400, [path]) == (status, [i["path"] for i in error["issues"]])
    _, listed, _ = await call(gateway, "GET", "/api/contacts", key)
    assert [] == listed


async def test_another_tenants_or_a_missing_contact_is_404(gateway: Gateway) -> None:
    _, key = await gateway.tenant()
    _, other_key = await gateway.tenant()
    _, contact, _ = await call(gateway, "POST", "/api/contacts", key, json={"identifier": NUMBER})
    for ref in (contact["id"], "3f1c0c4e-0000-4000-8000-000000000000"):
        status, _, _ = await call(
            gateway, "PATCH", f"/api/contacts/{ref}/status", other_key, json={"active": False}
        )
        assert 404 == status
        status, _, _ = await call(gateway, "DELETE", f"/api/contacts/{ref}", other_key)
        assert 404 == status
    status, error, _ = await call(
        gateway, "PATCH", f"/api/contacts/{contact['id']}/status", key, json={"active": "x"}
    )
    assert (400, [["active"]]) == (status, [i["path"] for i in error["issues"]])
    status, _, _ = await call(gateway, "GET", "/api/contacts?limit=1001", key)
    assert 400 == status


def workbook(rows: list[list[Any]]) -> bytes:
    book = openpyxl.Workbook()
    for row in rows:
        book.active.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


async def upload(
    gateway: Gateway, key: str, data: bytes, name: str, **fields: str
) -> tuple[int, Any]:
    form = aiohttp.FormData()
    for field, value in fields.items():
        form.add_field(field, value)
    form.add_field("file", data, filename=name)
    status, body, _ = await call(gateway, "POST", "/api/queue/import", key, data=form)
    return status, body


async def test_the_template_has_the_import_columns_and_an_example_row(gateway: Gateway) -> None:
    _, key = await gateway.tenant()
    async with (
        aiohttp.ClientSession() as http,
        http.get(
            gateway.api + "/api/queue/template", headers={"Authorization": f"Bearer {key}"}
        ) as response,
    ):
        assert 200 == response.status
        assert XLSX_MEDIA == response.content_type
        data = await response.read()
    sheet = openpyxl.load_workbook(io.BytesIO(data)).active
    header, example = list(sheet.iter_rows(values_only=True))
    assert list(COLUMNS) == list(header)
    assert ("5511999998888", "TRANSACTIONAL") == (example[1], example[4])


async def test_an_xlsx_import_queues_its_rows_as_one_bulk(
    gateway: Gateway, receiver: Receiver
) -> None:
    tenant = await gateway.tenant_with_instance(receiver.url(), connect=False)
    data = workbook(
        [
            ["connectorId", "to", "message", "messageType", "priority", "externalId"],
            [tenant.name, 5511999998888, "primeira", "marketing", 7, "R-1"],
            [None, None, None, None, None, None],
            [None, "5511988887777", "segunda", None, None, None],
        ]
    )
    status, answer = await upload(gateway, tenant.key, data, "lista.xlsx", connectorId=tenant.name)
    assert (201, 2) == (status, answer["count"]), answer
    _, page, _ = await call(gateway, "GET", "/api/queue/list", tenant.key)
    # One bulk: its messages may share a creation time, so their order is not asserted.
    assert {
        ("5511988887777", "segunda", "GERAL", 5, None),
        (NUMBER, "primeira", "MARKETING", 7, "R-1"),
    } == {
        (m["to"], m["message"], m["messageType"], m["priority"], m["externalId"])
        for m in page["data"]
    }


async def test_a_csv_import_reads_semicolons_and_a_byte_order_mark(
    gateway: Gateway, receiver: Receiver
) -> None:
    tenant = await gateway.tenant_with_instance(receiver.url(), connect=False)
    text = f"connectorId;to;message;requiresApproval\n{tenant.name};{NUMBER};olá;true\n"
    status, answer = await upload(gateway, tenant.key, text.encode("utf-8-sig"), "lista.csv")
    assert (201, ["PENDING_APPROVAL"]) == (status, [m["status"] for m in answer["messages"]])


async def test_an_import_with_bad_rows_names_each_and_queues_nothing(
    gateway: Gateway, receiver: Receiver
) -> None:
    tenant = await gateway.tenant_with_instance(receiver.url(), connect=False)
    text = f"connectorId,to,message\n{tenant.name},{NUMBER},ok\n{tenant.name},12,bad\n,{NUMBER},x\n"
    status, error = await upload(gateway, tenant.key, text.encode(), "lista.csv")
    assert 400 == status
    assert [["rows", 3, "to"], ["rows", 4, "connectorId"]] == [i["path"] for i in error["issues"]]
    _, page, _ = await call(gateway, "GET", "/api/queue/list", tenant.key)
    assert 0 == page["meta"]["total"]


@pytest.mark.parametrize(
    ("data", "path"),
    [
        (b"connectorId,to,colour\nx,y,z\n", ["file", "colour"]),
        (b"PK\x03\x04not a zip", ["file"]),
        (b"\xff\xfe\x00bad", ["file"]),
        (b"connectorId,to,message\n", ["file"]),
        (b"", ["file"]),
        (b"connectorId,to,message\n" + b"a,b,c\n" * 1001, ["file"]),
    ],
)
async def test_an_unreadable_import_file_is_400(
    gateway: Gateway, data: bytes, path: list[str]
) -> None:
    _, key = await gateway.tenant()
    status, error = await upload(gateway, key, data, "lista.csv")
    assert (400, [path]) == (status, [i["path"] for i in error["issues"]])


async def test_an_import_must_be_a_multipart_file(gateway: Gateway) -> None:
    _, key = await gateway.tenant()
    status, _, _ = await call(gateway, "POST", "/api/queue/import", key, json={"rows": []})
    assert 415 == status
    form = aiohttp.FormData(default_to_multipart=True)
    form.add_field("connectorId", "x")
    status, error, _ = await call(gateway, "POST", "/api/queue/import", key, data=form)
    assert (400, [["file"]]) == (status, [i["path"] for i in error["issues"]])


async def test_the_import_preview_shows_each_row_and_queues_nothing(
    gateway: Gateway, receiver: Receiver
) -> None:
    tenant = await gateway.tenant_with_instance(receiver.url(), connect=False)
    text = f"to,message,priority\n{NUMBER},ok,3\n12,bad,5\n{NUMBER},bad,11\n"
    form = aiohttp.FormData()
    form.add_field("connectorId", tenant.name)
    form.add_field("file", text.encode(), filename="lista.csv")
    status, preview, _ = await call(
        gateway, "POST", "/api/queue/import/preview", tenant.key, data=form
    )
    assert 200 == status, preview
    assert [
        (2, {"connectorId": tenant.name, "to": NUMBER, "message": "ok", "priority": "3"}, []),
        (3, {"connectorId": tenant.name, "to": "12", "message": "bad", "priority": "5"}, [["to"]]),
        (
            4,
            {"connectorId": tenant.name, "to": NUMBER, "message": "bad", "priority": "11"},
            [["priority"]],
        ),
    ] == [(r["row"], r["fields"], sorted(i["path"] for i in r["issues"])) for r in preview["rows"]]
    _, page, _ = await call(gateway, "GET", "/api/queue/list", tenant.key)
    assert 0 == page["meta"]["total"]
