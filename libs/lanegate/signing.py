"""Webhook signatures (the seed's hex HMAC header and the Standard Webhooks trio), and the
seal ingress-api puts on the provider callbacks it publishes."""

import base64
import hashlib
import hmac
from collections.abc import Sequence


def gateway_signature(body: bytes, secret: str) -> str:
    """Hex HMAC-SHA256 of the raw body keyed by the webhook secret (`x-gateway-signature`)."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def standard_signature(webhook_id: str, timestamp: int, body: bytes, secret: str) -> str:
    """`v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">` (`webhook-signature`)."""
    signed = f"{webhook_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).digest()
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
