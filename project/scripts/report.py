"""Collect metrics/*.json into results.md, results.json, a bar chart (results.png) and a reliability
plot of the seqlab taggers' span confidences (results_calibration.png).

Runs of the same method and setting with several seeds are reported as mean ± sd; their reliability
bins are pooled. Rows go baselines first, then the seqlab components in METHOD_ORDER, each in the order its
runs finished, so a re-run row keeps its place.
"""

import argparse
import json
import statistics
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Dict, Iterable, List

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from spacy_seqlab.core.calibration import pool_bins  # noqa: E402


def read_in_run_order(paths: Iterable[Path]) -> List[dict]:
    """The metrics files' runs in the order they finished (the workflow's order): by the ``finished`` time
    evaluate.py records, else (metrics written before it did) by the file's modification time."""

    def finished(item):
        path, run = item
        return run.get("finished") or datetime.fromtimestamp(path.stat().st_mtime, timezone.utc).isoformat(
            timespec="seconds"
        )

    runs = [(path, json.loads(path.read_text())) for path in paths]
    return [run for _, run in sorted(runs, key=finished)]


def _mean_sd(values: List[float]) -> Dict[str, float]:
    return {
        "mean": statistics.fmean(values),
        "sd": statistics.stdev(values) if len(values) > 1 else 0.0,
        "n": len(values),
    }


METHOD_ORDER = ("seqlab_multitask_ner", "seqlab_bidir_tagger", "seqlab_llm_sft")


def method_rank(method: str) -> int:
    """Baselines (every method not ours) first, then METHOD_ORDER, then any other seqlab component."""
    if not method.startswith("seqlab_"):
        return 0
    return 1 + (METHOD_ORDER.index(method) if method in METHOD_ORDER else len(METHOD_ORDER))


def summarize(runs: List[dict]) -> List[dict]:
    """One row per (method, setting), ordered by method_rank and then by first run: mean ± sd over seeds of
    P, R, F, train time and speed."""
    groups: Dict[tuple, List[dict]] = defaultdict(list)
    for run in runs:
        groups[(run["method"], run["setting"])].append(run)
    rows = []
    for (method, setting), members in groups.items():
        row = {"method": method, "setting": setting, "runs": len(members), "test_docs": members[0]["test_docs"]}
        for key in ("p", "r", "f", "dev_score", "train_seconds", "words_per_second"):
            values = [m[key] for m in members if m.get(key) is not None]
            row[key] = _mean_sd(values) if values else None
        calibrated = [m["calibration"] for m in members if m.get("calibration") and m["calibration"]["n"]]
        row["ece"] = _mean_sd([c["ece"] for c in calibrated]) if calibrated else None
        row["reliability"] = pool_bins(c["bins"] for c in calibrated) if calibrated else None
        rows.append(row)
    return sorted(rows, key=lambda row: method_rank(row["method"]))  # stable: run order within a method


def _fmt(stat, scale: float = 1.0, digits: int = 1) -> str:
    if stat is None:
        return "–"
    text = f"{stat['mean'] * scale:.{digits}f}"
    return text + (f" ± {stat['sd'] * scale:.{digits}f}" if stat["n"] > 1 else "")


def write_markdown(rows: List[dict], path: Path, notes: List[str]) -> None:
    lines = [
        "| method | setting | P | R | F | dev F | ECE | train time (s) | words/s | test docs |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        lines.append(
            f"| {row['method']} | {row['setting']} | {_fmt(row['p'], 100)} | {_fmt(row['r'], 100)} | "
            f"{_fmt(row['f'], 100)} | {_fmt(row['dev_score'], 100)} | {_fmt(row.get('ece'), 100)} | "
            f"{_fmt(row['train_seconds'], 1, 0)} | "
            f"{_fmt(row['words_per_second'], 1, 0)} | {row['test_docs']} |"
        )
    text = (
        "# Results\n\nseqeval strict IOB2 micro scores ×100 on the test documents. ECE: expected calibration "
        "error ×100 of the seqlab taggers' span confidences (10 equal-width bins; a span is correct when a gold "
        "entity has its characters and label), reliability plot in results_calibration.png.\n\n"
        + "\n".join(lines)
        + "\n"
    )
    if notes:
        text += "\n" + "\n".join(f"- {note}" for note in notes) + "\n"
    path.write_text(text)


def write_plot(rows: List[dict], path: Path, title: str) -> None:
    labels = [f"{row['method']}\n{row['setting']}" for row in rows]
    means = [row["f"]["mean"] * 100 if row["f"] else 0.0 for row in rows]
    errors = [row["f"]["sd"] * 100 if row["f"] else 0.0 for row in rows]
    fig, ax = plt.subplots(figsize=(max(6, 1.2 * len(rows)), 4.5))
    ax.bar(range(len(rows)), means, yerr=errors, capsize=4, color="#4c72b0")
    ax.set_xticks(range(len(rows)))
    ax.set_xticklabels(labels, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("test F1 (seqeval strict, ×100)")
    ax.set_title(title)
    for i, value in enumerate(means):
        ax.text(i, value + 0.5, f"{value:.1f}", ha="center", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_reliability_plot(rows: List[dict], path: Path, title: str) -> None:
    """Accuracy against mean confidence per bin, one line per row with span confidences."""
    fig, ax = plt.subplots(figsize=(5.5, 5))
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfect calibration")
    for row in rows:
        table = row.get("reliability")
        if not table:
            continue
        filled = [b for b in table["bins"] if b["count"]]
        ax.plot(
            [b["confidence"] for b in filled],
            [b["accuracy"] for b in filled],
            marker="o",
            label=f"{row['method']} {row['setting']} (ECE {table['ece'] * 100:.1f})",
        )
    if not any(row.get("reliability") for row in rows):
        ax.text(0.5, 0.5, "no span confidences in these runs", ha="center")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("span confidence (bin mean)")
    ax.set_ylabel("fraction of spans correct")
    ax.set_title(f"{title}: reliability", fontsize=10)
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def test_data_note(stats_path: Path) -> str:
    """What the test sets were, from the prepare step's stats.json."""
    stats = json.loads(stats_path.read_text())
    return (
        f"Test data: {stats['source']}, {stats['test']['docs']} docs, {stats['test']['words']} words, "
        f"{stats['test']['spans']} entities; the generative method on the first {stats['test_sft']['docs']} docs "
        f"({stats['test_sft']['spans']} entities)."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("metrics", type=Path, help="folder of metrics/*.json")
    parser.add_argument("--output", type=Path, required=True, help="results.md; .json and .png are written beside it")
    parser.add_argument("--title", default="spacy-seqlab on WNUT-16")
    parser.add_argument("--note", action="append", default=[])
    parser.add_argument("--stats", type=Path, help="corpus/stats.json from the prepare step, to state the test sizes")
    args = parser.parse_args()
    runs = read_in_run_order(args.metrics.glob("*.json"))
    if not runs:
        raise SystemExit(f"No metrics in {args.metrics}: run the training steps first")
    rows = summarize(runs)
    notes = list(args.note)
    if args.stats and args.stats.exists():
        notes.append(test_data_note(args.stats))
    write_markdown(rows, args.output, notes)
    args.output.with_suffix(".json").write_text(json.dumps({"rows": rows, "runs": runs}, indent=2))
    write_plot(rows, args.output.with_suffix(".png"), args.title)
    write_reliability_plot(rows, args.output.with_name(f"{args.output.stem}_calibration.png"), args.title)
    print(args.output.read_text())


if __name__ == "__main__":
    main()
