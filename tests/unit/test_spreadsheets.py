"""Reading import files: cells as send fields, and the refusals of an unreadable file."""

import io
from datetime import datetime

import openpyxl
import pytest

from ingress_api.spreadsheets import COLUMNS, read_rows, template
from lanegate.errors import InvalidInput


def xlsx(rows: list[list[object]]) -> bytes:
    book = openpyxl.Workbook()
    for row in rows:
        book.active.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def test_xlsx_cells_become_send_fields() -> None:
    data = xlsx(
        [
            ["to", "priority", "scheduledAt", "requiresApproval", "message", None],
            [5511999998888, 7, datetime(2030, 1, 2, 3, 4), True, "  oi  ", "ignored"],
            [None, None, None, None, None, None],
            [5511988887777.0, None, None, None, "tchau", None],
        ]
    )
    assert [
        (
            2,
            {
                "to": "5511999998888",
                "priority": "7",
                "scheduledAt": "2030-01-02T03:04:00",
                "requiresApproval": True,
                "message": "oi",
            },
        ),
        (4, {"to": "5511988887777", "message": "tchau"}),
    ] == read_rows(data, 10)


@pytest.mark.parametrize("delimiter", [",", ";", "\t"])
def test_csv_rows_are_read_with_the_header_rows_delimiter(delimiter: str) -> None:
    text = delimiter.join(["to", "message"]) + "\n" + delimiter.join(["551199", "a, b"]) + "\n"
    if delimiter == ",":
        text = 'to,message\n551199,"a, b"\n'
    assert [(2, {"to": "551199", "message": "a, b"})] == read_rows(text.encode("utf-8-sig"), 10)


def test_the_template_reads_back_as_its_example_row() -> None:
    [(number, row)] = read_rows(template(), 10)
    assert 2 == number
    assert {
        k: str(v) if isinstance(v, int) and not isinstance(v, bool) else v
        for k, v in COLUMNS.items()
        if v != ""
    } == row


@pytest.mark.parametrize(
    ("data", "path"),
    [
        (b"to,colour\n1,2\n", ["file", "colour"]),
        (b"PK\x03\x04broken", ["file"]),
        (b"\xff\xfe\xfd", ["file"]),
        (b"", ["file"]),
        (b"to,message\n,\n", ["file"]),
        (b"to\n" + b"1\n" * 11, ["file"]),
    ],
)
def test_an_unreadable_file_is_refused(data: bytes, path: list[str]) -> None:
    with pytest.raises(InvalidInput) as refused:
        read_rows(data, 10)
    assert [path] == [issue["path"] for issue in refused.value.issues]
