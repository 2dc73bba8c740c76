"""The error answers every endpoint can give."""

from typing import Literal

from pydantic import (
    BaseModel,
    Field,
)


class Issue(BaseModel):
    path: list[str | int]
    message: str
    code: str | None = Field(None, description="invalid_phone_number, where one applies")


class ValidationErrorBody(BaseModel):
    error: Literal["Validation error"]
    issues: list[Issue]


class ErrorBody(BaseModel):
    error: str
    code: str
