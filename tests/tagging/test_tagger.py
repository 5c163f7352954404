"""The one tagger: typed output, signal vocabularies learned by the model's initialize, the loss
(thinc's gradient equals the formula it replaced), spaCy's update, and the two factories as presets."""

import copy
import inspect
import random

import numpy
import pytest
import spacy
import torch
from spacy.pipeline import TrainablePipe
from spacy.tokens import Doc
from spacy.training import Example
from thinc.api import NumpyOps

from spacy_seqlab.core.pipe import LabeledPipe
from spacy_seqlab.hf.model import hf_model_of
from spacy_seqlab.tagging.factories import make_bidir_tagger, make_multitask_tagger
from spacy_seqlab.tagging.model import TaggerOutput
from spacy_seqlab.tagging.pipe import SequenceTagger, cross_entropy
from spacy_seqlab.tagging.signals import MissingSignalError, SignalVocab, signal_values

LEXICON = {
    "alice": "PROPN",
    "bob": "PROPN",
    "paris": "PROPN",
    "lives": "VERB",
    "in": "ADP",
    "the": "DET",
    "city": "NOUN",
}
SIGNALS = {
    "pos": {"source": "POS", "mode": "embed", "width": 4},
    "dep": {"source": "POS", "mode": "head", "loss_weight": 0.5},
}


def _examples(vocab, n=4, seed=0):
    rng = random.Random(seed)
    examples = []
    for _ in range(n):
        words = [rng.choice(["alice", "bob"]), "lives", "in", rng.choice(["paris", "the", "city"])]
        pos = [LEXICON[w] for w in words]
        reference = Doc(vocab, words=words, ents=["B-PER", "O", "O", "B-LOC" if words[-1] == "paris" else "O"], pos=pos)
        examples.append(Example(Doc(vocab, words=words, pos=pos), reference))
    return examples


def _tagger(model_dir, signals=SIGNALS, factory="seqlab_multitask_ner"):
    nlp = spacy.blank("en")
    tagger = nlp.add_pipe(
        factory,
        config={"model": {"backbone": {"name": str(model_dir), "lora": None, "unmask": "none"}, "signals": signals}},
    )
    examples = _examples(nlp.vocab)
    nlp.initialize(lambda: examples)
    return nlp, tagger, examples


def _old_cross_entropy(probs, gold):
    """The formula the tagger used before thinc's loss: summed -log p(gold), gradient p - onehot, -1 ignored."""
    rows = numpy.nonzero(gold >= 0)[0]
    d_probs = probs.copy()
    d_probs[rows, gold[rows]] -= 1.0
    d_probs[gold < 0] = 0.0
    return float(-numpy.log(numpy.clip(probs[rows, gold[rows]], 1e-12, None)).sum()), d_probs


def test_cross_entropy_equals_the_old_formula():
    rng = numpy.random.default_rng(0)
    lengths = [5, 0, 7, 1]
    logits = rng.normal(size=(sum(lengths), 6)).astype("float32")
    probs = numpy.exp(logits) / numpy.exp(logits).sum(axis=1, keepdims=True)
    gold = rng.integers(-1, 6, size=sum(lengths))
    bounds = numpy.cumsum([0] + lengths)
    per_doc = [probs[s:e] for s, e in zip(bounds[:-1], bounds[1:])]
    loss, d_probs = cross_entropy(NumpyOps(), per_doc, [gold[s:e] for s, e in zip(bounds[:-1], bounds[1:])])
    old_loss, old_d = _old_cross_entropy(probs, gold)
    assert loss == pytest.approx(old_loss, rel=1e-6)
    numpy.testing.assert_allclose(numpy.concatenate(d_probs), old_d, atol=1e-7)
    assert [len(d) for d in d_probs] == lengths


