"""Lead sources and pipeline statuses: bodies and answers."""

from pydantic import BaseModel, Field

from ingress_api.schemas.base import Body


class SourceCreate(Body):
    name: str = Field(min_length=1, max_length=100)


class SourceUpdate(Body):
    name: str | None = Field(None, min_length=1, max_length=100)


class StatusCreate(Body):
    name: str = Field(min_length=1, max_length=100)
    color: str = Field("#9E9E9E", pattern=r"^#[0-9A-Fa-f]{6}$", description="#RRGGBB")
    order: int = Field(0, ge=0, le=10_000, description="Place in the pipeline, lowest first")


class StatusUpdate(Body):
    name: str | None = Field(None, min_length=1, max_length=100)
    color: str | None = Field(None, pattern=r"^#[0-9A-Fa-f]{6}$", description="#RRGGBB")
    order: int | None = Field(None, ge=0, le=10_000)


class LabelDeleteQuery(Body):
    reassignTo: str | None = Field(
        None,
        min_length=1,
        max_length=100,
        description="Move the contacts that have it to this one, then delete",
    )


class SourceView(BaseModel):
    id: str
    name: str
    createdAt: str | None


class StatusView(SourceView):
    color: str
    order: int


class SourceList(BaseModel):
    sources: list[SourceView]


class StatusList(BaseModel):
    statuses: list[StatusView]


class LabelDeleted(BaseModel):
    id: str
    deleted: bool
    reassigned: int = Field(description="Contacts moved to `reassignTo`")
