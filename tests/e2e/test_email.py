"""The e-mail channel end to end: smtp instances against a real SMTP relay simulator (STARTTLS
on a certificate made here, AUTH), mails parsed as they arrived."""

import json
import os
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from email.message import EmailMessage
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from playwright.async_api import Browser, async_playwright, expect

from tests.conftest import whole_stack
from tests.e2e.test_console import CHROMIUM, FLAGS
from tests.e2e.test_otp import _holds as holds_code
from tests.e2e.test_otp import _logs_holding as logs_holding_code
from tests.simulators.server import ThreadedServer
from tests.simulators.smtp import Certificates, SmtpSimulator, make_certificates
from tests.support.gateway import FAST_LANES, Gateway, eventually
from tests.support.messages import stored, wait_status
from tests.support.receiver import Receiver, event_named

pytestmark = pytest.mark.e2e

CUSTOMER = "ana@customer.example"
PHONE = "5491133334444"


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("smtp-ca"))


@pytest.fixture(scope="module")
def mail_gateway(certificates: Certificates) -> Iterator[Gateway]:
    """A stack whose provider-sender trusts the test CA."""
    with whole_stack(LANEGATE_SMTP_CA_FILE=str(certificates.ca_file)) as running:
        yield running


@pytest.fixture
def relay(certificates: Certificates) -> Iterator[SmtpSimulator]:
    simulator = SmtpSimulator(certificates).start()
    yield simulator
    simulator.stop()


@pytest.fixture
async def hook() -> AsyncIterator[Receiver]:
    receiver = Receiver().start()
    yield receiver
    receiver.stop()


async def create(
    gateway: Gateway, hook: Receiver, config: dict[str, Any], lanes: dict[str, Any] | None
) -> tuple[str, str, str, int, dict[str, Any]]:
    """A tenant and its try at an smtp instance: (tenant, key, name, status, answer)."""
    tenant_id, key = await gateway.tenant()
    name = f"{tenant_id}__support__mail"
    body = {
        "instanceName": name,
        "webhookUrl": hook.url(),
        "webhookSecret": "s3cret-s3cret-s3cret",
        "provider": "smtp",
        "providerConfig": config,
    }
    status, answer = await gateway.call(
        "POST", "/instance/create", key=key, json=body | ({"lanes": lanes} if lanes else {})
    )
    return tenant_id, key, name, status, answer


async def mail_instance(
    gateway: Gateway, relay: SmtpSimulator, hook: Receiver, **config: Any
) -> tuple[str, str, str, dict[str, Any]]:
    """A tenant with an smtp instance on `relay` with fast lanes: (tenant, key, name, answer)."""
    tenant_id, key, name, status, answer = await create(
        gateway, hook, relay.config(**config), FAST_LANES
    )
    assert 201 == status, answer
    return tenant_id, key, name, answer


async def opened(gateway: Gateway, key: str, name: str) -> dict[str, Any]:
    """The instance's status once it is open."""

    async def is_open() -> bool:
        _, body = await gateway.call("GET", f"/instance/{name}/status", key=key)
        return bool(body["state"] == "open")

    await eventually(is_open)
    _, body = await gateway.call("GET", f"/instance/{name}/status", key=key)
    return dict(body)


async def send(gateway: Gateway, key: str, path: str, **fields: Any) -> dict[str, Any]:
    status, answer = await gateway.call("POST", path, key=key, json={"lane": "urgent"} | fields)
    assert 202 == status, answer
    return dict(answer)


async def open_mail_instance(
    gateway: Gateway, relay: SmtpSimulator, hook: Receiver
) -> tuple[str, str, str]:
    """A tenant with an smtp instance on `relay`, once it is open: (tenant, key, name)."""
    tenant_id, key, name, _ = await mail_instance(gateway, relay, hook)
    await opened(gateway, key, name)
    return tenant_id, key, name


async def the_mail_to(relay: SmtpSimulator, address: str) -> EmailMessage:
    """The one mail the relay took for `address`, once it has."""

    async def arrived() -> bool:
        return bool(relay.to(address))

    await eventually(arrived)
    [mail] = relay.to(address)
    return mail.parsed()


def plain_and_html(mail: EmailMessage) -> tuple[str, str | None]:
    """The text of the mail's plain part and of its html part (None without one)."""
    text, html = mail.get_body(("plain",)), mail.get_body(("html",))
    assert text is not None
    return text.get_content().strip(), None if html is None else html.get_content().strip()


