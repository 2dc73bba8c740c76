"""Attachments: files kept in GridFS or fetched from a URL, their sniffed type, size caps."""

import hashlib
from dataclasses import dataclass

import aiohttp
from bson import ObjectId
from bson.errors import InvalidId
from gridfs import AsyncGridFSBucket, NoFile
from yarl import URL

from lanegate.outbound import (
    AnswerTooLarge,
    Outbound,
    TargetRefused,
    read_capped,
    without_query,
)

# Content types by leading bytes: what the file is, whatever the client said it was.
SIGNATURES: tuple[tuple[int, bytes, str], ...] = (
    (0, b"%PDF-", "application/pdf"),
    (0, b"\x89PNG\r\n\x1a\n", "image/png"),
    (0, b"\xff\xd8\xff", "image/jpeg"),
    (0, b"GIF87a", "image/gif"),
    (0, b"GIF89a", "image/gif"),
    (8, b"WEBP", "image/webp"),
    (4, b"ftyp", "video/mp4"),
    (0, b"OggS", "audio/ogg"),
    (0, b"ID3", "audio/mpeg"),
    (0, b"PK\x03\x04", "application/zip"),
)


class AttachmentError(Exception):
    """Raised when an attachment cannot be read, fetched, or is over the size cap."""


@dataclass(frozen=True)
class Attachment:
    """A file to send: its name, sniffed type and bytes."""

    file_name: str
    content_type: str
    data: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


def sniff(head: bytes) -> str:
    """The content type the leading bytes show (text/plain for UTF-8 text, else octets)."""
    for offset, magic, content_type in SIGNATURES:
        if head[offset : offset + len(magic)] == magic:
            return content_type
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return "application/octet-stream"
    return "text/plain"


def object_id(value: str) -> ObjectId | None:
    """A GridFS file id from its string form, or None when it is not one."""
    try:
        return ObjectId(value)
    except (InvalidId, TypeError):
        return None


async def load(bucket: AsyncGridFSBucket, file_id: str) -> Attachment:
    """A stored attachment's bytes."""
    oid = object_id(file_id)
    if oid is None:
        raise AttachmentError(f"attachment {file_id} does not exist")
    try:
        stream = await bucket.open_download_stream(oid)
    except NoFile as e:
        raise AttachmentError(f"attachment {file_id} does not exist") from e
    metadata = stream.metadata or {}
    return Attachment(
        stream.filename or file_id,
        str(metadata.get("contentType", "application/octet-stream")),
        await stream.read(),
    )


async def download(
    http: Outbound, url: str, *, max_bytes: int, limit: aiohttp.ClientTimeout
) -> Attachment:
    """Fetch an attachment URL through the guarded client, with a size cap and a timeout.

    Errors name the URL without its query string, where access tokens live.
    """
    shown = without_query(url)
    try:
        async with http.stream("GET", url, limit=limit) as response:
            if response.status != 200:
                raise AttachmentError(f"downloading {shown} answered HTTP {response.status}")
            data = await read_capped(response, max_bytes)
    except AnswerTooLarge as e:
        raise AttachmentError(f"{shown} is larger than {max_bytes} bytes") from e
    except TargetRefused as e:
        raise AttachmentError(f"{shown} is not an allowed address: {e}") from e
    except (aiohttp.ClientError, TimeoutError) as e:
        raise AttachmentError(f"downloading {shown} failed: {type(e).__name__}") from e
    name = URL(url).name or "attachment"
    return Attachment(name, sniff(data[:512]), data)
