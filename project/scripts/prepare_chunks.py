"""A second task for C2's claim that the best unmask setting depends on the task: NP chunking on news.

The Lee news sentences of scripts/prepare_transfer.py (the same sentences, shuffled by the same seed) with
en_core_web_sm's noun chunks as spans labeled NP, in the `ents` the taggers train on. These are SILVER labels:
scores against them measure agreement with en_core_web_sm's parser, not accuracy. They serve to compare unmask
settings on one task against another, not to compare with published chunking scores (CoNLL-2000 is not on PyPI).

    python scripts/prepare_chunks.py --output corpus/chunks [--test-size 360] [--dev-fraction 0.1] [--seed 0]

Writes train.spacy, dev.spacy, test.spacy (test first, then dev, then train from the shuffled sentences) and
stats.json.
"""

import argparse
import json
from pathlib import Path
from typing import List

from prepare_transfer import news_sentences
from spacy.tokens import Doc, DocBin, Span

from spacy_seqlab.data.conll import corpus_stats

LABEL = "NP"


def chunked(doc: Doc) -> Doc:
    """``doc`` with its noun chunks, and nothing else, as entities (spaCy's English chunks never overlap)."""
    doc.set_ents([Span(doc, chunk.start, chunk.end, label=LABEL) for chunk in doc.noun_chunks], default="outside")
    return doc


def split(docs: List[Doc], test_size: int, dev_fraction: float) -> dict:
    n_dev = int(len(docs) * dev_fraction)
    if test_size + n_dev >= len(docs):
        raise SystemExit(f"--test-size {test_size} and --dev-fraction {dev_fraction} leave no training sentences")
    return {
        "test": docs[:test_size],
        "dev": docs[test_size : test_size + n_dev],
        "train": docs[test_size + n_dev :],
    }


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument("--test-size", type=int, default=360, help="test sentences (WNUT-16's test split has 360)")
    parser.add_argument("--dev-fraction", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-docs", type=int, default=None, help="read only the first N news documents (tests)")
    args = parser.parse_args(argv)
    args.output.mkdir(parents=True, exist_ok=True)
    splits = split(
        [chunked(doc) for doc in news_sentences(args.seed, max_docs=args.max_docs)], args.test_size, args.dev_fraction
    )
    stats = {}
    for name, docs in splits.items():
        DocBin(docs=docs).to_disk(args.output / f"{name}.spacy")
        stats[name] = corpus_stats(docs)
        print(f"{name}: {stats[name]['docs']} sentences, {stats[name]['spans']} NP chunks")
    (args.output / "stats.json").write_text(json.dumps(stats, indent=2))
    return stats


if __name__ == "__main__":
    main()
