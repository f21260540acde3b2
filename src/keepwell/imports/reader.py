"""Read an import file (CSV or Parquet) into an Arrow table of text columns.

Every column comes back as ``string`` so that one set of vectorised parsers
(:mod:`keepwell.imports.parse`) checks CSV and Parquet alike; typed Parquet columns are cast to
text first (timestamps as ``2026-03-01 09:30:00.000000Z``, decimals as ``19.99``).

CSV rules: UTF-8 by default (a UTF-8 byte-order mark is skipped; a UTF-16 byte-order mark switches
to UTF-16), any other encoding by name; the delimiter is sniffed from the header line among
``,`` ``;`` tab and ``|`` (comma when in doubt); fields may be quoted and contain newlines; blank
lines are skipped. A data row whose number of fields differs from the header's is not parsed: it
is returned in :attr:`RawTable.ragged` and becomes a reject.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import hashlib
import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from keepwell.errors import ImportFileError, InvalidInput

DELIMITERS = (",", ";", "\t", "|")
"""Delimiters recognised in a CSV header line (comma wins ties)."""

PARQUET_SUFFIXES = (".parquet", ".pq")


@dataclass(frozen=True)
class RaggedRow:
    """A CSV row with the wrong number of fields; ``row`` is the 1-based data row."""

    row: int
    expected: int
    actual: int
    text: str


@dataclass(frozen=True)
class RawTable:
    """A file's content as text columns, in file order.

    Attributes:
        table: one ``string`` column per file column (names made unique and non-empty).
        rows: data row number (1-based, header not counted) of each table row.
        ragged: CSV rows that could not be split into the header's columns.
        sha256: hex digest of the file's bytes.
        format: ``"csv"`` or ``"parquet"``.
    """

    table: pa.Table
    rows: np.ndarray
    sha256: str
    format: str
    ragged: list[RaggedRow] = field(default_factory=list)

    @property
    def columns(self) -> list[str]:
        return list(self.table.column_names)

    @property
    def total_rows(self) -> int:
        """Every data row of the file, parsed or ragged."""
        return self.table.num_rows + len(self.ragged)


def read_table(path: Path, *, encoding: str = "utf-8", expected: str = "") -> RawTable:
    """Read ``path`` (CSV, optionally ``.gz``, or Parquet) into text columns.

    Args:
        path: the file.
        encoding: text encoding of a CSV file (any Python codec name).
        expected: the columns the import expects, quoted in error hints.

    Raises:
        ImportFileError: empty file, undecodable bytes (naming the line), unusable header,
            unreadable Parquet.
        InvalidInput: unknown encoding name.
    """
    path = Path(path)
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise InvalidInput(
            f"unknown encoding {encoding!r}", expected="a codec name such as utf-8, latin-1, cp1252"
        ) from None
    if path.is_dir():
        raise ImportFileError(f"{path} is a directory", expected="a CSV or Parquet file")
    data = path.read_bytes()
    sha256 = hashlib.sha256(data).hexdigest()
    hint = f"expected a header row with columns {expected}" if expected else None
    if not data.strip():
        raise ImportFileError(f"{path.name} is empty ({len(data)} bytes)", hint=hint)
    if path.suffix.lower() in PARQUET_SUFFIXES or data[:4] == b"PAR1":
        return _read_parquet(data, sha256=sha256, name=path.name)
    if path.suffix.lower() == ".gz":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise ImportFileError(f"{path.name} is not a valid gzip file: {exc}") from None
    return _read_csv(data, sha256=sha256, name=path.name, encoding=encoding, hint=hint)


def _decode(data: bytes, *, encoding: str, name: str) -> tuple[str, bytes]:
    """The file's text and its UTF-8 bytes; undecodable bytes are an error naming the line."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encoding = "utf-16"
    elif codecs.lookup(encoding).name == "utf-8":
        encoding = "utf-8-sig"
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        bad = data[exc.start : exc.end].hex(" ")
        raise ImportFileError(
            f"{name}: line {line} is not valid {encoding.removesuffix('-sig')} "
            f"(byte(s) {bad} at offset {exc.start})",
            hint="the file uses another encoding; try --encoding latin-1 (or cp1252)",
        ) from None
    if encoding == "utf-8-sig":
        utf8 = data[3:] if data.startswith(codecs.BOM_UTF8) else data
    else:
        utf8 = text.encode("utf-8")
    return text, utf8


