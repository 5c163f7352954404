"""scripts/prepare_chunks.py: the second task of C2's task-dependence claim, silver NP chunks on news sentences."""

import json
import sys
from pathlib import Path

import pytest
import spacy
from spacy.tokens import Doc, DocBin

SCRIPTS = Path(__file__).parents[2] / "project" / "scripts"
sys.path.insert(0, str(SCRIPTS))
import prepare_chunks  # noqa: E402

sys.path.remove(str(SCRIPTS))


def test_news_sentences_become_np_chunk_splits(tmp_path):
    stats = prepare_chunks.main(["--output", str(tmp_path), "--max-docs", "8", "--test-size", "6"])
    vocab = spacy.blank("en").vocab
    splits = {name: list(DocBin().from_disk(tmp_path / f"{name}.spacy").get_docs(vocab)) for name in stats}
    assert len(splits["test"]) == 6 and len(splits["train"]) > len(splits["dev"]) > 0
    texts = [doc.text for docs in splits.values() for doc in docs]
    assert len(set(texts)) == len(texts)  # every sentence in one split only
    for docs in splits.values():
        for doc in docs:
            # The silver entities are gone; every span is a noun chunk, headed by a noun or pronoun.
            assert {ent.label_ for ent in doc.ents} <= {"NP"}
            assert [(e.start, e.end) for e in doc.ents] == [(c.start, c.end) for c in doc.noun_chunks]
            assert all(ent.root.pos_ in ("NOUN", "PROPN", "PRON", "NUM", "ADJ", "X") for ent in doc.ents)
    assert sum(len(doc.ents) for doc in splits["train"]) == stats["train"]["spans"] > 0
    assert json.loads((tmp_path / "stats.json").read_text()) == stats


def test_a_test_split_that_leaves_nothing_to_train_on_is_refused():
    docs = [Doc(spacy.blank("en").vocab, words=["a", "b"]) for _ in range(20)]
    assert [len(part) for part in prepare_chunks.split(docs, 5, 0.1).values()] == [5, 2, 13]
    with pytest.raises(SystemExit, match="--test-size 18 and --dev-fraction 0.1 leave no training sentences"):
        prepare_chunks.split(docs, 18, 0.1)
