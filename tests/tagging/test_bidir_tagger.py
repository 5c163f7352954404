import json
import os
import random
import shutil
import subprocess
import sys

import numpy
import pytest
import spacy
from spacy.tokens import Doc, DocBin
from spacy.training import Example

WORDS = ["fox", "dog", "the", "quick", "lazy", "over"]


def _right_context_docs(nlp, n, seed=0):
    """The label of token i says whether token i+1 is "dog": only right context can tell."""
    rng = random.Random(seed)
    docs = []
    for _ in range(n):
        words = [rng.choice(WORDS) for _ in range(8)]
        ents = ["B-NEXT" if i + 1 < len(words) and words[i + 1] == "dog" else "O" for i in range(len(words))]
        docs.append(Doc(nlp.vocab, words=words, ents=ents))
    return docs


def _tagger_nlp(model_dir, head_init="prior", **backbone):
    nlp = spacy.blank("en")
    settings = {"name": str(model_dir), "window": 32, "stride": 24, **backbone}
    nlp.add_pipe("seqlab_bidir_tagger", config={"model": {"backbone": settings, "head_init": head_init}})
    return nlp


def _train(nlp, docs, epochs=30, seed=0):
    examples = [Example(nlp.make_doc(d.text), d) for d in docs]
    optimizer = nlp.initialize(lambda: examples)
    rng = random.Random(seed)
    for _ in range(epochs):
        rng.shuffle(examples)
        for i in range(0, len(examples), 16):
            nlp.update(examples[i : i + 16], sgd=optimizer)
    return nlp


def test_unmasked_decoder_learns_what_only_right_context_tells(tiny_model_dir):
    scores = {}
    for unmask in ("all", "none"):
        # The tiny backbone is random, learned from scratch here: from the tags' prior (the default, made for
        # pre-trained backbones) it predicts B-NEXT conservatively for longer (F 0.76 after these 30 epochs, 0.87
        # from zero). This test is about unmasking, so its head starts at zero.
        nlp = _tagger_nlp(tiny_model_dir("llama"), head_init="zero", unmask=unmask, lora=None)
        train = _right_context_docs(nlp, 64, seed=0)
        _train(nlp, train)
        test = [Example(nlp.make_doc(d.text), d) for d in _right_context_docs(nlp, 64, seed=1)]
        scores[unmask] = nlp.evaluate(test)["seqeval_f"]
    assert scores["all"] > 0.8, scores
    assert scores["none"] < 0.4, scores


def test_lora_tagger_trains_and_round_trips_through_disk(tiny_model_dir, tmp_path):
    nlp = _tagger_nlp(tiny_model_dir("qwen2"), unmask="01", lora={"r": 4}, pooling="last")
    _train(nlp, _right_context_docs(nlp, 32), epochs=3)
    texts = ["the quick dog", "fox over the lazy dog dog", "", "   "]
    before = [[(e.start, e.end, e.label_) for e in doc.ents] for doc in nlp.pipe(texts)]
    probs = nlp.get_pipe("seqlab_bidir_tagger").model.predict([nlp.make_doc(t) for t in texts[:2]]).tags
    nlp.to_disk(tmp_path / "pipeline")
    loaded = spacy.load(tmp_path / "pipeline")
    assert [[(e.start, e.end, e.label_) for e in doc.ents] for doc in loaded.pipe(texts)] == before
    reloaded = loaded.get_pipe("seqlab_bidir_tagger").model.predict([loaded.make_doc(t) for t in texts[:2]]).tags
    for a, b in zip(probs, reloaded):
        numpy.testing.assert_allclose(a, b, atol=1e-6)


def test_batch_and_padding_do_not_change_predictions(tiny_model_dir):
    nlp = _tagger_nlp(tiny_model_dir("mistral"), unmask="all", lora=None)
    _train(nlp, _right_context_docs(nlp, 16), epochs=2)
    tagger = nlp.get_pipe("seqlab_bidir_tagger")
    docs = [nlp.make_doc(t) for t in ["the dog", "fox over the lazy dog and the quick fox " * 3, "dog"]]
    together = tagger.model.predict(docs).tags
    for doc, expected in zip(docs, together):
        numpy.testing.assert_allclose(tagger.model.predict([doc]).tags[0], expected, atol=1e-4)


def test_every_token_of_a_long_doc_gets_a_tag_and_empty_docs_pass(tiny_model_dir):
    nlp = spacy.blank("en")
    nlp.add_pipe(
        "seqlab_bidir_tagger",
        config={
            "target": "tag",
            "model": {"backbone": {"name": str(tiny_model_dir("llama")), "window": 16, "stride": 8, "lora": None}},
        },
    )
    train = [Doc(nlp.vocab, words=["the", "dog", "runs"], tags=["DT", "NN", "VBZ"]) for _ in range(4)]
    _train(nlp, train, epochs=1)
    long_text = " ".join(["the dog runs"] * 100)
    docs = list(nlp.pipe([long_text, "", " \n\t ", "dog"], batch_size=2))
    assert len(docs[0]) == 300 and all(t.tag_ in {"DT", "NN", "VBZ"} for t in docs[0])
    assert len(docs[1]) == 0
    assert all(t.tag_ in {"DT", "NN", "VBZ"} for d in docs[2:] for t in d)


@pytest.mark.parametrize(
    "config,message",
    [
        ({"model": {"backbone": {"unmask": "012"}}}, "unmask"),
        ({"target": "entities"}, "target"),
        ({"target": "pos", "scheme": "iob2"}, "scheme"),
        ({"repair": "fix"}, "repair"),
        ({"model": {"dropout": 1.5}}, "dropout"),
    ],
)
def test_bad_settings_fail_at_construction_naming_the_setting(tiny_model_dir, config, message):
    config = json.loads(json.dumps(config))
    config.setdefault("model", {}).setdefault("backbone", {})["name"] = str(tiny_model_dir("llama"))
    with pytest.raises(Exception, match=message):
        spacy.blank("en").add_pipe("seqlab_bidir_tagger", config=config)


