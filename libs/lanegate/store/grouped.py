"""Single writes made at once share one round trip: inserts one `insert_many` (single sends,
webhook events), conditional updates one bulk write (webhook outcomes). Nothing waits on a
timer: writes that arrive during a write go together in the next one."""

import asyncio
import weakref
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pymongo import DeleteMany, DeleteOne, InsertOne, ReplaceOne, UpdateMany, UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import (
    AutoReconnect,
    BulkWriteError,
    DuplicateKeyError,
    WriteError,
)

from lanegate.store import Document

DUPLICATE_KEY = 11000

type WriteOp = (
    InsertOne[Document] | UpdateOne | UpdateMany | ReplaceOne[Document] | DeleteOne | DeleteMany
)


WRITTEN, YOUR_TURN = True, False


def duplicates_only(error: BulkWriteError) -> bool:
    """Whether every document a bulk insert refused was refused as a duplicate key."""
    return {e.get("code") for e in error.details.get("writeErrors", [])} == {DUPLICATE_KEY}


@dataclass
class _Queued:
    document: Document
    # WRITTEN (or the insert's error), or YOUR_TURN: this caller writes the next batch.
    done: asyncio.Future[bool] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


def _error(details: dict[str, Any]) -> Exception:
    """The error one document's insert met, as `insert_one` would have raised it."""
    message, code = str(details.get("errmsg", "")), details.get("code")
    error_code = code if isinstance(code, int) else None
    if error_code == DUPLICATE_KEY:
        return DuplicateKeyError(message, error_code, details)
    return WriteError(message, error_code, details)


def _refused(error: BulkWriteError) -> dict[int, Exception]:
    """The errors of the operations an unordered bulk write refused, by index; one whose
    writes were not confirmed as asked is raised (any of them may have been lost)."""
    if error.details.get("writeConcernErrors"):
        raise error
    return {int(e["index"]): _error(e) for e in error.details.get("writeErrors", [])}


# Each caller hears its own document's outcome: a duplicate key only for the document that
# has it, a lost connection (which may have written any of them) for the whole batch.
class GroupedInserts:
    """Inserts into one collection, grouped while a write is under way."""

    def __init__(self, collection: AsyncCollection[Document], max_batch: int = 200) -> None:
        self._collection = collection
        self._max_batch = max_batch
        self._queued: list[_Queued] = []
        self._writing = False
        self._writes: set[asyncio.Task[None]] = set()
        self.writes = 0  # round trips made, for the benchmarks and tests

    async def insert(self, document: Document) -> None:
        """Insert one document, raising as `insert_one` would for it."""
        queued = _Queued(document)
        self._queued.append(queued)
        if self._writing and await self._wait(queued) == WRITTEN:
            return
        # First in line: it starts its batch's write, in a task of its own so that this
        # caller going away does not cut the write off for the others.
        self._writing = True
        live = [q for q in self._queued if not q.done.cancelled()]  # this caller's comes first
        batch, self._queued = live[: self._max_batch], live[self._max_batch :]
        outcome = batch[0].done = asyncio.get_running_loop().create_future()
        writing = asyncio.ensure_future(self._settle(batch))
        self._writes.add(writing)
        writing.add_done_callback(self._writes.discard)
        await outcome

    async def _settle(self, batch: list[_Queued]) -> None:
        """Write a batch, let the next caller in line go, and tell each its outcome."""
        try:
            outcomes = await self._write(batch)
        finally:
            self._hand_over()
        for queued, outcome in zip(batch, outcomes, strict=True):
            if queued.done.cancelled():
                continue
            if outcome is None:
                queued.done.set_result(WRITTEN)
            else:
                queued.done.set_exception(outcome)

    async def _wait(self, queued: _Queued) -> bool:
        try:
            return await queued.done
        except asyncio.CancelledError:
            done = queued.done
            if not done.cancelled() and done.exception() is None and done.result() == YOUR_TURN:
                self._queued.remove(queued)  # cut off just as its turn came: pass it on
                self._hand_over()
            raise

    async def _write(self, batch: list[_Queued]) -> list[Exception | None]:
        """Each document's outcome: None when written."""
        self.writes += 1
        try:
            await self._collection.insert_many([q.document for q in batch], ordered=False)
        except BulkWriteError as e:
            failed = {int(error["index"]): error for error in e.details.get("writeErrors", [])}
            # Written but not confirmed as asked: settled like a write whose answer was lost.
            unsure = e.details.get("writeConcernErrors")
            return [
                _error(failed[index])
                if index in failed
                else AutoReconnect(f"write concern: {unsure[0].get('errmsg')}")
                if unsure
                else None
                for index in range(len(batch))
            ]
        except Exception as e:
            return [e] * len(batch)
        except BaseException:
            # Cut off (the process stops): any of them may have been written.
            lost = AutoReconnect("the insert was interrupted")
            for queued in batch:
                if not queued.done.done():
                    queued.done.set_exception(lost)
            raise
        return [None] * len(batch)

    def _hand_over(self) -> None:
        """Let the first caller still waiting write the next batch, or go idle; the
        documents of callers gone meanwhile are not written."""
        self._queued = [q for q in self._queued if not q.done.cancelled()]
        if self._queued:
            self._queued[0].done.set_result(YOUR_TURN)
        else:
            self._writing = False


