"""The thesis' claims as measured by the grids: runs/c1, runs/c2, runs/c3 into claims.md, claims.json and plots.

    python scripts/claims.py --runs runs --output claims.md [--samples 1000] [--seed 0] [--margin 2]
        [--c2-also "LABEL=runs/c2-qwen"]

One row per claim (C1 per transfer regime). Each row states what was measured (test F1 ×100, mean ± sd over
seeds; C1's few-shot samples are averaged within a seed first), a paired comparison where the claim is one, a
verdict computed from the numbers, the published number for context where one was retrieved
(shared/reference/methods.md), and the grid command that made the runs (OUTPUT/grid.json).

Comparisons are paired bootstraps over test documents on seed-pooled predictions: per document, the span
counts (correct, predicted, gold) of a setting are averaged over its runs (its seeds, and C1's samples), the
documents are resampled with replacement (the same draw for both settings) and micro F is recomputed per draw
(spacy_seqlab.core.significance). The difference ×100 with its percentile interval and two-sided p-value.
Pooling seeds this way keeps the test documents as the unit of resampling; seed-to-seed spread is in the sd.

Verdicts (B − A is the difference the claim says is positive; δ = --margin F points):
* "better" claims: holds if the interval lies above 0, does not hold if it lies below 0;
* "not worse" claims: holds if the interval lies above −δ, does not hold if it lies below 0;
* "no gain" claims: holds if the interval lies below +δ, does not hold if it lies above 0;
* otherwise "inconclusive at this scale"; "missing runs" when a run the claim needs is absent.
Where a claim speaks of a family (unmasking, repetition), its member with the best mean dev F represents it,
so the test comparison is not biased by the choice.

Rows whose runs are missing say so, so the report can be written from a partial grid.
"""

import argparse
import itertools
import json
import shlex
import statistics
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy  # noqa: E402
import spacy  # noqa: E402
from grid import (  # noqa: E402
    C1_SHOTS,
    C1_VARIANTS,
    C2_CLAIMS_UNMASK,
    C2_REPEATS,
    parse_run_name,
    shipped_pooling,
    write_heatmap,
)
from spacy.tokens import DocBin  # noqa: E402
from spacy.training import Example  # noqa: E402

from spacy_seqlab.core.significance import micro_f, paired_bootstrap, span_counts  # noqa: E402

HOLDS, FAILS, INCONCLUSIVE, MISSING = "holds", "does not hold", "inconclusive at this scale", "missing runs"
VERDICTS = (HOLDS, FAILS, INCONCLUSIVE, MISSING)
VOCAB = spacy.blank("en").vocab

# Published numbers for context, from shared/reference/methods.md (section in brackets); quoted, not measured.
C1_PUBLISHED = {
    0: "0.234/0.237/0.240 (ACE05), 0.392/0.399/0.408 (EDNYT), 0.650/0.650/0.653 (EVEXTRA)",
    5: "0.294/0.294/0.276 (ACE05), 0.458/0.466/0.448 (EDNYT), 0.659/0.661/0.653 (EVEXTRA)",
    10: "0.372/0.374/0.330 (ACE05), 0.512/0.521/0.490 (EDNYT), 0.688/0.693/0.680 (EVEXTRA)",
    50: "0.511/0.506/0.463 (ACE05), 0.581/0.592/0.568 (EDNYT), 0.750/0.764/0.741 (EVEXTRA)",
}
C1_SOURCE = (
    "F1 vanilla / implicit (our OIE embed) / explicit (our OIE head), roberta-base, MAVEN → target, mean of 3 seeds "
    "(methods.md §2.7, dd1497/oie-td results/*/Results.ipynb)"
)
PUBLISHED = {
    "c2-unmask": "Mistral-7B-v0.3, follow-up setup, causal → full unmasking: CoNLL03 NER 77.88 → 93.69, ACE05 "
    "69.77 → 76.26, Rest14 72.51 → 83.18 (methods.md §3.11, TakeLab/repetition-sl); C2's own table not retrieved",
    "c2-groups": "C2's significance test: unmasking more groups above the last unmasked one helps significantly on "
    "CoNLL03 NER and chunking, not on ACE05 and Rest14 (methods.md §3.9); no numbers retrieved",
    "c2-task": "the best of the 16 settings differs by task and is rarely 1111, at 7B (methods.md §3.1); table "
    "not retrieved",
    "c2-scale": "68M models pre-trained from scratch: no benefit from unmasking; chunking ~0.83 masked vs ~0.74 "
    "unmasked, NER ~0.60 both (methods.md §3.8, read off figures)",
    "c2-repeat": "CoNLL-03: Mistral-7B-v0.3 unmasking 93.69 vs repetition k = 4 93.79; Qwen3-8B 91.99 vs k = 8 "
    "93.00; Qwen3-1.7B 90.27 vs k = 8 91.78 (methods.md §5, TakeLab/repetition-sl)",
    "c3": "SIFT numbers not retrieved (methods.md §4.7); the abstract's shape: SIFT beats in-context learning and "
    "decoder-as-encoder, MRC is best, the instruction is largely unnecessary, long contexts hurt (§4.1, §4.8)",
}


