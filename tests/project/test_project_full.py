"""The `full` workflow (full-budget table) end to end on tiny random models and a few dozen tweets."""

import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import spacy
from spacy.tokens import DocBin
from weasel.util import load_project_config
from weasel.util.config import parse_config_overrides

PROJECT = Path(__file__).parents[2] / "project"
CONFIGS = Path(__file__).parents[2] / "configs"
ROWS = ["spacy-ner", "tagger", "tagger-crf", "bidir-none", "bidir-01", "bidir-repeat", "sft-mrc"]


def test_full_workflow_writes_the_table_with_a_bootstrap_per_row(tiny_model_dir, tmp_path):
    project = tmp_path / "project"
    shutil.copytree(
        PROJECT,
        project,
        ignore=shutil.ignore_patterns("corpus", "training", "metrics", "packages", "results*", "bench"),
    )
    settings = {
        "encoder": tiny_model_dir("bert"),
        "decoder": tiny_model_dir("llama"),
        "full_train_size": 24,
        "full_dev_size": 4,
        "full_test_size": 12,
        "full_sft_test_size": 4,
        "full_sft_dev_size": 2,
        "full_encoder_seeds": "0",
        "full_encoder_max_steps": 2,
        "full_encoder_schedule_steps": 2,
        "full_bidir_max_steps": 2,
        "full_repeat_max_steps": 2,
        "full_sft_max_steps": 2,
        "vanilla_config": CONFIGS / "multitask_minilm_wnut16_vanilla_cpu.cfg",
        "casing_config": CONFIGS / "multitask_minilm_wnut16_casing_cpu.cfg",
        "bidir_config": CONFIGS / "bidir_smollm2_wnut16_cpu.cfg",
        "sft_config": CONFIGS / "sft_smollm2_wnut16_cpu.cfg",
    }
    args = [arg for key, value in settings.items() for arg in (f"--vars.{key}", str(value))]
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "weasel", "run", "full", str(project), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    # The main job's folders stay untouched: everything is under corpus/full, training/full, metrics/full.
    assert not (project / "metrics").exists() or not list((project / "metrics").glob("*.json"))
    assert not (project / "corpus" / "train.spacy").exists()
    for name in ROWS:
        metrics = json.loads((project / "metrics" / "full" / name / "seed-0.json").read_text())
        assert metrics["seed"] == 0 and metrics["model"] == "model-best"
        assert 0.0 <= metrics["f"] <= 1.0 and metrics["words_per_second"] > 0 and metrics["train_seconds"] > 0
        assert metrics["test_docs"] == (4 if name == "sft-mrc" else 12)
        # The predictions lie beside the metrics (committed with them), not in the ignored training folder.
        assert metrics["predictions"] == f"metrics/full/{name}/seed-0.predictions.spacy"
        predicted = list(DocBin().from_disk(project / metrics["predictions"]).get_docs(spacy.blank("en").vocab))
        assert len(predicted) == metrics["test_docs"]
    # The tagger rows decode as asked.
    crf_config = (project / "training" / "full" / "tagger-crf" / "seed-0" / "model-best" / "config.cfg").read_text()
    assert 'decoder = "crf"' in crf_config

    results = json.loads((project / "results_full.json").read_text())
    rows = {row["name"]: row for row in results["rows"]}
    assert list(rows) == ROWS and all(row["seeds"] == [0] for row in rows.values())
    assert rows["spacy-ner"]["is_baseline"] and rows["spacy-ner"]["bootstrap"] is None
    for name in ROWS[1:]:
        test = rows[name]["bootstrap"]
        assert test["samples"] == 1000 and test["low"] <= test["difference"] <= test["high"]
        assert test["difference"] == pytest.approx(
            rows[name]["f"]["mean"] - test["f_a"]
        )  # the row's F minus the baseline's
        assert 0.0 <= test["p_value"] <= 1.0
    assert rows["spacy-ner"]["f"]["mean"] == pytest.approx(rows["tagger"]["bootstrap"]["f_a"])
    table = (project / "results_full.md").read_text()
    assert table.count("\n| ") == len(ROWS) + 2  # header, rule, one row each
    assert "Do not beat it" in table and "Test data: WNUT-16" in table
    assert (project / "results_full.png").read_bytes()[:4] == b"\x89PNG"
    # Each tagger row's confidences are calibrated on dev (spaCy's ner and SIFT have none to calibrate).
    calibrated = json.loads((project / "calibration_full.json").read_text())["runs"]
    taggers = [name for name in ROWS if name.startswith(("tagger", "bidir"))]
    assert [Path(run["model"]).parts[-3] for run in calibrated] == sorted(taggers)
    for run in calibrated:
        if "skipped" in run:  # a tiny random tagger may predict no span on dev: nothing to fit
            assert "No predicted spans" in run["skipped"]
            continue
        assert run["temperature"] > 0 and run["test_spans"] >= 0
        loaded = spacy.load(project / run["calibrated"])
        assert loaded.get_pipe(run["component"]).cfg["confidence_temperature"] == pytest.approx(run["temperature"])