async def test_a_relay_login_opens_the_instance_with_email_lanes_and_channel(
    mail_gateway: Gateway, relay: SmtpSimulator, hook: Receiver
) -> None:
    tenant_id, key, name, _ = await mail_instance(mail_gateway, relay, hook)
    status = await opened(mail_gateway, key, name)
    whatsapp = await mail_gateway.instance(tenant_id, key, hook.url(), connect=False)
    _, emails = await mail_gateway.call("GET", "/instances?channel=email", key=key)
    _, phones = await mail_gateway.call("GET", "/instances?channel=whatsapp", key=key)
    bad, issues = await mail_gateway.call("GET", "/instances?channel=fax", key=key)
    assert ("email", None) == (status["channel"], status["lastError"])
    assert ([name], [whatsapp]) == (
        [i["instanceName"] for i in emails],
        [i["instanceName"] for i in phones],
    )
    assert (400, ["channel"]) == (bad, issues["issues"][0]["path"])
    assert 1 <= relay.logins and [] == relay.received  # logged in, sent nothing


async def test_email_lane_defaults_apply_where_the_tenant_set_none(
    mail_gateway: Gateway, relay: SmtpSimulator, hook: Receiver
) -> None:
    _, key, name, status, answer = await create(mail_gateway, hook, relay.config(), None)
    assert 201 == status, answer
    _, body = await mail_gateway.call("GET", f"/instance/{name}/status", key=key)
    lanes = body["lanes"]
    assert {"delayMs": [0, 200], "perHour": None, "perDay": None} == lanes["urgent"]
    assert {"delayMs": [500, 1000], "perHour": 1000, "perDay": None} == lanes["normal"]
    assert {"delayMs": [1000, 2000], "perHour": 500, "perDay": 2000} == lanes["bulk"]


async def test_a_wrong_password_leaves_the_instance_close_with_the_relay_answer(
    mail_gateway: Gateway, relay: SmtpSimulator, hook: Receiver
) -> None:
    _, key, name, answer = await mail_instance(mail_gateway, relay, hook, password="wrong-one")

    async def refused() -> bool:
        _, body = await mail_gateway.call("GET", f"/instance/{name}/status", key=key)
        return body["lastError"] is not None

    await eventually(refused)
    _, body = await mail_gateway.call("GET", f"/instance/{name}/status", key=key)
    assert ("close", "535") == (body["state"], body["lastError"]["code"])
    assert "Authentication credentials invalid" in body["lastError"]["message"]
    assert answer["status"] in ("close", "connecting")

    status, patched = await mail_gateway.call(
        "PATCH",
        f"/instance/{name}",
        key=key,
        json={"providerConfig": {"password": relay.password}},
    )
    assert 200 == status, patched
    assert None is (await opened(mail_gateway, key, name))["lastError"]


async def test_the_password_is_sealed_at_rest_and_never_shown(
    mail_gateway: Gateway, relay: SmtpSimulator, hook: Receiver
) -> None:
    _, key, name, _ = await mail_instance(mail_gateway, relay, hook)
    shown = await opened(mail_gateway, key, name)
    async with mail_gateway.mongo() as client:
        kept = await client.lanegate_test.instances.find_one({"_id": name})
    assert kept is not None and kept["providerConfig"]["password"].startswith("enc:")
    assert relay.password not in str(shown)


async def test_plain_smtp_is_refused_outside_development(
    mail_gateway: Gateway, relay: SmtpSimulator, hook: Receiver
) -> None:
    _, key, _, status, answer = await create(
        mail_gateway, hook, relay.config(security="none"), None
    )
    assert (400, ["providerConfig", "security"]) == (status, answer["issues"][0]["path"])
    _, listed = await mail_gateway.call("GET", "/instances", key=key)
    assert [] == listed


