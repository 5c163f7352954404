"""The CRF head: its log-partition equals brute-force enumeration, its loss's gradient equals finite
differences, batched equals one Doc at a time; a tagger with ``decoder = "crf"`` learns, saves its
transitions, and writes span confidences (saved in DocBin) that rank a correct span above a wrong one."""

import importlib.util
from pathlib import Path

import numpy
import pytest
import spacy
from spacy.tokens import Doc, DocBin
from spacy.training import Example
from test_decoding import TAGSETS, brute_span_probability, random_case, sequence_scores, softmax
from thinc.api import NumpyOps

from spacy_seqlab.tagging.chain import log_partition, pad
from spacy_seqlab.tagging.crf import Transitions, chain_scores, crf_loss
from spacy_seqlab.tagging.decoding import span_confidences

OPS = NumpyOps()
EVALUATE = Path(__file__).resolve().parents[2] / "project" / "scripts" / "evaluate.py"


def _log_z(tagset, probs, transitions):
    emissions, lengths = pad([numpy.log(p.astype("float64")) for p in probs])
    arrays = (transitions.pairs, transitions.start, transitions.end)
    return log_partition(emissions, lengths, chain_scores(tagset, "float64", arrays))


@pytest.mark.parametrize("scheme", ["iob2", "bioes"])
def test_log_partition_equals_brute_force_enumeration(scheme):
    tagset = TAGSETS[scheme]
    cases = [random_case(seed, n, tagset, True) for seed, n in enumerate([1, 2, 3, 4])]
    transitions = cases[0][1]
    probs = [p for p, _ in cases]
    got = _log_z(tagset, probs, transitions)  # one padded batch of four lengths
    for p, value in zip(probs, got):
        scores = [s for _, s in sequence_scores(tagset, numpy.log(p.astype("float64")), transitions)]
        assert value == pytest.approx(numpy.logaddexp.reduce(scores), abs=1e-6)


def _loss(tagset, logits, gold, transitions):
    probs = [softmax(x) for x in logits]
    return crf_loss(OPS, probs, gold, transitions, tagset)


def test_gradient_matches_finite_differences():
    tagset = TAGSETS["iob2"]
    rng = numpy.random.default_rng(0)
    logits = [rng.normal(size=(n, len(tagset))) for n in (4, 2)]
    # Unknown tokens (-1) are marginalized over.
    gold = [tagset.encode(["B-PER", None, "O", "B-LOC"]), tagset.encode(["O", "B-PER"])]
    _, transitions = random_case(1, 1, tagset, True)
    transitions = Transitions(*(a.astype("float64") for a in (transitions.pairs, transitions.start, transitions.end)))
    loss, d_logits, d_transitions = _loss(tagset, logits, gold, transitions)
    eps = 1e-5

    def numeric(array, index):
        saved = array[index]
        array[index] = saved + eps
        up = _loss(tagset, logits, gold, transitions)[0]
        array[index] = saved - eps
        down = _loss(tagset, logits, gold, transitions)[0]
        array[index] = saved
        return (up - down) / (2 * eps)

    for doc in range(2):
        for index in numpy.ndindex(logits[doc].shape):
            assert d_logits[doc][index] == pytest.approx(numeric(logits[doc], index), abs=1e-4)
    for name in ("pairs", "start", "end"):
        array, grad = getattr(transitions, name), getattr(d_transitions, name)
        for index in list(numpy.ndindex(array.shape))[::3]:
            assert grad[index] == pytest.approx(numeric(array, index), abs=1e-4)
    assert loss > 0


def test_batched_loss_equals_one_doc_at_a_time():
    tagset = TAGSETS["bioes"]
    rng = numpy.random.default_rng(2)
    logits = [rng.normal(size=(n, len(tagset))).astype("float32") for n in (5, 0, 1, 3)]
    gold = [
        tagset.encode(["B-PER", "E-PER", "O", None, "S-PER"]),
        tagset.encode([]),
        tagset.encode(["S-PER"]),
        tagset.encode(["O", "O", "O"]),
    ]
    _, transitions = random_case(4, 1, tagset, True)
    loss, d_logits, d_trans = _loss(tagset, logits, gold, transitions)
    total, summed = 0.0, numpy.zeros_like(d_trans.pairs)
    for x, g, d in zip(logits, gold, d_logits):
        one_loss, (one_d,), one_trans = _loss(tagset, [x], [g], transitions)
        total += one_loss
        summed += one_trans.pairs
        numpy.testing.assert_allclose(d, one_d, atol=1e-5)
    assert loss == pytest.approx(total, rel=1e-5)
    numpy.testing.assert_allclose(d_trans.pairs, summed, atol=1e-5)


def test_ill_formed_gold_is_a_clear_error():
    tagset = TAGSETS["iob2"]
    probs = [softmax(numpy.zeros((3, len(tagset)))).astype("float32")]
    _, transitions = random_case(0, 1, tagset, True)
    with pytest.raises(ValueError, match=r"not a well-formed iob2 sequence.*\['O', 'I-PER', 'O'\]"):
        crf_loss(OPS, probs, [tagset.encode(["O", "I-PER", "O"])], transitions, tagset)


