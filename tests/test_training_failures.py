"""Training under failure: misaligned gold, unknown and dev-only labels, an empty training set, a
NaN loss, and ``spacy train`` interrupted and resumed.
"""

import io
import math
import random
import subprocess
import sys
import warnings

import numpy
import pytest
import spacy
import torch
from spacy.tokens import Doc, DocBin
from spacy.training import Example
from spacy.training.initialize import init_nlp
from spacy.training.loop import train as train_loop
from thinc.api import Config

from spacy_seqlab.hf.model import hf_model_of

WORDS = ["fox", "dog", "the", "quick", "lazy", "over", "Alice", "Paris"]


def _component(factory, model_dir):
    """(factory, config) of a small, fast component of each trainable factory."""
    if factory == "seqlab_bidir_tagger":
        return {
            "model": {
                "backbone": {
                    "name": str(model_dir("llama")),
                    "unmask": "all",
                    "lora": {"r": 2},
                    "window": 32,
                    "stride": 24,
                }
            }
        }
    if factory == "seqlab_multitask_ner":
        return {
            "model": {
                "backbone": {"name": str(model_dir("bert"))},
                "signals": {"pos": {"source": "POS", "mode": "head"}},
            }
        }
    return {"model": {"name": str(model_dir("llama")), "lora": {"r": 2}}, "n_demos": 1, "max_new_tokens": 8}


FACTORIES = ["seqlab_bidir_tagger", "seqlab_multitask_ner", "seqlab_llm_sft"]


def _nlp(factory, model_dir):
    nlp = spacy.blank("en")
    nlp.add_pipe(factory, name="labeler", config=_component(factory, model_dir))
    return nlp


def _aligned(nlp, words, ents, pos=True):
    reference = Doc(
        nlp.vocab, words=words, ents=ents, pos=["PROPN" if w[0].isupper() else "NOUN" for w in words] if pos else None
    )
    predicted = nlp.make_doc(reference.text)
    for token in predicted:
        token.pos_ = "PROPN" if token.text[0].isupper() else "NOUN"
    return Example(predicted, reference)


def _misaligned(nlp):
    """Gold tokenization that the predicted one cannot map onto: "Alices" is one predicted token
    but two gold tokens ("Alice" B-PER, "s" O); "Paris-based" is three predicted tokens, one gold token."""
    examples = []
    for words, spaces, ents in [
        (["Alice", "s", "dog", "met", "Bob"], [False, True, True, True, False], ["B-PER", "O", "O", "O", "B-PER"]),
        (
            ["a", "Paris-based", "firm", "near", "Paris"],
            [True, True, True, True, False],
            ["O", "B-LOC", "O", "O", "B-LOC"],
        ),
    ]:
        reference = Doc(nlp.vocab, words=words, spaces=spaces, ents=ents, pos=["NOUN"] * len(words))
        predicted = nlp.make_doc(reference.text)
        for token in predicted:
            token.pos_ = "NOUN"
        examples.append(Example(predicted, reference))
    assert [len(eg.predicted) for eg in examples] == [4, 7]
    return examples


def _train_examples(nlp):
    return [
        _aligned(nlp, ["Alice", "met", "Bob", "in", "Paris"], ["B-PER", "O", "B-PER", "O", "B-LOC"]),
        _aligned(nlp, ["the", "dog", "saw", "Alice"], ["O", "O", "O", "B-PER"]),
    ] + _misaligned(nlp)


@pytest.mark.parametrize("factory", FACTORIES)
def test_misaligned_gold_trains_and_evaluates(tiny_model_dir, factory):
    nlp = _nlp(factory, tiny_model_dir)
    examples = _train_examples(nlp)
    optimizer = nlp.initialize(lambda: examples)
    for _ in range(2):
        losses = nlp.update(examples, sgd=optimizer)
        assert math.isfinite(losses["labeler"]) and losses["labeler"] > 0
    scores = nlp.evaluate(examples)
    assert 0.0 <= scores["seqeval_f"] <= 1.0 and 0.0 <= scores["ents_f"] <= 1.0


def test_misaligned_gold_tokens_carry_no_loss(tiny_model_dir):
    nlp = _nlp("seqlab_bidir_tagger", tiny_model_dir)
    examples = _misaligned(nlp)
    nlp.initialize(lambda: examples)
    tagger = nlp.get_pipe("labeler")
    scores = tagger.model.predict([eg.predicted for eg in examples])
    _, d_scores = tagger.get_loss(examples, scores)
    # "Alices" straddles a gold entity boundary: unknown, so no gradient; "Bob" is known.
    assert not d_scores.tags[0][0].any() and d_scores.tags[0][3].any()
    # "Paris-based" is one gold B-LOC over three predicted tokens: B-LOC I-LOC I-LOC is known.
    assert all(d_scores.tags[1][i].any() for i in (1, 2, 3))


