"""The sweeper: where the store refuses TTL indexes, expired documents still go."""

from datetime import timedelta

from ingress_api.main import SWEPT
from lanegate.events import utcnow
from lanegate.store import Store
from lanegate.store.indexes import INDEXES
from lanegate.store.sweeper import Expiry, sweeping
from tests.support.gateway import eventually


async def test_sweeping_deletes_expired_documents_of_the_named_collections_only(
    bare_store: Store,
) -> None:
    now = utcnow()
    old = now - timedelta(minutes=1)
    await bare_store.rate_limits.insert_many(
        [{"_id": "old", "expiresAt": old}, {"_id": "new", "expiresAt": now + timedelta(minutes=1)}]
    )
    # A collection with no TTL index of its own, so only a sweep could remove its document.
    await bare_store.sandbox_outbox.insert_one({"_id": "old", "expiresAt": old})
    bare_store.swept = [
        Expiry("rate_limits", "expiresAt", 0),
        Expiry("sandbox_outbox", "expiresAt", 0),
    ]

    async def only_the_fresh_window_left() -> bool:
        return ["new"] == [d["_id"] async for d in bare_store.rate_limits.find()]

    async with sweeping(bare_store, ["rate_limits"], every=0.05):
        await eventually(only_the_fresh_window_left)

    assert 1 == await bare_store.sandbox_outbox.count_documents({})


def test_every_collection_with_a_ttl_index_is_swept_where_the_store_refuses_it() -> None:
    with_ttl = {
        collection
        for collection, indexes in INDEXES.items()
        if any("expireAfterSeconds" in index.document for index in indexes)
    }
    assert with_ttl == set(SWEPT)
