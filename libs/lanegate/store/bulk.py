"""Writes of many documents, as every engine takes them."""

from collections.abc import Iterator, Sequence
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import BulkWriteError

Document = dict[str, Any]

# The most documents or operations one write command carries; more go in the next. A command's
# time on the server grows with what it carries, and the server's other work and the callers
# behind it wait for it: a store that spends about 16 ms on each upsert (the embedded one)
# would otherwise not answer its clients' heartbeats through 1,000 of them, and the clients
# would drop it as down.
MOST_PER_WRITE = 200

# The server's code for a write refused by a unique index.
DUPLICATE_KEY = 11000


def in_parts[T](items: Sequence[T], most: int = MOST_PER_WRITE) -> Iterator[Sequence[T]]:
    """`items` in consecutive slices of at most `most`, one store command each."""
    for start in range(0, len(items), most):
        yield items[start : start + most]


def duplicates_only(error: BulkWriteError) -> bool:
    """Whether every document a bulk insert refused was refused as a duplicate key."""
    return {e.get("code") for e in error.details.get("writeErrors", [])} == {DUPLICATE_KEY}


async def insert_missing(
    collection: AsyncCollection[Document], documents: Sequence[Document]
) -> None:
    """Insert these documents, leaving those whose keys are already there."""
    try:
        await collection.insert_many(documents, ordered=False)
    except BulkWriteError as e:
        if not duplicates_only(e):
            raise
