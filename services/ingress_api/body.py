"""Reading a JSON request body into its pydantic model, with the seed's errors."""

import json
from collections.abc import Mapping
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ValidationError

from lanegate.errors import InvalidInput, TargetNotAllowed, UnsupportedMediaType
from lanegate.outbound import literal_refusal
from lanegate.service import SETTINGS


async def read_object(request: web.Request) -> dict[str, Any]:
    """The body as a JSON object; 415 unless sent as JSON, 400 on bad JSON or another JSON type,
    413 when too big."""
    if request.content_type != "application/json":
        raise UnsupportedMediaType("Send the body as application/json")
    raw = await request.read()
    try:
        data: Any = json.loads(raw) if raw else None
    except (ValueError, RecursionError) as e:
        raise InvalidInput([([], f"Body is not valid JSON: {e}")]) from e
    if not isinstance(data, dict):
        raise InvalidInput([([], "Body must be a JSON object")])
    return data


def validate[M: BaseModel](
    model: type[M], data: dict[str, Any], context: dict[str, Any] | None = None
) -> M:
    """`data` as `model` (validators read `context`); 400 with one issue per bad field."""
    try:
        return model.model_validate(data, context=context)
    except ValidationError as e:
        raise InvalidInput.from_pydantic(e) from e


async def read_json[M: BaseModel](
    request: web.Request, model: type[M], context: dict[str, Any] | None = None
) -> M:
    """Parse the body as `model`."""
    return validate(model, await read_object(request), context)


def read_query[M: BaseModel](
    request: web.Request, model: type[M], context: dict[str, Any] | None = None
) -> M:
    """Parse the query string as `model` (validators read `context`); 400 with `issues` on bad
    or unknown parameters."""
    try:
        return model.model_validate(dict(request.query), context=context)
    except ValidationError as e:
        raise InvalidInput.from_pydantic(e) from e


def refuse_private_targets(request: web.Request, urls: Mapping[tuple[str | int, ...], Any]) -> None:
    """422 naming each field whose URL's host is a private address literal (a name is checked
    when it is called), unless private targets are allowed."""
    if request.app[SETTINGS].allow_private_targets:
        return
    issues = [
        (path, f"Must reach a public address: {reason}")
        for path, url in urls.items()
        if url is not None and (reason := literal_refusal(str(url)))
    ]
    if issues:
        raise TargetNotAllowed(issues)
