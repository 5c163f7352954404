"""The output folder: a manifest of the job, one file per finished shard, and what a rerun skips.

``part-00000.jsonl`` (or ``.parquet``) holds the rows of input shard 0 in input order, one per input row.
A shard file is written to a temporary name and renamed when complete, so a file that exists is finished:
a rerun skips it. ``_job.json`` records what the shards were cut from (files, sizes, fields, shard size);
a rerun over different input or settings is refused rather than mixing two jobs in one folder.
"""

import base64
import json
import os
from pathlib import Path
from typing import Any, Dict, Iterator, List

import pyarrow

MANIFEST = "_job.json"
MANIFEST_KEYS = ("inputs", "text_field", "id_field", "shard_size", "format", "docbin")


class OutputMismatchError(ValueError):
    """OUTPUT holds the shards of another job."""


def shard_path(folder: Path, shard: int, fmt: str) -> Path:
    return folder / f"part-{shard:05d}.{fmt}"


def job_manifest(files: List[Path], settings: Any) -> Dict[str, Any]:
    """What identifies a job's shards: the input files with their sizes, and the settings that cut and shape rows."""
    return {
        "inputs": [[str(p), p.stat().st_size] for p in files],
        "text_field": settings.text_field,
        "id_field": settings.id_field,
        "shard_size": settings.shard_size,
        "format": settings.format,
        "docbin": settings.docbin,
    }


def prepare_folder(folder: Path, manifest: Dict[str, Any]) -> None:
    """Create OUTPUT with its manifest, or check that the one there is the same job's."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / MANIFEST
    if path.exists():
        old = json.loads(path.read_text(encoding="utf8"))
        changed = [key for key in MANIFEST_KEYS if old.get(key) != manifest[key]]
        if changed:
            raise OutputMismatchError(
                f"OUTPUT {folder} holds shards of another job ({', '.join(changed)} differ in {path}): "
                "give a new OUTPUT folder, or delete that one to start over"
            )
        return
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(manifest, indent=2), encoding="utf8")
    os.replace(tmp, path)


def is_finished(folder: Path, shard: int, fmt: str) -> bool:
    return shard_path(folder, shard, fmt).exists()


def _json_row(row: Dict[str, Any]) -> str:
    if row.get("docbin") is not None:
        row["docbin"] = base64.b64encode(row["docbin"]).decode("ascii")
    return json.dumps(row, ensure_ascii=False)


def write_shard(folder: Path, shard: int, fmt: str, table: pyarrow.Table) -> Path:
    """Write one shard's annotated rows in input order (atomically: a temporary file, then a rename)."""
    table = table.sort_by("row").drop_columns(["shard", "row"])
    path = shard_path(folder, shard, fmt)
    tmp = path.with_name(path.name + ".tmp")
    if fmt == "parquet":
        import pyarrow.parquet

        pyarrow.parquet.write_table(table, tmp)
    else:
        with tmp.open("w", encoding="utf8") as f:
            for row in table.to_pylist():
                f.write(_json_row(row) + "\n")
    os.replace(tmp, path)
    return path


def read_output(folder: Path) -> Iterator[Dict[str, Any]]:
    """Every row of a finished job, shard by shard, in input order (``docbin`` as bytes)."""
    folder = Path(folder)
    fmt = json.loads((folder / MANIFEST).read_text(encoding="utf8"))["format"]
    for path in sorted(folder.glob(f"part-*.{fmt}")):
        if fmt == "parquet":
            import pyarrow.parquet

            yield from pyarrow.parquet.read_table(path).to_pylist()
            continue
        with path.open(encoding="utf8") as f:
            for line in f:
                row = json.loads(line)
                if row.get("docbin") is not None:
                    row["docbin"] = base64.b64decode(row["docbin"])
                yield row
