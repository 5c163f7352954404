"""The claims report's outputs: the markdown table (claims.md) and the C1, C2 and C3 plots."""

import argparse
from pathlib import Path
from typing import Callable, List, Tuple

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy  # noqa: E402
from claims_runs import Experiment, summarize  # noqa: E402
from claims_verdicts import INCONCLUSIVE, VERDICTS  # noqa: E402
from grid_c1 import C1_SHOTS, C1_VARIANTS  # noqa: E402
from grid_c2 import c2_scores, draw_heatmap  # noqa: E402


def fmt_measured(entry: dict) -> str:
    if entry.get("missing"):
        return f"{entry['label']}: not run"
    text = f"{entry['label']} {entry['mean']:.1f}"
    if entry["sd"] is not None:
        text += f" ± {entry['sd']:.1f}"
    runs = f" × {entry['runs_per_seed']} samples" if entry["runs_per_seed"] > 1 else ""
    seeds = len(entry["seeds"])
    return text + f" ({seeds} seed{'s' if seeds != 1 else ''}{runs})"


def fmt_comparison(entry: dict) -> str:
    if "missing" in entry:
        return f"{entry['what']}: not compared ({entry['missing']})"
    level = f"{entry['confidence'] * 100:g}%"
    # Two-sided bootstrap p: its resolution is 2 / resamplings.
    p_value = f"p {entry['p_value']:.3f}" if entry["p_value"] > 0 else f"p < {2 / entry['samples']:g}"
    return (
        f"{entry['what']}: {entry['difference']:+.1f} [{entry['low']:+.1f}, {entry['high']:+.1f}] ({level}), "
        f"{p_value}, {entry['docs']} docs"
    )


def headline(rows: List[dict]) -> str:
    counts = {verdict: sum(row["verdict"] == verdict for row in rows) for verdict in VERDICTS}
    return ", ".join(f"{verdict}: {counts[verdict]}" for verdict in VERDICTS)


def write_markdown(rows: List[dict], path: Path, options: argparse.Namespace, command: str) -> None:
    cell: Callable[[str], str] = lambda text: text.replace("|", "/")  # noqa: E731
    lines = [
        "# The thesis' claims at CPU scale",
        "",
        f"Written by `{command}` from the grids' runs. Test F1 is seqeval strict IOB2 micro F ×100, mean ± sd "
        "over seeds. Comparisons: paired bootstrap over test documents on seed-pooled predictions (per document, "
        f"the span counts averaged over a setting's seeds and samples; {options.samples} resamplings, seed "
        f"{options.seed}), the F difference ×100 with its interval and two-sided p. Verdicts are computed from the "
        f'intervals (rule per row, margin δ = {options.margin:g} F points); "{INCONCLUSIVE}" means the runs at this '
        "scale cannot tell.",
        "",
        f"Verdicts: {headline(rows)}.",
        "",
        "| claim | measured (test F ×100) | comparison: difference [interval], p | verdict | published (context) |",
        "| --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        lines.append(
            "| "
            + " | ".join(
                cell(text)
                for text in (
                    f"**{row['id']}**: {row['claim']}",
                    "; ".join(fmt_measured(entry) for entry in row["measured"]) or "no runs",
                    "; ".join(fmt_comparison(entry) for entry in row["comparisons"]) or "–",
                    f"**{row['verdict']}** ({row['reason']})",
                    row["published"],
                )
            )
            + " |"
        )
    lines += ["", "## Rules and commands per row", ""]
    for row in rows:
        lines.append(f"- **{row['id']}**: {row['rule']}. Scale: {row['scale']}. Runs: `{row['command']}`")
    lines += ["", "## Plots", ""]
    for name, alt in (("c1", "C1: F by k"), ("c2", "C2: heat-map"), ("c3", "C3: bars")):
        lines.append(f"![{alt}]({path.stem}_{name}.png)")
    path.write_text("\n".join(lines) + "\n")


