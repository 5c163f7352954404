"""Signals from any spaCy token attribute: lexical ones (casing, shape, affixes) and an upstream ner's."""

from pathlib import Path

import numpy
import pytest
import spacy
from spacy.tokens import Doc, Span
from spacy.training import Example

from spacy_seqlab.tagging.signals import MissingSignalError, SignalVocab, learn_values, signal_ids, signal_values

WORDS = ["Alice", "lives", "in", "Paris"]
# Pairs of Docs that the tiny uncased backbone reads alike (same lowercased words) but that differ in the
# signal's value at the last token: the signal alone must change that token's scores.
VARIANTS = {
    "IS_TITLE": (["alice", "lives", "in", "Paris"], ["alice", "lives", "in", "paris"]),
    "IS_UPPER": (["alice", "lives", "in", "PARIS"], ["alice", "lives", "in", "paris"]),
    "SHAPE": (["alice", "lives", "in", "Paris"], ["alice", "lives", "in", "PARIS"]),
    "PREFIX": (["alice", "lives", "in", "Paris"], ["alice", "lives", "in", "paris"]),
    "SUFFIX": (["alice", "lives", "in", "PARIS"], ["alice", "lives", "in", "paris"]),
}
# An upstream ner's annotation of the same words: (ENT_IOB, ENT_TYPE) pairs differing at the last token.
NER_VARIANTS = {
    "ENT_IOB": (["B-PERSON", "O", "O", "B-GPE"], ["B-PERSON", "O", "O", "O"]),
    "ENT_TYPE": (["B-PERSON", "O", "O", "B-GPE"], ["B-PERSON", "O", "O", "B-ORG"]),
}


def _casings(word, i):
    return [word.lower(), word.title(), word.upper()][i % 3]


def _examples(vocab, n=12, with_ents=True):
    """Training examples: gold PER on the first name; the predicted Docs carry an upstream ner's ents."""
    examples = []
    for i in range(n):
        words = [_casings(w, i + j) for j, w in enumerate(WORDS)]
        upstream = ["B-PERSON", "O", "O", ["B-GPE", "B-ORG", "O"][i % 3]] if with_ents else None
        predicted = Doc(vocab, words=words, ents=upstream)
        examples.append(Example(predicted, Doc(vocab, words=words, ents=["B-PER", "O", "O", "O"])))
    return examples


def _tagger(tiny_model_dir, signals, with_ents=True):
    nlp = spacy.blank("en")
    config = {"model": {"backbone": {"name": str(tiny_model_dir("bert"))}, "signals": signals}}
    tagger = nlp.add_pipe("seqlab_multitask_ner", config=config)
    examples = _examples(nlp.vocab, with_ents=with_ents)
    nlp.initialize(lambda: examples)
    # The output layer starts at zero: give it weights so that every input feature reaches the scores.
    output = tagger.model.get_ref("output_layer")
    output.set_param("W", numpy.random.default_rng(0).normal(size=output.get_param("W").shape).astype("float32"))
    return nlp, tagger


def _assert_only_last_token_differs(tagger, a, b):
    scores_a, scores_b = tagger.model.predict([a, b]).tags
    assert not numpy.allclose(scores_a[-1], scores_b[-1], atol=1e-5)
    numpy.testing.assert_allclose(scores_a[:-1], scores_b[:-1], atol=1e-6)


@pytest.mark.parametrize("source", sorted(VARIANTS))
def test_lexical_signal_is_read_and_changes_the_scores(tiny_model_dir, source):
    nlp, tagger = _tagger(tiny_model_dir, {"x": {"source": source, "width": 4}}, with_ents=False)
    a, b = (Doc(nlp.vocab, words=words) for words in VARIANTS[source])
    assert signal_values(a, source)[-1] != signal_values(b, source)[-1]
    _assert_only_last_token_differs(tagger, a, b)
    # Lexical attributes need no upstream pipe: a blank pipeline labels raw text.
    assert len(list(nlp.pipe(["Bob works in Rome", ""]))) == 2


@pytest.mark.parametrize("source", sorted(NER_VARIANTS))
def test_upstream_ner_signal_is_read_changes_the_scores_and_is_required(tiny_model_dir, source):
    nlp, tagger = _tagger(tiny_model_dir, {"ner": {"source": source, "width": 4}})
    a, b = (Doc(nlp.vocab, words=["alice", "lives", "in", "paris"], ents=ents) for ents in NER_VARIANTS[source])
    expected = {"ENT_IOB": ("B", "O"), "ENT_TYPE": ("GPE", "ORG")}[source]
    assert (signal_values(a, source)[-1], signal_values(b, source)[-1]) == expected
    _assert_only_last_token_differs(tagger, a, b)
    with pytest.raises(MissingSignalError, match="add an 'ner' component .* before 'seqlab_multitask_ner'"):
        nlp("alice lives in paris")


