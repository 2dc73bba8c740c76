"""What each provider can do, as the instance objects advertise it, and its channel."""

from dataclasses import dataclass
from typing import Literal

Channel = Literal["whatsapp", "email"]


@dataclass(frozen=True)
class Capabilities:
    supportsTemplates: bool
    supportsButtons: bool
    hasWindowRestriction: bool
    supportsAttachments: bool


# cloud_api would need Meta's media upload for files; it sends media by link instead.
CAPABILITIES = {
    "sandbox": Capabilities(
        supportsTemplates=False,
        supportsButtons=False,
        hasWindowRestriction=False,
        supportsAttachments=True,
    ),
    "cloud_api": Capabilities(
        supportsTemplates=True,
        supportsButtons=True,
        hasWindowRestriction=True,
        supportsAttachments=False,
    ),
    "waha": Capabilities(
        supportsTemplates=False,
        supportsButtons=False,
        hasWindowRestriction=False,
        supportsAttachments=True,
    ),
    "smtp": Capabilities(
        supportsTemplates=False,
        supportsButtons=False,
        hasWindowRestriction=False,
        supportsAttachments=True,
    ),
}

CHANNELS: dict[str, Channel] = {
    "sandbox": "whatsapp",
    "cloud_api": "whatsapp",
    "waha": "whatsapp",
    "smtp": "email",
}
# What an e-mail can carry: text (with subject and html), and files linked or uploaded.
EMAIL_KINDS = frozenset({"text", "image", "document", "attachment"})


def channel_of(provider: str) -> Channel:
    """The channel a provider sends on (WhatsApp for every provider but `smtp`)."""
    return CHANNELS.get(provider, "whatsapp")


def providers_of(channel: Channel) -> list[str]:
    """The providers that send on `channel`."""
    return [provider for provider, own in CHANNELS.items() if own == channel]
