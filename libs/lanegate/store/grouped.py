"""Writes a process makes at once share one round trip: inserts one `insert_many` (single
sends, webhook records), the rest one bulk write (health counts, chat summaries, message
moves and claims, fenced scheduler reserves, webhook outcomes). Nothing waits on a timer:
writes that arrive during a write go together in the next one, up to MOST_PER_WRITE in one.
Each store keeps one grouped writer of each kind per collection (`Store.grouped`). Usage
counts, which nothing waits to read, are summed a second instead (`lanegate.usage`)."""

import asyncio
import contextvars
import copy
import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog
from bson.errors import InvalidDocument
from pymongo import (
    DeleteMany,
    DeleteOne,
    InsertOne,
    ReadPreference,
    ReplaceOne,
    ReturnDocument,
    UpdateMany,
    UpdateOne,
)
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import (
    AutoReconnect,
    BulkWriteError,
    DuplicateKeyError,
    WriteError,
)

from lanegate.store import Document, Store
from lanegate.store.bulk import DUPLICATE_KEY, MOST_PER_WRITE

log = structlog.get_logger(__name__)

type WriteOp = (
    InsertOne[Document] | UpdateOne | UpdateMany | ReplaceOne[Document] | DeleteOne | DeleteMany
)


WRITTEN, YOUR_TURN = True, False


@dataclass
class _Queued:
    document: Document
    # WRITTEN (or the insert's error), or YOUR_TURN: this caller writes the next batch.
    done: asyncio.Future[bool] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


def _error(details: dict[str, Any]) -> Exception:
    """The error one operation of a bulk write met, as its single-document call would have
    raised it."""
    message, code = str(details.get("errmsg", "")), details.get("code")
    error_code = code if isinstance(code, int) else None
    if error_code == DUPLICATE_KEY:
        return DuplicateKeyError(message, error_code, details)
    return WriteError(message, error_code, details)


def _outcomes(error: BulkWriteError, count: int) -> list[Exception | None]:
    """What an unordered bulk write of `count` operations did to each: the error of one it
    refused, a lost answer for the others when the writes were not confirmed as asked (any
    may have been lost), None for one written."""
    refused = {int(e["index"]): e for e in error.details.get("writeErrors", [])}
    unsure = error.details.get("writeConcernErrors")
    return [
        _error(refused[index])
        if index in refused
        else AutoReconnect(f"write concern: {unsure[0].get('errmsg')}")
        if unsure
        else None
        for index in range(count)
    ]


# Each caller hears its own document's outcome: a duplicate key only for the document that
# has it, a lost connection (which may have written any of them) for the whole batch.
class GroupedInserts:
    """Inserts into one collection, grouped while a write is under way."""

    def __init__(
        self, collection: AsyncCollection[Document], max_batch: int = MOST_PER_WRITE
    ) -> None:
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
            return _outcomes(e, len(batch))
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


def _fail[Item, Outcome](waiting: list[Waiting[Item, Outcome]], error: Exception) -> None:
    """Tell each caller still listening that its write failed with (a copy of) `error`."""
    for _, future in waiting:
        if not future.done():
            future.set_exception(copy.copy(error))


