"""A grid folder's runs for the claims: loaded by setting, summarized over seeds, and compared by paired bootstraps
over test documents on seed-pooled span counts (see scripts/claims.py)."""

import argparse
import json
import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy
import spacy
from grid_runs import parse_run_name
from spacy.tokens import DocBin
from spacy.training import Example

from spacy_seqlab.core.significance import micro_f, paired_bootstrap, span_counts

VOCAB = spacy.blank("en").vocab


def load_grid(folder: Path) -> Dict[str, List[dict]]:
    """The runs of one grid folder by setting key (see grid_runs.parse_run_name): each its metrics and name fields."""
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


def scaled(test: Dict[str, float]) -> Dict[str, float]:
    """A bootstrap result with the F differences ×100."""
    return {
        key: value * 100 if key in ("difference", "low", "high", "f_a", "f_b") else value for key, value in test.items()
    }


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
