"""The transformer layer alone: (ids, mask[, positions]) → float32 vectors, against the Hugging Face model itself."""

import numpy
import pytest
import torch

from spacy_seqlab.hf.model import HFModel, ModelSettings, hf_model_of
from spacy_seqlab.hf.transformer import build_transformer


def _layer(model_dir, **settings):
    layer = build_transformer(HFModel(ModelSettings(name=str(model_dir), **settings)))
    layer.initialize()
    return layer


def _inputs(hf_model):
    encoded = hf_model.tokenizer(["Alice lives in Paris .", "Bob"], padding=True, return_tensors="np")
    return encoded["input_ids"].astype(numpy.int64), encoded["attention_mask"].astype(numpy.int64)


@pytest.mark.parametrize("arch", ["bert", "llama"])
def test_outputs_are_the_models_last_hidden_states(tiny_model_dir, arch):
    layer = _layer(tiny_model_dir(arch))
    hf_model = hf_model_of(layer)
    ids, mask = _inputs(hf_model)
    states = layer.predict((ids, mask))
    assert states.dtype == numpy.float32 and states.shape == (*ids.shape, hf_model.hidden_size)
    with torch.no_grad():
        hf_model.transformer.eval()
        expected = hf_model.transformer(
            input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask)
        ).last_hidden_state
    numpy.testing.assert_allclose(states, expected.numpy(), atol=1e-6)
    # With positions: only those rows of the flattened batch, in that order.
    positions = numpy.array([7, 0, 3], dtype=numpy.int64)
    rows = layer.predict((ids, mask, positions))
    numpy.testing.assert_array_equal(rows, states.reshape(-1, states.shape[-1])[positions])


def test_bfloat16_weights_give_float32_vectors(tiny_model_dir):
    layer = _layer(tiny_model_dir("llama"), dtype="bfloat16")
    ids, mask = _inputs(hf_model_of(layer))
    assert layer.predict((ids, mask)).dtype == numpy.float32


def test_gradients_reach_the_adapters_as_in_torch(tiny_model_dir):
    layer = _layer(tiny_model_dir("llama"), lora={"r": 2, "dropout": 0.0})  # deterministic in training mode
    hf_model = hf_model_of(layer)
    with torch.no_grad():  # B starts at zero: give every adapter weight a gradient
        for name, param in hf_model.named_parameters():
            if "lora_B" in name:
                param.normal_()
    ids, mask = _inputs(hf_model)
    positions = numpy.array([1, 2, 4], dtype=numpy.int64)
    d_rows = numpy.random.default_rng(0).normal(size=(3, hf_model.hidden_size)).astype("float32")
    rows, backprop = layer((ids, mask, positions), is_train=True)
    backprop(d_rows)
    ours = {name: p.grad.clone() for name, p in hf_model.named_parameters() if p.requires_grad}
    assert ours and all("lora_" in name for name in ours)
    for p in hf_model.parameters():
        p.grad = None
    hf_model.train()
    reference = hf_model(torch.from_numpy(ids), torch.from_numpy(mask), torch.from_numpy(positions))
    numpy.testing.assert_allclose(rows, reference.detach().numpy(), atol=1e-6)
    reference.backward(torch.from_numpy(d_rows))
    for name, p in hf_model.named_parameters():
        if p.requires_grad:
            torch.testing.assert_close(ours[name], p.grad, atol=1e-6, rtol=1e-5)


def test_frozen_weights_take_no_gradient(tiny_model_dir):
    layer = _layer(tiny_model_dir("bert"), freeze=True)
    ids, mask = _inputs(hf_model_of(layer))
    states, backprop = layer((ids, mask), is_train=True)
    backprop(numpy.ones_like(states))
    assert all(p.grad is None for p in hf_model_of(layer).parameters())


def test_save_and_restore_alone(tiny_model_dir):
    layer = _layer(tiny_model_dir("bert"))
    ids, mask = _inputs(hf_model_of(layer))
    restored = build_transformer(HFModel(ModelSettings(name=str(tiny_model_dir("bert"))))).from_bytes(layer.to_bytes())
    numpy.testing.assert_array_equal(restored.predict((ids, mask)), layer.predict((ids, mask)))


def test_an_empty_model_refuses_to_run(tiny_model_dir):
    layer = build_transformer(HFModel(ModelSettings(name=str(tiny_model_dir("bert")))))
    with pytest.raises(RuntimeError, match="initialize"):
        layer.predict((numpy.ones((1, 2), dtype=numpy.int64), numpy.ones((1, 2), dtype=numpy.int64)))


def test_model_class_is_checked():
    with pytest.raises(ValueError, match="model_class must be one of base, causal-lm"):
        HFModel(ModelSettings(name="x"), "seq2seq")
