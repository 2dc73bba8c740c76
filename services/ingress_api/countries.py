"""The country a phone number written without its country code is read in: the instance's
`defaultCountry`, else its tenant's (read from the instances and keys kept for sends)."""

from collections.abc import Iterable
from typing import Any

from aiohttp import web

from ingress_api.accept.lookups import LOOKUPS
from ingress_api.auth import Caller
from ingress_api.schemas.base import (
    CHANNEL,
    DEFAULT_COUNTRY,
    NUMBERS_READ_LATER,
    parse_instance_name,
)
from lanegate.providers.capabilities import Channel, channel_of
from lanegate.service import STORE
from lanegate.store import Document


def phone_context(country: str | None, channel: Channel = "whatsapp") -> dict[str, Any]:
    """The validation context that reads numbers in `country` (addresses on `email`)."""
    return {DEFAULT_COUNTRY: country, CHANNEL: channel}


# The validation context of a body whose numbers are read once its instance is known.
COUNTRY_NOT_KNOWN_YET = {NUMBERS_READ_LATER: True}


class Countries:
    """The default countries of the instances a request names."""

    def __init__(self, caller: Caller, by_instance: dict[str, Document]) -> None:
        self._caller = caller
        self._by_instance = by_instance

    def context(self, name: object) -> dict[str, Any]:
        """The validation context of a body that names the instance `name` (the tenant's
        country when it is not one of the caller's instances)."""
        instance = self._by_instance.get(name) if isinstance(name, str) else None
        if instance is None:
            return phone_context(self._caller.default_country)
        return instance_context(self._caller, instance)


async def countries(request: web.Request, caller: Caller, names: Iterable[object]) -> Countries:
    """The default countries of the caller's instances among `names`."""
    own = {
        name
        for name in names
        if isinstance(name, str)
        and (parts := parse_instance_name(name))
        and parts[0] == caller.tenant_id
    }
    instances = (
        await request.app[LOOKUPS].instances(request.app[STORE], caller.tenant_id, own)
        if own
        else {}
    )
    return Countries(caller, instances)


def instance_context(caller: Caller, instance: Document) -> dict[str, Any]:
    """The validation context of a body about the caller's `instance`."""
    country = instance.get("defaultCountry") or caller.default_country
    return phone_context(country, channel_of(instance.get("provider", "")))


async def send_context(request: web.Request, caller: Caller, name: object) -> dict[str, Any]:
    """The validation context of a body that names the instance `name`."""
    return (await countries(request, caller, [name])).context(name)
