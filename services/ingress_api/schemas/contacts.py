"""Contact bodies and answers."""

from typing import Literal

from pydantic import (
    BaseModel,
    Field,
)

from ingress_api.schemas.base import CURSOR_HELP, Body, CursorPage, PageMeta, PhoneNumber


class ContactQuery(Body):
    tag: str | None = Field(None, min_length=1, max_length=100)
    page: int = Field(1, ge=1, le=100_000)
    limit: int = Field(50, ge=1, le=250)
    cursor: str | None = Field(None, min_length=1, max_length=300, description=CURSOR_HELP)


class ContactUpsert(Body):
    identifier: PhoneNumber
    name: str | None = Field(None, max_length=200)
    tags: list[str] | None = Field(None, max_length=50)
    type: Literal["WHATSAPP"] = "WHATSAPP"


class ContactStatus(Body):
    active: bool
    reason: str | None = Field(None, max_length=500)


class ContactView(BaseModel):
    id: str
    identifier: str
    type: str
    name: str | None
    tags: list[str]
    active: bool
    inactiveReason: str | None
    createdAt: str | None
    updatedAt: str | None


class ContactList(BaseModel):
    contacts: list[ContactView]
    meta: PageMeta
    pagination: CursorPage


class ContactDeleted(BaseModel):
    id: str
    deleted: bool
