"""Input reading: JSONL, Parquet or plain-text files (a file, a folder or a glob) → rows cut into shards.

Every line of a JSONL or text file, and every row of a Parquet file, becomes exactly one row with
``id``, ``text``, ``source`` (``FILE:LINE``) and ``error``. A row that cannot be read (invalid UTF-8,
invalid JSON, a missing or non-string text, a duplicate id) keeps its place with an error and no text,
so the output has one row per input row. Blank lines of a JSONL file are not rows; blank lines of a
text file are (empty documents).
"""

import glob
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

import pyarrow

JSONL_SUFFIXES = (".jsonl", ".ndjson", ".json")
PARQUET_SUFFIXES = (".parquet", ".pq")
# Columns every row carries between the reader, the annotator and the writer.
INPUT_SCHEMA = pyarrow.schema(
    [
        ("id", pyarrow.string()),
        ("text", pyarrow.string()),
        ("source", pyarrow.string()),
        ("error", pyarrow.string()),
        ("shard", pyarrow.int64()),
        ("row", pyarrow.int64()),
    ]
)


class InputError(ValueError):
    """The INPUT argument names nothing readable."""


def input_files(spec: str) -> List[Path]:
    """The files of INPUT: one file, every file of a folder (recursively, hidden ones skipped) or a glob, sorted."""
    path = Path(spec)
    if path.is_file():
        return [path]
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and not any(part.startswith(".") for part in p.parts))
    else:
        files = sorted(Path(p) for p in glob.glob(spec, recursive=True) if Path(p).is_file())
    if not files:
        raise InputError(f"INPUT {spec!r} is not a file, a folder with files, or a glob matching files")
    return files


def file_kind(path: Path) -> str:
    """jsonl, parquet or text, from the file's suffix."""
    suffix = path.suffix.lower()
    return "jsonl" if suffix in JSONL_SUFFIXES else "parquet" if suffix in PARQUET_SUFFIXES else "text"


@dataclass
class RawRow:
    """One input row before ids are checked: ``id`` None when the row names none."""

    id: Optional[str]
    text: Optional[str]
    source: str
    error: Optional[str] = None


def _id_text(record: Any, text_field: str, id_field: str, source: str) -> RawRow:
    if not isinstance(record, dict):
        return RawRow(None, None, source, f"expected a JSON object, got {type(record).__name__}")
    raw_id = record.get(id_field)
    row_id = None if raw_id is None else str(raw_id)
    text = record.get(text_field)
    if text_field not in record:
        return RawRow(row_id, None, source, f"missing text field {text_field!r}")
    if not isinstance(text, str):
        return RawRow(row_id, None, source, f"text field {text_field!r} is {type(text).__name__}, not a string")
    return RawRow(row_id, text, source)


def _decode(line: bytes) -> Tuple[Optional[str], Optional[str]]:
    try:
        return line.decode("utf-8"), None
    except UnicodeDecodeError as error:
        return None, f"invalid UTF-8 at byte {error.start}"


def _lines(path: Path) -> Iterator[Tuple[int, bytes]]:
    with path.open("rb") as f:
        for number, line in enumerate(f, start=1):
            yield number, line.rstrip(b"\r\n")


def read_jsonl(path: Path, text_field: str, id_field: str) -> Iterator[RawRow]:
    for number, line in _lines(path):
        if not line.strip():
            continue
        source = f"{path}:{number}"
        decoded, error = _decode(line)
        if error is not None:
            yield RawRow(None, None, source, error)
            continue
        try:
            record = json.loads(decoded)
        except ValueError as bad:
            yield RawRow(None, None, source, f"invalid JSON: {bad}")
            continue
        yield _id_text(record, text_field, id_field, source)


def read_text(path: Path) -> Iterator[RawRow]:
    for number, line in _lines(path):
        source = f"{path}:{number}"
        text, error = _decode(line)
        yield RawRow(None, text, source, error)


def read_parquet(path: Path, text_field: str, id_field: str) -> Iterator[RawRow]:
    import pyarrow.parquet

    try:
        parquet = pyarrow.parquet.ParquetFile(path)
    except (OSError, pyarrow.ArrowException) as error:
        raise InputError(f"{path}: not a readable Parquet file ({error})") from None
    names = parquet.schema_arrow.names
    columns = [name for name in (text_field, id_field) if name in names]
    number = 0
    for batch in parquet.iter_batches(columns=columns or None):
        rows: Dict[str, List[Any]] = {name: batch.column(name).to_pylist() for name in columns}
        for i in range(batch.num_rows):
            number += 1
            record = {name: rows[name][i] for name in columns}
            yield _id_text(record, text_field, id_field, f"{path}:{number}")


def read_rows(files: List[Path], text_field: str, id_field: str) -> Iterator[RawRow]:
    """Every row of ``files`` in order."""
    for path in files:
        kind = file_kind(path)
        if kind == "jsonl":
            yield from read_jsonl(path, text_field, id_field)
        elif kind == "parquet":
            yield from read_parquet(path, text_field, id_field)
        else:
            yield from read_text(path)


def checked_rows(rows: Iterator[RawRow]) -> Iterator[RawRow]:
    """Rows with an id each (``FILE:LINE`` where the input names none); a repeated id is an error row."""
    first_seen: Dict[str, str] = {}
    for row in rows:
        if row.id is None:
            row.id = row.source
        first = first_seen.setdefault(row.id, row.source)
        if first != row.source and row.error is None:
            row.error, row.text = f"duplicate id {row.id!r} (first at {first})", None
        yield row


def shard_tables(files: List[Path], text_field: str, id_field: str, shard_size: int) -> Iterator[pyarrow.Table]:
    """The input as Arrow tables of ``shard_size`` rows (the last may be shorter), in input order.

    Each row carries its shard number and its position in the input (``row``).
    """
    columns: Dict[str, List[Any]] = {name: [] for name in INPUT_SCHEMA.names}
    shard = 0
    for position, row in enumerate(checked_rows(read_rows(files, text_field, id_field))):
        for name, value in zip(INPUT_SCHEMA.names, (row.id, row.text, row.source, row.error, shard, position)):
            columns[name].append(value)
        if len(columns["id"]) == shard_size:
            yield pyarrow.table(columns, schema=INPUT_SCHEMA)
            columns = {name: [] for name in INPUT_SCHEMA.names}
            shard += 1
    if columns["id"]:
        yield pyarrow.table(columns, schema=INPUT_SCHEMA)