def test_upstream_ner_signal_without_any_annotation_is_named_at_initialize(tiny_model_dir):
    with pytest.raises(MissingSignalError, match="ENT_TYPE.*'ner'.*found in no training Doc"):
        _tagger(tiny_model_dir, {"ner": {"source": "ENT_TYPE"}}, with_ents=False)


@pytest.mark.parametrize("source", ["IS_TITEL", "IDX", "FLAG20", "SHAPE:Case", "ent_type"])
def test_unknown_attribute_is_named(tiny_model_dir, source):
    with pytest.raises(Exception, match=f"Unknown signal source '{source}'"):
        nlp = spacy.blank("en")
        config = {"model": {"backbone": {"name": str(tiny_model_dir("bert"))}, "signals": {"x": {"source": source}}}}
        nlp.add_pipe("seqlab_multitask_ner", config=config)


def test_batch_reading_equals_reading_each_doc():
    nlp = spacy.blank("en")
    docs = [ex.predicted for ex in _examples(nlp.vocab, n=5)] + [Doc(nlp.vocab, words=[]), nlp("see http://x.io NOW")]
    docs[0].spans["k"] = [Span(docs[0], 1, 3, label="R")]
    for doc in docs[1:]:
        doc.spans["k"] = []
    docs[-1].set_ents([], default="outside")
    for source in ("SHAPE", "IS_TITLE", "LIKE_URL", "LOWER", "LENGTH", "ENT_IOB", "ENT_TYPE", "spans:k"):
        vocab = SignalVocab(learn_values(docs[:3], source))  # values of the other Docs are unknown (id 0)
        one_by_one = numpy.concatenate([vocab.encode(signal_values(doc, source)) for doc in docs])
        numpy.testing.assert_array_equal(signal_ids(docs, source, vocab), one_by_one)
    assert signal_values(docs[-1], "LIKE_URL") == ["0", "1", "0"]
    assert signal_values(docs[-1], "SHAPE") == ["xxx", "xxxx://x.xx", "XXX"]


def test_signals_are_saved_and_loaded(tiny_model_dir):
    signals = {"shape": {"source": "SHAPE", "width": 4}, "ner": {"source": "ENT_TYPE", "mode": "both", "width": 4}}
    nlp, tagger = _tagger(tiny_model_dir, signals)
    data = nlp.to_bytes()
    copy = spacy.blank("en")
    config = {"model": {"backbone": {"name": str(tiny_model_dir("bert"))}, "signals": signals}}
    copy.add_pipe("seqlab_multitask_ner", config=config)
    copy.from_bytes(data)
    loaded = copy.get_pipe("seqlab_multitask_ner")
    assert loaded.model.attrs["signal_values"] == tagger.model.attrs["signal_values"]
    assert "Xxxxx" in loaded.model.attrs["signal_values"]["shape"]
    assert {"GPE", "ORG"} <= set(loaded.model.attrs["signal_values"]["ner"])
    docs = [Doc(copy.vocab, words=["Alice", "lives", "in", "PARIS"], ents=["B-PERSON", "O", "O", "B-GPE"])]
    for a, b in zip(tagger.model.predict(docs).tags, loaded.model.predict(docs).tags):
        numpy.testing.assert_allclose(a, b, atol=1e-6)


def test_shipped_config_reads_entity_types_from_a_sourced_en_core_web_sm_ner(tiny_model_dir, tmp_path):
    """configs/multitask_minilm_wnut16_casing_ner_cpu.cfg: IS_TITLE, SHAPE and ENT_TYPE signals, tiny backbone."""
    from spacy.tokens import DocBin
    from spacy.training.initialize import init_nlp
    from spacy.util import load_config

    from spacy_seqlab.data.conll import read_conll, select_split, sentences_to_docs
    from spacy_seqlab.data.resources import wnut16_path

    sentences = select_split(list(read_conll(wnut16_path())), "train", seed=0)[:40]
    DocBin(docs=sentences_to_docs(sentences, spacy.blank("en").vocab, target="ents", scheme="auto")).to_disk(
        tmp_path / "train.spacy"
    )
    path = Path(__file__).parents[2] / "configs" / "multitask_minilm_wnut16_casing_ner_cpu.cfg"
    overrides = {
        "components.seqlab_ner.model.backbone.name": str(tiny_model_dir("bert")),
        "paths.train": str(tmp_path / "train.spacy"),
        "paths.dev": str(tmp_path / "train.spacy"),
    }
    nlp = init_nlp(load_config(path, overrides=overrides))
    assert nlp.pipe_names == ["ner", "seqlab_ner"]
    values = nlp.get_pipe("seqlab_ner").model.attrs["signal_values"]
    assert {"PERSON", "GPE", ""} <= set(values["ner"]) and {"0", "1"} == set(values["title"])
    text = "Obama visited London with Angela Merkel ."
    assert len(nlp(text)) == 7
    with nlp.select_pipes(disable=["ner"]), pytest.raises(MissingSignalError, match="ENT_TYPE.*add an 'ner'"):
        nlp(text)  # the tagger reads the ner's entity types: without it, an error naming it
