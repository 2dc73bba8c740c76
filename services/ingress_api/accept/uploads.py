"""Files uploaded with a message: a multipart form's fields, and its `attachments` files
streamed into GridFS as they arrive (nothing kept when the request fails)."""

import contextlib
from typing import Any

from aiohttp import BodyPartReader, web
from gridfs import AsyncGridFSBucket, NoFile

from ingress_api.accounts.limits import attachment_max_bytes
from ingress_api.auth import Caller
from lanegate.attachments import object_id, sniff
from lanegate.errors import AttachmentTooLarge, InvalidInput, PayloadTooLarge
from lanegate.service import SETTINGS, STORE

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
                raise AttachmentTooLarge(f"{name} is larger than {max_bytes} bytes")
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


async def read_multipart(
    request: web.Request, caller: Caller
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The form's fields and the files of `attachments`, stored as they stream in; the
    fields together get the JSON body's limit and at most `MAX_FORM_FIELDS` of them (413)."""
    settings = request.app[SETTINGS]
    bucket = request.app[STORE].files
    limit = attachment_max_bytes(caller.max_attachment_bytes, settings.attachment_max_bytes)
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
        await discard_files(bucket, files)
        raise InvalidInput([([], "Form fields must be UTF-8 text")]) from e
    except BaseException:
        await discard_files(bucket, files)
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


async def discard_files(bucket: AsyncGridFSBucket, files: list[dict[str, Any]]) -> None:
    """Delete files a request stored before it failed."""
    for file in files:
        oid = object_id(file["id"])
        if oid is not None:
            with contextlib.suppress(NoFile):
                await bucket.delete(oid)
