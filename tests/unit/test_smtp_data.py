"""A mail's DATA made piece by piece: files encoded as they are read, periods doubled, and
what a relay gets parses back to the same parts."""

import os
import re
from collections.abc import AsyncGenerator
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default

from lanegate.attachments import Attachment, Chunks
from lanegate.providers.smtp_data import BLOCK_BYTES, data_pieces

FILE = os.urandom(BLOCK_BYTES * 5 + 1234)


def _mail() -> EmailMessage:
    mail = EmailMessage()
    mail["From"] = "orders@shop.example"
    mail["To"] = "ana@example.com"
    mail["Subject"] = "Your order"
    mail.set_content("Thanks!\n.a line that starts with a period\n")
    mail.add_alternative("<p>Thanks!</p>", subtype="html")
    return mail


def _unstuffed(data: bytes) -> bytes:
    return re.sub(rb"(?m)^\.\.", b".", data)


async def test_a_file_is_encoded_as_it_is_read_and_the_mail_parses_back_whole() -> None:
    read: list[int] = []  # bytes of the file read when each piece came out

    async def chunks() -> AsyncGenerator[bytes]:
        for at in range(0, len(FILE), 64 * 1024):
            read.append(at)
            yield FILE[at : at + 64 * 1024]

    files = [Attachment("invoice.pdf", "application/pdf", Chunks(chunks()))]
    pieces: list[bytes] = []
    seen_when: list[int] = []
    async for piece in data_pieces(_mail(), files, eight_bit=False, utf8=False):
        pieces.append(piece)
        seen_when.append(read[-1] if read else 0)

    # The first encoded block left before the file was read to its end.
    assert seen_when[2] < len(FILE) - 64 * 1024
    data = b"".join(pieces)
    assert b"\r\n..a line that starts with a period\r\n" in data
    assert b"\n" not in data.replace(b"\r\n", b"")  # CRLF lines only
    mail = BytesParser(policy=default).parsebytes(_unstuffed(data))
    assert isinstance(mail, EmailMessage)
    [attached] = list(mail.iter_attachments())
    assert ("invoice.pdf", "application/pdf", FILE) == (
        attached.get_filename(),
        attached.get_content_type(),
        attached.get_content(),
    )
    body = mail.get_body(("plain",))
    assert body is not None
    assert ".a line that starts with a period" in body.get_content()
    html = mail.get_body(("html",))
    assert html is not None and "<p>Thanks!</p>" in html.get_content()


async def test_a_mail_without_files_is_one_piece() -> None:
    [piece] = [p async for p in data_pieces(_mail(), [], eight_bit=True, utf8=False)]
    mail = BytesParser(policy=default).parsebytes(_unstuffed(piece))
    assert isinstance(mail, EmailMessage)
    assert ("Your order", []) == (mail["Subject"], list(mail.iter_attachments()))
