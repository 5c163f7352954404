"""Prepare the evaluation corpora: the shared WNUT-16 test split (or a CoNLL file) as DocBins, with stats.

Training reads WNUT-16 directly through `spacy_seqlab.WNUT16Corpus.v1` (sizes set by `limit`
overrides); this step writes what evaluation reads, and prints what was prepared.
"""

import argparse
import json
from pathlib import Path

import spacy
from spacy.tokens import DocBin
from tqdm import tqdm

from spacy_seqlab.data.conll import corpus_stats, read_conll, select_split, sentences_to_docs
from spacy_seqlab.data.resources import wnut16_path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument("--test-size", type=int, default=0, help="Tweets of the test split to keep (0: all 360)")
    parser.add_argument(
        "--sft-test-size", type=int, default=120, help="The first N test docs, for the slow generative method"
    )
    parser.add_argument("--conll-test", default="", help="A CoNLL file to evaluate on instead of WNUT-16")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    nlp = spacy.blank("en")
    if args.conll_test:
        sentences = list(read_conll(args.conll_test))
        source = args.conll_test
    else:
        sentences = select_split(list(read_conll(wnut16_path())), "test", (0.7, 0.15, 0.15), args.seed)
        source = "WNUT-16 test split (seed %d)" % args.seed
    if args.test_size:
        sentences = sentences[: args.test_size]
    docs = [
        doc
        for doc in tqdm(
            sentences_to_docs(sentences, nlp.vocab, target="ents", scheme="auto"),
            desc="test docs",
            total=len(sentences),
        )
    ]
    args.output.mkdir(parents=True, exist_ok=True)
    DocBin(docs=docs).to_disk(args.output / "test.spacy")
    DocBin(docs=docs[: args.sft_test_size]).to_disk(args.output / "test_sft.spacy")
    stats = {"source": source, "test": corpus_stats(docs), "test_sft": corpus_stats(docs[: args.sft_test_size])}
    (args.output / "stats.json").write_text(json.dumps(stats, indent=2))
    print(
        f"{source}: {stats['test']['docs']} docs, {stats['test']['words']} words, {stats['test']['spans']} entities "
        f"(generative method: first {stats['test_sft']['docs']} docs)"
    )


if __name__ == "__main__":
    main()
