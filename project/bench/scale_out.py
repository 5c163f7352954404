"""8: ``annotate --engine ray --workers 2`` against single-process ``nlp.pipe`` over the same documents and cores.

The seqlab_multitask_ner pipeline (MiniLM) is saved once; the test tweets, repeated to ``scale_docs``
documents, are written as JSONL. One timed pass each (the ratio leaves Ray's start-up out: it is the time to
the first row, reported beside it): ``nlp.pipe`` in this process with all torch threads,
and the Ray engine (a fresh loopback Ray with the machine's cores, 2 actors with half the cores each, the
Ray start, the actors' pipeline loading and the shard writing included). A sampler thread reads the RSS
of the Ray actor processes every 0.2 s: their peak is the memory per worker. Opt-in (``--only scale_out``):
it needs the ``spacy-seqlab[ray]`` extra.
"""

import json
import os
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any, Dict, List

from corpus import Corpus
from measure import Bench, System
from seqlab_access import annotate_corpus, resolve_model_name
from systems import seqlab_nlp


class ActorMemory:
    """Peak RSS (MB) of each Ray Data actor process (``ray::MapWorker...``) while it runs."""

    def __init__(self, every: float = 0.2) -> None:
        self.peaks: Dict[int, float] = {}
        self.every, self.stop = every, threading.Event()
        self.thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        import psutil

        while not self.stop.is_set():
            for proc in psutil.process_iter(["pid", "cmdline", "memory_info"]):
                cmdline = " ".join(proc.info.get("cmdline") or [])
                if "MapWorker" in cmdline and proc.info.get("memory_info") is not None:
                    rss = proc.info["memory_info"].rss / 2**20
                    self.peaks[proc.info["pid"]] = max(self.peaks.get(proc.info["pid"], 0.0), rss)
            self.stop.wait(self.every)

    def __enter__(self) -> "ActorMemory":
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop.set()
        self.thread.join()


def _texts(corpus: Corpus, n: int) -> List[str]:
    return [corpus.texts[i % len(corpus.texts)] for i in range(n)]


def scale_out_phase(bench: Bench, corpus: Corpus, settings: Dict[str, Any]) -> None:
    encoder = resolve_model_name(bench.args.encoder)
    nlp = seqlab_nlp("seqlab_multitask_ner", {"name": encoder}, corpus)
    texts = _texts(corpus, settings["scale_docs"])
    words = sum(len(t.split()) for t in texts)
    batch, cores = settings["encoder_batch"], os.cpu_count() or 1
    folder = Path(tempfile.mkdtemp(prefix="seqlab-scale-"))
    try:
        nlp.to_disk(folder / "pipeline")
        with (folder / "docs.jsonl").open("w", encoding="utf8") as f:
            for i, text in enumerate(texts):
                f.write(json.dumps({"id": i, "text": text}) + "\n")
        extra = {"docs": len(texts), "batch_size": batch}
        single = System(
            "scale_single_process",
            "nlp.pipe, one process",
            lambda _: list(nlp.pipe(texts, batch_size=batch)),
            words,
            extra=dict(extra),
        )
        runs: List[Dict[str, Any]] = []
        peaks: List[float] = []

        def ray_job(_: Any) -> Dict[str, Any]:
            out = folder / f"out{len(runs)}"
            with ActorMemory() as memory:
                runs.append(
                    annotate_corpus(
                        str(folder / "pipeline"),
                        str(folder / "docs.jsonl"),
                        str(out),
                        engine="ray",
                        workers=2,
                        threads_per_worker=max(1, cores // 2),
                        batch_size=batch,
                        shard_size=max(1, len(texts) // 4),
                    )
                )
            peaks[:] = sorted(memory.peaks.values())  # of the last pass
            shutil.rmtree(out, ignore_errors=True)
            return runs[-1]

        ray = System("scale_ray_2_workers", "annotate --engine ray --workers 2", ray_job, words, extra=dict(extra))
        bench.compare([single, ray], runs=1, warmup=0)
        last = runs[-1]
        first_row = last["first_row_seconds"] or 0.0
        steady = max(ray.wall - first_row, 1e-9)  # start-up (Ray, actors, pipeline loads) is time to first row
        ray.extra.update(first_row_s=round(first_row, 2), worker_peak_rss_mb=list(peaks))
        bench.measure(
            "9",
            "annotate --engine ray --workers 2 vs single-process nlp.pipe (words/s)",
            single.wall / steady,
            ">=",
            0.85,
            f"{len(texts):,} docs as JSONL, the same {cores} cores; Ray's time counts from its first annotated row "
            "to the last shard written (start-up, i.e. Ray, the actors and their pipeline loads, is the time to first "
            "row; end_to_end_ratio includes it)",
            systems=[ray.name, single.name],
            ratio_cpu=None,
            first_row_seconds=round(first_row, 2),
            end_to_end_ratio=round(single.wall / ray.wall, 4),
            worker_peak_rss_mb=[round(p, 1) for p in peaks],
            rows=last["rows"],
            errors=last["errors"],
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)
