"""spacy_seqlab.CausalLM.v1: the shared model with its LM head, and only the settings generation uses."""

import numpy
import pytest
import torch

from spacy_seqlab.hf.backbone import build_hf_backbone
from spacy_seqlab.hf.causal_lm import CausalLMSettings, build_causal_lm, causal_lm_of, causal_lm_settings
from spacy_seqlab.hf.generation import generate
from spacy_seqlab.hf.model import hf_model_of


def test_logits_generation_and_round_trip(tiny_model_dir):
    model = build_causal_lm(name=str(tiny_model_dir("llama")), lora={"r": 2}, max_batch_tokens=512)
    model.initialize()
    lm = causal_lm_of(model)
    assert lm is hf_model_of(model) and lm.model_class == "causal-lm"
    assert causal_lm_settings(model) == CausalLMSettings(max_batch_tokens=512)
    encoded = lm.tokenizer(["Alice lives in Paris", "Bob"], padding=True, return_tensors="np")
    ids, mask = encoded["input_ids"].astype(numpy.int64), encoded["attention_mask"].astype(numpy.int64)
    logits = model.predict((ids, mask))
    assert logits.dtype == numpy.float32 and logits.shape == (*ids.shape, len(lm.tokenizer))
    with torch.no_grad():
        lm.transformer.eval()
        expected = lm.transformer(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask)).logits
    numpy.testing.assert_allclose(logits, expected.numpy(), atol=1e-5)
    texts = generate(lm.transformer, lm.tokenizer, ["Alice lives in", "Bob"], max_new_tokens=4)
    restored = build_causal_lm(name=str(tiny_model_dir("llama")), lora={"r": 2}, max_batch_tokens=1024)
    restored.from_bytes(model.to_bytes())
    assert causal_lm_settings(restored).max_batch_tokens == 1024  # the config's, not the saved one
    again = causal_lm_of(restored)
    assert generate(again.transformer, again.tokenizer, ["Alice lives in", "Bob"], max_new_tokens=4) == texts


@pytest.mark.parametrize(
    "setting", [{"unmask": "all"}, {"freeze": True}, {"pooling": "last"}, {"window": 64}, {"model_class": "base"}]
)
def test_settings_of_the_tagger_backbone_are_not_settings_of_the_causal_lm(setting):
    with pytest.raises(TypeError, match=next(iter(setting))):
        build_causal_lm(name="unused", **setting)


def test_a_backbone_is_not_a_causal_lm(tiny_model_dir):
    backbone = build_hf_backbone(name=str(tiny_model_dir("llama")))
    with pytest.raises(ValueError, match="CausalLM.v1"):
        causal_lm_of(backbone)
    with pytest.raises(ValueError, match="not a spacy_seqlab.CausalLM.v1"):
        causal_lm_settings(backbone)


def test_saved_model_class_is_checked(tiny_model_dir):
    from spacy_seqlab.core.serialization import ArtifactError

    backbone = build_hf_backbone(name=str(tiny_model_dir("llama")))
    backbone.initialize()
    data = hf_model_of(backbone).to_bytes()
    lm = causal_lm_of(build_causal_lm(name=str(tiny_model_dir("llama"))))
    with pytest.raises(ArtifactError, match="model_class = 'base'"):
        lm.from_bytes(data)
