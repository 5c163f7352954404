"""scripts/claims.py on a synthetic runs/ folder: metrics JSON and prediction DocBins made from a few Docs."""

import json
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy
import pytest
import spacy
from spacy.tokens import Doc, DocBin, Span

SCRIPTS = Path(__file__).parents[2] / "project" / "scripts"
sys.path.insert(0, str(SCRIPTS))
import claims  # noqa: E402
import claims_runs  # noqa: E402

sys.path.remove(str(SCRIPTS))  # the scripts' module names (report, train) stay out of other tests' way

from spacy_seqlab.core.significance import paired_bootstrap  # noqa: E402

N_DOCS = 30
ALL = [True] * N_DOCS
WEAK = [i % 3 == 0 for i in range(N_DOCS)]  # a third of the documents right
FIRST_HALF = [i < N_DOCS // 2 for i in range(N_DOCS)]
SECOND_HALF = [i >= N_DOCS // 2 for i in range(N_DOCS)]
WEAK_FIRST_HALF = [weak and first for weak, first in zip(WEAK, FIRST_HALF)]


def gold_docs(vocab) -> List[Doc]:
    docs = []
    for i in range(N_DOCS):
        doc = Doc(vocab, words=[f"Alice{i}", "flew", "to", "Paris", "."])
        doc.ents = [Span(doc, 0, 1, label="PER"), Span(doc, 3, 4, label="LOC")]
        docs.append(doc)
    return docs


def predictions(gold: List[Doc], right: Sequence[bool]) -> List[Doc]:
    """A copy of the gold Docs whose entities are kept where ``right`` and dropped elsewhere."""
    docs = []
    for doc, keep in zip(gold, right):
        copy = Doc(doc.vocab, words=[token.text for token in doc])
        copy.ents = [Span(copy, e.start, e.end, label=e.label_) for e in doc.ents] if keep else []
        docs.append(copy)
    return docs


class Runs:
    """Writes grid runs as the grids do: OUT/metrics/NAME.json and OUT/training/NAME/predictions.spacy."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.vocab = spacy.blank("en").vocab
        self.gold = gold_docs(self.vocab)
        self.test = root / "test.spacy"
        DocBin(docs=self.gold).to_disk(self.test)

    def add(
        self,
        experiment: str,
        name: str,
        right: Optional[Sequence[bool]],
        dev: float = 0.5,
        record_path: bool = True,
    ) -> None:
        """One run; ``right=None`` writes metrics without saved predictions (an older grid's run)."""
        folder = self.root / "runs" / experiment
        path = folder / "training" / name / "predictions.spacy"
        f = 0.0
        if right is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            DocBin(docs=predictions(self.gold, right)).to_disk(path)
            f = sum(right) / len(right) * 2 / (1 + sum(right) / len(right))  # micro F: precision 1, recall share
        metrics = {"name": name, "test_data": str(self.test), "test_docs": N_DOCS, "f": f, "dev_score": dev}
        if record_path and right is not None:
            metrics["predictions"] = str(path)
        (folder / "metrics").mkdir(parents=True, exist_ok=True)
        (folder / "metrics" / f"{name}.json").write_text(json.dumps(metrics))

    def seeds(self, experiment: str, key: str, right: Sequence[bool], seeds=(0, 1, 2), **kwargs) -> None:
        for seed in seeds:
            self.add(experiment, f"{key}-s{seed}", right, **kwargs)


def by_id(rows: List[dict]) -> Dict[str, dict]:
    return {row["id"]: row for row in rows}


@pytest.fixture
def written(tmp_path):
    runs = Runs(tmp_path)
    # C1: zero-shot, OIE embed clearly better; k = 5, all equal; k = 10 not run; k = 50, both OIE variants worse.
    runs.seeds("c1", "c1-vanilla-zero", WEAK)
    runs.seeds("c1", "c1-oie-embed-zero", ALL)
    runs.seeds("c1", "c1-oie-head-zero", WEAK)
    for variant in ("vanilla", "oie-embed", "oie-head"):
        for sample in (0, 1):
            runs.seeds("c1", f"c1-{variant}-k5-{sample}", FIRST_HALF)
        runs.seeds("c1", f"c1-{variant}-k50-0", ALL if variant == "vanilla" else WEAK)
    # C2: causal and 1111 weak (identical), the top groups right; 0011 best on dev; repetition without predictions.
    runs.seeds("c2", "c2-0000-first", WEAK, dev=0.2)
    runs.seeds("c2", "c2-0001-first", ALL, dev=0.5)
    runs.seeds("c2", "c2-0011-first", ALL, dev=0.9)
    runs.seeds("c2", "c2-0111-first", ALL, dev=0.6, record_path=False)  # found at the grid's usual place
    runs.seeds("c2", "c2-1111-first", WEAK, dev=0.3)
    runs.seeds("c2", "c2-rep1-first", None, dev=0.8)
    (tmp_path / "runs" / "c2" / "grid.json").write_text(
        json.dumps(
            {
                "command": "python scripts/grid.py c2 --output runs/c2 --subset claims --seeds 0 1 2",
                "train_size": 800,
                "bidir_steps": 30,
                "dev_size": 60,
                "seeds": [0, 1, 2],
            }
        )
    )
    # C3: SIFT right on the first half, in-context learning, the bidir tagger, vanilla and 8 demos on a part of
    # it; src not run; the instruction right on the other half (as good on average, inconclusive).
    runs.seeds("c3", "c3-mrc-noinstr-2d", FIRST_HALF)
    runs.seeds("c3", "c3-icl", WEAK_FIRST_HALF, seeds=(0,))
    runs.seeds("c3", "c3-bidir", WEAK_FIRST_HALF)
    runs.seeds("c3", "c3-vanilla-noinstr-2d", WEAK_FIRST_HALF)
    runs.seeds("c3", "c3-mrc-instr-2d", SECOND_HALF)
    runs.seeds("c3", "c3-mrc-noinstr-8d", WEAK_FIRST_HALF)
    output = tmp_path / "claims.md"
    rows = claims.main(["--runs", str(tmp_path / "runs"), "--output", str(output), "--samples", "500"])
    return by_id(rows), output


def test_verdicts_follow_the_numbers(written):
    rows, _ = written
    assert rows["C1 zero-shot"]["verdict"] == "holds"
    assert rows["C1 few-shot k = 5"]["verdict"] == "inconclusive at this scale"
    assert rows["C1 few-shot k = 10"]["verdict"] == "missing runs"
    assert rows["C1 few-shot k = 50"]["verdict"] == "does not hold"
    assert rows["C2 unmasking"]["verdict"] == "holds"
    assert "0011" in rows["C2 unmasking"]["comparisons"][0]["what"]  # the best on dev, not the first
    assert rows["C2 top groups"]["verdict"] == "holds"
    assert rows["C2 small scale"]["verdict"] == "holds"  # 1111 and 0000 predict the same: no gain
    assert rows["C2 task-dependent"]["verdict"] == "inconclusive at this scale"
    assert "1 task" in rows["C2 task-dependent"]["reason"]
    assert rows["C2 repetition"]["verdict"] == "missing runs"
    assert "no saved predictions" in rows["C2 repetition"]["reason"]
    assert rows["C3 SIFT"]["verdict"] == "holds"
    assert rows["C3 MRC"]["verdict"] == "missing runs" and "c3-src-noinstr-2d" in rows["C3 MRC"]["reason"]
    assert rows["C3 instruction"]["verdict"] == "inconclusive at this scale"
    assert rows["C3 context length"]["verdict"] == "holds"


def test_measurements_and_comparisons(written):
    rows, _ = written
    zero = rows["C1 zero-shot"]
    vanilla, embed, _ = zero["measured"]
    assert vanilla["seeds"] == [0, 1, 2] and vanilla["sd"] == pytest.approx(0.0)
    assert embed["mean"] == pytest.approx(100.0) and vanilla["mean"] < embed["mean"]
    test = zero["comparisons"][0]
    assert test["confidence"] == 0.975 and test["docs"] == N_DOCS
    assert test["difference"] == pytest.approx(embed["mean"] - vanilla["mean"])
    assert test["low"] <= test["difference"] <= test["high"] and test["low"] > 0 and test["p_value"] < 0.05
    assert rows["C1 few-shot k = 5"]["measured"][0]["runs_per_seed"] == 2  # samples averaged within a seed
    equal = rows["C2 small scale"]["comparisons"][0]
    assert equal["difference"] == 0.0 and equal["low"] == 0.0 and equal["high"] == 0.0
    assert rows["C3 SIFT"]["measured"][1]["seeds"] == [0]  # in-context learning ran once
    assert rows["C2 unmasking"]["scale"] == f"train 800 docs, 30 steps, dev 60, seeds 0 1 2; test {N_DOCS} docs"
    assert (
        rows["C2 unmasking"]["command"]
        == "cd project && python scripts/grid.py c2 --output runs/c2 --subset claims --seeds 0 1 2"
    )
    assert "no" in rows["C1 zero-shot"]["command"] and "grid.json" in rows["C1 zero-shot"]["command"]
    assert "0.392/0.399/0.408" in zero["published"]


def test_markdown_json_and_plots(written):
    rows, output = written
    text = output.read_text()
    assert text.count("\n| **") == len(rows)  # one table row per claim
    assert "**missing runs**" in text and "not run" in text and "no saved predictions" in text
    assert "holds: 6, does not hold: 1, inconclusive at this scale: 3, missing runs: 3" in text
    report = json.loads(output.with_suffix(".json").read_text())
    assert [row["id"] for row in report["claims"]] == list(rows)
    assert report["verdicts"] == {"holds": 6, "does not hold": 1, "inconclusive at this scale": 3, "missing runs": 3}
    for name in ("c1", "c2", "c3"):
        assert (output.parent / f"claims_{name}.png").read_bytes()[:4] == b"\x89PNG"


def test_an_empty_runs_folder_gives_missing_rows(tmp_path):
    rows = claims.main(["--runs", str(tmp_path / "runs"), "--output", str(tmp_path / "claims.md"), "--samples", "10"])
    assert {row["verdict"] for row in rows} == {"missing runs"}
    assert (tmp_path / "claims_c2.png").read_bytes()[:4] == b"\x89PNG"


def test_the_contrast_bootstrap_is_the_paired_bootstrap_for_two_settings():
    rng = numpy.random.default_rng(1)
    a = rng.integers(0, 3, size=(40, 3)).astype(float)
    b = rng.integers(0, 3, size=(40, 3)).astype(float)
    pair = paired_bootstrap(a, b, samples=300, seed=4)
    contrast = claims_runs.bootstrap_contrast([a, b], [-1.0, 1.0], samples=300, seed=4)
    for key in ("difference", "low", "high", "p_value"):
        assert contrast[key] == pytest.approx(pair[key])


def test_another_c2_grid_gets_its_own_labelled_rows(tmp_path):
    runs = Runs(tmp_path)
    runs.seeds("c2", "c2-0000-first", WEAK, dev=0.2)
    runs.seeds("c2", "c2-1111-first", ALL, dev=0.9)
    other = tmp_path / "runs" / "c2"
    rows = by_id(
        claims.main(["--runs", str(tmp_path / "runs"), "--output", str(tmp_path / "c.md"), "--c2-also", f"Big={other}"])
    )
    assert rows["C2 unmasking"]["verdict"] == rows["C2 unmasking [Big]"]["verdict"] == "holds"
    assert rows["C2 small scale [Big]"]["verdict"] == "does not hold"  # a clear gain from unmasking
    assert "**C2 unmasking [Big]**" in (tmp_path / "c.md").read_text()


def two_tasks(tmp_path, chunks_best: str, chunks_other: Sequence[bool]) -> Dict[str, dict]:
    """The main C2 grid picks 0011 on dev (and is right there, 0001 weak); a second task's grid picks
    ``chunks_best`` on dev, right there, with ``chunks_other`` for the other setting."""
    runs = Runs(tmp_path)
    runs.seeds("c2", "c2-0001-first", WEAK, dev=0.5)
    runs.seeds("c2", "c2-0011-first", ALL, dev=0.9)
    other = "0011" if chunks_best == "0001" else "0001"
    runs.seeds("c2-chunks", f"c2-{chunks_best}-first", ALL, dev=0.9)
    runs.seeds("c2-chunks", f"c2-{other}-first", chunks_other, dev=0.4)
    argv = ["--runs", str(tmp_path / "runs"), "--output", str(tmp_path / "c.md"), "--samples", "300"]
    return by_id(claims.main(argv + ["--c2-task", f"chunks={tmp_path / 'runs' / 'c2-chunks'}"]))


def test_a_rank_reversal_between_two_tasks_makes_the_best_setting_task_dependent(tmp_path):
    rows = two_tasks(tmp_path, "0001", WEAK)
    row = rows["C2 task-dependent"]
    assert row["verdict"] == "holds"
    assert [c["what"].split(":")[0] for c in row["comparisons"]] == [str(tmp_path / "test.spacy"), "chunks"]
    assert all(c["low"] > 0 for c in row["comparisons"])
    assert {m["label"] for m in row["measured"]} >= {"chunks: 0001", "chunks: 0011"}
    # The second task's grid gets C2's other rows, labelled, and no task-dependence row of its own.
    assert rows["C2 unmasking [chunks]"]["folder"] == str(tmp_path / "runs" / "c2-chunks")
    assert "C2 task-dependent [chunks]" not in rows
    assert row["scale"].count("sizes unknown") == 2  # no grid.json in either folder: said per task
    # The heat-map has a panel per task (each on its own colour scale): twice as wide as one task's.
    two = png_width(tmp_path / "c_c2.png")
    claims.main(["--runs", str(tmp_path / "runs"), "--output", str(tmp_path / "one.md"), "--samples", "10"])
    assert two > 1.8 * png_width(tmp_path / "one_c2.png")


def png_width(path: Path) -> int:
    data = path.read_bytes()
    assert data[:4] == b"\x89PNG"
    return int.from_bytes(data[16:20], "big")


def test_the_same_clear_winner_on_both_tasks_is_not_task_dependent(tmp_path):
    row = two_tasks(tmp_path, "0011", WEAK)["C2 task-dependent"]
    assert row["verdict"] == "does not hold"
    assert "every task picks 0011" in row["reason"]
    assert [c["b"] for c in row["comparisons"]] == ["c2-0011-first", "c2-0011-first"]


def test_picks_that_differ_without_a_test_difference_are_inconclusive(tmp_path):
    row = two_tasks(tmp_path, "0001", ALL)["C2 task-dependent"]  # on chunks both settings are right everywhere
    assert row["verdict"] == "inconclusive at this scale"
