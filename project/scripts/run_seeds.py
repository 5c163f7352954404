"""Train and test one system once per seed, in one process: the rows of the `full` workflow.

    python scripts/run_seeds.py NAME CONFIG --seeds 0 1 2 --test corpus/full/test.spacy --method M --setting S
        [--training training/full] [--metrics metrics/full] [training options of train.py: --set k=v, --paths.x X]

Each seed S trains into TRAINING/NAME/seed-S (`system.seed` = S) and its best dev checkpoint (model-best,
else model-last) is tested: METRICS/NAME/seed-S.json as evaluate.py writes it, and the predicted test Docs
beside them, METRICS/NAME/seed-S.predictions.spacy (for report_full.py's paired bootstrap; small enough to
commit with the metrics, so a later table can add rows without re-running these). A seed whose metrics and
trained model both exist is skipped, so an interrupted row resumes where it stopped; committed metrics without
the model (a fresh checkout) are trained again and overwritten.
"""

import argparse
from pathlib import Path
from typing import Optional

import spacy
from evaluate import evaluate_pipeline, write_metrics
from train import overrides_from, train_system, training_options


def trained_model(output: Path) -> Optional[Path]:
    """The checkpoint a seed is tested at: its best dev checkpoint, else its last (None before training)."""
    return next((output / name for name in ("model-best", "model-last") if (output / name).exists()), None)


def finished(metrics: Path, output: Path) -> bool:
    """Whether a seed is done here: its metrics and the model they were computed from both exist."""
    return metrics.exists() and trained_model(output) is not None


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter, parents=[training_options()]
    )
    parser.add_argument("name")
    parser.add_argument("config", type=Path)
    parser.add_argument("--seeds", type=int, nargs="+", required=True)
    parser.add_argument("--test", type=Path, required=True, help="The test DocBin")
    parser.add_argument("--method", required=True)
    parser.add_argument("--setting", default="")
    parser.add_argument("--training", type=Path, default=Path("training/full"))
    parser.add_argument("--metrics", type=Path, default=Path("metrics/full"))
    parser.add_argument("--batch-size", type=int, default=32, help="nlp.pipe batch size at test time")
    parser.add_argument("--gpu-id", type=int, default=-1)
    args, spacy_options = parser.parse_known_args()
    overrides = overrides_from(args, spacy_options)
    if args.gpu_id >= 0:
        spacy.require_gpu(args.gpu_id)
    for seed in args.seeds:
        metrics = args.metrics / args.name / f"seed-{seed}.json"
        output = args.training / args.name / f"seed-{seed}"
        if finished(metrics, output):
            print(f"{args.name} seed {seed}: done ({metrics})")
            continue
        if metrics.exists():
            print(f"{args.name} seed {seed}: {metrics} exists but no model in {output}: training it again")
        train_system(f"{args.name} seed {seed}", args.config, output, {**overrides, "system.seed": seed}, args.gpu_id)
        model = trained_model(output)
        result = evaluate_pipeline(
            model,
            args.test,
            args.name,
            args.method,
            args.setting,
            batch_size=args.batch_size,
            predictions=metrics.with_suffix(".predictions.spacy"),
            seed=seed,
        )
        result["model"] = model.name
        write_metrics(result, metrics)


if __name__ == "__main__":
    main()