async def test_a_text_mail_arrives_with_spun_parts_and_headers(
    mail_gateway: Gateway, relay: SmtpSimulator, hook: Receiver
) -> None:
    _, key, name, _ = await mail_instance(
        mail_gateway,
        relay,
        hook,
        replyTo="help@shop.example",
        listUnsubscribe="mailto:unsubscribe@shop.example",
    )
    await opened(mail_gateway, key, name)
    answer = await send(
        mail_gateway,
        key,
        "/message/text",
        instanceName=name,
        to=" Ana@Customer.example ",
        subject="Order {42|42} {confirmed|confirmed}",
        text="{Hi|Hello} Ana, your order shipped.",
        html="<p>{Hi|Hello} <b>Ana</b></p>",
        contactName="Ana",
    )
    await wait_status(mail_gateway, "sent", answer["id"])
    [mail] = relay.to("Ana@customer.example")
    parsed = mail.parsed()
    text = parsed.get_body(("plain",))
    html = parsed.get_body(("html",))
    assert text is not None and html is not None
    assert "Order 42 confirmed" == parsed["Subject"]
    assert text.get_content().strip() in (
        "Hi Ana, your order shipped.",
        "Hello Ana, your order shipped.",
    )
    assert html.get_content().strip() in ("<p>Hi <b>Ana</b></p>", "<p>Hello <b>Ana</b></p>")
    assert f"<{answer['id']}@shop.example>" == parsed["Message-ID"]
    assert ("Shop Orders <orders@shop.example>", "help@shop.example") == (
        parsed["From"],
        parsed["Reply-To"],
    )
    assert "<mailto:unsubscribe@shop.example>" == parsed["List-Unsubscribe"]
    assert parsed["Date"] is not None
    [message] = await stored(mail_gateway, answer["id"])
    assert mail.queue_id == message["providerMessageId"]
    async with mail_gateway.mongo() as client:
        contact = await client.lanegate_test.contacts.find_one(
            {"identifier": "Ana@customer.example"}
        )
    assert contact is not None and "EMAIL" == contact["type"]


async def test_an_uploaded_file_arrives_as_a_mime_part_byte_for_byte(
    mail_gateway: Gateway, relay: SmtpSimulator, hook: Receiver
) -> None:
    _, key, name, _ = await mail_instance(mail_gateway, relay, hook, defaultSubject="Your invoice")
    await opened(mail_gateway, key, name)
    uploaded = os.urandom(200_001)
    form = aiohttp.FormData()
    for field, value in {"instanceName": name, "to": CUSTOMER, "lane": "urgent"}.items():
        form.add_field(field, value)
    form.add_field("caption", "Invoice attached")
    form.add_field(
        "attachments", uploaded, filename="invoice.bin", content_type="application/octet-stream"
    )
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            mail_gateway.api + "/message/attachment", data=form, headers={"apikey": key}
        ) as r,
    ):
        assert 202 == r.status, await r.text()
        answer = await r.json()
    await wait_status(mail_gateway, "sent", answer["id"])
    [mail] = relay.to(CUSTOMER)
    parsed = mail.parsed()
    [part] = list(parsed.iter_attachments())
    assert ("invoice.bin", uploaded) == (part.get_filename(), part.get_content())
    assert "Your invoice" == parsed["Subject"]
    body = parsed.get_body(("plain",))
    assert body is not None and "Invoice attached" == body.get_content().strip()


async def test_a_document_by_url_is_attached(
    mail_gateway: Gateway, relay: SmtpSimulator, hook: Receiver
) -> None:
    served = b"%PDF-1.4\n" + os.urandom(5000) + b"\n%%EOF\n"

    async def serve(request: web.Request) -> web.Response:
        return web.Response(body=served, content_type="application/pdf")

    app = web.Application()
    app.router.add_get("/receipt.pdf", serve)
    files = ThreadedServer(app)
    files.start()
    try:
        _, key, name, _ = await mail_instance(mail_gateway, relay, hook)
        await opened(mail_gateway, key, name)
        answer = await send(
            mail_gateway,
            key,
            "/message/document",
            instanceName=name,
            to=CUSTOMER,
            documentUrl=files.url + "/receipt.pdf",
            fileName="receipt.pdf",
            caption="Your receipt",
        )
        await wait_status(mail_gateway, "sent", answer["id"])
    finally:
        files.stop()
    [part] = list(relay.to(CUSTOMER)[0].parsed().iter_attachments())
    assert ("receipt.pdf", "application/pdf", served) == (
        part.get_filename(),
        part.get_content_type(),
        part.get_content(),
    )


async def test_a_550_fails_that_message_only(
    mail_gateway: Gateway, relay: SmtpSimulator, hook: Receiver
) -> None:
    _, key, name = await open_mail_instance(mail_gateway, relay, hook)
    relay.rejected.add("gone@customer.example")
    status, answer = await mail_gateway.call(
        "POST",
        "/message/bulk",
        key=key,
        json={
            "messages": [
                {
                    "instanceName": name,
                    "to": "gone@customer.example",
                    "text": "a",
                    "lane": "urgent",
                },
                {"instanceName": name, "to": CUSTOMER, "text": "b", "lane": "urgent"},
            ]
        },
    )
    assert 202 == status, answer
    gone, kept = (m["id"] for m in answer["messages"])
    await wait_status(mail_gateway, "failed", gone)
    await wait_status(mail_gateway, "sent", kept)
    [failed] = await stored(mail_gateway, gone)
    assert ("550", 1) == (failed["error"]["code"], failed["attempts"])
    assert "Recipient address rejected" in failed["error"]["message"]
    assert 1 == len(relay.to(CUSTOMER))