class Batched[Item, Outcome]:
    """Items added while a write is under way go together in the next one; each caller hears
    its own items' outcomes.

    `write` returns one outcome per item, or an Exception for an item that failed (raising
    fails every item of the batch). The writes run in a task of their own, so the caller
    that started one going away cuts no one off. The items of a caller gone before their
    write started are dropped, unless `keep_gone` (writes whose callers need no outcome, such
    as counts, are made all the same). Items with the same `apart` key never share a write:
    the later waits for the next, so writes to one document keep their order. A write takes
    at most `most` items; the others wait for the next, in the order they came.
    """

    def __init__(
        self,
        write: Callable[[list[Item]], Awaitable[list[Outcome | Exception]]],
        *,
        apart: Callable[[Item], object] | None = None,
        keep_gone: bool = False,
        most: int | None = None,
    ) -> None:
        self._write = write
        self._apart = apart
        self._keep_gone = keep_gone
        self._most = most
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
        if items and (self._writer is None or self._writer.done()):
            # A context of its own: the first caller's log context is not every write's.
            self._writer = loop.create_task(self._drain(), context=contextvars.Context())
            self._writer.add_done_callback(self._ended)
        try:
            return list(await asyncio.shield(asyncio.gather(*futures)))
        except asyncio.CancelledError:
            if not self._keep_gone:
                for future in futures:
                    future.cancel()  # dropped, unless its write has started
            raise

    async def _drain(self) -> None:
        while batch := self._take_batch():
            self.writes += 1
            try:
                outcomes: list[Outcome | Exception] = await self._write([item for item, _ in batch])
            except Exception as e:
                outcomes = [copy.copy(e).with_traceback(e.__traceback__) for _ in batch]
            except BaseException as e:
                # Cut off (the process stops): any of them may have been written.
                _fail(batch, AutoReconnect(f"the write was interrupted: {e!r}"))
                raise
            if len(outcomes) != len(batch):
                log.error(
                    "grouped write gave a wrong count", items=len(batch), outcomes=len(outcomes)
                )
                _fail(batch, AutoReconnect("the write's outcome is unknown"))
                continue
            for (_, future), outcome in zip(batch, outcomes, strict=True):
                if future.done():
                    continue
                if isinstance(outcome, Exception):
                    future.set_exception(outcome)
                else:
                    future.set_result(outcome)

    def _ended(self, writer: "asyncio.Task[None]") -> None:
        """A writer that stopped short (cancelled, even before its first step) leaves nobody
        waiting: what it had not taken yet fails as not written."""
        if writer.cancelled() or writer.exception() is not None:
            waiting, self._pending = self._pending, []
            _fail(waiting, AutoReconnect("the writer stopped before this write"))

    def _take_batch(self) -> list[Waiting[Item, Outcome]]:
        batch, self._pending = self._next_batch()
        return batch

    def _next_batch(self) -> tuple[list[Waiting[Item, Outcome]], list[Waiting[Item, Outcome]]]:
        """The next write's items, and those left waiting, each in the order they came; the
        items of callers gone meanwhile are dropped."""
        live = [queued for queued in self._pending if not queued[1].done()]
        if self._apart is None:
            cut = len(live) if self._most is None else self._most
            return live[:cut], live[cut:]
        batch: list[Waiting[Item, Outcome]] = []
        left: list[Waiting[Item, Outcome]] = []
        keys: set[object] = set()
        for queued in live:
            key = self._apart(queued[0])
            full = self._most is not None and len(batch) >= self._most
            (left if full or key in keys else batch).append(queued)
            keys.add(key)
        return batch, left


# Errors of one operation's own making (a document BSON cannot hold, an int too large for it)
# that a bulk write raises for the whole batch: its operations are then written one by one,
# so each caller hears its own.
ONE_OPERATIONS_OWN = (InvalidDocument, OverflowError)


class GroupedWrites:
    """Writes to one collection whose callers need no outcome of their own (upserts of
    counters and summaries): made at once, they share one unordered bulk write, made even
    when their caller has gone meanwhile."""

    def __init__(self, collection: AsyncCollection[Document]) -> None:
        self._collection = collection
        self._batched: Batched[WriteOp, None] = Batched(
            self._write, keep_gone=True, most=MOST_PER_WRITE
        )

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
            return _outcomes(e, len(operations))
        except ONE_OPERATIONS_OWN:
            if len(operations) == 1:
                raise
            return [await _caught(self._write([operation])) for operation in operations]
        return [None] * len(operations)


async def _caught[T](outcomes: Awaitable[list[T | Exception]]) -> T | Exception:
    """The one outcome of writing one item alone, its error included."""
    try:
        [outcome] = await outcomes
    except Exception as e:
        return e
    return outcome


@dataclass(frozen=True)
class _Update:
    document_id: Any
    where: Document
    change: Document
    operation: UpdateOne  # the same, made when the caller asked, so a malformed one fails it
    token: tuple[str, str]  # the field the update stamps, and its value
    read: bool  # the caller wants the document as the update left it

    def took(self, document: Document) -> bool:
        """Whether `document` holds this update's stamp."""
        field, value = self.token
        return bool(document.get(field) == value)


# Whether an update applied, and the document after it when it did and was read back.
type _Applied = tuple[bool, Document | None]