@pytest.mark.parametrize("factory", ["seqlab_bidir_tagger", "seqlab_multitask_ner"])
def test_unknown_gold_labels_are_ignored_with_a_counted_warning(tiny_model_dir, factory):
    nlp = _nlp(factory, tiny_model_dir)
    examples = _train_examples(nlp)
    # Labels given in [initialize.components]: LOC, in the data, is unknown to the model.
    nlp.config["initialize"]["components"] = {"labeler": {"labels": ["PER"]}}
    optimizer = nlp.initialize(lambda: examples)
    assert nlp.get_pipe("labeler").labels == ("PER",)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        losses = nlp.update(examples, sgd=optimizer)
    assert math.isfinite(losses["labeler"])
    messages = [str(w.message) for w in caught if "outside" in str(w.message)]
    # B-LOC of the first example, B-LOC I-LOC I-LOC and B-LOC of the misaligned "a Paris-based firm near Paris".
    assert messages == ["[labeler] 5 gold tag(s) with labels outside ['PER'] are ignored in the loss"], messages


@pytest.mark.parametrize("factory", FACTORIES)
def test_labels_unknown_to_the_model_at_evaluation_are_scored_as_missed(tiny_model_dir, factory):
    """A label seen only in dev (or never in training): evaluation works, and the label is
    reported per type with recall 0, since the model cannot predict it."""
    nlp = _nlp(factory, tiny_model_dir)
    train = [
        _aligned(nlp, ["Alice", "met", "Bob"], ["B-PER", "O", "B-PER"]),
        _aligned(nlp, ["the", "dog", "saw", "Bob"], ["O", "O", "O", "B-PER"]),
    ]
    optimizer = nlp.initialize(lambda: train)
    nlp.update(train, sgd=optimizer)
    assert nlp.get_pipe("labeler").labels == ("PER",)
    dev = [
        _aligned(nlp, ["Acme", "hired", "Alice", "in", "Paris"], ["B-ORG", "O", "B-PER", "O", "B-LOC"])
    ] + _misaligned(nlp)
    scores = nlp.evaluate(dev)
    per_type = scores["seqeval_per_type"]
    assert per_type["ORG"]["r"] == 0.0 and per_type["LOC"]["r"] == 0.0
    assert all(0.0 <= scores[key] <= 1.0 for key in ("seqeval_p", "seqeval_r", "seqeval_f"))


def _init_with_corpus(nlp, tmp_path, docs):
    DocBin(docs=docs).to_disk(tmp_path / "train.spacy")
    config = nlp.config
    config["paths"]["train"] = str(tmp_path / "train.spacy")
    config["paths"]["dev"] = str(tmp_path / "train.spacy")
    return init_nlp(config)


@pytest.mark.parametrize("factory", FACTORIES)
@pytest.mark.parametrize("labels", [False, True])
def test_empty_training_set_is_a_clear_error(tiny_model_dir, tmp_path, factory, labels):
    """What `spacy train` does (init_nlp) with an empty train.spacy: the error says the training set is empty."""
    nlp = _nlp(factory, tiny_model_dir)
    if labels:
        nlp.config["initialize"]["components"] = {"labeler": {"labels": ["PER"]}}
    with pytest.raises(ValueError, match=r"'labeler' got an empty training set.*paths\.train"):
        _init_with_corpus(nlp, tmp_path, [])


def _set_nan(pipe, factory):
    module = hf_model_of(pipe.model)
    embeddings = module.base_model.get_input_embeddings()
    with torch.no_grad():
        embeddings.weight.fill_(float("nan"))


@pytest.mark.parametrize("factory", FACTORIES)
def test_nan_loss_is_a_clear_error_naming_the_batch(tiny_model_dir, factory):
    nlp = _nlp(factory, tiny_model_dir)
    examples = _train_examples(nlp)
    optimizer = nlp.initialize(lambda: examples)
    pipe = nlp.get_pipe("labeler")
    _set_nan(pipe, factory)
    batch = examples[2:] + examples[:1]
    with pytest.raises(
        ValueError,
        match=r"Component 'labeler' got a non-finite loss .*batch of 3 docs starting with 'Alices dog met Bob'",
    ):
        nlp.update(batch, sgd=optimizer)


def test_nan_in_the_output_layer_is_caught_before_any_update(tiny_model_dir):
    nlp = _nlp("seqlab_bidir_tagger", tiny_model_dir)
    examples = _train_examples(nlp)
    optimizer = nlp.initialize(lambda: examples)
    tagger = nlp.get_pipe("labeler")
    output = tagger.model.get_ref("output_layer")
    output.set_param("b", numpy.full_like(output.get_param("b"), numpy.nan))
    lora_before = {n: p.detach().clone() for n, p in hf_model_of(tagger.model).named_parameters() if p.requires_grad}
    with pytest.raises(ValueError, match="non-finite loss"):
        nlp.update(examples, sgd=optimizer)
    after = dict(hf_model_of(tagger.model).named_parameters())
    assert all(torch.equal(lora_before[n], after[n]) for n in lora_before)  # no NaN gradient reached the weights


# -- spacy train: interrupted, then resumed from model-last -----------------------------------


