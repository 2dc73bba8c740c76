"""Stable integer ids per tenant for instances and templates, for APIs that name them by
number: each is numbered once, from a per-tenant counter taken with an atomic `$inc`."""

from typing import Literal

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from lanegate.store import Store

Kind = Literal["instance", "template"]


def _record_id(tenant_id: str, kind: Kind, ref: str) -> str:
    return f"{tenant_id}|{kind}|{ref}"


async def numbers_of(store: Store, tenant_id: str, kind: Kind, refs: list[str]) -> dict[str, int]:
    """The number of each ref (an instance name, a template id), numbering the new ones in the
    order given; a ref numbered by a concurrent request keeps that number."""
    if not refs:
        return {}
    found = {
        record["ref"]: int(record["number"])
        async for record in store.numbered_ids.find(
            {"_id": {"$in": [_record_id(tenant_id, kind, ref) for ref in refs]}}
        )
    }
    fresh = [ref for ref in dict.fromkeys(refs) if ref not in found]
    if not fresh:
        return found
    counter = await store.id_counters.find_one_and_update(
        {"_id": f"{tenant_id}|{kind}"},
        {"$inc": {"last": len(fresh)}},
        upsert=True,
        return_document=ReturnDocument.AFTER,
    )
    if counter is None:  # an upsert returning the new document never gives None
        raise RuntimeError("id counter upsert returned nothing")
    first = int(counter["last"]) - len(fresh) + 1
    for number, ref in enumerate(fresh, first):
        record_id = _record_id(tenant_id, kind, ref)
        try:
            await store.numbered_ids.insert_one(
                {
                    "_id": record_id,
                    "tenantId": tenant_id,
                    "kind": kind,
                    "ref": ref,
                    "number": number,
                }
            )
            found[ref] = number
        except DuplicateKeyError:
            # Numbered meanwhile by another request: its number stands, this one stays unused.
            record = await store.numbered_ids.find_one({"_id": record_id})
            if record is None:
                raise
            found[ref] = int(record["number"])
    return found


async def ref_of(store: Store, tenant_id: str, kind: Kind, number: int) -> str | None:
    """The ref a tenant's number names, or None when it names nothing."""
    record = await store.numbered_ids.find_one(
        {"tenantId": tenant_id, "kind": kind, "number": number}, {"ref": 1}
    )
    return None if record is None else str(record["ref"])


async def instance_numbers(store: Store, tenant_id: str) -> dict[str, int]:
    """The number of each of the tenant's instances; new ones are numbered in the order they
    were made, whichever listing or send first needs a number."""
    found = store.instances.find({"tenantId": tenant_id}, {"_id": 1}).sort(
        [("createdAt", 1), ("_id", 1)]
    )
    return await numbers_of(store, tenant_id, "instance", [i["_id"] async for i in found])
