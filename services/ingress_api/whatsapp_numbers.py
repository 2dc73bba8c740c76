"""An instance as the WhatsApp-number listings show it: provider, number, connection and what
the provider supports."""

from typing import Any

from lanegate.providers.capabilities import CAPABILITIES
from lanegate.store import Document

CONNECTION = {"open": "connected", "connecting": "connecting", "close": "disconnected"}


def whatsapp_number(instance: Document) -> dict[str, Any]:
    """An instance as a WhatsApp number, with what its provider supports."""
    capabilities = CAPABILITIES[instance["provider"]]
    return {
        "id": instance["_id"],
        "provider": instance["provider"],
        "display_name": instance.get("displayName"),
        "phone_number": instance.get("phoneNumber"),
        "is_primary": bool(instance.get("isPrimary")),
        "status": CONNECTION.get(instance.get("state", "close"), "disconnected"),
        "supports_templates": capabilities.supportsTemplates,
        "supports_buttons": capabilities.supportsButtons,
        "has_window_restriction": capabilities.hasWindowRestriction,
    }
