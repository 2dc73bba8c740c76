"""One-time codes: drawing them, their keyed hashes, and the masked message that carries one."""

import hashlib
import hmac
import secrets
from typing import Any

from lanegate.secrets import Keyring

# What stands for the code wherever the carrying message is stored or shown.
MASK = "******"
# Where the text a tenant writes puts the code.
PLACEHOLDER = "{{code}}"
# The carrying message's content field holding the code sealed, opened only to send it.
SEALED_CODE = "otpCode"
# Keys derived for code hashes alone, so no other use of LANEGATE_SECRET_KEY shares them.
HASH_LABEL = "lanegate otp code hash v1"
# Without LANEGATE_SECRET_KEY (development only) codes are still hashed, with a fixed key.
DEVELOPMENT_HASH_KEY = hashlib.sha256(HASH_LABEL.encode()).digest()
# The content fields where the mask stands for the code (a text, a mail's subject, a
# template's parameters).
CARRIES_CODE = frozenset({"text", "subject", "components"})


def draw_code(length: int) -> str:
    """A fresh code of `length` decimal digits from the system's secure random source."""
    return "".join(secrets.choice("0123456789") for _ in range(length))


def hash_keys(keyring: Keyring) -> list[bytes]:
    """The keys code hashes are made with: the first makes new ones, every one checks."""
    return keyring.derived_keys(HASH_LABEL) or [DEVELOPMENT_HASH_KEY]


def code_hash(key: bytes, otp_id: str, code: str) -> str:
    """The stored form of `code` for the OTP `otp_id` (bound to it, so equal codes of two OTPs
    hash apart)."""
    return hmac.new(key, f"{otp_id}:{code}".encode(), hashlib.sha256).hexdigest()


def code_matches(keys: list[bytes], otp_id: str, code: str, stored: str) -> bool:
    """Whether `code` is the one hashed into `stored`, compared in constant time under every
    key (a rotated key still checks codes drawn before the rotation)."""
    found = False
    for key in keys:
        found |= hmac.compare_digest(code_hash(key, otp_id, code), stored)
    return found


def masked_text(text: str) -> str:
    """The tenant's text as stored and shown: the code's place holds the mask."""
    return text.replace(PLACEHOLDER, MASK)


def revealed(content: dict[str, Any], code: str) -> dict[str, Any]:
    """The content to hand to the provider: the mask in the text or the template's parameters
    replaced by the code, the sealed code left out."""
    return {
        k: replace_mask(v, code) if k in CARRIES_CODE else v
        for k, v in content.items()
        if k != SEALED_CODE
    }


def replace_mask(value: Any, code: str) -> Any:
    """`value` with the mask in each of its strings replaced by `code`."""
    if isinstance(value, str):
        return value.replace(MASK, code)
    if isinstance(value, list):
        return [replace_mask(v, code) for v in value]
    if isinstance(value, dict):
        return {k: replace_mask(v, code) for k, v in value.items()}
    return value
