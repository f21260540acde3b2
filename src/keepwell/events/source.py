"""An events file (CSV or Parquet) or a directory of Parquet files, as DuckDB reads it.

One streaming pass over the bytes fingerprints the input (SHA-256), checks the text encoding
(naming the line and byte of the first bad byte), and counts lines; the rows themselves are
only ever read by DuckDB.

CSV rules: a header row; the delimiter is the one of ``,`` ``;`` tab ``|`` that splits the
header into the most columns (comma on ties); fields may be quoted with ``"`` (``""`` inside
quotes) and hold line breaks; blank lines are skipped and not counted as rows; every line must
have as many fields as the header (else the file is refused, naming the line). Encodings:
UTF-8 (a byte-order mark is skipped) and Latin-1 are read directly, any other Python codec
(cp1252, UTF-16, ...) is first converted to UTF-8 in the store's scratch space. ``.gz`` files
are decompressed on the fly.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import hashlib
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from keepwell.errors import ImportFileError, InvalidInput
from keepwell.events.duck import ident, literal, literal_list

DELIMITERS = (",", ";", "\t", "|")
PARQUET_SUFFIXES = (".parquet", ".pq")
CHUNK = 8 << 20
HEADER_BYTES = 1 << 20

ROW = "keepwell_row"  # 1-based data row number (header not counted), per file
FILE = "keepwell_file"  # file name, for a directory of Parquet files


@dataclass(frozen=True)
class SourceColumn:
    """A column of the input: its name in the file, how to select it, its DuckDB type."""

    name: str
    sql: str
    type: str


@dataclass(frozen=True)
class Source:
    """A resolved input.

    Attributes:
        relation: a SQL table expression with the columns (as ``SourceColumn.sql``).
        numbered: the same plus ``keepwell_row`` (and ``keepwell_file`` for directories).
        total_rows: exact row count when cheap to know (Parquet metadata), else None.
        data_lines: CSV lines after the header; equals the row count when no row spans lines
            and no line is blank (used to skip a counting pass), else None.
        fingerprint: SHA-256 of the content (all files in name order).
        encoding: the codec name the text was read with (``"binary"`` for Parquet).
    """

    path: Path
    format: Literal["csv", "parquet"]
    files: tuple[Path, ...]
    columns: tuple[SourceColumn, ...]
    relation: str
    numbered: str
    total_rows: int | None
    data_lines: int | None
    fingerprint: str
    encoding: str
    size: int

    @property
    def multi_file(self) -> bool:
        return len(self.files) > 1


Progress = Callable[[int], None]


def open_source(
    path: Path,
    *,
    con: duckdb.DuckDBPyConnection,
    scratch: Path,
    encoding: str = "utf-8",
    progress: Progress | None = None,
) -> Source:
    """Resolve ``path`` into a :class:`Source`; ``progress(bytes_read)`` during the scan.

    Raises:
        ImportFileError: missing or empty file, bad encoding (names line and byte), unreadable
            Parquet, a directory without Parquet files.
        InvalidInput: unknown encoding name.
    """
    path = Path(path)
    if not path.exists():
        raise ImportFileError(f"{path} does not exist", hint="check the path")
    if path.is_dir():
        if (path / "_delta_log").is_dir():
            raise ImportFileError(
                f"{path} is a Delta table, not a directory of Parquet files",
                hint="point keepwell's events_path at it instead of importing it",
            )
        files = sorted(
            p
            for p in path.rglob("*")
            if p.suffix.lower() in PARQUET_SUFFIXES
            and p.is_file()
            and not any(part.startswith((".", "_")) for part in p.relative_to(path).parts)
        )
        if not files:
            raise ImportFileError(
                f"{path} is a directory without .parquet files",
                expected="a CSV file, a Parquet file or a directory of Parquet files",
            )
        return _parquet(path, files, con=con, progress=progress)
    with path.open("rb") as fh:
        magic = fh.read(4)
    if path.suffix.lower() in PARQUET_SUFFIXES or magic == b"PAR1":
        return _parquet(path, [path], con=con, progress=progress)
    return _csv(path, encoding=encoding, scratch=scratch, progress=progress)


# -- scanning ----------------------------------------------------------------------------------


@dataclass
class _Scan:
    digest: str
    size: int
    lines: int
    last_byte: bytes


def _open_bytes(path: Path) -> BinaryIO:
    if path.suffix.lower() == ".gz":
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return path.open("rb")


def _chunks(path: Path) -> Iterator[bytes]:
    try:
        with _open_bytes(path) as fh:
            while chunk := fh.read(CHUNK):
                yield chunk
    except (OSError, EOFError) as exc:
        if path.suffix.lower() == ".gz":
            raise ImportFileError(f"{path.name} is not a valid gzip file: {exc}") from None
        raise


def _scan(
    paths: list[Path],
    *,
    codec: str | None,
    progress: Progress | None,
    transcode_to: BinaryIO | None = None,
) -> _Scan:
    """Hash, check the encoding ``codec`` (None: bytes), count newlines; maybe transcode."""
    sha = hashlib.sha256()
    decoder = codecs.getincrementaldecoder(codec)("strict") if codec else None
    fast_ascii = codec in ("utf-8", "ascii") and transcode_to is None
    size = lines = 0
    last = b""
    for path in paths:
        sha.update(f"{path.name}\0".encode() if len(paths) > 1 else b"")
        for chunk in _chunks(path):
            sha.update(chunk)
            if decoder is not None:
                pending = len(decoder.getstate()[0])
                if not (fast_ascii and not pending and chunk.isascii()):
                    try:
                        text = decoder.decode(chunk)
                    except UnicodeDecodeError as exc:
                        _encoding_error(path, codec or "", exc, size, lines, pending, chunk)
                    if transcode_to is not None:
                        encoded = text.encode("utf-8")
                        lines += encoded.count(b"\n")
                        last = encoded[-1:] or last
                        transcode_to.write(encoded)
            if transcode_to is None:
                lines += chunk.count(b"\n")
                last = chunk[-1:]
            size += len(chunk)
            if progress is not None:
                progress(size)
        if decoder is not None:
            try:
                tail = decoder.decode(b"", final=True)
            except UnicodeDecodeError as exc:
                _encoding_error(path, codec or "", exc, size, lines, len(exc.object), b"")
            if transcode_to is not None and tail:
                encoded = tail.encode("utf-8")
                lines += encoded.count(b"\n")
                last = encoded[-1:]
                transcode_to.write(encoded)
    return _Scan(digest=sha.hexdigest(), size=size, lines=lines, last_byte=last)


def _encoding_error(
    path: Path,
    codec: str,
    exc: UnicodeDecodeError,
    offset: int,
    lines: int,
    pending: int,
    chunk: bytes,
) -> None:
    start = exc.start - pending  # position in ``chunk`` (negative: in the pending bytes)
    line = lines + chunk[: max(start, 0)].count(b"\n") + 1
    bad = bytes(exc.object[exc.start : exc.end]).hex(" ")
    raise ImportFileError(
        f"{path.name}: line {line} is not valid {codec} (byte(s) {bad} at byte offset "
        f"{offset + start})",
        hint="the file uses another encoding: pass it with --encoding, e.g. --encoding latin-1 "
        "(or cp1252)",
    )


# -- CSV ---------------------------------------------------------------------------------------


def _codec(encoding: str, head: bytes) -> str:
    """The Python codec name to read with (a UTF-16 byte-order mark wins)."""
    try:
        name = codecs.lookup(encoding).name
    except LookupError:
        raise InvalidInput(
            f"unknown encoding {encoding!r}",
            field="encoding",
            expected="a codec name such as utf-8, latin-1, cp1252",
        ) from None
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    if name == "utf-8-sig":
        return "utf-8"
    return name


def _header(text: str, *, name: str) -> tuple[list[str], str, int]:
    """Column names, delimiter and physical lines of the header record."""
    text = text.removeprefix("\ufeff")
    first = text.split("\n", 1)[0]
    # max() keeps the first of equals, so the comma wins ties
    delimiter = max(DELIMITERS, key=lambda d: len(next(csv.reader([first], delimiter=d))))
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = next(reader)
    except (StopIteration, csv.Error) as exc:
        raise ImportFileError(f"{name}: cannot read the header row: {exc}") from None
    header_lines = reader.line_num
    names = [h.strip() or f"column_{i}" for i, h in enumerate(header, start=1)]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ImportFileError(
            f"{name}: column name(s) {duplicates} appear more than once in the header",
            hint="rename the duplicate columns so that each name is used once",
        )
    return names, delimiter, header_lines


def _csv(path: Path, *, encoding: str, scratch: Path, progress: Progress | None) -> Source:
    with _open_bytes(path) as fh:
        try:
            head = fh.read(HEADER_BYTES)
        except (OSError, EOFError) as exc:
            raise ImportFileError(f"{path.name} is not readable: {exc}") from None
    codec = _codec(encoding, head)
    if not head.strip().removeprefix(codecs.BOM_UTF8).strip():
        raise ImportFileError(
            f"{path.name} is empty (no header row)",
            expected="a header row with columns customer_id, event, occurred_at",
        )
    native = {"utf-8": "utf-8", "ascii": "utf-8", "iso8859-1": "latin-1"}.get(codec)
    read_path = path
    if native is not None:
        scan = _scan([path], codec=None if native == "latin-1" else codec, progress=progress)
        text = head.decode(codec, errors="replace")
    else:  # convert to UTF-8 once; DuckDB reads only UTF-8 and Latin-1
        read_path = scratch / "input-utf8.csv"
        with read_path.open("wb") as out:
            scan = _scan([path], codec=codec, progress=progress, transcode_to=out)
        with read_path.open("rb") as fh:
            text = fh.read(HEADER_BYTES).decode("utf-8", errors="replace")
        native = "utf-8"
    header, delimiter, header_lines = _header(text, name=path.name)
    lines = scan.lines + (1 if scan.last_byte not in (b"\n", b"") else 0)
    internal = [f"c{i}" for i in range(len(header))]
    columns = ", ".join(f"{literal(c)}: 'VARCHAR'" for c in internal)
    compression = "gzip" if path.suffix.lower() == ".gz" and read_path == path else "none"
    reader = (
        f"read_csv({literal(str(read_path))}, auto_detect = false, header = true, "
        f"delim = {literal(delimiter)}, quote = '\"', escape = '\"', "
        f"columns = {{{columns}}}, encoding = {literal(native)}, "
        f"compression = {literal(compression)})"
    )
    return Source(
        path=path,
        format="csv",
        files=(path,),
        columns=tuple(
            SourceColumn(name=n, sql=ident(c), type="VARCHAR")
            for n, c in zip(header, internal, strict=True)
        ),
        relation=reader,
        numbered=f"(SELECT row_number() OVER () AS {ROW}, * FROM {reader})",
        total_rows=None,
        data_lines=lines - header_lines,
        fingerprint=scan.digest,
        encoding=codec,
        size=scan.size,
    )


# -- Parquet -----------------------------------------------------------------------------------


def _parquet(
    path: Path, files: list[Path], *, con: duckdb.DuckDBPyConnection, progress: Progress | None
) -> Source:
    total = 0
    for file in files:
        try:
            total += pq.ParquetFile(file).metadata.num_rows
        except (pa.ArrowException, OSError) as exc:
            raise ImportFileError(f"{file.name} is not a readable Parquet file: {exc}") from None
    scan = _scan(files, codec=None, progress=progress)
    paths = literal_list([str(f) for f in files])
    reader = f"read_parquet({paths}, union_by_name = true"
    try:
        described = con.execute(f"DESCRIBE SELECT * FROM {reader})").fetchall()
    except duckdb.Error as exc:
        raise ImportFileError(f"{path.name}: cannot read the Parquet columns: {exc}") from None
    names = [(row[0], row[1]) for row in described]
    internal = [f"c{i}" for i in range(len(names))]
    select = ", ".join(f"{ident(n)} AS {c}" for (n, _), c in zip(names, internal, strict=True))
    numbered = (
        f"(SELECT {select}, file_row_number + 1 AS {ROW}, "
        f"parse_filename(filename) AS {FILE} "
        f"FROM {reader}, file_row_number = true, filename = true))"
    )
    return Source(
        path=path,
        format="parquet",
        files=tuple(files),
        columns=tuple(
            SourceColumn(name=n, sql=c, type=t) for (n, t), c in zip(names, internal, strict=True)
        ),
        relation=f"(SELECT {select} FROM {reader}))",
        numbered=numbered,
        total_rows=total,
        data_lines=None,
        fingerprint=scan.digest,
        encoding="binary",
        size=scan.size,
    )
