"""Signing in with e-mail and password, refreshing and signing out: plain functions over the
store, so any route (this API's or a compatibility layer's) can answer with them."""

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from ingress_api.accept.counter_blocks import Block, BlockCounter
from ingress_api.accounts.passwords import password_matches
from ingress_api.accounts.tokens import (
    ACCESS_TTL,
    TokenKeys,
    hashed_refresh,
    new_refresh_token,
    revoke_session,
    start_session,
    use_refresh_token,
)
from ingress_api.auth import TOKEN_KEYS
from ingress_api.client_address import client_address
from lanegate.errors import RateLimited, Unauthorized
from lanegate.service import SETTINGS, STORE
from lanegate.store import Document, Store

THROTTLE_WINDOW_SECONDS = 300
ATTEMPTS_PER_EMAIL = 10  # failed sign-ins per e-mail in a window
ATTEMPTS_PER_ADDRESS = 30  # ... and per client address


def _counter(key: str, window: int) -> tuple[str, Document]:
    expires = datetime.fromtimestamp((window + 2) * THROTTLE_WINDOW_SECONDS, UTC)
    return f"signin:{key}:{window}", {"expiresAt": expires}


class SignInThrottle(BlockCounter):
    """Counts failed sign-ins per e-mail and per client address in the store."""

    def __init__(self) -> None:
        super().__init__("rate_limits", THROTTLE_WINDOW_SECONDS, _counter)

    async def admit(self, store: Store, email: str, address: str) -> list[tuple[str, Block]]:
        """Count one attempt, to be forgiven if it succeeds; 429 with Retry-After when the
        e-mail or the address failed too often in this window."""
        now = time.time()
        taken: list[tuple[str, Block]] = []
        for key, limit in (
            (f"email:{email}", ATTEMPTS_PER_EMAIL),
            (f"ip:{address}", ATTEMPTS_PER_ADDRESS),
        ):
            take = await self.take(store, key, limit, 1, now)
            if not take.ok:
                await self.forgive(store, taken)
                raise RateLimited(
                    "Too many failed sign-ins; try again later",
                    headers={"Retry-After": str(max(1, take.ends - int(now)))},
                )
            taken.append((key, take.block))
        return taken

    async def forgive(self, store: Store, taken: list[tuple[str, Block]]) -> None:
        """Give back the counts of an attempt that succeeded."""
        for key, block in taken:
            await self.give_back(store, key, block, 1)


SIGN_IN_THROTTLE = web.AppKey("sign_in_throttle", SignInThrottle)


@dataclass(frozen=True)
class SignIn:
    """What signing in needs besides the request: the store, token keys and the throttle."""

    store: Store
    keys: TokenKeys
    throttle: SignInThrottle
    address: str  # the client's, through the trusted proxies


def sign_in(request: web.Request) -> SignIn:
    """What the sign-in functions need, from the app."""
    address = client_address(request, request.app[SETTINGS].trusted_proxies)
    return SignIn(
        request.app[STORE], request.app[TOKEN_KEYS], request.app[SIGN_IN_THROTTLE], address
    )


async def _tokens(sign_in: SignIn, user: Document, session_id: str) -> dict[str, Any]:
    return {
        "access_token": sign_in.keys.issue(user, session_id),
        "token_type": "bearer",
        "expires_in": int(ACCESS_TTL.total_seconds()),
        "refresh_token": await new_refresh_token(sign_in.store, user, session_id),
        "user": {
            "id": user["_id"],
            "email": user["email"],
            "role": user["role"],
            "tenantId": user["tenantId"],
        },
    }


async def _usable_user(store: Store, user: Document | None) -> bool:
    if user is None or user.get("disabled"):
        return False
    tenant = await store.tenants.find_one({"_id": user["tenantId"], "disabled": {"$ne": True}})
    return tenant is not None


async def log_in(sign_in: SignIn, email: str, password: str) -> dict[str, Any]:
    """Tokens for the user with this e-mail and password; the same 401, in the same time, for
    an unknown e-mail, a wrong password or a disabled user; 429 when throttled."""
    email = email.strip().lower()
    attempt = await sign_in.throttle.admit(sign_in.store, email, sign_in.address)
    user = await sign_in.store.users.find_one({"email": email})
    matches = password_matches(None if user is None else user.get("passwordHash"), password)
    if user is None or not matches or not await _usable_user(sign_in.store, user):
        raise Unauthorized("Invalid e-mail or password")
    await sign_in.throttle.forgive(sign_in.store, attempt)
    return await _tokens(sign_in, user, await start_session(sign_in.store, user))


async def refresh(sign_in: SignIn, refresh_token: str) -> dict[str, Any]:
    """New tokens for a refresh token, which is spent (a second use revokes its session)."""
    spent = await use_refresh_token(sign_in.store, refresh_token)
    user = await sign_in.store.users.find_one({"_id": spent["userId"]})
    if user is None or not await _usable_user(sign_in.store, user):
        raise Unauthorized("Invalid refresh token")
    return await _tokens(sign_in, user, spent["sessionId"])


async def log_out(sign_in: SignIn, refresh_token: str) -> bool:
    """End the refresh token's session (used or not); whether the token was known (unknown
    ones change nothing)."""
    found = await sign_in.store.refresh_tokens.find_one(
        {"_id": hashed_refresh(refresh_token)}, {"sessionId": 1}
    )
    if found is None:
        return False
    await revoke_session(sign_in.store, found["sessionId"])
    return True
