"""Temperature scaling of the full-budget taggers' span confidences (workflow `full`, after `full-report`).

    python scripts/calibrate_full.py training/full --dev corpus/full/dev.spacy --test corpus/full/test.spacy \
        --output calibration_full.md

For each trained pipeline TRAINING/NAME/seed-S/model-best whose last component is a seqlab tagger of
``doc.ents``: ``spacy seqlab-calibrate`` fits its confidence temperature on the dev split and saves the
pipeline beside it (model-calibrated); both pipelines then label the test split, and the table gives the
temperature and the expected calibration error (ECE ×100, 10 bins) of the test spans' confidences before
and after. The spans must come out the same (temperature changes confidences only); a run where they do
not stops the script; a tagger with nothing to fit on (no span predicted on dev) gets a row saying so. Writes
OUTPUT and OUTPUT with .json.
"""

import argparse
import json
from pathlib import Path
from typing import Dict, List

import spacy
from evaluate import span_calibration
from spacy.tokens import DocBin

from spacy_seqlab.cli.calibrate import calibrated_component, seqlab_calibrate


def spans_and_ece(model: Path, test: Path) -> Dict:
    nlp = spacy.load(model)
    references = list(DocBin().from_disk(test).get_docs(nlp.vocab))
    predicted = list(nlp.pipe(doc.text for doc in references))
    spans = [[(e.start_char, e.end_char, e.label_) for e in doc.ents] for doc in predicted]
    return {"spans": spans, "calibration": span_calibration(nlp, predicted, references)}


def calibrate_run(model: Path, dev: Path, test: Path) -> Dict:
    out = model.parent / "model-calibrated"
    try:
        fit = seqlab_calibrate(str(model), dev, out)
    except ValueError as err:  # e.g. a tagger that predicts no span on dev: said in its row
        return {"model": str(model), "skipped": str(err)}
    before, after = spans_and_ece(model, test), spans_and_ece(out, test)
    if before["spans"] != after["spans"]:
        raise SystemExit(f"{out}: calibration changed the predicted spans, not only their confidences")
    return {
        "model": str(model),
        "calibrated": str(out),
        "component": fit["component"],
        "temperature": fit["temperature"],
        "dev_spans": fit["n"],
        "dev_ece_before": fit["ece_before"],
        "dev_ece_after": fit["ece_after"],
        "test_spans": after["calibration"]["n"],
        "test_ece_before": before["calibration"]["ece"],
        "test_ece_after": after["calibration"]["ece"],
        "test_bins_after": after["calibration"]["bins"],
    }


def tagger_models(training: Path) -> List[Path]:
    """model-best of every run whose pipeline has one seqlab tagger (spaCy's ner and SIFT have no confidences)."""
    found = []
    for model in sorted(training.glob("*/seed-*/model-best")):
        try:
            calibrated_component(spacy.load(model), None)
        except ValueError:
            continue
        found.append(model)
    return found


def write_table(rows: List[Dict], output: Path, command: str) -> None:
    lines = [
        "# Span confidences of the full-budget taggers, before and after temperature scaling",
        "",
        f"Written by `{command}`. Each tagger's temperature T is fitted on the dev split (`spacy seqlab-calibrate`: "
        "the T whose span confidences best predict each predicted span's correctness, log loss); ECE ×100 of the "
        "test spans' confidences (10 equal-width bins; a span is correct when a gold entity has its characters "
        "and label). The predicted spans are the same before and after; a tagger that predicts no span on dev has "
        "nothing to fit and is not calibrated.",
        "",
        "| run | T | dev spans | dev ECE: T = 1 → T | test spans | test ECE: T = 1 → T |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        run = "/".join(Path(row["model"]).parts[-3:-1])
        if "skipped" in row:
            lines.append(f"| {run} | not calibrated: {row['skipped']} | | | | |")
            continue
        lines.append(
            f"| {run} | {row['temperature']:.2f} | {row['dev_spans']} | {row['dev_ece_before'] * 100:.1f} → "
            f"{row['dev_ece_after'] * 100:.1f} | {row['test_spans']} | {row['test_ece_before'] * 100:.1f} → "
            f"{row['test_ece_after'] * 100:.1f} |"
        )
    output.write_text("\n".join(lines) + "\n")
    output.with_suffix(".json").write_text(json.dumps({"command": command, "runs": rows}, indent=2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("training", type=Path, help="Folder of NAME/seed-S/model-best pipelines")
    parser.add_argument("--dev", type=Path, required=True, help="Held-out data to fit the temperature on")
    parser.add_argument("--test", type=Path, required=True, help="Data to measure the calibration on")
    parser.add_argument("--output", type=Path, default=Path("calibration_full.md"))
    args = parser.parse_args()
    command = " ".join(["python", "scripts/calibrate_full.py", str(args.training), "--dev", str(args.dev)])
    command += f" --test {args.test} --output {args.output}"
    models = tagger_models(args.training)
    if not models:
        raise SystemExit(f"No trained seqlab tagger under {args.training}/*/seed-*/model-best")
    rows = []
    for model in models:
        row = calibrate_run(model, args.dev, args.test)
        if "skipped" in row:
            print(f"{row['model']}: not calibrated: {row['skipped']}", flush=True)
        else:
            print(
                f"{row['model']}: T {row['temperature']:.2f}, test ECE {row['test_ece_before'] * 100:.1f} → "
                f"{row['test_ece_after'] * 100:.1f}",
                flush=True,
            )
        rows.append(row)
    write_table(rows, args.output, command)
    print(args.output.read_text())


if __name__ == "__main__":
    main()
