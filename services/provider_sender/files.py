"""The files of an attachment message, read from GridFS or fetched from its URL at send time."""

import aiohttp

from lanegate.attachments import Attachment, download, load
from lanegate.store import Document, Store


class Files:
    """Loads what an `attachment` message carries, with the download cap and guard."""

    def __init__(
        self, store: Store, http: aiohttp.ClientSession, *, max_bytes: int, allow_private: bool
    ) -> None:
        self._store = store
        self._http = http
        self._max_bytes = max_bytes
        self._allow_private = allow_private

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
                allow_private=self._allow_private,
            )
            if content.get("fileName"):
                fetched = Attachment(content["fileName"], fetched.content_type, fetched.data)
            return [fetched]
        return [await load(self._store.files, file["id"]) for file in content["attachments"]]
