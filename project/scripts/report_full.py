"""The full-budget table (workflow `full`): metrics/full/*/seed-*.json into results_full.md, .json and .png.

Per row (a method and setting): mean ± sd over its seeds of P/R/F (report.py's summary), the number of
seeds, a paired bootstrap of its F against the baseline's (spaCy's ner), training time and words/s; and a
line naming the rows that do not beat the baseline.

The bootstrap compares the predictions of each row's lowest seed (seed 0 in the workflow) with the
baseline's lowest seed, on the same test documents (a row tested on the first N documents, SIFT's subset,
is compared on those N), resampling documents: F(row) - F(baseline) with its 95% percentile interval and
two-sided p-value (spacy_seqlab.core.significance). A row beats the baseline when the interval lies above 0.

With --previous EARLIER.json (an earlier results_full.json), the runs of the earlier table that METRICS does not
hold are kept: their rows count them as they were, and a kept lowest seed keeps the bootstrap the earlier table
computed for it (its predictions may be gone). So rows can be added or re-run one at a time on a machine that
no longer has the others' runs. The table names the rows it kept.
"""

import argparse
import json
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy
import spacy
from report import _fmt, read_in_run_order, summarize, test_data_note, write_plot, write_reliability_plot
from spacy.tokens import DocBin
from spacy.training import Example

from spacy_seqlab.core.significance import paired_bootstrap, span_counts

VOCAB = spacy.blank("en").vocab


def load_runs(metrics: Path) -> List[dict]:
    """Every run's metrics, in the order the runs finished (the workflow's order)."""
    return read_in_run_order(metrics.glob("*/seed-*.json"))


def previous_table(path: Path, runs: List[dict]) -> Tuple[List[dict], Dict[str, dict]]:
    """The runs of the earlier table at ``path`` that ``runs`` does not hold (same name and seed), marked
    ``kept``, and the earlier rows' bootstraps by row name."""
    earlier = json.loads(path.read_text())
    held = {(run["name"], run.get("seed")) for run in runs}
    kept = [{**run, "kept": True} for run in earlier["runs"] if (run["name"], run.get("seed")) not in held]
    return kept, {row["name"]: row["bootstrap"] for row in earlier["rows"] if row.get("bootstrap")}


def run_counts(run: dict) -> tuple:
    """(per-document span counts, document texts) of a run's saved test predictions."""
    if not run.get("predictions") or not Path(run["predictions"]).exists():
        raise SystemExit(f"{run['name']} seed {run.get('seed')}: no saved predictions ({run.get('predictions')})")
    gold = list(DocBin().from_disk(run["test_data"]).get_docs(VOCAB))
    predicted = list(DocBin().from_disk(run["predictions"]).get_docs(VOCAB))
    if [d.text for d in gold] != [d.text for d in predicted]:
        raise SystemExit(f"{run['predictions']} does not hold the documents of {run['test_data']} in order")
    return span_counts(Example(p, g) for p, g in zip(predicted, gold)), [d.text for d in gold]


def compare(run: dict, baseline: dict, samples: int, seed: int) -> Dict[str, float]:
    """Paired bootstrap of ``run`` against ``baseline`` on the documents ``run`` was tested on."""
    counts, texts = run_counts(run)
    base_counts, base_texts = run_counts(baseline)
    if base_texts[: len(texts)] != texts:
        raise SystemExit(
            f"{run['name']} and {baseline['name']} were tested on different documents "
            f"({run['test_data']}, {baseline['test_data']}): the bootstrap needs the same ones"
        )
    return paired_bootstrap(base_counts[: len(texts)], counts, samples=samples, seed=seed)


def lowest_seed(runs: List[dict]) -> dict:
    return min(runs, key=lambda run: run.get("seed") or 0)


def build_rows(
    runs: List[dict], baseline_name: str, samples: int, seed: int, earlier: Optional[Dict[str, dict]] = None
) -> List[dict]:
    """The table's rows; ``earlier``: the bootstraps of an earlier table, for the rows whose lowest seed it kept."""
    rows = summarize(runs)
    baseline_runs = [run for run in runs if run["name"] == baseline_name]
    baseline = lowest_seed(baseline_runs) if baseline_runs else None
    for row in rows:
        members = [run for run in runs if (run["method"], run["setting"]) == (row["method"], row["setting"])]
        row["name"] = members[0]["name"]
        row["seeds"] = sorted(run.get("seed") for run in members if run.get("seed") is not None)
        row["kept_seeds"] = sorted(run.get("seed") for run in members if run.get("kept"))
        row["is_baseline"] = row["name"] == baseline_name
        row["bootstrap"] = None
        if baseline is None or row["is_baseline"]:
            continue
        first = lowest_seed(members)
        if first.get("kept"):
            kept = (earlier or {}).get(row["name"])
            if kept is None or kept.get("seed") != first.get("seed"):
                raise SystemExit(
                    f"{row['name']} seed {first.get('seed')}: kept from the earlier table without its bootstrap"
                )
            row["bootstrap"] = kept
        elif baseline.get("kept"):
            raise SystemExit(
                f"{row['name']}: a new run needs the baseline's predictions, and {baseline_name} seed "
                f"{baseline.get('seed')} comes from the earlier table: run the baseline again"
            )
        else:
            row["bootstrap"] = {"seed": first.get("seed"), **compare(first, baseline, samples, seed)}
    return rows


