import shutil

import numpy
import pytest
import spacy
import srsly
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from spacy_seqlab.core.alignment import align_docs
from spacy_seqlab.core.batching import chunk_size
from spacy_seqlab.core.serialization import ArtifactError
from spacy_seqlab.hf.backbone import build_hf_backbone
from spacy_seqlab.hf.model import hf_model_of
from spacy_seqlab.hf.windows import WindowSettings, plan_chunks

nlp = spacy.blank("en")
TEXTS = [
    "Alice can't go to São Paulo with Bob.",
    "",
    "   ",
    "Emoji 👩‍👩‍👧 and مرحبا\tand\n\nnew lines",
    "The quick brown fox jumps over the lazy dog " * 6,
]


def _docs(texts=TEXTS):
    return [nlp(text) for text in texts]


def _backbone(model_dir, **settings):
    model = build_hf_backbone(name=str(model_dir), **settings)
    model.initialize()
    return model


@pytest.mark.parametrize("arch", ["llama", "mistral", "qwen2", "qwen3", "bert"])
def test_every_token_gets_one_vector(tiny_model_dir, arch):
    model = _backbone(tiny_model_dir(arch), lora={"r": 2} if arch != "bert" else None, window=16, stride=12)
    docs = _docs()
    outputs = model.predict(docs)
    assert [y.shape for y in outputs] == [(len(doc), 32) for doc in docs]
    assert all(numpy.isfinite(y).all() for y in outputs)
    # Tokens without pieces (whitespace a WordPiece tokenizer drops) get zero vectors;
    # byte-level BPE keeps whitespace as pieces.
    assert (not outputs[2].any()) == (arch == "bert")
    word_rows = [i for i, t in enumerate(docs[0]) if not t.is_space]
    assert (numpy.abs(outputs[0][word_rows]).sum(axis=1) > 0).all()


@pytest.mark.parametrize("arch,lora", [("llama", {"r": 4, "alpha": 8}), ("bert", None)])
def test_to_bytes_round_trip_gives_identical_outputs(tiny_model_dir, arch, lora):
    settings = dict(lora=lora, window=16, stride=8, pooling="mean")
    model = _backbone(tiny_model_dir(arch), **settings)
    # Train a step first so the saved weights differ from the pre-trained ones.
    outputs, backprop = model.begin_update(_docs())
    backprop([numpy.ones_like(y) for y in outputs])
    with torch.no_grad():
        for p in hf_model_of(model).parameters():
            if p.requires_grad and p.grad is not None:
                p -= 0.1 * p.grad
    expected = model.predict(_docs())
    restored = build_hf_backbone(name=str(tiny_model_dir(arch)), **settings).from_bytes(model.to_bytes())
    for a, b in zip(expected, restored.predict(_docs())):
        numpy.testing.assert_array_equal(a, b)


def test_adapter_only_artifact_reloads_base_and_checks_it(tiny_model_dir, tmp_path):
    base = tmp_path / "base"
    shutil.copytree(tiny_model_dir("llama"), base)
    settings = dict(lora={"r": 4}, save_base=False)
    model = _backbone(base, **settings)
    with torch.no_grad():  # make the adapter non-trivial (B starts at zero)
        for name, p in hf_model_of(model).named_parameters():
            if "lora_B" in name:
                p.normal_()
    data = model.to_bytes()
    full = _backbone(base, lora={"r": 4}, save_base=True).to_bytes()
    assert len(data) < len(full) / 2  # the base is not in the artifact
    restored = build_hf_backbone(name=str(base), **settings).from_bytes(data)
    for a, b in zip(model.predict(_docs()), restored.predict(_docs())):
        numpy.testing.assert_allclose(a, b, atol=1e-6)
    # A base that changed shape is refused with a message naming the mismatch.
    other = tmp_path / "other"
    shutil.copytree(tiny_model_dir("qwen2"), other)
    with pytest.raises(ArtifactError, match="different base model"):
        build_hf_backbone(name=str(other), **settings).from_bytes(data)
    # A base that no longer exists is named in the error, with the way out.
    shutil.rmtree(base)
    with pytest.raises(ArtifactError, match="save_base"):
        build_hf_backbone(name=str(base), **settings).from_bytes(data)