async def test_a_421_is_retried_and_the_mail_sent_once(
    mail_gateway: Gateway, relay: SmtpSimulator, hook: Receiver
) -> None:
    _, key, name = await open_mail_instance(mail_gateway, relay, hook)
    relay.put_off[CUSTOMER] = 1
    answer = await send(
        mail_gateway, key, "/message/text", instanceName=name, to=CUSTOMER, text="hi"
    )
    await wait_status(mail_gateway, "sent", answer["id"])
    [message] = await stored(mail_gateway, answer["id"])
    assert (1, 0, 2) == (len(relay.to(CUSTOMER)), relay.put_off[CUSTOMER], message["attempts"])


async def test_a_refused_connection_is_retried_then_fails(
    mail_gateway: Gateway, relay: SmtpSimulator, hook: Receiver
) -> None:
    _, key, name = await open_mail_instance(mail_gateway, relay, hook)
    relay.stop()
    answer = await send(
        mail_gateway, key, "/message/text", instanceName=name, to=CUSTOMER, text="hi"
    )
    await wait_status(mail_gateway, "failed", answer["id"])
    [message] = await stored(mail_gateway, answer["id"])
    assert ("connection_failed", 3) == (message["error"]["code"], message["attempts"])


async def test_to_is_read_by_the_instance_channel(
    mail_gateway: Gateway, relay: SmtpSimulator, hook: Receiver
) -> None:
    tenant_id, key, name, _ = await mail_instance(mail_gateway, relay, hook)
    whatsapp = await mail_gateway.instance(tenant_id, key, hook.url(), connect=False)

    async def refused(instance: str, to: str, **fields: Any) -> tuple[int, str]:
        status, answer = await mail_gateway.call(
            "POST", "/message/text", key=key, json={"instanceName": instance, "to": to} | fields
        )
        issues = answer.get("issues") or [{"message": answer.get("message", "")}]
        return status, str(issues[0]["message"]).partition(":")[0]

    assert (400, "invalid_phone_number") == await refused(whatsapp, CUSTOMER, text="hi")
    assert (400, "invalid_email") == await refused(name, PHONE, text="hi")
    assert (400, "invalid_email") == await refused(name, "ana@", text="hi")
    status, _ = await mail_gateway.call(
        "POST",
        "/message/text",
        key=key,
        json={"instanceName": whatsapp, "to": PHONE, "text": "hi", "subject": "x"},
    )
    assert 422 == status


@pytest.mark.parametrize(
    ("path", "fields"),
    [
        ("/message/location", {"latitude": 1.0, "longitude": 2.0}),
        ("/message/buttons", {"body": "b", "buttons": [{"id": "1", "title": "Yes"}]}),
        ("/message/audio", {"audioUrl": "https://files.example/a.ogg"}),
    ],
)
async def test_whatsapp_only_types_on_an_email_instance_are_422(
    mail_gateway: Gateway, relay: SmtpSimulator, hook: Receiver, path: str, fields: dict[str, Any]
) -> None:
    _, key, name, _ = await mail_instance(mail_gateway, relay, hook)
    status, answer = await mail_gateway.call(
        "POST", path, key=key, json={"instanceName": name, "to": CUSTOMER} | fields
    )
    assert 422 == status, answer


async def test_a_routed_send_picks_the_instance_whose_channel_fits_to(
    mail_gateway: Gateway, relay: SmtpSimulator, hook: Receiver
) -> None:
    tenant_id, key, name, _ = await mail_instance(mail_gateway, relay, hook)
    whatsapp = await mail_gateway.instance(
        tenant_id, key, hook.url(), name=f"{tenant_id}__support__wa{uuid.uuid4().hex[:4]}"
    )
    picked = {}
    for to in (CUSTOMER, PHONE):
        status, answer = await mail_gateway.call(
            "POST",
            "/message/send",
            key=key,
            json={
                "tenantId": tenant_id,
                "clientId": "support",
                "type": "text",
                "to": to,
                "text": "x",
            },
        )
        assert 202 == status, answer
        picked[to] = answer["instanceName"]
    assert {CUSTOMER: name, PHONE: whatsapp} == picked
    other_tenant, other_key = await mail_gateway.tenant()
    await mail_gateway.instance(other_tenant, other_key, hook.url(), connect=False)
    status, _ = await mail_gateway.call(
        "POST",
        "/message/send",
        key=other_key,
        json={
            "tenantId": other_tenant,
            "clientId": "support",
            "type": "text",
            "to": CUSTOMER,
            "text": "x",
        },
    )
    assert 404 == status


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield launched
        await launched.close()


