"""scripts/report_full.py: the full-budget table, and adding or re-running rows on top of an earlier table."""

import importlib.util
import json
import sys
from pathlib import Path
from typing import Sequence

import pytest
import spacy
from spacy.tokens import Doc, DocBin, Span

SCRIPTS = Path(__file__).parents[2] / "project" / "scripts"
N_DOCS = 40
VOCAB = spacy.blank("en").vocab


def docs(right: Sequence[bool]) -> list:
    """Test Docs with two entities each, kept where ``right`` (a gold copy: every entity kept)."""
    out = []
    for i, keep in enumerate(right):
        doc = Doc(VOCAB, words=[f"Alice{i}", "flew", "to", "Paris", "."])
        doc.ents = [Span(doc, 0, 1, label="PER"), Span(doc, 3, 4, label="LOC")] if keep else []
        out.append(doc)
    return out


class Metrics:
    """A metrics/full folder written as run_seeds.py writes it (metrics and predictions of each seed)."""

    def __init__(self, root: Path, test: Path) -> None:
        self.folder, self.test = root / "metrics", test

    def add(self, name: str, method: str, setting: str, right: Sequence[bool], seed: int = 0) -> None:
        folder = self.folder / name
        folder.mkdir(parents=True, exist_ok=True)
        predictions = folder / f"seed-{seed}.predictions.spacy"
        DocBin(docs=docs(right)).to_disk(predictions)
        recall = sum(right) / len(right)
        metrics = {
            "name": name,
            "method": method,
            "setting": setting,
            "seed": seed,
            "test_data": str(self.test),
            "predictions": str(predictions),
            "test_docs": len(right),
            "p": 1.0,
            "r": recall,
            "f": 2 * recall / (1 + recall),
            "dev_score": 0.5,
            "train_seconds": 60.0,
            "words_per_second": 100.0,
        }
        (folder / f"seed-{seed}.json").write_text(json.dumps(metrics))


def _load_report_full():
    """scripts/report_full.py under its own name; its `report` import is scripts/report.py, not project/bench's
    module of that name, which other tests import as `report` (sys.modules is restored)."""
    saved = sys.modules.pop("report", None)
    sys.path.insert(0, str(SCRIPTS))
    try:
        spec = importlib.util.spec_from_file_location("project_scripts_report_full", SCRIPTS / "report_full.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(SCRIPTS))
        sys.modules.pop("report", None)
        if saved is not None:
            sys.modules["report"] = saved
    return module


report_full = _load_report_full()


def report(metrics: Path, output: Path, *extra: str, monkeypatch) -> None:
    argv = ["report_full.py", str(metrics), "--output", str(output), "--samples", "200", *extra]
    monkeypatch.setattr(sys, "argv", argv)
    report_full.main()


@pytest.fixture
def first_table(tmp_path, monkeypatch):
    """An earlier table: the baseline right on half the documents, a tagger right on all of them."""
    test = tmp_path / "test.spacy"
    DocBin(docs=docs([True] * N_DOCS)).to_disk(test)
    metrics = Metrics(tmp_path / "first", test)
    metrics.add("spacy-ner", "spaCy ner", "MiniLM", [i % 2 == 0 for i in range(N_DOCS)])
    metrics.add("tagger", "seqlab_multitask_ner", "no signals", [True] * N_DOCS)
    output = tmp_path / "first" / "results_full.md"
    report(metrics.folder, output, monkeypatch=monkeypatch)
    return test, output.with_suffix(".json")


def test_a_new_row_keeps_the_earlier_rows_and_their_bootstraps(first_table, tmp_path, monkeypatch):
    test, earlier = first_table
    earlier_rows = {row["name"]: row for row in json.loads(earlier.read_text())["rows"]}
    assert earlier_rows["tagger"]["bootstrap"]["low"] > 0  # right everywhere against right on half
    # On another machine, only the baseline is run again, and a new row with three seeds is added.
    metrics = Metrics(tmp_path / "second", test)
    metrics.add("spacy-ner", "spaCy ner", "MiniLM", [i % 2 == 0 for i in range(N_DOCS)])
    for seed in (0, 1, 2):
        metrics.add("tagger-crf", "seqlab_multitask_ner", "crf", [i % 4 != 0 for i in range(N_DOCS)], seed=seed)
    output = tmp_path / "second" / "results_full.md"
    report(metrics.folder, output, "--previous", str(earlier), monkeypatch=monkeypatch)

    results = json.loads(output.with_suffix(".json").read_text())
    rows = {row["name"]: row for row in results["rows"]}
    assert list(rows) == ["spacy-ner", "tagger", "tagger-crf"]
    assert rows["tagger"]["kept_seeds"] == [0] and rows["tagger"]["bootstrap"] == earlier_rows["tagger"]["bootstrap"]
    assert rows["tagger-crf"]["kept_seeds"] == [] and rows["tagger-crf"]["seeds"] == [0, 1, 2]
    assert rows["tagger-crf"]["bootstrap"]["f_b"] == pytest.approx(rows["tagger-crf"]["f"]["mean"])
    assert rows["spacy-ner"]["kept_seeds"] == []  # re-run: the new run replaces the earlier one
    assert sum(run["name"] == "spacy-ner" for run in results["runs"]) == 1
    table = output.read_text()
    assert table.count("\n| ") == 5 and "Kept from the earlier table" in table and "no signals; seed 0" in table

    # The kept runs travel on: a third table on top of the second still holds all three rows.
    third = tmp_path / "third" / "results_full.md"
    only_baseline = Metrics(tmp_path / "third", test)
    only_baseline.add("spacy-ner", "spaCy ner", "MiniLM", [i % 2 == 0 for i in range(N_DOCS)])
    report(only_baseline.folder, third, "--previous", str(output.with_suffix(".json")), monkeypatch=monkeypatch)
    assert [row["name"] for row in json.loads(third.with_suffix(".json").read_text())["rows"]] == list(rows)


def test_a_new_row_against_a_kept_baseline_is_refused(first_table, tmp_path, monkeypatch):
    test, earlier = first_table
    metrics = Metrics(tmp_path / "second", test)
    metrics.add("tagger-crf", "seqlab_multitask_ner", "crf", [True] * N_DOCS)
    with pytest.raises(
        SystemExit, match="tagger-crf: a new run needs the baseline's predictions.*run the baseline again"
    ):
        report(
            metrics.folder, tmp_path / "second" / "results_full.md", "--previous", str(earlier), monkeypatch=monkeypatch
        )


def test_a_missing_earlier_table_is_named(tmp_path, first_table, monkeypatch):
    test, _ = first_table
    metrics = Metrics(tmp_path / "second", test)
    metrics.add("spacy-ner", "spaCy ner", "MiniLM", [True] * N_DOCS)
    with pytest.raises(SystemExit, match="nowhere.json: no such file"):
        report(
            metrics.folder, tmp_path / "out.md", "--previous", str(tmp_path / "nowhere.json"), monkeypatch=monkeypatch
        )