def _header(text: str, *, name: str, hint: str | None) -> tuple[list[str], str]:
    """The header's column names and the delimiter that splits it into the most columns."""
    first = text[: text.find("\n") if "\n" in text else len(text)]
    best = (",", next(csv.reader([first], delimiter=",")))
    for delimiter in DELIMITERS[1:]:
        cells = next(csv.reader([first], delimiter=delimiter))
        if len(cells) > len(best[1]):
            best = (delimiter, cells)
    delimiter = best[0]
    header = next(csv.reader(io.StringIO(text[: 1 << 20]), delimiter=delimiter))
    header = [h.strip() for h in header]
    if not any(header):
        raise ImportFileError(f"{name}: the first line is not a header row", hint=hint)
    return _unique_names(header, name=name), delimiter


def _unique_names(header: list[str], *, name: str) -> list[str]:
    """Name unnamed columns ``column_<n>``; refuse duplicate names."""
    names = [h or f"column_{i}" for i, h in enumerate(header, start=1)]
    seen: set[str] = set()
    duplicates = sorted({n for n in names if n in seen or seen.add(n)})
    if duplicates:
        raise ImportFileError(
            f"{name}: column name(s) {duplicates} appear more than once in the header",
            hint="rename the duplicate columns so that each name is used once",
        )
    return names


def _read_csv(data: bytes, *, sha256: str, name: str, encoding: str, hint: str | None) -> RawTable:
    text, utf8 = _decode(data, encoding=encoding, name=name)
    if not text.strip():
        raise ImportFileError(f"{name} is empty (no header row)", hint=hint)
    header, delimiter = _header(text, name=name, hint=hint)
    ragged: list[RaggedRow] = []

    def on_invalid(row: pa_csv.InvalidRow) -> str:
        # ``number`` counts records from the header (= 1), skipping blank lines.
        ragged.append(RaggedRow(row.number - 1, row.expected_columns, row.actual_columns, row.text))
        return "skip"

    try:
        table = pa_csv.read_csv(
            io.BytesIO(utf8),
            read_options=pa_csv.ReadOptions(
                column_names=header, skip_rows=1, use_threads=False, block_size=1 << 24
            ),
            parse_options=pa_csv.ParseOptions(
                delimiter=delimiter, newlines_in_values=True, invalid_row_handler=on_invalid
            ),
            convert_options=pa_csv.ConvertOptions(
                column_types=dict.fromkeys(header, pa.string()), strings_can_be_null=False
            ),
        )
    except pa.ArrowInvalid as exc:
        raise ImportFileError(f"{name}: cannot parse as CSV: {exc}".splitlines()[0]) from None
    total = table.num_rows + len(ragged)
    rows = np.arange(1, total + 1, dtype=np.int64)
    if ragged:
        rows = np.delete(rows, [r.row - 1 for r in ragged])
    return RawTable(table=table, rows=rows, sha256=sha256, format="csv", ragged=ragged)


def _read_parquet(data: bytes, *, sha256: str, name: str) -> RawTable:
    try:
        table = pq.read_table(pa.BufferReader(data))
    except (pa.ArrowException, OSError) as exc:
        raise ImportFileError(f"{name} is not a readable Parquet file: {exc}") from None
    columns = []
    for column_name, column in zip(table.column_names, table.columns, strict=True):
        kind = column.type
        if pa.types.is_dictionary(kind):
            column = column.cast(kind.value_type)
            kind = kind.value_type
        if pa.types.is_nested(kind) or pa.types.is_binary(kind) or pa.types.is_large_binary(kind):
            raise ImportFileError(
                f"{name}: column {column_name!r} has type {kind}",
                expected="plain values: text, numbers, dates, timestamps, booleans",
            )
        columns.append(column.cast(pa.string()))
    names = _unique_names([c.strip() for c in table.column_names], name=name)
    text_table = pa.table(dict(zip(names, columns, strict=True)))
    rows = np.arange(1, text_table.num_rows + 1, dtype=np.int64)
    return RawTable(table=text_table, rows=rows, sha256=sha256, format="parquet")