# -- runs ------------------------------------------------------------------------------------


def load_grid(folder: Path) -> Dict[str, List[dict]]:
    """The runs of one grid folder by setting key (see grid.parse_run_name): each its metrics and name fields."""
    groups: Dict[str, List[dict]] = defaultdict(list)
    for path in sorted((folder / "metrics").glob("*.json")):
        fields = parse_run_name(path.stem)
        if fields is not None:
            metrics = json.loads(path.read_text())
            groups[fields["key"]].append({**fields, "name": path.stem, "folder": folder, "metrics": metrics})
    return dict(groups)


def grid_record(folder: Path) -> dict:
    path = folder / "grid.json"
    return json.loads(path.read_text()) if path.exists() else {}


def summarize(runs: List[dict]) -> dict:
    """Test F ×100: mean ± sd over seeds (a seed's several runs, C1's few-shot samples, averaged first)."""
    by_seed: Dict[int, List[dict]] = defaultdict(list)
    for run in runs:
        by_seed[run["seed"]].append(run["metrics"])
    per_seed = [statistics.fmean(m["f"] * 100 for m in members) for _, members in sorted(by_seed.items())]
    dev = [m["dev_score"] * 100 for m in (run["metrics"] for run in runs) if m.get("dev_score") is not None]
    return {
        "mean": statistics.fmean(per_seed),
        "sd": statistics.stdev(per_seed) if len(per_seed) > 1 else None,
        "seeds": sorted(by_seed),
        "runs": len(runs),
        "runs_per_seed": max(len(members) for members in by_seed.values()),
        "dev_mean": statistics.fmean(dev) if dev else None,
        "test_docs": runs[0]["metrics"].get("test_docs"),
    }


class Counts:
    """Per-document span counts of saved test predictions, read once per file."""

    def __init__(self) -> None:
        self.gold: Dict[str, list] = {}
        self.cache: Dict[str, Tuple[numpy.ndarray, List[str]]] = {}

    def of_run(self, run: dict) -> Tuple[numpy.ndarray, List[str]]:
        """(counts: documents × (correct, predicted, gold), document texts); ValueError with the reason if absent."""
        metrics = run["metrics"]
        path = Path(metrics.get("predictions") or run["folder"] / "training" / run["name"] / "predictions.spacy")
        if not path.exists():
            path = run["folder"] / "training" / run["name"] / "predictions.spacy"
        if not path.exists():
            raise ValueError(f"{run['name']}: no saved predictions")
        if str(path) not in self.cache:
            test = str(metrics["test_data"])
            if test not in self.gold:
                if not Path(test).exists():
                    raise ValueError(f"{run['name']}: test data {test} not found")
                self.gold[test] = list(DocBin().from_disk(test).get_docs(VOCAB))
            gold = self.gold[test]
            predicted = list(DocBin().from_disk(path).get_docs(VOCAB))
            if [doc.text for doc in predicted] != [doc.text for doc in gold]:
                raise ValueError(f"{path} does not hold the documents of {test} in order")
            counts = span_counts(Example(p, g) for p, g in zip(predicted, gold))
            self.cache[str(path)] = (counts, [doc.text for doc in gold])
        return self.cache[str(path)]

    def pooled(self, runs: List[dict]) -> Tuple[numpy.ndarray, List[str]]:
        """The counts averaged over ``runs`` (seed-pooled), which must share their test documents."""
        tables = [self.of_run(run) for run in runs]
        texts = tables[0][1]
        if any(other != texts for _, other in tables[1:]):
            raise ValueError(f"the runs of {runs[0]['key']} were tested on different documents")
        return numpy.mean([counts for counts, _ in tables], axis=0), texts


