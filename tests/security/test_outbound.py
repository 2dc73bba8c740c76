"""The guarded outbound client: which addresses it refuses, redirects, answer caps.

The address classifier is tested over every range a tenant could aim the
gateway at; the client itself against real servers on 127.0.0.1.
"""

import asyncio
import ipaddress
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from devtools.stack import free_port
from lanegate.outbound import (
    MAX_ANSWER_BYTES,
    AnswerTooLarge,
    GuardedResolver,
    Outbound,
    TargetRefused,
    check_url,
    literal_refusal,
    parse_host,
    refusal,
    without_query,
)
from tests.conftest import whole_stack
from tests.support.gateway import FAST_LANES, Gateway, eventually
from tests.support.hostile import HostileServer
from tests.support.receiver import Receiver, event_named

REFUSED = [
    "127.0.0.1",
    "127.255.255.254",
    "0.0.0.0",
    "0.1.2.3",
    "10.0.0.5",
    "172.16.0.1",
    "192.168.1.1",
    "169.254.169.254",
    "100.64.0.1",
    "100.127.255.254",
    "224.0.0.1",
    "239.255.255.250",
    "240.0.0.1",
    "255.255.255.255",
    "192.0.0.8",
    "198.18.0.1",
    "::",
    "::1",
    "::127.0.0.1",
    "::8.8.8.8",
    "::ffff:127.0.0.1",
    "::ffff:10.0.0.1",
    "::ffff:169.254.169.254",
    "64:ff9b::7f00:1",
    "64:ff9b::808:808",
    "64:ff9b:1::1",
    "2002:7f00:1::1",
    "fe80::1",
    "fc00::1",
    "fd12:3456::1",
    "fec0::1",
    "feff:ffff::1",
    "ff02::1",
    "2001:db8::1",
]


@pytest.mark.parametrize("address", REFUSED)
def test_every_non_public_range_is_refused(address: str) -> None:
    assert refusal(ipaddress.ip_address(address)) is not None


@pytest.mark.parametrize(
    "address", ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111", "::ffff:8.8.8.8"]
)
def test_public_unicast_addresses_pass(address: str) -> None:
    assert refusal(ipaddress.ip_address(address)) is None


def test_the_reasons_say_which_range() -> None:
    assert "loopback" == refusal(ipaddress.ip_address("127.0.0.1"))
    assert "link-local" == refusal(ipaddress.ip_address("169.254.169.254"))
    assert "carrier-grade" in str(refusal(ipaddress.ip_address("100.64.0.1")))
    assert "NAT64" in str(refusal(ipaddress.ip_address("64:ff9b::7f00:1")))
    assert "IPv4-mapped loopback" == refusal(ipaddress.ip_address("::ffff:127.0.0.1"))


@pytest.mark.parametrize(
    ("host", "address"),
    [
        ("2130706433", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("0x7f.0.0.1", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("0", "0.0.0.0"),
        ("[::]", "::"),
        ("[::ffff:127.0.0.1]", "::ffff:127.0.0.1"),
        ("[fe80::1%eth0]", "fe80::1"),
        ("127.0.0.1.", "127.0.0.1"),
        ("2130706433.", "127.0.0.1"),
    ],
)
def test_legacy_and_bracketed_literals_are_read_as_addresses(host: str, address: str) -> None:
    assert ipaddress.ip_address(address) == parse_host(host)


def test_host_names_are_not_literals() -> None:
    assert parse_host("graph.facebook.com") is None
    assert parse_host("cafe.example") is None


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.5/hook",
        "http://[::1]:8080/hook",
        "http://[::ffff:127.0.0.1]/",
        "http://[::127.0.0.1]/",
        "http://[64:ff9b::7f00:1]/",
        "http://[fe80::1]/hook",
        "http://0.0.0.0/hook",
        "http://[::]/",
        "http://100.64.0.1/",
        "http://2130706433/",
        "http://0177.0.0.1/",
        "http://127.0.0.1./",
        "http://[fec0::1]/",
    ],
)
def test_private_literals_in_urls_are_named(url: str) -> None:
    assert literal_refusal(url) is not None


@pytest.mark.parametrize(
    "url", ["https://graph.facebook.com", "https://93.184.216.34/hook", "http://localhost:3000"]
)
def test_public_literals_and_names_are_left_to_call_time(url: str) -> None:
    assert literal_refusal(url) is None


@pytest.mark.parametrize(
    "url", ["ftp://93.184.216.34/hook", "file:///etc/passwd", "http://user:pw@93.184.216.34/"]
)
def test_other_schemes_and_credentials_are_refused(url: str) -> None:
    with pytest.raises(TargetRefused):
        check_url(url)


