"""The instances and inactive contacts a send names, kept for `LANEGATE_ACCEPT_CACHE_SECONDS`
and read again ahead of their lapse, so a steady stream of sends costs no read."""

from collections.abc import Iterable
from dataclasses import dataclass

from aiohttp import web

from lanegate.store import Document, Store
from lanegate.ttl_cache import TtlCache

# What a send reads of its instance: who owns it, which provider sends, whether it is
# open now (for the answer), and the country numbers written without a code are read in.
INSTANCE_FIELDS = {"tenantId": 1, "provider": 1, "state": 1, "defaultCountry": 1}
# A tenant's inactive numbers are kept whole up to this many, else asked for per send
# (with CACHED_TENANTS, about 100 MB at the very most).
MOST_INACTIVE = 1_000
CACHED_TENANTS = 1_000


@dataclass(frozen=True)
class _Inactive:
    """A tenant's inactive numbers, or None when there are too many to keep."""

    numbers: frozenset[str] | None


# A send needs its instance (that it exists, its provider, which never changes, and its
# connection state, which its answer shows and which may lag as long as the rest) and whether
# its recipient is an inactive contact. A change made through this process (a deleted
# instance, a contact deactivated, deleted or saved) is seen at once; one made through another
# replica within the cache's seconds. A message accepted for an instance deleted meanwhile is
# canceled by the scheduler, as the delete cancels the instance's waiting ones. Unknown
# instances are never kept: one created a moment ago is found at once.
class Lookups:
    """The reads that decide whether a send may be queued, kept for `ttl` seconds."""

    def __init__(self, ttl: float, most_inactive: int = MOST_INACTIVE) -> None:
        self._most_inactive = most_inactive
        self._instances: TtlCache[tuple[str, str], Document] = TtlCache(ttl)
        self._inactive: TtlCache[str, _Inactive] = TtlCache(ttl, CACHED_TENANTS)

    async def instances(
        self, store: Store, tenant_id: str, names: Iterable[str]
    ) -> dict[str, Document]:
        """The tenant's instances among `names`, by name (missing ones left out). Kept per
        tenant and name: one tenant's reads never stand in for another's."""
        wanted = sorted(set(names))
        if len(wanted) == 1:  # a single send: concurrent ones share the read
            [name] = wanted

            async def read() -> Document | None:
                query = {"_id": name, "tenantId": tenant_id}
                return await store.instances.find_one(query, INSTANCE_FIELDS)

            instance = await self._instances.read_through((tenant_id, name), read)
            return {} if instance is None else {name: instance}
        found: dict[str, Document] = {}
        unread: list[str] = []
        for name in wanted:
            instance = self._instances.get((tenant_id, name))
            if instance is not None:
                found[name] = instance
            else:
                unread.append(name)
        if unread:
            mark = self._instances.mark()
            query = {"_id": {"$in": unread}, "tenantId": tenant_id}
            async for instance in store.instances.find(query, INSTANCE_FIELDS):
                found[instance["_id"]] = instance
                self._instances.put((tenant_id, instance["_id"]), instance, since=mark)
        return found

    async def inactive(self, store: Store, tenant_id: str, numbers: Iterable[str]) -> set[str]:
        """Which of `numbers` belong to the tenant's inactive contacts."""
        asked = set(numbers)
        if not asked:
            return set()

        async def read() -> _Inactive:
            query = {"tenantId": tenant_id, "active": False}
            found = store.contacts.find(query, {"identifier": 1}).limit(self._most_inactive + 1)
            kept = frozenset([contact["identifier"] async for contact in found])
            return _Inactive(kept if len(kept) <= self._most_inactive else None)

        known = await self._inactive.read_through(tenant_id, read)
        if known is not None and known.numbers is not None:
            return asked & known.numbers
        query = {"tenantId": tenant_id, "identifier": {"$in": sorted(asked)}, "active": False}
        found = store.contacts.find(query, {"identifier": 1})
        return {contact["identifier"] async for contact in found}

    def forget_instance(self, tenant_id: str, name: str) -> None:
        """This process deleted the instance, saw its state change or changed its country."""
        self._instances.forget((tenant_id, name))

    def forget_contacts(self, tenant_id: str) -> None:
        """This process changed one of the tenant's contacts."""
        self._inactive.forget(tenant_id)


LOOKUPS = web.AppKey("lookups", Lookups)
