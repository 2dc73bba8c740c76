"""Rows of messages to send as spreadsheets: the import template (.xlsx) and reading an
uploaded .xlsx or CSV file into one dict per row, keyed by the header row."""

import csv
import io
import zipfile
from datetime import date, datetime
from typing import Any

from openpyxl import Workbook, load_workbook

from lanegate.errors import InvalidInput

XLSX_MEDIA = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

# The columns a file may have, in the template's order, with the template's example row.
COLUMNS: dict[str, Any] = {
    "connectorId": "tenant__client__label",
    "to": "5511999998888",
    "message": "Olá João, seu pedido foi confirmado!",
    "contactName": "João Silva",
    "messageType": "TRANSACTIONAL",
    "priority": 5,
    "scheduledAt": "",
    "requiresApproval": False,
    "forceDirect": False,
    "notes": "Pedido #12345",
    "webhookUrl": "",
    "externalId": "PEDIDO-12345",
    "attachmentUrl": "",
}


def template() -> bytes:
    """The import template: the header row and one example row."""
    book = Workbook()
    sheet = book.active
    sheet.title = "mensagens"
    sheet.append(list(COLUMNS))
    sheet.append([value if value != "" else None for value in COLUMNS.values()])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def read_rows(data: bytes, max_rows: int) -> list[tuple[int, dict[str, Any]]]:
    """The file's rows (.xlsx by its zip signature, else UTF-8 CSV) with their line numbers,
    blank cells and blank rows left out; 400 on an unreadable file, an unknown column or
    more than `max_rows` rows."""
    table = _xlsx_table(data, max_rows) if data[:4] == b"PK\x03\x04" else _csv_table(data, max_rows)
    if not table:
        raise InvalidInput([(["file"], "The file is empty: the first row names the columns")])
    header = [str(cell).strip() if cell is not None else "" for cell in table[0]]
    unknown = [name for name in header if name and name not in COLUMNS]
    if unknown:
        known = ", ".join(COLUMNS)
        raise InvalidInput([(["file", name], f"Unknown column; use: {known}") for name in unknown])
    rows: list[tuple[int, dict[str, Any]]] = []
    for number, cells in enumerate(table[1:], start=2):
        row = {
            name: _cell(value)
            for name, value in zip(header, cells, strict=False)
            if name and value is not None and str(value).strip() != ""
        }
        if row:
            rows.append((number, row))
    if not rows:
        raise InvalidInput([(["file"], "The file has no rows below its header")])
    return rows


def _cell(value: Any) -> Any:
    """A cell as a send body field: whole numbers (phone numbers typed as numbers) as text."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value.strip() if isinstance(value, str) else value


def _too_many(max_rows: int) -> InvalidInput:
    return InvalidInput([(["file"], f"At most {max_rows} rows below the header")])


def _xlsx_table(data: bytes, max_rows: int) -> list[tuple[Any, ...]]:
    try:
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as e:
        raise InvalidInput([(["file"], "Not a readable .xlsx file")]) from e
    try:
        table: list[tuple[Any, ...]] = []
        for cells in book.worksheets[0].iter_rows(values_only=True):
            table.append(tuple(cells))
            if len(table) > max_rows + 1:
                raise _too_many(max_rows)
        return table
    finally:
        book.close()


def _csv_table(data: bytes, max_rows: int) -> list[tuple[Any, ...]]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise InvalidInput([(["file"], "Send a .xlsx file or a UTF-8 CSV file")]) from e
    first_line = text.split("\n", 1)[0]
    delimiter = max(",;\t", key=first_line.count)
    table: list[tuple[Any, ...]] = []
    try:
        for cells in csv.reader(io.StringIO(text), delimiter=delimiter):
            table.append(tuple(cells))
            if len(table) > max_rows + 1:
                raise _too_many(max_rows)
    except csv.Error as e:
        raise InvalidInput([(["file"], f"Not a readable CSV file: {e}")]) from e
    return table