def test_damaged_artifact_gives_clear_error(tiny_model_dir):
    module = hf_model_of(_backbone(tiny_model_dir("bert")))
    data = module.to_bytes()
    fresh = hf_model_of(build_hf_backbone(name=str(tiny_model_dir("bert"))))
    with pytest.raises(ArtifactError, match="truncated or corrupted"):
        fresh.from_bytes(data[: len(data) // 2])
    with pytest.raises(ArtifactError, match="Expected saved hf-backbone"):
        fresh.from_bytes(srsly.msgpack_dumps({"kind": "something-else"}))


def test_settings_must_match_the_artifact(tiny_model_dir):
    data = _backbone(tiny_model_dir("llama"), lora={"r": 4}).to_bytes()
    with pytest.raises(ArtifactError, match="lora"):
        build_hf_backbone(name=str(tiny_model_dir("llama")), lora={"r": 8}).from_bytes(data)


def test_uninitialized_backbone_serializes_empty_and_refuses_to_predict(tiny_model_dir):
    model = build_hf_backbone(name=str(tiny_model_dir("bert")))
    restored = build_hf_backbone(name=str(tiny_model_dir("bert"))).from_bytes(model.to_bytes())
    assert not hf_model_of(restored).loaded
    with pytest.raises(RuntimeError, match="initialize"):
        restored.predict(_docs())


@pytest.mark.parametrize("arch", ["llama", "bert"])
def test_batch_equals_one_by_one(tiny_model_dir, arch):
    """Padding and batching must not change any Doc's vectors."""
    model = _backbone(tiny_model_dir(arch), window=16, stride=12, max_batch_tokens=64)
    docs = _docs()
    together = model.predict(docs)
    for doc, expected in zip(docs, together):
        numpy.testing.assert_allclose(model.predict([doc])[0], expected, atol=1e-5)


@pytest.mark.parametrize("max_padding", [0.0, 1.0])
def test_padding_share_changes_chunks_not_vectors(tiny_model_dir, max_padding):
    docs = _docs()
    model = _backbone(tiny_model_dir("bert"), max_padding=max_padding)
    chunks = [
        (c.input_ids, c.attention_mask)
        for c in plan_chunks(model.get_ref("pieces").predict(docs), WindowSettings(max_padding=max_padding))
    ]
    lengths = sorted({int(mask.sum(1).min()) for _, mask in chunks})
    if max_padding == 0.0:  # only windows of one length share a forward call
        assert all(int(mask.sum(1).min()) == mask.shape[1] for _, mask in chunks)
        assert len(chunks) > 1
    else:
        assert len(chunks) == 1 and len(lengths) == 1
    reference = _backbone(tiny_model_dir("bert"), max_padding=0.5).predict(docs)
    for got, expected in zip(model.predict(docs), reference):
        numpy.testing.assert_allclose(got, expected, atol=1e-5)


@settings(max_examples=200, deadline=None)
@given(
    lengths=st.lists(st.integers(1, 300), min_size=1, max_size=60),
    max_tokens=st.integers(1, 4096),
    max_padding=st.floats(0.0, 1.0),
)
def test_chunk_size_bounds_tokens_and_padding(lengths, max_tokens, max_padding):
    ordered = numpy.array(sorted(lengths, reverse=True))
    size = chunk_size(ordered, max_tokens, max_padding)
    assert 1 <= size <= len(ordered)
    if size > 1:
        width = ordered[0]
        assert size * width <= max_tokens
        assert 1 - ordered[:size].sum() / (size * width) <= max_padding + 1e-9
    if size < len(ordered):  # the chunk stops only where one more window would break a bound
        more = size + 1
        assert more * ordered[0] > max_tokens or 1 - ordered[:more].sum() / (more * ordered[0]) > max_padding


def test_long_document_is_windowed_without_losing_a_token(tiny_model_dir):
    doc = nlp(" ".join(f"w{i % 50}" for i in range(10_000)))
    assert len(doc) == 10_000
    model = _backbone(tiny_model_dir("llama"), window=128, stride=96)
    (output,) = model.predict([doc])
    assert output.shape == (10_000, 32)
    assert (numpy.abs(output).sum(axis=1) > 0).all()
    # A causal decoder's first window sees no later context, so the tokens read from it
    # must equal a run on their text alone.
    alignment = align_docs([doc], hf_model_of(model).tokenizer)[0]
    cut = (0 + 96 + 128 - 1) // 2  # the last piece read from window 0
    n_head = int((alignment.last <= cut).sum())
    assert n_head >= 10
    (head,) = model.predict([nlp(doc[:n_head].text)])
    numpy.testing.assert_allclose(output[:n_head], head, atol=1e-5)
    # ... while later tokens, read from later windows, differ from a run without their left context.
    (tail,) = model.predict([nlp(doc[n_head:].text)])
    assert not numpy.allclose(output[n_head : n_head + 5], tail[:5], atol=1e-3)


def test_pooling_reads_first_last_and_mean_pieces(tiny_model_dir):
    doc = nlp("unbelievably")  # one token, several pieces with the tiny tokenizers
    outputs = {}
    for pooling in ("first", "last", "mean"):
        (outputs[pooling],) = _backbone(tiny_model_dir("bert"), pooling=pooling).predict([doc])
    module = hf_model_of(_backbone(tiny_model_dir("bert")))
    ids = module.tokenizer(doc.text, return_tensors="pt")["input_ids"]
    assert ids.shape[1] > 3  # CLS + at least two pieces + SEP
    with torch.no_grad():
        module.transformer.eval()
        hidden = module.transformer(input_ids=ids).last_hidden_state[0, 1:-1].numpy()
    numpy.testing.assert_allclose(outputs["first"][0], hidden[0], atol=1e-5)
    numpy.testing.assert_allclose(outputs["last"][0], hidden[-1], atol=1e-5)
    numpy.testing.assert_allclose(outputs["mean"][0], hidden.mean(axis=0), atol=1e-5)


def test_lora_trains_only_adapters_in_float32(tiny_model_dir):
    model = _backbone(tiny_model_dir("llama"), lora={"r": 4}, dtype="bfloat16")
    module = hf_model_of(model)
    trainable = {n: p for n, p in module.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)
    assert all(p.dtype == torch.float32 for p in trainable.values())
    assert any(p.dtype == torch.bfloat16 for p in module.parameters() if not p.requires_grad)
    outputs, backprop = model.begin_update(_docs())
    assert all(y.dtype == numpy.float32 for y in outputs)
    backprop([numpy.ones_like(y) for y in outputs])
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for n, p in trainable.items() if "lora_B" in n)
    assert all(p.grad is None for p in module.parameters() if not p.requires_grad)


def test_empty_batches_are_handled(tiny_model_dir):
    model = _backbone(tiny_model_dir("bert"))
    assert model.predict([]) == []
    outputs, backprop = model.begin_update([nlp(""), nlp("  ")])
    assert [y.shape for y in outputs] == [(0, 32), (1, 32)]
    assert backprop([numpy.zeros_like(y) for y in outputs]) == []


@pytest.mark.parametrize(
    "settings,message",
    [
        ({"pooling": "max"}, "pooling"),
        ({"window": 0}, "window"),
        ({"window": 16, "stride": 32}, "stride"),
        ({"dtype": "float8"}, "dtype"),
        ({"lora": {"rank": 4}}, "rank"),
        ({"lora": {"r": 0}}, "lora.r"),
        ({"lora": {"r": 4}, "freeze": True}, "freeze"),
        ({"max_batch_tokens": 0}, "max_batch_tokens"),
        ({"max_padding": 1.5}, "max_padding"),
        ({"max_padding": "20%"}, "max_padding"),
    ],
)
def test_bad_settings_name_the_setting(settings, message):
    with pytest.raises(ValueError, match=message):
        build_hf_backbone(name="unused", **settings)


def test_unknown_settings_are_refused():
    # model_class is fixed by the architecture: "base" here, "causal-lm" in spacy_seqlab.CausalLM.v1.
    with pytest.raises(TypeError, match="model_class"):
        build_hf_backbone(name="unused", model_class="seq2seq")


def test_window_larger_than_the_model_is_refused(tiny_model_dir):
    with pytest.raises(ValueError, match="window"):
        _backbone(tiny_model_dir("bert"), window=1000, stride=500)


def test_missing_model_names_the_source(tmp_path):
    model = build_hf_backbone(name=str(tmp_path / "nowhere"))
    with pytest.raises(Exception, match="nowhere"):
        model.initialize()


def test_lora_targets_must_exist(tiny_model_dir):
    with pytest.raises(ValueError, match="target_modules"):
        _backbone(tiny_model_dir("llama"), lora={"r": 2, "target_modules": ["query"]})