def empty_plot(path: Path, text: str) -> None:
    fig, ax = plt.subplots(figsize=(5, 2))
    ax.text(0.5, 0.5, text, ha="center", va="center")
    ax.axis("off")
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_c1(c1: Experiment, path: Path) -> None:
    """Test F by k (0 = zero-shot), one line per variant, error bars = sd over seeds."""
    ks = (0, *C1_SHOTS)
    if not c1.runs:
        return empty_plot(path, "no C1 runs yet")
    fig, ax = plt.subplots(figsize=(6, 4))
    for offset, variant in zip((-0.08, 0.0, 0.08), C1_VARIANTS):
        keys = [f"c1-{variant}-" + ("zero" if k == 0 else f"k{k}") for k in ks]
        stats = [summarize(c1.runs[key]) if c1.has(key) else None for key in keys]
        means = [s["mean"] if s else numpy.nan for s in stats]
        errors = [s["sd"] or 0.0 if s else 0.0 for s in stats]
        ax.errorbar(numpy.arange(len(ks)) + offset, means, yerr=errors, marker="o", capsize=4, label=variant)
    ax.set_xticks(range(len(ks)), ["0 (zero-shot)", *map(str, C1_SHOTS)])
    ax.set_xlabel("target tweets k (few-shot)")
    ax.set_ylabel("test F1 ×100 (mean ± sd over seeds)")
    ax.set_title("C1: news → tweets transfer", fontsize=10)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_c2(panels: List[Tuple[str, Experiment]], path: Path) -> None:
    """C2's heat-map, one panel per task (title, grid), each with its own colour scale: tasks score on
    different scales, and a panel compares settings within its task."""
    scores = [(title, c2_scores(grid.folder)) for title, grid in panels if grid.runs]
    if not scores:
        return empty_plot(path, "no C2 runs yet")
    height = max(3.0, 1.5 + 0.45 * max(len({row for row, _ in table}) for _, table in scores))
    fig, axes = plt.subplots(1, len(scores), figsize=(4.8 * len(scores), height), squeeze=False)
    for ax, (title, table) in zip(axes[0], scores):
        fig.colorbar(draw_heatmap(ax, table, title), ax=ax, label="test F1 ×100")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_c3(c3: Experiment, path: Path) -> None:
    keys = [
        ("c3-vanilla-noinstr-2d", "vanilla\n2 demos"),
        ("c3-src-noinstr-2d", "src\n2 demos"),
        ("c3-mrc-noinstr-2d", "mrc\n2 demos"),
        ("c3-mrc-instr-2d", "mrc + instr.\n2 demos"),
        ("c3-mrc-noinstr-0d", "mrc\n0 demos"),
        ("c3-mrc-noinstr-8d", "mrc\n8 demos"),
        ("c3-icl", "in-context, 8 demos\n(no training)"),
        ("c3-bidir", "bidir tagger\n(same model)"),
    ]
    present = [(key, label) for key, label in keys if c3.has(key)]
    if not present:
        return empty_plot(path, "no C3 runs yet")
    stats = [summarize(c3.runs[key]) for key, _ in present]
    colors = ["#4c72b0" if key.startswith("c3-") and key.count("-") == 3 else "#dd8452" for key, _ in present]
    fig, ax = plt.subplots(figsize=(max(6.0, 1.1 * len(present) + 2), 4))
    ax.bar(
        range(len(present)), [s["mean"] for s in stats], yerr=[s["sd"] or 0.0 for s in stats], capsize=4, color=colors
    )
    top = max(stat["mean"] + (stat["sd"] or 0.0) for stat in stats)
    ax.set_ylim(0, max(10.0, top * 1.15))  # room for the labels, also when every score is 0
    for i, stat in enumerate(stats):
        # Above the error bar, so that the number stays readable.
        ax.text(
            i, stat["mean"] + (stat["sd"] or 0.0) + 0.5, f"{stat['mean']:.1f}", ha="center", va="bottom", fontsize=8
        )
    ax.set_xticks(range(len(present)), [label for _, label in present], fontsize=8)
    ax.set_ylabel("test F1 ×100 (mean ± sd over seeds)")
    ax.set_title("C3: SIFT settings (blue) and baselines (orange) on the same model", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