def test_a_url_is_shown_without_its_query_string() -> None:
    shown = without_query("https://files.example/a.pdf?X-Amz-Signature=abc&token=s3cret#frag")
    assert "https://files.example/a.pdf" == shown


async def test_a_name_resolving_to_loopback_is_refused_after_resolution() -> None:
    resolver = GuardedResolver()
    try:
        with pytest.raises(TargetRefused):
            await resolver.resolve("localhost", 80)
    finally:
        await resolver.close()


@pytest.fixture
async def servers() -> AsyncIterator[tuple[str, str, list[str]]]:
    """Two servers on 127.0.0.1: one redirecting to the other, which records every hit, and
    one answering an endless body."""
    hits: list[str] = []
    second_port = free_port()

    async def landing(request: web.Request) -> web.Response:
        hits.append(request.path)
        return web.json_response({"secret": "internal"})

    async def redirect(request: web.Request) -> web.Response:
        raise web.HTTPFound(f"http://127.0.0.1:{second_port}/internal?token=abc")

    async def endless(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        chunk = b"x" * 65536
        while True:
            await response.write(chunk)

    first = web.Application()
    first.router.add_get("/redirect", redirect)
    first.router.add_get("/endless", endless)
    second = web.Application()
    second.router.add_route("*", "/{tail:.*}", landing)
    runners = [web.AppRunner(first, access_log=None), web.AppRunner(second, access_log=None)]
    first_port = free_port()
    for runner, port in zip(runners, (first_port, second_port), strict=True):
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
    yield f"http://127.0.0.1:{first_port}", f"http://localhost:{second_port}", hits
    for runner in runners:
        await runner.cleanup()


async def test_the_guard_refuses_a_loopback_literal_and_a_name_at_connect_time(
    servers: tuple[str, str, list[str]],
) -> None:
    first, by_name, hits = servers
    client = Outbound(allow_private=False, timeout=5)
    try:
        with pytest.raises(TargetRefused, match="loopback"):
            await client.request("GET", first + "/redirect")
        with pytest.raises(TargetRefused, match="localhost resolves to"):
            await client.request("GET", by_name + "/internal")
    finally:
        await client.close()
    assert [] == hits


async def test_a_redirect_is_answered_back_never_followed(
    servers: tuple[str, str, list[str]],
) -> None:
    first, _, hits = servers
    client = Outbound(allow_private=True, timeout=5)
    try:
        answer = await client.request("GET", first + "/redirect")
        with pytest.raises(TargetRefused, match="redirects are not followed") as refused:
            answer.refuse_redirect("WAHA")
    finally:
        await client.close()
    assert 302 == answer.status
    assert "token=abc" not in str(refused.value)
    await asyncio.sleep(0.2)
    assert [] == hits


async def test_an_endless_answer_is_cut_at_the_cap(servers: tuple[str, str, list[str]]) -> None:
    first, _, _ = servers
    client = Outbound(allow_private=True, timeout=30)
    started = time.monotonic()
    try:
        with pytest.raises(AnswerTooLarge, match=str(MAX_ANSWER_BYTES)):
            await client.request("GET", first + "/endless")
    finally:
        await client.close()
    assert time.monotonic() - started < 10


async def test_the_client_has_a_timeout(servers: tuple[str, str, list[str]]) -> None:
    first, _, _ = servers
    client = Outbound(allow_private=True, timeout=30, max_answer_bytes=2**40)
    try:
        with pytest.raises(TimeoutError):
            await client.request("GET", first + "/endless", limit=aiohttp.ClientTimeout(total=0.5))
    finally:
        await client.close()


# End to end: the guard in every service that calls out, with the allowance off (a stack of
# the test module's own) and on (the shared stack, for redirects and answer caps).

HOOK_SECRET = "s3cret-s3cret-s3cret"


@pytest.fixture(scope="module")
def guarded() -> Iterator[Gateway]:
    """The whole gateway with private targets refused, as in production."""
    with whole_stack(LANEGATE_ALLOW_PRIVATE_TARGETS="false") as running:
        yield running


async def _create(gateway: Gateway, key: str, name: str, **fields: Any) -> tuple[int, Any]:
    body = {"instanceName": name, "webhookSecret": HOOK_SECRET, "lanes": FAST_LANES} | fields
    return await gateway.call("POST", "/instance/create", key=key, json=body)


def _waha_config(base_url: str) -> dict[str, str]:
    return {"baseUrl": base_url, "apiKey": "waha-key", "session": "default"}


async def _waha(gateway: Gateway, key: str, name: str, base_url: str, *, webhook: str) -> None:
    """Create a waha instance on `base_url` (the address is checked at call time)."""
    status, body = await _create(
        gateway,
        key,
        name,
        webhookUrl=webhook,
        provider="waha",
        providerConfig=_waha_config(base_url),
    )
    assert 201 == status, body


def _cloud_config(base_url: str) -> dict[str, str]:
    return {
        "phoneNumberId": "1234567",
        "wabaId": "7654321",
        "accessToken": "token",
        "appSecret": "app-secret",
        "verifyToken": "verify-me-please",
        "baseUrl": base_url,
    }


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("fields", "path"),
    [
        ({"provider": "waha", "providerConfig": _waha_config("http://127.0.0.1:3000")}, "baseUrl"),
        ({"provider": "waha", "providerConfig": _waha_config("http://[::1]:3000")}, "baseUrl"),
        (
            {"provider": "cloud_api", "providerConfig": _cloud_config("http://169.254.169.254")},
            "baseUrl",
        ),
        (
            {"provider": "cloud_api", "providerConfig": _cloud_config("http://[::ffff:10.0.0.1]")},
            "baseUrl",
        ),
        ({"webhookUrl": "http://10.1.2.3/hook"}, "webhookUrl"),
        ({"webhookUrl": "http://2130706433/hook"}, "webhookUrl"),
    ],
)
async def test_a_private_literal_is_refused_at_create_naming_the_field(
    guarded: Gateway, fields: dict[str, Any], path: str
) -> None:
    tenant, key = await guarded.tenant()
    name = f"{tenant}__support__main"
    fields = {"webhookUrl": "https://hooks.example/lanegate"} | fields

    status, body = await _create(guarded, key, name, **fields)

    expected = ["providerConfig", "baseUrl"] if path == "baseUrl" else [path]
    assert (422, "TARGET_NOT_ALLOWED") == (status, body["code"]), body
    assert [expected] == [issue["path"] for issue in body["issues"]]
    assert "public address" in body["issues"][0]["message"]
    status, _ = await guarded.call("GET", f"/instance/{name}/status", key=key)
    assert 404 == status