def _difference(test: Optional[dict], is_baseline: bool) -> str:
    if is_baseline:
        return "baseline"
    if test is None:
        return "–"
    scaled = [test[key] * 100 for key in ("difference", "low", "high")]
    return f"{scaled[0]:+.1f} [{scaled[1]:+.1f}, {scaled[2]:+.1f}]"


def verdict(rows: List[dict], baseline_name: str) -> str:
    """The line saying which rows beat the baseline (95% interval above 0) and which do not."""
    compared = [row for row in rows if row["bootstrap"] is not None]
    wins = [f"{r['method']} ({r['setting']})" for r in compared if r["bootstrap"]["low"] > 0]
    others = [f"{r['method']} ({r['setting']})" for r in compared if r["bootstrap"]["low"] <= 0]
    text = f"Beat {baseline_name} (95% interval of the F difference above 0): {', '.join(wins) or 'none'}. "
    return text + f"Do not beat it (difference not significant, or worse): {', '.join(others) or 'none'}."


def kept_note(rows: List[dict]) -> str:
    """The line naming the rows with runs kept from an earlier table ('' when none)."""
    kept = [
        f"{r['method']} ({r['setting']}; seed {', '.join(map(str, r['kept_seeds']))})" for r in rows if r["kept_seeds"]
    ]
    if not kept:
        return ""
    return (
        f"- Kept from the earlier table (runs not re-run for this one; a kept lowest seed keeps the bootstrap "
        f"that table computed, against its baseline run): {', '.join(kept)}.\n"
    )


FULL_HEADING = "Full-budget results"
FULL_INTRO = "Each method trained to convergence on the whole shared train split and tested on the test split."


def write_markdown(
    rows: List[dict],
    path: Path,
    notes: List[str],
    baseline_name: str,
    heading: str = FULL_HEADING,
    intro: str = FULL_INTRO,
) -> None:
    lines = [
        f"| method | setting | seeds | P | R | F | F − {baseline_name} [95% CI] | p | dev F | train time (min) "
        "| words/s | test docs |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        test = row["bootstrap"]
        p_value = "–" if test is None else f"{test['p_value']:.3f}"
        lines.append(
            f"| {row['method']} | {row['setting']} | {len(row['seeds']) or row['runs']} | {_fmt(row['p'], 100)} | "
            f"{_fmt(row['r'], 100)} | {_fmt(row['f'], 100)} | {_difference(test, row['is_baseline'])} | "
            f"{p_value} | {_fmt(row['dev_score'], 100)} | {_fmt(row['train_seconds'], 1 / 60, 1)} | "
            f"{_fmt(row['words_per_second'], 1, 0)} | {row['test_docs']} |"
        )
    text = (
        f"# {heading}\n\n{intro} Seqeval strict IOB2 micro scores ×100, mean ± sd over the seeds (column `seeds`). "
        f"Paired bootstrap against {baseline_name} over the scored documents (lowest seed of each row against the "
        "baseline's lowest seed), F difference ×100 with its 95% interval and two-sided p-value.\n\n"
        + "\n".join(lines)
        + "\n\n"
        + f"- {verdict(rows, baseline_name)}\n"
        + kept_note(rows)
        + "".join(f"- {note}\n" for note in notes)
    )
    path.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("metrics", type=Path, help="folder of NAME/seed-S.json (metrics/full)")
    parser.add_argument("--output", type=Path, required=True, help="results_full.md; .json and .png beside it")
    parser.add_argument("--baseline", default="spacy-ner", help="The run name every row is compared with")
    parser.add_argument("--samples", type=int, default=1000, help="Bootstrap samples")
    parser.add_argument("--seed", type=int, default=0, help="Bootstrap seed")
    parser.add_argument("--title", default="spacy-seqlab on WNUT-16, full budget")
    parser.add_argument("--heading", default=FULL_HEADING, help="The table's heading")
    parser.add_argument("--intro", default=FULL_INTRO, help="What the rows are, before the column legend")
    parser.add_argument("--note", action="append", default=[])
    parser.add_argument("--stats", type=Path, help="corpus stats.json from the prepare step")
    parser.add_argument(
        "--previous", default="", help="An earlier results_full.json whose runs METRICS lacks are kept ('': none)"
    )
    args = parser.parse_args()
    runs, earlier = load_runs(args.metrics), None
    if args.previous:
        previous = Path(args.previous)
        if not previous.exists():
            raise SystemExit(f"--previous {previous}: no such file")
        kept, earlier = previous_table(previous, runs)
        runs = kept + runs
    if not runs:
        raise SystemExit(f"No metrics in {args.metrics}/*/seed-*.json: run the training steps first")
    if not any(run["name"] == args.baseline for run in runs):
        raise SystemExit(f"No run of the baseline {args.baseline!r} in {args.metrics}: run it first")
    rows = build_rows(runs, args.baseline, args.samples, args.seed, earlier)
    notes = list(args.note)
    if args.stats and args.stats.exists():
        notes.append(test_data_note(args.stats))
    write_markdown(rows, args.output, notes, args.baseline, args.heading, args.intro)
    args.output.with_suffix(".json").write_text(
        json.dumps({"baseline": args.baseline, "rows": rows, "runs": runs}, indent=2, default=_json_default)
    )
    write_plot(rows, args.output.with_suffix(".png"), args.title)
    write_reliability_plot(rows, args.output.with_name(f"{args.output.stem}_calibration.png"), args.title)
    print(args.output.read_text())


def _json_default(value):
    if isinstance(value, numpy.generic):
        return value.item()
    raise TypeError(f"not JSON serializable: {type(value)}")


if __name__ == "__main__":
    main()
