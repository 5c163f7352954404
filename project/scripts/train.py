"""Train one system with `spacy train`, timing it: the project's wrapper around spaCy's trainer.

    python scripts/train.py NAME CONFIG --output training/NAME [--steps N] [--paths.train PATH] [--set key=value]

Config overrides are given as `spacy train` takes them (`--paths.train corpus/train.spacy`) or as
`--set key=value` (values parsed as JSON when they can be, else strings).
`--steps N` trains for exactly N steps and evaluates at the last one: it sets `training.max_epochs` to 0 and
`training.max_steps`, `training.eval_frequency` and the schedule's `training.optimizer.learn_rate.total_steps`
to N (spaCy also evaluates at step 0); a `--set` of one of them wins.
Model names given as `pypi:` aliases are resolved to local folders for spacy-transformers,
which does not know them. The wall time goes to OUTPUT/train_time.json.
"""

import argparse
import json
import time
from pathlib import Path
from typing import Any, Dict, List

from spacy.cli._util import parse_config_overrides
from spacy.cli.train import train
from spacy.training.initialize import init_nlp
from spacy.util import load_config

from spacy_seqlab.data.resources import resolve_model_name

# Settings that spacy-transformers reads as a path, so aliases must be resolved first.
PATH_SETTINGS = ("components.transformer.model.name",)


def parse_overrides(items: List[str]) -> Dict[str, Any]:
    overrides: Dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--set needs key=value, got {item!r}")
        try:
            overrides[key] = json.loads(value)
        except json.JSONDecodeError:
            overrides[key] = value
        if key in PATH_SETTINGS:
            overrides[key] = resolve_model_name(str(overrides[key]))
    return overrides


def step_overrides(steps: int) -> Dict[str, Any]:
    """The settings that train for exactly ``steps`` steps, evaluating at the last one."""
    return {
        "training.max_epochs": 0,
        "training.max_steps": steps,
        "training.eval_frequency": steps,
        "training.optimizer.learn_rate.total_steps": steps,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("name")
    parser.add_argument("config", type=Path)
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument("--set", action="append", default=[], dest="overrides")
    parser.add_argument("--steps", type=int, default=None, help="Train exactly N steps, evaluating at the last one")
    parser.add_argument("--gpu-id", type=int, default=-1)
    parser.add_argument(
        "--no-train", action="store_true", help="Only initialize (e.g. in-context learning without fine-tuning)"
    )
    args, spacy_overrides = parser.parse_known_args()
    overrides = {**parse_config_overrides(spacy_overrides), **parse_overrides(args.overrides)}
    if args.steps is not None:
        overrides = {**step_overrides(args.steps), **overrides}
    args.output.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    if args.no_train:
        nlp = init_nlp(load_config(args.config, overrides=overrides, interpolate=False), use_gpu=args.gpu_id)
        nlp.to_disk(args.output / "model-last")
    else:
        train(args.config, args.output, use_gpu=args.gpu_id, overrides=overrides)
    seconds = time.perf_counter() - start
    record = {"name": args.name, "config": str(args.config), "train_seconds": round(seconds, 1), "overrides": overrides}
    (args.output / "train_time.json").write_text(json.dumps(record, indent=2))
    print(f"{args.name}: trained in {seconds:.0f} s")


if __name__ == "__main__":
    main()
