"""The paired bootstrap of the full-budget table: counts equal seqeval's, and the test says what it should."""

import random

import numpy
import pytest
import spacy
from spacy.tokens import Doc, Span
from spacy.training import Example

from spacy_seqlab.core.scoring import make_seqeval_scorer
from spacy_seqlab.core.significance import micro_f, paired_bootstrap, span_counts

VOCAB = spacy.blank("en").vocab


def doc_with(spans, n_tokens=8):
    doc = Doc(VOCAB, words=[f"w{i}" for i in range(n_tokens)])
    doc.set_ents([Span(doc, s, e, label=label) for s, e, label in spans], default="outside")
    return doc


def systems(n_docs=120, seed=0):
    """Gold docs with one or two entities; system `good` finds them all, `poor` finds a third of them and
    adds a wrong one where it misses."""
    rng = random.Random(seed)
    good, poor = [], []
    for i in range(n_docs):
        gold_spans = [(0, 2, "PER")] + ([(4, 5, "LOC")] if rng.random() < 0.5 else [])
        gold = doc_with(gold_spans)
        good.append(Example(doc_with(gold_spans), gold))
        poor.append(Example(doc_with(gold_spans if i % 3 == 0 else [(1, 3, "ORG")]), gold))
    return good, poor


def test_counts_give_the_seqeval_scorers_f():
    good, poor = systems()
    scorer = make_seqeval_scorer("ents", "iob2")
    for examples in (good, poor):
        counts = span_counts(examples)
        assert counts.shape == (len(examples), 3)
        assert micro_f(counts.sum(axis=0)) == pytest.approx(scorer(examples)["seqeval_f"])


def test_identical_systems_differ_by_nothing():
    _, poor = systems()
    counts = span_counts(poor)
    result = paired_bootstrap(counts, counts, samples=200)
    assert result["difference"] == 0.0 and result["low"] == 0.0 and result["high"] == 0.0
    assert result["p_value"] == 1.0


def test_a_clearly_better_system_has_an_interval_above_zero():
    good, poor = systems()
    result = paired_bootstrap(span_counts(poor), span_counts(good), samples=1000, seed=3)
    assert result["f_b"] == 1.0 and result["f_a"] < 0.5
    assert 0 < result["low"] <= result["difference"] <= result["high"]
    assert result["p_value"] < 0.01
    # Swapping the systems mirrors the result; a fixed seed repeats it.
    swapped = paired_bootstrap(span_counts(good), span_counts(poor), samples=1000, seed=3)
    assert swapped["difference"] == pytest.approx(-result["difference"])
    assert swapped["high"] == pytest.approx(-result["low"])
    assert paired_bootstrap(span_counts(poor), span_counts(good), samples=1000, seed=3) == result


def test_systems_that_differ_on_one_document_are_not_significant():
    good, _ = systems()
    counts = span_counts(good)
    worse = counts.copy()
    worse[0, 0] = 0  # one missed entity out of ~180
    result = paired_bootstrap(counts, worse, samples=500)
    assert result["low"] <= 0 <= result["high"] and result["p_value"] > 0.05


def test_mismatched_tables_are_refused():
    with pytest.raises(ValueError, match="same documents"):
        paired_bootstrap(numpy.ones((3, 3)), numpy.ones((4, 3)))
    with pytest.raises(ValueError, match="samples"):
        paired_bootstrap(numpy.ones((3, 3)), numpy.ones((3, 3)), samples=0)
