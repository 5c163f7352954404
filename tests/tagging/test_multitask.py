import copy
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import numpy
import pytest
import spacy
from spacy.tokens import Doc, Span
from spacy.training import Example

from spacy_seqlab.tagging.signals import MissingSignalError, SignalVocab, signal_values

# A toy language where each word has one POS, so an auxiliary POS head can learn it.
LEXICON = {
    "alice": "PROPN",
    "bob": "PROPN",
    "paris": "PROPN",
    "lives": "VERB",
    "works": "VERB",
    "in": "ADP",
    "the": "DET",
    "city": "NOUN",
}
PEOPLE = {"alice", "bob"}


def _docs(vocab, n, seed=0, with_pos=True):
    rng = random.Random(seed)
    docs = []
    for _ in range(n):
        words = [rng.choice(sorted(PEOPLE)), rng.choice(["lives", "works"]), "in", rng.choice(["paris", "the city"])]
        words = " ".join(words).split()
        ents = ["B-PER" if w in PEOPLE else "O" for w in words]
        pos = [LEXICON[w] for w in words] if with_pos else None
        docs.append(Doc(vocab, words=words, ents=ents, pos=pos))
    return docs


def _examples(nlp, docs, with_pos=True):
    examples = []
    for doc in docs:
        predicted = Doc(nlp.vocab, words=[t.text for t in doc], pos=[t.pos_ for t in doc] if with_pos else None)
        examples.append(Example(predicted, doc))
    return examples


def _nlp(model_dir, signals, **backbone):
    nlp = spacy.blank("en")
    nlp.add_pipe(
        "seqlab_multitask_ner", config={"model": {"backbone": {"name": str(model_dir), **backbone}, "signals": signals}}
    )
    return nlp


def test_embed_mode_uses_the_signal(tiny_model_dir):
    nlp = _nlp(tiny_model_dir("bert"), {"pos": {"source": "POS", "mode": "embed", "width": 8}})
    examples = _examples(nlp, _docs(nlp.vocab, 8))
    optimizer = nlp.initialize(lambda: examples)
    for _ in range(3):  # the output layer starts at zero: give it weights
        nlp.update(examples, sgd=optimizer)
    tagger = nlp.get_pipe("seqlab_multitask_ner")
    words = ["alice", "lives", "in", "paris"]
    a = Doc(nlp.vocab, words=words, pos=["PROPN", "VERB", "ADP", "PROPN"])
    b = Doc(nlp.vocab, words=words, pos=["NOUN", "VERB", "ADP", "PROPN"])
    scores_a, scores_b = tagger.model.predict([a, b]).tags
    assert not numpy.allclose(scores_a[0], scores_b[0])  # the changed tag changes that token's scores
    numpy.testing.assert_allclose(
        scores_a[1:], scores_b[1:], atol=1e-6
    )  # and nothing else (the backbone is blind to it)
    with pytest.raises(MissingSignalError, match="tagger"):
        tagger.model.predict([Doc(nlp.vocab, words=words)])


def test_head_mode_learns_the_auxiliary_task_and_predicts_without_it(tiny_model_dir):
    nlp = _nlp(tiny_model_dir("bert"), {"pos": {"source": "POS", "mode": "head", "loss_weight": 1.0}})
    examples = _examples(nlp, _docs(nlp.vocab, 32))
    optimizer = nlp.initialize(lambda: examples)
    tagger = nlp.get_pipe("seqlab_multitask_ner")
    vocab = SignalVocab(tagger.model.attrs["signal_values"]["pos"])

    def aux_accuracy():
        docs = [eg.predicted for eg in examples]
        scores = tagger.model.predict(docs).auxiliary["pos"]
        predicted = numpy.concatenate([s.argmax(axis=1) for s in scores])
        gold = numpy.concatenate([vocab.encode(signal_values(d, "POS")) for d in docs])
        return float((predicted == gold).mean()), gold

    before, gold = aux_accuracy()
    losses = []
    for _ in range(25):
        step = {}
        nlp.update(examples, sgd=optimizer, losses=step)
        losses.append(step["seqlab_multitask_ner"])
    after, _ = aux_accuracy()
    majority = numpy.bincount(gold).max() / len(gold)
    assert losses[-1] < 0.75 * losses[0], losses
    assert after > majority + 0.2 and after > before, (before, after, majority)
    # The head's signal is not needed to predict.
    doc = nlp(Doc(nlp.vocab, words=["bob", "works", "in", "paris"]))
    assert [e.text for e in doc.ents] == ["bob"]


