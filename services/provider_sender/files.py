"""The files of an attachment message, opened from GridFS or its URL at send time, as streams."""

import contextlib
import dataclasses
from collections.abc import AsyncIterator

import aiohttp

from lanegate.attachments import Attachment, download, load
from lanegate.outbound import Outbound
from lanegate.providers.capabilities import channel_of
from lanegate.store import Document, Store


class Files:
    """Opens what an `attachment` message carries, through the guarded client with the cap."""

    def __init__(self, store: Store, http: Outbound, *, max_bytes: int, timeout: float) -> None:
        self._store = store
        self._http = http
        self._max_bytes = max_bytes
        self._timeout = aiohttp.ClientTimeout(total=timeout)

    @contextlib.asynccontextmanager
    async def opened(self, message: Document) -> AsyncIterator[list[Attachment]]:
        """The message's files (none for other kinds; an e-mail's image or document by URL is
        one), each read as it is sent and released afterwards; raises AttachmentError."""
        content = message["content"]
        url = content.get("attachmentUrl")
        if channel_of(message.get("provider", "")) == "email":
            url = url or content.get("imageUrl") or content.get("documentUrl")
        elif message.get("type") != "attachment":
            yield []
            return
        if url is None and "attachments" not in content:
            yield []
            return
        if url is not None:
            async with download(
                self._http,
                url,
                max_bytes=min(
                    self._max_bytes, message.get("maxAttachmentBytes") or self._max_bytes
                ),
                limit=self._timeout,
            ) as fetched:
                if content.get("fileName"):
                    fetched = dataclasses.replace(fetched, file_name=content["fileName"])
                try:
                    yield [fetched]
                finally:
                    await fetched.chunks.close()
            return
        files = [await load(self._store, file["id"]) for file in content["attachments"]]
        try:
            yield files
        finally:
            for file in files:
                await file.chunks.close()
