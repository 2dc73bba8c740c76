"""The `externalId` idempotency keys: one record per tenant and key, claimed before its message.

A unique index on the record's (tenantId, externalId) holds on every engine (a
partial unique index on the messages, which FerretDB lacks, is not needed), so
two sends with one key never both store a message. The record carries the
message it was claimed for: a send cut off between the claim and the message's
insert is completed by its repeat, which stores that message then.
"""

from pymongo.errors import BulkWriteError, DuplicateKeyError

from ingress_api.accept.settling import keyed
from lanegate.store import Document, Store
from lanegate.store.bulk import DUPLICATE_KEY, duplicates_only, insert_missing
from lanegate.store.keys import key_record


async def claim(store: Store, messages: list[Document]) -> None:
    """Claim the keys of these messages, all or none: raises DuplicateKeyError (having
    given back the ones it took) when another send holds one of them."""
    records = [key_record(m) for m in keyed(messages)]
    if len(records) == 1:
        await store.message_keys.insert_one(records[0])
    elif records:
        try:
            await store.message_keys.insert_many(records, ordered=False)
        except BulkWriteError as e:
            failed = {int(error["index"]) for error in e.details.get("writeErrors", [])}
            taken = [r["_id"] for i, r in enumerate(records) if i not in failed]
            await store.message_keys.delete_many({"_id": {"$in": taken}})
            if duplicates_only(e):
                raise DuplicateKeyError(
                    "an externalId is held by another send", DUPLICATE_KEY
                ) from e
            raise


async def claimed(store: Store, tenant_id: str, refs: list[str]) -> dict[str, Document]:
    """The messages stored under these keys of the tenant, by key; a message whose send
    claimed its key and stopped before storing it is stored now."""
    if not refs:
        return {}
    records = await store.message_keys.find(
        {"tenantId": tenant_id, "externalId": {"$in": refs}}
    ).to_list()
    if not records:
        return {}
    ids = [r["_id"] for r in records]
    stored = {m["_id"]: m async for m in store.messages.find({"_id": {"$in": ids}})}
    unstored = [r["message"] for r in records if r["_id"] not in stored]
    if unstored:
        # Only a message its own send stored meanwhile may clash: that one is there too.
        await insert_missing(store.messages, unstored)
        stored |= {m["_id"]: m for m in unstored}
    return {r["externalId"]: stored[r["_id"]] for r in records}