def test_vanilla_config_is_the_plain_tagger(tiny_model_dir):
    examples = None
    pipes = {}
    for factory in ("seqlab_multitask_ner", "seqlab_bidir_tagger"):
        nlp = spacy.blank("en")
        backbone = {"name": str(tiny_model_dir("bert"))}
        if factory == "seqlab_bidir_tagger":  # the same backbone settings as the multitask default
            backbone.update(lora=None, unmask="none")
        nlp.add_pipe(factory, config={"model": {"backbone": backbone}})
        examples = _examples(nlp, _docs(nlp.vocab, 4))
        nlp.initialize(lambda examples=examples: examples)
        pipes[factory] = nlp.get_pipe(factory)
    plain, multi = pipes["seqlab_bidir_tagger"], pipes["seqlab_multitask_ner"]
    source, dest = multi.model.get_ref("output_layer"), plain.model.get_ref("output_layer")
    for name in ("W", "b"):
        dest.set_param(name, copy.deepcopy(source.get_param(name)))
    docs = [eg.predicted for eg in examples]
    for a, b in zip(multi.model.predict(docs).tags, plain.model.predict(docs).tags):
        numpy.testing.assert_allclose(a, b, atol=1e-6)


def test_learn_rate_factor_scales_the_embedding_updates(tiny_model_dir):
    moved = {}
    for factor in (1.0, 10.0):
        nlp = _nlp(
            tiny_model_dir("bert"), {"pos": {"source": "POS", "mode": "embed", "width": 8, "learn_rate_factor": factor}}
        )
        examples = _examples(nlp, _docs(nlp.vocab, 8))
        optimizer = nlp.initialize(lambda examples=examples: examples)
        embed = nlp.get_pipe("seqlab_multitask_ner").model.get_ref("embed:pos")
        nlp.update(examples, sgd=optimizer)  # the output layer starts at zero: no gradient reaches E yet
        before = embed.get_param("E").copy()
        nlp.update(examples, sgd=optimizer)
        moved[factor] = float(numpy.abs(embed.get_param("E") - before).sum())
    # Adam's step is proportional to the learning rate (weight decay and clipping blur it slightly).
    assert 8.0 < moved[10.0] / moved[1.0] < 12.0, moved


def test_spans_signal_is_read_as_bio_and_missing_spans_are_named(tiny_model_dir):
    nlp = _nlp(tiny_model_dir("bert"), {"rel": {"source": "spans:oie_rel", "mode": "both", "width": 4}})
    docs = _docs(nlp.vocab, 4)
    examples = _examples(nlp, docs)
    for eg in examples:
        eg.predicted.spans["oie_rel"] = [Span(eg.predicted, 1, 3, label="REL")]
    assert signal_values(examples[0].predicted, "spans:oie_rel")[:3] == ["O", "B-REL", "I-REL"]
    nlp.initialize(lambda: examples)
    with pytest.raises(MissingSignalError, match="seqlab_oie"):
        nlp(Doc(nlp.vocab, words=["alice", "lives"]))


@pytest.mark.parametrize(
    "signals,message",
    [
        ({"x": {"source": "FOO"}}, "Unknown signal source"),
        ({"x": {"source": "MORPH"}}, "Unknown signal source"),
        ({"x": {"source": "POS", "mode": "implicit"}}, "mode"),
        ({"x": {"source": "POS", "loss_weight": -1.0}}, "loss_weight"),
        ({"x": {"source": "POS", "width": 0}}, "width"),
        ({"x": {"source": "POS", "size": 3}}, "size"),
        ({"x": {"mode": "head"}}, "needs a source"),
    ],
)
def test_bad_signal_settings_are_named(tiny_model_dir, signals, message):
    with pytest.raises(Exception, match=message):
        _nlp(tiny_model_dir("bert"), signals)


def test_unknown_span_key_is_named_at_initialize(tiny_model_dir):
    nlp = _nlp(tiny_model_dir("bert"), {"x": {"source": "spans:nowhere", "mode": "embed"}})
    examples = _examples(nlp, _docs(nlp.vocab, 2))
    with pytest.raises(MissingSignalError, match="nowhere"):
        nlp.initialize(lambda: examples)


def _run(args, **kwargs):
    result = subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=900, **kwargs)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    return result


def _ents(nlp, texts):
    return [[(e.start, e.end, e.label_) for e in doc.ents] for doc in nlp.pipe(texts)]


