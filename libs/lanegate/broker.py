"""RabbitMQ: topology as data, confirmed publishing, and the one consumer runner."""

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

import aio_pika
import structlog
from aio_pika.abc import (
    AbstractChannel,
    AbstractExchange,
    AbstractIncomingMessage,
    AbstractQueue,
    AbstractRobustConnection,
)
from pamqp.common import FieldTable
from pydantic import ValidationError

from lanegate import events, requests_log
from lanegate.metrics import DEPENDENCY_UP, EVENTS_CONSUMED, EVENTS_PUBLISHED

log = structlog.get_logger(__name__)

RETRY_DELAYS_SECONDS = (1, 5, 30, 300)
ATTEMPT_HEADER = "x-lanegate-attempt"
REASON_HEADER = "x-lanegate-reason"


@dataclass(frozen=True)
class QueueSpec:
    """A service's work queue and the routing keys bound to it."""

    name: str
    bindings: tuple[str, ...]


# Every service declares the whole topology at start (idempotent), so an event published
# before its consumer ever ran still has a durable queue to wait in.
TOPOLOGY = (
    QueueSpec(
        "lane-scheduler",
        (
            "message.accepted",
            "message.handed_back",
            "message.status",
            "instance.state",
            "message.canceled",
            "message.expired",
            "instance.paused",
            "instance.resumed",
            "instance.configured",
        ),
    ),
    QueueSpec(
        "provider-sender",
        (
            "message.dispatch",
            "provider.command",
            "provider.rpc",
            "provider.callback",
            "instance.resumed",
        ),
    ),
    QueueSpec(
        "webhook-dispatcher",
        (
            "message.status",
            "message.received",
            "instance.state",
            "message.expired",
            "instance.paused",
            "instance.resumed",
            "webhook.replay",
            "template.status",
            "otp.finished",
            "instance.health",
        ),
    ),
    QueueSpec("template-sync", ("template.sync", "template.rpc", "template.reported")),
)


# A handler returns to ack, raises `Retry` to come back later through a TTL retry queue, or
# raises `Reject` to go to the queue's dead-letter queue with the reason; it never acks itself.
class Retry(Exception):
    """Raised by a handler when the event should be handled again after `after` seconds.

    An uncounted retry (`counted=False`: the event waits on something that is not its
    failure, such as a shard changing hands) spends none of the event's attempts.
    """

    def __init__(self, after: float, reason: str = "retry requested", *, counted: bool = True):
        super().__init__(reason)
        self.after = after
        self.reason = reason
        self.counted = counted


