"""Data for the C1 transfer experiment: news (source) and tweets (target) with the shared types PER/LOC/ORG.

News: the Lee corpus shipped in the `gensim` wheel (300 news documents), split into sentences and
labeled by en_core_web_sm (PERSON → PER, GPE/LOC → LOC, ORG → ORG). These are SILVER labels: scores
against them measure agreement with en_core_web_sm, not accuracy. Tweets: WNUT-16 under the shared
split, person → PER, geo-loc → LOC, company/sportsteam → ORG, other types dropped.
"""

import argparse
import json
import random
from pathlib import Path
from typing import List, Optional

import spacy
from spacy.tokens import Doc, DocBin, Span
from tqdm import tqdm

from spacy_seqlab.data.conll import corpus_stats, read_conll, select_split, sentences_to_docs
from spacy_seqlab.data.resources import SPACY_PIPELINE, ResourceNotInstalled, lee_news_path, wnut16_path

NEWS_TYPES = {"PERSON": "PER", "GPE": "LOC", "LOC": "LOC", "ORG": "ORG"}
TWEET_TYPES = {"person": "PER", "geo-loc": "LOC", "company": "ORG", "sportsteam": "ORG"}


def news_sentences(seed: int, max_docs: Optional[int] = None) -> List[Doc]:
    """The Lee news corpus (its first ``max_docs`` documents) as sentence Docs annotated by en_core_web_sm (tags,
    parse, entities), shuffled by ``seed``; sentences of three tokens or fewer are dropped (headlines, debris)."""
    try:
        path = lee_news_path()
    except ResourceNotInstalled as error:
        raise SystemExit(str(error)) from None
    nlp = spacy.load(SPACY_PIPELINE)
    texts = [line.strip() for line in path.read_text(encoding="utf8").splitlines() if line.strip()][:max_docs]
    sentences = []
    for doc in tqdm(nlp.pipe(texts), total=len(texts), desc="labeling news (silver)"):
        sentences.extend(sent.as_doc() for sent in doc.sents if len(sent) > 3)
    random.Random(seed).shuffle(sentences)
    return sentences


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
    sentences = [remap(sentence, NEWS_TYPES) for sentence in news_sentences(args.seed)]
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
