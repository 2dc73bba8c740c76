"""Template sync reads an account within limits: pages, templates kept and seconds, so an
account that pages for ever stalls no other account's sync."""

import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from lanegate.outbound import Outbound
from lanegate.secrets import Keyring
from lanegate.store import Document, Store
from template_sync.sync import API_ERROR, SyncFailed, SyncLimits, TemplateSync
from tests.e2e.test_cloud_api import cloud_instance
from tests.e2e.test_templates import five_templates
from tests.simulators.meta import MetaSimulator, Number
from tests.support.gateway import Gateway, eventually
from tests.support.receiver import Receiver

pytestmark = pytest.mark.e2e


@pytest.fixture
async def http() -> AsyncIterator[Outbound]:
    client = Outbound(allow_private=True, timeout=5)
    yield client
    await client.close()


async def _instance(store: Store, meta: MetaSimulator) -> tuple[Document, Number]:
    """A cloud_api instance stored as ingress-api stores one, on a fresh simulated number."""
    number = meta.add_number("http://127.0.0.1:9/unused")
    instance = {
        "_id": f"t{uuid.uuid4().hex[:8]}__support__main",
        "tenantId": "t",
        "provider": "cloud_api",
        "providerConfig": {
            "wabaId": number.waba_id,
            "accessToken": number.access_token,
            "baseUrl": meta.url,
            "graphVersion": "v23.0",
        },
    }
    await store.instances.insert_one(instance)
    return instance, number


def _syncer(store: Store, http: Outbound, **limits: Any) -> TemplateSync:
    return TemplateSync(
        store, http, timeout=5, backoff=1, keyring=Keyring(""), limits=SyncLimits(**limits)
    )


async def _kept(store: Store, instance: Document) -> list[Document]:
    return await store.templates.find({"instanceName": instance["_id"]}).to_list(None)


async def _outcome(store: Store, instance: Document) -> dict[str, Any]:
    found = await store.instances.find_one({"_id": instance["_id"]})
    assert found is not None
    outcome: dict[str, Any] = found["templateSync"]
    return outcome


async def test_an_account_paging_for_ever_is_read_to_the_page_limit_and_deletes_nothing(
    store: Store, meta: MetaSimulator, http: Outbound
) -> None:
    instance, number = await _instance(store, meta)
    meta.set_templates(number, five_templates())
    syncer = _syncer(store, http, max_pages=5)
    assert 5 == await syncer.sync(instance)
    meta.endless_templates(number)
    try:
        with pytest.raises(SyncFailed, match="more than 5 pages") as failed:
            await syncer.sync(instance)
    finally:
        meta.endless_templates(number, False)

    assert API_ERROR == failed.value.code
    requests = [after for waba, after in meta.template_requests if waba == number.waba_id]
    assert 3 + 5 == len(requests)  # the first sync's three pages, then five
    kept = await _kept(store, instance)
    assert (15, []) == (len(kept), [t["name"] for t in kept if t["deleted"]])
    assert "error" == (await _outcome(store, instance))["result"]


async def test_an_instance_never_keeps_more_templates_than_the_limit(
    store: Store, meta: MetaSimulator, http: Outbound
) -> None:
    instance, number = await _instance(store, meta)
    syncer = _syncer(store, http, max_templates=7)
    for _ in range(3):  # every sync lists twelve templates never seen before
        meta.set_templates(number, five_templates() + five_templates() + five_templates()[:2])
        with pytest.raises(SyncFailed, match="more than 7 templates"):
            await syncer.sync(instance)
        assert 7 == len(await _kept(store, instance))

    meta.set_templates(number, five_templates())
    assert 5 == await syncer.sync(instance)
    kept = await _kept(store, instance)
    assert (7, 5) == (len(kept), len([t for t in kept if not t["deleted"]]))


async def test_an_account_slower_than_its_time_budget_is_cut_short(
    store: Store, meta: MetaSimulator, http: Outbound
) -> None:
    instance, number = await _instance(store, meta)
    meta.endless_templates(number)
    meta.template_delay[number.waba_id] = 0.3
    syncer = _syncer(store, http, seconds=1.0)
    started = time.monotonic()
    try:
        with pytest.raises(SyncFailed, match="longer than 1 s"):
            await syncer.sync(instance)
    finally:
        meta.endless_templates(number, False)
        meta.template_delay.pop(number.waba_id)
    assert time.monotonic() - started < 5
    assert "longer than 1 s" in (await _outcome(store, instance))["error"]


async def test_an_account_paging_for_ever_stalls_no_other_accounts_timer_sync(
    gateway: Gateway, meta: MetaSimulator, receiver: Receiver
) -> None:
    hostile_name, hostile_key, hostile = await cloud_instance(gateway, meta, receiver)
    meta.endless_templates(hostile)
    try:
        name, key, number = await cloud_instance(gateway, meta, receiver)
        meta.set_templates(number, five_templates())

        async def listed(count: int) -> bool:
            _, body = await gateway.call(
                "GET", "/whatsapp/templates", key=key, params={"instance_id": name}
            )
            return len(body["data"]) == count

        await eventually(lambda: listed(5), timeout=30)
        # The hostile account has been read to its page limit by now, on every pass.
        meta.set_templates(number, five_templates()[:3])
        await eventually(lambda: listed(3), timeout=30)

        async with gateway.mongo() as client:
            stored = await client.lanegate_test.instances.find_one({"_id": hostile_name})
            kept = await client.lanegate_test.templates.count_documents(
                {"instanceName": hostile_name}
            )
        assert stored is not None
        assert "more than 100 pages" in stored["templateSync"]["error"]
        assert kept <= 100 * meta.template_page_size
    finally:
        meta.endless_templates(hostile, False)
        await gateway.call("DELETE", f"/instance/{hostile_name}", key=hostile_key)
