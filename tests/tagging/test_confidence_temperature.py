"""Temperature scaling of the span confidences: a tempered confidence is the brute-force marginal of
the chain with its scores divided by T, the decoded spans never change, the fit recovers a known
temperature, and ``seqlab-calibrate`` fits a trained tagger on held-out Docs and saves T with it."""

from importlib.metadata import entry_points

import numpy
import pytest
import spacy
from spacy.cli._util import app
from spacy.tokens import Doc, DocBin
from spacy.training import Example
from test_crf import ENTS, WORDS
from test_decoding import TAGSETS, brute_span_probability, random_case
from thinc.api import NumpyOps
from typer.testing import CliRunner

from spacy_seqlab.cli.calibrate import seqlab_calibrate, seqlab_calibrate_cli
from spacy_seqlab.core.calibration import fit_temperature
from spacy_seqlab.tagging.crf import Transitions
from spacy_seqlab.tagging.decoding import decode, span_confidences

OPS = NumpyOps()


@pytest.mark.parametrize("decoder", ["viterbi", "crf"])
@pytest.mark.parametrize("temperature", [0.5, 3.0])
def test_a_tempered_confidence_is_the_marginal_of_the_chain_divided_by_t(decoder, temperature):
    tagset = TAGSETS["iob2"]
    for seed in range(6):
        probs, transitions = random_case(seed, 4, tagset, decoder == "crf")
        (plain,) = decode(OPS, [probs], tagset, decoder, transitions=transitions)
        (tempered,) = decode(OPS, [probs], tagset, decoder, transitions=transitions, temperature=temperature)
        # Dividing every sequence's score by T keeps their order: the same tags and spans.
        numpy.testing.assert_array_equal(plain.tag_ids, tempered.tag_ids)
        log_probs = numpy.log(probs.astype("float64")) / temperature
        scaled = None
        if transitions is not None:
            arrays = (transitions.pairs, transitions.start, transitions.end)
            scaled = Transitions(*(a.astype("float64") / temperature for a in arrays))
        for s, e, label, got in zip(tempered.starts, tempered.ends, tempered.label_ids, tempered.scores):
            expected = brute_span_probability(tagset, log_probs, (s, e, label), scaled)
            assert got == pytest.approx(expected, abs=1e-5)


def test_a_higher_temperature_lowers_confident_spans_and_t_1_changes_nothing():
    tagset = TAGSETS["bioes"]
    probs, transitions = random_case(3, 5, tagset, True)
    spans = [(numpy.array([0]), numpy.array([1]), numpy.array([0]))]
    args = ([probs], tagset, spans, "crf")
    (plain,) = span_confidences(*args, transitions=transitions)
    (same,) = span_confidences(*args, transitions=transitions, temperature=1.0)
    numpy.testing.assert_array_equal(plain, same)
    scores = [span_confidences(*args, transitions=transitions, temperature=t)[0][0] for t in (0.25, 1.0, 4.0, 64.0)]
    # Towards 0 or 1 at low T; towards the marginal of the chain with every score 0 (the masks alone) at high T.
    assert abs(scores[0] - 0.5) > abs(scores[1] - 0.5)
    uniform = brute_span_probability(tagset, numpy.zeros(probs.shape), (0, 1, 0))
    assert abs(scores[3] - uniform) < 0.05 < abs(scores[1] - uniform)
    assert abs(scores[2] - uniform) < abs(scores[1] - uniform)
    with pytest.raises(ValueError, match="temperature must be a finite number above 0"):
        span_confidences(*args, transitions=transitions, temperature=0.0)


def test_the_fit_recovers_the_temperature_that_made_the_data():
    rng = numpy.random.default_rng(0)
    logits = rng.normal(scale=4.0, size=4000)
    # Each span is right with probability sigmoid(logit / 3): the raw confidences are over-confident.
    correct = rng.random(4000) < 1 / (1 + numpy.exp(-logits / 3.0))
    fit = fit_temperature(lambda t: 1 / (1 + numpy.exp(-logits / t)), correct)
    assert fit["temperature"] == pytest.approx(3.0, rel=0.1)
    assert fit["log_loss_after"] < fit["log_loss_before"] and fit["ece_after"] < fit["ece_before"]
    assert fit["n"] == 4000
    with pytest.raises(ValueError, match="No predicted spans"):
        fit_temperature(lambda t: numpy.zeros(0), [])