# An item waiting for its write, and where its outcome goes.
type Waiting[Item, Outcome] = tuple[Item, asyncio.Future[Outcome]]


class Batched[Item, Outcome]:
    """Items added while a write is under way go together in the next one (at most
    `max_batch` a write); each caller hears its own items' outcomes.

    `write` returns one outcome per item, or an Exception for an item that failed (raising
    fails every item of the batch). The writes run in a task of their own, so the caller
    that started one going away cuts no one off. Items with the same `apart` key never share
    a write: the later waits for the next, so writes to one document keep their order.
    """

    def __init__(
        self,
        write: Callable[[list[Item]], Awaitable[list[Outcome | Exception]]],
        max_batch: int = 200,
        apart: Callable[[Item], object] | None = None,
    ) -> None:
        self._write = write
        self._max_batch = max_batch
        self._apart = apart
        self._pending: list[Waiting[Item, Outcome]] = []
        self._writer: asyncio.Task[None] | None = None
        self.writes = 0  # round trips made, for the tests

    async def add(self, items: list[Item]) -> list[Outcome]:
        """Write `items` with whatever else is waiting; their outcomes, or the first error."""
        loop = asyncio.get_running_loop()
        futures = [loop.create_future() for _ in items]
        for future in futures:
            # Heard even when its caller has gone, so an error is never left unretrieved.
            future.add_done_callback(lambda done: done.cancelled() or done.exception())
        self._pending.extend(zip(items, futures, strict=True))
        if items and self._writer is None:
            self._writer = asyncio.ensure_future(self._drain())
        return list(await asyncio.shield(asyncio.gather(*futures)))

    async def _drain(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._next_batch()
                self.writes += 1
                try:
                    outcomes = await self._write([item for item, _ in batch])
                except Exception as e:
                    outcomes = [e] * len(batch)
                except BaseException:
                    lost = AutoReconnect("the write was interrupted")
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(lost)
                    raise
                for (_, future), outcome in zip(batch, outcomes, strict=True):
                    if isinstance(outcome, Exception):
                        future.set_exception(outcome)
                    else:
                        future.set_result(outcome)
        finally:
            self._writer = None

    def _next_batch(
        self,
    ) -> tuple[list[Waiting[Item, Outcome]], list[Waiting[Item, Outcome]]]:
        """The next write's items, and those left waiting, each in the order they came."""
        if self._apart is None:
            return self._pending[: self._max_batch], self._pending[self._max_batch :]
        batch: list[Waiting[Item, Outcome]] = []
        left: list[Waiting[Item, Outcome]] = []
        keys: set[object] = set()
        for queued in self._pending:
            key = self._apart(queued[0])
            if len(batch) == self._max_batch or key in keys:
                left.append(queued)
                keys.add(key)  # nothing of this key may overtake it
            else:
                batch.append(queued)
                keys.add(key)
        return batch, left


class GroupedWrites:
    """Writes to one collection whose callers need no outcome of their own (upserts of
    counters and summaries): made at once, they share one unordered bulk write."""

    def __init__(self, collection: AsyncCollection[Document]) -> None:
        self._collection = collection
        self._batched: Batched[WriteOp, None] = Batched(self._write)

    @property
    def writes(self) -> int:
        return self._batched.writes

    async def write(self, operations: Sequence[WriteOp]) -> None:
        """Write `operations` with whatever else is waiting; raises what the store refused of
        them."""
        await self._batched.add(list(operations))

    async def _write(self, operations: list[WriteOp]) -> list[Exception | None]:
        """None for each operation written; an operation the store refused fails its caller
        alone."""
        try:
            await self._collection.bulk_write(operations, ordered=False)
        except BulkWriteError as e:
            failed = _refused(e)
            return [failed.get(index) for index in range(len(operations))]
        return [None] * len(operations)


@dataclass(frozen=True)
class _Update:
    document_id: Any
    operation: UpdateOne
    took: Callable[[Document], bool]
    read: bool  # the caller wants the document as the update left it


# Whether an update applied, and the document after it when it did and was read back.
type _Applied = tuple[bool, Document | None]


class GroupedUpdates:
    """Conditional updates of one document each (its filter names the `_id`) made while a
    write is under way go together in the next bulk write.

    Each caller hears whether its own update applied. A bulk write only says how many did:
    when that is all of them, each did; when it is fewer, the batch's documents are read
    back and each caller's `took` says from its document whether its update is the one that
    applied (a token the update writes, which nobody else's writes). Callers that want the
    updated document (`update_and_read`, a grouped findAndModify) get it from that one read.
    """

    def __init__(self, collection: AsyncCollection[Document]) -> None:
        self._collection = collection
        self._batched: Batched[_Update, _Applied] = Batched(
            self._write, apart=lambda queued: queued.document_id
        )

    @property
    def writes(self) -> int:
        return self._batched.writes

    async def update(
        self, where: Document, change: Document, took: Callable[[Document], bool]
    ) -> bool:
        """Apply `change` to the document `where` picks; whether it applied."""
        queued = _Update(where["_id"], UpdateOne(where, change), took, read=False)
        [(applied, _)] = await self._batched.add([queued])
        return applied

    async def update_and_read(
        self, where: Document, change: Document, took: Callable[[Document], bool]
    ) -> Document | None:
        """Apply `change` to the document `where` picks; the document after, or None when
        the update did not apply."""
        queued = _Update(where["_id"], UpdateOne(where, change), took, read=True)
        [(_, document)] = await self._batched.add([queued])
        return document

    async def _write(self, batch: list[_Update]) -> list[_Applied | Exception]:
        """Each update's outcome, or the error it met."""
        failed: dict[int, Exception] = {}
        every = False
        try:
            result = await self._collection.bulk_write(
                [queued.operation for queued in batch], ordered=False
            )
            every = result.matched_count == len(batch)
        except BulkWriteError as e:
            failed = _refused(e)
        if every and not any(queued.read for queued in batch):
            return [(True, None)] * len(batch)
        ids = list({queued.document_id for queued in batch})
        found = {d["_id"]: d async for d in self._collection.find({"_id": {"$in": ids}})}
        outcomes: list[_Applied | Exception] = []
        for index, queued in enumerate(batch):
            document = found.get(queued.document_id)
            applied = every or (document is not None and queued.took(document))
            outcomes.append(failed.get(index, (applied, document if applied else None)))
        return outcomes


# Per collection of a store, one of each kind: every such write a process makes goes through it.
_PER_COLLECTION: "weakref.WeakKeyDictionary[AsyncCollection[Document], dict[object, Any]]" = (
    weakref.WeakKeyDictionary()
)


def one_per_collection[G](
    kind: Callable[[AsyncCollection[Document]], G], collection: AsyncCollection[Document]
) -> G:
    """The process's one `kind` (a grouped writer) on `collection`, made on first use."""
    made = _PER_COLLECTION.setdefault(collection, {})
    if kind not in made:
        made[kind] = kind(collection)
    grouped: G = made[kind]
    return grouped


def grouped_inserts(collection: AsyncCollection[Document]) -> GroupedInserts:
    """The process's grouped inserts into `collection`."""
    return one_per_collection(GroupedInserts, collection)


def grouped_writes(collection: AsyncCollection[Document]) -> GroupedWrites:
    """The process's grouped writes to `collection`."""
    return one_per_collection(GroupedWrites, collection)


def grouped_updates(collection: AsyncCollection[Document]) -> GroupedUpdates:
    """The process's grouped conditional updates of `collection`."""
    return one_per_collection(GroupedUpdates, collection)