class Reject(Exception):
    """Raised by a handler when the event can never succeed; it goes to the dead-letter queue."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def retry_queue_for(queue: str, after: float) -> tuple[str, int]:
    """Pick the shortest retry tier that waits at least `after` seconds (the longest as a cap)."""
    delay = next((d for d in RETRY_DELAYS_SECONDS if d >= after), RETRY_DELAYS_SECONDS[-1])
    return f"{queue}.delay.{delay}s", delay


def backoff_for(attempt: int) -> float:
    """Delay before retry number `attempt` (1-based) after an unexpected failure."""
    return float(RETRY_DELAYS_SECONDS[min(attempt, len(RETRY_DELAYS_SECONDS)) - 1])


def _delay_arguments(target: str, delay: int) -> FieldTable:
    """A retry tier: hold each message `delay` s, then dead-letter it into `target`.

    Quorum queues dead-letter at most once unless told otherwise: a message whose
    TTL ran out while the broker restarted was dropped (every one of them, when
    tried). At-least-once dead-lettering keeps it until `target` confirms it, and
    needs the reject-publish overflow. Queue arguments cannot change in place, so
    these tiers are named `.delay.` where the at-most-once ones were `.retry.`.
    """
    return {
        "x-message-ttl": delay * 1000,
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": target,
        "x-dead-letter-strategy": "at-least-once",
        "x-overflow": "reject-publish",
    }


class Broker:
    """One robust connection, a confirmed publishing channel and the declared topology."""

    def __init__(self, url: str, namespace: str) -> None:
        self._url = url
        self.namespace = namespace
        self._connection: AbstractRobustConnection | None = None
        self._channel: AbstractChannel | None = None
        self._exchange: AbstractExchange | None = None

    @property
    def exchange_name(self) -> str:
        return f"{self.namespace}.events"

    def queue_name(self, name: str) -> str:
        """Full name of a service queue in this namespace."""
        return f"{self.namespace}.{name}"

    def queue_names(self) -> list[str]:
        """Every queue the topology declares, retry and dead-letter queues included."""
        names = []
        for spec in TOPOLOGY:
            main = self.queue_name(spec.name)
            names += [main, f"{main}.dead"]
            names += [retry_queue_for(main, d)[0] for d in RETRY_DELAYS_SECONDS]
        return names

    async def connect(self) -> None:
        """Open the connection and publishing channel, and declare the topology."""
        self._connection = await aio_pika.connect_robust(
            self._url,
            client_properties={
                "connection_name": f"lanegate:{self.namespace}",
            },
        )
        self._channel = await self._connection.channel(publisher_confirms=True)
        self._exchange = await self._declare(self._channel)

    async def _declare(self, channel: AbstractChannel) -> AbstractExchange:
        exchange = await channel.declare_exchange(
            self.exchange_name, aio_pika.ExchangeType.TOPIC, durable=True
        )
        quorum: FieldTable = {"x-queue-type": "quorum"}
        for spec in TOPOLOGY:
            main = self.queue_name(spec.name)
            queue = await channel.declare_queue(main, durable=True, arguments=quorum)
            for key in spec.bindings:
                await queue.bind(exchange, routing_key=key)
            await channel.declare_queue(f"{main}.dead", durable=True, arguments=quorum)
            for delay in RETRY_DELAYS_SECONDS:
                await channel.declare_queue(
                    retry_queue_for(main, delay)[0],
                    durable=True,
                    arguments={**quorum, **_delay_arguments(main, delay)},
                )
        return exchange

    async def close(self) -> None:
        """Close the connection (and with it every channel)."""
        if self._connection is not None:
            await self._connection.close()
            self._connection = None

    @property
    def connection(self) -> AbstractRobustConnection:
        if self._connection is None:
            raise RuntimeError("broker is not connected")
        return self._connection

    def is_ready(self) -> bool:
        """True while the connection and publishing channel are open."""
        ready = (
            self._connection is not None
            and not self._connection.is_closed
            and self._channel is not None
            and not self._channel.is_closed
        )
        DEPENDENCY_UP.labels("broker").set(1 if ready else 0)
        return ready

    async def publish(self, event: events.Event, *, expires_in: float | None = None) -> None:
        """Publish one event and wait for its confirm (dropped if unread after `expires_in` s)."""
        await self.publish_many([event], expires_in=expires_in)

    async def publish_many(
        self, batch: Iterable[events.Event], *, expires_in: float | None = None
    ) -> None:
        """Publish events pipelined on one channel and wait until every one is confirmed."""
        if self._exchange is None:
            raise RuntimeError("broker is not connected")
        exchange = self._exchange
        pending = []
        for event in batch:
            kind = getattr(event, "kind")  # noqa: B009 - every concrete event has a kind
            message = aio_pika.Message(
                events.encode(event),
                headers=_carried(),
                content_type="application/json",
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                message_id=event.id,
                type=kind,
                expiration=expires_in,
            )
            pending.append((kind, exchange.publish(message, routing_key=kind, mandatory=True)))
        if len(pending) == 1:
            await pending[0][1]
        else:
            await asyncio.gather(*(publish for _, publish in pending))
        for kind, _ in pending:
            EVENTS_PUBLISHED.labels(kind).inc()

    async def publish_later(self, event: events.Event, queue: str, after: float) -> None:
        """Deliver an event to one service queue only, after about `after` s (via a retry tier)."""
        target, _ = retry_queue_for(self.queue_name(queue), after)
        kind = getattr(event, "kind")  # noqa: B009 - every concrete event has a kind
        await self.send_to_queue(
            target,
            aio_pika.Message(
                events.encode(event),
                headers=_carried(),
                content_type="application/json",
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                message_id=event.id,
                type=kind,
            ),
        )
        EVENTS_PUBLISHED.labels(kind).inc()

    async def reply(self, reply_to: str, correlation_id: str, body: dict[str, Any]) -> None:
        """Answer an RPC request on the requester's reply queue (dropped if it is gone)."""
        if self._channel is None:
            raise RuntimeError("broker is not connected")
        await self._channel.default_exchange.publish(
            aio_pika.Message(
                json.dumps(body).encode(),
                content_type="application/json",
                correlation_id=correlation_id,
            ),
            routing_key=reply_to,
        )

    async def send_to_queue(self, queue: str, message: aio_pika.Message) -> None:
        """Publish straight to a queue through the default exchange, with a confirm."""
        if self._channel is None:
            raise RuntimeError("broker is not connected")
        await self._channel.default_exchange.publish(message, routing_key=queue, mandatory=True)


