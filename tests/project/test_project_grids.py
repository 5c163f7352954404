"""The `reproduce` and `claims` grids run, resume and report, on tiny random models (a run or two each)."""

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import spacy
from spacy.tokens import DocBin

SCRIPTS = Path(__file__).parents[2] / "project" / "scripts"
sys.path.insert(0, str(SCRIPTS))
import claims  # noqa: E402
import grid  # noqa: E402
import grid_c2  # noqa: E402

sys.path.remove(str(SCRIPTS))  # the scripts' module names (report, train) stay out of other tests' way
# The claims subset of C2 runs the shipped bidir config's pooling; the runs are named after it.
POOLING = grid_c2.shipped_pooling()


def _run(args, cwd):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(
        [sys.executable, *map(str, args)], capture_output=True, text=True, cwd=cwd, env=env, timeout=900
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout


def test_grids_run_resume_and_report(tiny_model_dir, tmp_path, monkeypatch):
    _run([SCRIPTS / "prepare.py", "--output", "corpus", "--test-size", "12", "--sft-test-size", "3"], tmp_path)
    small = [
        "--seeds",
        "0",
        "--train-size",
        "12",
        "--dev-size",
        "4",
        "--encoder-steps",
        "2",
        "--bidir-steps",
        "2",
        "--sft-steps",
        "2",
    ]
    models = ["--encoder", tiny_model_dir("bert"), "--decoder", tiny_model_dir("llama")]
    claims_subset = ["--subset", "claims", "--max-runs", "1"]
    _run([SCRIPTS / "grid.py", "c2", "--output", "runs/c2", *claims_subset, *small, *models], tmp_path)
    # C3: the main SIFT setting and in-context learning, which trains nothing and does not depend on the seed,
    # so the claims subset runs it once.
    c3 = ["--subset", "claims", "--max-runs", "2", "--only", "c3-mrc-noinstr-2d-*", "c3-icl-*", "--seeds", "0", "1"]
    out = _run([SCRIPTS / "grid.py", "c3", "--output", "runs/c3", *c3, *small[2:], *models], tmp_path)
    assert "skip c3-icl-s1: in-context learning does not depend on the seed (c3-icl-s0 is done)" in out
    icl = json.loads((tmp_path / "runs" / "c3" / "metrics" / "c3-icl-s0.json").read_text())
    assert icl["method"] == "in-context learning" and icl["test_docs"] == 3
    _run(
        [SCRIPTS / "grid.py", "c1", "--output", "runs/c1", "--max-runs", "2", "--samples", "1", *small, *models],
        tmp_path,
    )
    vocab = spacy.blank("en").vocab
    for experiment, first, settings in (
        ("c2", f"c2-0000-{POOLING}-s0", 1),
        ("c3", "c3-mrc-noinstr-2d-s0", 2),
        ("c1", "c1-vanilla-zero-s0", 2),
    ):
        metrics = json.loads((tmp_path / "runs" / experiment / "metrics" / f"{first}.json").read_text())
        assert 0.0 <= metrics["f"] <= 1.0
        # One process per run saves its test predictions next to its model, for the claims' bootstraps.
        assert metrics["predictions"] == f"runs/{experiment}/training/{first}/predictions.spacy"
        predicted = list(DocBin().from_disk(tmp_path / metrics["predictions"]).get_docs(vocab))
        assert len(predicted) == metrics["test_docs"]
        table = (tmp_path / "runs" / experiment / "results.md").read_text()
        assert table.count("\n| ") == 2 + settings  # header, rule, one row per setting
        grid = json.loads((tmp_path / "runs" / experiment / "grid.json").read_text())
        assert grid["command"].startswith(f"python scripts/grid.py {experiment} --output runs/{experiment}")
        assert "--max-runs" not in grid["command"]  # the command that makes every run, not this smoke test
    assert (tmp_path / "runs" / "c2" / "heatmap.png").read_bytes()[:4] == b"\x89PNG"
    # C1: zero-shot, then one few-shot run, tested in the grid's process; its model is not kept.
    assert len(list((tmp_path / "runs" / "c1" / "metrics").glob("*.json"))) == 2
    shot = json.loads((tmp_path / "runs" / "c1" / "metrics" / "c1-vanilla-k5-0-s0.json").read_text())
    assert (tmp_path / shot["predictions"]).exists() and shot["setting"] == "few-shot k=5"
    assert not (tmp_path / "runs" / "c1" / "training" / "c1-vanilla-k5-0-s0" / "model-last").exists()
    # Resuming skips what is done; --only picks the next run: sequence repetition (repeat = 1, causal).
    out = _run(
        [SCRIPTS / "grid.py", "c2", "--output", "runs/c2", *claims_subset, "--only", "c2-0000-*", "c2-rep*"]
        + small
        + models,
        tmp_path,
    )
    assert f"skip c2-0000-{POOLING}-s0: done" in out
    repeat = json.loads((tmp_path / "runs" / "c2" / "metrics" / f"c2-rep1-{POOLING}-s0.json").read_text())
    assert repeat["setting"] == f"repeat 1, unmask none, {POOLING}"
    assert "repeat = 1" in (tmp_path / "runs" / "c2" / "configs" / f"c2-rep1-{POOLING}-s0.cfg").read_text()
    assert not (tmp_path / "runs" / "c2" / "metrics" / f"c2-0001-{POOLING}-s0.json").exists()

    # C2 on a second task (silver NP chunks on news) for the task-dependence row: the same grid, other data.
    _run([SCRIPTS / "prepare_chunks.py", "--output", "corpus/chunks", "--max-docs", "4", "--test-size", "4"], tmp_path)
    chunk_data = [f"--{split}=corpus/chunks/{split}.spacy" for split in ("train", "dev", "test")]
    unmask_subset = ["--subset", "unmask", "--max-runs", "1"]  # C2's claims subset without repetition
    _run(
        [SCRIPTS / "grid.py", "c2", "--output", "runs/c2-chunks", *unmask_subset, *small, *models, *chunk_data],
        tmp_path,
    )
    chunks = json.loads((tmp_path / "runs" / "c2-chunks" / "metrics" / f"c2-0000-{POOLING}-s0.json").read_text())
    assert chunks["test_data"] == "corpus/chunks/test.spacy" and chunks["test_docs"] == 4

    # The claims report from this partial grid: what ran is measured, the rest says it is missing.
    monkeypatch.chdir(tmp_path)
    argv = ["--runs", "runs", "--output", "claims.md", "--samples", "50", "--c2-task", "NP chunks=runs/c2-chunks"]
    argv += ["--c2-label", "tweets"]
    rows = {row["id"]: row for row in claims.main(argv)}
    # One setting per task: each picks it, and with no runner-up the task dependence cannot be judged.
    task_row = rows["C2 task-dependent"]
    assert [m["label"] for m in task_row["measured"]] == ["tweets: 0000", "NP chunks: 0000"]
    assert task_row["verdict"] == "missing runs" and "--test corpus/chunks/test.spacy" in task_row["command"]
    assert rows["C2 small scale [NP chunks]"]["measured"][0]["mean"] == chunks["f"] * 100
    assert "C2 repetition [NP chunks]" not in rows  # that grid was made without repetition
    assert rows["C2 unmasking"]["verdict"] == "missing runs"
    causal = rows["C2 unmasking"]["measured"][0]
    assert causal["seeds"] == [0] and causal["mean"] == metrics_f(tmp_path, "c2", f"c2-0000-{POOLING}-s0")
    assert rows["C1 zero-shot"]["verdict"] == "missing runs"
    assert rows["C3 SIFT"]["measured"][0]["seeds"] == [0] and rows["C3 SIFT"]["measured"][1]["seeds"] == [0]
    assert "--seeds 0 1" in rows["C3 SIFT"]["command"]  # every seed the folder's runs were made with
    assert "--subset claims" in rows["C3 SIFT"]["command"]
    assert (tmp_path / "claims_c2.png").read_bytes()[:4] == b"\x89PNG"


def metrics_f(root: Path, experiment: str, name: str) -> float:
    return json.loads((root / "runs" / experiment / "metrics" / f"{name}.json").read_text())["f"] * 100


def test_the_unmask_subset_is_the_claims_subset_without_repetition(tmp_path):
    claims_runs = grid_c2.c2_settings("claims")
    unmask_runs = grid_c2.c2_settings("unmask")
    assert unmask_runs == [run for run in claims_runs if run[2] == 0] and len(unmask_runs) == 5
    assert len(claims_runs) == 7


def test_a_grid_refuses_to_resume_with_other_sizes_or_data(tmp_path):
    data = tmp_path / "test.spacy"
    data.write_bytes(b"one")
    args = argparse.Namespace(
        experiment="c2",
        output=tmp_path / "c2",
        subset="claims",
        seeds=[0],
        samples=3,
        decoder="tiny",
        bidir_config=Path("bidir.cfg"),
        train_size=8,
        dev_size=4,
        bidir_steps=2,
        decoder_lr=None,
        warmup_steps=None,
        train=data,
        dev=data,
        test=data,
        gpu_id=-1,
    )
    grid.record_grid(args)
    (tmp_path / "c2" / "metrics").mkdir()
    (tmp_path / "c2" / "metrics" / f"c2-0000-{POOLING}-s0.json").write_text("{}")
    args.seeds = [1]  # more seeds: fine, and the command makes them all
    args.subset = "unmask"  # a narrower subset: the command still makes every run the folder holds
    grid.record_grid(args)
    command = json.loads((tmp_path / "c2" / "grid.json").read_text())["command"]
    assert "--subset claims --seeds 0 1 --decoder tiny" in command
    args.bidir_steps = 3
    with pytest.raises(SystemExit, match="bidir_steps: 2 now 3"):
        grid.record_grid(args)
    args.bidir_steps = 2
    data.write_bytes(b"two")  # `prepare` rewrote the corpus
    with pytest.raises(SystemExit, match="data"):
        grid.record_grid(args)
