"""Saved pipelines under damage and misuse: truncated or corrupted files, an adapter saved for a
different base model or label set, a base model that moved; and nothing is unpickled.

Each failure must be a ValueError that names the component and the file, says what is wrong and
how to fix it: never a raw msgpack, JSON, safetensors or torch error.
"""

import pickle
import random
import re
import shutil
from pathlib import Path

import numpy
import pytest
import spacy
import srsly
import torch
from spacy.tokens import Doc
from spacy.training import Example

from spacy_seqlab.core.serialization import ALLOW_UNVERIFIED_ENV, ArtifactError
from spacy_seqlab.hf.generation import generate
from spacy_seqlab.hf.model import hf_model_of

TEXTS = ["Alice lives in Paris .", "the dog met Bob", ""]
FIX = r"(copy the pipeline again|re-save it)"


def _examples(nlp):
    examples = []
    for words, ents in [
        (["Alice", "lives", "in", "Paris", "."], ["B-PER", "O", "O", "B-LOC", "O"]),
        (["the", "dog", "met", "Bob"], ["O", "O", "O", "B-PER"]),
    ]:
        reference = Doc(nlp.vocab, words=words, ents=ents, pos=["PROPN" if w[0].isupper() else "NOUN" for w in words])
        predicted = nlp.make_doc(reference.text)
        for token in predicted:
            token.pos_ = "PROPN" if token.text[0].isupper() else "NOUN"
        examples.append(Example(predicted, reference))
    return examples


def _configs(base):
    return {
        "seqlab_bidir_tagger": {
            "model": {"backbone": {"name": str(base["llama"]), "unmask": "all", "lora": {"r": 2}, "save_base": False}}
        },
        "seqlab_multitask_ner": {
            "model": {"backbone": {"name": str(base["bert"])}, "signals": {"pos": {"source": "POS", "mode": "head"}}}
        },
        "seqlab_llm_sft": {
            "model": {"name": str(base["llama"]), "lora": {"r": 2}, "save_base": False},
            "n_demos": 1,
            "max_new_tokens": 4,
        },
    }


def _build(factory, config, labels=None):
    nlp = spacy.blank("en")
    nlp.add_pipe(factory, config=config)
    if labels is not None:
        nlp.config["initialize"]["components"] = {factory: {"labels": labels}}
    examples = _examples(nlp)
    optimizer = nlp.initialize(lambda: examples)
    nlp.update(examples, sgd=optimizer)
    with torch.no_grad():  # make any LoRA adapter non-trivial (B starts at zero)
        for name, param in hf_model_of(nlp.get_pipe(factory).model).named_parameters():
            if "lora_B" in name:
                param.normal_(std=0.5)
    return nlp


def _ents(nlp):
    return [[(e.start, e.end, e.label_) for e in doc.ents] for doc in nlp.pipe(TEXTS)]


def _behaviour(nlp, factory):
    """What the component does: its spans, plus its raw outputs (tag probabilities, or the generated text)."""
    pipe = nlp.get_pipe(factory)
    if factory == "seqlab_llm_sft":
        prompts = [pipe.prompter.prompt(text).generation_prefix for text in TEXTS[:2]]
        raw = generate(pipe.module.transformer, pipe.module.tokenizer, prompts, max_new_tokens=6)
    else:
        output = pipe.model.predict([nlp.make_doc(text) for text in TEXTS[:2]])
        raw = [numpy.round(scores, 5).tolist() for scores in output.tags]
        raw += [
            numpy.round(scores, 5).tolist() for name in sorted(output.auxiliary) for scores in output.auxiliary[name]
        ]
    return _ents(nlp), raw


def _from_bytes(nlp):
    copy = spacy.util.load_model_from_config(nlp.config, auto_fill=True)
    return copy.from_bytes(nlp.to_bytes())