async def test_the_console_shows_the_channel_and_an_emails_subject_and_parts(
    mail_gateway: Gateway, relay: SmtpSimulator, hook: Receiver, browser: Browser
) -> None:
    _, key, name = await open_mail_instance(mail_gateway, relay, hook)
    answer = await send(
        mail_gateway,
        key,
        "/message/document",
        instanceName=name,
        to=CUSTOMER,
        documentUrl="https://files.example/receipt.pdf",
        fileName="receipt.pdf",
        caption="Your receipt",
    )
    text = await send(
        mail_gateway,
        key,
        "/message/text",
        instanceName=name,
        to=CUSTOMER,
        subject="Order {42|#42}",
        text="Thanks",
        html="<b>Thanks</b>",
    )
    page = await browser.new_page(viewport={"width": 1280, "height": 900})
    await page.goto(mail_gateway.api + "/console")
    await page.fill("input[name=apikey]", key)
    await page.click("#sign-in button")
    await expect(page.locator(f'tr[data-instance="{name}"]')).to_contain_text("smtp (email)")
    await page.goto(f"{mail_gateway.api}/console#/message/{text['id']}")
    await expect(page.locator("#email-subject")).to_have_text("Order {42|#42}")
    await expect(page.locator("#email-parts")).to_have_text("text/plain, text/html")
    await page.goto(f"{mail_gateway.api}/console#/message/{answer['id']}")
    await expect(page.locator("#email-parts")).to_have_text("text/plain, attachment receipt.pdf")


async def test_a_sendsync_send_to_an_email_connector_goes_out_as_a_mail(
    mail_gateway: Gateway, relay: SmtpSimulator, hook: Receiver
) -> None:
    _, key, name = await open_mail_instance(mail_gateway, relay, hook)
    headers = {"X-API-Key": key}
    _, connectors = await mail_gateway.call("GET", "/api/connectors", headers=headers)
    assert [(name, "EMAIL")] == [(c["id"], c["type"]) for c in connectors]
    status, queued = await mail_gateway.call(
        "POST",
        "/api/queue/send",
        headers=headers,
        json={"connectorId": name, "to": CUSTOMER, "message": "Your order shipped."},
    )
    assert (201, "PENDING", CUSTOMER) == (status, queued["status"], queued["to"]), queued
    await wait_status(mail_gateway, "sent", queued["id"])
    [mail] = relay.to(CUSTOMER)
    body = mail.parsed().get_body(("plain",))
    assert body is not None and "Your order shipped." == body.get_content().strip()
    status, refused = await mail_gateway.call(
        "POST",
        "/api/queue/send",
        headers=headers,
        json={"connectorId": name, "to": PHONE, "message": "Not an address"},
    )
    assert (400, "Validation error") == (status, refused["error"]), refused


