"""Session bodies and answers: QR code, pairing code, session state."""

from typing import Literal

from pydantic import (
    BaseModel,
    Field,
)

from ingress_api.schemas.base import Body, PhoneNumber


class PairingCodeRequest(Body):
    phoneNumber: PhoneNumber


class QrCode(BaseModel):
    qrcode: str = Field(description="data:image/png;base64,...")


class PairingCode(BaseModel):
    pairingCode: str


class SessionView(BaseModel):
    instanceName: str
    state: Literal["close", "connecting", "open"]
    phoneNumber: str | None
    providerStatus: str | None
