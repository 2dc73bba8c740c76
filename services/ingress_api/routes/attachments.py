"""Attachments: files uploaded with a message (multipart, kept in GridFS) or fetched by URL."""

import contextlib
from typing import Any

import structlog
from aiohttp import BodyPartReader, web
from gridfs import AsyncGridFSBucket, NoFile

from ingress_api.accept.accepting import MessageToAccept, accept_one
from ingress_api.auth import Caller, authenticate
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
from lanegate.attachments import AttachmentError, object_id, sniff, stored_chunks, stored_file
from lanegate.errors import ApiError, InvalidInput, NotFound, PayloadTooLarge
from lanegate.service import SETTINGS, STORE

log = structlog.get_logger(__name__)

MAX_FILES = 10
# Form fields other than the files: a send has about twenty, so fifty leaves room.
MAX_FORM_FIELDS = 50
SNIFF_BYTES = 512


async def _store_file(
    bucket: AsyncGridFSBucket, caller: Caller, part: BodyPartReader, max_bytes: int
) -> dict[str, Any]:
    """Stream one uploaded file into GridFS; 413 (and nothing kept) beyond `max_bytes`."""
    name = part.filename or "attachment"
    head = b""
    size = 0
    upload = bucket.open_upload_stream(name, metadata={"tenantId": caller.tenant_id})
    try:
        while chunk := await part.read_chunk(256 * 1024):
            size += len(chunk)
            if size > max_bytes:
                raise PayloadTooLarge(f"{name} is larger than {max_bytes} bytes")
            if len(head) < SNIFF_BYTES:
                head += chunk[: SNIFF_BYTES - len(head)]
            await upload.write(chunk)
        content_type = sniff(head)
        await upload.set("metadata", {"tenantId": caller.tenant_id, "contentType": content_type})
        await upload.close()
    except BaseException:
        await upload.abort()
        raise
    return {"id": str(upload._id), "fileName": name, "contentType": content_type, "size": size}


async def _read_multipart(
    request: web.Request, caller: Caller
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The form's fields and the files of `attachments`, stored as they stream in; the
    fields together get the JSON body's limit and at most `MAX_FORM_FIELDS` of them (413)."""
    settings = request.app[SETTINGS]
    bucket, limit = request.app[STORE].files, settings.attachment_max_bytes
    fields: dict[str, Any] = {}
    files: list[dict[str, Any]] = []
    field_count = field_bytes = 0
    try:
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                raise InvalidInput([([], "Nested multipart bodies are not accepted")])
            if part.name == "attachments" and part.filename is not None:
                if len(files) == MAX_FILES:
                    raise InvalidInput([(["attachments"], f"At most {MAX_FILES} files")])
                files.append(await _store_file(bucket, caller, part, limit))
                continue
            field_count += 1
            if field_count > MAX_FORM_FIELDS:
                raise PayloadTooLarge(f"At most {MAX_FORM_FIELDS} form fields besides the files")
            value = await _read_field(part, settings.max_body_bytes - field_bytes)
            field_bytes += len(value)
            if part.name:
                fields[part.name] = value.decode("utf-8")
    except UnicodeDecodeError as e:
        await _discard(bucket, files)
        raise InvalidInput([([], "Form fields must be UTF-8 text")]) from e
    except BaseException:
        await _discard(bucket, files)
        raise
    return fields, files


async def _read_field(part: BodyPartReader, room: int) -> bytes:
    """One form field's decoded bytes; 413 as soon as it is longer than `room`."""
    raw = bytearray()
    while chunk := await part.read_chunk():
        raw.extend(chunk)
        if len(raw) > room:
            raise PayloadTooLarge("The form fields together are over the request body limit")
    decoded = bytearray()
    async for piece in part.decode_iter(raw):
        decoded.extend(piece)
        if len(decoded) > room:
            raise PayloadTooLarge("The form fields together are over the request body limit")
    return bytes(decoded)


async def _discard(bucket: AsyncGridFSBucket, files: list[dict[str, Any]]) -> None:
    for file in files:
        oid = object_id(file["id"])
        if oid is not None:
            with contextlib.suppress(NoFile):
                await bucket.delete(oid)


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
        fields, files = await _read_multipart(request, caller)
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
            await _discard(request.app[STORE].files, files)
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
