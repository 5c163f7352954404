import pytest
import torch

from spacy_seqlab.hf.loading import load_model, load_tokenizer
from spacy_seqlab.hf.unmasking import SUPPORTED_MODEL_TYPES, apply_unmasking, unmasked_layers

DECODERS = ["llama", "mistral", "qwen2", "qwen3"]


@pytest.mark.parametrize(
    "spec,n_layers,expected",
    [
        ("none", 32, []),
        ("all", 4, [0, 1, 2, 3]),
        ("0011", 32, list(range(16, 32))),
        ("1000", 8, [0, 1]),
        ("01", 30, list(range(15, 30))),
        ("101", 6, [0, 1, 4, 5]),
        ([3, 1, 3], 4, [1, 3]),
    ],
)
def test_unmask_settings_select_layers(spec, n_layers, expected):
    assert unmasked_layers(spec, n_layers) == expected


@pytest.mark.parametrize(
    "spec,n_layers,message",
    [
        ("012", 4, "bit string"),
        ("0011", 30, "does not divide"),
        ([0, 4], 4, "out of range"),
        ("some", 4, "unmask"),
        ([1.5], 4, "integers"),
    ],
)
def test_bad_unmask_settings_are_named(spec, n_layers, message):
    with pytest.raises(ValueError, match=message):
        unmasked_layers(spec, n_layers)


def _base(model_dir):
    return load_model(str(model_dir), kind="base"), load_tokenizer(str(model_dir))


@torch.no_grad()
def _hidden(model, ids, mask=None, position_ids=None):
    model.eval()
    return model(input_ids=ids, attention_mask=mask, position_ids=position_ids, use_cache=False).last_hidden_state


@pytest.mark.parametrize("arch", DECODERS)
def test_unmasked_layer_lets_position_zero_see_the_last_token(tiny_model_dir, arch):
    model, _ = _base(tiny_model_dir(arch))
    a = torch.tensor([[5, 6, 7, 8, 9]])
    b = torch.tensor([[5, 6, 7, 8, 10]])  # only the last token differs
    assert torch.equal(_hidden(model, a)[0, 0], _hidden(model, b)[0, 0])
    for spec in ([0], [1], "all"):
        apply_unmasking(model, spec)
        assert not torch.allclose(_hidden(model, a)[0, 0], _hidden(model, b)[0, 0]), spec
    assert apply_unmasking(model, "none") == []  # back to causal everywhere
    assert torch.equal(_hidden(model, a)[0, 0], _hidden(model, b)[0, 0])


@pytest.mark.parametrize("arch", DECODERS)
@pytest.mark.parametrize("spec", ["01", "all"])
def test_padding_stays_masked_left_and_right(tiny_model_dir, arch, spec):
    model, _ = _base(tiny_model_dir(arch))
    apply_unmasking(model, spec)
    short = torch.tensor([[5, 6, 7]])
    alone = _hidden(model, short)[0]
    pad = 0
    right = _hidden(
        model, torch.tensor([[5, 6, 7, pad, pad], [9, 8, 7, 6, 5]]), torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
    )[0, :3]
    assert torch.allclose(alone, right, atol=1e-4)
    # Left padding: positions restart at the first real token (RoPE only sees relative offsets).
    left_ids = torch.tensor([[pad, pad, 5, 6, 7], [9, 8, 7, 6, 5]])
    left_mask = torch.tensor([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1]])
    positions = (left_mask.cumsum(1) - 1).clamp(min=0)
    left = _hidden(model, left_ids, left_mask, positions)[0, 2:]
    assert torch.allclose(alone, left, atol=1e-4)
    # Garbage in the padded slots must not leak into real tokens.
    noisy = _hidden(
        model, torch.tensor([[5, 6, 7, 11, 12], [9, 8, 7, 6, 5]]), torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
    )[0, :3]
    assert torch.allclose(alone, noisy, atol=1e-4)


def test_mistral_sliding_window_is_lifted_in_unmasked_layers(tiny_model_dir):
    model, _ = _base(tiny_model_dir("mistral"))  # sliding_window = 64
    ids = torch.randint(5, 100, (1, 80))
    changed = ids.clone()
    changed[0, -1] = 4
    apply_unmasking(model, "all")
    assert not torch.allclose(_hidden(model, ids)[0, 0], _hidden(model, changed)[0, 0])


def test_encoders_and_unsupported_families_get_clear_errors(tiny_model_dir):
    bert, _ = _base(tiny_model_dir("bert"))
    assert apply_unmasking(bert, "all") == []
    with pytest.raises(ValueError, match="already bidirectional"):
        apply_unmasking(bert, "01")
    from transformers import GPT2Config, GPT2Model

    gpt2 = GPT2Model(GPT2Config(n_layer=2, n_embd=32, n_head=4, vocab_size=100))
    with pytest.raises(ValueError, match=", ".join(SUPPORTED_MODEL_TYPES)):
        apply_unmasking(gpt2, "all")


def test_eager_attention_is_refused(tiny_model_dir):
    model = load_model(str(tiny_model_dir("llama")), attn_implementation="eager")
    with pytest.raises(ValueError, match="sdpa"):
        apply_unmasking(model, "all")
