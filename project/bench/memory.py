"""6a-6c: peak RSS at inference of each component against its model loaded alone, one fresh interpreter each;
6d: RSS growth of a tagger over a long stream of new docs.

The probes re-run ``run_bench.py`` with ``--memory-probe KIND``: a process starts as a user's would, so its
peak depends on nothing else the benchmark has loaded.
"""

import argparse
import json
import random
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple

from corpus import batches, load_corpus, make_docs, train_examples
from measure import Bench, peak_rss_mb, rss_mb
from seqlab_access import add_sft, add_tagger, resolve_model_name
from systems import forward, load_backbone, load_tokenizer

ENTRY_POINT = Path(__file__).with_name("run_bench.py")

MEMORY_PROBES = {
    "encoder_model": "MiniLM and its tokenizer loaded alone (AutoModel)",
    "encoder_raw_forward": "MiniLM raw forward over the docs (same batch size)",
    "seqlab_multitask_ner": "seqlab_multitask_ner initialized, then nlp.pipe over the docs",
    "decoder_model": "SmolLM2 trunk and its tokenizer loaded alone (AutoModel)",
    "decoder_raw_forward": "SmolLM2 trunk raw forward over the docs (same batch size)",
    "seqlab_bidir_tagger": "seqlab_bidir_tagger (LoRA) initialized, then nlp.pipe over the docs",
    "decoder_lm_model": "SmolLM2 with LM head and its tokenizer loaded alone (AutoModelForCausalLM)",
    "seqlab_llm_sft": "seqlab_llm_sft (LoRA) initialized, then nlp.pipe over the docs",
    "seqlab_multitask_ner_stream": "seqlab_multitask_ner initialized, then nlp.pipe over a long stream of new docs",
}
# Share of the stream that warms up (first shapes, allocator pools); growth is measured after it.
STREAM_WARMUP = 0.2
STREAM_CHECKPOINTS = 10


