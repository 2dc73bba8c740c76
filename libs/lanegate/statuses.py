"""Message statuses: which ones still wait to be sent, and how tenants read them."""

from typing import Any

# Still to be sent (or being handed over right now).
WAITING = ("pending", "pending_approval", "dispatching", "sending", "deferred")
# Can still be canceled: never handed to provider-sender. Not `deferred`: a deferred message
# may follow an attempt whose outcome is unknown (the phone may have it), as the fault suite found.
CANCELABLE = ("pending", "pending_approval")
# Nor a message back in `pending` after such an attempt: provider-sender counts the attempts
# of a message it retries, and asks the provider whether it has it before sending again.
# Such a message is taken out of its queue through provider-sender (`lanegate.withdrawal`).
UNTRIED: dict[str, Any] = {"attempts": {"$in": [None, 0]}}
TRIED: dict[str, Any] = {"attempts": {"$gt": 0}}


def cancelable(match: dict[str, Any]) -> dict[str, Any]:
    """A store filter for the messages `match` picks that can still be canceled."""
    return {**match, "status": {"$in": list(CANCELABLE)}, **UNTRIED}


# Internal states read as `pending` to tenants, as in the seed's status table (`deferred`:
# provider-sender holds it until a provider limit lifts).
PUBLIC = {"dispatching": "pending", "sending": "pending", "deferred": "pending"}


def public(status: str) -> str:
    """The status a tenant sees for a stored status."""
    return PUBLIC.get(status, status)
