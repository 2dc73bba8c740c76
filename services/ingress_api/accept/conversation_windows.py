"""The Cloud API's 24-hour customer-service window, checked when a message is accepted."""

from datetime import timedelta

from lanegate.errors import Unprocessable
from lanegate.events import utcnow
from lanegate.providers.cloud_payloads import FREE_FORM
from lanegate.store import Document, Store

WINDOW = timedelta(hours=24)


async def window_open(store: Store, instance: Document, to: str, kind: str) -> bool:
    """False when a free-form Cloud API message goes to a contact who has not written in 24 h."""
    if instance.get("provider") != "cloud_api" or kind not in FREE_FORM:
        return True
    window = await store.conversation_windows.find_one(
        {"instanceName": instance["_id"], "contact": to}, {"lastInboundAt": 1}
    )
    return window is not None and window["lastInboundAt"] >= utcnow() - WINDOW


def closed_window(to: str) -> Unprocessable:
    """The refusal of a free-form message outside the 24-hour window."""
    return Unprocessable(
        f"{to} has not written to this number in the last 24 hours, so WhatsApp only "
        "allows an approved template message: send a template instead"
    )