def test_shipped_config_trains_with_annotating_components_and_packages(tiny_model_dir, tmp_path):
    """configs/multitask_minilm_wnut16_cpu.cfg (POS, DEP and OIE signals from frozen upstream pipes), tiny backbone."""
    config = Path(__file__).parents[2] / "configs" / "multitask_minilm_wnut16_cpu.cfg"
    _run(["-m", "spacy_seqlab", "wnut16", str(tmp_path / "corpus")])
    _run(
        [
            "-m",
            "spacy",
            "train",
            str(config),
            "--output",
            str(tmp_path / "out"),
            "--paths.train",
            str(tmp_path / "corpus" / "train.spacy"),
            "--paths.dev",
            str(tmp_path / "corpus" / "dev.spacy"),
            "--components.seqlab_ner.model.backbone.name",
            str(tiny_model_dir("bert")),
            "--corpora.train.limit",
            "48",
            "--corpora.dev.limit",
            "24",
            "--training.max_steps",
            "8",
            "--training.eval_frequency",
            "4",
        ]
    )
    best = tmp_path / "out" / "model-best"
    nlp = spacy.load(best)
    assert nlp.pipe_names == ["tok2vec", "tagger", "attribute_ruler", "parser", "oie", "seqlab_ner"]
    assert set(nlp.get_pipe("seqlab_ner").model.attrs["signal_values"]) == {"pos", "dep", "oie"}

    result = _run(
        [
            "-m",
            "spacy",
            "seqlab-evaluate",
            str(best),
            str(tmp_path / "corpus" / "dev.spacy"),
            "--output",
            str(tmp_path / "m.json"),
        ]
    )
    assert "seqeval" in result.stdout and "seqeval_f" in json.loads((tmp_path / "m.json").read_text())

    texts = ["Alice moved to Berlin last year .", "@user watching the Lakers game tonight #NBA", ""]
    expected = _ents(nlp, texts)
    probs = nlp.get_pipe("seqlab_ner").model.predict(list(nlp.pipe(texts[:2], disable=["seqlab_ner"]))).tags
    nlp.to_disk(tmp_path / "copy")
    copy_nlp = spacy.load(tmp_path / "copy")
    assert _ents(copy_nlp, texts) == expected
    copy_probs = (
        copy_nlp.get_pipe("seqlab_ner").model.predict(list(copy_nlp.pipe(texts[:2], disable=["seqlab_ner"]))).tags
    )
    for a, b in zip(probs, copy_probs):
        numpy.testing.assert_allclose(a, b, atol=1e-6)

    (tmp_path / "pkg").mkdir()
    _run(
        [
            "-m",
            "spacy",
            "package",
            str(best),
            str(tmp_path / "pkg"),
            "--name",
            "multitask_test",
            "--version",
            "0.0.1",
            "--build",
            "wheel",
        ]
    )
    meta = json.loads(next((tmp_path / "pkg").glob("**/meta.json")).read_text())
    assert any(r.startswith("spacy-seqlab") for r in meta["requirements"]), meta["requirements"]
    _run(
        [
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--target",
            str(tmp_path / "site"),
            str(next((tmp_path / "pkg").glob("**/dist/*.whl"))),
        ]
    )
    script = (
        "import json, spacy; nlp = spacy.load('en_multitask_test'); "
        f"print(json.dumps([[(e.start, e.end, e.label_) for e in d.ents] for d in nlp.pipe({texts!r})]))"
    )
    # The package, and the spacy-seqlab under test (when it comes from PYTHONPATH rather than an install).
    path = os.pathsep.join(filter(None, [str(tmp_path / "site"), os.environ.get("PYTHONPATH")]))
    env = {"PYTHONPATH": path, "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin", "OMP_WAIT_POLICY": "PASSIVE"}
    out = _run(["-c", script], env=env)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == [[list(s) for s in doc] for doc in expected]


def test_pipe_analysis_reads_requires_from_the_signals_and_assigns_from_the_target(tiny_model_dir, capsys):
    backbone = {"name": str(tiny_model_dir("bert"))}
    signals = {
        "pos": {"source": "POS", "mode": "embed"},
        "dep": {"source": "DEP", "mode": "head"},  # read in training only: not required
        "oie": {"source": "spans:oie_rel", "mode": "both"},
    }
    nlp = spacy.blank("en")
    nlp.add_pipe("seqlab_multitask_ner", name="ner", config={"model": {"backbone": backbone, "signals": signals}})
    nlp.add_pipe("seqlab_bidir_tagger", name="chunks", config={"model": {"backbone": backbone}, "target": "tag"})
    analysis = nlp.analyze_pipes(pretty=True)
    assert analysis["summary"]["ner"]["requires"] == ["token.pos", "doc.spans"]
    assert analysis["summary"]["ner"]["assigns"] == ["doc.ents", "token.ent_iob", "token.ent_type"]
    assert (analysis["summary"]["chunks"]["assigns"], analysis["summary"]["chunks"]["requires"]) == (["token.tag"], [])
    assert analysis["problems"] == {"ner": ["token.pos", "doc.spans"], "chunks": []}
    assert "'ner' requirements not met: token.pos, doc.spans" in capsys.readouterr().out
    # With the pipes that set the signals before it, nothing is missing.
    nlp.add_pipe("morphologizer", before="ner")
    nlp.add_pipe("seqlab_oie", before="ner")
    assert nlp.analyze_pipes()["problems"]["ner"] == []
    # Each component keeps its own declaration; the factory's generic one is unchanged.
    assert spacy.Language.get_factory_meta("seqlab_multitask_ner").requires == []
    assert nlp.get_pipe_meta("ner").requires == ["token.pos", "doc.spans"]