@pytest.fixture(scope="module")
def saved(tiny_model_dir, tmp_path_factory):
    """Each component type saved to disk; the adapter-only ones with their base in a folder of their own."""
    root = tmp_path_factory.mktemp("artifacts")
    bases = {arch: shutil.copytree(tiny_model_dir(arch), root / f"base-{arch}") for arch in ("llama", "bert")}
    pipelines = {}
    for factory, config in _configs(bases).items():
        nlp = _build(factory, config)
        nlp.to_disk(root / factory)
        pipelines[factory] = (root / factory, _behaviour(nlp, factory))
    oie = spacy.blank("en")
    oie.add_pipe("seqlab_oie", config={"max_relation_length": 4})
    oie.to_disk(root / "seqlab_oie")
    pipelines["seqlab_oie"] = (root / "seqlab_oie", None)
    return root, bases, pipelines


FACTORIES = ["seqlab_bidir_tagger", "seqlab_multitask_ner", "seqlab_llm_sft"]


def _copy(saved, factory, tmp_path) -> Path:
    return Path(shutil.copytree(saved[2][factory][0], tmp_path / factory))


@pytest.mark.parametrize("factory", FACTORIES)
def test_saved_pipelines_load_and_round_trip_through_bytes(saved, factory):
    path, expected = saved[2][factory]
    nlp = spacy.load(path)
    assert _behaviour(nlp, factory) == expected
    assert sorted(p.name for p in (path / factory).iterdir()) == sorted(
        ["cfg", "model", "checksums.json"] + (["demonstrations.json"] if factory == "seqlab_llm_sft" else [])
    )
    assert _behaviour(_from_bytes(nlp), factory) == expected