WORDS = [["alice", "lives", "in", "paris"], ["bob", "works", "in", "new", "york"], ["the", "city", "of", "paris"]]
ENTS = [["B-PER", "O", "O", "B-LOC"], ["B-PER", "O", "O", "B-LOC", "I-LOC"], ["O", "O", "O", "B-LOC"]]


@pytest.fixture(scope="module")
def trained_crf(tiny_model_dir):
    nlp = spacy.blank("en")
    nlp.add_pipe(
        "seqlab_multitask_ner",
        name="ner",
        config={"model": {"decoder": "crf", "backbone": {"name": str(tiny_model_dir("bert")), "lora": None}}},
    )
    examples = [Example(Doc(nlp.vocab, words=w), Doc(nlp.vocab, words=w, ents=e)) for w, e in zip(WORDS, ENTS)] * 2
    optimizer = nlp.initialize(lambda: examples)
    optimizer.learn_rate = 0.01
    for _ in range(8):
        nlp.update(examples, sgd=optimizer)
    return nlp


def test_crf_tagger_learns_saves_its_transitions_and_stores_span_confidences(trained_crf, tmp_path):
    nlp = trained_crf
    tagger = nlp.get_pipe("ner")
    assert tagger.decoder == "crf" and tagger.model.has_ref("crf")
    pairs = tagger.model.get_ref("crf").get_param("pairs")
    assert numpy.abs(pairs).max() > 0  # the transitions were trained
    docs = list(nlp.pipe([" ".join(w) for w in WORDS]))
    assert [[(e.text, e.label_) for e in doc.ents] for doc in docs][0] == [("alice", "PER"), ("paris", "LOC")]
    for doc in docs:
        group = doc.spans["ner"]
        assert [(s.start, s.end, s.label_) for s in group] == [(e.start, e.end, e.label_) for e in doc.ents]
        scores = group.attrs["scores"]
        assert len(scores) == len(doc.ents) and ((scores >= 0) & (scores <= 1)).all()
    # The transitions travel with the pipeline, and so do the confidences in a DocBin.
    nlp.to_disk(tmp_path / "pipeline")
    loaded = spacy.load(tmp_path / "pipeline")
    numpy.testing.assert_array_equal(loaded.get_pipe("ner").model.get_ref("crf").get_param("pairs"), pairs)
    again = list(loaded.pipe([" ".join(w) for w in WORDS]))
    for a, b in zip(docs, again):
        assert [(e.start, e.end, e.label_) for e in a.ents] == [(e.start, e.end, e.label_) for e in b.ents]
        numpy.testing.assert_allclose(a.spans["ner"].attrs["scores"], b.spans["ner"].attrs["scores"], atol=1e-6)
    restored = list(DocBin().from_bytes(DocBin(docs=docs).to_bytes()).get_docs(nlp.vocab))
    for a, b in zip(docs, restored):
        numpy.testing.assert_allclose(numpy.asarray(b.spans["ner"].attrs["scores"]), a.spans["ner"].attrs["scores"])


@pytest.mark.parametrize("decoder", ["crf", "viterbi"])
def test_a_correct_span_is_more_confident_than_a_wrong_one(trained_crf, decoder):
    tagger = trained_crf.get_pipe("ner")
    doc = trained_crf.make_doc("alice lives in paris")
    output = tagger.model.predict([doc])
    tagset = tagger.tagset
    per, loc = tagset.labels.index("PER"), tagset.labels.index("LOC")
    # alice = PER (correct), lives = LOC (wrong), "alice lives" = PER (wrong boundary).
    spans = (numpy.array([0]), numpy.array([1]), numpy.array([per]))
    wrong = [
        (numpy.array([1]), numpy.array([2]), numpy.array([loc])),
        (numpy.array([0]), numpy.array([2]), numpy.array([per])),
    ]
    (right,) = span_confidences(output.tags, tagset, [spans], decoder, transitions=output.transitions)
    for candidate in wrong:
        (score,) = span_confidences(output.tags, tagset, [candidate], decoder, transitions=output.transitions)
        assert right[0] > 0.5 > score[0]
    # The stored confidence is this same number, checked against enumeration of every sequence.
    log_probs = numpy.log(numpy.asarray(output.tags[0], dtype="float64"))
    transitions = output.transitions if decoder == "crf" else None
    assert right[0] == pytest.approx(brute_span_probability(tagset, log_probs, (0, 1, per), transitions), abs=1e-4)


def test_the_project_evaluation_reports_the_calibration_of_the_span_confidences(trained_crf):
    spec = importlib.util.spec_from_file_location("evaluate", EVALUATE)
    evaluate = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(evaluate)
    references = [Doc(trained_crf.vocab, words=w, ents=e) for w, e in zip(WORDS, ENTS)]
    predicted = list(trained_crf.pipe([doc.text for doc in references]))
    result = evaluate.span_calibration(trained_crf, predicted, references)
    assert result["component"] == "ner" and result["n"] == sum(len(doc.ents) for doc in predicted)
    assert 0.0 <= result["ece"] <= 1.0 and sum(b["count"] for b in result["bins"]) == result["n"]
    assert evaluate.span_calibration(spacy.blank("en"), predicted, references) is None
