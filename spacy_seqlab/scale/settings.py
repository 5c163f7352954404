"""``AnnotateSettings``: every option of the ``annotate`` command, declared once and checked once."""

from dataclasses import dataclass
from typing import Optional

from ..core.settings import check_choice, check_int, check_number, setting

ENGINES = ("ray", "local")
OUTPUT_FORMATS = ("jsonl", "parquet")


@dataclass
class AnnotateSettings:
    """How a corpus is read, annotated and written (``annotate PIPELINE INPUT OUTPUT``)."""

    text_field: str = setting("text", "JSONL key or Parquet column holding each document's text.")
    id_field: str = setting("id", "JSONL key or Parquet column holding each document's id (else FILE:LINE).")
    format: str = setting("jsonl", f"Output shard format: {', '.join(OUTPUT_FORMATS)}.")
    engine: str = setting("ray", f"{', '.join(ENGINES)}: Ray Data actors, or the same code in this process.")
    workers: int = setting(1, "Ray actors, each holding one copy of the pipeline (Ray's map_batches concurrency).")
    threads_per_worker: int = setting(1, "CPUs each actor reserves and the torch threads it runs with.")
    gpus_per_worker: float = setting(0.0, "GPU share of each actor (0.5: two actors per GPU; 1: one per GPU).")
    batch_size: int = setting(64, "Rows per Ray batch and per nlp.pipe batch.")
    shard_size: int = setting(10000, "Input rows per output shard (the unit a rerun skips when finished).")
    address: str = setting("local", "local (a Ray on this machine, loopback only), auto (a running cluster) or ray://…")
    cpus: int = setting(0, "CPUs of a local Ray, and torch threads of the local engine (0: all of this machine's).")
    worker_restarts: int = setting(8, "How often Ray restarts a dead actor and retries its batch (-1: without limit).")
    docbin: bool = setting(False, "Also write each Doc as a one-Doc DocBin (column docbin).")
    code: Optional[str] = setting(None, "Python file registering custom components, imported in every worker.")

    def __post_init__(self) -> None:
        for name in ("text_field", "id_field"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise ValueError(f"{name} must be a non-empty string, got {getattr(self, name)!r}")
        check_choice("format", self.format, OUTPUT_FORMATS)
        check_choice("engine", self.engine, ENGINES)
        for name in ("workers", "threads_per_worker", "batch_size", "shard_size"):
            check_int(name, getattr(self, name))
        check_int("cpus", self.cpus, minimum=0)
        check_int("worker_restarts", self.worker_restarts, minimum=-1)
        check_number("gpus_per_worker", self.gpus_per_worker)
        if self.gpus_per_worker > 1 and self.gpus_per_worker != int(self.gpus_per_worker):
            raise ValueError(f"gpus_per_worker above 1 must be a whole number, got {self.gpus_per_worker!r}")
        valid_address = self.address in ("local", "auto") or self.address.startswith("ray://") or ":" in self.address
        if not valid_address:
            raise ValueError(f"address must be local, auto, ray://HOST:PORT or HOST:PORT, got {self.address!r}")
