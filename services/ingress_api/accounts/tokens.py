"""Sign-in tokens: short JWT access tokens (HS256, keys derived from LANEGATE_SECRET_KEY, the
first signing, all checking, named by `kid`) and refresh tokens rotated on each use."""

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import jwt

from lanegate.errors import Unauthorized, Unavailable
from lanegate.events import utcnow
from lanegate.secrets import Keyring
from lanegate.store import Document, Store

ACCESS_TTL = timedelta(minutes=15)
REFRESH_TTL = timedelta(days=30)
ALGORITHM = "HS256"
_LABEL = "lanegate access tokens"


def _kid(key: bytes) -> str:
    return hashlib.sha256(key).hexdigest()[:16]


@dataclass(frozen=True)
class AccessClaims:
    """What a valid access token says."""

    user_id: str
    tenant_id: str
    session_id: str


class TokenKeys:
    """The access-token keys: the first signs, every one checks (a rotation keeps tokens)."""

    def __init__(self, keyring: Keyring) -> None:
        self._keys = {_kid(k): k for k in keyring.derived_keys(_LABEL)}
        self._signing = next(iter(self._keys.items()), None)

    def issue(self, user: Document, session_id: str) -> str:
        """A signed access token for `user`, valid for ACCESS_TTL."""
        if self._signing is None:
            raise Unavailable("Sign-in needs LANEGATE_SECRET_KEY")
        kid, key = self._signing
        now = utcnow()
        claims = {
            "sub": user["_id"],
            "tid": user["tenantId"],
            "sid": session_id,
            "iat": now,
            "exp": now + ACCESS_TTL,
        }
        return jwt.encode(claims, key, algorithm=ALGORITHM, headers={"kid": kid})

    def check(self, token: str) -> AccessClaims:
        """The claims of a token signed by one of the keys and not expired; 401 otherwise."""
        try:
            kid = jwt.get_unverified_header(token).get("kid")
            key = self._keys.get(kid) if isinstance(kid, str) else None
            if key is None:
                raise Unauthorized("Invalid access token")
            # Only HS256 is accepted: a token saying `none` or another algorithm fails here.
            claims: dict[str, Any] = jwt.decode(
                token, key, algorithms=[ALGORITHM], options={"require": ["exp", "sub", "tid"]}
            )
        except jwt.ExpiredSignatureError as e:
            raise Unauthorized("Access token expired") from e
        except jwt.InvalidTokenError as e:
            raise Unauthorized("Invalid access token") from e
        parts = (claims.get("sub"), claims.get("tid"), claims.get("sid"))
        if not all(isinstance(p, str) for p in parts):
            raise Unauthorized("Invalid access token")
        return AccessClaims(*(str(p) for p in parts))


def looks_like_access_token(credential: str) -> bool:
    """Whether a presented credential is a JWT rather than an API key (keys have no dots)."""
    return credential.count(".") == 2


def hashed_refresh(token: str) -> str:
    """The stored form of a refresh token."""
    return hashlib.sha256(token.encode()).hexdigest()


async def new_refresh_token(store: Store, user: Document, session_id: str) -> str:
    """A refresh token of the session, stored as its hash."""
    token = "lgr_" + secrets.token_urlsafe(32)
    now = utcnow()
    await store.refresh_tokens.insert_one(
        {
            "_id": hashed_refresh(token),
            "sessionId": session_id,
            "userId": user["_id"],
            "usedAt": None,
            "expiresAt": now + REFRESH_TTL,
        }
    )
    return token


async def use_refresh_token(store: Store, token: str) -> Document:
    """Spend a refresh token once; returns it. A token used before means it leaked: its whole
    session is revoked. 401 for an unknown, spent, expired or revoked one."""
    now = utcnow()
    spent = await store.refresh_tokens.find_one_and_update(
        {"_id": hashed_refresh(token), "usedAt": None, "expiresAt": {"$gt": now}},
        {"$set": {"usedAt": now}},
    )
    if spent is None:
        reused = await store.refresh_tokens.find_one({"_id": hashed_refresh(token)})
        if reused is not None:
            await revoke_session(store, reused["sessionId"])
        raise Unauthorized("Invalid refresh token")
    if await session_revoked(store, spent["sessionId"]):
        raise Unauthorized("Invalid refresh token")
    return spent


async def start_session(store: Store, user: Document) -> str:
    """A new sign-in session of the user; its id."""
    session_id = secrets.token_hex(12)
    await store.user_sessions.insert_one(
        {
            "_id": session_id,
            "userId": user["_id"],
            "tenantId": user["tenantId"],
            "createdAt": utcnow(),
            "revokedAt": None,
            "expiresAt": utcnow() + REFRESH_TTL,
        }
    )
    return session_id


async def revoke_session(store: Store, session_id: str) -> None:
    """End a session: its access and refresh tokens answer 401 from now on."""
    await store.user_sessions.update_one(
        {"_id": session_id, "revokedAt": None}, {"$set": {"revokedAt": utcnow()}}
    )


async def session_revoked(store: Store, session_id: str) -> bool:
    """Whether the session is revoked or gone."""
    session = await store.user_sessions.find_one({"_id": session_id}, {"revokedAt": 1})
    return session is None or session.get("revokedAt") is not None
