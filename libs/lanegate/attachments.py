"""Attachments: files kept in GridFS or fetched from a URL, their sniffed type, size caps.
A file is never held whole: it is read and handed on chunk by chunk."""

import contextlib
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass

import aiohttp
from bson import ObjectId
from bson.errors import InvalidId
from gridfs import AsyncGridFSBucket, NoFile
from pymongo.asynchronous.collection import AsyncCollection
from yarl import URL

from lanegate.outbound import CHUNK_BYTES, Outbound, TargetRefused, without_query
from lanegate.store import Document, Store

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
SNIFF_BYTES = 512
# GridFS chunks (255 KiB each) fetched per store round trip: about 1 MiB in memory per file.
CHUNKS_PER_BATCH = 4


class AttachmentError(Exception):
    """Raised when an attachment cannot be read, fetched, or is over the size cap."""


class Chunks:
    """A file's bytes, read once as they arrive; remembers why reading them failed, since a
    provider's HTTP client reports a failing body only as a broken connection."""

    def __init__(self, source: AsyncGenerator[bytes]) -> None:
        self._source = source
        self.failure: AttachmentError | None = None

    def __aiter__(self) -> "Chunks":
        return self

    async def __anext__(self) -> bytes:
        try:
            return await anext(self._source)
        except AttachmentError as e:
            self.failure = e
            raise

    async def close(self) -> None:
        """Release what reading holds (a store cursor, a connection) if it stopped early."""
        await self._source.aclose()


@dataclass(frozen=True)
class Attachment:
    """A file to send: its name, sniffed type and its bytes as a stream read once."""

    file_name: str
    content_type: str
    chunks: Chunks


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


@dataclass(frozen=True)
class StoredFile:
    """An attachment kept in GridFS: what its files document says."""

    id: ObjectId
    file_name: str
    content_type: str
    length: int
    tenant_id: str | None


async def stored_file(bucket: AsyncGridFSBucket, file_id: str) -> StoredFile:
    """A kept attachment's description; raises AttachmentError when there is none."""
    oid = object_id(file_id)
    found = None
    if oid is not None:
        with contextlib.suppress(NoFile):
            found = await bucket.open_download_stream(oid)
    if oid is None or found is None:
        raise AttachmentError(f"attachment {file_id} does not exist")
    metadata = found.metadata or {}
    return StoredFile(
        oid,
        found.filename or file_id,
        str(metadata.get("contentType", "application/octet-stream")),
        int(found.length),
        metadata.get("tenantId"),
    )


async def stored_chunks(
    chunks: AsyncCollection[Document], file: StoredFile
) -> AsyncGenerator[bytes]:
    """A kept attachment's bytes, a few GridFS chunks per store round trip (GridFS's own reader
    fetches up to 16 MiB at a time)."""
    cursor = chunks.find(
        {"files_id": file.id}, {"data": 1}, sort=[("n", 1)], batch_size=CHUNKS_PER_BATCH
    )
    seen = 0
    async for chunk in cursor:
        data = bytes(chunk["data"])
        seen += len(data)
        yield data
    if seen != file.length:
        raise AttachmentError(f"attachment {file.id} is truncated ({seen} of {file.length} bytes)")


async def load(store: Store, file_id: str) -> Attachment:
    """A kept attachment, its bytes streamed from GridFS as they are sent."""
    file = await stored_file(store.files, file_id)
    body = Chunks(stored_chunks(store.file_chunks, file))
    return Attachment(file.file_name, file.content_type, body)


@contextlib.asynccontextmanager
async def download(
    http: Outbound, url: str, *, max_bytes: int, limit: aiohttp.ClientTimeout
) -> AsyncIterator[Attachment]:
    """An attachment URL's answer, opened through the guarded client: its type sniffed from the
    first bytes, the rest streamed as it is sent, within the size cap and the timeout.

    Errors name the URL without its query string, where access tokens live.
    """
    shown = without_query(url)
    async with contextlib.AsyncExitStack() as opened:
        try:
            response = await opened.enter_async_context(http.stream("GET", url, limit=limit))
            if response.status != 200:
                raise AttachmentError(f"downloading {shown} answered HTTP {response.status}")
            if (response.content_length or 0) > max_bytes:
                raise AttachmentError(f"{shown} is larger than {max_bytes} bytes")
            head = b""
            while len(head) < SNIFF_BYTES and (more := await response.content.read(SNIFF_BYTES)):
                head += more
        except TargetRefused as e:
            raise AttachmentError(f"{shown} is not an allowed address: {e}") from e
        except (aiohttp.ClientError, TimeoutError) as e:
            raise AttachmentError(f"downloading {shown} failed: {type(e).__name__}") from e
        body = _fetched_chunks(response, head, shown, max_bytes)
        yield Attachment(URL(url).name or "attachment", sniff(head), Chunks(body))


async def _fetched_chunks(
    response: aiohttp.ClientResponse, head: bytes, shown: str, max_bytes: int
) -> AsyncGenerator[bytes]:
    size = len(head)
    if head:
        yield head
    try:
        async for chunk in response.content.iter_chunked(CHUNK_BYTES):
            size += len(chunk)
            if size > max_bytes:
                response.close()
                raise AttachmentError(f"{shown} is larger than {max_bytes} bytes")
            yield chunk
    except (aiohttp.ClientError, TimeoutError) as e:
        raise AttachmentError(f"downloading {shown} failed: {type(e).__name__}") from e
