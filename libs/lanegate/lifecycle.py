"""A message's statuses, the sets they fall into, and how tenants read them."""

from enum import StrEnum
from typing import Any


class Status(StrEnum):
    """Where a stored message is on its way from accepted to an outcome."""

    PENDING_APPROVAL = "pending_approval"
    PENDING = "pending"
    DISPATCHING = "dispatching"
    SENDING = "sending"
    DEFERRED = "deferred"
    SENT = "sent"
    FAILED = "failed"
    CANCELED = "canceled"
    REJECTED = "rejected"
    EXPIRED = "expired"


# Still to be sent (or being handed over right now).
WAITING = (
    Status.PENDING,
    Status.PENDING_APPROVAL,
    Status.DISPATCHING,
    Status.SENDING,
    Status.DEFERRED,
)
# What the scheduler keeps in its lines: every waiting message but a deferred one, which
# provider-sender holds until a provider limit lifts.
PLANNED = (Status.PENDING, Status.DISPATCHING, Status.SENDING, Status.PENDING_APPROVAL)
# Handed to provider-sender, whose claim decides what comes of it.
HANDED_OVER = (Status.DISPATCHING, Status.SENDING)
# Where provider-sender leaves a message it gives back to the scheduler's line.
HANDED_BACK = (Status.PENDING, Status.DEFERRED)
# What came of a send: the only outcomes provider-sender records and reports.
SEND_OUTCOMES = (Status.SENT, Status.FAILED)
# Never to change again.
FINAL = (Status.SENT, Status.FAILED, Status.CANCELED, Status.REJECTED, Status.EXPIRED)
# Can still be canceled: never handed to provider-sender. Not `deferred`: a deferred message
# may follow an attempt whose outcome is unknown (the phone may have it).
CANCELABLE = (Status.PENDING, Status.PENDING_APPROVAL)
# Nor a message back in `pending` after such an attempt: provider-sender counts the attempts
# of a message it retries, and asks the provider whether it has it before sending again.
# Such a message is taken out of its queue through provider-sender (`lanegate.withdrawal`).
UNTRIED: dict[str, Any] = {"attempts": {"$in": [None, 0]}}
TRIED: dict[str, Any] = {"attempts": {"$gt": 0}}


def cancelable(match: dict[str, Any]) -> dict[str, Any]:
    """A store filter for the messages `match` picks that can still be canceled."""
    return {**match, "status": {"$in": list(CANCELABLE)}, **UNTRIED}


# Internal states read as `pending` to tenants (`deferred`: provider-sender holds it until a
# provider limit lifts).
PUBLIC: dict[str, str] = {
    Status.DISPATCHING: Status.PENDING,
    Status.SENDING: Status.PENDING,
    Status.DEFERRED: Status.PENDING,
}


def public(status: str) -> str:
    """The status a tenant sees for a stored status."""
    return PUBLIC.get(status, status)
