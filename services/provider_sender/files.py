"""The files of an attachment message, read from GridFS or fetched from its URL at send time."""

import aiohttp

from lanegate.attachments import Attachment, download, load
from lanegate.outbound import Outbound
from lanegate.store import Document, Store


class Files:
    """Loads what an `attachment` message carries, through the guarded client with the cap."""

    def __init__(self, store: Store, http: Outbound, *, max_bytes: int, timeout: float) -> None:
        self._store = store
        self._http = http
        self._max_bytes = max_bytes
        self._timeout = aiohttp.ClientTimeout(total=timeout)

    async def of(self, message: Document) -> list[Attachment]:
        """The message's files (none for other kinds); raises AttachmentError."""
        if message.get("type") != "attachment":
            return []
        content = message["content"]
        if "attachmentUrl" in content:
            fetched = await download(
                self._http,
                content["attachmentUrl"],
                max_bytes=self._max_bytes,
                limit=self._timeout,
            )
            if content.get("fileName"):
                fetched = Attachment(content["fileName"], fetched.content_type, fetched.data)
            return [fetched]
        return [await load(self._store.files, file["id"]) for file in content["attachments"]]
