"""Contact groups: bodies and answers."""

from typing import Annotated

from pydantic import BaseModel, Field, StringConstraints

from ingress_api.schemas.base import Body
from ingress_api.schemas.messages import TextContent
from lanegate.events import Lane

ContactIds = Annotated[
    list[Annotated[str, StringConstraints(min_length=1, max_length=100)]],
    Field(min_length=1, max_length=1000),
]


class GroupCreate(Body):
    name: str = Field(min_length=1, max_length=100)
    description: str | None = Field(None, max_length=1000)


class GroupUpdate(Body):
    name: str | None = Field(None, min_length=1, max_length=100)
    description: str | None = Field(None, max_length=1000)


class GroupMembers(Body):
    contactIds: ContactIds


class GroupView(BaseModel):
    id: str
    name: str
    description: str | None
    createdAt: str | None
    memberCount: int | None = Field(None, description="On `GET /groups/{id}`")


class GroupList(BaseModel):
    groups: list[GroupView]


class GroupDeleted(BaseModel):
    id: str
    deleted: bool


class MembersChanged(BaseModel):
    changed: int = Field(description="Contacts whose membership this request changed")


class GroupSend(TextContent):
    """A text to every active member of a group, queued as one bulk."""

    instanceName: str = Field(max_length=200)
    lane: Lane = "bulk"


class SkippedMember(BaseModel):
    contactId: str
    reason: str


class GroupSent(BaseModel):
    accepted: int
    skipped: list[SkippedMember]
