"""A mail as the bytes of an SMTP `DATA`, its files base64-encoded as they are read, and the
`DATA` itself written piece by piece, so a file is never held whole in memory."""

import asyncio
import base64
import re
import secrets
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from email.message import EmailMessage, MIMEPart
from email.policy import SMTP

import aiosmtplib

from lanegate.attachments import Attachment

# 57 bytes are one 76-character base64 line (RFC 2045); a block holds many lines.
LINE_BYTES = 57
BLOCK_BYTES = LINE_BYTES * 1024
# A line starting with a period gets a second one (RFC 5321 4.5.2).
_PERIOD = re.compile(rb"(?m)^\.")


def _stuffed(lines: bytes) -> bytes:
    return _PERIOD.sub(b"..", lines)


def _base64_lines(data: bytes) -> bytes:
    return b"".join(
        base64.b64encode(data[at : at + LINE_BYTES]) + b"\r\n"
        for at in range(0, len(data), LINE_BYTES)
    )


async def _encoded(file: Attachment) -> AsyncIterator[bytes]:
    """The file's bytes as base64 lines, a block at a time, as its chunks arrive."""
    held = b""
    async for chunk in file.chunks:
        held += chunk
        if len(held) >= BLOCK_BYTES:
            whole = len(held) // LINE_BYTES * LINE_BYTES
            yield _base64_lines(held[:whole])
            held = held[whole:]
    if held:
        yield _base64_lines(held)


def _file_part_head(file: Attachment) -> bytes:
    kind, _, sub = file.content_type.partition("/")
    part = MIMEPart(policy=SMTP)
    part["Content-Type"] = f"{kind}/{sub or 'octet-stream'}"
    part.set_param("name", file.file_name)
    part["Content-Disposition"] = "attachment"
    part.set_param("filename", file.file_name, header="Content-Disposition")
    part["Content-Transfer-Encoding"] = "base64"
    return part.as_bytes()  # its headers and the blank line


async def data_pieces(
    mail: EmailMessage, files: Sequence[Attachment], *, eight_bit: bool, utf8: bool
) -> AsyncIterator[bytes]:
    """`mail` with `files` attached, as `DATA` bytes (CRLF lines, periods doubled, without the
    final period line): the mail's own parts first, then each file encoded as it is read."""
    policy = SMTP.clone(cte_type="8bit" if eight_bit else "7bit", utf8=utf8)
    if not files:
        yield _stuffed(mail.as_bytes(policy=policy))
        return
    mail.make_mixed()
    boundary = f"lanegate-{secrets.token_hex(16)}"
    mail.set_boundary(boundary)
    closing = f"--{boundary}--\r\n".encode()
    flat = mail.as_bytes(policy=policy)
    assert flat.endswith(closing), "a mixed mail ends with its closing boundary"
    yield _stuffed(flat[: -len(closing)])
    for file in files:
        yield f"--{boundary}\r\n".encode() + _file_part_head(file)
        async for lines in _encoded(file):
            yield lines  # base64 lines never start with a period
    yield closing


@dataclass(frozen=True)
class Envelope:
    """A mail's sender and recipient as the relay took them, and how its body may go."""

    eight_bit: bool  # the relay takes 8-bit bodies (8BITMIME)
    utf8: bool  # an address is not ASCII (SMTPUTF8)


async def open_envelope(client: aiosmtplib.SMTP, sender: str, recipient: str) -> Envelope:
    """`MAIL FROM` and `RCPT TO` on an open session. Raises what aiosmtplib raises."""
    utf8 = not (sender + recipient).isascii()
    options = ["SMTPUTF8"] if utf8 else []
    eight_bit = client.supports_extension("8BITMIME")
    if eight_bit:
        options.append("BODY=8BITMIME")
    await client.mail(sender, options=options, encoding="utf-8" if utf8 else "ascii")
    await client.rcpt(recipient, encoding="utf-8" if utf8 else "ascii")
    return Envelope(eight_bit, utf8)


async def send_data(
    client: aiosmtplib.SMTP, envelope: Envelope, mail: EmailMessage, files: Sequence[Attachment]
) -> str:
    """The mail's `DATA`, written as it is made and drained as the relay reads it (each
    piece within the session's timeout); the relay's final answer. Raises what aiosmtplib
    raises, TimeoutError when the relay stops reading."""
    protocol = client.protocol
    assert protocol is not None, "an open session has its protocol"
    started = await protocol.execute_command(b"DATA", timeout=client.timeout)
    if started.code != 354:
        raise aiosmtplib.SMTPDataError(started.code, started.message)
    pieces = data_pieces(mail, files, eight_bit=envelope.eight_bit, utf8=envelope.utf8)
    async for piece in pieces:
        protocol.write(piece)
        # aiosmtplib (pinned) has no public drain: its protocol is asyncio's flow-controlled
        # one, whose helper waits while the transport's buffer is over its high-water mark.
        async with asyncio.timeout(client.timeout):
            await protocol._drain_helper()
    protocol.write(b".\r\n")
    answer = await protocol.read_response(timeout=client.timeout)
    if answer.code != 250:
        raise aiosmtplib.SMTPDataError(answer.code, answer.message)
    return answer.message