@pytest.mark.e2e
async def test_a_private_literal_is_refused_at_patch_and_in_sends(
    guarded: Gateway,
) -> None:
    tenant, key = await guarded.tenant()
    name = f"{tenant}__support__main"
    status, body = await _create(guarded, key, name, webhookUrl="https://hooks.example/a")
    assert 201 == status, body

    status, body = await guarded.call(
        "PATCH", f"/instance/{name}", key=key, json={"webhookUrl": "http://[::]:8080/hook"}
    )
    assert (422, [["webhookUrl"]]) == (status, [i["path"] for i in body["issues"]])
    status, body = await guarded.call(
        "POST",
        "/message/attachment",
        key=key,
        json={"instanceName": name, "to": "5491112345678", "attachmentUrl": "http://0.0.0.0/a"},
    )
    assert (422, [["attachmentUrl"]]) == (status, [i["path"] for i in body["issues"]])
    send = {"instanceName": name, "to": "5491112345678", "text": "hi"}
    status, body = await guarded.call(
        "POST", "/message/text", key=key, json=send | {"webhookUrl": "http://127.0.0.1/h"}
    )
    assert (422, [["webhookUrl"]]) == (status, [i["path"] for i in body["issues"]])
    status, body = await guarded.call(
        "POST",
        "/message/bulk",
        key=key,
        json={"messages": [send, send | {"webhookUrl": "http://[fd00::1]/h"}]},
    )
    assert (422, [["messages", 1, "webhookUrl"]]) == (status, [i["path"] for i in body["issues"]])
    async with guarded.mongo() as client:
        assert 0 == await client.lanegate_test.messages.count_documents({"tenantId": tenant})
    _, [shown] = await guarded.call("GET", "/instances", key=key)
    assert "https://hooks.example/a" == shown["webhookUrl"]


@pytest.mark.e2e
@pytest.mark.parametrize("provider", ["waha", "cloud_api"])
async def test_a_private_literal_base_url_is_refused_at_patch_naming_the_field(
    guarded: Gateway, provider: str
) -> None:
    tenant, key = await guarded.tenant()
    name = f"{tenant}__support__{provider.replace('_', '')}"
    public = "https://provider.example"
    config = _waha_config(public) if provider == "waha" else _cloud_config(public)
    hook = "https://hooks.example/a"
    status, body = await _create(
        guarded, key, name, webhookUrl=hook, provider=provider, providerConfig=config
    )
    assert 201 == status, body

    status, body = await guarded.call(
        "PATCH",
        f"/instance/{name}",
        key=key,
        json={"providerConfig": {"baseUrl": "http://[::ffff:169.254.169.254]/"}},
    )

    assert (422, "TARGET_NOT_ALLOWED") == (status, body["code"]), body
    assert [["providerConfig", "baseUrl"]] == [issue["path"] for issue in body["issues"]]
    async with guarded.mongo() as client:
        stored = await client.lanegate_test.instances.find_one({"_id": name})
    assert stored is not None
    assert public == stored["providerConfig"]["baseUrl"].rstrip("/")