class GroupedUpdates:
    """Conditional updates of one document each (its filter names the `_id`) made while a
    write is under way go together in the next bulk write; one alone is written as it would
    be without grouping (`update_one`, `find_one_and_update`).

    Each caller hears whether its own update applied. Each update stamps a field the caller
    names (`token`) with a random value of its own. A bulk write only says how many applied:
    when that is all of them, each did, and when it is none, none did; otherwise the batch's
    documents are read back and the stamp each holds says whose update applied. Of two
    updates of one document, never in one write, the later is written once the earlier is
    known: the stamp read back is the latest this process wrote. Another process's update
    stamping the same field between the write and the read back makes an update that applied
    read as one that did not, which callers take as a race lost. Callers that want the
    updated document (`update_and_read`, a grouped findAndModify) get it from that one read.
    """

    def __init__(self, collection: AsyncCollection[Document]) -> None:
        # The read back must see the write: from the primary, whatever the client prefers.
        self._collection = collection.with_options(read_preference=ReadPreference.PRIMARY)
        self._batched: Batched[_Update, _Applied] = Batched(
            self._write, apart=lambda queued: queued.document_id, most=MOST_PER_WRITE
        )
        self.reads = 0  # read backs made, for the tests

    @property
    def writes(self) -> int:
        return self._batched.writes

    async def update(self, where: Document, change: Document, *, token: str) -> bool:
        """Apply `change` to the document `where` picks, stamping `token`; whether it
        applied."""
        [(applied, _)] = await self._batched.add([_stamped(where, change, token, read=False)])
        return applied

    async def update_and_read(
        self, where: Document, change: Document, *, token: str
    ) -> Document | None:
        """Apply `change` to the document `where` picks, stamping `token`; the document
        after, or None when the update did not apply."""
        [(_, document)] = await self._batched.add([_stamped(where, change, token, read=True)])
        return document

    async def _write(self, batch: list[_Update]) -> list[_Applied | Exception]:
        """Each update's outcome, or the error it met."""
        if len(batch) == 1:
            return [await self._alone(batch[0])]
        failed: list[Exception | None] = [None] * len(batch)
        matched = None
        try:
            result = await self._collection.bulk_write(
                [queued.operation for queued in batch], ordered=False
            )
            matched = result.matched_count
        except BulkWriteError as e:
            failed = _outcomes(e, len(batch))
        except ONE_OPERATIONS_OWN:
            return [await _caught(self._write([queued])) for queued in batch]
        reading = any(queued.read for queued in batch)
        if matched == 0 or (matched == len(batch) and not reading):
            return [(matched == len(batch), None)] * len(batch)
        self.reads += 1
        everything = matched == len(batch)
        ids = list({queued.document_id for queued in batch if queued.read or not everything})
        try:
            found = {d["_id"]: d async for d in self._collection.find({"_id": {"$in": ids}})}
        except Exception as e:
            # The writes went; only what each did is unknown (the refusals are known).
            return [error or copy.copy(e) for error in failed]
        outcomes: list[_Applied | Exception] = []
        for queued, error in zip(batch, failed, strict=True):
            document = found.get(queued.document_id)
            applied = everything or (document is not None and queued.took(document))
            outcomes.append(error or (applied, document if applied and queued.read else None))
        return outcomes

    async def _alone(self, queued: _Update) -> _Applied:
        """One update with nothing else waiting: the single-document call."""
        if queued.read:
            document = await self._collection.find_one_and_update(
                queued.where, queued.change, return_document=ReturnDocument.AFTER
            )
            return document is not None, document
        result = await self._collection.update_one(queued.where, queued.change)
        return result.matched_count == 1, None


def _stamped(where: Document, change: Document, token: str, *, read: bool) -> _Update:
    """The update of `where` by `change`, stamping `token` with a random value of its own;
    built here, in its caller, so a malformed one fails there."""
    value = secrets.token_hex(8)
    stamped = change | {"$set": {**change.get("$set", {}), token: value}}
    return _Update(where["_id"], where, stamped, UpdateOne(where, stamped), (token, value), read)


def grouped_inserts(store: Store, collection: AsyncCollection[Document]) -> GroupedInserts:
    """The process's grouped inserts into `collection` of `store`."""
    return store.grouped(GroupedInserts, collection)


def grouped_writes(store: Store, collection: AsyncCollection[Document]) -> GroupedWrites:
    """The process's grouped writes to `collection` of `store`."""
    return store.grouped(GroupedWrites, collection)


def grouped_updates(store: Store, collection: AsyncCollection[Document]) -> GroupedUpdates:
    """The process's grouped conditional updates of `collection` of `store`."""
    return store.grouped(GroupedUpdates, collection)
