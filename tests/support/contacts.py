"""Many contacts of a tenant, written straight to the store."""

from lanegate.contacts import new_contact
from lanegate.events import utcnow
from lanegate.store import in_parts
from tests.support.gateway import Gateway


async def many_contacts(
    gateway: Gateway, tenant_id: str, count: int, **fields: object
) -> list[str]:
    """`count` contacts of the tenant (`54911` and eight digits), with `fields`, written
    straight to the store (through the API a thousand take minutes on the embedded store),
    in parts as the gateway writes them: one insert of a thousand holds that store past its
    clients' heartbeats, and every service drops it. Their ids."""
    now = utcnow()
    contacts = [
        new_contact(now) | {"tenantId": tenant_id, "identifier": f"54911{n:08d}"} | fields
        for n in range(count)
    ]
    async with gateway.mongo() as client:
        for part in in_parts(contacts):
            await client.lanegate_test.contacts.insert_many(part)
    return [c["_id"] for c in contacts]