async def test_contact_variables_fill_subject_text_and_html_with_html_escaped(
    mail_gateway: Gateway, relay: SmtpSimulator, hook: Receiver
) -> None:
    _, key, name = await open_mail_instance(mail_gateway, relay, hook)
    bea = {
        "identifier": "Bea@Customer.EXAMPLE",
        "name": "Bea <b>&</b>",
        "fields": {"order": "A-17"},
    }
    status, contact = await mail_gateway.call("POST", "/contacts", key=key, json=bea)
    assert (201, "Bea@customer.example", "EMAIL") == (
        status,
        contact["identifier"],
        contact["type"],
    )
    answer = await send(
        mail_gateway,
        key,
        "/message/text",
        instanceName=name,
        to="Bea@customer.example",
        subject="{Order|Order} {{fields.order}} for {{name}}",
        text="Hi {{name|there}}, we write to {{phone}} about {{fields.order}}.",
        html="<p>{{name}} / {{fields.note|no note}}</p>",
    )
    parsed = await the_mail_to(relay, "Bea@customer.example")
    assert "Order A-17 for Bea <b>&</b>" == parsed["Subject"]
    assert (
        "Hi Bea <b>&</b>, we write to Bea@customer.example about A-17.",
        "<p>Bea &lt;b&gt;&amp;&lt;/b&gt; / no note</p>",
    ) == plain_and_html(parsed)
    hal = {"identifier": "hal@customer.example", "name": "Hal\r\nBcc: eve@spy.example"}
    assert 201 == (await mail_gateway.call("POST", "/contacts", key=key, json=hal))[0]
    await send(
        mail_gateway,
        key,
        "/message/text",
        instanceName=name,
        to="hal@customer.example",
        subject="For {{name}}",
        text="Hi",
    )
    headed = await the_mail_to(relay, "hal@customer.example")
    assert ("For Hal Bcc: eve@spy.example", None) == (headed["Subject"], headed["Bcc"])
    assert [] == relay.to("eve@spy.example")
    status, conversation = await mail_gateway.call("GET", "/contacts/bea@@x/messages", key=key)
    assert (400, ["phone"]) == (status, conversation["issues"][0]["path"])
    status, conversation = await mail_gateway.call(
        "GET", "/contacts/Bea@CUSTOMER.example/messages", key=key
    )
    assert (200, [answer["id"]]) == (status, [m["id"] for m in conversation["messages"]])

    before = await mail_gateway.call("GET", "/messages?limit=100", key=key)
    for field in ("subject", "html"):
        refused = {"instanceName": name, "to": "Bea@customer.example", "text": "Hi"}
        status, body = await mail_gateway.call(
            "POST", "/message/text", key=key, json=refused | {field: "{{fields.plan}}"}
        )
        assert (400, [field]) == (status, body["issues"][0]["path"]), body
        assert "{{fields.plan}}" in body["issues"][0]["message"]
    assert before == await mail_gateway.call("GET", "/messages?limit=100", key=key)


async def test_email_contacts_are_saved_found_changed_and_paged_by_address(
    mail_gateway: Gateway,
) -> None:
    _, key = await mail_gateway.tenant()
    carla = {"identifier": " Carla@Shop.EXAMPLE ", "name": "Carla"}
    status, saved = await mail_gateway.call("POST", "/contacts", key=key, json=carla)
    assert (201, "Carla@shop.example", "EMAIL") == (status, saved["identifier"], saved["type"])
    status, found = await mail_gateway.call("GET", "/contacts/Carla@SHOP.example", key=key)
    assert (200, saved["id"]) == (status, found["id"])
    status, changed = await mail_gateway.call(
        "PATCH", "/contacts/Carla@shop.example", key=key, json={"fields": {"plan": "pro"}}
    )
    assert (200, {"plan": "pro"}) == (status, changed["fields"])
    batch = [{"identifier": "dan@shop.example", "type": "EMAIL"}, {"identifier": PHONE}]
    status, saved_batch = await mail_gateway.call(
        "POST", "/contacts/batch", key=key, json={"contacts": batch}
    )
    assert 200 == status, saved_batch
    assert [("dan@shop.example", "EMAIL"), (PHONE, "WHATSAPP")] == [
        (c["identifier"], c["type"]) for c in saved_batch["contacts"]
    ]

    seen: list[str] = []
    cursor: str | None = None
    for _ in range(4):
        path = "/contacts?limit=1" + (f"&cursor={cursor}" if cursor else "")
        status, page = await mail_gateway.call("GET", path, key=key)
        assert 200 == status, page
        seen += [c["identifier"] for c in page["contacts"]]
        cursor = page["pagination"]["next"]
        if cursor is None:
            break
    assert sorted(seen) == [PHONE, "Carla@shop.example", "dan@shop.example"]

    for bad in (
        {"identifier": "erin@@shop"},
        {"identifier": "erin@shop.example", "type": "WHATSAPP"},
    ):
        status, body = await mail_gateway.call("POST", "/contacts", key=key, json=bad)
        assert 400 == status, body
    status, body = await mail_gateway.call("POST", "/contacts", key=key, json={"identifier": "a@b"})
    assert (400, ["identifier"]) == (status, body["issues"][0]["path"])
    assert body["issues"][0]["message"].startswith("invalid_email")
    status, body = await mail_gateway.call("GET", "/contacts/erin@@shop", key=key)
    assert (400, ["id"]) == (status, body["issues"][0]["path"])
    status, _ = await mail_gateway.call("GET", "/contacts/nobody@shop.example", key=key)
    assert 404 == status
    gone = {"identifiers": ["dan@SHOP.example"]}
    status, deleted = await mail_gateway.call("POST", "/contacts/batch-delete", key=key, json=gone)
    assert (200, 1) == (status, deleted["deleted"])
    _, listed = await mail_gateway.call("GET", "/contacts?limit=100", key=key)
    assert [PHONE, "Carla@shop.example"] == [c["identifier"] for c in listed["contacts"]]