@pytest.mark.e2e
async def test_a_name_resolving_to_loopback_is_refused_at_call_time_with_last_error(
    guarded: Gateway,
) -> None:
    provider = Receiver(answer=lambda _: 200).start()
    try:
        tenant, key = await guarded.tenant()
        waha_name, cloud_name = f"{tenant}__support__waha", f"{tenant}__support__cloud"
        base = f"http://localhost:{provider.port}"
        hook = "https://hooks.example/lanegate"
        await _waha(guarded, key, waha_name, base, webhook=hook)
        status, body = await _create(
            guarded,
            key,
            cloud_name,
            webhookUrl=hook,
            provider="cloud_api",
            providerConfig=_cloud_config(base),
        )
        assert 201 == status, body

        # The tenant's own base URL: a client mistake (422 naming it), never a 5xx.
        status, body = await guarded.call("POST", f"/instance/{waha_name}/connect", key=key)
        assert (422, "TARGET_NOT_ALLOWED") == (status, body["code"]), body
        [issue] = body["issues"]
        assert ["providerConfig", "baseUrl"] == issue["path"]
        assert "localhost resolves to" in issue["message"] and "loopback" in issue["message"]
        status, body = await guarded.call("GET", f"/instance/{waha_name}/qr", key=key)
        assert (422, "TARGET_NOT_ALLOWED") == (status, body["code"]), body
        assert "loopback" in body["issues"][0]["message"]
        _, shown = await guarded.call("GET", f"/instance/{waha_name}/status", key=key)
        assert "target_refused" == shown["lastError"]["code"]
        assert shown["lastError"]["message"].startswith("WAHA at http://localhost")
        _, listed = await guarded.call("GET", "/instances", key=key)
        [viewed] = [i for i in listed if i["instanceName"] == waha_name]
        assert shown["lastError"] == viewed["lastError"]

        status, body = await guarded.call(
            "POST", "/templates/sync", key=key, json={"instanceName": cloud_name}
        )
        assert (422, "TARGET_NOT_ALLOWED") == (status, body["code"]), body
        assert ["providerConfig", "baseUrl"] == body["issues"][0]["path"]
        assert "loopback" in body["issues"][0]["message"]
        _, shown = await guarded.call("GET", f"/instance/{cloud_name}/status", key=key)
        assert "loopback" in shown["lastError"]["message"]

        # Its session cannot be logged out there, and the instance goes all the same.
        status, body = await guarded.call("DELETE", f"/instance/{waha_name}", key=key)
        assert (200, True, False) == (status, body["deleted"], body["loggedOut"]), body
    finally:
        provider.stop()
    assert [] == provider.requests


@pytest.mark.e2e
async def test_an_attachment_url_on_a_loopback_name_fails_the_send_without_its_query(
    guarded: Gateway,
) -> None:
    files = Receiver(answer=lambda _: 200).start()
    try:
        tenant, key = await guarded.tenant()
        name = await guarded.instance(tenant, key, "https://hooks.example/lanegate")
        url = f"http://localhost:{files.port}/invoice.pdf?X-Amz-Signature=tok3n-in-query"
        status, answer = await guarded.call(
            "POST",
            "/message/attachment",
            key=key,
            json={
                "instanceName": name,
                "to": "5491112345678",
                "lane": "urgent",
                "attachmentUrl": url,
            },
        )
        assert 202 == status, answer

        async def failed() -> bool:
            _, message = await guarded.call("GET", f"/message/{answer['id']}", key=key)
            return bool(message["status"] == "failed")

        await eventually(failed)
        _, message = await guarded.call("GET", f"/message/{answer['id']}", key=key)
    finally:
        files.stop()
    assert "attachment_unavailable" == message["error"]["code"]
    assert "loopback" in message["error"]["message"]
    assert f"http://localhost:{files.port}/invoice.pdf" in message["error"]["message"]
    assert [] == files.requests
    async with guarded.mongo() as client:
        stored = await client.lanegate_test.messages.find_one({"_id": answer["id"]})
    assert stored is not None and "tok3n" not in str(stored["error"])
    logs = "".join(p.read_text() for p in guarded.stack.log_dir.glob("*.log"))
    assert f"localhost:{files.port}/invoice.pdf" in logs
    assert "tok3n-in-query" not in logs


