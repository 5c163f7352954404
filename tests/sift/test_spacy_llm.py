"""spacy-llm's ``llm`` component with ``SiftTask``: labels, task protocol, and a cache that never
serves the answers of another training of the pipeline."""

import pytest
import spacy
import torch
from spacy.tokens import Doc
from spacy.training import Example
from spacy_llm.ty import LabeledTask, PromptTemplateProvider, Serializable, ShardingLLMTask

from spacy_seqlab.hf.model import hf_model_of

TEXTS = ["Alice lives in Paris.", "Bob met Alice in Berlin."]


def _train_and_save(model_dir, path, seed):
    """A SIFT pipeline on a tiny random model; ``seed`` stands for one training run (its weights)."""
    nlp = spacy.blank("en")
    config = {"model": {"name": str(model_dir), "lora": None}, "n_demos": 1, "max_new_tokens": 8}
    nlp.add_pipe("seqlab_llm_sft", config=config)
    doc = Doc(nlp.vocab, words=["Alice", "lives", "in", "Paris", "."], ents=["B-PER", "O", "O", "B-LOC", "O"])
    nlp.initialize(lambda: [Example(nlp.make_doc(doc.text), doc)])
    generator = torch.Generator().manual_seed(seed)
    for param in hf_model_of(nlp.get_pipe("seqlab_llm_sft").model).transformer.parameters():
        param.data = torch.randn(param.shape, generator=generator) * 0.2
    nlp.to_disk(path)


def _llm_nlp(pipeline, cache_dir):
    nlp = spacy.blank("en")
    nlp.add_pipe(
        "llm",
        config={
            "task": {"@llm_tasks": "spacy_seqlab.SiftTask.v1", "pipeline": str(pipeline)},
            "model": {"@llm_models": "spacy_seqlab.SiftModel.v1", "pipeline": str(pipeline)},
            "cache": {"@llm_misc": "spacy.BatchCache.v1", "path": str(cache_dir), "batch_size": 1},
            "save_io": True,
        },
    )
    return nlp


def _responses(nlp):
    return [list(doc.user_data["llm_io"]["llm"]["response"]) for doc in nlp.pipe(TEXTS)]


def test_task_follows_spacy_llm_protocols_and_exposes_labels(tiny_model_dir, tmp_path):
    _train_and_save(tiny_model_dir("llama"), tmp_path / "sft", seed=0)
    nlp = _llm_nlp(tmp_path / "sft", tmp_path / "cache")
    llm = nlp.get_pipe("llm")
    task = llm.task
    for protocol in (LabeledTask, PromptTemplateProvider, Serializable, ShardingLLMTask):
        assert isinstance(task, protocol), protocol
    assert llm.labels == ("LOC", "PER")
    assert task.add_label("PER") == 0
    with pytest.raises(ValueError, match="train the component"):
        llm.add_label("ORG")
    assert task.fingerprint in task.prompt_template and "{text}" in task.prompt_template
    nlp.to_disk(tmp_path / "llm")  # the task's cfg travels with the llm pipeline, and loads back
    assert spacy.load(tmp_path / "llm").get_pipe("llm").labels == ("LOC", "PER")


def test_cache_serves_the_same_training_and_refuses_a_retrained_pipeline(tiny_model_dir, tmp_path):
    model_dir, pipeline, cache = tiny_model_dir("llama"), tmp_path / "sft", tmp_path / "cache"
    _train_and_save(model_dir, pipeline, seed=0)
    first = _responses(_llm_nlp(pipeline, cache))
    again = _llm_nlp(pipeline, cache)  # the same training: answers come from the cache
    assert _responses(again) == first
    assert again.get_pipe("llm")._cache._stats["hit"] == len(TEXTS)

    _train_and_save(model_dir, pipeline, seed=1)  # retrained, saved to the same path
    with pytest.raises(ValueError, match="Reset your cache"):
        _llm_nlp(pipeline, cache)
    retrained = _llm_nlp(pipeline, tmp_path / "fresh_cache")
    assert _responses(retrained) != first  # the old answers were another model's
