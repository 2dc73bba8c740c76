"""Lead sources (`/sources`) and pipeline statuses (`/statuses`): the same five endpoints each,
declared from one table."""

from aiohttp import web
from pydantic import BaseModel

from ingress_api.auth import authenticate
from ingress_api.labels import (
    SOURCES,
    STATUSES,
    LabelKind,
    create_label,
    delete_label,
    get_label,
    label_view,
    list_labels,
    update_label,
)
from ingress_api.registry import API, Handler
from ingress_api.requests import read_json, read_query
from ingress_api.schemas.base import Body
from ingress_api.schemas.labels import (
    LabelDeleted,
    LabelDeleteQuery,
    SourceCreate,
    SourceList,
    SourceUpdate,
    SourceView,
    StatusCreate,
    StatusList,
    StatusUpdate,
    StatusView,
)
from lanegate.service import STORE


def _named(handler: Handler, name: str) -> Handler:
    """The handler under its own name (the OpenAPI operation id)."""
    handler.__name__ = handler.__qualname__ = name
    return handler


def declare(
    kind: LabelKind,
    one: str,
    create: type[Body],
    update: type[Body],
    view: type[BaseModel],
    listing: type[BaseModel],
) -> None:
    """Declare list, create, get, update and delete of one kind of label."""
    many = kind.collection

    async def list_all(request: web.Request) -> web.Response:
        caller = await authenticate(request)
        return web.json_response({many: await list_labels(request.app[STORE], caller, kind)})

    async def create_one(request: web.Request) -> web.Response:
        caller = await authenticate(request)
        body = await read_json(request, create)
        created = await create_label(request.app[STORE], caller, kind, body.model_dump())
        return web.json_response(created, status=201)

    async def get_one(request: web.Request) -> web.Response:
        caller = await authenticate(request)
        label = await get_label(request.app[STORE], caller, kind, request.match_info["id"])
        return web.json_response(label_view(label))

    async def update_one(request: web.Request) -> web.Response:
        caller = await authenticate(request)
        changes = (await read_json(request, update)).model_dump(exclude_none=True)
        label_id = request.match_info["id"]
        return web.json_response(
            await update_label(request.app[STORE], caller, kind, label_id, changes)
        )

    async def delete_one(request: web.Request) -> web.Response:
        caller = await authenticate(request)
        query = read_query(request, LabelDeleteQuery)
        label_id = request.match_info["id"]
        return web.json_response(
            await delete_label(request.app[STORE], caller, kind, label_id, query.reassignTo)
        )

    read = {"tag": "contacts", "scope": "contacts:read"}
    write = {"tag": "contacts", "scope": "contacts:write"}
    API.get(f"/{many}", summary=f"Your {many}", response=listing, errors=(401,), **read)(
        _named(list_all, f"list_{many}")
    )
    API.post(
        f"/{many}",
        summary=f"Create a {one}",
        body=create,
        response=view,
        status=201,
        errors=(400, 401),
        **write,
    )(_named(create_one, f"create_{one}"))
    API.get(f"/{many}/{{id}}", summary=f"One {one}", response=view, errors=(401, 404), **read)(
        _named(get_one, f"get_{one}")
    )
    API.patch(
        f"/{many}/{{id}}",
        summary=f"Change a {one}",
        body=update,
        response=view,
        errors=(400, 401, 404),
        **write,
    )(_named(update_one, f"update_{one}"))
    API.delete(
        f"/{many}/{{id}}",
        summary=f"Delete a {one}; 409 with the count while contacts have it, unless ?reassignTo=",
        query=LabelDeleteQuery,
        response=LabelDeleted,
        errors=(400, 401, 404, 409),
        **write,
    )(_named(delete_one, f"delete_{one}"))


declare(SOURCES, "source", SourceCreate, SourceUpdate, SourceView, SourceList)
declare(STATUSES, "status", StatusCreate, StatusUpdate, StatusView, StatusList)