@pytest.mark.e2e
async def test_a_provider_redirect_is_never_followed(gateway: Gateway, receiver: Receiver) -> None:
    landing = Receiver(answer=lambda _: 200).start()
    hostile = HostileServer(landing.url("/internal"))
    hostile.start()
    try:
        tenant, key = await gateway.tenant()
        redirecting = f"{tenant}__support__redirect"
        await _waha(gateway, key, redirecting, hostile.url + "/redirect", webhook=receiver.url())
        status, body = await gateway.call("POST", f"/instance/{redirecting}/connect", key=key)
        assert (422, "TARGET_NOT_ALLOWED") == (status, body["code"]), body
        [issue] = body["issues"]
        assert ["providerConfig", "baseUrl"] == issue["path"]
        assert "redirects are not followed" in issue["message"]
        assert "redirect-secret" not in str(body)

        # A session that opens, then answers its send with a redirect: the send fails at once.
        sending = f"{tenant}__support__sends"
        await _waha(gateway, key, sending, hostile.url + "/waha", webhook=receiver.url())
        status, body = await gateway.call("POST", f"/instance/{sending}/connect", key=key)
        assert (200, "open") == (status, body["state"]), body
        status, answer = await gateway.call(
            "POST",
            "/message/text",
            key=key,
            json={"instanceName": sending, "to": "5491112345678", "text": "hi", "lane": "urgent"},
        )
        assert 202 == status, answer
        await receiver.wait_for(event_named("message.status", id=answer["id"], status="failed"))
        _, message = await gateway.call("GET", f"/message/{answer['id']}", key=key)
        _, shown = await gateway.call("GET", f"/instance/{sending}/status", key=key)
    finally:
        hostile.stop()
        landing.stop()
    assert "target_refused" == message["error"]["code"]
    assert "target_refused" == shown["lastError"]["code"]
    assert "redirects are not followed" in shown["lastError"]["message"]
    async with gateway.mongo() as client:
        stored = await client.lanegate_test.messages.find_one({"_id": answer["id"]})
    assert stored is not None and 1 == stored["attempts"]  # failed at once, never retried
    assert [] == landing.requests


@pytest.mark.e2e
async def test_endless_answers_are_cut_at_the_cap_and_recorded_as_failed(
    gateway: Gateway, receiver: Receiver
) -> None:
    hostile = HostileServer(receiver.url())
    hostile.start()
    try:
        tenant, key = await gateway.tenant()
        endless_hook = f"{tenant}__support__hook"
        status, body = await _create(
            gateway, key, endless_hook, webhookUrl=hostile.url + "/endless/hook"
        )
        assert 201 == status, body
        status, _ = await gateway.call("POST", f"/sandbox/{endless_hook}/scan", key=key)
        assert 202 == status

        async def attempted() -> bool:
            _, listed = await gateway.call(
                "GET", f"/webhooks/deliveries?instanceName={endless_hook}", key=key
            )
            return bool(listed["deliveries"])

        await eventually(attempted)
        _, listed = await gateway.call(
            "GET", f"/webhooks/deliveries?instanceName={endless_hook}", key=key
        )
        _, record = await gateway.call(
            "GET", f"/webhooks/deliveries/{listed['deliveries'][0]['id']}", key=key
        )

        endless_waha = f"{tenant}__support__waha"
        await _waha(gateway, key, endless_waha, hostile.url + "/endless", webhook=receiver.url())
        status, answer = await gateway.call("POST", f"/instance/{endless_waha}/connect", key=key)
        _, shown = await gateway.call("GET", f"/instance/{endless_waha}/status", key=key)

        fetching = await gateway.instance(tenant, key, receiver.url())
        status_sent, sent = await gateway.call(
            "POST",
            "/message/attachment",
            key=key,
            json={
                "instanceName": fetching,
                "to": "5491112345678",
                "lane": "urgent",
                "attachmentUrl": hostile.url + "/endless/a.pdf",
            },
        )
        assert 202 == status_sent, sent
        await receiver.wait_for(event_named("message.status", id=sent["id"], status="failed"))
        _, message = await gateway.call("GET", f"/message/{sent['id']}", key=key)
    finally:
        hostile.stop()
    assert f"larger than {MAX_ANSWER_BYTES} bytes" in str(record["attempts"][0]["error"])
    assert (502, "answer_too_large") == (status, shown["lastError"]["code"]), answer
    assert "attachment_unavailable" == message["error"]["code"]
    assert "larger than 262144 bytes" in message["error"]["message"]
