"""Accepting messages against the real store and broker, behind a real HTTP server: a send is
stored then announced, a repeated `externalId` finds its first message, the day's quota and a
bad bulk item store nothing."""

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from pymongo.errors import OperationFailure

import ingress_api.accept.accepting as accepting_module
from ingress_api.accept.accepting import MessageToAccept, accept_many, accept_one, content_of
from ingress_api.accept.lookups import LOOKUPS, Lookups
from ingress_api.accept.pages import accept_in_pages
from ingress_api.accept.quotas import MESSAGE_COUNTER, MONTH_COUNTER, MessageCounter, MonthCounter
from ingress_api.accept.settling import FAILED_SEND_SETTLER, FailedSendSettler
from ingress_api.auth import Caller
from ingress_api.countries import phone_context
from ingress_api.requests import read_object, validate
from ingress_api.schemas.messages import TextMessage
from lanegate.broker import Broker
from lanegate.service import BROKER, SETTINGS, STORE, error_boundary
from lanegate.settings import Settings
from lanegate.store import Store, in_parts
from tests.conftest import AMQP_URL
from tests.support.gateway import eventually, hearing

INSTANCE = "acme__shop__one"
CALLER = web.AppKey("caller", Caller)


def _to_accept(data: dict[str, Any]) -> MessageToAccept:
    body = validate(TextMessage, data, phone_context(None))
    return MessageToAccept(body, "text", content_of("text", body))


async def _send_one(request: web.Request) -> web.Response:
    item = _to_accept(await read_object(request))
    answer, status = await accept_one(request, request.app[CALLER], item)
    return web.json_response(answer, status=status)


async def _send_many(request: web.Request) -> web.Response:
    raw = (await read_object(request))["messages"]
    items = [(index, _to_accept(data)) for index, data in enumerate(raw)]
    return web.json_response(await accept_many(request, request.app[CALLER], items, []))


async def _send_paged(request: web.Request) -> web.Response:
    raw = (await read_object(request))["messages"]
    page = int(request.query["page"])
    items = (_to_accept(data) for data in raw)
    return web.json_response(
        {"accepted": await accept_in_pages(request, request.app[CALLER], items, page)}
    )


