"""scripts/run_seeds.py resumes an interrupted row, and trains again where only committed metrics exist."""

import importlib.util
import sys
from pathlib import Path

SCRIPTS = Path(__file__).parents[2] / "project" / "scripts"
sys.path.insert(0, str(SCRIPTS))
_SPEC = importlib.util.spec_from_file_location("project_scripts_run_seeds", SCRIPTS / "run_seeds.py")
run_seeds = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(run_seeds)
sys.path.remove(str(SCRIPTS))


def test_a_seed_is_done_only_with_its_metrics_and_its_model(tmp_path):
    metrics, output = tmp_path / "metrics" / "tagger" / "seed-0.json", tmp_path / "training" / "tagger" / "seed-0"
    assert not run_seeds.finished(metrics, output) and run_seeds.trained_model(output) is None
    # A fresh checkout: the committed metrics, no model. Trained again, not skipped.
    metrics.parent.mkdir(parents=True)
    metrics.write_text("{}")
    assert not run_seeds.finished(metrics, output)
    # Interrupted after a dev checkpoint, before testing: no metrics yet, so trained again.
    (output / "model-best").mkdir(parents=True)
    assert run_seeds.trained_model(output) == output / "model-best"
    assert run_seeds.finished(metrics, output)
    assert not run_seeds.finished(tmp_path / "metrics" / "tagger" / "seed-1.json", output)
    # The best dev checkpoint is tested where there is one, else the last.
    (output / "model-last").mkdir()
    assert run_seeds.trained_model(output) == output / "model-best"
    (output / "model-best").rmdir()
    assert run_seeds.trained_model(output) == output / "model-last"