def test_output_is_typed_and_layers_are_named(tiny_model_dir):
    nlp, tagger, examples = _tagger(tiny_model_dir("bert"))
    docs = [eg.predicted for eg in examples] + [Doc(nlp.vocab, words=[])]
    output = tagger.model.predict(docs)
    assert isinstance(output, TaggerOutput)
    assert [probs.shape for probs in output.tags] == [(len(doc), len(tagger.tagset)) for doc in docs]
    # Only head signals have auxiliary outputs, over their values (plus the unknown-value id).
    n_values = len(SignalVocab(tagger.model.attrs["signal_values"]["dep"]))
    assert list(output.auxiliary) == ["dep"]
    assert [probs.shape for probs in output.auxiliary["dep"]] == [(len(doc), n_values) for doc in docs]
    for probs in output.tags + output.auxiliary["dep"]:
        numpy.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    for name in ("backbone", "dropout", "output_layer", "embed:pos", "head:dep", "head_dropout:dep"):
        assert tagger.model.has_ref(name), name
    assert not tagger.model.has_ref("embed:dep") and not tagger.model.has_ref("head:pos")


def test_signal_vocabularies_are_learned_by_the_model_initialize(tiny_model_dir):
    nlp, tagger, examples = _tagger(tiny_model_dir("bert"))
    values = sorted({v for eg in examples for v in signal_values(eg.predicted, "POS")})
    assert tagger.model.attrs["signal_values"] == {"pos": values, "dep": values}
    # The model alone learns them from the Docs it is initialized with...
    fresh = spacy.registry.resolve({"model": nlp.config["components"]["seqlab_multitask_ner"]["model"]})["model"]
    fresh.get_ref("output_layer").set_dim("nO", 3)
    fresh.initialize(X=[eg.predicted for eg in examples[:1]])
    assert fresh.attrs["signal_values"]["pos"] == sorted(set(signal_values(examples[0].predicted, "POS")))
    # ... and without the annotation it says what to add; the pipe names itself.
    with pytest.raises(MissingSignalError, match=r"^A tagger reads the signal 'POS'.*found in no training Doc"):
        fresh.initialize(X=[Doc(nlp.vocab, words=["alice"])])
    with pytest.raises(MissingSignalError, match=r"^Component 'seqlab_multitask_ner' reads the signal 'POS'"):
        tagger.predict([Doc(nlp.vocab, words=["alice", "lives"])])


def test_loss_is_the_old_formula_with_weighted_heads(tiny_model_dir):
    nlp, tagger, examples = _tagger(tiny_model_dir("bert"))
    output = tagger.model.predict([eg.predicted for eg in examples])
    loss, d_output = tagger.get_loss(examples, output)
    assert isinstance(d_output, TaggerOutput) and list(d_output.auxiliary) == ["dep"]
    gold = numpy.concatenate(
        [tagger.tagset.encode(tagger.target.gold_tags(eg, "iob2"), unknown="missing") for eg in examples]
    )
    vocab = SignalVocab(tagger.model.attrs["signal_values"]["dep"])
    aux_gold = numpy.concatenate([vocab.encode(signal_values(eg.predicted, "POS"), unknown=-1) for eg in examples])
    tag_loss, d_tags = _old_cross_entropy(numpy.concatenate(output.tags), gold)
    aux_loss, d_aux = _old_cross_entropy(numpy.concatenate(output.auxiliary["dep"]), aux_gold)
    assert loss == pytest.approx(tag_loss + 0.5 * aux_loss, rel=1e-5)
    numpy.testing.assert_allclose(numpy.concatenate(d_output.tags), d_tags, atol=1e-6)
    numpy.testing.assert_allclose(numpy.concatenate(d_output.auxiliary["dep"]), 0.5 * d_aux, atol=1e-6)


def test_training_is_spacy_update_with_the_finite_loss_check_in_get_loss():
    assert SequenceTagger.update is TrainablePipe.update and LabeledPipe.update is TrainablePipe.update
    assert "get_loss" in vars(LabeledPipe) and "get_loss" not in vars(SequenceTagger)


