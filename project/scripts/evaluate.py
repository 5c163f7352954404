"""Evaluate a trained pipeline on a DocBin: seqeval strict IOB2 P/R/F, spaCy's scores, words/s, and
for a seqlab tagger writing ``doc.ents`` the calibration of its span confidences (ECE, reliability bins).

python scripts/evaluate.py MODEL DATA --name NAME --method M --setting S --output metrics/NAME.json
    [--predictions PRED.spacy]   # the predicted Docs as a DocBin, for a paired bootstrap (report_full.py)
"""

import argparse
import json
import os
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, Optional

import spacy
from spacy.tokens import DocBin
from spacy.training import Example
from tqdm import tqdm

from spacy_seqlab.core.calibration import calibration, span_confidence_pairs
from spacy_seqlab.core.scoring import make_seqeval_scorer
from spacy_seqlab.tagging.pipe import SequenceTagger


def span_calibration(nlp, predicted, references):
    """Calibration of the span confidences of the pipeline's seqlab tagger of ``doc.ents`` (None without one).

    The tagger stores them in ``doc.spans[its name]`` (see README, span confidences)."""
    taggers = [name for name, pipe in nlp.pipeline if isinstance(pipe, SequenceTagger) and pipe.target.kind == "ents"]
    if not taggers:
        return None
    confidences, correct = span_confidence_pairs(zip(predicted, references), taggers[-1])
    return {"component": taggers[-1], **calibration(confidences, correct)}


def evaluate_pipeline(
    model: Path,
    data: Path,
    name: str,
    method: str,
    setting: str = "",
    batch_size: int = 32,
    predictions: Optional[Path] = None,
    seed: Optional[int] = None,
) -> Dict[str, Any]:
    """The metrics of the pipeline in ``model`` on the DocBin ``data``; with ``predictions``, its
    predicted Docs are saved there as a DocBin in test order (for a paired bootstrap)."""
    nlp = spacy.load(model)
    references = list(DocBin().from_disk(data).get_docs(nlp.vocab))
    texts = [doc.text for doc in references]
    cpu_start, wall_start = os.times(), time.perf_counter()
    predicted = list(tqdm(nlp.pipe(texts, batch_size=batch_size), total=len(texts), desc=f"evaluating {name}"))
    wall = time.perf_counter() - wall_start
    cpu_end = os.times()
    cpu = (cpu_end.user - cpu_start.user) + (cpu_end.system - cpu_start.system)
    examples = [Example(p, r) for p, r in zip(predicted, references)]
    scores = make_seqeval_scorer(target="ents", scheme="iob2")(examples)
    words = sum(len(doc) for doc in references)
    meta = json.loads((model / "meta.json").read_text())
    timing_path = model.parent / "train_time.json"
    timing = json.loads(timing_path.read_text()) if timing_path.exists() else {}
    if predictions is not None:
        predictions.parent.mkdir(parents=True, exist_ok=True)
        DocBin(docs=predicted).to_disk(predictions)
    return {
        "name": name,
        "method": method,
        "setting": setting,
        "seed": seed,
        "test_data": str(data),
        "predictions": str(predictions) if predictions is not None else None,
        "test_docs": len(references),
        "test_words": words,
        "p": scores["seqeval_p"],
        "r": scores["seqeval_r"],
        "f": scores["seqeval_f"],
        "per_type": scores["seqeval_per_type"],
        "ents_f": scores["ents_f"],
        "dev_score": meta.get("performance", {}).get("seqeval_f", meta.get("performance", {}).get("ents_f")),
        "train_seconds": timing.get("train_seconds"),
        "words_per_second": words / wall if wall else None,
        "words_per_cpu_second": words / cpu if cpu else None,
        "calibration": span_calibration(nlp, predicted, references),
        # Tables list runs in this order: file times do not survive a git checkout.
        "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def write_metrics(result: Dict[str, Any], output: Path) -> None:
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(result, indent=2))
    print(
        f"{result['name']}: P {result['p']:.3f} R {result['r']:.3f} F {result['f']:.3f}, "
        f"{result['words_per_second']:.0f} words/s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("model", type=Path)
    parser.add_argument("data", type=Path)
    parser.add_argument("--name", required=True)
    parser.add_argument("--method", required=True)
    parser.add_argument("--setting", default="")
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--gpu-id", type=int, default=-1)
    parser.add_argument("--predictions", type=Path, help="Save the predicted Docs here as a DocBin (test order)")
    parser.add_argument("--seed", type=int, help="The training seed, recorded in the metrics")
    args = parser.parse_args()
    if args.gpu_id >= 0:
        spacy.require_gpu(args.gpu_id)
    result = evaluate_pipeline(
        args.model, args.data, args.name, args.method, args.setting, args.batch_size, args.predictions, args.seed
    )
    write_metrics(result, args.output)


if __name__ == "__main__":
    main()
