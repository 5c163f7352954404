"""scripts/report.py's rows: one per method and setting, in a fixed order of methods whatever the run order."""

import importlib.util
import json
import os
from pathlib import Path

# Loaded under its own name: project/bench has a report module too, which test_bench imports as `report`.
_SPEC = importlib.util.spec_from_file_location(
    "project_scripts_report", Path(__file__).parents[2] / "project" / "scripts" / "report.py"
)
report = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(report)


def run(method: str, setting: str, f: float, seed: int = 0) -> dict:
    return {"method": method, "setting": setting, "seed": seed, "test_docs": 10, "p": f, "r": f, "f": f}


def test_rows_go_baselines_first_then_our_components_and_a_rerun_keeps_its_place():
    # In the order the runs finished: the OIE tagger was re-run last, and a second seed came in between.
    runs = [
        run("seqlab_bidir_tagger", "unmask none", 0.2),
        run("spaCy ner + spacy-transformers", "MiniLM", 0.4),
        run("seqlab_multitask_ner", "no signals", 0.43),
        run("seqlab_llm_sft", "mrc", 0.1),
        run("seqlab_bidir_tagger", "unmask none", 0.3, seed=1),
        run("seqlab_multitask_ner", "POS+DEP+OIE", 0.44),
    ]
    rows = report.summarize(runs)
    assert [(row["method"], row["setting"]) for row in rows] == [
        ("spaCy ner + spacy-transformers", "MiniLM"),
        ("seqlab_multitask_ner", "no signals"),
        ("seqlab_multitask_ner", "POS+DEP+OIE"),
        ("seqlab_bidir_tagger", "unmask none"),
        ("seqlab_llm_sft", "mrc"),
    ]
    bidir = rows[3]
    assert bidir["runs"] == 2 and abs(bidir["f"]["mean"] - 0.25) < 1e-9 and bidir["f"]["n"] == 2


def test_runs_are_read_in_the_order_they_finished_not_in_file_time_order(tmp_path):
    # A git checkout gives every metrics file the checkout's time; the recorded finish time keeps the order.
    finished = {"b-first": "2026-01-01T10:00:00+00:00", "a-second": "2026-01-01T11:00:00+00:00"}
    for i, (name, when) in enumerate(finished.items()):
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps({"name": name, "finished": when}))
        os.utime(path, (2_000_000_000 - i, 2_000_000_000 - i))  # file times in the opposite order
    older = tmp_path / "c-older.json"  # written before runs recorded a finish time: its file time counts
    older.write_text(json.dumps({"name": "c-older"}))
    os.utime(older, (1_500_000_000, 1_500_000_000))  # 2017
    runs = report.read_in_run_order(sorted(tmp_path.glob("*.json")))
    assert [run["name"] for run in runs] == ["c-older", "b-first", "a-second"]
