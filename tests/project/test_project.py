"""The `all` workflow end to end on tiny random models and a few dozen tweets."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

PROJECT = Path(__file__).parents[2] / "project"
CONFIGS = Path(__file__).parents[2] / "configs"


def test_all_workflow_runs_and_writes_every_output(tiny_model_dir, tmp_path):
    project = tmp_path / "project"
    shutil.copytree(
        PROJECT, project, ignore=shutil.ignore_patterns("corpus", "training", "metrics", "packages", "results.*")
    )
    settings = {
        "encoder": tiny_model_dir("bert"),
        "decoder": tiny_model_dir("llama"),
        "train_size": 16,
        "dev_size": 8,
        "test_size": 16,
        "sft_test_size": 4,
        "encoder_steps": 3,
        "bidir_steps": 3,
        "bidir_unmask": "01",  # the tiny decoder has 2 layers; the shipped 5 groups fit SmolLM2's 30
        "sft_steps": 3,
        # The shipped configs, by absolute path since the project is copied elsewhere.
        "multitask_config": CONFIGS / "multitask_minilm_wnut16_cpu.cfg",
        "vanilla_config": CONFIGS / "multitask_minilm_wnut16_vanilla_cpu.cfg",
        "bidir_config": CONFIGS / "bidir_smollm2_wnut16_cpu.cfg",
        "sft_config": CONFIGS / "sft_smollm2_wnut16_cpu.cfg",
    }
    args = [arg for key, value in settings.items() for arg in (f"--vars.{key}", str(value))]
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "weasel", "run", "all", str(project), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    names = ["spacy-ner", "multitask-vanilla", "multitask-oie"]
    names += ["bidir-none", "bidir-unmasked", "sft-mrc"]
    for name in names:
        metrics = json.loads((project / "metrics" / f"{name}.json").read_text())
        assert 0.0 <= metrics["f"] <= 1.0 and metrics["words_per_second"] > 0 and metrics["train_seconds"] > 0
        assert metrics["test_docs"] == (4 if name == "sft-mrc" else 16)
    results = json.loads((project / "results.json").read_text())
    assert len(results["rows"]) == len(names)
    table = (project / "results.md").read_text()
    assert table.count("\n| ") == len(names) + 2 and "Test data: WNUT-16" in table  # header, rule, one row each
    assert (project / "results.png").read_bytes()[:4] == b"\x89PNG"
    demo = json.loads((project / "packages" / "demo.json").read_text())
    assert any(r.startswith("spacy-seqlab") for r in demo["requirements"]) and isinstance(demo["entities"], list)
    # The packaged tagger gives each entity its span confidence.
    assert all(len(e) == 3 and 0.0 <= e[2] <= 1.0 for e in demo["entities"]), demo["entities"]
    # Finished steps are skipped when the workflow runs again (weasel deps/outputs).
    again = subprocess.run(
        [sys.executable, "-m", "weasel", "run", "all", str(project), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert again.returncode == 0 and again.stdout.count("Skipping") >= len(names), again.stdout[-2000:]
    # main-seeds: spaCy ner and the bidir rows per seed, in a table with a paired bootstrap against spaCy ner.
    seeds = subprocess.run(
        [sys.executable, "-m", "weasel", "run", "main-seeds", str(project), *args, "--vars.main_seeds", "0"],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert seeds.returncode == 0, seeds.stdout[-3000:] + seeds.stderr[-3000:]
    rows = json.loads((project / "results_seeds.json").read_text())["rows"]
    assert [(row["name"], row["seeds"]) for row in rows] == [
        ("spacy-ner", [0]),
        ("bidir-none", [0]),
        ("bidir-unmasked", [0]),
    ]
    assert all(row["bootstrap"] is not None for row in rows[1:])
    # The same training as the workflow's rows: seed 0 scores what `all` scored.
    for row in rows:
        assert row["f"]["mean"] == json.loads((project / "metrics" / f"{row['name']}.json").read_text())["f"]