def bootstrap_contrast(
    tables: Sequence[numpy.ndarray],
    weights: Sequence[float],
    samples: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> Dict[str, float]:
    """Paired bootstrap over documents of sum(weight × F(table)) (a contrast of several settings' micro F),
    resampling as spacy_seqlab.core.significance.paired_bootstrap does (for weights −1, +1 it is the same)."""
    rng = numpy.random.default_rng(seed)
    n_docs = len(tables[0])
    draws = rng.integers(0, n_docs, size=(samples, n_docs))
    counts = numpy.zeros((samples, n_docs))
    numpy.add.at(counts, (numpy.arange(samples)[:, None], draws), 1.0)
    values = sum(weight * micro_f(counts @ table) for weight, table in zip(weights, tables))
    point = sum(weight * float(micro_f(table.sum(axis=0))) for weight, table in zip(weights, tables))
    tail = (1.0 - confidence) / 2.0
    low, high = numpy.quantile(values, [tail, 1.0 - tail])
    p_value = min(1.0, 2.0 * min(float(numpy.mean(values <= 0)), float(numpy.mean(values >= 0))))
    return {"difference": point, "low": float(low), "high": float(high), "p_value": p_value, "samples": samples}


# -- claims ------------------------------------------------------------------------------------


class Experiment:
    """One grid folder's runs, and the comparisons the claims make on them."""

    def __init__(self, name: str, folder: Path, counts: Counts, options: argparse.Namespace, label: str = "") -> None:
        self.name, self.folder, self.counts, self.options, self.label = name, folder, counts, options, label
        self.runs = load_grid(folder) if folder.exists() else {}
        self.record = grid_record(folder)

    def has(self, key: str) -> bool:
        return key in self.runs

    def measured(self, key: str, label: str) -> dict:
        if not self.has(key):
            return {"setting": key, "label": label, "missing": True}
        return {"setting": key, "label": label, **summarize(self.runs[key])}

    def compare(self, a: str, b: str, what: str, confidence: float = 0.95) -> dict:
        """Paired bootstrap of F(b) − F(a) ×100 on seed-pooled predictions."""
        result: Dict[str, Any] = {"what": what, "a": a, "b": b, "confidence": confidence}
        absent = [key for key in (a, b) if not self.has(key)]
        if absent:
            return {**result, "missing": f"no runs of {', '.join(absent)}"}
        try:
            (counts_a, texts_a), (counts_b, texts_b) = (
                self.counts.pooled(self.runs[a]),
                self.counts.pooled(self.runs[b]),
            )
        except ValueError as error:
            return {**result, "missing": str(error)}
        if texts_a != texts_b:
            return {**result, "missing": f"{a} and {b} were tested on different documents"}
        test = paired_bootstrap(
            counts_a, counts_b, samples=self.options.samples, seed=self.options.seed, confidence=confidence
        )
        return {**result, **scaled(test), "docs": len(texts_a)}

    def contrast(self, weights: Dict[str, float], what: str) -> dict:
        result: Dict[str, Any] = {"what": what, "weights": weights, "confidence": 0.95}
        absent = [key for key in weights if not self.has(key)]
        if absent:
            return {**result, "missing": f"no runs of {', '.join(absent)}"}
        try:
            pooled = [self.counts.pooled(self.runs[key]) for key in weights]
        except ValueError as error:
            return {**result, "missing": str(error)}
        if any(texts != pooled[0][1] for _, texts in pooled[1:]):
            return {**result, "missing": "the settings were tested on different documents"}
        test = bootstrap_contrast(
            [counts for counts, _ in pooled], list(weights.values()), self.options.samples, self.options.seed
        )
        return {**result, **scaled(test), "docs": len(pooled[0][1])}

    def best_on_dev(self, keys: Sequence[str]) -> Optional[str]:
        """The key among ``keys`` with runs and the best mean dev F (the first such key without dev scores)."""
        present = [key for key in keys if self.has(key)]
        if not present:
            return None
        dev = {key: summarize(self.runs[key])["dev_mean"] for key in present}
        return max(present, key=lambda key: -numpy.inf if dev[key] is None else dev[key])

    def command(self) -> str:
        if self.record.get("command"):
            return f"cd project && {self.record['command']}"
        return f"(no {self.folder}/grid.json: the grid command is unknown)"

    def scale(self) -> str:
        """Train size, steps and test documents as the grid recorded them."""
        record = self.record
        if not record:
            return "sizes unknown (no grid.json)"
        steps = {"c1": "encoder_steps", "c2": "bidir_steps", "c3": "sft_steps"}[self.name]
        size = record.get("train_size")
        text = f"train {'all' if size == 0 else size} docs, {record.get(steps)} steps"
        if self.name == "c3":
            text += f" (bidir {record.get('bidir_steps')})"
        text += f", dev {record.get('dev_size')}, seeds {' '.join(map(str, record.get('seeds', [])))}"
        if self.name == "c1":
            text += f", {record.get('samples')} few-shot samples per k and seed"
        return text


def scaled(test: Dict[str, float]) -> Dict[str, float]:
    """A bootstrap result with the F differences ×100."""
    return {
        key: value * 100 if key in ("difference", "low", "high", "f_a", "f_b") else value for key, value in test.items()
    }


def better(comparisons: List[dict]) -> Tuple[str, str]:
    """Verdict of a claim that every comparison is positive."""
    missing = [c["missing"] for c in comparisons if "missing" in c]
    if missing:
        return MISSING, "; ".join(dict.fromkeys(missing))
    if any(c["high"] < 0 for c in comparisons):
        return FAILS, "an interval lies below 0"
    if all(c["low"] > 0 for c in comparisons):
        return HOLDS, "every interval lies above 0"
    return INCONCLUSIVE, "an interval contains 0"


def any_better(comparisons: List[dict]) -> Tuple[str, str]:
    """Verdict of a claim that at least one comparison is positive (intervals Bonferroni-corrected by the caller)."""
    present = [c for c in comparisons if "missing" not in c]
    if any(c["low"] > 0 for c in present):
        return HOLDS, "an interval lies above 0"
    if len(present) < len(comparisons):
        return MISSING, "; ".join(dict.fromkeys(c["missing"] for c in comparisons if "missing" in c))
    if all(c["high"] < 0 for c in present):
        return FAILS, "every interval lies below 0"
    return INCONCLUSIVE, "no interval lies above 0"


def not_worse(comparison: dict, margin: float) -> Tuple[str, str]:
    if "missing" in comparison:
        return MISSING, comparison["missing"]
    if comparison["low"] > -margin:
        return HOLDS, f"the interval lies above −{margin:g}"
    if comparison["high"] < 0:
        return FAILS, "the interval lies below 0"
    return INCONCLUSIVE, f"the interval reaches below −{margin:g} and above 0"


def no_gain(comparison: dict, margin: float) -> Tuple[str, str]:
    if "missing" in comparison:
        return MISSING, comparison["missing"]
    if comparison["high"] < margin:
        return HOLDS, f"the interval lies below +{margin:g}"
    if comparison["low"] > 0:
        return FAILS, "the interval lies above 0"
    return INCONCLUSIVE, f"the interval reaches above +{margin:g} and below 0"


def claim_row(
    claim_id: str,
    claim: str,
    experiment: Experiment,
    measured: List[dict],
    comparisons: List[dict],
    verdict: Tuple[str, str],
    rule: str,
    published: str,
) -> dict:
    label = f" [{experiment.label}]" if experiment.label else ""
    return {
        "id": claim_id + label,
        "claim": claim,
        "experiment": experiment.name,
        "folder": str(experiment.folder),
        "measured": measured,
        "comparisons": comparisons,
        "verdict": verdict[0],
        "reason": verdict[1],
        "rule": rule,
        "published": published,
        "scale": experiment.scale() + test_docs(measured),
        "command": experiment.command(),
    }


def test_docs(measured: List[dict]) -> str:
    sizes = sorted({entry["test_docs"] for entry in measured if entry.get("test_docs") is not None})
    return f"; test {' / '.join(map(str, sizes))} docs" if sizes else ""


def c1_claims(c1: Experiment) -> List[dict]:
    names = {"vanilla": "vanilla", "oie-embed": "OIE embed", "oie-head": "OIE head"}
    rows = []
    for k in (0, *C1_SHOTS):
        regime = "zero-shot" if k == 0 else f"few-shot k = {k}"
        suffix = "zero" if k == 0 else f"k{k}"
        keys = {variant: f"c1-{variant}-{suffix}" for variant in C1_VARIANTS}
        measured = [c1.measured(key, names[variant]) for variant, key in keys.items()]
        # Two variants against vanilla: Bonferroni, 97.5% intervals.
        comparisons = [
            c1.compare(keys["vanilla"], keys[variant], f"{names[variant]} − vanilla", confidence=0.975)
            for variant in ("oie-embed", "oie-head")
        ]
        rows.append(
            claim_row(
                f"C1 {regime}",
                f"An OIE signal improves news → tweets transfer ({regime})",
                c1,
                measured,
                comparisons,
                any_better(comparisons),
                "holds if the 97.5% interval (Bonferroni for two variants) of OIE embed − vanilla or OIE head − "
                "vanilla lies above 0; does not hold if both lie below 0",
                f"{C1_PUBLISHED[k]}; {C1_SOURCE}",
            )
        )
    return rows


def c2_claims(c2: Experiment, margin: float) -> List[dict]:
    # The claims subset runs one pooling (its config's); a full grid runs both: then the shipped config's.
    poolings = {run["pooling"] for runs in c2.runs.values() for run in runs}
    pooling = poolings.pop() if len(poolings) == 1 else shipped_pooling()
    key = {bits: f"c2-{bits}-{pooling}" for bits in C2_CLAIMS_UNMASK}
    unmasked = [f"c2-{''.join(bits)}-{pooling}" for bits in itertools.product("01", repeat=4)][1:]
    repeats = [f"c2-rep{k}-{pooling}" for k in C2_REPEATS]
    causal = key["0000"]

    def label(k: str) -> str:
        bits = k.split("-")[1]
        names = {"0000": "0000 (causal)", "1111": "1111 (all)"}
        return f"repeat {bits[3:]}" if bits.startswith("rep") else names.get(bits, bits)

    best_unmask = c2.best_on_dev(unmasked)
    best_repeat = c2.best_on_dev(repeats)
    rows = []
    chosen = best_unmask or key["1111"]
    comparison = c2.compare(causal, chosen, f"best unmasked on dev ({label(chosen)}) − causal")
    shown = list(key.values()) + ([chosen] if chosen not in key.values() else [])
    rows.append(
        claim_row(
            "C2 unmasking",
            "Removing the causal mask (in the best layer groups) beats the causal decoder",
            c2,
            [c2.measured(k, label(k)) for k in shown],
            [comparison],
            better([comparison]),
            "holds if the interval of (the unmasked setting with the best mean dev F) − 0000 lies above 0",
            PUBLISHED["c2-unmask"],
        )
    )
    contrast = c2.contrast(
        {key["0001"]: 2.0, causal: -1.0, key["1111"]: -1.0},
        "(0001 − 0000) − (1111 − 0001): the top group's gain minus the gain of the three groups below it",
    )
    steps = [c2.compare(key[a], key[b], f"{b} − {a}") for a, b in zip(C2_CLAIMS_UNMASK, C2_CLAIMS_UNMASK[1:])]
    rows.append(
        claim_row(
            "C2 top groups",
            "The layer groups near the output matter most",
            c2,
            [c2.measured(k, label(k)) for k in key.values()],
            [contrast, *steps],
            better([contrast]),
            "holds if the interval of the contrast (0001 − 0000) − (1111 − 0001) lies above 0 (unmasking the top "
            "group alone gains more than unmasking the three below it); the per-group steps are context",
            PUBLISHED["c2-groups"],
        )
    )
    rows.append(task_dependence(c2))
    comparison = c2.compare(causal, key["1111"], "1111 (all) − 0000 (causal)")
    rows.append(
        claim_row(
            "C2 small scale",
            "At small scale removing the causal mask brings no gain",
            c2,
            [c2.measured(k, label(k)) for k in (causal, key["1111"])],
            [comparison],
            no_gain(comparison, margin),
            f"holds if the interval of 1111 − 0000 lies below +{margin:g} (no gain beyond the margin); does not hold "
            "if it lies above 0",
            PUBLISHED["c2-scale"],
        )
    )
    if best_repeat and best_unmask:
        what = f"best repetition on dev ({label(best_repeat)}) − best unmasked on dev ({label(best_unmask)})"
        comparison = c2.compare(best_unmask, best_repeat, what)
    else:
        missing = [name for name, found in (("repetition", best_repeat), ("unmasking", best_unmask)) if not found]
        comparison = {"what": "repetition − unmasking", "missing": f"no runs of {' or '.join(missing)}"}
    rows.append(
        claim_row(
            "C2 repetition",
            "Sequence repetition (causal) is at least as good as unmasking",
            c2,
            [c2.measured(k, label(k)) for k in repeats + [best_unmask or key["1111"]]],
            [comparison],
            not_worse(comparison, margin),
            f"holds if the interval of (best repetition on dev) − (best unmasked on dev) lies above −{margin:g}; "
            "does not hold if it lies below 0",
            PUBLISHED["c2-repeat"],
        )
    )
    return rows


def task_dependence(c2: Experiment) -> dict:
    """One grid folder is one task: it can name the best setting there, not show that the best depends on the task."""
    settings = [k for k in c2.runs if "-rep" not in k]
    tasks = {str(run["metrics"].get("test_data")) for k in settings for run in c2.runs[k]}
    measured = sorted((c2.measured(k, k.split("-", 1)[1]) for k in settings), key=lambda m: -m["mean"])
    comparisons = []
    if len(measured) >= 2:
        best, second = measured[0]["setting"], measured[1]["setting"]
        comparisons.append(c2.compare(second, best, f"best on test ({best}) − runner-up ({second})"))
    if not settings:
        verdict = (MISSING, "no runs")
    else:
        verdict = (
            INCONCLUSIVE,
            f"{len(tasks)} task(s): task dependence needs runs on two or more tasks; this task's best setting is "
            f"{measured[0]['setting']}" + (", see the comparison with the runner-up" if comparisons else ""),
        )
    return claim_row(
        "C2 task-dependent",
        "The best unmask setting depends on the task",
        c2,
        measured,
        comparisons,
        verdict,
        "needs two or more tasks (one grid folder is one task); one task shows only its own best setting and whether "
        "it separates from the runner-up (best picked on test: the interval is optimistic)",
        PUBLISHED["c2-task"],
    )


def c3_claims(c3: Experiment, margin: float) -> List[dict]:
    sift = "c3-mrc-noinstr-2d"
    names = {
        sift: "SIFT mrc, 2 demos",
        "c3-src-noinstr-2d": "src, 2 demos",
        "c3-vanilla-noinstr-2d": "vanilla, 2 demos",
        "c3-mrc-instr-2d": "mrc + instruction, 2 demos",
        "c3-mrc-noinstr-0d": "mrc, 0 demos",
        "c3-mrc-noinstr-8d": "mrc, 8 demos",
        "c3-icl": "in-context learning (8 demos)",
        "c3-bidir": "bidir tagger (unmask 01)",
    }
    rows = []
    comparisons = [
        c3.compare("c3-icl", sift, "SIFT − in-context learning"),
        c3.compare("c3-bidir", sift, "SIFT − decoder as encoder (bidir tagger)"),
    ]
    rows.append(
        claim_row(
            "C3 SIFT",
            "SIFT beats in-context learning and the decoder used as an encoder",
            c3,
            [c3.measured(k, names[k]) for k in (sift, "c3-icl", "c3-bidir")],
            comparisons,
            better(comparisons),
            "holds if both intervals (SIFT = the shipped setting: mrc, 2 dense demos, no instruction) lie above 0",
            PUBLISHED["c3"],
        )
    )
    comparisons = [
        c3.compare("c3-src-noinstr-2d", sift, "mrc − src"),
        c3.compare("c3-vanilla-noinstr-2d", sift, "mrc − vanilla"),
    ]
    rows.append(
        claim_row(
            "C3 MRC",
            "Multi-response completion is the best loss",
            c3,
            [c3.measured(k, names[k]) for k in (sift, "c3-src-noinstr-2d", "c3-vanilla-noinstr-2d")],
            comparisons,
            better(comparisons),
            "holds if both intervals (2 demos, no instruction) lie above 0",
            PUBLISHED["c3"],
        )
    )
    comparison = c3.compare("c3-mrc-instr-2d", sift, "no instruction − instruction")
    rows.append(
        claim_row(
            "C3 instruction",
            "The instruction can be dropped",
            c3,
            [c3.measured(k, names[k]) for k in (sift, "c3-mrc-instr-2d")],
            [comparison],
            not_worse(comparison, margin),
            f"holds if the interval of (mrc, 2 demos, no instruction) − (with instruction) lies above −{margin:g}; "
            "does not hold if it lies below 0",
            PUBLISHED["c3"],
        )
    )
    comparisons = [c3.compare("c3-mrc-noinstr-8d", sift, "2 demos − 8 demos")]
    rows.append(
        claim_row(
            "C3 context length",
            "Longer contexts (8 rather than 2 demonstrations) hurt generative labeling",
            c3,
            [c3.measured(k, names[k]) for k in ("c3-mrc-noinstr-0d", sift, "c3-mrc-noinstr-8d")],
            [*comparisons, c3.compare("c3-mrc-noinstr-0d", sift, "2 demos − 0 demos")],
            better(comparisons),
            "holds if the interval of (mrc, 2 demos) − (mrc, 8 demos) lies above 0; 2 − 0 demos is context",
            PUBLISHED["c3"],
        )
    )
    return rows


# -- output ------------------------------------------------------------------------------------


def fmt_measured(entry: dict) -> str:
    if entry.get("missing"):
        return f"{entry['label']}: not run"
    text = f"{entry['label']} {entry['mean']:.1f}"
    if entry["sd"] is not None:
        text += f" ± {entry['sd']:.1f}"
    runs = f" × {entry['runs_per_seed']} samples" if entry["runs_per_seed"] > 1 else ""
    return text + f" ({len(entry['seeds'])} seeds{runs})"


def fmt_comparison(entry: dict) -> str:
    if "missing" in entry:
        return f"{entry['what']}: not compared ({entry['missing']})"
    level = f"{entry['confidence'] * 100:g}%"
    # Two-sided bootstrap p: its resolution is 2 / resamplings.
    p_value = f"p {entry['p_value']:.3f}" if entry["p_value"] > 0 else f"p < {2 / entry['samples']:g}"
    return (
        f"{entry['what']}: {entry['difference']:+.1f} [{entry['low']:+.1f}, {entry['high']:+.1f}] ({level}), "
        f"{p_value}, {entry['docs']} docs"
    )


def headline(rows: List[dict]) -> str:
    counts = {verdict: sum(row["verdict"] == verdict for row in rows) for verdict in VERDICTS}
    return ", ".join(f"{verdict}: {counts[verdict]}" for verdict in VERDICTS)


def write_markdown(rows: List[dict], path: Path, options: argparse.Namespace, command: str) -> None:
    cell: Callable[[str], str] = lambda text: text.replace("|", "/")  # noqa: E731
    lines = [
        "# The thesis' claims at CPU scale",
        "",
        f"Written by `{command}` from the grids' runs. Test F1 is seqeval strict IOB2 micro F ×100, mean ± sd "
        "over seeds. Comparisons: paired bootstrap over test documents on seed-pooled predictions (per document, "
        f"the span counts averaged over a setting's seeds and samples; {options.samples} resamplings, seed "
        f"{options.seed}), the F difference ×100 with its interval and two-sided p. Verdicts are computed from the "
        f'intervals (rule per row, margin δ = {options.margin:g} F points); "{INCONCLUSIVE}" means the runs at this '
        "scale cannot tell.",
        "",
        f"Verdicts: {headline(rows)}.",
        "",
        "| claim | measured (test F ×100) | comparison: difference [interval], p | verdict | published (context) |",
        "| --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        lines.append(
            "| "
            + " | ".join(
                cell(text)
                for text in (
                    f"**{row['id']}**: {row['claim']}",
                    "; ".join(fmt_measured(entry) for entry in row["measured"]) or "no runs",
                    "; ".join(fmt_comparison(entry) for entry in row["comparisons"]) or "–",
                    f"**{row['verdict']}** ({row['reason']})",
                    row["published"],
                )
            )
            + " |"
        )
    lines += ["", "## Rules and commands per row", ""]
    for row in rows:
        lines.append(f"- **{row['id']}**: {row['rule']}. Scale: {row['scale']}. Runs: `{row['command']}`")
    lines += ["", "## Plots", ""]
    for name, alt in (("c1", "C1: F by k"), ("c2", "C2: heat-map"), ("c3", "C3: bars")):
        lines.append(f"![{alt}]({path.stem}_{name}.png)")
    path.write_text("\n".join(lines) + "\n")


def empty_plot(path: Path, text: str) -> None:
    fig, ax = plt.subplots(figsize=(5, 2))
    ax.text(0.5, 0.5, text, ha="center", va="center")
    ax.axis("off")
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_c1(c1: Experiment, path: Path) -> None:
    """Test F by k (0 = zero-shot), one line per variant, error bars = sd over seeds."""
    ks = (0, *C1_SHOTS)
    if not c1.runs:
        return empty_plot(path, "no C1 runs yet")
    fig, ax = plt.subplots(figsize=(6, 4))
    for offset, variant in zip((-0.08, 0.0, 0.08), C1_VARIANTS):
        keys = [f"c1-{variant}-" + ("zero" if k == 0 else f"k{k}") for k in ks]
        stats = [summarize(c1.runs[key]) if c1.has(key) else None for key in keys]
        means = [s["mean"] if s else numpy.nan for s in stats]
        errors = [s["sd"] or 0.0 if s else 0.0 for s in stats]
        ax.errorbar(numpy.arange(len(ks)) + offset, means, yerr=errors, marker="o", capsize=4, label=variant)
    ax.set_xticks(range(len(ks)), ["0 (zero-shot)", *map(str, C1_SHOTS)])
    ax.set_xlabel("target tweets k (few-shot)")
    ax.set_ylabel("test F1 ×100 (mean ± sd over seeds)")
    ax.set_title("C1: news → tweets transfer", fontsize=10)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_c3(c3: Experiment, path: Path) -> None:
    keys = [
        ("c3-vanilla-noinstr-2d", "vanilla\n2 demos"),
        ("c3-src-noinstr-2d", "src\n2 demos"),
        ("c3-mrc-noinstr-2d", "mrc\n2 demos"),
        ("c3-mrc-instr-2d", "mrc + instr.\n2 demos"),
        ("c3-mrc-noinstr-0d", "mrc\n0 demos"),
        ("c3-mrc-noinstr-8d", "mrc\n8 demos"),
        ("c3-icl", "in-context\n(no training)"),
        ("c3-bidir", "bidir\ntagger"),
    ]
    present = [(key, label) for key, label in keys if c3.has(key)]
    if not present:
        return empty_plot(path, "no C3 runs yet")
    stats = [summarize(c3.runs[key]) for key, _ in present]
    colors = ["#4c72b0" if key.startswith("c3-") and key.count("-") == 3 else "#dd8452" for key, _ in present]
    fig, ax = plt.subplots(figsize=(max(6.0, 1.1 * len(present) + 2), 4))
    ax.bar(
        range(len(present)), [s["mean"] for s in stats], yerr=[s["sd"] or 0.0 for s in stats], capsize=4, color=colors
    )
    top = max(stat["mean"] + (stat["sd"] or 0.0) for stat in stats)
    ax.set_ylim(0, max(10.0, top * 1.15))  # room for the labels, also when every score is 0
    for i, stat in enumerate(stats):
        ax.text(i, stat["mean"] + 0.5, f"{stat['mean']:.1f}", ha="center", va="bottom", fontsize=8)
    ax.set_xticks(range(len(present)), [label for _, label in present], fontsize=8)
    ax.set_ylabel("test F1 ×100 (mean ± sd over seeds)")
    ax.set_title("C3: SIFT settings (blue) and baselines (orange) on the same model", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: Optional[List[str]] = None) -> List[dict]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=Path, default=Path("runs"), help="Folder with the grids' c1, c2, c3 folders")
    parser.add_argument("--output", type=Path, default=Path("claims.md"), help="claims.md; .json and plots beside it")
    parser.add_argument("--samples", type=int, default=1000, help="Bootstrap resamplings")
    parser.add_argument("--seed", type=int, default=0, help="Bootstrap seed")
    parser.add_argument("--margin", type=float, default=2.0, help="δ of the not-worse and no-gain claims, F ×100")
    parser.add_argument(
        "--c2-also", action="append", default=[], metavar="LABEL=DIR", help="More C2 grids (another model), own rows"
    )
    args = parser.parse_args(argv)
    command = shlex.join(["python", "scripts/claims.py", *(sys.argv[1:] if argv is None else argv)])
    counts = Counts()
    experiments = {name: Experiment(name, args.runs / name, counts, args) for name in ("c1", "c2", "c3")}
    rows = c1_claims(experiments["c1"]) + c2_claims(experiments["c2"], args.margin)
    for item in filter(None, args.c2_also):  # the workflow passes an empty one when its var is empty
        label, _, folder = item.partition("=")
        if not folder:
            parser.error(f"--c2-also takes LABEL=DIR, got {item!r}")
        rows += c2_claims(Experiment("c2", Path(folder), counts, args, label=label), args.margin)
    rows += c3_claims(experiments["c3"], args.margin)
    write_markdown(rows, args.output, args, command)
    report = {
        "command": command,
        "bootstrap": {"samples": args.samples, "seed": args.seed, "pooling": "per-document counts averaged over runs"},
        "margin": args.margin,
        "grids": {name: experiment.record for name, experiment in experiments.items()},
        "verdicts": {verdict: sum(row["verdict"] == verdict for row in rows) for verdict in VERDICTS},
        "claims": rows,
    }
    args.output.with_suffix(".json").write_text(json.dumps(report, indent=2, default=str))
    stem = args.output.with_suffix("")
    plot_c1(experiments["c1"], Path(f"{stem}_c1.png"))
    if write_heatmap(experiments["c2"].folder, Path(f"{stem}_c2.png"), "C2: test F1 ×100, mean over seeds") is None:
        empty_plot(Path(f"{stem}_c2.png"), "no C2 runs yet")
    plot_c3(experiments["c3"], Path(f"{stem}_c3.png"))
    print(args.output.read_text())
    return rows


if __name__ == "__main__":
    main()
