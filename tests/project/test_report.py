"""scripts/report.py's rows: one per method and setting, in a fixed order of methods whatever the run order."""

import importlib.util
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
