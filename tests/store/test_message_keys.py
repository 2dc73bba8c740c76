"""externalId keys: claimed all or none, a cut-off send completed, older messages given keys."""

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from pymongo import ASCENDING, IndexModel
from pymongo.errors import DuplicateKeyError

from devtools.stack import lone_store
from ingress_api.accept.message_keys import claim, claimed
from lanegate.events import new_id
from lanegate.store import Document, Store
from lanegate.store.changes import OLDER_KEYS_INDEX, apply_changes, keys_of_older_messages
from tests.conftest import own_database


def message(tenant_id: str, external_id: str | None = None) -> Document:
    keyed = {"externalId": external_id, "requestHash": "h"} if external_id else {}
    return {"_id": new_id(), "tenantId": tenant_id, "status": "pending", **keyed}


async def test_a_bulk_claim_with_one_key_taken_takes_none(bare_store: Store) -> None:
    await claim(bare_store, [message("t", "A")])

    with pytest.raises(DuplicateKeyError):
        await claim(bare_store, [message("t", "B"), message("t", "A"), message("t", "C")])

    assert ["A"] == await bare_store.message_keys.distinct("externalId", {"tenantId": "t"})


async def test_a_message_claimed_but_never_stored_is_stored_by_its_repeat(
    bare_store: Store,
) -> None:
    cut_off = message("t", "A")
    await claim(bare_store, [cut_off])

    found = await claimed(bare_store, "t", ["A", "unknown"])

    assert {"A": cut_off} == found
    assert cut_off == await bare_store.messages.find_one({"_id": cut_off["_id"]})


@pytest.fixture(scope="module")
def mongoeco_uri() -> Iterator[str]:
    """mongoeco, which accepts the partial index older stores had (FerretDB does not)."""
    with lone_store(Path("var/test-logs") / f"lgkeys-{uuid.uuid4().hex[:8]}") as uri:
        yield uri


@pytest.fixture
async def older_store(mongoeco_uri: str) -> AsyncIterator[Store]:
    async with own_database(mongoeco_uri) as store:
        partial = IndexModel(
            [("tenantId", ASCENDING), ("externalId", ASCENDING)],
            name=OLDER_KEYS_INDEX,
            unique=True,
            partialFilterExpression={"externalId": {"$type": "string"}},
        )
        await store.messages.create_indexes([partial])
        yield store


async def test_messages_from_before_key_records_get_theirs_at_start(older_store: Store) -> None:
    """A store from before key records, started: the change gives each keyed message its
    record, drops the partial index and is recorded, so a repeat of a key is refused."""
    older = [message("t", "A"), message("t", "B"), message("t")]
    await older_store.messages.insert_many(older)
    await older_store.db["store_changes"].delete_many({})

    await older_store.connect()

    assert 2 == await older_store.message_keys.count_documents({"tenantId": "t"})
    names = {i["name"] async for i in await older_store.messages.list_indexes()}
    assert OLDER_KEYS_INDEX not in names
    with pytest.raises(DuplicateKeyError):
        await claim(older_store, [message("t", "B")])
    assert 0 == await keys_of_older_messages(older_store.db)
    assert [] == await apply_changes(older_store.db)
