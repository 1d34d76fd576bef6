"""Reading a table of factor values: a CSV file, bounded and checked.

A table is UTF-8 text (a byte-order mark is allowed), comma separated, with
one header line naming the columns and one line per row, each with exactly
as many fields as the header; blank lines are skipped. Its size is bounded
(:data:`MAX_TABLE_BYTES`) and it must be a regular file. A column named
twice, a row with too few or too many fields, bytes that are not UTF-8 or
more rows than :data:`~cvaeq.limits.MAX_IMAGES` are each a one-line
:class:`~cvaeq.errors.DataError` naming the file and the line.

What the columns mean is the caller's business (:mod:`cvaeq.data.labelled`);
:func:`number_column` reads one as finite numbers.

>>> import tempfile, pathlib
>>> p = pathlib.Path(tempfile.mkdtemp()) / "t.csv"
>>> _ = p.write_text("index,thickness\\n0,2.5\\n1,3\\n")
>>> t = read_table(p)
>>> t.columns, t.column("thickness"), t.lines
(('index', 'thickness'), ['2.5', '3'], [2, 3])
>>> number_column(t, "thickness").tolist()
[2.5, 3.0]
"""

from __future__ import annotations

import csv
import io
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DataError
from ..limits import MAX_IMAGES, read_limited

__all__ = ["Table", "read_table", "number_column", "MAX_TABLE_BYTES"]

#: Largest table file (a million rows of a few factors is ~50 MB).
MAX_TABLE_BYTES = 256 << 20
_MAX_FIELD = 4096  # longest field (a file name or a number)


@dataclass(frozen=True)
class Table:
    """A CSV file's header and rows, as text.

    :param path: the file, for errors.
    :param columns: the header's column names, in order (each once).
    :param rows: one tuple of fields per data row, in file order.
    :param lines: the line number (1 = the header) of each row, for errors.
    """

    path: Path
    columns: tuple[str, ...]
    rows: list[tuple[str, ...]]
    lines: list[int]

    def __len__(self) -> int:
        return len(self.rows)

    def column(self, name: str) -> list[str]:
        """The fields of column ``name``, one per row."""
        i = self.columns.index(name)
        return [row[i] for row in self.rows]


def read_table(path: str | os.PathLike, what: str = "table", max_rows: int = MAX_IMAGES) -> Table:
    """The header and rows of a CSV file (rules in the module doc); ``what`` names it in errors."""
    path = Path(path)
    blob = read_limited(path, f"{what} (CSV)", MAX_TABLE_BYTES, DataError, "give a CSV file")
    try:
        text = blob.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = blob[: e.start].count(b"\n") + 1
        raise DataError(
            f"{path}: line {line}: not UTF-8 text (byte 0x{blob[e.start]:02x}); save the {what} as UTF-8 CSV"
        ) from None
    if "\x00" in text:
        raise DataError(f"{path}: holds NUL bytes; a {what} is CSV text")
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    columns: tuple[str, ...] | None = None
    rows: list[tuple[str, ...]] = []
    lines: list[int] = []
    try:
        for fields in reader:
            if not fields or all(not f.strip() for f in fields):
                continue
            fields = [f.strip() for f in fields]
            if any(len(f) > _MAX_FIELD for f in fields):
                raise DataError(f"{path}: line {reader.line_num}: a field longer than {_MAX_FIELD} characters")
            if columns is None:
                columns = _header(path, tuple(fields), what)
                continue
            if len(fields) != len(columns):
                raise DataError(
                    f"{path}: line {reader.line_num}: {len(fields)} fields, but the header names {len(columns)} "
                    f"({', '.join(columns)}); give every row one value per column"
                )
            if len(rows) >= max_rows:
                raise DataError(f"{path}: more than {max_rows:,} rows; at most {max_rows:,} are read")
            rows.append(tuple(fields))
            lines.append(reader.line_num)
    except csv.Error as e:
        raise DataError(f"{path}: line {reader.line_num}: not valid CSV ({e})") from None
    if columns is None:
        raise DataError(f"{path}: empty; a {what} starts with a header line naming its columns")
    if not rows:
        raise DataError(f"{path}: has a header but no rows")
    return Table(path, columns, rows, lines)


def _header(path: Path, fields: tuple[str, ...], what: str) -> tuple[str, ...]:
    if any(not f for f in fields):
        raise DataError(f"{path}: line 1: an empty column name; the header names every column of the {what}")
    seen: set[str] = set()
    for f in fields:
        if f in seen:
            raise DataError(f"{path}: line 1: column {f!r} is named twice; name each column once")
        seen.add(f)
    return fields


def number_column(table: Table, name: str) -> np.ndarray:
    """Column ``name`` as float64, every field a finite number; else a DataError naming the line."""
    out = np.empty(len(table), dtype=np.float64)
    for i, text in enumerate(table.column(name)):
        try:
            value = float(text)
        except ValueError:
            raise DataError(f"{table.path}: line {table.lines[i]}: {name} = {text!r} is not a number") from None
        if not math.isfinite(value):
            raise DataError(f"{table.path}: line {table.lines[i]}: {name} = {text} is not a finite number")
        out[i] = value
    return out
