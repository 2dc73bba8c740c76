"""Chat list queries and answers."""

from typing import Literal

from pydantic import BaseModel, Field

from ingress_api.schemas.base import CURSOR_HELP, Body, CursorPage


class ChatQuery(Body):
    """`GET /chats` filters (query string); newest first."""

    instanceName: str | None = Field(None, max_length=200)
    limit: int = Field(50, ge=1, le=250)
    cursor: str | None = Field(None, min_length=1, max_length=300, description=CURSOR_HELP)


class LastMessage(BaseModel):
    id: str
    direction: Literal["inbound", "outbound"]
    type: str
    text: str | None


class ChatView(BaseModel):
    instanceName: str
    contact: str = Field(description="The contact's number (E.164 digits)")
    lastMessage: LastMessage
    lastMessageAt: str
    unread: int = Field(
        description="Inbound messages since the last outbound one or since it was marked read"
    )
    readAt: str | None


class ChatList(BaseModel):
    chats: list[ChatView]
    pagination: CursorPage
