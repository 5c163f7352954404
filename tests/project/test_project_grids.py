"""The `reproduce` grids run, resume and report, on tiny random models (a run or two each)."""

import json
import os
import subprocess
import sys
from pathlib import Path

SCRIPTS = Path(__file__).parents[2] / "project" / "scripts"


def _run(args, cwd):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(
        [sys.executable, *map(str, args)], capture_output=True, text=True, cwd=cwd, env=env, timeout=900
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout


def test_grids_run_resume_and_report(tiny_model_dir, tmp_path):
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
    _run([SCRIPTS / "grid.py", "c2", "--output", "runs/c2", "--max-runs", "1", *small, *models], tmp_path)
    _run([SCRIPTS / "grid.py", "c3", "--output", "runs/c3", "--max-runs", "1", *small, *models], tmp_path)
    _run(
        [SCRIPTS / "grid.py", "c1", "--output", "runs/c1", "--max-runs", "2", "--samples", "1", *small, *models],
        tmp_path,
    )
    for experiment, first, settings in (
        ("c2", "c2-0000-first-s0", 1),
        ("c3", "c3-vanilla-instr-0d-s0", 1),
        ("c1", "c1-vanilla-zero-s0", 2),
    ):
        metrics = json.loads((tmp_path / "runs" / experiment / "metrics" / f"{first}.json").read_text())
        assert 0.0 <= metrics["f"] <= 1.0
        table = (tmp_path / "runs" / experiment / "results.md").read_text()
        assert table.count("\n| ") == 2 + settings  # header, rule, one row per setting
    assert (tmp_path / "runs" / "c2" / "heatmap.png").read_bytes()[:4] == b"\x89PNG"
    assert len(list((tmp_path / "runs" / "c1" / "metrics").glob("*.json"))) == 2  # zero-shot, then one few-shot run
    # Resuming skips what is done and runs the next setting.
    out = _run([SCRIPTS / "grid.py", "c2", "--output", "runs/c2", "--max-runs", "1", *small, *models], tmp_path)
    assert "skip c2-0000-first-s0: done" in out
    assert (tmp_path / "runs" / "c2" / "metrics" / "c2-0000-last-s0.json").exists()