def test_presets_differ_only_in_their_default_model():
    bidir, multi = (spacy.Language.get_factory_meta(name) for name in ("seqlab_bidir_tagger", "seqlab_multitask_ner"))
    assert bidir.assigns == multi.assigns and bidir.default_score_weights == multi.default_score_weights
    assert inspect.signature(make_bidir_tagger) == inspect.signature(make_multitask_tagger)
    bidir_config, multi_config = copy.deepcopy(bidir.default_config), copy.deepcopy(multi.default_config)
    bidir_model, multi_model = bidir_config.pop("model"), multi_config.pop("model")
    assert bidir_config == multi_config == {"target": "ents", "scheme": None, "repair": "strict", "scorer": None}
    assert bidir_model.pop("backbone") != multi_model.pop("backbone")
    assert bidir_model == multi_model
    assert bidir_model == {
        "@architectures": "spacy_seqlab.Tagger.v1",
        "dropout": 0.1,
        "head_learn_rate_factor": 10.0,
        "decoder": "viterbi",
        "head_init": "prior",
        "nO": None,
        "signals": {},
    }
    # Given the same model, the two factories build the same component.
    configs = {}
    for factory in ("seqlab_bidir_tagger", "seqlab_multitask_ner"):
        nlp = spacy.blank("en")
        pipe = nlp.add_pipe(
            factory, name="tagger", config={"model": copy.deepcopy(bidir.default_config["model"]), "target": "tag"}
        )
        assert type(pipe) is SequenceTagger and pipe.cfg == {
            "labels": [],
            "target": "tag",
            "scheme": "tags",
            "repair": "strict",
            "confidence_temperature": 1.0,
        }
        configs[factory] = {k: v for k, v in nlp.config["components"]["tagger"].items() if k != "factory"}
    assert configs["seqlab_bidir_tagger"] == configs["seqlab_multitask_ner"]


def test_the_bidir_preset_reads_each_word_at_its_last_piece(tiny_model_dir):
    """In a causal layer only a word's last piece has seen the whole word: the preset reads that one."""
    nlp = spacy.blank("en")
    backbone = {"name": str(tiny_model_dir("llama")), "unmask": "none", "lora": None}
    tagger = nlp.add_pipe("seqlab_bidir_tagger", config={"model": {"backbone": backbone}})
    nlp.initialize(lambda: [Example.from_dict(nlp.make_doc("unbelievably good"), {"entities": ["U-PER", "O"]})])
    doc = nlp.make_doc("unbelievably")
    backbone = tagger.model.get_ref("backbone")
    (vectors,) = backbone.predict([doc])
    module = hf_model_of(backbone)
    ids = module.tokenizer(doc.text, return_tensors="pt")["input_ids"]
    assert ids.shape[1] > 3  # BOS + several pieces
    with torch.no_grad():
        module.transformer.eval()
        hidden = module.transformer(input_ids=ids).last_hidden_state[0].numpy()
    numpy.testing.assert_allclose(vectors[0], hidden[-1], atol=1e-5)
    assert not numpy.allclose(vectors[0], hidden[1], atol=1e-3)  # not the first piece


def test_pipe_sorts_docs_by_sub_word_pieces_not_tokens(tiny_model_dir, monkeypatch):
    """Docs of as many tokens but very different piece counts must not share a forward call."""
    nlp, tagger, _ = _tagger(tiny_model_dir("llama"), signals={})
    long_word = "zqxj" * 12  # dozens of pieces under the tiny tokenizer
    texts = [("alice " + long_word) if i % 2 else "alice bob" for i in range(16)]
    docs = [nlp.make_doc(t) for t in texts]
    pieces = tagger.costs(docs)
    assert all(len(d) == 2 for d in docs) and min(pieces[1::2]) > 4 * max(pieces[0::2])
    seen = []
    predict = tagger.predict
    monkeypatch.setattr(tagger, "predict", lambda batch: seen.append([d.text for d in batch]) or predict(batch))
    out = list(tagger.pipe(iter(docs), batch_size=8))
    assert [d.text for d in out] == texts
    assert sorted(map(set, seen), key=len) == [{"alice bob"}, {"alice " + long_word}]