# Held-out Docs the memorizing tagger gets partly wrong, so that its confidences are too high.
HELD_OUT = [
    (["paris", "lives", "in", "alice"], ["B-LOC", "O", "O", "B-PER"]),
    (["york", "works", "in", "bob"], ["B-LOC", "O", "O", "B-PER"]),
    (["alice", "lives", "in", "new", "york"], ["B-PER", "O", "O", "B-LOC", "I-LOC"]),
    (["the", "city", "of", "bob"], ["O", "O", "O", "B-LOC"]),
    (["bob", "in", "paris"], ["B-PER", "O", "B-LOC"]),
    (["paris", "works"], ["B-ORG", "O"]),
]


@pytest.fixture(scope="module")
def trained_dir(tiny_model_dir, tmp_path_factory):
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")  # an upstream pipe: the command runs it before the tagger
    nlp.add_pipe(
        "seqlab_multitask_ner",
        name="ner",
        config={"model": {"decoder": "viterbi", "backbone": {"name": str(tiny_model_dir("bert")), "lora": None}}},
    )
    examples = [Example(Doc(nlp.vocab, words=w), Doc(nlp.vocab, words=w, ents=e)) for w, e in zip(WORDS, ENTS)] * 2
    optimizer = nlp.initialize(lambda: examples)
    optimizer.learn_rate = 0.01
    for _ in range(12):
        nlp.update(examples, sgd=optimizer)
    path = tmp_path_factory.mktemp("calibrate") / "pipeline"
    nlp.to_disk(path)
    held_out = tmp_path_factory.mktemp("calibrate") / "dev.spacy"
    DocBin(docs=[Doc(nlp.vocab, words=w, ents=e) for w, e in HELD_OUT]).to_disk(held_out)
    return path, held_out


def test_calibrating_a_tagger_keeps_its_spans_and_saves_the_temperature(trained_dir, tmp_path):
    path, held_out = trained_dir
    texts = [" ".join(w) for w, _ in HELD_OUT]
    before = list(spacy.load(path).pipe(texts))
    fit = seqlab_calibrate(str(path), held_out, tmp_path / "calibrated")
    # A tagger that memorized its training Docs is over-confident on Docs it gets partly wrong: T > 1.
    assert fit["component"] == "ner" and fit["temperature"] > 1.0
    assert fit["n"] == sum(len(doc.ents) for doc in before)
    assert fit["log_loss_after"] < fit["log_loss_before"]
    calibrated = spacy.load(tmp_path / "calibrated")
    assert calibrated.get_pipe("ner").cfg["confidence_temperature"] == pytest.approx(fit["temperature"])
    after = list(calibrated.pipe(texts))
    for a, b in zip(before, after):
        assert [(e.start, e.end, e.label_) for e in a.ents] == [(e.start, e.end, e.label_) for e in b.ents]
    old = numpy.concatenate([doc.spans["ner"].attrs["scores"] for doc in before])
    new = numpy.concatenate([doc.spans["ner"].attrs["scores"] for doc in after])
    assert not numpy.allclose(old, new) and ((new >= 0) & (new <= 1)).all()
    # Training the component again starts its confidences uncalibrated.
    tagger = calibrated.get_pipe("ner")
    tagger.initialize(
        lambda: [
            Example(Doc(calibrated.vocab, words=w), Doc(calibrated.vocab, words=w, ents=e)) for w, e in zip(WORDS, ENTS)
        ]
    )
    assert tagger.cfg["confidence_temperature"] == 1.0


def test_the_command_is_on_spacy_cli_and_names_bad_input(trained_dir, tmp_path):
    path, held_out = trained_dir
    (entry,) = [e for e in entry_points(group="spacy_cli") if e.name == "seqlab-calibrate"]
    assert entry.load() is seqlab_calibrate_cli

    def run(*args):
        result = CliRunner().invoke(app, ["seqlab-calibrate", *map(str, args)])
        return result.exit_code, " ".join(result.output.split())

    code, output = run(path, held_out, tmp_path / "out", "--component", "ner")
    assert code == 0, output
    assert "ECE ×100" in output and "Saved the pipeline with confidence temperature" in output
    code, output = run(path, held_out, tmp_path / "bad", "--component", "sentencizer")
    assert code == 1 and "'sentencizer' has no span confidences to calibrate" in output
    code, output = run(path, held_out, tmp_path / "bad", "--component", "tagger")
    assert code == 1 and "The pipeline has no component 'tagger'" in output
    assert not (tmp_path / "bad").exists()
