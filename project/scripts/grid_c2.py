"""C2's grid: layer-wise causal-mask removal (the 16 on/off settings of 4 layer groups, first and last sub-word
pooling) and sequence repetition (causal), with its heat-map of test F1 by setting and pooling."""

import argparse
import itertools
import json
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from grid_runs import (
    BIDIR_CONFIG,
    backbone_setting,
    common_overrides,
    parse_run_name,
    train_and_evaluate,
    write_config,
)

C2_CLAIMS_UNMASK = ("0000", "0001", "0011", "0111", "1111")
C2_REPEATS = (1, 4)


def layer_groups(n_layers: int, n_groups: int = 4) -> List[List[int]]:
    """Contiguous groups as equal as possible (SmolLM2 has 30 layers: 8, 7, 7, 8)."""
    bounds = [round(i * n_layers / n_groups) for i in range(n_groups + 1)]
    return [list(range(bounds[i], bounds[i + 1])) for i in range(n_groups)]


def shipped_pooling(config: Path = BIDIR_CONFIG) -> str:
    """The sub-word pooling of a bidir config (default: the shipped one): the one the claims subset runs."""
    return backbone_setting(config, "pooling")


def c2_settings(subset: str, config: Path = BIDIR_CONFIG) -> List[Tuple[str, str, int]]:
    """(unmask bits, pooling, repeat) of each run of one seed, in run order. Repetition runs are causal (0000)."""
    pooling = shipped_pooling(config)
    repeats = [("0000", pooling, k) for k in C2_REPEATS]
    if subset in ("claims", "unmask"):
        return [(bits, pooling, 0) for bits in C2_CLAIMS_UNMASK] + (repeats if subset == "claims" else [])
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


def draw_heatmap(ax, scores: Dict[Tuple[str, str], List[float]], title: str = ""):
    """Mean test F1 by setting (rows: the unmask settings that ran, in id order, then the repetition settings) and
    sub-word pooling (columns) into matplotlib axes ``ax``; returns the image, for a colorbar."""
    import numpy

    rows = sorted({row for row, _ in scores if not row.startswith("rep")})
    rows += sorted({row for row, _ in scores if row.startswith("rep")}, key=lambda row: int(row[3:]))
    poolings = [p for p in ("first", "last") if any(pooling == p for _, pooling in scores)]
    grid = numpy.array([[numpy.mean(scores.get((r, p), [numpy.nan])) for p in poolings] for r in rows])
    names = {"0000": "0000 (none)", "1111": "1111 (all)"}
    labels = [f"repeat {row[3:]} (causal)" if row.startswith("rep") else names.get(row, row) for row in rows]
    image = ax.imshow(grid, cmap="viridis", aspect="auto")
    ax.set_xticks(range(len(poolings)), poolings)
    ax.set_yticks(range(len(rows)), labels)
    ax.set_xlabel("sub-word pooling")
    ax.set_ylabel("unmasked layer groups (left = bottom)")
    if title:
        ax.set_title(title, fontsize=9)
    for (i, j), value in numpy.ndenumerate(grid):
        if not numpy.isnan(value):
            bright = image.norm(value) > 0.6  # viridis turns yellow at the top of the scale
            ax.text(j, i, f"{value:.1f}", ha="center", va="center", color="black" if bright else "white", fontsize=8)
    return image


def write_heatmap(out: Path, path: Optional[Path] = None, title: str = "") -> Optional[Path]:
    """C2's heat-map of OUT's runs (see draw_heatmap) into OUT/heatmap.png unless ``path``; None when no C2 run
    exists."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scores = c2_scores(out)
    if not scores:
        return None
    poolings = {pooling for _, pooling in scores}
    fig, ax = plt.subplots(figsize=(3.5 + 1.2 * len(poolings), max(3.0, 1.5 + 0.45 * len({r for r, _ in scores}))))
    fig.colorbar(draw_heatmap(ax, scores, title), label="test F1 ×100")
    fig.tight_layout()
    path = path or out / "heatmap.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
