"""Whether each send's text (and an e-mail's subject and html) has a value for every variable
it uses without a fallback, for the recipients whose contact is known at accept time (an
unknown one gets fallbacks at send time)."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lanegate import variables
from lanegate.store import Store


@dataclass(frozen=True)
class Recipient:
    """What a send tells about its recipient: the number, the content and `contactName`."""

    to: str
    content: Mapping[str, Any]
    contact_name: str | None


@dataclass(frozen=True)
class Unfilled:
    """A send's text, subject or html field and the variables its known contact has no value for."""

    field: str
    written: list[str]

    @property
    def message(self) -> str:
        return (
            f"The contact has no value for {', '.join(self.written)}; set it on the contact"
            " or write a fallback, like {{name|Cliente}}"
        )


async def unfilled_values(
    store: Store, tenant_id: str, recipients: Sequence[Recipient]
) -> list[Unfilled | None]:
    """For each recipient, the variables its known contact leaves empty (None when all are
    filled, the contact is unknown or the text uses none); one read for all."""
    asked = {
        r.to
        for r in recipients
        if any(
            v.fallback is None and v.key != "phone"
            for text in variables.templates_of(r.content).values()
            for v in variables.variables_in(text)
        )
    }
    if not asked:
        return [None] * len(recipients)
    found = store.contacts.find(
        {"tenantId": tenant_id, "identifier": {"$in": sorted(asked)}},
        {"identifier": 1, "name": 1, "fields": 1},
    )
    contacts = {c["identifier"]: c async for c in found}
    return [unfilled_for(r, contacts.get(r.to)) if r.to in asked else None for r in recipients]


def unfilled_for(recipient: Recipient, contact: Mapping[str, Any] | None) -> Unfilled | None:
    """The variables the recipient's contact leaves empty (None when unknown or all filled)."""
    if contact is None:
        return None
    if recipient.contact_name:  # the send names the contact before it goes
        contact = {**contact, "name": recipient.contact_name}
    for field, text in variables.templates_of(recipient.content).items():
        written = variables.unfilled(text, recipient.to, contact)
        if written:
            return Unfilled(field, written)
    return None
