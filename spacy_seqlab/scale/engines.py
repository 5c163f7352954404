"""The two engines: Ray Data (``map_batches`` over an actor pool) and local (the same ``Annotator`` in-process).

Both read the input into shards, skip the shards a previous run finished, run :class:`.annotator.Annotator`
over batches of rows and hand every annotated batch to one :class:`ShardCollector`, which writes a shard
as soon as all its rows are back. So both give the same files, and a rerun of either resumes the other.

Ray does the scheduling, the retries and the progress bar: an actor that dies is restarted and its batch
retried (``max_restarts`` / ``max_task_retries``). A retried batch can come back twice; the collector keeps
each input row once. A local Ray binds to the loopback address only and is shut down at the end, even on
errors; a Ray that is already running (``ray.init`` by the caller) is used and left running.
"""

import logging
import os
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, List, Optional, Set

import numpy
import pyarrow

from .annotator import Annotator
from .inputs import input_files, shard_tables
from .output import is_finished, job_manifest, prepare_folder, write_shard
from .settings import AnnotateSettings

logger = logging.getLogger("spacy_seqlab")
LOOPBACK = "127.0.0.1"


@dataclass
class AnnotateReport:
    """What a run did: rows and errors written, shards written and skipped, the engine, and timings."""

    output: Path
    engine: str
    rows: int = 0
    errors: int = 0
    shards_written: int = 0
    shards_skipped: int = 0
    seconds: float = 0.0
    first_row_seconds: Optional[float] = None
    written: List[Path] = field(default_factory=list)


class ShardCollector:
    """Gathers annotated rows by shard and writes a shard once every one of its rows is back (each once)."""

    def __init__(self, folder: Path, fmt: str, sizes: Dict[int, int], report: AnnotateReport, start: float) -> None:
        # sizes: rows per pending shard, filled while the input is read (before any row of the shard comes back).
        self.folder, self.fmt, self.sizes, self.report, self.start = folder, fmt, sizes, report, start
        self.pieces: Dict[int, List[pyarrow.Table]] = {}
        self.seen: Dict[int, Set[int]] = {}

    def add(self, table: pyarrow.Table) -> None:
        if self.report.first_row_seconds is None and table.num_rows:
            self.report.first_row_seconds = time.perf_counter() - self.start
        shards = table["shard"].to_numpy()
        for shard in numpy.unique(shards):
            piece = table.filter(pyarrow.array(shards == shard))
            seen = self.seen.setdefault(int(shard), set())
            fresh = [r not in seen for r in piece["row"].to_pylist()]
            if not all(fresh):  # a batch retried after its first result came back
                piece = piece.filter(pyarrow.array(fresh))
            seen.update(piece["row"].to_pylist())
            self.pieces.setdefault(int(shard), []).append(piece)
            if len(seen) == self.sizes[int(shard)]:
                self._write(int(shard))

    def _write(self, shard: int) -> None:
        table = pyarrow.concat_tables(self.pieces.pop(shard))
        self.report.written.append(write_shard(self.folder, shard, self.fmt, table))
        self.report.rows += table.num_rows
        self.report.errors += table.num_rows - table["error"].null_count
        self.report.shards_written += 1
        del self.sizes[shard], self.seen[shard]

    def check_complete(self) -> None:
        """Every pending shard was written: a shard with rows missing is an error, never a silent gap."""
        if self.sizes:
            missing = {s: self.sizes[s] - len(self.seen.get(s, ())) for s in sorted(self.sizes)}
            raise RuntimeError(f"rows missing from the engine's output (shard: rows missing): {missing}")


def _absolute(name: str) -> str:
    # Workers may start in another directory: a pipeline or code path is passed as an absolute path.
    return str(Path(name).resolve()) if Path(name).exists() else name


def check_pipeline(name: str) -> None:
    """PIPELINE is a saved pipeline folder or an installed package: checked before any worker starts."""
    from spacy.util import is_package

    path = Path(name)
    if path.exists() and not (path / "config.cfg").is_file():
        raise ValueError(f"PIPELINE {name!r} is not a saved pipeline: it has no config.cfg")
    if not path.exists() and not is_package(name):
        raise ValueError(f"PIPELINE {name!r} is neither a saved pipeline folder nor an installed pipeline package")


def _annotator_kwargs(settings: AnnotateSettings, threads: Optional[int] = None) -> Dict[str, Any]:
    return {
        "threads": threads or settings.threads_per_worker,
        "gpu": settings.gpus_per_worker > 0,
        "docbin": settings.docbin,
        "code": _absolute(settings.code) if settings.code else None,
    }


