"""What the Cloud API and WAHA callback parsers share: typed fields and a refusal per field."""

import json
import math
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, PlainValidator, StringConstraints, ValidationError

from lanegate.providers import CallbackRefused

Id = Annotated[str, StringConstraints(strict=True, min_length=1, max_length=512)]
Text = Annotated[str, StringConstraints(strict=True, max_length=65536)]
Name = Annotated[str, StringConstraints(strict=True, max_length=512)]


def _coordinate(value: Any) -> float:
    """A latitude or longitude, sent as a JSON number or (by some engines) a numeric string."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError("Must be a number")
    try:
        number = float(value)
    except ValueError as e:
        raise ValueError("Must be a number") from e
    if not math.isfinite(number) or abs(number) > 180:
        raise ValueError("Must be a number between -180 and 180")
    return number


Coordinate = Annotated[float, PlainValidator(_coordinate)]


class Shape(BaseModel):
    """A part of a callback body: strict types for what the gateway reads, the rest ignored."""

    model_config = ConfigDict(strict=True, extra="ignore", frozen=True, populate_by_name=True)


class Location(Shape):
    latitude: Coordinate
    longitude: Coordinate
    name: Name | None = None
    address: Text | None = None
    description: Text | None = None
    url: Text | None = None


def json_object(body: bytes) -> dict[str, Any]:
    """The body as a JSON object; raises CallbackRefused otherwise."""
    try:
        payload = json.loads(body)
    except ValueError as e:
        raise CallbackRefused([([], "The body is not JSON")]) from e
    if not isinstance(payload, dict):
        raise CallbackRefused([([], "The body must be a JSON object")])
    return payload


def validated[M: BaseModel](model: type[M], data: Any, path: list[str | int]) -> M:
    """`data` as `model`; raises CallbackRefused naming each bad field under `path`."""
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise CallbackRefused.from_pydantic(e, path) from e