async def test_an_otp_by_email_arrives_as_a_mail_whose_code_verifies_and_shows_nowhere_else(
    mail_gateway: Gateway, relay: SmtpSimulator, hook: Receiver
) -> None:
    _, key, name = await open_mail_instance(mail_gateway, relay, hook)
    body = {
        "instanceName": name,
        "to": " Fay@Customer.EXAMPLE ",
        "subject": "{{code}} is your Shop code",
        "text": "Enter {{code}} to sign in.",
        "length": 10,
    }
    status, sent = await mail_gateway.call("POST", "/otp/send", key=key, json=body)
    assert (201, "Fay@customer.example") == (status, sent["to"]), sent
    parsed = await the_mail_to(relay, "Fay@customer.example")
    found = re.fullmatch(r"(\d{10}) is your Shop code", str(parsed["Subject"]))
    assert found is not None, parsed["Subject"]
    code = found[1]
    assert (f"Enter {code} to sign in.", None) == plain_and_html(parsed)

    await wait_status(mail_gateway, "sent", sent["messageId"])
    status, shown = await mail_gateway.call("GET", f"/message/{sent['messageId']}", key=key)
    assert 200 == status and code not in json.dumps(shown)
    assert "****** is your Shop code" in json.dumps(shown)
    verify = {"instanceName": name, "to": "Fay@customer.EXAMPLE", "code": code}
    status, answer = await mail_gateway.call("POST", "/otp/verify", key=key, json=verify)
    assert (200, "verified") == (status, answer["status"]), answer
    await hook.wait_for(event_named("otp.verified", id=sent["id"]))

    assert [] == [r.path for r in hook.requests if holds_code(code, r.body.decode())]
    async with mail_gateway.mongo() as client:
        db = client.lanegate_test
        for collection in await db.list_collection_names():
            async for document in db[collection].find({}):
                assert not holds_code(code, repr(document)), collection
    assert [] == logs_holding_code(code, mail_gateway.namespace)


async def test_an_otp_mail_has_default_parts_a_resend_mails_a_new_code_subject_is_email_only(
    mail_gateway: Gateway, relay: SmtpSimulator, hook: Receiver
) -> None:
    tenant_id, key, name = await open_mail_instance(mail_gateway, relay, hook)
    status, sent = await mail_gateway.call(
        "POST", "/otp/send", key=key, json={"instanceName": name, "to": "gus@customer.example"}
    )
    assert 201 == status, sent
    await the_mail_to(relay, "gus@customer.example")
    # 30 seconds pass: the first send is moved back instead of waiting for them.
    async with mail_gateway.mongo() as client:
        codes = client.lanegate_test.otp_codes
        record = await codes.find_one({"_id": sent["id"]})
        assert record is not None
        earlier = [record["sends"][0] - timedelta(seconds=31)]
        await codes.update_one({"_id": sent["id"]}, {"$set": {"sends": earlier}})
    status, resent = await mail_gateway.call("POST", f"/otp/{sent['id']}/resend", key=key)
    assert 201 == status, resent

    async def both_arrived() -> bool:
        return 2 == len(relay.to("gus@customer.example"))

    await eventually(both_arrived)
    codes_mailed = []
    for mail in relay.to("gus@customer.example"):
        parsed = mail.parsed()
        assert "Your verification code" == parsed["Subject"]
        text, _ = plain_and_html(parsed)
        found = re.fullmatch(
            r"Your verification code is (\d{6})\. Do not share it with anyone\.", text
        )
        assert found is not None, text
        codes_mailed.append(found[1])
    verify = {"id": sent["id"], "code": codes_mailed[1]}
    status, answer = await mail_gateway.call("POST", "/otp/verify", key=key, json=verify)
    assert (200, True) == (status, answer["valid"])

    two_lines = {"instanceName": name, "to": "gus@customer.example", "subject": "A\r\nBcc: x@y.z"}
    status, refused = await mail_gateway.call("POST", "/otp/send", key=key, json=two_lines)
    assert (400, ["subject"]) == (status, refused["issues"][0]["path"])
    whatsapp = await mail_gateway.instance(tenant_id, key, hook.url(), connect=False)
    body = {"instanceName": whatsapp, "to": PHONE, "subject": "Code {{code}}"}
    status, refused = await mail_gateway.call("POST", "/otp/send", key=key, json=body)
    assert (400, ["subject"]) == (status, refused["issues"][0]["path"])
    status, refused = await mail_gateway.call(
        "POST", "/otp/send", key=key, json={"instanceName": name, "to": PHONE}
    )
    assert (400, ["to"]) == (status, refused["issues"][0]["path"])
    assert refused["issues"][0]["message"].startswith("invalid_email")


