"""Decoding: Viterbi is always well-formed and equals brute-force search; span confidences are the
brute-force marginal probabilities; argmax is today's argmax + repair; plain tags decode by argmax.

The oracle is enumeration of every tag sequence of short Docs, scored from the definitions.
"""

import itertools

import numpy
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from thinc.api import NumpyOps

from spacy_seqlab.core.schemes import TagSet, repair_tags, tags_to_spans
from spacy_seqlab.tagging.crf import Transitions
from spacy_seqlab.tagging.decoding import decode, span_confidences
from spacy_seqlab.tagging.model import TaggerSettings

OPS = NumpyOps()
TAGSETS = {"iob2": TagSet(["PER", "LOC"], "iob2"), "bioes": TagSet(["PER"], "bioes")}


def softmax(logits):
    e = numpy.exp(logits - logits.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def sequence_scores(tagset, log_probs, transitions=None):
    """Every tag sequence of one Doc with its score; disallowed sequences are left out."""
    allowed, first, last = tagset.transition_mask()
    k, n = len(tagset), len(log_probs)
    pairs, start, end = (
        (transitions.pairs, transitions.start, transitions.end)
        if transitions is not None
        else (numpy.zeros((k, k)), numpy.zeros(k), numpy.zeros(k))
    )
    for seq in itertools.product(range(k), repeat=n):
        if not (first[seq[0]] and last[seq[-1]] and all(allowed[a, b] for a, b in zip(seq, seq[1:]))):
            continue
        score = start[seq[0]] + end[seq[-1]] + sum(log_probs[t, y] for t, y in enumerate(seq))
        yield seq, score + sum(pairs[a, b] for a, b in zip(seq, seq[1:]))


def brute_span_probability(tagset, log_probs, span, transitions=None):
    """P(the span's tokens carry exactly its tags and the next token does not continue it)."""
    start, end, label = span
    run = tagset.span_tag_ids(end - start, numpy.array([0]), numpy.array([end - start]), numpy.array([label]))
    continues = tagset.continuation_mask()
    total = hit = 0.0
    for seq, score in sequence_scores(tagset, log_probs, transitions):
        p = numpy.exp(score)
        total += p
        if tuple(seq[start:end]) == tuple(run) and (end == len(seq) or not continues[seq[end - 1], seq[end]]):
            hit += p
    return hit / total


def random_case(seed, n, tagset, with_transitions):
    rng = numpy.random.default_rng(seed)
    probs = softmax(rng.normal(scale=2.0, size=(n, len(tagset)))).astype("float32")
    k = len(tagset)
    transitions = (
        Transitions(*(rng.normal(size=shape).astype("float32") for shape in ((k, k), (k,), (k,))))
        if with_transitions
        else None
    )
    return probs, transitions


def is_well_formed(tagset, ids):
    tags = [tagset.tags[i] for i in ids]
    return repair_tags(tags, tagset.scheme, repair="strict") == tags


@settings(max_examples=60, deadline=None)
@given(
    scheme=st.sampled_from(["iob2", "bioes"]),
    lengths=st.lists(st.integers(0, 12), min_size=1, max_size=4),
    seed=st.integers(0, 2**16),
    decoder=st.sampled_from(["viterbi", "crf"]),
)
def test_viterbi_and_crf_decoding_is_always_well_formed(scheme, lengths, seed, decoder):
    tagset = TAGSETS[scheme]
    rng = numpy.random.default_rng(seed)
    # Peaked, adversarial scores: lone I/E tags are often each token's best tag.
    probs = [softmax(rng.normal(scale=6.0, size=(n, len(tagset)))).astype("float32") for n in lengths]
    _, transitions = random_case(seed, 1, tagset, decoder == "crf")
    decoded = decode(OPS, probs, tagset, decoder, transitions=transitions)
    for doc, p in zip(decoded, probs):
        assert len(doc.tag_ids) == len(p) and is_well_formed(tagset, doc.tag_ids)
        # The spans are exactly the tag sequence's chunks, and their confidences are probabilities.
        assert tagset.span_tag_ids(len(p), doc.starts, doc.ends, doc.label_ids).tolist() == doc.tag_ids.tolist()
        assert len(doc.scores) == len(doc.starts) and ((doc.scores >= 0) & (doc.scores <= 1)).all()


@pytest.mark.parametrize("scheme", ["iob2", "bioes"])
@pytest.mark.parametrize("decoder", ["viterbi", "crf"])
def test_viterbi_equals_brute_force_search(scheme, decoder):
    tagset = TAGSETS[scheme]
    for seed in range(12):
        n = 1 + seed % 4
        probs, transitions = random_case(seed, n, tagset, decoder == "crf")
        (doc,) = decode(OPS, [probs], tagset, decoder, transitions=transitions)
        scored = dict(sequence_scores(tagset, numpy.log(probs.astype("float64")), transitions))
        assert scored[tuple(doc.tag_ids)] == pytest.approx(max(scored.values()), abs=1e-4)


@pytest.mark.parametrize("scheme", ["iob2", "bioes"])
@pytest.mark.parametrize("decoder", ["viterbi", "crf", "argmax"])
def test_span_confidences_are_the_brute_force_marginals(scheme, decoder):
    tagset = TAGSETS[scheme]
    checked = 0
    for seed in range(10):
        probs, transitions = random_case(seed, 4, tagset, decoder == "crf")
        # Spans a decoder would pick and spans it would not: every chunk of random well-formed tags.
        rng = numpy.random.default_rng(seed)
        ids = rng.integers(0, len(tagset), size=4)
        starts, ends, labels = tagset.chunks(ids, repair="lenient")
        (scores,) = span_confidences([probs], tagset, [(starts, ends, labels)], decoder, transitions=transitions)
        log_probs = numpy.log(probs.astype("float64"))
        for s, e, lab, got in zip(starts, ends, labels, scores):
            assert got == pytest.approx(brute_span_probability(tagset, log_probs, (s, e, lab), transitions), abs=1e-5)
            checked += 1
        (doc,) = decode(OPS, [probs], tagset, decoder, transitions=transitions)
        (again,) = span_confidences(
            [probs], tagset, [(doc.starts, doc.ends, doc.label_ids)], decoder, transitions=transitions
        )
        numpy.testing.assert_allclose(doc.scores, again, atol=1e-6)
    assert checked > 10


def test_batched_decoding_equals_one_doc_at_a_time():
    tagset = TAGSETS["iob2"]
    rng = numpy.random.default_rng(3)
    probs = [softmax(rng.normal(scale=3.0, size=(n, len(tagset)))).astype("float32") for n in (7, 0, 1, 12, 3)]
    _, transitions = random_case(0, 1, tagset, True)
    for decoder in ("viterbi", "crf", "argmax"):
        together = decode(OPS, probs, tagset, decoder, transitions=transitions)
        for p, doc in zip(probs, together):
            (alone,) = decode(OPS, [p], tagset, decoder, transitions=transitions)
            assert doc.tag_ids.tolist() == alone.tag_ids.tolist()
            numpy.testing.assert_allclose(doc.scores, alone.scores, rtol=1e-5)


def test_argmax_is_each_tokens_best_tag_read_with_repair():
    tagset = TAGSETS["iob2"]
    tags = ["I-PER", "I-PER", "O", "B-LOC", "I-PER"]  # each token's best tag: ill-formed
    probs = numpy.full((5, len(tagset)), 0.02, dtype="float32")
    probs[numpy.arange(5), tagset.encode(tags)] = 0.92
    for repair in ("strict", "lenient"):
        (doc,) = decode(OPS, [probs], tagset, "argmax", repair=repair)
        assert doc.tag_ids.tolist() == tagset.encode(tags).tolist()
        spans = [(int(s), int(e), tagset.labels[lab]) for s, e, lab in zip(doc.starts, doc.ends, doc.label_ids)]
        assert spans == tags_to_spans(tags, "iob2", repair=repair)
    # Viterbi finds the best well-formed sequence instead: B-PER I-PER beats any lone I-PER reading.
    (best,) = decode(OPS, [probs], tagset, "viterbi")
    assert [tagset.tags[i] for i in best.tag_ids] == ["B-PER", "I-PER", "O", "B-LOC", "O"]


def test_plain_tags_decode_by_argmax_without_spans():
    tagset = TagSet(["NOUN", "VERB", "DET"], "tags")
    rng = numpy.random.default_rng(0)
    probs = [softmax(rng.normal(size=(n, 3))).astype("float32") for n in (4, 0, 6)]
    for decoder in ("viterbi", "argmax"):
        for doc, p in zip(decode(OPS, probs, tagset, decoder), probs):
            assert doc.tag_ids.tolist() == p.argmax(axis=1).tolist() and len(doc.scores) == 0
    with pytest.raises(ValueError, match="has no spans"):
        span_confidences(probs, tagset, [], "viterbi")


def test_the_decoder_setting_is_validated_by_name():
    assert TaggerSettings().decoder == "viterbi"
    with pytest.raises(ValueError, match=r"^decoder must be one of viterbi, crf, argmax, got 'beam'"):
        TaggerSettings(decoder="beam")
    with pytest.raises(ValueError, match="decoder must be one of"):
        decode(OPS, [numpy.ones((1, 5), dtype="float32") / 5], TAGSETS["iob2"], "greedy")
    with pytest.raises(ValueError, match="decoder crf needs the model's transition scores"):
        decode(OPS, [numpy.ones((1, 5), dtype="float32") / 5], TAGSETS["iob2"], "crf")
