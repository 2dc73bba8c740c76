"""The errors a client can cause, each mapped to one HTTP answer in the API's error shape."""

from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError

from lanegate.phones import ISSUE_CODE as INVALID_PHONE_NUMBER

# Issues a client can tell apart by `code`: their message starts with "<code>: ".
ISSUE_CODES = (INVALID_PHONE_NUMBER,)


class ApiError(Exception):
    """Raised when a request cannot be served; carries the status and the JSON body."""

    status = 500
    code = "INTERNAL_ERROR"

    def __init__(
        self,
        message: str,
        *,
        headers: dict[str, str] | None = None,
        issues: Sequence[tuple[Sequence[str | int], str]] = (),
    ) -> None:
        super().__init__(message)
        self.message = message
        self.headers = headers or {}
        self.issues = [_issue(path, text) for path, text in issues]

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.message, "code": self.code}
        if self.issues:
            body["issues"] = self.issues
        return body


class InvalidInput(ApiError):
    """Raised when a request body, query or path fails validation."""

    status = 400
    code = "VALIDATION_ERROR"

    def __init__(self, issues: Sequence[tuple[Sequence[str | int], str]]) -> None:
        super().__init__("Validation error", issues=issues)

    @classmethod
    def from_pydantic(cls, error: ValidationError) -> "InvalidInput":
        """Turn pydantic's errors into the error body's `issues` list."""
        return cls([(e["loc"], _message(e)) for e in error.errors()])

    def body(self) -> dict[str, Any]:
        return {"error": self.message, "issues": self.issues}


class Unauthorized(ApiError):
    """Raised when the API key is missing or unknown."""

    status = 401
    code = "UNAUTHORIZED"


class KeyExpired(Unauthorized):
    """Raised when an API key is past its `expiresAt`."""

    code = "KEY_EXPIRED"


class Forbidden(ApiError):
    """Raised when the key is valid but the resource belongs to another tenant."""

    status = 403
    code = "FORBIDDEN"


class InsufficientScope(Forbidden):
    """Raised when the API key does not carry the scope the endpoint needs."""

    code = "INSUFFICIENT_SCOPE"


class NamedLimit(ApiError):
    """An error over one of a tenant's limits, which its body names in `limit`."""

    limit = ""

    def body(self) -> dict[str, Any]:
        return super().body() | {"limit": self.limit}


class InstanceQuotaExceeded(NamedLimit, Forbidden):
    """Raised when a tenant already has as many instances as its quota allows."""

    code = "QUOTA_EXCEEDED"
    limit = "maxInstances"


class BulkSizeExceeded(NamedLimit, Forbidden):
    """Raised when a bulk send holds more messages than the tenant's plan allows in one."""

    code = "QUOTA_EXCEEDED"
    limit = "maxBulkSize"


class NotFound(ApiError):
    """Raised when the instance or message does not exist for this tenant."""

    status = 404
    code = "NOT_FOUND"


class Conflict(ApiError):
    """Raised when the resource already exists."""

    status = 409
    code = "CONFLICT"


class InUse(Conflict):
    """Raised when a resource others still refer to is to be deleted; says how many do."""

    def __init__(self, message: str, count: int) -> None:
        super().__init__(message)
        self.count = count

    def body(self) -> dict[str, Any]:
        return super().body() | {"count": self.count}


class Unprocessable(ApiError):
    """Raised when a well-formed request cannot be carried out in the resource's current state."""

    status = 422
    code = "UNPROCESSABLE"


class WhatsAppNotConfigured(Unprocessable):
    """Raised when an instance has no WhatsApp Business Account (id and token) for templates."""

    code = "WHATSAPP_NOT_CONFIGURED"


class WhatsAppApiError(ApiError):
    """Raised when Meta failed a template request; answered as a 500 on purpose."""

    status = 500
    code = "WHATSAPP_API_ERROR"


class TargetNotAllowed(Unprocessable):
    """Raised when a URL the gateway would call names a private, loopback or link-local address."""

    code = "TARGET_NOT_ALLOWED"

    def __init__(
        self,
        issues: Sequence[tuple[Sequence[str | int], str]],
        message: str = "The gateway only calls public addresses",
    ) -> None:
        super().__init__(message, issues=issues)


class BadGateway(ApiError):
    """Raised when the WhatsApp provider answered a session request with an error."""

    status = 502
    code = "PROVIDER_ERROR"


class GatewayTimeout(ApiError):
    """Raised when provider-sender did not answer a session request in time."""

    status = 504
    code = "PROVIDER_TIMEOUT"


class PayloadTooLarge(ApiError):
    """Raised when the request body is over the configured limit."""

    status = 413
    code = "PAYLOAD_TOO_LARGE"


class UnsupportedMediaType(ApiError):
    """Raised when a body comes in a content type the endpoint does not take."""

    status = 415
    code = "UNSUPPORTED_MEDIA_TYPE"


class RateLimited(ApiError):
    """Raised when an API key went over its requests-per-minute limit."""

    status = 429
    code = "RATE_LIMITED"


class WhatsAppRateLimited(RateLimited):
    """Raised when Meta throttles an account's template requests; Retry-After says when to ask."""

    code = "WHATSAPP_RATE_LIMITED"


class MessageQuotaExceeded(NamedLimit, RateLimited):
    """Raised when a send would take a tenant past its messages for the day."""

    code = "QUOTA_EXCEEDED"
    limit = "maxMessagesPerDay"


class MonthlyMessageQuotaExceeded(MessageQuotaExceeded):
    """Raised when a send would take a tenant past its messages for the calendar month."""

    limit = "maxMessagesPerMonth"


class AttachmentTooLarge(NamedLimit, PayloadTooLarge):
    """Raised when an uploaded file is larger than the tenant may send."""

    limit = "maxAttachmentBytes"


class OtpSendsExceeded(NamedLimit, RateLimited):
    """Raised when a number already took as many codes in the last hour as the tenant allows."""

    limit = "otpSendsPerHour"


class OtpLiveCodesExceeded(NamedLimit, RateLimited):
    """Raised when a tenant already has as many codes waiting to be verified as it may."""

    limit = "otpMaxLiveCodes"


class TenantRateLimited(NamedLimit, RateLimited):
    """Raised when a tenant's keys together went over its requests-per-minute limit."""

    limit = "requestsPerMinute"


class Unavailable(ApiError):
    """Raised when a dependency (broker, store) cannot take the request right now."""

    status = 503
    code = "SERVICE_UNAVAILABLE"


def _issue(path: Sequence[str | int], text: str) -> dict[str, Any]:
    """One entry of `issues`, with the `code` its message starts with, if any."""
    issue: dict[str, Any] = {"path": list(path), "message": text}
    code = next((c for c in ISSUE_CODES if text.startswith(f"{c}: ")), None)
    if code is not None:
        issue["code"] = code
    return issue


def _message(error: Any) -> str:
    text = str(error["msg"])
    return text.removeprefix("Value error, ")