def test_another_crf_row_gets_its_own_folders():
    # A second tagger row (e.g. other signals) must not resume from, or overwrite, the default row's seeds.
    overrides = {"vars.full_crf_name": "tagger-crf-ner", "vars.full_crf_config": "other.cfg"}
    config = load_project_config(PROJECT, overrides=overrides)
    command = next(cmd for cmd in config["commands"] if cmd["name"] == "full-tagger-crf")
    assert "scripts/run_seeds.py --training training/full --metrics metrics/full" in command["script"][0]
    assert " tagger-crf-ner other.cfg " in command["script"][0]
    assert command["outputs"] == ["training/full/tagger-crf-ner", "metrics/full/tagger-crf-ner"]
    assert "other.cfg" in command["deps"]


def _script(config: dict, name: str) -> str:
    return next(cmd for cmd in config["commands"] if cmd["name"] == name)["script"][0]


def _training_overrides(command: str) -> dict:
    """The config overrides a full-budget row's command passes to training, as train.py parses them."""
    sys.path.insert(0, str(PROJECT / "scripts"))
    try:
        import train
    finally:
        sys.path.remove(str(PROJECT / "scripts"))
    options = shlex.split(command)
    return train.parse_training_options(options[options.index("--paths.train") :])


def test_the_crf_rows_overrides_reach_training_from_the_command_line():
    # weasel drops every "--" in a var's value ("--set k=v" became "set k=v"): full_crf_overrides holds bare
    # key=value pairs, which run_seeds.py reads with --set-list.
    cli = [
        "--vars.full_crf_overrides",
        "training.optimizer.learn_rate.initial_rate=1e-4 components.seqlab_ner.model.dropout=0.2",
    ]
    config = load_project_config(PROJECT, overrides=parse_config_overrides(cli))
    overrides = _training_overrides(_script(config, "full-tagger-crf"))
    assert overrides["training.optimizer.learn_rate.initial_rate"] == 1e-4
    assert overrides["components.seqlab_ner.model.dropout"] == 0.2
    assert overrides["components.seqlab_ner.model.decoder"] == "crf"
    # The default, no overrides, adds none.
    default = _script(load_project_config(PROJECT), "full-tagger-crf")
    assert "training.optimizer.learn_rate.initial_rate" not in _training_overrides(default)


def test_the_larger_encoder_row_trains_the_best_pipeline_on_a_known_alias():
    from spacy_seqlab.data.resources import MODEL_ALIASES

    config = load_project_config(PROJECT)
    command = _script(config, "full-tagger-mpnet")
    options = shlex.split(command)
    name = options.index("tagger-crf-ner-mpnet")
    assert options[name + 1] == config["vars"]["casing_ner_config"]
    overrides = _training_overrides(command)
    assert overrides["components.seqlab_ner.model.backbone.name"] in MODEL_ALIASES
    assert overrides["components.seqlab_ner.model.decoder"] == "crf"
    # Its schedule ends with its last epoch, as the MiniLM rows' does (same batches per epoch).
    variables = config["vars"]
    per_epoch = variables["full_encoder_schedule_steps"] / variables["full_encoder_epochs"]
    assert overrides["training.optimizer.learn_rate.total_steps"] == overrides["training.max_epochs"] * per_epoch
