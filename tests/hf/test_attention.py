"""seqlab_sdpa gives what transformers' SDPA gives, without copying shared key/value heads."""

import pytest
import torch

from spacy_seqlab.hf.attention import ATTN_IMPLEMENTATION, install_attention
from spacy_seqlab.hf.loading import load_model

DECODERS = ["llama", "mistral", "qwen2", "qwen3"]


def _inputs(vocab_size: int, padding_side: str):
    torch.manual_seed(0)
    ids = torch.randint(3, vocab_size, (3, 12))
    mask = torch.ones_like(ids)
    if padding_side == "left":
        mask[1, :5] = 0
        mask[2, :9] = 0
    else:
        mask[1, 7:] = 0
        mask[2, 3:] = 0
    return ids, mask


@pytest.mark.parametrize("arch", DECODERS)
@pytest.mark.parametrize("padding_side", ["left", "right"])
def test_same_outputs_and_gradients_as_transformers_sdpa(tiny_model_dir, arch, padding_side, monkeypatch):
    reference = load_model(str(tiny_model_dir(arch)), kind="causal-lm", attn_implementation="sdpa")
    ours = load_model(str(tiny_model_dir(arch)), kind="causal-lm", attn_implementation="sdpa")
    config = ours.config
    assert config.num_key_value_heads < config.num_attention_heads  # the grouped-query case
    assert install_attention(ours.model) and config._attn_implementation == ATTN_IMPLEMENTATION
    ids, mask = _inputs(config.vocab_size, padding_side)
    expected = reference(input_ids=ids, attention_mask=mask).logits
    expected[mask.bool()].sum().backward()

    import transformers.integrations.sdpa_attention as sdpa

    def no_copies(*args, **kwargs):
        raise AssertionError("repeat_kv copied the key/value heads")

    monkeypatch.setattr(sdpa, "repeat_kv", no_copies)
    got = ours(input_ids=ids, attention_mask=mask).logits
    got[mask.bool()].sum().backward()
    real = mask.bool()
    torch.testing.assert_close(got[real], expected[real], atol=1e-5, rtol=1e-4)
    for (name, a), (_, b) in zip(ours.named_parameters(), reference.named_parameters()):
        torch.testing.assert_close(a.grad, b.grad, atol=1e-4, rtol=1e-3, msg=lambda m, name=name: f"{name}: {m}")


def test_generation_with_cache_matches_transformers_sdpa(tiny_model_dir):
    reference = load_model(str(tiny_model_dir("llama")), kind="causal-lm", attn_implementation="sdpa")
    ours = load_model(str(tiny_model_dir("llama")), kind="causal-lm", attn_implementation="sdpa")
    install_attention(ours.model)
    ids, mask = _inputs(ours.config.vocab_size, "left")
    kwargs = {"max_new_tokens": 8, "do_sample": False, "pad_token_id": 0, "eos_token_id": None}
    with torch.no_grad():
        assert torch.equal(
            ours.generate(input_ids=ids, attention_mask=mask, **kwargs),
            reference.generate(input_ids=ids, attention_mask=mask, **kwargs),
        )


def test_other_backends_and_families_are_left_alone(tiny_model_dir):
    eager = load_model(str(tiny_model_dir("llama")), kind="base", attn_implementation="eager")
    assert not install_attention(eager) and eager.config._attn_implementation == "eager"
    encoder = load_model(str(tiny_model_dir("bert")), kind="base")
    before = encoder.config._attn_implementation
    assert not install_attention(encoder) and encoder.config._attn_implementation == before