EventHandler = Callable[[events.AnyEvent], Awaitable[None]]


class RpcTimeout(Exception):
    """Raised when an RPC request got no answer before its timeout."""


class RpcClient:
    """Requests that wait for an answer, each answered on this process's exclusive reply queue.

    The request is an event with `replyTo` naming the queue; it expires in the
    broker with the timeout, so a late consumer never acts on an abandoned request.
    """

    def __init__(self, broker: Broker) -> None:
        self._broker = broker
        self._channel: AbstractChannel | None = None
        self._queue: AbstractQueue | None = None
        self._waiting: dict[str, asyncio.Future[dict[str, Any]]] = {}

    async def start(self) -> None:
        """Declare the reply queue and start listening on it."""
        self._channel = await self._broker.connection.channel()
        self._queue = await self._channel.declare_queue(exclusive=True, auto_delete=True)
        await self._queue.consume(self._on_reply, no_ack=True)

    @property
    def reply_to(self) -> str:
        if self._queue is None:
            raise RuntimeError("rpc client is not started")
        return self._queue.name

    async def call(
        self, request: events.Event, wait: float, *, expires_in: float | None = None
    ) -> dict[str, Any]:
        """Publish `request` and wait for its answer; raises RpcTimeout. A request that
        `expires_in` longer than the `wait` is still carried out after the caller gave up."""
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[request.id] = future
        try:
            await self._broker.publish(request, expires_in=max(wait, expires_in or wait))
            return await asyncio.wait_for(future, wait)
        except TimeoutError as e:
            raise RpcTimeout(f"no answer within {wait:g} s") from e
        finally:
            self._waiting.pop(request.id, None)

    async def _on_reply(self, message: AbstractIncomingMessage) -> None:
        future = self._waiting.get(message.correlation_id or "")
        if future is None or future.done():
            return  # the caller gave up already
        try:
            future.set_result(json.loads(message.body))
        except ValueError as e:
            future.set_exception(e)

    async def close(self) -> None:
        """Close the reply channel (the exclusive queue goes with it)."""
        if self._channel is not None:
            with contextlib.suppress(Exception):
                await self._channel.close()


