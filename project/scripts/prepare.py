"""Prepare the corpora as DocBins, with stats: WNUT-16's shared train/dev/test split (or CoNLL files).

The shipped configs read `.spacy` DocBins from `--paths.train/--paths.dev` (spaCy's `spacy.Corpus.v1`);
training sizes are set by `corpora.*.limit` overrides (the first N docs of a split). This step writes
`train.spacy` and `dev.spacy` for training, `test.spacy` (and its first N docs for the slow generative
method) for evaluation, and prints what was prepared.
"""

import argparse
import json
from pathlib import Path
from typing import Dict, List

import spacy
from spacy.tokens import Doc, DocBin

from spacy_seqlab.data.conll import ConllSentence, corpus_stats, read_conll, select_split, sentences_to_docs
from spacy_seqlab.data.resources import wnut16_path

SPLITS = ("train", "dev", "test")


def read_splits(args: argparse.Namespace) -> Dict[str, List[ConllSentence]]:
    """WNUT-16's shared split (seed ``args.seed``), each split replaced by a CoNLL file where one is given."""
    wnut16 = list(read_conll(wnut16_path()))
    files = {"train": args.conll_train, "dev": args.conll_dev, "test": args.conll_test}
    return {
        split: list(read_conll(files[split])) if files[split] else select_split(wnut16, split, seed=args.seed)
        for split in SPLITS
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument("--test-size", type=int, default=0, help="Tweets of the test split to keep (0: all 360)")
    parser.add_argument(
        "--sft-test-size", type=int, default=120, help="The first N test docs, for the slow generative method (0: all)"
    )
    parser.add_argument("--conll-train", default="", help="A CoNLL file to train on instead of WNUT-16")
    parser.add_argument("--conll-dev", default="", help="A CoNLL file to evaluate on during training instead")
    parser.add_argument("--conll-test", default="", help="A CoNLL file to test on instead of WNUT-16")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    nlp = spacy.blank("en")
    splits = read_splits(args)
    if args.test_size:
        splits["test"] = splits["test"][: args.test_size]
    docs: Dict[str, List[Doc]] = {
        split: sentences_to_docs(sentences, nlp.vocab, target="ents", scheme="auto")
        for split, sentences in splits.items()
    }
    docs["test_sft"] = docs["test"][: args.sft_test_size] if args.sft_test_size else docs["test"]
    args.output.mkdir(parents=True, exist_ok=True)
    for name, split_docs in docs.items():
        DocBin(docs=split_docs).to_disk(args.output / f"{name}.spacy")
    source = args.conll_test or f"WNUT-16 test split (seed {args.seed})"
    stats = {"source": source, **{name: corpus_stats(split_docs) for name, split_docs in docs.items()}}
    (args.output / "stats.json").write_text(json.dumps(stats, indent=2))
    for name in ("train", "dev"):
        origin = getattr(args, f"conll_{name}") or f"WNUT-16 {name} split (seed {args.seed})"
        print(f"{origin}: {stats[name]['docs']} docs, {stats[name]['spans']} entities -> {name}.spacy")
    print(
        f"{source}: {stats['test']['docs']} docs, {stats['test']['words']} words, {stats['test']['spans']} entities "
        f"(generative method: first {stats['test_sft']['docs']} docs)"
    )


if __name__ == "__main__":
    main()
