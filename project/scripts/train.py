"""Train one system with `spacy train`, timing it: the project's wrapper around spaCy's trainer.

    python scripts/train.py NAME CONFIG --output training/NAME [--steps N] [--paths.train PATH] [--set key=value]
        [--test DATA --method M --setting S --metrics metrics/NAME.json [--predictions PRED.spacy]]

Config overrides are given as `spacy train` takes them (`--paths.train corpus/train.spacy`) or as
`--set key=value` (values parsed as JSON when they can be, else strings).
`--steps N` trains for exactly N steps and evaluates at the last one: it sets `training.max_epochs` to 0 and
`training.max_steps`, `training.eval_frequency` and the schedule's `training.optimizer.learn_rate.total_steps`
to N (spaCy also evaluates at step 0); a `--set` of one of them wins.
Model names given as `pypi:` aliases are resolved to local folders for spacy-transformers,
which does not know them. The wall time goes to OUTPUT/train_time.json.
With `--test`, OUTPUT/model-last is then evaluated on DATA in the same process, as evaluate.py does (one
interpreter start and one import of torch per row of the results table, not two); `--predictions PATH`
also saves the predicted test Docs there as a DocBin in test order (for a paired bootstrap).
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


def train_system(
    name: str, config: Path, output: Path, overrides: Dict[str, Any], gpu_id: int = -1, no_train: bool = False
) -> float:
    """Train (or only initialize) one system into ``output``/model-last (and model-best), timing it;
    returns the wall time in seconds, also written to ``output``/train_time.json."""
    output.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    if no_train:
        nlp = init_nlp(load_config(config, overrides=overrides, interpolate=False), use_gpu=gpu_id)
        nlp.to_disk(output / "model-last")
    else:
        train(config, output, use_gpu=gpu_id, overrides=overrides)
    seconds = time.perf_counter() - start
    record = {"name": name, "config": str(config), "train_seconds": round(seconds, 1), "overrides": overrides}
    (output / "train_time.json").write_text(json.dumps(record, indent=2))
    print(f"{name}: trained in {seconds:.0f} s")
    return seconds


def training_options() -> argparse.ArgumentParser:
    """The options that set config overrides (spaCy-style ``--paths.train X`` pass through as unknown ones)."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--set", action="append", default=[], dest="overrides", help="key=value (JSON or text)")
    # A weasel var cannot carry "--set k=v" from the command line (weasel drops every "--" in an override's value).
    parser.add_argument(
        "--set-list", default="", help="key=value overrides separated by spaces (values without spaces)"
    )
    parser.add_argument("--steps", type=int, default=None, help="Train exactly N steps, evaluating at the last one")
    return parser


def overrides_from(args: argparse.Namespace, spacy_options: List[str]) -> Dict[str, Any]:
    overrides = {**parse_config_overrides(spacy_options), **parse_overrides(args.overrides + args.set_list.split())}
    if args.steps is not None:
        overrides = {**step_overrides(args.steps), **overrides}
    return overrides


def parse_training_options(options: List[str]) -> Dict[str, Any]:
    """The config overrides of a list of training options (``--paths.train X``, ``--set k=v``, ``--steps N``)."""
    args, spacy_options = training_options().parse_known_args(options)
    return overrides_from(args, spacy_options)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter, parents=[training_options()]
    )
    parser.add_argument("name")
    parser.add_argument("config", type=Path)
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument("--gpu-id", type=int, default=-1)
    parser.add_argument(
        "--no-train", action="store_true", help="Only initialize (e.g. in-context learning without fine-tuning)"
    )
    parser.add_argument("--test", type=Path, help="Evaluate model-last on this DocBin after training")
    parser.add_argument("--method", default="", help="With --test: the method, as the results table names it")
    parser.add_argument("--setting", default="", help="With --test: the setting, as the results table names it")
    parser.add_argument("--metrics", type=Path, help="With --test: where the metrics JSON goes")
    parser.add_argument("--test-batch-size", type=int, default=32, help="With --test: nlp.pipe batch size")
    parser.add_argument("--predictions", type=Path, help="With --test: save the predicted Docs here (a DocBin)")
    args, spacy_options = parser.parse_known_args()
    if args.test is not None and args.metrics is None:
        parser.error("--test needs --metrics (where the metrics JSON goes)")
    if args.predictions is not None and args.test is None:
        parser.error("--predictions needs --test (the documents to predict)")
    overrides = overrides_from(args, spacy_options)
    train_system(args.name, args.config, args.output, overrides, gpu_id=args.gpu_id, no_train=args.no_train)
    if args.test is not None:
        from evaluate import evaluate_pipeline, write_metrics

        model = args.output / "model-last"
        result = evaluate_pipeline(
            model, args.test, args.name, args.method, args.setting, args.test_batch_size, predictions=args.predictions
        )
        write_metrics(result, args.metrics)


if __name__ == "__main__":
    main()