def _damage(file: Path, how: str) -> None:
    data = file.read_bytes()
    if how == "truncated":
        file.write_bytes(data[: len(data) // 2])
    elif how == "empty":
        file.write_bytes(b"")
    elif how == "garbled":  # bytes changed inside, length kept: may still parse, with wrong values
        flipped = bytearray(data)
        rng = random.Random(0)
        for i in range(len(data) // 2, min(len(data), len(data) // 2 + 16)):
            flipped[i] ^= rng.randrange(1, 256)
        file.write_bytes(bytes(flipped))
    elif how == "garbage":
        file.write_bytes(b"\x00\xff\x93 not a spacy-seqlab file " * 8)
    elif how == "deleted":
        file.unlink()


DAMAGES = ["truncated", "empty", "garbled", "garbage", "deleted"]


@pytest.mark.parametrize("factory", FACTORIES)
def test_damaged_component_files_give_a_clear_error(saved, tmp_path, factory):
    files = ["model", "cfg"] + (["demonstrations.json"] if factory == "seqlab_llm_sft" else [])
    for name in files:
        for how in DAMAGES:
            pipeline = Path(shutil.copytree(saved[2][factory][0], tmp_path / f"{name}-{how}"))
            _damage(pipeline / factory / name, how)
            with pytest.raises(ArtifactError) as caught:
                spacy.load(pipeline)
            message = str(caught.value)
            assert f"component '{factory}'" in message and str(pipeline / factory / name) in message, (
                name,
                how,
                message,
            )
            assert re.search(FIX, message) and ("missing" in message if how == "deleted" else "checksum" in message), (
                message
            )


@pytest.mark.parametrize("factory", FACTORIES)
def test_a_directory_without_checksums_is_refused_unless_the_user_opts_out(saved, tmp_path, monkeypatch, factory):
    """Weights with flipped bytes that still parse, in a directory whose checksums.json was removed:
    refused, naming the directory and the opt-out; loaded only when the user sets it."""
    monkeypatch.delenv(ALLOW_UNVERIFIED_ENV, raising=False)
    pipeline = _copy(saved, factory, tmp_path)
    (pipeline / factory / "checksums.json").unlink()
    with pytest.raises(ArtifactError) as caught:
        spacy.load(pipeline)
    message = str(caught.value)
    assert f"component '{factory}'" in message and str(pipeline / factory) in message, message
    assert "checksums.json is missing" in message and f"{ALLOW_UNVERIFIED_ENV}=1" in message, message
    nlp = spacy.load(saved[2][factory][0])
    pipe = nlp.get_pipe(factory)
    unchecked = srsly.msgpack_loads(pipe.to_bytes())
    del unchecked["checksums"]
    with pytest.raises(ArtifactError, match=rf"component '{factory}'.*no 'checksums' entry.*{ALLOW_UNVERIFIED_ENV}=1"):
        pipe.from_bytes(srsly.msgpack_dumps(unchecked))
    monkeypatch.setenv(ALLOW_UNVERIFIED_ENV, "1")
    assert _behaviour(spacy.load(pipeline), factory) == saved[2][factory][1]
    pipe.from_bytes(srsly.msgpack_dumps(unchecked))


@pytest.mark.parametrize("factory", FACTORIES)
def test_damaged_files_saved_without_checksums_still_give_a_clear_error(saved, tmp_path, monkeypatch, factory):
    """A directory without checksums.json, loaded unverified by the user's choice: each reader's
    failure is still caught and explained, naming the file."""
    monkeypatch.setenv(ALLOW_UNVERIFIED_ENV, "1")
    files = ["model", "cfg"] + (["demonstrations.json"] if factory == "seqlab_llm_sft" else [])
    for name in files:
        for how in ("truncated", "empty", "garbage", "deleted"):
            pipeline = Path(shutil.copytree(saved[2][factory][0], tmp_path / f"{name}-{how}"))
            (pipeline / factory / "checksums.json").unlink()
            _damage(pipeline / factory / name, how)
            with pytest.raises(ArtifactError) as caught:
                spacy.load(pipeline)
            message = str(caught.value)
            assert f"component '{factory}'" in message and str(pipeline / factory / name) in message, (
                name,
                how,
                message,
            )
            assert re.search(FIX, message), message
            assert (
                "missing" in message
                if how == "deleted"
                else re.search(r"truncated, corrupted or was not written by spacy-seqlab", message)
            )


@pytest.mark.parametrize("factory", FACTORIES)
def test_damaged_component_bytes_give_a_clear_error(saved, factory):
    nlp = spacy.load(saved[2][factory][0])
    pipe = nlp.get_pipe(factory)
    data = pipe.to_bytes()
    half = len(data) // 2
    for damaged in (
        data[:half],
        data[:half] + bytes(b ^ 0x5A for b in data[half : half + 8]) + data[half + 8 :],
        b"",
        b"\xc1garbage",
    ):
        with pytest.raises(ArtifactError, match=rf"Cannot load component '{factory}'.*the bytes of component.*{FIX}"):
            pipe.from_bytes(damaged)


def test_damaged_oie_settings_give_a_clear_error(saved, tmp_path):
    for how in DAMAGES:
        pipeline = Path(shutil.copytree(saved[2]["seqlab_oie"][0], tmp_path / how))
        _damage(pipeline / "seqlab_oie" / "cfg.json", how)
        with pytest.raises(ValueError, match=rf"Cannot load component 'seqlab_oie': .*cfg\.json.*{FIX}"):
            spacy.load(pipeline)
    assert spacy.load(saved[2]["seqlab_oie"][0]).get_pipe("seqlab_oie").max_relation_length == 4


@pytest.mark.parametrize("factory", ["seqlab_bidir_tagger", "seqlab_llm_sft"])
def test_adapter_for_a_different_base_model_is_refused(saved, tmp_path, tiny_model_dir, factory):
    """The adapter-only artifact's base folder now holds another model (same path, other family)."""
    root, bases, pipelines = saved
    base = Path(shutil.copytree(bases["llama"], tmp_path / "base"))
    pipeline = _copy(saved, factory, tmp_path)
    config = {
        f"components.{factory}.model.backbone.name"
        if factory != "seqlab_llm_sft"
        else f"components.{factory}.model.name": str(base)
    }
    assert _behaviour(spacy.load(pipeline, config=config), factory) == pipelines[factory][1]
    shutil.rmtree(base)
    shutil.copytree(tiny_model_dir("qwen2"), base)
    with pytest.raises(
        ArtifactError,
        match=rf"Cannot load component '{factory}'.*model.*different base model"
        r".*model_type is 'llama' in the artifact but 'qwen2'",
    ):
        spacy.load(pipeline, config=config)


@pytest.mark.filterwarnings("ignore:.*labels outside")  # training the other pipeline on data with LOC
@pytest.mark.parametrize("factory", FACTORIES)
def test_weights_saved_for_a_different_label_set_are_refused(saved, tmp_path, monkeypatch, factory):
    """The model file of a pipeline trained for other labels, put into this one's directory."""
    root, bases, pipelines = saved
    other = _build(factory, _configs(bases)[factory], labels=["PER"])
    other.to_disk(tmp_path / "other")
    pipeline = _copy(saved, factory, tmp_path)
    shutil.copy(tmp_path / "other" / factory / "model", pipeline / factory / "model")
    # With checksums the replaced file is named as not the one saved with the component...
    with pytest.raises(
        ArtifactError, match=rf"component '{factory}'.*{factory}/model is not the file saved with this component"
    ):
        spacy.load(pipeline)
    # ... and without them (loaded unverified by choice) the label check names both label sets.
    (pipeline / factory / "checksums.json").unlink()
    monkeypatch.setenv(ALLOW_UNVERIFIED_ENV, "1")
    with pytest.raises(
        ArtifactError,
        match=rf"component '{factory}'.*trained for the labels \['PER'\], but its cfg has the labels \['LOC', 'PER'\]",
    ):
        spacy.load(pipeline)


@pytest.mark.parametrize("factory", ["seqlab_bidir_tagger", "seqlab_llm_sft"])
def test_base_model_that_no_longer_exists_is_named_with_the_fix(saved, tmp_path, factory):
    root, bases, pipelines = saved
    base = Path(shutil.copytree(bases["llama"], tmp_path / "base"))
    setting = "model.name" if factory == "seqlab_llm_sft" else "model.backbone.name"
    pipeline = _copy(saved, factory, tmp_path)
    spacy.load(pipeline, config={f"components.{factory}.{setting}": str(base)})
    moved = tmp_path / "moved"
    base.rename(moved)
    with pytest.raises(ArtifactError) as caught:
        spacy.load(pipeline, config={f"components.{factory}.{setting}": str(base)})
    message = str(caught.value)
    assert f"component '{factory}'" in message and str(pipeline / factory / "model") in message
    assert f"base model {str(base)!r}" in message and "could not be loaded" in message
    assert f"'components.{factory}.{setting}'" in message  # how to point it at the new place
    # Doing what the message says works.
    relocated = spacy.load(pipeline, config={f"components.{factory}.{setting}": str(moved)})
    assert _behaviour(relocated, factory) == pipelines[factory][1]


# -- nothing is unpickled ------------------------------------------------------------------------


def _refuse(*args, **kwargs):
    raise AssertionError("something was unpickled while loading a pipeline")


class _RefusingUnpickler:
    def __init__(self, *args, **kwargs):
        _refuse()


@pytest.mark.parametrize("factory", FACTORIES + ["seqlab_oie"])
def test_loading_unpickles_nothing(saved, monkeypatch, factory):
    path, expected = saved[2][factory]
    nlp = spacy.load(path)  # warm imports and caches before refusing pickle
    data = nlp.to_bytes()
    if expected is not None:
        _behaviour(nlp, factory)
    for module, name in ((pickle, "loads"), (pickle, "load"), (pickle, "Unpickler"), (torch, "load")):
        monkeypatch.setattr(module, name, _RefusingUnpickler if name == "Unpickler" else _refuse)
    with pytest.raises(AssertionError, match="unpickled"):
        pickle.loads(pickle.dumps([1]))  # the guard is in place
    loaded = spacy.load(path)
    copy = spacy.util.load_model_from_config(nlp.config, auto_fill=True).from_bytes(data)
    if expected is not None:
        assert _behaviour(loaded, factory) == expected and _behaviour(copy, factory) == expected
    else:
        assert loaded.get_pipe(factory).cfg == copy.get_pipe(factory).cfg == nlp.get_pipe(factory).cfg
