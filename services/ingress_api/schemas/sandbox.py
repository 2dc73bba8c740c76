"""Sandbox provider controls: a scan, an inbound message, a disconnect, a ban, a fault."""

from typing import Literal

from pydantic import (
    BaseModel,
    Field,
)

from ingress_api.schemas.base import Body, PhoneNumber


class SandboxInbound(Body):
    sender: PhoneNumber = Field(alias="from")
    text: str = Field(min_length=1, max_length=4096)
    pushName: str | None = Field(None, max_length=200)


class SandboxBan(Body):
    """The simulated provider's ban signal."""

    reason: str = Field("banned by the provider (simulated)", min_length=1, max_length=500)
    seconds: float | None = Field(
        None, gt=0, le=86_400, description="The pause lifts by itself after this long"
    )


class SandboxFault(Body):
    """A simulated provider outage: for `seconds`, every send fails the way `kind` says."""

    kind: Literal["error", "timeout"] = Field(
        description="error: refused with a retryable error; timeout: the phone gets the "
        "message but the answer is lost, as in a timeout after the provider took it"
    )
    seconds: float = Field(gt=0, le=3600)


class SandboxAccepted(BaseModel):
    instanceName: str
    state: str | None = None
    accepted: bool | None = None
