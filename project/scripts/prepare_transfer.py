"""Data for the C1 transfer experiment: news (source) and tweets (target) with the shared types PER/LOC/ORG.

News: the Lee corpus shipped in the `gensim` wheel (300 news documents), split into sentences and
labeled by en_core_web_sm (PERSON → PER, GPE/LOC → LOC, ORG → ORG). These are SILVER labels: scores
against them measure agreement with en_core_web_sm, not accuracy. Tweets: WNUT-16 under the shared
split, person → PER, geo-loc → LOC, company/sportsteam → ORG, other types dropped.
"""

import argparse
import importlib.util
import json
import random
from pathlib import Path

import spacy
from spacy.tokens import Doc, DocBin, Span
from tqdm import tqdm

from spacy_seqlab.data.conll import corpus_stats, read_conll, select_split, sentences_to_docs
from spacy_seqlab.data.resources import SPACY_PIPELINE, wnut16_path

NEWS_TYPES = {"PERSON": "PER", "GPE": "LOC", "LOC": "LOC", "ORG": "ORG"}
TWEET_TYPES = {"person": "PER", "geo-loc": "LOC", "company": "ORG", "sportsteam": "ORG"}


def lee_corpus_path() -> Path:
    spec = importlib.util.find_spec("gensim")
    if spec is None:
        raise SystemExit(
            "The news corpus comes with the gensim wheel: pip install --no-deps -r project/requirements-weights.txt"
        )
    return Path(spec.submodule_search_locations[0]) / "test" / "test_data" / "lee_background.cor"


def remap(doc: Doc, mapping: dict) -> Doc:
    doc.set_ents(
        [Span(doc, e.start, e.end, label=mapping[e.label_]) for e in doc.ents if e.label_ in mapping], default="outside"
    )
    return doc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    args.output.mkdir(parents=True, exist_ok=True)
    nlp = spacy.load(SPACY_PIPELINE)
    texts = [line.strip() for line in lee_corpus_path().read_text(encoding="utf8").splitlines() if line.strip()]
    sentences = []
    for doc in tqdm(nlp.pipe(texts), total=len(texts), desc="labeling news (silver)"):
        for sent in doc.sents:
            sentence = sent.as_doc()
            if len(sentence) > 3:
                sentences.append(remap(sentence, NEWS_TYPES))
    random.Random(args.seed).shuffle(sentences)
    n_dev = len(sentences) // 10
    news = {"news_dev": sentences[:n_dev], "news_train": sentences[n_dev:]}
    blank = spacy.blank("en")
    tweets = list(read_conll(wnut16_path()))
    stats = {}
    for name, docs in news.items():
        DocBin(docs=docs).to_disk(args.output / f"{name}.spacy")
        stats[name] = corpus_stats(docs)
    for split in ("train", "dev", "test"):
        docs = [
            remap(doc, TWEET_TYPES)
            for doc in sentences_to_docs(select_split(tweets, split, (0.7, 0.15, 0.15), args.seed), blank.vocab)
        ]
        DocBin(docs=docs).to_disk(args.output / f"tweets_{split}.spacy")
        stats[f"tweets_{split}"] = corpus_stats(docs)
    (args.output / "stats.json").write_text(json.dumps(stats, indent=2))
    for name, value in stats.items():
        print(f"{name}: {value['docs']} docs, {value['spans']} entities {value['spans_per_label']}")


if __name__ == "__main__":
    main()
