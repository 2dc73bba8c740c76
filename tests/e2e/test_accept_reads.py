"""The accept path's store work against the real store: grouped inserts, kept reads."""

import asyncio
from typing import cast

import pytest
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from ingress_api.accept.lookups import Lookups
from lanegate.store import Document, Store
from lanegate.store.grouped import GroupedInserts

pytestmark = pytest.mark.e2e


async def _stored(store: Store) -> set[str]:
    return {doc["_id"] async for doc in store.messages.find({}, {"_id": 1})}


async def test_inserts_made_at_once_share_round_trips(store: Store) -> None:
    inserts = GroupedInserts(store.messages)
    await asyncio.gather(*(inserts.insert({"_id": f"m{i}"}) for i in range(20)))
    assert await _stored(store) == {f"m{i}" for i in range(20)}
    # The first goes alone; the others queue behind it and go together.
    assert inserts.writes == 2
    await inserts.insert({"_id": "alone"})
    assert inserts.writes == 3


async def test_a_duplicate_fails_only_its_own_insert(store: Store) -> None:
    await store.messages.insert_one({"_id": "taken"})
    inserts = GroupedInserts(store.messages)
    outcomes = await asyncio.gather(
        inserts.insert({"_id": "first"}),
        inserts.insert({"_id": "a"}),
        inserts.insert({"_id": "taken", "copy": True}),
        inserts.insert({"_id": "b"}),
        return_exceptions=True,
    )
    assert [outcomes[0], outcomes[1], outcomes[3]] == [None, None, None]
    assert isinstance(outcomes[2], DuplicateKeyError)
    assert await _stored(store) == {"taken", "first", "a", "b"}
    assert await store.messages.find_one({"_id": "taken"}) == {"_id": "taken"}


async def test_a_caller_gone_before_its_turn_writes_nothing(store: Store) -> None:
    inserts = GroupedInserts(store.messages)
    first = asyncio.create_task(inserts.insert({"_id": "first"}))
    gone = asyncio.create_task(inserts.insert({"_id": "gone"}))
    last = asyncio.create_task(inserts.insert({"_id": "last"}))
    await asyncio.sleep(0)  # all three in: the first writing, the others queued
    gone.cancel()
    await asyncio.gather(first, last)
    assert gone.cancelled()
    assert await _stored(store) == {"first", "last"}
    await inserts.insert({"_id": "after"})  # and the line moves on
    assert "after" in await _stored(store)


class CancelsAfterWriting:
    """The messages collection, cancelling a task just as the write holding the document
    `after` ends: the cancel lands after the writer hands that task its turn or its outcome,
    before the task runs."""

    def __init__(self, store: Store, after: str, *, as_it_starts: bool = False) -> None:
        self.store, self.after, self.as_it_starts = store, after, as_it_starts
        self.victim: asyncio.Task[None] | None = None

    def _cancel(self, documents: list[Document]) -> None:
        if self.victim is not None and any(d["_id"] == self.after for d in documents):
            asyncio.get_running_loop().call_soon(self.victim.cancel)
            self.victim = None

    async def insert_many(self, documents: list[Document], *, ordered: bool) -> object:
        if self.as_it_starts:
            self._cancel(documents)
        try:
            return await self.store.messages.insert_many(documents, ordered=ordered)
        finally:
            self._cancel(documents)


async def test_a_caller_cut_off_as_its_turn_comes_passes_it_on(store: Store) -> None:
    collection = CancelsAfterWriting(store, after="first")
    inserts = GroupedInserts(cast(AsyncCollection[Document], collection))
    first = asyncio.create_task(inserts.insert({"_id": "first"}))
    next_in_line = asyncio.create_task(inserts.insert({"_id": "next"}))
    behind = asyncio.create_task(inserts.insert({"_id": "behind"}))
    collection.victim = next_in_line
    await asyncio.gather(first, behind)
    assert next_in_line.cancelled()
    assert await _stored(store) == {"first", "behind"}
    assert inserts.writes == 2


async def test_a_caller_cut_off_as_its_error_comes_is_cut_off(store: Store) -> None:
    await store.messages.insert_one({"_id": "taken"})
    collection = CancelsAfterWriting(store, after="taken")
    inserts = GroupedInserts(cast(AsyncCollection[Document], collection))
    first = asyncio.create_task(inserts.insert({"_id": "first"}))
    second = asyncio.create_task(inserts.insert({"_id": "second"}))
    duplicate = asyncio.create_task(inserts.insert({"_id": "taken", "copy": True}))
    collection.victim = duplicate
    await asyncio.gather(first, second)
    await asyncio.wait([duplicate])
    assert duplicate.cancelled()  # the cancel, not the duplicate key it was about to hear
    await inserts.insert({"_id": "after"})
    assert await _stored(store) == {"taken", "first", "second", "after"}


