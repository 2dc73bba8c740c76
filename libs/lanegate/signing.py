"""Webhook signatures (the `x-gateway-signature` hex HMAC and the Standard Webhooks trio), and
the seal ingress-api puts on the provider callbacks it publishes."""

import base64
import binascii
import hashlib
import hmac
from collections.abc import Sequence
from functools import lru_cache

STANDARD_PREFIX = "whsec_"
# The key sizes the Standard Webhooks specification allows for a `whsec_` secret.
STANDARD_KEY_BYTES = (24, 64)


# `x-gateway-signature` is keyed by the secret exactly as the tenant wrote it, whatever its
# form. `webhook-signature` is keyed the way Standard Webhooks libraries read a secret: a
# `whsec_<base64>` secret by its decoded bytes, a plain one by its UTF-8 bytes (those
# libraries take it as raw bytes).
def gateway_signature(body: bytes, secret: str) -> str:
    """Hex HMAC-SHA256 of the raw body keyed by the webhook secret (`x-gateway-signature`)."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@lru_cache(maxsize=4096)
def standard_key(secret: str) -> bytes:
    """The HMAC key of `webhook-signature`: a `whsec_` secret's decoded bytes, else the secret's
    UTF-8 bytes; raises ValueError for a `whsec_` secret that is not base64 of 24 to 64 bytes."""
    if not secret.startswith(STANDARD_PREFIX):
        return secret.encode()
    encoded = secret.removeprefix(STANDARD_PREFIX).rstrip("=")
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError) as e:
        raise ValueError("A whsec_ secret must be whsec_ followed by base64") from e
    low, high = STANDARD_KEY_BYTES
    if not low <= len(key) <= high:
        raise ValueError(f"A whsec_ secret must encode {low} to {high} bytes, not {len(key)}")
    return key


def standard_signature(webhook_id: str, timestamp: int, body: bytes, secret: str) -> str:
    """`v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">` (`webhook-signature`)."""
    signed = f"{webhook_id}.{timestamp}.".encode() + body
    digest = hmac.new(standard_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signed_headers(webhook_id: str, timestamp: int, body: bytes, secret: str) -> dict[str, str]:
    """Every signature header of one delivery attempt."""
    return {
        "x-gateway-signature": gateway_signature(body, secret),
        "webhook-id": webhook_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": standard_signature(webhook_id, timestamp, body, secret),
    }


def verify_gateway_signature(body: bytes, secret: str, signature: str) -> bool:
    """Check an `x-gateway-signature` in constant time."""
    return hmac.compare_digest(gateway_signature(body, secret).encode(), signature.encode())


def event_seal(content: bytes, key: bytes) -> str:
    """Hex HMAC-SHA256 of an event's canonical content, keyed by a derived internal key."""
    return hmac.new(key, content, hashlib.sha256).hexdigest()


def verify_event_seal(content: bytes, keys: Sequence[bytes], seal: str) -> bool:
    """Whether any of `keys` (current and rotated-out) made `seal`, in constant time each."""
    given = seal.encode()
    return any(hmac.compare_digest(event_seal(content, key).encode(), given) for key in keys)