class Accepting:
    """An HTTP server on 127.0.0.1 whose two routes accept for one caller, like ingress-api's."""

    def __init__(self, store: Store, broker: Broker, server: TestServer) -> None:
        self.store, self.broker, self.server = store, broker, server

    async def post(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        async with (
            aiohttp.ClientSession() as http,
            http.post(self.server.make_url(path), json=body) as answer,
        ):
            return answer.status, await answer.json()

    async def stored(self) -> list[dict[str, Any]]:
        return await self.store.messages.find({}).sort("createdAt", 1).to_list()


@contextlib.asynccontextmanager
async def serving(store: Store, broker: Broker, caller: Caller) -> AsyncIterator[Accepting]:
    """The accept machinery wired as ingress-api wires it, for `caller`, with one instance."""
    await store.instances.insert_one(
        {"_id": INSTANCE, "tenantId": "acme", "clientId": "shop", "provider": "sandbox"}
        | {"state": "open"}
    )
    app = web.Application(middlewares=[error_boundary])
    app[STORE], app[BROKER], app[SETTINGS], app[CALLER] = store, broker, Settings(), caller
    app[LOOKUPS] = Lookups(0)
    app[MESSAGE_COUNTER] = MessageCounter()
    app[MONTH_COUNTER] = MonthCounter()
    app[FAILED_SEND_SETTLER] = FailedSendSettler(store, broker)
    app.router.add_post("/one", _send_one)
    app.router.add_post("/many", _send_many)
    app.router.add_post("/paged", _send_paged)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield Accepting(store, broker, server)
    finally:
        await server.close()
        await app[FAILED_SEND_SETTLER].close()


@pytest.fixture
async def accepting(bare_store: Store, bare_broker: Broker) -> AsyncIterator[Accepting]:
    async with serving(bare_store, bare_broker, Caller("acme", "key")) as served:
        yield served


@pytest.fixture
async def one_a_day(bare_store: Store, bare_broker: Broker) -> AsyncIterator[Accepting]:
    async with serving(
        bare_store, bare_broker, Caller("acme", "key", max_messages_per_day=1)
    ) as served:
        yield served


def _text(text: str, **fields: Any) -> dict[str, Any]:
    return {"instanceName": INSTANCE, "to": "5511999998888", "text": text, **fields}


async def test_a_message_is_stored_pending_and_then_announced(accepting: Accepting) -> None:
    async with hearing(AMQP_URL, accepting.broker.namespace, "message.accepted") as next_event:
        status, answer = await accepting.post("/one", _text("hello"))
        event = await next_event()

    assert 202 == status
    [stored] = await accepting.stored()
    assert (stored["_id"], "pending", "pending") == (
        answer["id"],
        answer["status"],
        stored["status"],
    )
    assert {"text": "hello"} == stored["content"]
    assert stored["_id"] == event["messageId"]


async def test_a_repeated_external_id_with_the_same_body_answers_the_first_message(
    accepting: Accepting,
) -> None:
    first_status, first = await accepting.post("/one", _text("hi", externalId="order-1"))
    again_status, again = await accepting.post("/one", _text("hi", externalId="order-1"))

    assert (202, 200) == (first_status, again_status)
    assert first["id"] == again["id"]
    assert [first["id"]] == [m["_id"] for m in await accepting.stored()]


async def test_a_repeated_external_id_with_another_body_is_refused(accepting: Accepting) -> None:
    await accepting.post("/one", _text("hi", externalId="order-1"))
    status, answer = await accepting.post("/one", _text("other", externalId="order-1"))

    assert (409, "CONFLICT") == (status, answer["code"])
    assert ["hi"] == [m["content"]["text"] for m in await accepting.stored()]


async def test_a_send_past_the_days_quota_is_refused_and_stores_nothing(
    one_a_day: Accepting,
) -> None:
    first_status, _ = await one_a_day.post("/one", _text("first"))
    status, answer = await one_a_day.post("/one", _text("second"))

    assert (202, 429, "QUOTA_EXCEEDED") == (first_status, status, answer["code"])
    assert ["first"] == [m["content"]["text"] for m in await one_a_day.stored()]


async def test_a_bulk_request_with_one_bad_item_stores_nothing(accepting: Accepting) -> None:
    unknown = _text("two") | {"instanceName": "acme__shop__gone"}
    status, answer = await accepting.post("/many", {"messages": [_text("one"), unknown]})

    assert 400 == status
    assert [["messages", 1, "instanceName"]] == [issue["path"] for issue in answer["issues"]]
    assert [] == await accepting.stored()


async def test_a_bulk_request_stores_every_item(accepting: Accepting) -> None:
    status, answer = await accepting.post("/many", {"messages": [_text("one"), _text("two")]})

    assert 200 == status
    assert 2 == answer["accepted"]
    assert ["one", "two"] == sorted(m["content"]["text"] for m in await accepting.stored())


@pytest.mark.parametrize("count", [6, 7, 8])
async def test_more_messages_than_a_page_are_each_accepted_once_in_pages(
    accepting: Accepting, count: int
) -> None:
    people = [f"55119999{n:05d}" for n in range(count)]
    async with hearing(AMQP_URL, accepting.broker.namespace, "message.accepted") as next_event:
        status, answer = await accepting.post(
            "/paged?page=3", {"messages": [_text("hi", to=n) for n in people]}
        )
        announced = [(await next_event())["to"] for _ in people]

    assert (200, count) == (status, answer["accepted"])
    stored = [m["to"] for m in await accepting.stored()]
    assert sorted(people) == sorted(stored) == sorted(announced)


async def test_a_bulk_whose_later_part_fails_leaves_nothing_stored_to_send(
    accepting: Accepting, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bulk is stored in parts: when a later part fails, the parts stored before it are
    settled as after a lost answer (deleted, having no `externalId`), not left to be sent
    beside the client's retry."""
    monkeypatch.setattr(accepting_module, "in_parts", lambda items: in_parts(items, 2))
    insert_many, parts = accepting.store.messages.insert_many, []

    async def second_refused(documents: Any, **options: Any) -> Any:
        parts.append(documents)
        if len(parts) == 2:
            raise OperationFailure("refused")
        return await insert_many(documents, **options)

    monkeypatch.setattr(accepting.store.messages, "insert_many", second_refused)
    texts = [_text(f"m{n}", to=f"55119999{n:05d}") for n in range(4)]
    status, _ = await accepting.post("/many", {"messages": texts})

    assert (500, 2) == (status, len(parts))  # a refusal of the store is an internal error

    async def settled() -> bool:
        return [] == await accepting.stored()

    await eventually(settled, timeout=10)