async def test_the_caller_that_starts_a_write_going_away_cuts_no_one_off(store: Store) -> None:
    collection = CancelsAfterWriting(store, after="next", as_it_starts=True)
    inserts = GroupedInserts(cast(AsyncCollection[Document], collection))
    first = asyncio.create_task(inserts.insert({"_id": "first"}))
    next_in_line = asyncio.create_task(inserts.insert({"_id": "next"}))  # writes the 2nd batch
    behind = asyncio.create_task(inserts.insert({"_id": "behind"}))
    collection.victim = next_in_line
    await asyncio.gather(first, behind)  # `behind` is told its document is stored
    await asyncio.wait([next_in_line])
    assert next_in_line.cancelled()
    assert await _stored(store) == {"first", "next", "behind"}


async def test_instances_are_kept_for_a_while_and_forgotten_on_delete(store: Store) -> None:
    await store.instances.insert_one({"_id": "t1__c__a", "tenantId": "t1", "provider": "sandbox"})
    lookups = Lookups(ttl=60)
    assert set(await lookups.instances(store, "t1", ["t1__c__a", "t1__c__b"])) == {"t1__c__a"}
    # Another tenant never gets it, kept or not.
    assert await lookups.instances(store, "t2", ["t1__c__a"]) == {}
    await store.instances.delete_one({"_id": "t1__c__a"})
    # Deleted through another replica: still trusted within the ttl ...
    assert set(await lookups.instances(store, "t1", ["t1__c__a"])) == {"t1__c__a"}
    # ... and gone at once when this process deleted it.
    lookups.forget_instance("t1", "t1__c__a")
    assert await lookups.instances(store, "t1", ["t1__c__a"]) == {}
    # An unknown instance is not kept: made a moment later, it is found at once.
    await store.instances.insert_one({"_id": "t1__c__b", "tenantId": "t1", "provider": "waha"})
    found = await lookups.instances(store, "t1", ["t1__c__b"])
    assert found["t1__c__b"]["provider"] == "waha"


async def test_a_sends_instance_is_read_again_before_it_lapses(store: Store) -> None:
    await store.instances.insert_one({"_id": "t1__c__a", "tenantId": "t1", "provider": "sandbox"})
    lookups = Lookups(ttl=4)
    assert set(await lookups.instances(store, "t1", ["t1__c__a"])) == {"t1__c__a"}
    await store.instances.delete_one({"_id": "t1__c__a"})  # through another replica
    await asyncio.sleep(2.2)
    # Past half its time: still given at once, and read again meanwhile, which finds it gone
    # well before the 4 s it would have been trusted.
    assert set(await lookups.instances(store, "t1", ["t1__c__a"])) == {"t1__c__a"}
    await asyncio.sleep(0.5)
    assert await lookups.instances(store, "t1", ["t1__c__a"]) == {}


async def test_a_tenant_naming_anothers_instance_never_hides_it_from_its_owner(
    store: Store,
) -> None:
    await store.instances.insert_one({"_id": "t1__c__a", "tenantId": "t1", "provider": "sandbox"})
    lookups = Lookups(ttl=60)
    other, own = await asyncio.gather(
        lookups.instances(store, "t2", ["t1__c__a"]), lookups.instances(store, "t1", ["t1__c__a"])
    )
    assert ({}, {"t1__c__a"}) == (other, set(own))


async def test_inactive_numbers_are_kept_per_tenant_or_asked_for_when_too_many(
    store: Store,
) -> None:
    contacts = [
        {"_id": f"c{n}", "tenantId": "t1", "identifier": n, "active": active}
        for n, active in (("111", False), ("222", True), ("333", False))
    ]
    await store.contacts.insert_many(contacts)
    kept = Lookups(ttl=60)
    assert await kept.inactive(store, "t1", ["111", "222"]) == {"111"}
    assert await kept.inactive(store, "t2", ["111"]) == set()
    await store.contacts.update_one({"_id": "c222"}, {"$set": {"active": False}})
    assert await kept.inactive(store, "t1", ["222"]) == set()  # within the ttl
    kept.forget_contacts("t1")
    assert await kept.inactive(store, "t1", ["222", "333"]) == {"222", "333"}
    # With more inactive numbers than it keeps, each send asks for its own.
    crowded = Lookups(ttl=60, most_inactive=2)
    assert await crowded.inactive(store, "t1", ["111", "444"]) == {"111"}
    await store.contacts.update_one({"_id": "c111"}, {"$set": {"active": True}})
    assert await crowded.inactive(store, "t1", ["111"]) == set()
    # A ttl of 0 keeps nothing.
    unkept = Lookups(ttl=0)
    assert await unkept.inactive(store, "t1", ["222"]) == {"222"}
    await store.contacts.update_one({"_id": "c222"}, {"$set": {"active": True}})
    assert await unkept.inactive(store, "t1", ["222"]) == set()
