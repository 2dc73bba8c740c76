"""WhatsApp providers behind one interface; provider-sender is their only caller."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol

from pydantic import ValidationError

from lanegate.attachments import Attachment
from lanegate.events import InstanceStateName, PauseScope
from lanegate.store import Document

# What provider-sender does with a failed send: try again later, give up, slow the whole
# number down, hold only this recipient, pause the instance, or hold contacts who never wrote.
Action = Literal["retry", "fail", "backoff_number", "delay_recipient", "pause", "reach_out_lock"]


@dataclass(frozen=True)
class Sent:
    """The provider took a message; its id there identifies later receipts."""

    provider_message_id: str


class ProviderError(Exception):
    """Raised when a provider refuses or fails a call; `action` says what the sender should do."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        retryable: bool,
        action: Action | None = None,
        after: float | None = None,
        until: datetime | None = None,
        details: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.retryable = retryable
        self.action: Action = action or ("retry" if retryable else "fail")
        self.after = after
        self.until = until
        self.details = details


class CallbackRefused(ValueError):
    """Raised when a callback body is not its provider's shape (not JSON, or a field of the
    wrong type); `issues` names each bad field by its path in the body."""

    def __init__(self, issues: Sequence[tuple[Sequence[str | int], str]]) -> None:
        super().__init__("; ".join(f"{'.'.join(map(str, p))}: {m}" for p, m in issues))
        self.issues = [(list(path), message) for path, message in issues]

    @classmethod
    def from_pydantic(
        cls, error: ValidationError, prefix: Sequence[str | int] = ()
    ) -> "CallbackRefused":
        """Every error pydantic found, each at its path under `prefix`."""
        return cls(
            [
                ([*prefix, *e["loc"]], str(e["msg"]).removeprefix("Value error, "))
                for e in error.errors()
            ]
        )


class NotConnected(ProviderError):
    """Raised when the instance's session is not open, so the message must wait for it."""

    def __init__(self, instance_name: str) -> None:
        super().__init__("not_connected", f"{instance_name} is not connected", retryable=True)


class Unsupported(ProviderError):
    """Raised when a provider has no such operation (a Cloud API number has no QR code)."""

    def __init__(self, provider: str, operation: str) -> None:
        super().__init__(
            "unsupported", f"The {provider} provider has no {operation}", retryable=False
        )


@dataclass(frozen=True)
class Session:
    """A session's state as the provider reports it."""

    state: InstanceStateName
    phone_number: str | None = None
    provider_status: str | None = None


@dataclass(frozen=True)
class Receipt:
    """A message we sent changed state at the provider."""

    provider_message_id: str
    status: Literal["sent", "delivered", "read", "failed"]
    errors: list[dict[str, Any]] | None = None


@dataclass(frozen=True)
class Inbound:
    """Somebody wrote to the instance's number."""

    sender: str
    push_name: str | None
    message_type: str
    text: str | None
    provider_message_id: str
    sent_at: int
    content: dict[str, Any] | None = None


@dataclass(frozen=True)
class StateChange:
    """The session's connection changed; `reported_at` is the provider's own time of it."""

    state: InstanceStateName
    phone_number: str | None = None
    provider_status: str | None = None
    reported_at: datetime | None = None


@dataclass(frozen=True)
class TemplateUpdate:
    """Meta changed the status of one of the account's message templates."""

    waba_id: str
    meta_template_id: str
    name: str
    language: str
    status: str
    reason: str | None = None
    category: str | None = None
    # Meta's time of the report (its entry's `time`): an older one must not undo a newer.
    reported_at: datetime | None = None


Report = Receipt | Inbound | StateChange | TemplateUpdate


class Callbacks(Protocol):
    """Where a provider reports what happened on its side, for provider-sender to normalise."""

    async def state(
        self,
        instance: Document,
        state: InstanceStateName,
        *,
        phone_number: str | None = None,
        device: str | None = None,
    ) -> None: ...

    async def receipt(
        self,
        instance: Document,
        provider_message_id: str,
        status: str,
        *,
        errors: list[dict[str, Any]] | None = None,
    ) -> bool: ...

    async def paused(
        self,
        instance: Document,
        reason: str,
        *,
        until: datetime | None = None,
        scope: PauseScope = "instance",
    ) -> None: ...

    async def inbound(
        self,
        instance: Document,
        *,
        sender: str,
        push_name: str | None,
        text: str | None,
        provider_message_id: str,
        sent_at: int,
        message_type: str = "conversation",
        content: dict[str, Any] | None = None,
    ) -> None: ...


class Provider(Protocol):
    """What provider-sender needs from a WhatsApp provider."""

    name: str
    # True when `find_sent` knows every message the provider got, so None means it never did.
    records_sends: bool

    async def send(
        self,
        instance: Document,
        message: Document,
        text: str | None,
        *,
        files: Sequence[Attachment] = (),
    ) -> Sent:
        """Hand a message (and an attachment message's files) to the provider; raises
        ProviderError."""
        ...

    async def find_sent(self, instance: Document, message_id: str) -> Sent | None:
        """The provider's record of our message, if it has one (to settle a crash mid-send)."""
        ...

    async def start(self, instance: Document) -> Session:
        """Create or start the instance's session at the provider."""
        ...

    async def qr(self, instance: Document) -> bytes:
        """The PNG QR code a phone scans to link the session."""
        ...

    async def pairing_code(self, instance: Document, phone_number: str) -> str:
        """A code the phone's owner types to link the session without scanning."""
        ...

    async def status(self, instance: Document) -> Session:
        """The session's state as the provider sees it now."""
        ...

    async def logout(self, instance: Document) -> None:
        """Unlink the session; the instance needs a new QR scan afterwards."""
        ...

    def verify_callback(self, instance: Document, body: bytes, headers: Mapping[str, str]) -> bool:
        """True when a callback's signature proves it came from the provider."""
        ...

    def parse_callback(self, instance: Document, body: bytes) -> list[Report]:
        """The reports a verified callback body carries, in order."""
        ...

    async def close(self) -> None:
        """Release what the provider holds (sessions, timers)."""
        ...