def _right_context_docs(vocab, n, seed):
    """The label of token i says whether token i+1 is "dog" (learnable only with right context)."""
    rng = random.Random(seed)
    docs = []
    for _ in range(n):
        words = [rng.choice(WORDS) for _ in range(8)]
        ents = ["B-NEXT" if i + 1 < len(words) and words[i + 1] == "dog" else "O" for i in range(len(words))]
        docs.append(Doc(vocab, words=words, ents=ents))
    return docs


def _tagger_weights(nlp):
    tagger = nlp.get_pipe("labeler")
    params = {name: p.detach().clone() for name, p in hf_model_of(tagger.model).named_parameters() if "lora" in name}
    params["W"] = torch.from_numpy(numpy.array(tagger.model.get_ref("output_layer").get_param("W")))
    return params


# Loaded by `spacy train --code`: Ctrl+C (SIGINT to the process itself) at a given step, so that
# the interrupt never depends on how fast the machine trains.
INTERRUPT_CALLBACK = """
import os, signal
import spacy

@spacy.registry.callbacks("test.interrupt_at_step.v1")
def make_interrupt(step: int):
    def before_update(nlp, info):
        if info["step"] == step:
            # As in a terminal: a process started in the background by a shell inherits SIGINT ignored.
            signal.signal(signal.SIGINT, signal.default_int_handler)
            os.kill(os.getpid(), signal.SIGINT)
    return before_update
"""


def test_spacy_train_interrupted_then_resumed_from_model_last(tiny_model_dir, tmp_path):
    nlp = _nlp("seqlab_bidir_tagger", tiny_model_dir)
    train = _right_context_docs(nlp.vocab, 24, seed=0) + [eg.reference for eg in _misaligned(nlp)]
    dev = _right_context_docs(nlp.vocab, 6, seed=1)
    dev.append(
        Doc(nlp.vocab, words=["Acme", "hired", "the", "dog"], ents=["B-ORG", "O", "B-NEXT", "O"])
    )  # ORG: a dev-only label
    DocBin(docs=train).to_disk(tmp_path / "train.spacy")
    DocBin(docs=dev).to_disk(tmp_path / "dev.spacy")
    config = nlp.config
    config["paths"]["train"] = str(tmp_path / "train.spacy")
    config["paths"]["dev"] = str(tmp_path / "dev.spacy")
    config["training"]["max_steps"] = 100_000  # runs until interrupted
    config["training"]["patience"] = 0  # never stops on its own
    config["training"]["eval_frequency"] = 4
    config["training"]["batcher"]["size"] = 8
    # Ctrl+C before step 9's update: after the evaluations of steps 0, 4 and 8.
    config["training"]["before_update"] = {"@callbacks": "test.interrupt_at_step.v1", "step": 9}
    config.to_disk(tmp_path / "config.cfg")
    (tmp_path / "interrupt.py").write_text(INTERRUPT_CALLBACK)
    out = tmp_path / "out"
    command = [sys.executable, "-m", "spacy", "train", str(tmp_path / "config.cfg"), "--output", str(out)]
    process = subprocess.Popen(
        [*command, "--code", str(tmp_path / "interrupt.py")],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        output, _ = process.communicate(timeout=600)  # a guard against a hang, not a measure of speed
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, output[-3000:]  # stopped by the interrupt (128 + SIGINT)
    assert (out / "model-best" / "meta.json").exists(), output[-3000:]

    # The interrupted run left a complete model-last, scored on dev with the dev-only label missed.
    last = out / "model-last"
    interrupted = spacy.load(last)
    performance = spacy.util.load_meta(last / "meta.json")["performance"]
    assert performance["seqeval_per_type"]["ORG"]["r"] == 0.0
    assert interrupted.get_pipe("labeler").labels == ("LOC", "NEXT", "PER")  # labels come from train only
    saved = _tagger_weights(interrupted)
    assert saved["W"].abs().sum() > 0  # trained (a fresh output layer is all zeros)

    # Resume: the same config with the component sourced from model-last.
    resume = Config().from_disk(tmp_path / "config.cfg")
    resume["components"]["labeler"] = {"source": str(last)}
    resume["training"]["before_update"] = None
    resume["training"]["max_steps"] = 4
    resumed_nlp = init_nlp(resume)
    start = _tagger_weights(resumed_nlp)
    assert set(start) == set(saved) and all(torch.equal(start[n], saved[n]) for n in saved), (
        "resumed from scratch, not from model-last"
    )
    texts = [doc.text for doc in dev]
    expected = [[(e.start, e.end, e.label_) for e in doc.ents] for doc in interrupted.pipe(texts)]
    assert [[(e.start, e.end, e.label_) for e in doc.ents] for doc in resumed_nlp.pipe(texts)] == expected
    (tmp_path / "resumed").mkdir()
    _, final = train_loop(resumed_nlp, tmp_path / "resumed", stdout=io.StringIO())
    moved = _tagger_weights(spacy.load(final))
    assert any(not torch.equal(moved[n], saved[n]) for n in saved)  # and training went on from there