async def test_a_group_send_reaches_the_members_of_the_instances_channel(
    mail_gateway: Gateway, relay: SmtpSimulator, hook: Receiver
) -> None:
    tenant_id, key, name = await open_mail_instance(mail_gateway, relay, hook)
    members = [
        {"identifier": "ida@customer.example", "name": "Ida"},
        {"identifier": PHONE, "name": "Jon"},
    ]
    status, saved = await mail_gateway.call(
        "POST", "/contacts/batch", key=key, json={"contacts": members}
    )
    assert 200 == status, saved
    ida, jon = (c["id"] for c in saved["contacts"])
    _, group = await mail_gateway.call("POST", "/groups", key=key, json={"name": "all"})
    path = f"/groups/{group['id']}"
    await mail_gateway.call("POST", f"{path}/contacts", key=key, json={"contactIds": [ida, jon]})

    mail = {
        "instanceName": name,
        "text": "Hi {{name}}",
        "subject": "For {{name}}",
        "lane": "urgent",
    }
    status, sent = await mail_gateway.call("POST", f"{path}/send", key=key, json=mail)
    assert (202, 1, [{"contactId": jon, "reason": "other_channel"}]) == (
        status,
        sent["accepted"],
        sent["skipped"],
    ), sent
    parsed = await the_mail_to(relay, "ida@customer.example")
    assert ("For Ida", ("Hi Ida", None)) == (parsed["Subject"], plain_and_html(parsed))

    whatsapp = await mail_gateway.instance(tenant_id, key, hook.url(), connect=False)
    status, refused = await mail_gateway.call(
        "POST", f"{path}/send", key=key, json=mail | {"instanceName": whatsapp}
    )
    assert 422 == status, refused
    del mail["subject"]
    status, sent = await mail_gateway.call(
        "POST", f"{path}/send", key=key, json=mail | {"instanceName": whatsapp}
    )
    assert (202, 1, [{"contactId": ida, "reason": "other_channel"}]) == (
        status,
        sent["accepted"],
        sent["skipped"],
    ), sent


async def test_an_instances_mails_share_one_relay_session_that_is_replaced_when_it_drops(
    mail_gateway: Gateway, relay: SmtpSimulator, hook: Receiver
) -> None:
    _, key, name = await open_mail_instance(mail_gateway, relay, hook)
    at_start = relay.logins  # the instance's start logged in once to check the password

    for n in range(3):
        answer = await send(
            mail_gateway, key, "/message/text", instanceName=name, to=CUSTOMER, text=f"#{n}"
        )
        await wait_status(mail_gateway, "sent", answer["id"])
    assert (3, at_start + 1) == (len(relay.to(CUSTOMER)), relay.logins)

    # A changed config (the sender's name here) is not sent on the session of the old one.
    status, patched = await mail_gateway.call(
        "PATCH", f"/instance/{name}", key=key, json={"providerConfig": {"fromName": "Shop"}}
    )
    assert 200 == status, patched
    await opened(mail_gateway, key, name)
    checked = relay.logins  # the PATCH logged in once to check the new config
    answer = await send(
        mail_gateway, key, "/message/text", instanceName=name, to=CUSTOMER, text="renamed"
    )
    await wait_status(mail_gateway, "sent", answer["id"])
    assert (4, checked + 1) == (len(relay.to(CUSTOMER)), relay.logins)
    assert "Shop <orders@shop.example>" == relay.to(CUSTOMER)[-1].parsed()["From"]
    opened_before_restart = relay.logins

    # The relay restarts: the kept session is dead, and the next mail opens a new one.
    relay.stop()
    relay.start()
    answer = await send(
        mail_gateway, key, "/message/text", instanceName=name, to=CUSTOMER, text="after"
    )
    await wait_status(mail_gateway, "sent", answer["id"])
    [message] = await stored(mail_gateway, answer["id"])
    assert (5, opened_before_restart + 1, 1) == (
        len(relay.to(CUSTOMER)),
        relay.logins,
        message["attempts"],
    )
