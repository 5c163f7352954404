"""``project/bench/run_bench.py`` runs end to end on tiny random models and reports every measurement.

No timing is asserted: only that each ratio is there with its target and verdict, and that the
report, the JSON and the plot are written.
"""

import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "project" / "bench" / "run_bench.py"
MEASUREMENTS = {
    "1a",
    "1b",
    "1c",
    "2a",
    "2b",
    "3",
    "4",
    "5a",
    "5b",
    "6a",
    "6b",
    "6c",
    "6d",
    "7a",
    "7b",
    "8a",
    "8b",
    "8c",
    "8d",
}
MEMORY_PROBES = {
    "encoder_model", "encoder_raw_forward", "seqlab_multitask_ner",
    "decoder_model", "decoder_raw_forward", "seqlab_bidir_tagger",
    "decoder_lm_model", "seqlab_llm_sft", "seqlab_multitask_ner_stream",
}  # fmt: skip


def _load_script():
    spec = importlib.util.spec_from_file_location("run_bench", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_verdicts_follow_the_target_direction_and_long_docs_have_the_asked_length():
    bench_module = _load_script()
    bench = bench_module.Bench(bench_module.parse_args(["--quick"]))
    bench.log = lambda message: None
    bench.measure("x", "faster is better", 0.95, ">=", 0.9, "how")
    bench.measure("y", "slower is worse", 1.2, "<=", 1.1, "how")
    assert [(m["id"], m["met"], m["target"]) for m in bench.measurements] == [
        ("x", True, ">= 0.9"),
        ("y", False, "<= 1.1"),
    ]
    corpus = bench_module.Corpus(
        words=[["a", "b", "c"], ["d", "e"]],
        spaces=[[True, True, False], [True, False]],
        texts=["a b c", "d e"],
        train=[],
    )
    words, spaces = bench_module.long_words(corpus, 12)
    assert len(words) == len(spaces) == 12
    assert words[:6] == ["a", "b", "c", "d", "e", "a"]
    assert spaces[2] is True  # tweets are joined with a space
    assert corpus.head(1).words == [["a", "b", "c"]] and corpus.head(0) is corpus


def test_quick_benchmark_on_tiny_models_writes_every_measurement(tiny_model_dir, tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "bench"
    env = {
        **os.environ,
        "OMP_WAIT_POLICY": "PASSIVE",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }
    command = [
        sys.executable, str(SCRIPT), "--output", str(out), "--quick",
        "--encoder", str(tiny_model_dir("bert")), "--decoder", str(tiny_model_dir("llama")),
        "--runs", "1", "--warmup", "0", "--memory-jobs", "8",
    ]  # fmt: skip
    proc = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]

    results = json.loads((out / "results.json").read_text(encoding="utf8"))
    assert results["schema"] == 1 and results["errors"] == []
    assert results["settings"]["quick"] is True and results["settings"]["runs"] == 1
    assert "untrained" in results["note"]
    by_id = {m["id"]: m for m in results["measurements"]}
    assert set(by_id) == MEASUREMENTS
    for key, m in by_id.items():
        assert isinstance(m["ratio"], float) and math.isfinite(m["ratio"]) and m["ratio"] > 0, key
        assert m["target_op"] in (">=", "<=") and m["target"] == f"{m['target_op']} {m['target_value']:g}", key
        expected = m["ratio"] >= m["target_value"] if m["target_op"] == ">=" else m["ratio"] <= m["target_value"]
        assert m["met"] is expected, key
        assert m["title"] and m["how"], key

    machine = results["machine"]
    for field in ("cores", "torch_threads", "device", "other_load_cores_mean", "loadavg_start", "passes_kept"):
        assert machine[field] is not None, field
    for package in ("torch", "transformers", "spacy", "spacy-transformers", "peft", "spacy-seqlab"):
        assert results["versions"][package], package

    systems = results["systems"]
    for name in ("encoder_raw_forward", "seqlab_multitask_ner", "spacy_transformers_ner",
                 "hf_token_classification", "decoder_raw_forward", "seqlab_bidir_tagger_none",
                 "seqlab_bidir_tagger_all", "train_step_bidir_tagger", "train_step_peft_torch",
                 "sft_generate_one_at_a_time", "sft_generate_batched", "sft_generate_batched_constrained",
                 "seqlab_llm_sft"):  # fmt: skip
        assert systems[name]["words_per_s"] > 0 and systems[name]["words_per_cpu_s"] > 0, name
        assert sum(p["kept"] for p in systems[name]["passes"]) == 1, name
    assert (
        systems["encoder_raw_forward"]["docs"]
        == systems["seqlab_multitask_ner"]["docs"]
        == systems["hf_token_classification"]["docs"]
    )
    assert systems["encoder_raw_forward"]["batch_size"] == systems["spacy_transformers_ner"]["batch_size"]

    assert set(results["scaling"]) == {"seqlab_multitask_ner", "seqlab_bidir_tagger"}
    for scaling in results["scaling"].values():
        assert list(scaling["seconds_per_1k_tokens"]) == [str(n) for n in results["settings"]["lengths"]]
    assert set(results["memory"]) == MEMORY_PROBES
    assert all(probe["peak_rss_mb"] > 0 for probe in results["memory"].values())
    assert by_id["6a"]["vs_raw_forward"] > 0 and by_id["5b"]["end_to_end_ratio"] > 0
    for name in ("sft_generate_batched", "sft_generate_batched_constrained"):
        assert 0 <= systems[name]["prefill_share"] <= 1 and systems[name]["seconds_per_decoding_step"] > 0, name

    report = (out / "results.md").read_text(encoding="utf8")
    assert all(f"| {key} |" in report for key in MEASUREMENTS)
    assert (out / "words_per_second.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_partial_run_keeps_the_other_rows_of_the_previous_one_dated():
    import sys as _sys

    _sys.path.insert(0, str(SCRIPT.parent))
    import report

    machine = {"other_load_cores_mean": 0.05}
    previous = {
        "schema": 1,
        "started": "2026-12-01 08:00:00",
        "settings": {"quick": False, "encoder": "e", "decoder": "d"},
        "machine": machine,
        "measurements": [{"id": "1a", "ratio": 0.9}, {"id": "6d", "ratio": 1.2}],
        "systems": {"old": {"words_per_s": 1.0}, "both": {"words_per_s": 1.0}},
        "memory": {"probe": {"peak_rss_mb": 1.0}},
        "scaling": {},
    }
    now = {
        **previous,
        "started": "2026-12-02 10:00:00",
        "measurements": [{"id": "6d", "ratio": 1.01}],
        "systems": {"both": {"words_per_s": 2.0}},
        "memory": {},
    }
    merged = report.carry_over(previous, now)
    assert merged["measurements"] == [
        {"id": "1a", "ratio": 0.9, "run": "2026-12-01 08:00:00"},
        {"id": "6d", "ratio": 1.01},
    ]
    assert merged["systems"]["both"] == {"words_per_s": 2.0} and merged["systems"]["old"]["run"] == previous["started"]
    assert merged["memory"]["probe"]["run"] == previous["started"]
    assert merged["earlier_runs"] == {previous["started"]: machine}
    # A second partial run keeps the first date of a row it does not re-run either.
    again = report.carry_over(merged, {**now, "started": "2026-12-03 00:00:00", "measurements": []})
    assert {m["id"]: m["run"] for m in again["measurements"]} == {"1a": previous["started"], "6d": now["started"]}
    # Other settings: nothing is carried.
    other = {**now, "settings": {**now["settings"], "quick": True}}
    assert report.carry_over(previous, other) is other