def run_local(pipeline: str, shards: Iterable[pyarrow.Table], settings: AnnotateSettings, sink: ShardCollector) -> None:
    """The Annotator in this process, batch by batch, with torch threads on ``cpus`` cores (0: all)."""
    threads = settings.cpus or os.cpu_count() or 1
    annotator = None
    for table in shards:
        # Loaded with the first pending shard: not at all when a rerun finds every shard finished.
        annotator = annotator or Annotator(pipeline, **_annotator_kwargs(settings, threads))
        for start in range(0, table.num_rows, settings.batch_size):
            sink.add(annotator(table.slice(start, settings.batch_size)))


def start_local_ray(cpus: int = 0, gpus: Optional[int] = None) -> None:
    """A single-node Ray on this machine that listens on the loopback address only, without a dashboard."""
    # Ray resolves a 127.0.0.1 node address to the machine's outward address unless clusters are disabled
    # (the switch it uses on Windows and macOS); its child processes read the switch from the environment.
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray
    import ray._private.ray_constants as ray_constants

    ray_constants.ENABLE_RAY_CLUSTER = False  # in case ray was imported before the variable was set
    ray.init(
        num_cpus=cpus or os.cpu_count() or 1,
        num_gpus=gpus,
        include_dashboard=False,
        _node_ip_address=LOOPBACK,
        log_to_driver=False,
    )
    node_ip = ray.util.get_node_ip_address()
    if node_ip != LOOPBACK:
        ray.shutdown()
        raise RuntimeError(f"a local Ray must bind to {LOOPBACK}, but it started on {node_ip}; it was stopped")


@contextmanager
def ray_session(settings: AnnotateSettings) -> Iterator[None]:
    """Ray for one job: the caller's if running, else a local loopback one or a connection to ``address``;
    what this function started is shut down when the job ends, however it ends."""
    import ray

    if ray.is_initialized():
        yield
        return
    try:
        if settings.address == "local":
            start_local_ray(settings.cpus)
        else:
            ray.init(address=settings.address, log_to_driver=False)
        yield
    finally:
        ray.shutdown()


def run_ray(pipeline: str, shards: Iterable[pyarrow.Table], settings: AnnotateSettings, sink: ShardCollector) -> None:
    """Ray Data: the shards as blocks, ``map_batches`` over ``workers`` Annotator actors, results streamed back."""
    import ray

    with ray_session(settings):
        refs = [ray.put(table) for table in shards]
        if not refs:
            return
        # Ray Data's own retries: a dead actor is restarted and its unfinished batches resubmitted. Ray 2.60
        # takes them only as remote args (deprecated for 2.64, where they become named parameters).
        remote_args: Dict[str, Any] = {
            "max_restarts": settings.worker_restarts,
            "max_task_retries": settings.worker_restarts,
        }
        if settings.gpus_per_worker > 0:
            remote_args["num_gpus"] = settings.gpus_per_worker
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*ray_remote_args.* is deprecated")
            annotated = ray.data.from_arrow_refs(refs).map_batches(
                Annotator,
                fn_constructor_args=(pipeline,),
                fn_constructor_kwargs=_annotator_kwargs(settings),
                batch_size=settings.batch_size,
                batch_format="pyarrow",
                compute=ray.data.ActorPoolStrategy(size=settings.workers),
                num_cpus=settings.threads_per_worker,
                **remote_args,
            )
        for batch in annotated.iter_batches(batch_size=None, batch_format="pyarrow"):
            sink.add(batch)


def _ray_available() -> bool:
    try:
        import ray.data  # noqa: F401
    except ImportError:
        return False
    return True


def annotate(
    pipeline: str, input_spec: str, output: Path, settings: Optional[AnnotateSettings] = None
) -> AnnotateReport:
    """Annotate every row of ``input_spec`` with ``pipeline`` into shards under ``output``; finished shards
    of an earlier run of the same job are skipped."""
    settings = settings or AnnotateSettings()
    start = time.perf_counter()
    files = input_files(input_spec)
    check_pipeline(pipeline)
    folder = Path(output)
    prepare_folder(folder, job_manifest(files, settings))
    engine = settings.engine
    if engine == "ray" and not _ray_available():
        logger.warning("Ray is not installed (pip install 'spacy-seqlab[ray]'): annotating in this process")
        engine = "local"
    report = AnnotateReport(output=folder, engine=engine)
    sizes: Dict[int, int] = {}

    def pending() -> Iterator[pyarrow.Table]:
        for table in shard_tables(files, settings.text_field, settings.id_field, settings.shard_size):
            shard = table["shard"][0].as_py()
            if is_finished(folder, shard, settings.format):
                report.shards_skipped += 1
                continue
            sizes[shard] = table.num_rows
            yield table

    sink = ShardCollector(folder, settings.format, sizes, report, start)
    runner = run_local if engine == "local" else run_ray
    runner(_absolute(pipeline), pending(), settings, sink)
    sink.check_complete()
    report.seconds = time.perf_counter() - start
    return report
