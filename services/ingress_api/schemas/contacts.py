"""Contact bodies and answers."""

from typing import Annotated, Literal, Self

from pydantic import (
    BaseModel,
    Field,
    StringConstraints,
    model_validator,
)

from ingress_api.schemas.base import (
    CURSOR_HELP,
    Body,
    ContactIdentifier,
    CursorPage,
    PageMeta,
)
from lanegate.addresses import looks_like_email

# A field's key: also how a message text names it (`{{fields.<key>}}`).
FieldKey = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
FieldValue = Annotated[str, StringConstraints(max_length=1000)]
LeadFields = Annotated[
    dict[FieldKey, FieldValue],
    Field(
        max_length=50,
        description="Free text values by key (letters, digits, _ and -; at most 50 keys)",
    ),
]
MAX_BATCH = 1000
ContactType = Literal["WHATSAPP", "EMAIL"]


class ContactQuery(Body):
    tag: str | None = Field(None, min_length=1, max_length=100)
    groupId: str | None = Field(None, min_length=1, max_length=100)
    sourceId: str | None = Field(None, min_length=1, max_length=100)
    statusId: str | None = Field(None, min_length=1, max_length=100)
    search: str | None = Field(
        None, min_length=1, max_length=200, description="Matches the name or the number"
    )
    active: bool | None = None
    page: int = Field(1, ge=1, le=100_000)
    limit: int = Field(50, ge=1, le=250)
    cursor: str | None = Field(None, min_length=1, max_length=300, description=CURSOR_HELP)


class ContactUpsert(Body):
    identifier: ContactIdentifier
    name: str | None = Field(None, max_length=200)
    tags: list[str] | None = Field(None, max_length=50)
    type: ContactType | None = Field(
        None, description="EMAIL for an address, WHATSAPP for a number; read from identifier"
    )
    fields: LeadFields | None = None

    @model_validator(mode="after")
    def _type_fits_identifier(self) -> Self:
        read: ContactType = "EMAIL" if looks_like_email(self.identifier) else "WHATSAPP"
        if self.type not in (None, read):
            written = "an e-mail address" if read == "EMAIL" else "a phone number"
            raise ValueError(f"type must be {read} for {written} as identifier")
        self.type = read
        return self


class ContactPatch(Body):
    """What `PATCH /contacts/{id}` changes; `fields` replaces the whole map."""

    name: str | None = Field(None, max_length=200)
    tags: list[str] | None = Field(None, max_length=50)
    fields: LeadFields | None = None
    sourceId: str | None = Field(None, min_length=1, max_length=100)
    statusId: str | None = Field(None, min_length=1, max_length=100)


class ContactBatch(Body):
    contacts: list[ContactUpsert] = Field(min_length=1, max_length=MAX_BATCH)


class ContactBatchDelete(Body):
    """Contacts to delete, by `ids` or by `identifiers` (numbers or addresses), not both."""

    ids: list[Annotated[str, StringConstraints(max_length=100)]] | None = Field(
        None, min_length=1, max_length=MAX_BATCH
    )
    identifiers: list[ContactIdentifier] | None = Field(None, min_length=1, max_length=MAX_BATCH)

    @model_validator(mode="after")
    def _one_way(self) -> Self:
        if (self.ids is None) == (self.identifiers is None):
            raise ValueError("Give ids or identifiers, one of them")
        return self


class ContactStatus(Body):
    active: bool
    reason: str | None = Field(None, max_length=500)


class ContactView(BaseModel):
    id: str
    identifier: str
    type: str
    name: str | None
    tags: list[str]
    fields: dict[str, str]
    sourceId: str | None
    statusId: str | None
    groupIds: list[str]
    active: bool
    inactiveReason: str | None
    lastMessageAt: str | None
    lastInboundAt: str | None
    createdAt: str | None
    updatedAt: str | None


class ContactList(BaseModel):
    contacts: list[ContactView]
    meta: PageMeta
    pagination: CursorPage


class ContactDeleted(BaseModel):
    id: str
    deleted: bool


class ContactBatchSaved(BaseModel):
    created: int
    updated: int
    contacts: list[ContactView]


class ContactBatchDeleted(BaseModel):
    deleted: int


class CommentCreate(Body):
    text: str = Field(min_length=1, max_length=4000)


class CommentQuery(Body):
    limit: int = Field(50, ge=1, le=250)
    cursor: str | None = Field(None, min_length=1, max_length=300, description=CURSOR_HELP)


class CommentAuthor(BaseModel):
    keyId: str
    name: str | None = Field(description="The API key's name")


class CommentView(BaseModel):
    id: str
    contactId: str
    text: str
    author: CommentAuthor
    createdAt: str


class CommentList(BaseModel):
    comments: list[CommentView]
    pagination: CursorPage
