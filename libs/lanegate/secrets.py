"""Secrets at rest: webhook secrets and provider tokens sealed with `LANEGATE_SECRET_KEY`."""

import hashlib
import hmac
from collections.abc import Callable, Mapping
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

PREFIX = "enc:v1:"
# Marks a value stored without a key that would otherwise read as sealed or marked.
PLAIN_PREFIX = "plain:v1:"
# The operator key guards every tenant; shorter ones are guessable.
MIN_ADMIN_KEY_LENGTH = 32
# The providerConfig fields that are secrets (cloud_api and waha).
SECRET_FIELDS = frozenset(
    {"accessToken", "appSecret", "verifyToken", "apiKey", "hmacKey", "password"}
)


# A sealed value is `enc:v1:` and a Fernet token (AES-128-CBC with HMAC-SHA256).
# `LANEGATE_SECRET_KEY` holds one or more comma-separated Fernet keys: the first seals, every
# one opens, so a key is rotated by putting the new one first. A value without the prefix is
# plaintext written before sealing existed (or while no key was set); it opens as itself until
# ingress-api seals it at start. A tenant's secret is never trusted to be sealed: with a key it
# is sealed whatever it looks like, and without one a value that looks sealed is stored behind
# `plain:v1:`, so a look-alike can neither pass for another secret nor stop a service that
# later fails to open it.
class SecretKeyError(Exception):
    """Raised when `LANEGATE_SECRET_KEY` is malformed, missing or wrong for a sealed secret,
    or `LANEGATE_ADMIN_KEY` is too short."""


def require_keys(secret_key: str, admin_key: str, *, development: bool) -> None:
    """Refuse a short operator key, and a missing sealing key outside development."""
    if admin_key and len(admin_key) < MIN_ADMIN_KEY_LENGTH:
        raise SecretKeyError(
            f"LANEGATE_ADMIN_KEY must be at least {MIN_ADMIN_KEY_LENGTH} characters "
            "(make one with: python -c 'import secrets; print(secrets.token_urlsafe(32))')"
        )
    # Only separators (",") would parse as no key at all and store secrets in plaintext.
    if not any(key.strip() for key in secret_key.split(",")) and not development:
        raise SecretKeyError(
            "LANEGATE_SECRET_KEY is not set: set it (see .env.example), or set "
            "LANEGATE_ENV=development to store secrets unencrypted on a development machine"
        )


def new_key() -> str:
    """A fresh key for `LANEGATE_SECRET_KEY`."""
    return Fernet.generate_key().decode()


def is_sealed(value: str) -> bool:
    """True when a stored value is sealed rather than plaintext."""
    return value.startswith(PREFIX)


class Keyring:
    """The keys of `LANEGATE_SECRET_KEY`; with none, values are stored as given."""

    def __init__(self, keys: str) -> None:
        names = [k.strip() for k in keys.split(",") if k.strip()]
        try:
            self._keys = [Fernet(k) for k in names]
        except ValueError as e:
            raise SecretKeyError(
                "LANEGATE_SECRET_KEY must be comma-separated Fernet keys "
                "(32 url-safe base64-encoded bytes each)"
            ) from e
        self._all = MultiFernet(self._keys) if self._keys else None
        self._names = names

    @property
    def enabled(self) -> bool:
        return self._all is not None

    def derived_keys(self, label: str) -> list[bytes]:
        """One key per configured key, in order, each HMAC-derived for `label` alone, so a
        key that signs internal events never doubles as a sealing key."""
        return [hmac.new(n.encode(), label.encode(), hashlib.sha256).digest() for n in self._names]

    def encrypt(self, plain: str) -> str:
        """The stored form of a secret: sealed with the first key (with no key, as given, or
        marked when it looks sealed or marked)."""
        if self._all is None:
            return PLAIN_PREFIX + plain if plain.startswith((PREFIX, PLAIN_PREFIX)) else plain
        return PREFIX + self._all.encrypt(plain.encode()).decode()

    def decrypt(self, stored: str) -> str:
        """The plain secret from its stored form; plaintext passes through."""
        if stored.startswith(PLAIN_PREFIX):
            return stored[len(PLAIN_PREFIX) :]
        if not is_sealed(stored):
            return stored
        if self._all is None:
            raise SecretKeyError("A stored secret is encrypted but LANEGATE_SECRET_KEY is not set")
        try:
            return self._all.decrypt(stored[len(PREFIX) :].encode()).decode()
        except InvalidToken as e:
            raise SecretKeyError(
                "No key in LANEGATE_SECRET_KEY opens a stored secret (wrong or removed key)"
            ) from e

    def reseal(self, stored: str) -> str:
        """`stored` sealed with the first key: plaintext gets sealed, an older key's token is
        rotated, and a current one comes back unchanged."""
        if self._all is None:
            return stored
        if not is_sealed(stored):
            return self.encrypt(self.decrypt(stored))
        token = stored[len(PREFIX) :].encode()
        try:
            self._keys[0].decrypt(token)
            return stored
        except InvalidToken:
            pass
        try:
            return PREFIX + self._all.rotate(token).decode()
        except InvalidToken as e:
            raise SecretKeyError("No key in LANEGATE_SECRET_KEY opens a stored secret") from e

    def seal_config(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """A providerConfig with its secret fields sealed."""
        return {k: self._apply_to_secret(k, v, self.encrypt) for k, v in config.items()}

    def open_config(self, config: Mapping[str, Any] | None) -> dict[str, Any]:
        """A providerConfig with its secret fields in plain form, for the one call that uses it."""
        return {k: self._apply_to_secret(k, v, self.decrypt) for k, v in (config or {}).items()}

    @staticmethod
    def _apply_to_secret(key: str, value: Any, how: Callable[[str], str]) -> Any:
        return how(value) if key in SECRET_FIELDS and isinstance(value, str) and value else value
