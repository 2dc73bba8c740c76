"""Test helpers that reach a broker queue directly, past the services."""

import aio_pika


async def queued(
    url: str, queue: str, body: bytes, message_id: str, *, kind: str | None = None, **headers: str
) -> None:
    """Put a message on one queue, as a consumer's dead-lettering or a publisher would."""
    async with await aio_pika.connect(url) as connection:
        channel = await connection.channel(publisher_confirms=True)
        message = aio_pika.Message(
            body,
            headers=dict(headers),
            message_id=message_id,
            content_type="application/json",
            type=kind,
        )
        await channel.default_exchange.publish(message, routing_key=queue, mandatory=True)