def new_docs(nlp, corpus, n: int, rss: List[float]) -> Iterator[Any]:
    """``n`` Docs never seen before (words of the test tweets, drawn at random, 3 to 60 of them, each with a
    number of its own), made one at a time; RSS recorded every ``n / STREAM_CHECKPOINTS`` Docs."""
    from spacy.tokens import Doc

    rng = random.Random(0)
    vocabulary = sorted({w for words in corpus.words for w in words})
    every = max(1, n // STREAM_CHECKPOINTS)
    for i in range(n):
        if i % every == 0:
            rss.append(rss_mb())
        words = rng.choices(vocabulary, k=rng.randint(3, 60)) + [str(i)]
        yield Doc(nlp.vocab, words=words)
    rss.append(rss_mb())


def memory_probe(args: argparse.Namespace, settings: Dict[str, Any]) -> Dict[str, Any]:
    """Run in a fresh interpreter (``run_bench.py --memory-probe KIND``): load one system, run it, report RSS.

    The raw forward probes take the texts in test order, in batches of the component's size."""
    kind = args.memory_probe
    out: Dict[str, Any] = {"probe": kind}
    if kind.endswith(("_model", "_raw_forward")):
        import torch
        import transformers

        out["rss_after_imports_mb"] = rss_mb()
        path = resolve_model_name(args.encoder if kind.startswith("encoder") else args.decoder)
        model, forward_kwargs = load_backbone(
            path, transformers.AutoModelForCausalLM if kind == "decoder_lm_model" else None
        )
        tokenizer = load_tokenizer(path)
        # safetensors are memory-mapped: weights become resident only when read. Read them all, as any use would.
        with torch.no_grad():
            out["params"] = sum(int(p.numel()) + 0 * float(p.sum()) for p in model.parameters())
        if kind.endswith("_raw_forward"):
            corpus = load_corpus(settings["memory_docs"], 1)
            size = settings["encoder_batch" if kind.startswith("encoder") else "decoder_batch"]
            forward(model, tokenizer, batches(corpus.texts, size), forward_kwargs)
            out["docs"] = len(corpus.words)
    else:
        import spacy

        import spacy_seqlab  # noqa: F401

        out["rss_after_imports_mb"] = rss_mb()
        corpus = load_corpus(settings["memory_docs"], settings["train_docs"] or 200)
        nlp = spacy.blank("en")
        if kind in ("seqlab_multitask_ner", "seqlab_multitask_ner_stream"):
            add_tagger(nlp, "seqlab_multitask_ner", {"name": resolve_model_name(args.encoder)})
            batch = settings["encoder_batch"]
        elif kind == "seqlab_bidir_tagger":
            add_tagger(nlp, kind, {"name": resolve_model_name(args.decoder)})
            batch = settings["decoder_batch"]
        else:
            add_sft(nlp, resolve_model_name(args.decoder), settings["n_demos"], settings["max_new_tokens"])
            corpus = corpus.head(settings["gen_docs"])
            batch = len(corpus.words)
        nlp.initialize(lambda: train_examples(nlp, corpus))
        out["rss_after_load_mb"] = rss_mb()
        if kind.endswith("_stream"):
            rss: List[float] = []
            for _ in nlp.pipe(new_docs(nlp, corpus, settings["stream_docs"], rss), batch_size=batch):
                pass
            warm = rss[round(STREAM_WARMUP * STREAM_CHECKPOINTS)]
            out.update(docs=settings["stream_docs"], rss_checkpoints_mb=[round(x, 1) for x in rss])
            out["rss_over_warm_rss"] = round(rss[-1] / warm, 4)
        else:
            list(nlp.pipe(make_docs(nlp, corpus), batch_size=batch))
            out["docs"] = len(corpus.words)
    out["rss_mb"] = rss_mb()
    out["peak_rss_mb"] = peak_rss_mb()
    return out


def memory_phase(bench: Bench, settings: Dict[str, Any]) -> None:
    """One fresh interpreter per probe, as a user's process starts, a few at a time: peak RSS does not depend on
    what else runs (their imports dominate the time)."""
    probes: Dict[str, Dict[str, Any]] = {}
    running: List[Tuple[str, subprocess.Popen]] = []
    pending = list(MEMORY_PROBES)
    while pending or running:
        while pending and len(running) < bench.args.memory_jobs:
            kind = pending.pop(0)
            cmd = [
                sys.executable,
                str(ENTRY_POINT),
                "--memory-probe",
                kind,
                "--encoder",
                bench.args.encoder,
                "--decoder",
                bench.args.decoder,
            ]
            if bench.args.quick:
                cmd.append("--quick")
            for option in ("gen_docs", "threads"):
                if getattr(bench.args, option) is not None:
                    cmd += [f"--{option.replace('_', '-')}", str(getattr(bench.args, option))]
            running.append((kind, subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)))
        kind, proc = running.pop(0)
        stdout, stderr = proc.communicate()
        if proc.returncode != 0:
            raise RuntimeError(f"memory probe {kind} failed: {stderr[-2000:]}")
        probes[kind] = json.loads(stdout.strip().splitlines()[-1])
        bench.log(f"  memory {kind}: peak {probes[kind]['peak_rss_mb']:.0f} MB")
    bench.memory = {
        kind: {"what": MEMORY_PROBES[kind], **{k: round(v, 1) if isinstance(v, float) else v for k, v in p.items()}}
        for kind, p in probes.items()
    }
    stream = probes["seqlab_multitask_ner_stream"]
    bench.measure(
        "6d",
        "seqlab_multitask_ner RSS over a long stream of new docs, against RSS after warm-up",
        stream["rss_over_warm_rss"],
        "<=",
        1.05,
        f"RSS of one process after nlp.pipe over {stream['docs']:,} Docs never seen before (random lengths, each with "
        f"a number of its own), over its RSS once the first {STREAM_WARMUP:.0%} were done (5 % growth at most)",
        docs=stream["docs"],
        rss_checkpoints_mb=stream["rss_checkpoints_mb"],
    )
    for key, system, alone, raw in (
        ("6a", "seqlab_multitask_ner", "encoder_model", "encoder_raw_forward"),
        ("6b", "seqlab_bidir_tagger", "decoder_model", "decoder_raw_forward"),
        ("6c", "seqlab_llm_sft", "decoder_lm_model", None),
    ):
        peak, base = probes[system]["peak_rss_mb"], probes[alone]["peak_rss_mb"]
        raw_peak = probes[raw]["peak_rss_mb"] if raw else None
        bench.measure(
            key,
            f"{system} peak RSS at inference vs the model loaded alone",
            peak / base,
            "<=",
            1.3,
            "ru_maxrss of a fresh process that builds, initializes and runs the component over the docs, over that "
            "of a process that imports torch + transformers, loads the same weights and tokenizer and reads every "
            "weight (safetensors are memory-mapped: unread weights are not resident); vs_raw_forward: over the peak "
            "of the raw forward pass at the same batch size",
            peak_rss_mb=round(peak, 1),
            model_alone_peak_rss_mb=round(base, 1),
            raw_forward_peak_rss_mb=None if raw_peak is None else round(raw_peak, 1),
            vs_raw_forward=None if raw_peak is None else round(peak / raw_peak, 4),
        )
