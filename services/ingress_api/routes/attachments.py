"""Attachments: files uploaded with a message (multipart, kept in GridFS) or fetched by URL."""

from typing import Any

import structlog
from aiohttp import web

from ingress_api.accept.accepting import MessageToAccept, accept_one
from ingress_api.accept.uploads import discard_files, read_multipart
from ingress_api.auth import authenticate
from ingress_api.countries import send_context
from ingress_api.registry import API
from ingress_api.requests import (
    REPEATED_SEND_STATUS,
    SEND_ERRORS,
    read_object,
    refuse_private_targets,
    validate,
)
from ingress_api.schemas.messages import Accepted, AttachmentMessage
from lanegate.attachments import AttachmentError, stored_chunks, stored_file
from lanegate.errors import ApiError, InvalidInput, NotFound
from lanegate.service import STORE

log = structlog.get_logger(__name__)


@API.post(
    "/message/attachment",
    summary=(
        "Queue files: multipart/form-data with the send fields and files in `attachments` "
        "(kept by the gateway, type sniffed), or JSON with `attachmentUrl` (fetched at send time)"
    ),
    tag="messages",
    body=AttachmentMessage,
    response=Accepted,
    status=202,
    errors=SEND_ERRORS,
    other_ok_statuses=REPEATED_SEND_STATUS,
    scope="messages:write",
)
async def send_attachment(request: web.Request) -> web.Response:
    caller = await authenticate(request)
    if request.content_type == "multipart/form-data":
        fields, files = await read_multipart(request, caller)
        try:
            fields = {
                k: (v.lower() == "true" if k in BOOLEAN_FIELDS else v) for k, v in fields.items()
            }
            context = await send_context(request, caller, fields.get("instanceName"))
            body = validate(AttachmentMessage, fields, context)
            if not files:
                raise InvalidInput([(["attachments"], "Attach at least one file")])
            content: dict[str, Any] = {"attachments": files}
            if body.caption:
                content["caption"] = body.caption
            answer, status = await accept_one(
                request, caller, MessageToAccept(body, "attachment", content)
            )
        except (ApiError, web.HTTPException):
            await discard_files(request.app[STORE].files, files)
            raise
        return web.json_response(answer, status=status)
    data = await read_object(request)
    body = validate(
        AttachmentMessage, data, await send_context(request, caller, data.get("instanceName"))
    )
    if body.attachmentUrl is None:
        raise InvalidInput(
            [(["attachmentUrl"], "Give attachmentUrl, or upload files as multipart")]
        )
    refuse_private_targets(request, {("attachmentUrl",): body.attachmentUrl})
    content = {"attachmentUrl": str(body.attachmentUrl)}
    content |= {k: getattr(body, k) for k in ("fileName", "caption") if getattr(body, k)}
    answer, status = await accept_one(request, caller, MessageToAccept(body, "attachment", content))
    return web.json_response(answer, status=status)


BOOLEAN_FIELDS = frozenset({"requiresApproval", "force"})


@API.get(
    "/attachments/{id}",
    summary="An uploaded attachment's bytes (only for the tenant that uploaded it)",
    tag="messages",
    errors=(401, 404),
    scope="messages:read",
    media="application/octet-stream",
)
async def get_attachment(request: web.Request) -> web.StreamResponse:
    """The file's bytes, streamed from GridFS a few chunks at a time."""
    caller = await authenticate(request)
    store = request.app[STORE]
    try:
        file = await stored_file(store.files, request.match_info["id"])
    except AttachmentError as e:
        raise NotFound("Attachment not found") from e
    if file.tenant_id != caller.tenant_id:
        raise NotFound("Attachment not found")
    response = web.StreamResponse(
        headers={
            "Content-Disposition": f'attachment; filename="{_safe(file.file_name)}"',
            "X-Content-Type-Options": "nosniff",
        }
    )
    response.content_type = file.content_type
    response.content_length = file.length
    await response.prepare(request)
    async for chunk in stored_chunks(store.file_chunks, file):
        await response.write(chunk)
    await response.write_eof()
    return response


def _safe(name: str | None) -> str:
    return "".join(c for c in (name or "attachment") if c.isalnum() or c in "._- ")[:200]
