"""The thesis' claims as measured by the grids: runs/c1, runs/c2, runs/c3 into claims.md, claims.json and plots.

    python scripts/claims.py --runs runs --output claims.md [--samples 1000] [--seed 0] [--margin 2]
        [--c2-label "WNUT-16 NER"] [--c2-task "LABEL=runs/c2-chunks"] [--c2-also "LABEL=runs/c2-qwen"]

One row per claim (C1 per transfer regime). Each row states what was measured (test F1 ×100, mean ± sd over
seeds; C1's few-shot samples are averaged within a seed first), a paired comparison where the claim is one, a
verdict computed from the numbers, the published number for context where one was retrieved
(shared/reference/methods.md), and the grid command that made the runs (OUTPUT/grid.json).

Comparisons are paired bootstraps over test documents on seed-pooled predictions: per document, the span
counts (correct, predicted, gold) of a setting are averaged over its runs (its seeds, and C1's samples), the
documents are resampled with replacement (the same draw for both settings) and micro F is recomputed per draw
(spacy_seqlab.core.significance). The difference ×100 with its percentile interval and two-sided p-value.
Pooling seeds this way keeps the test documents as the unit of resampling; seed-to-seed spread is in the sd.

Verdicts (B − A is the difference the claim says is positive; δ = --margin F points):
* "better" claims: holds if the interval lies above 0, does not hold if it lies below 0;
* "not worse" claims: holds if the interval lies above −δ, does not hold if it lies below 0;
* "no gain" claims: holds if the interval lies below +δ, does not hold if it lies above 0;
* otherwise "inconclusive at this scale"; "missing runs" when a run the claim needs is absent.
Where a claim speaks of a family (unmasking, repetition), its member with the best mean dev F represents it,
so the test comparison is not biased by the choice.

C2's task-dependence row compares the C2 grid with the same model's grids on other tasks (--c2-task, e.g. the
silver NP chunks of scripts/prepare_chunks.py); those grids also get the other C2 rows, labelled.

Rows whose runs are missing say so, so the report can be written from a partial grid.
"""

import argparse
import json
import shlex
import sys
from pathlib import Path
from typing import List, Optional

from claims_output import plot_c1, plot_c2, plot_c3, write_markdown
from claims_rows import c1_claims, c2_claims, c3_claims, task_name
from claims_runs import Counts, Experiment
from claims_verdicts import VERDICTS


def main(argv: Optional[List[str]] = None) -> List[dict]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=Path, default=Path("runs"), help="Folder with the grids' c1, c2, c3 folders")
    parser.add_argument("--output", type=Path, default=Path("claims.md"), help="claims.md; .json and plots beside it")
    parser.add_argument("--samples", type=int, default=1000, help="Bootstrap resamplings")
    parser.add_argument("--seed", type=int, default=0, help="Bootstrap seed")
    parser.add_argument("--margin", type=float, default=2.0, help="δ of the not-worse and no-gain claims, F ×100")
    parser.add_argument(
        "--c2-task",
        action="append",
        default=[],
        metavar="LABEL=DIR",
        help="C2 grids of the same model on other tasks: own rows, and the task-dependence row compares the tasks",
    )
    parser.add_argument(
        "--c2-label",
        default="",
        help="The C2 grid's task, as the task-dependence row names it (default: its test data)",
    )
    parser.add_argument(
        "--c2-also", action="append", default=[], metavar="LABEL=DIR", help="More C2 grids (another model), own rows"
    )
    args = parser.parse_args(argv)
    command = shlex.join(["python", "scripts/claims.py", *(sys.argv[1:] if argv is None else argv)])
    counts = Counts()
    experiments = {name: Experiment(name, args.runs / name, counts, args) for name in ("c1", "c2", "c3")}

    def grids(option: str, items: List[str]) -> List[Experiment]:
        found = []
        for item in filter(None, items):  # the workflow passes an empty one when its var is empty
            label, _, folder = item.partition("=")
            if not label or not folder:
                parser.error(f"{option} takes LABEL=DIR, got {item!r}")
            found.append(Experiment("c2", Path(folder), counts, args, label=label))
        return found

    tasks = grids("--c2-task", args.c2_task)
    rows = c1_claims(experiments["c1"]) + c2_claims(experiments["c2"], args.margin, tasks)
    for grid in tasks:
        rows += c2_claims(grid, args.margin, tasks=None)
    for grid in grids("--c2-also", args.c2_also):
        rows += c2_claims(grid, args.margin)
    rows += c3_claims(experiments["c3"], args.margin)
    write_markdown(rows, args.output, args, command)
    report = {
        "command": command,
        "bootstrap": {"samples": args.samples, "seed": args.seed, "pooling": "per-document counts averaged over runs"},
        "margin": args.margin,
        "grids": {name: experiment.record for name, experiment in experiments.items()},
        "c2_tasks": {grid.label: {"folder": str(grid.folder), **grid.record} for grid in tasks},
        "verdicts": {verdict: sum(row["verdict"] == verdict for row in rows) for verdict in VERDICTS},
        "claims": rows,
    }
    args.output.with_suffix(".json").write_text(json.dumps(report, indent=2, default=str))
    stem = args.output.with_suffix("")
    plot_c1(experiments["c1"], Path(f"{stem}_c1.png"))
    main_task = "C2" + (f": {task_name(experiments['c2'])}" if tasks else "")
    panels = [(main_task, experiments["c2"])] + [(f"C2: {grid.label}", grid) for grid in tasks]
    plot_c2([(f"{title}\ntest F1 ×100, mean over seeds", grid) for title, grid in panels], Path(f"{stem}_c2.png"))
    plot_c3(experiments["c3"], Path(f"{stem}_c3.png"))
    print(args.output.read_text())
    return rows


if __name__ == "__main__":
    main()
