"""Labels a contact carries one of: its source and its pipeline status, kept alike."""

from dataclasses import dataclass
from typing import Any

from pymongo import ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection

from ingress_api.auth import Caller
from lanegate.errors import InUse, InvalidInput, NotFound
from lanegate.events import new_id, utcnow
from lanegate.store import Document, Store, update_in_parts
from lanegate.timestamps import iso_utc


@dataclass(frozen=True)
class LabelKind:
    """One kind of label: its collection, the contact field naming it and how it sorts."""

    collection: str
    contact_field: str
    noun: str
    order: tuple[tuple[str, int], ...]

    def labels(self, store: Store) -> AsyncCollection[Document]:
        return store.db[self.collection]


SOURCES = LabelKind("sources", "sourceId", "Source", (("name", 1), ("_id", 1)))
STATUSES = LabelKind("statuses", "statusId", "Status", (("order", 1), ("name", 1), ("_id", 1)))


def label_view(label: Document) -> dict[str, Any]:
    shown = {k: v for k, v in label.items() if k not in ("_id", "tenantId", "createdAt")}
    return {"id": label["_id"], **shown, "createdAt": iso_utc(label.get("createdAt"))}


async def list_labels(store: Store, caller: Caller, kind: LabelKind) -> list[dict[str, Any]]:
    found = kind.labels(store).find({"tenantId": caller.tenant_id}).sort(list(kind.order))
    return [label_view(label) async for label in found]


async def create_label(
    store: Store, caller: Caller, kind: LabelKind, fields: dict[str, Any]
) -> dict[str, Any]:
    label = {"_id": new_id(), "tenantId": caller.tenant_id, **fields, "createdAt": utcnow()}
    await kind.labels(store).insert_one(label)
    return label_view(label)


async def get_label(store: Store, caller: Caller, kind: LabelKind, label_id: str) -> Document:
    """The caller's label by id; 404 when it has none such."""
    label = await kind.labels(store).find_one({"tenantId": caller.tenant_id, "_id": label_id})
    if label is None:
        raise NotFound(f"{kind.noun} not found")
    return label


async def update_label(
    store: Store, caller: Caller, kind: LabelKind, label_id: str, changes: dict[str, Any]
) -> dict[str, Any]:
    if not changes:
        return label_view(await get_label(store, caller, kind, label_id))
    label = await kind.labels(store).find_one_and_update(
        {"tenantId": caller.tenant_id, "_id": label_id},
        {"$set": changes},
        return_document=ReturnDocument.AFTER,
    )
    if label is None:
        raise NotFound(f"{kind.noun} not found")
    return label_view(label)


async def delete_label(
    store: Store, caller: Caller, kind: LabelKind, label_id: str, reassign_to: str | None
) -> dict[str, Any]:
    """Delete a label; 409 with the count while contacts have it, unless they move to
    `reassign_to` first."""
    await get_label(store, caller, kind, label_id)
    holders = {"tenantId": caller.tenant_id, kind.contact_field: label_id}
    reassigned = 0
    if reassign_to is None:
        count = await store.contacts.count_documents(holders)
        if count:
            raise InUse(
                f"{count} contacts have this {kind.noun.lower()}: give ?reassignTo= to move them",
                count,
            )
    else:
        if reassign_to == label_id:
            raise InvalidInput([(["reassignTo"], f"The {kind.noun.lower()} being deleted")])
        await must_exist(store, caller, kind, reassign_to, ["reassignTo"])
        reassigned = await update_in_parts(
            store.contacts,
            holders,
            {"$set": {kind.contact_field: reassign_to, "updatedAt": utcnow()}},
        )
    await kind.labels(store).delete_one({"tenantId": caller.tenant_id, "_id": label_id})
    return {"id": label_id, "deleted": True, "reassigned": reassigned}


async def must_exist(
    store: Store, caller: Caller, kind: LabelKind, label_id: str, path: list[str | int]
) -> None:
    """400 at `path` when the caller has no such label."""
    found = await kind.labels(store).count_documents(
        {"tenantId": caller.tenant_id, "_id": label_id}, limit=1
    )
    if not found:
        raise InvalidInput([(path, f"No {kind.noun.lower()} with this id")])