class Consumer:
    """Consume one queue: parse, run the handler, then ack, retry or dead-letter."""

    def __init__(
        self,
        broker: Broker,
        queue: str,
        handler: EventHandler,
        *,
        prefetch: int,
        max_attempts: int,
    ) -> None:
        self._broker = broker
        self.queue = broker.queue_name(queue)
        self._handler = handler
        self._prefetch = prefetch
        self._max_attempts = max_attempts
        self._channel: AbstractChannel | None = None
        self._amqp_queue: AbstractQueue | None = None
        self._tag: str | None = None
        self._in_flight: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Open a channel with the prefetch window and begin consuming."""
        self._channel = await self._broker.connection.channel()
        await self._channel.set_qos(prefetch_count=self._prefetch)
        self._amqp_queue = await self._channel.get_queue(self.queue, ensure=True)
        self._tag = await self._amqp_queue.consume(self._on_message)

    async def stop(self, grace: float) -> None:
        """Stop taking deliveries, let in-flight handlers finish for `grace` seconds, close."""
        if self._amqp_queue is not None and self._tag is not None:
            with contextlib.suppress(Exception):
                await self._amqp_queue.cancel(self._tag)
        if self._in_flight:
            _, late = await asyncio.wait(self._in_flight, timeout=grace)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        if self._channel is not None:
            with contextlib.suppress(Exception):
                await self._channel.close()

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._in_flight.add(task)
        try:
            await self._process(message)
        finally:
            if task is not None:
                self._in_flight.discard(task)

    async def _process(self, message: AbstractIncomingMessage) -> None:
        attempt = int(str((message.headers or {}).get(ATTEMPT_HEADER, 0))) + 1
        started = time.perf_counter()
        # Each delivery runs in a task of its own: the id it adopts ends with it.
        requests_log.adopt((message.headers or {}).get(requests_log.EVENT_HEADER))
        with structlog.contextvars.bound_contextvars(
            queue=self.queue, event_id=message.message_id, attempt=attempt
        ):
            try:
                event = events.parse(message.body)
            except ValidationError as e:
                await self._dead(message, f"invalid event: {_summary(e)}", attempt)
                return
            with structlog.contextvars.bound_contextvars(
                event_kind=event.kind, instance=event.instanceName
            ):
                try:
                    await self._handler(event)
                except Retry as e:
                    spent = attempt if e.counted else attempt - 1
                    await self._retry(message, e.after, e.reason, spent)
                except Reject as e:
                    await self._dead(message, e.reason, attempt)
                except asyncio.CancelledError:
                    # Cancelled because the connection dropped, the delivery is back in the
                    # queue already and the nack has no channel left to go on.
                    with contextlib.suppress(aio_pika.exceptions.ChannelInvalidStateError):
                        await message.nack(requeue=True)
                    raise
                except Exception as e:
                    log.exception("handler failed", error=repr(e))
                    await self._retry(message, backoff_for(attempt), repr(e), attempt)
                else:
                    await message.ack()
                    EVENTS_CONSUMED.labels(self.queue, "ack").inc()
                    log.debug("handled", seconds=round(time.perf_counter() - started, 4))

    async def _retry(
        self, message: AbstractIncomingMessage, after: float, reason: str, attempt: int
    ) -> None:
        if attempt >= self._max_attempts:
            await self._dead(message, f"gave up after {attempt} attempts: {reason}", attempt)
            return
        target, delay = retry_queue_for(self.queue, after)
        await self._forward(message, target, {ATTEMPT_HEADER: attempt, REASON_HEADER: reason})
        EVENTS_CONSUMED.labels(self.queue, "retry").inc()
        log.info("retry scheduled", after_seconds=delay, reason=reason)

    async def _dead(self, message: AbstractIncomingMessage, reason: str, attempt: int) -> None:
        await self._forward(
            message, f"{self.queue}.dead", {ATTEMPT_HEADER: attempt, REASON_HEADER: reason}
        )
        EVENTS_CONSUMED.labels(self.queue, "dead").inc()
        log.warning("dead-lettered", reason=reason)

    async def _forward(
        self, message: AbstractIncomingMessage, queue: str, headers: dict[str, str | int]
    ) -> None:
        """Copy a delivery to another queue (confirmed), then ack the original."""
        copy = aio_pika.Message(
            message.body,
            headers={**(message.headers or {}), **headers},
            content_type=message.content_type,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            message_id=message.message_id,
            type=message.type,
        )
        await self._broker.send_to_queue(queue, copy)
        await message.ack()


def _carried() -> FieldTable:
    """The headers an event takes from the request (or event) being handled: its id."""
    request_id = requests_log.current.get()
    return {requests_log.EVENT_HEADER: request_id} if request_id else {}


def _summary(error: ValidationError) -> str:
    parts = [f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in error.errors()]
    return "; ".join(parts[:5])
