"""The `cloud_api` provider: Meta's WhatsApp Cloud API over the Graph API; Meta's error code,
never its text, decides what happens to a failed send."""

import hashlib
import hmac
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import aiohttp

from lanegate.attachments import Attachment
from lanegate.events import utcnow
from lanegate.outbound import Outbound
from lanegate.providers import ProviderError, Report, Sent, Session, Unsupported
from lanegate.providers.cloud_callbacks import parse_callback_body
from lanegate.providers.cloud_payloads import message_payload
from lanegate.providers.graph import GraphError, graph_request
from lanegate.secrets import Keyring
from lanegate.store import Document

SIGNATURE_HEADER = "X-Hub-Signature-256"

THROUGHPUT = 130429
PAIR_RATE = 131056
WINDOW_CLOSED = 131047
# Codes that say the number itself is at risk: stop sending from it for a while.
PAUSE_SECONDS = {131048: 3600, 131049: 86400, 368: 86400, 131031: 86400}
PAUSE_REASONS = {
    131048: "spam_rate_limit",
    131049: "ecosystem_engagement_limit",
    368: "policy_violation_block",
    131031: "account_locked",
}
FAIL_CODES = frozenset({131026, 131051})
RETRY_CODES = frozenset({1, 2, 131000})
TEMPLATE_REQUIRED = (
    "The 24-hour customer service window with this contact is closed: "
    "send an approved template message instead"
)


# Callbacks are signed with the app secret (`X-Hub-Signature-256`) and carry statuses and
# inbound messages for every `entry[]` and `changes[]`.
def hub_signature(body: bytes, app_secret: str) -> str:
    """`sha256=<hex HMAC-SHA256 of the raw body>`, as Meta signs callbacks."""
    return "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


def verify_hub_signature(body: bytes, app_secret: str, header: str | None) -> bool:
    """Check an `X-Hub-Signature-256` header in constant time."""
    # Compared as bytes: a str with non-ASCII characters would raise instead of failing.
    expected = hub_signature(body, app_secret).encode()
    return bool(header) and hmac.compare_digest(expected, (header or "").encode())


def classify(code: int, title: str, *, http_status: int = 400) -> ProviderError:
    """The sender's course for one of Meta's error codes."""
    details = [{"code": code, "title": title}]
    text = f"Meta error {code}: {title}"
    if code == THROUGHPUT:
        return ProviderError(
            str(code), text, retryable=True, action="backoff_number", details=details
        )
    if code == PAIR_RATE:
        return ProviderError(
            str(code), text, retryable=True, action="delay_recipient", details=details
        )
    if code == WINDOW_CLOSED:
        return ProviderError(str(code), TEMPLATE_REQUIRED, retryable=False, details=details)
    if code in PAUSE_SECONDS:
        return ProviderError(
            str(code),
            text,
            retryable=False,
            action="pause",
            until=utcnow() + timedelta(seconds=PAUSE_SECONDS[code]),
            details=details,
        )
    if code in FAIL_CODES or 132000 <= code <= 132999:
        return ProviderError(str(code), text, retryable=False, details=details)
    if code in RETRY_CODES or http_status >= 500:
        return ProviderError(str(code), text, retryable=True, details=details)
    return ProviderError(str(code), text, retryable=False, details=details)


def error_from(http_status: int, body: Any) -> ProviderError:
    """A Graph API error answer as a ProviderError, by its `error.code`."""
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and isinstance(error.get("code"), int):
        return classify(error["code"], str(error.get("message", "")), http_status=http_status)
    retryable = http_status >= 500 or http_status == 429
    return ProviderError(f"http_{http_status}", "Graph API error", retryable=retryable)


def pause_of(errors: list[dict[str, Any]] | None) -> tuple[str, datetime] | None:
    """The pause a failed status's errors call for, if any."""
    for error in errors or []:
        code = error.get("code")
        if isinstance(code, int) and code in PAUSE_SECONDS:
            return PAUSE_REASONS[code], utcnow() + timedelta(seconds=PAUSE_SECONDS[code])
    return None


class CloudApi:
    """The `cloud_api` provider; one HTTP client shared by every instance."""

    name = "cloud_api"
    records_sends = False

    def __init__(self, http: Outbound, *, timeout: float, keyring: Keyring) -> None:
        self._keyring = keyring
        self._http = http
        self._timeout = aiohttp.ClientTimeout(total=timeout)

    async def _call(
        self, method: str, config: Document, path: str, body: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        try:
            return await graph_request(
                self._http, method, config, path, limit=self._timeout, body=body
            )
        except GraphError as e:
            raise error_from(e.http_status, e.body) from e

    async def send(
        self,
        instance: Document,
        message: Document,
        text: str | None,
        *,
        files: Sequence[Attachment] = (),
    ) -> Sent:
        if files:
            raise ProviderError(
                "attachments_unsupported",
                "cloud_api sends media by link: use /message/image, /message/document, ...",
                retryable=False,
            )
        config = self._keyring.open_config(instance["providerConfig"])
        answer = await self._call(
            "POST", config, f"{config['phoneNumberId']}/messages", message_payload(message, text)
        )
        try:
            return Sent(answer["messages"][0]["id"])
        except (KeyError, IndexError, TypeError) as e:
            raise ProviderError("bad_answer", "No message id in the answer", retryable=False) from e

    async def find_sent(self, instance: Document, message_id: str) -> Sent | None:
        # The Graph API cannot look a message up by our id: an interrupted send stays unknown.
        return None

    async def start(self, instance: Document) -> Session:
        return await self.status(instance)

    async def status(self, instance: Document) -> Session:
        config = self._keyring.open_config(instance["providerConfig"])
        answer = await self._call(
            "GET", config, f"{config['phoneNumberId']}?fields=display_phone_number,quality_rating"
        )
        number = "".join(ch for ch in str(answer.get("display_phone_number", "")) if ch.isdigit())
        return Session("open", number or None, answer.get("quality_rating"))

    async def qr(self, instance: Document) -> bytes:
        raise Unsupported(self.name, "QR code: the number is linked by its access token")

    async def pairing_code(self, instance: Document, phone_number: str) -> str:
        raise Unsupported(self.name, "pairing code: the number is linked by its access token")

    async def logout(self, instance: Document) -> None:
        raise Unsupported(self.name, "logout: revoke the access token at Meta instead")

    def verify_callback(self, instance: Document, body: bytes, headers: Mapping[str, str]) -> bool:
        secret = self._keyring.open_config(instance.get("providerConfig")).get("appSecret", "")
        return bool(secret) and verify_hub_signature(body, secret, headers.get(SIGNATURE_HEADER))

    def parse_callback(self, instance: Document, body: bytes) -> list[Report]:
        own = (instance.get("providerConfig") or {}).get("phoneNumberId")
        return parse_callback_body(body, str(own) if own is not None else None)

    async def close(self) -> None:
        """The shared HTTP client is closed by its owner."""
