"""People who sign in: a tenant's users, their roles and the scopes a role grants."""

import hashlib
import secrets
from typing import Any, Literal

from ingress_api.accounts.passwords import hash_password
from lanegate.errors import Conflict
from lanegate.events import utcnow
from lanegate.store import Document, Store
from lanegate.timestamps import iso_utc

Role = Literal["admin", "member", "viewer"]

_READS = (
    "instances:read",
    "messages:read",
    "templates:read",
    "contacts:read",
    "otp:read",
    "account:read",
    "keys:read",
    "users:read",
)
# None: every scope in the tenant.
ROLE_SCOPES: dict[str, tuple[str, ...] | None] = {
    "viewer": _READS,
    "member": (*_READS, "messages:write", "otp:write"),
    "admin": None,
}


def invitation_hash(token: str) -> str:
    """The stored form of an invitation token."""
    return hashlib.sha256(token.encode()).hexdigest()


async def create_user(
    store: Store, tenant_id: str, email: str, role: Role, password: str | None
) -> tuple[Document, str | None]:
    """Store a user with `password`, or else with an invitation; returns the user and the
    invitation token (shown once), if any. Raises DuplicateKeyError for a known e-mail."""
    invitation = None if password is not None else "lgi_" + secrets.token_urlsafe(32)
    user = {
        "_id": secrets.token_hex(8),
        "tenantId": tenant_id,
        "email": email.lower(),
        "role": role,
        "passwordHash": None if password is None else hash_password(password),
        "invitationHash": None if invitation is None else invitation_hash(invitation),
        "disabled": False,
        "createdAt": utcnow(),
    }
    await store.users.insert_one(user)
    return user, invitation


def signs_in_as_admin(user: Document) -> bool:
    """Whether the user is an admin who can sign in now (enabled, with a password)."""
    return user["role"] == "admin" and not user.get("disabled") and bool(user.get("passwordHash"))


async def refuse_losing_the_last_admin(store: Store, user: Document) -> None:
    """409 when the tenant has no admin able to sign in besides `user`, who is to be demoted,
    disabled or removed. Checked before the write and again after it (two admins changed at
    once cannot both pass: the caller then puts the user back)."""
    left = await store.users.find_one(
        {
            "_id": {"$ne": user["_id"]},
            "tenantId": user["tenantId"],
            "role": "admin",
            "disabled": {"$ne": True},
            "passwordHash": {"$ne": None},
        },
        {"_id": 1},
    )
    if left is None:
        raise Conflict(
            "The tenant's last admin who can sign in cannot be demoted, disabled or removed"
        )


def user_view(user: Document) -> dict[str, Any]:
    return {
        "id": user["_id"],
        "email": user["email"],
        "role": user["role"],
        "tenantId": user["tenantId"],
        "disabled": user.get("disabled", False),
        "invited": user.get("passwordHash") is None,
        "createdAt": iso_utc(user["createdAt"]),
    }