def test_layer_index_out_of_range_fails_at_initialize(tiny_model_dir):
    nlp = _tagger_nlp(tiny_model_dir("llama"), unmask=[0, 7], lora=None)
    docs = _right_context_docs(nlp, 2)
    with pytest.raises(ValueError, match="out of range"):
        nlp.initialize(lambda: [Example(nlp.make_doc(d.text), d) for d in docs])


def _run(args, **kwargs):
    result = subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=600, **kwargs)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    return result


def test_spacy_train_evaluate_and_package(tiny_model_dir, tmp_path):
    base = tmp_path / "base"
    shutil.copytree(tiny_model_dir("llama"), base)
    # Also repetition and early exit (one of the tiny model's 2 layers), which the package must keep.
    nlp = _tagger_nlp(base, unmask="all", lora={"r": 4}, repeat=1, exit_layer=1)
    for name, seed, n in (("train", 0, 48), ("dev", 1, 16)):
        DocBin(docs=_right_context_docs(nlp, n, seed=seed)).to_disk(tmp_path / f"{name}.spacy")
    config = nlp.config
    config["paths"]["train"] = str(tmp_path / "train.spacy")
    config["paths"]["dev"] = str(tmp_path / "dev.spacy")
    config["training"]["max_steps"] = 20
    config["training"]["eval_frequency"] = 10
    config.to_disk(tmp_path / "config.cfg")
    _run(["-m", "spacy", "train", str(tmp_path / "config.cfg"), "--output", str(tmp_path / "out")])
    best = tmp_path / "out" / "model-best"
    assert json.loads((best / "meta.json").read_text())["performance"]["seqeval_f"] is not None

    result = _run(
        ["-m", "spacy", "seqlab-evaluate", str(best), str(tmp_path / "dev.spacy"), "--output", str(tmp_path / "m.json")]
    )
    assert "seqeval" in result.stdout
    assert "seqeval_f" in json.loads((tmp_path / "m.json").read_text())

    # The packaged wheel records the plugin as a requirement and loads with no base model and no network.
    (tmp_path / "pkg").mkdir()
    _run(
        [
            "-m",
            "spacy",
            "package",
            str(best),
            str(tmp_path / "pkg"),
            "--name",
            "bidir_test",
            "--version",
            "0.0.1",
            "--build",
            "wheel",
        ]
    )
    wheel = next((tmp_path / "pkg").glob("**/dist/*.whl"))
    meta = json.loads(next((tmp_path / "pkg").glob("**/meta.json")).read_text())
    assert any(r.startswith("spacy-seqlab") for r in meta["requirements"]), meta["requirements"]
    _run(["-m", "pip", "install", "-q", "--no-deps", "--target", str(tmp_path / "site"), str(wheel)])
    shutil.rmtree(base)
    expected = [
        [(e.start, e.end, e.label_) for e in doc.ents] for doc in spacy.load(best).pipe(["the dog", "fox dog the"])
    ]
    script = (
        "import json, spacy; nlp = spacy.load('en_bidir_test');"
        "texts = ['the dog', 'fox dog the'];"
        "print(json.dumps([[(e.start, e.end, e.label_) for e in d.ents] for d in nlp.pipe(texts)]));"
        "backbone = nlp.get_pipe('seqlab_bidir_tagger').model.get_ref('backbone');"
        "from spacy_seqlab.hf.model import hf_model_of;"
        "print(backbone.get_ref('windows').attrs['settings'].repeat, hf_model_of(backbone).settings.exit_layer,"
        " len(hf_model_of(backbone).base_model.layers))"
    )
    # The package, and the spacy-seqlab under test (when it comes from PYTHONPATH rather than an install).
    path = os.pathsep.join(filter(None, [str(tmp_path / "site"), os.environ.get("PYTHONPATH")]))
    env = {"PYTHONPATH": path, "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin", "OMP_WAIT_POLICY": "PASSIVE"}
    out = _run(["-c", script], env=env)
    *_, entities, settings = out.stdout.strip().splitlines()
    assert json.loads(entities) == [[list(s) for s in doc] for doc in expected]
    assert settings.split() == ["1", "1", "1"]  # repeat, exit_layer, layers that run


def test_labels_from_initialize_settings_and_misaligned_gold_is_ignored(tiny_model_dir):
    nlp = _tagger_nlp(tiny_model_dir("llama"), lora=None)
    tagger = nlp.get_pipe("seqlab_bidir_tagger")
    reference = Doc(
        nlp.vocab,
        words=["New", "York", "-", "based", "firm"],
        spaces=[True, False, False, True, False],
        ents=["B-LOC", "I-LOC", "O", "O", "O"],
    )
    # "York-based" straddles the gold entity's end: its gold, and that of "New", cannot be known.
    example = Example(Doc(nlp.vocab, words=["New", "York-based", "firm"]), reference)
    tagger.initialize(lambda: [example], nlp=nlp, labels=["LOC", "PER"])
    assert tagger.labels == ("LOC", "PER")
    scores = tagger.model.predict([example.predicted])
    loss, d_scores = tagger.get_loss([example], scores)
    gold = tagger.target.gold_tags(example, "iob2")
    assert gold == [None, None, "O"]
    for row, tag in zip(d_scores.tags[0], gold):
        # Tokens without gold get no gradient; the others push towards their gold tag.
        assert (not row.any()) if tag is None else row[tagger.tagset.index[tag]] < 0
    assert loss > 0
