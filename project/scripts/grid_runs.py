"""One grid run: its name (written and read back), its config, and its own process (scripts/train.py --test).

Shared by the experiments' grids (grid_c1, grid_c2, grid_c3) and read by scripts/claims.py (parse_run_name).
"""

import argparse
import fnmatch
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from thinc.api import Config

HERE = Path(__file__).parent
CONFIGS = HERE.parent.parent / "configs"
BIDIR_CONFIG = CONFIGS / "bidir_smollm2_wnut16_cpu.cfg"
SFT_CONFIG = CONFIGS / "sft_smollm2_wnut16_cpu.cfg"

RUN_NAMES = (
    re.compile(
        r"(?P<experiment>c1)-(?P<variant>vanilla|oie-embed|oie-head)"
        r"-(?:zero|k(?P<k>\d+)-(?P<sample>\d+))-s(?P<seed>\d+)"
    ),
    re.compile(r"(?P<experiment>c2)-(?:(?P<bits>[01]{4})|rep(?P<repeat>\d+))-(?P<pooling>first|last)-s(?P<seed>\d+)"),
    re.compile(
        r"(?P<experiment>c3)-(?:(?P<strategy>vanilla|src|mrc)-(?P<instruction>instr|noinstr)-(?P<demos>\d+)d"
        r"|(?P<baseline>icl|bidir))-s(?P<seed>\d+)"
    ),
)
INTEGER_FIELDS = ("k", "sample", "seed", "repeat", "demos")


def parse_run_name(name: str) -> Optional[Dict[str, Any]]:
    """The settings a grid run's name encodes, and ``key``: the name of its setting without the seed (and, for
    C1's few-shot runs, without the sample); None for a name no grid writes."""
    for pattern in RUN_NAMES:
        match = pattern.fullmatch(name)
        if match is None:
            continue
        run: Dict[str, Any] = {key: value for key, value in match.groupdict().items() if value is not None}
        for key in INTEGER_FIELDS:
            if key in run:
                run[key] = int(run[key])
        if run["experiment"] == "c1":
            run.setdefault("k", 0)  # zero-shot
            run["key"] = f"c1-{run['variant']}-" + (f"k{run['k']}" if run["k"] else "zero")
        else:
            run["key"] = name.rsplit("-s", 1)[0]
        return run
    return None


def set_path(config: Config, dotted: str, value: Any) -> None:
    node = config
    *parents, last = dotted.split(".")
    for key in parents:
        node = node[key]
    node[last] = value


def write_config(base: Path, overrides: Dict[str, Any], path: Path) -> Path:
    config = Config().from_disk(base, interpolate=False)
    for key, value in overrides.items():
        set_path(config, key, value)
    path.parent.mkdir(parents=True, exist_ok=True)
    config.to_disk(path)
    return path


def run_script(args: List[Any]) -> None:
    """Run a Python script in a new process; exit the grid if it fails."""
    result = subprocess.run([sys.executable, *map(str, args)])
    if result.returncode:
        raise SystemExit(f"failed: {' '.join(map(str, args[:3]))} ...")


class RunBudget:
    """Which new runs to make: ``--only`` patterns (empty: all) and ``--max-runs`` (stop after this many new runs,
    a smoke test of a grid; 0 means no limit)."""

    remaining = 0
    only: Sequence[str] = ()


def take_run(name: str) -> bool:
    if RunBudget.only and not any(fnmatch.fnmatchcase(name, pattern) for pattern in RunBudget.only):
        return False
    if RunBudget.remaining < 0:
        return False
    if RunBudget.remaining == 1:
        RunBudget.remaining = -1  # this is the last one
    elif RunBudget.remaining > 1:
        RunBudget.remaining -= 1
    return True


def train_and_evaluate(
    out: Path,
    name: str,
    config: Path,
    test: Path,
    method: str,
    setting: str,
    extra: Sequence[str] = (),
    test_batch_size: int = 32,
    gpu_id: int = -1,
) -> None:
    """One run in one process (scripts/train.py --test), saving its test predictions next to its model;
    skipped when its metrics exist (so the grid resumes where it stopped)."""
    metrics = out / "metrics" / f"{name}.json"
    if metrics.exists():
        print(f"skip {name}: done")
        return
    if not take_run(name):
        return
    training = out / "training" / name
    run_script(
        [
            HERE / "train.py",
            name,
            config,
            "--output",
            training,
            *extra,
            "--test",
            test,
            "--method",
            method,
            "--setting",
            setting,
            "--metrics",
            metrics,
            "--predictions",
            training / "predictions.spacy",
            "--test-batch-size",
            test_batch_size,
            "--gpu-id",
            gpu_id,
        ]
    )


def common_overrides(args: argparse.Namespace, seed: int, steps: int, learn_rate: Optional[float] = None) -> Dict:
    overrides: Dict[str, Any] = {
        "paths.train": str(args.train),
        "paths.dev": str(args.dev),
        "corpora.train.limit": args.train_size,
        "corpora.dev.limit": args.dev_size,
        "system.seed": seed,
        "training.max_epochs": 0,
        "training.max_steps": steps,
        "training.eval_frequency": steps,
        "training.optimizer.learn_rate.total_steps": steps,
    }
    # The shipped configs' rates and warm-ups are meant for full training; a short grid sets its own.
    if learn_rate is not None:
        overrides["training.optimizer.learn_rate.initial_rate"] = learn_rate
    if args.warmup_steps is not None:
        overrides["training.optimizer.learn_rate.warmup_steps"] = args.warmup_steps
    return overrides


def backbone_setting(config: Path, key: str) -> Any:
    """A setting of a bidir config's backbone."""
    return Config().from_disk(config, interpolate=False)["components"]["bidir"]["model"]["backbone"][key]
